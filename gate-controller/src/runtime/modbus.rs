//! `[devices.io] kind = "modbus"`: the lane's doors, beams, lamps and emergency input on
//! a Modbus TCP remote I/O module, driven by the embedded-hal scan cycle
//! ([`ScanLaneIo`] over a [`ModbusImage`]); register map in `docs/io.md`.
//!
//! Built by `runtime::devices` from `[devices.io]` alone, whatever the other devices are.
//!
//! A lost link (refused connection, timeout, exception) reaches the machine as a lane I/O
//! `DeviceFault` — out of service with an alarm — and the recovery as
//! `LaneInput::Recovered` followed by the current input states.

use super::devices::section::IoDevice;
use super::RuntimeError;
use crate::types::Device;
use device_drivers::io::modbus::{ModbusConfig, ModbusImage, ModbusInputPin, ModbusOutputPin};
use device_drivers::io::{IoMap, ScanLane, ScanLaneIo};
use std::time::Duration;

/// The lane I/O of a Modbus module: the scan cycle over the module's process image.
pub type ModbusLaneIo = ScanLaneIo<ModbusImage, ModbusInputPin, ModbusOutputPin>;

/// The driver settings of a `kind = "modbus"` lane I/O.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The module and its requests.
    pub module: ModbusConfig,
    /// The scan cycle.
    pub cycle: Duration,
    /// Consecutive equal scans before an input change counts.
    pub debounce_scans: u8,
    /// The pin map.
    pub map: IoMap,
}

/// The driver settings of a `kind = "modbus"` lane I/O (`None` for other kinds).
pub fn settings(io: &IoDevice) -> Option<Settings> {
    match io {
        IoDevice::Modbus {
            address,
            unit_id,
            timeout_ms,
            cycle_ms,
            debounce_scans,
            map,
            ..
        } => {
            let map = map.clone().unwrap_or_default();
            let cfg = ModbusConfig {
                unit_id: *unit_id,
                timeout: Duration::from_millis(*timeout_ms),
                inputs: u16::try_from(map.input_count()).unwrap_or(u16::MAX),
                outputs: u16::try_from(map.output_count()).unwrap_or(u16::MAX),
                ..ModbusConfig::new(address.clone())
            };
            Some(Settings {
                module: cfg,
                cycle: Duration::from_millis(*cycle_ms),
                debounce_scans: *debounce_scans,
                map,
            })
        }
        _ => None,
    }
}

/// Starts the scan cycle of a `kind = "modbus"` lane I/O on the current tokio runtime.
/// The module need not be reachable yet: until it is, the lane I/O reports a fault.
pub fn lane_io(io: &IoDevice) -> Result<Option<ModbusLaneIo>, RuntimeError> {
    let Some(Settings {
        module: cfg,
        cycle,
        debounce_scans,
        map,
    }) = settings(io)
    else {
        return Ok(None);
    };
    tracing::info!(
        address = %cfg.address,
        unit_id = cfg.unit_id,
        timeout_ms = cfg.timeout.as_millis() as u64,
        cycle_ms = cycle.as_millis() as u64,
        "Modbus TCP lane I/O"
    );
    let image = ModbusImage::new(cfg);
    let lane = ScanLane::new(map, image.input_pins(), image.output_pins())
        .map_err(|e| RuntimeError::Device {
            device: Device::LaneIo,
            detail: format!("devices.io: {e}"),
        })?
        .with_debounce_scans(debounce_scans);
    Ok(Some(ScanLaneIo::spawn(image, lane, cycle)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_follow_the_configuration() {
        let d: IoDevice = toml::from_str(
            "kind = \"modbus\"\naddress = \"10.0.0.7:1502\"\nunit_id = 3\ntimeout_ms = 150\n",
        )
        .unwrap();
        let s = settings(&d).unwrap();
        let cfg = &s.module;
        assert_eq!(cfg.address, "10.0.0.7:1502");
        assert_eq!(cfg.unit_id, 3);
        assert_eq!(cfg.timeout, Duration::from_millis(150));
        assert_eq!(s.cycle, Duration::from_millis(20));
        assert_eq!(s.debounce_scans, 2);
        assert_eq!((cfg.inputs, cfg.outputs), (16, 9));
        assert_eq!(s.map, IoMap::default());
        assert!(settings(&IoDevice::Sim).is_none());
    }

    #[test]
    fn a_pin_map_sizes_the_exchange() {
        let d: IoDevice = toml::from_str(
            "kind = \"modbus\"\naddress = \"h:502\"\ndebounce_scans = 1\n\
             [map.outputs]\nentry_drive_open = { index = 0 }\nentry_lock = { index = 1 }\n\
             exit_drive_open = { index = 2 }\nexit_lock = { index = 3 }\n\
             entry_lamp_green = { index = 4 }\nentry_lamp_red = { index = 5 }\n\
             exit_lamp_green = { index = 6 }\nexit_lamp_red = { index = 7 }\n\
             buzzer = { index = 11 }\n",
        )
        .unwrap();
        let s = settings(&d).unwrap();
        assert_eq!((s.module.inputs, s.module.outputs), (16, 12));
        assert_eq!(s.debounce_scans, 1);
    }

    #[test]
    fn unknown_keys_in_the_modbus_table_are_refused() {
        let e =
            toml::from_str::<IoDevice>("kind = \"modbus\"\naddress = \"10.0.0.7:502\"\nunit = 3\n")
                .unwrap_err();
        assert!(e.to_string().contains("unit"), "{e}");
    }
}
