//! echannel gate controller.
//!
//! - [`api`]: the HTTP API, operator console and traveller display served by `gated`;
//! - [`machine`]: the pure, deterministic state machine (no clock, no I/O);
//! - [`beamcount`]: bodies in the mantrap counted from beam timing (pure);
//! - [`party`]: who is in the mantrap (head count, accompanied child, tailgating);
//! - [`decision`]: eligibility, watchlist and biometric rules with recorded reasons;
//! - [`invariants`]: a checker for the safety and audit invariants of DESIGN.md, used by
//!   the property tests and by the simulator on every step;
//! - [`config`]: the gate's TOML configuration, validated with errors that name the key;
//! - [`journal`]: the durable SQLite journal of movement records and events;
//! - [`runtime`]: the tokio shell that drives the machine with real devices and time;
//! - [`upstream`]: the movement-record protocol, the sync client and the control-point server;
//! - [`watchlist`]: signed, memory-mapped watchlists with exact lookups;
//! - [`types`] (from `device-drivers`), [`record`], [`prompt`]: the shared vocabulary;

pub mod api;
pub mod beamcount;
pub mod config;
pub mod decision;
pub mod disk;
pub mod invariants;
pub mod journal;
pub mod logging;
pub mod machine;
pub mod party;
pub mod problem;
pub mod prompt;
pub mod record;
pub mod runtime;
pub mod upstream;
pub mod watchlist;

/// The hardware vocabulary (time, doors, sensors, devices, documents), shared with the
/// drivers and the simulator.
pub use device_drivers::types;
