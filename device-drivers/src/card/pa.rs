//! Passive authentication.
