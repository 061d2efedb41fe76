//! Device traits and drivers for echannel gates.
