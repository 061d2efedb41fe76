//! Traveller prompts: the one definition lives with the devices, which the simulated
//! travellers read as well ([`device_drivers::prompt`]).

pub use device_drivers::prompt::{Language, Prompt};
