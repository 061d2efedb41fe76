//! The I/O map: which numbered digital input or output of the I/O module (or which GPIO
//! line) carries which lane signal, and whether it is active-low.
//!
//! The map is read from TOML (`[devices.io.map]` in the gate config) with unknown keys
//! rejected; a map that uses one index for two signals, or lacks a required signal, is
//! refused with an error naming them. [`IoMap::default`] is the reference wiring, which
//! is also the Modbus register map (discrete input address = input index, coil address =
//! output index).

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The highest index a map may use (keeps the pin tables small; Modbus I/O modules and
/// GPIO chips stay far below it).
pub const MAX_INDEX: u16 = 4095;

/// The most mantrap beams a map may name.
pub const MAX_MANTRAP_BEAMS: usize = 32;

/// One wired signal: its input or output number and its polarity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRef {
    /// Input or output number (Modbus discrete input / coil address, GPIO line offset).
    pub index: u16,
    /// The signal is active when the pin reads (or is driven) low.
    #[serde(default)]
    pub active_low: bool,
}

impl PinRef {
    /// An active-high signal on `index`.
    pub const fn high(index: u16) -> PinRef {
        PinRef {
            index,
            active_low: false,
        }
    }
    /// An active-low signal on `index`.
    pub const fn low(index: u16) -> PinRef {
        PinRef {
            index,
            active_low: true,
        }
    }
}

/// The lane's digital inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputMap {
    /// Entry door position feedback: fully closed.
    pub entry_closed: PinRef,
    /// Entry door position feedback: fully open.
    pub entry_open: PinRef,
    /// Exit door position feedback: fully closed.
    pub exit_closed: PinRef,
    /// Exit door position feedback: fully open.
    pub exit_open: PinRef,
    /// Obstruction (safety) sensor in the entry door's swept area.
    pub entry_safety: PinRef,
    /// Obstruction (safety) sensor in the exit door's swept area.
    pub exit_safety: PinRef,
    /// Beam across the entry threshold.
    pub entry_beam: PinRef,
    /// Beam across the exit threshold.
    pub exit_beam: PinRef,
    /// The mantrap beam array, entry side first (may be empty).
    #[serde(default)]
    pub mantrap_beams: Vec<PinRef>,
    /// Occupancy sensor (overhead sensor or mat), if fitted.
    #[serde(default)]
    pub occupancy: Option<PinRef>,
    /// The overhead sensor's "one adult with one child" output (two heads, one below its
    /// child height threshold), if fitted. Not in the reference map.
    #[serde(default)]
    pub adult_with_child: Option<PinRef>,
    /// Emergency / fire input. Wire it normally closed (`active_low = true`), so that a
    /// cut wire reads as emergency.
    pub emergency: PinRef,
    /// Tamper switch of the cabinet, if fitted.
    #[serde(default)]
    pub tamper: Option<PinRef>,
    /// Entry door motor fault contact, if fitted.
    #[serde(default)]
    pub entry_motor_fault: Option<PinRef>,
    /// Exit door motor fault contact, if fitted.
    #[serde(default)]
    pub exit_motor_fault: Option<PinRef>,
}

impl Default for InputMap {
    fn default() -> InputMap {
        InputMap {
            entry_closed: PinRef::high(0),
            entry_open: PinRef::high(1),
            exit_closed: PinRef::high(2),
            exit_open: PinRef::high(3),
            entry_safety: PinRef::high(4),
            exit_safety: PinRef::high(5),
            entry_beam: PinRef::high(6),
            exit_beam: PinRef::high(7),
            mantrap_beams: vec![PinRef::high(8), PinRef::high(9), PinRef::high(10)],
            occupancy: Some(PinRef::high(11)),
            adult_with_child: None,
            emergency: PinRef::low(12),
            tamper: Some(PinRef::high(13)),
            entry_motor_fault: Some(PinRef::high(14)),
            exit_motor_fault: Some(PinRef::high(15)),
        }
    }
}

impl InputMap {
    /// Every wired input as `(name, pin)`, names as in the TOML (`mantrap_beams[1]`).
    pub fn signals(&self) -> Vec<(String, PinRef)> {
        let mut v: Vec<(String, PinRef)> = [
            ("entry_closed", self.entry_closed),
            ("entry_open", self.entry_open),
            ("exit_closed", self.exit_closed),
            ("exit_open", self.exit_open),
            ("entry_safety", self.entry_safety),
            ("exit_safety", self.exit_safety),
            ("entry_beam", self.entry_beam),
            ("exit_beam", self.exit_beam),
        ]
        .into_iter()
        .map(|(n, p)| (n.to_string(), p))
        .collect();
        for (i, p) in self.mantrap_beams.iter().enumerate() {
            v.push((format!("mantrap_beams[{i}]"), *p));
        }
        let optional = [
            ("occupancy", self.occupancy),
            ("adult_with_child", self.adult_with_child),
            ("emergency", Some(self.emergency)),
            ("tamper", self.tamper),
            ("entry_motor_fault", self.entry_motor_fault),
            ("exit_motor_fault", self.exit_motor_fault),
        ];
        for (n, p) in optional {
            if let Some(p) = p {
                v.push((n.to_string(), p));
            }
        }
        v
    }
}

/// The lane's digital outputs. `drive_open` = 1 opens the door, 0 closes it; `lock` = 1
/// locks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputMap {
    /// Entry door drive: 1 open, 0 close.
    pub entry_drive_open: PinRef,
    /// Entry door lock: 1 locked.
    pub entry_lock: PinRef,
    /// Exit door drive: 1 open, 0 close.
    pub exit_drive_open: PinRef,
    /// Exit door lock: 1 locked.
    pub exit_lock: PinRef,
    /// Green arrow pictogram at the entry.
    pub entry_lamp_green: PinRef,
    /// Red cross pictogram at the entry.
    pub entry_lamp_red: PinRef,
    /// Green arrow pictogram at the exit.
    pub exit_lamp_green: PinRef,
    /// Red cross pictogram at the exit.
    pub exit_lamp_red: PinRef,
    /// Buzzer, if fitted.
    #[serde(default)]
    pub buzzer: Option<PinRef>,
}

impl Default for OutputMap {
    fn default() -> OutputMap {
        OutputMap {
            entry_drive_open: PinRef::high(0),
            entry_lock: PinRef::high(1),
            exit_drive_open: PinRef::high(2),
            exit_lock: PinRef::high(3),
            entry_lamp_green: PinRef::high(4),
            entry_lamp_red: PinRef::high(5),
            exit_lamp_green: PinRef::high(6),
            exit_lamp_red: PinRef::high(7),
            buzzer: Some(PinRef::high(8)),
        }
    }
}

impl OutputMap {
    /// Every wired output as `(name, pin)`, names as in the TOML.
    pub fn signals(&self) -> Vec<(String, PinRef)> {
        let mut v: Vec<(String, PinRef)> = [
            ("entry_drive_open", self.entry_drive_open),
            ("entry_lock", self.entry_lock),
            ("exit_drive_open", self.exit_drive_open),
            ("exit_lock", self.exit_lock),
            ("entry_lamp_green", self.entry_lamp_green),
            ("entry_lamp_red", self.entry_lamp_red),
            ("exit_lamp_green", self.exit_lamp_green),
            ("exit_lamp_red", self.exit_lamp_red),
        ]
        .into_iter()
        .map(|(n, p)| (n.to_string(), p))
        .collect();
        if let Some(p) = self.buzzer {
            v.push(("buzzer".to_string(), p));
        }
        v
    }
}

/// Why an I/O map was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// Two signals share one input or output number.
    #[error("{side} index {index} is used by both {side}s.{first} and {side}s.{second}")]
    Duplicate {
        /// `"input"` or `"output"`.
        side: &'static str,
        /// The shared number.
        index: u16,
        /// The first signal using it.
        first: String,
        /// The second signal using it.
        second: String,
    },
    /// An index beyond [`MAX_INDEX`].
    #[error("{side}s.{signal}: index {index} is out of range (at most {MAX_INDEX})")]
    OutOfRange {
        /// `"input"` or `"output"`.
        side: &'static str,
        /// The signal.
        signal: String,
        /// The index given.
        index: u16,
    },
    /// More mantrap beams than [`MAX_MANTRAP_BEAMS`].
    #[error("inputs.mantrap_beams: {0} beams given, at most {MAX_MANTRAP_BEAMS} are supported")]
    TooManyBeams(usize),
    /// The TOML text is not a valid map (syntax, unknown key, missing required signal).
    #[error("invalid I/O map: {0}")]
    Toml(String),
}

/// The lane's pin map: inputs and outputs. Deserialising validates it (see the module
/// documentation); a section left out takes the reference wiring.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
pub struct IoMap {
    /// The digital inputs.
    pub inputs: InputMap,
    /// The digital outputs.
    pub outputs: OutputMap,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIoMap {
    #[serde(default)]
    inputs: InputMap,
    #[serde(default)]
    outputs: OutputMap,
}

impl<'de> Deserialize<'de> for IoMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IoMap, D::Error> {
        let raw = RawIoMap::deserialize(d)?;
        let map = IoMap {
            inputs: raw.inputs,
            outputs: raw.outputs,
        };
        map.validate().map_err(serde::de::Error::custom)?;
        Ok(map)
    }
}

impl IoMap {
    /// Parses and validates a map from TOML text (the body of `[devices.io.map]`).
    pub fn from_toml_str(text: &str) -> Result<IoMap, MapError> {
        toml::from_str(text).map_err(|e| MapError::Toml(e.to_string().trim_end().to_string()))
    }

    /// Checks that no index is used twice on one side, every index is in range and the
    /// beam array is of a supported size.
    pub fn validate(&self) -> Result<(), MapError> {
        if self.inputs.mantrap_beams.len() > MAX_MANTRAP_BEAMS {
            return Err(MapError::TooManyBeams(self.inputs.mantrap_beams.len()));
        }
        check_side("input", &self.inputs.signals())?;
        check_side("output", &self.outputs.signals())
    }

    /// Number of input pins a driver must provide: the highest input index + 1.
    pub fn input_count(&self) -> usize {
        count(&self.inputs.signals())
    }

    /// Number of output pins a driver must provide: the highest output index + 1.
    pub fn output_count(&self) -> usize {
        count(&self.outputs.signals())
    }
}

fn count(signals: &[(String, PinRef)]) -> usize {
    signals
        .iter()
        .map(|(_, p)| usize::from(p.index) + 1)
        .max()
        .unwrap_or(0)
}

fn check_side(side: &'static str, signals: &[(String, PinRef)]) -> Result<(), MapError> {
    let mut seen: BTreeMap<u16, &str> = BTreeMap::new();
    for (name, pin) in signals {
        if pin.index > MAX_INDEX {
            return Err(MapError::OutOfRange {
                side,
                signal: name.clone(),
                index: pin.index,
            });
        }
        if let Some(first) = seen.insert(pin.index, name) {
            return Err(MapError::Duplicate {
                side,
                index: pin.index,
                first: first.to_string(),
                second: name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference map written out in full, as an integrator would.
    pub(crate) const REFERENCE_TOML: &str = r#"
[inputs]
entry_closed = { index = 0 }
entry_open = { index = 1 }
exit_closed = { index = 2 }
exit_open = { index = 3 }
entry_safety = { index = 4 }
exit_safety = { index = 5 }
entry_beam = { index = 6 }
exit_beam = { index = 7 }
mantrap_beams = [{ index = 8 }, { index = 9 }, { index = 10 }]
occupancy = { index = 11 }
emergency = { index = 12, active_low = true }
tamper = { index = 13 }
entry_motor_fault = { index = 14 }
exit_motor_fault = { index = 15 }

[outputs]
entry_drive_open = { index = 0 }
entry_lock = { index = 1 }
exit_drive_open = { index = 2 }
exit_lock = { index = 3 }
entry_lamp_green = { index = 4 }
entry_lamp_red = { index = 5 }
exit_lamp_green = { index = 6 }
exit_lamp_red = { index = 7 }
buzzer = { index = 8 }
"#;

    #[test]
    fn reference_toml_is_the_default() {
        let m = IoMap::from_toml_str(REFERENCE_TOML).unwrap();
        assert_eq!(m, IoMap::default());
        assert_eq!(m.input_count(), 16);
        assert_eq!(m.output_count(), 9);
        assert!(IoMap::default().validate().is_ok());
        // An empty map is the reference map.
        assert_eq!(IoMap::from_toml_str("").unwrap(), IoMap::default());
    }

    #[test]
    fn duplicate_index_names_both_signals() {
        let text = REFERENCE_TOML.replace("exit_beam = { index = 7 }", "exit_beam = { index = 6 }");
        let e = IoMap::from_toml_str(&text).unwrap_err().to_string();
        assert!(
            e.contains("input index 6")
                && e.contains("inputs.entry_beam")
                && e.contains("inputs.exit_beam"),
            "{e}"
        );
        let text = REFERENCE_TOML.replace("buzzer = { index = 8 }", "buzzer = { index = 0 }");
        let e = IoMap::from_toml_str(&text).unwrap_err().to_string();
        assert!(
            e.contains("outputs.entry_drive_open") && e.contains("outputs.buzzer"),
            "{e}"
        );
    }

    #[test]
    fn missing_required_signal_is_named() {
        let text = REFERENCE_TOML.replace("emergency = { index = 12, active_low = true }\n", "");
        let e = IoMap::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("missing field `emergency`"), "{e}");
        let text = REFERENCE_TOML.replace("exit_lock = { index = 3 }\n", "");
        let e = IoMap::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("missing field `exit_lock`"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = REFERENCE_TOML.replace(
            "tamper = { index = 13 }",
            "tamper = { index = 13, invert = true }",
        );
        let e = IoMap::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("invert"), "{e}");
        let text = format!("{REFERENCE_TOML}\n[lamps]\nx = 1\n");
        let e = IoMap::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("lamps"), "{e}");
        let text = REFERENCE_TOML.replace("entry_beam =", "entry_bean =");
        let e = IoMap::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("entry_bean"), "{e}");
    }

    #[test]
    fn optional_signals_may_be_left_out() {
        let text = r#"
[inputs]
entry_closed = { index = 10 }
entry_open = { index = 11 }
exit_closed = { index = 12 }
exit_open = { index = 13 }
entry_safety = { index = 0, active_low = true }
exit_safety = { index = 1, active_low = true }
entry_beam = { index = 2 }
exit_beam = { index = 3 }
emergency = { index = 4, active_low = true }
"#;
        let m = IoMap::from_toml_str(text).unwrap();
        assert!(m.inputs.mantrap_beams.is_empty());
        assert_eq!(m.inputs.occupancy, None);
        assert_eq!(m.inputs.tamper, None);
        assert!(m.inputs.entry_safety.active_low);
        assert_eq!(m.input_count(), 14);
        // Outputs left out take the reference wiring.
        assert_eq!(m.outputs, OutputMap::default());
    }

    #[test]
    fn out_of_range_and_malformed_indices_are_refused() {
        let text = REFERENCE_TOML.replace("tamper = { index = 13 }", "tamper = { index = 5000 }");
        let e = IoMap::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("inputs.tamper") && e.contains("5000"), "{e}");
        let text = REFERENCE_TOML.replace("tamper = { index = 13 }", "tamper = { index = -1 }");
        assert!(IoMap::from_toml_str(&text).is_err());
        let text = REFERENCE_TOML.replace("tamper = { index = 13 }", "tamper = { index = \"13\" }");
        assert!(IoMap::from_toml_str(&text).is_err());
        let beams: Vec<String> = (0..40)
            .map(|i| format!("{{ index = {} }}", 100 + i))
            .collect();
        let text = REFERENCE_TOML.replace(
            "mantrap_beams = [{ index = 8 }, { index = 9 }, { index = 10 }]",
            &format!("mantrap_beams = [{}]", beams.join(", ")),
        );
        let e = IoMap::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("40 beams"), "{e}");
    }
}
