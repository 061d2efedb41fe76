//! `[devices] kind = "sim"`: the simulator's lane stepped in real time behind the device
//! traits.

use super::clock::MonotonicWallClock;
use super::{Devices, RuntimeError};
use crate::config::{SimSection, WatchlistSection};

/// The three simulated devices of one lane, driven by a seeded traveller stream.
pub fn devices(
    _sim: &SimSection,
    _watchlist: &WatchlistSection,
    _clock: MonotonicWallClock,
) -> Result<Devices, RuntimeError> {
    Err(RuntimeError::NotBuilt {
        key: "devices",
        what: "the simulated lane (kind = \"sim\")",
    })
}
