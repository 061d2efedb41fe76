//! Device traits and drivers for echannel gates, and the hardware vocabulary they share
//! with the controller.

pub mod card;
pub mod devices;
pub mod fingerprint;
pub mod io;
pub mod mrz;
pub mod port;
pub mod prompt;
pub mod sim;
pub mod types;
