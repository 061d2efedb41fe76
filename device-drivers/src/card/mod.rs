//! Identity-document chips (ICAO Doc 9303 eMRTDs): APDUs, access control (BAC, PACE),
//! secure messaging, the LDS data structures, passive authentication, a virtual chip and
//! the terminal-side read flow.

pub mod apdu;
pub mod bac;
pub mod chip;
pub mod crypto;
pub mod error;
pub mod gate;
pub mod lds;
pub mod mrz;
pub mod pa;
pub mod pace;
pub mod reader;
pub mod sm;
pub mod tlv;
pub mod transport;
pub mod vpcd;

#[cfg(feature = "pcsc")]
pub mod pcsc;

pub use error::CardError;

/// The operating system's random generator (see [`system_rng`]).
pub type SystemRng = rand_core::UnwrapErr<getrandom::SysRng>;

/// The operating system's random generator, for terminals and virtual chips run outside
/// tests (nonces, ephemeral keys). Panics only if the OS cannot supply randomness at all.
pub fn system_rng() -> SystemRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}
