//! echannel gate controller.
//!
//! - [`api`]: the HTTP API, operator console and traveller display served by `gated`;
//! - [`machine`]: the pure, deterministic state machine (no clock, no I/O);
//! - [`decision`]: eligibility, watchlist and biometric rules with recorded reasons;
//! - [`invariants`]: a checker for the safety and audit invariants of DESIGN.md, used by
//!   the property tests and by the simulator on every step;
//! - [`watchlist`]: signed, memory-mapped watchlists with exact lookups;
//! - [`types`] (from `device-drivers`), [`record`], [`prompt`]: the shared vocabulary.
//! - [`types`] (from `device-drivers`), [`record`], [`prompt`]: the shared vocabulary;
//! - [`sim_bridge`]: signals and commands of the simulated lane as machine events/actions.

pub mod api;
pub mod decision;
pub mod invariants;
pub mod machine;
pub mod prompt;
pub mod record;
pub mod watchlist;
pub mod sim_bridge;
pub mod upstream;

/// The hardware vocabulary (time, doors, sensors, devices, documents), shared with the
/// drivers and the simulator.
pub use device_drivers::types;
