//! Device traits and drivers for echannel gates.

pub mod card;
