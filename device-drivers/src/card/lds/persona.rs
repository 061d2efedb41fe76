//! Seeded test personas for the virtual chip.
