//! The gate state machine.
