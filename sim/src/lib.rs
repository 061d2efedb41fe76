//! gate-sim: the hardware simulator, scenario runner and demo of echannel.
//!
//! - [`scenario`]: scenario files (TOML, `deny_unknown_fields`);
//! - [`observed`]: one simulated gate: `gated`'s shell on a virtual clock
//!   ([`gate_controller::runtime::sim::stepped`]) and what a run reads from its log;
//! - [`run`]: the virtual-time runner behind `gate-sim run`;
//! - [`demo`]: the real-time control point behind `gate-sim demo`;
//! - [`lane`]: the simulated lane as a Modbus TCP I/O module (`gate-sim lane`);
//! - [`rig`]: one lane's world in real time on every real transport (`gate-sim rig`);
//! - [`reference`]: the reference upstream server behind `gate-sim upstream`.

pub mod campaign;
pub mod demo;
pub mod lane;
pub mod observed;
pub mod reference;
pub mod rig;
pub mod run;
pub mod scenario;
