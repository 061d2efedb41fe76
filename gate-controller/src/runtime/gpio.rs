//! `[devices.io] kind = "gpio"`: the lane's doors, beams, lamps and emergency input on
//! the lines of one Linux GPIO chip (`/dev/gpiochipN`, uAPI v2 through `gpiocdev`),
//! driven by the same embedded-hal scan cycle as the Modbus backend ([`ScanLaneIo`] over
//! a [`GpioImage`]); the pin map's numbers are the chip's line offsets (`docs/io.md`).
//!
//! Built by `runtime::devices` from `[devices.io]` alone. A chip that is missing at start, or whose lines fail later, is
//! a lane I/O `DeviceFault` naming the chip (out of service with an alarm); the scan
//! cycle requests the lines again (backoff 100 ms doubling to 2 s) and the gate comes
//! back by itself once they are granted.

#[cfg(feature = "gpio")]
use {
    super::devices::section::IoDevice,
    super::RuntimeError,
    crate::types::Device,
    device_drivers::io::gpio::{GpioImage, SharedGpioInput, SharedGpioOutput},
    device_drivers::io::{ScanLane, ScanLaneIo},
    std::path::PathBuf,
    std::time::Duration,
};

/// The lane I/O of a GPIO chip: the scan cycle over the chip's lines.
#[cfg(feature = "gpio")]
pub type GpioLaneIo = ScanLaneIo<GpioImage, SharedGpioInput, SharedGpioOutput>;

/// The driver settings of a `kind = "gpio"` lane I/O.
#[cfg(feature = "gpio")]
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The chip.
    pub chip: PathBuf,
    /// The scan cycle.
    pub cycle: Duration,
    /// Consecutive equal scans before an input change counts.
    pub debounce_scans: u8,
    /// The pin map.
    pub map: device_drivers::io::IoMap,
}

/// The driver settings of a `kind = "gpio"` lane I/O (`None` for other kinds).
#[cfg(feature = "gpio")]
pub fn settings(io: &IoDevice) -> Option<Settings> {
    match io {
        IoDevice::Gpio {
            chip,
            cycle_ms,
            debounce_scans,
            map,
            ..
        } => Some(Settings {
            chip: chip.clone(),
            cycle: Duration::from_millis(*cycle_ms),
            debounce_scans: *debounce_scans,
            map: map.clone().unwrap_or_default(),
        }),
        _ => None,
    }
}

/// Starts the scan cycle of a `kind = "gpio"` lane I/O on the current tokio runtime.
/// The chip need not be there yet: until its lines are granted, the lane I/O reports a
/// fault naming it. Fails only on a map that cannot be laid out on one chip.
#[cfg(feature = "gpio")]
pub fn lane_io(io: &IoDevice) -> Result<Option<GpioLaneIo>, RuntimeError> {
    let Some(s) = settings(io) else {
        return Ok(None);
    };
    let err = |e: device_drivers::io::IoError| RuntimeError::Device {
        device: Device::LaneIo,
        detail: format!("devices.io: {e}"),
    };
    tracing::info!(
        chip = %s.chip.display(),
        cycle_ms = s.cycle.as_millis() as u64,
        "GPIO lane I/O"
    );
    let image = GpioImage::new(&s.chip, s.map.clone()).map_err(err)?;
    let lane = ScanLane::new(s.map, image.input_pins(), image.output_pins())
        .map_err(err)?
        .with_debounce_scans(s.debounce_scans);
    Ok(Some(ScanLaneIo::spawn(image, lane, s.cycle)))
}

#[cfg(all(test, feature = "gpio"))]
mod tests {
    use super::super::devices::section::map_problem;
    use super::*;

    const MAP: &str = "[map.inputs]\nentry_closed = { index = 2 }\nentry_open = { index = 3 }\n\
        exit_closed = { index = 4 }\nexit_open = { index = 5 }\nentry_safety = { index = 6 }\n\
        exit_safety = { index = 7 }\nentry_beam = { index = 8 }\nexit_beam = { index = 9 }\n\
        mantrap_beams = []\nemergency = { index = 10, active_low = true }\n\
        [map.outputs]\nentry_drive_open = { index = 20 }\nentry_lock = { index = 21 }\n\
        exit_drive_open = { index = 22 }\nexit_lock = { index = 23 }\n\
        entry_lamp_green = { index = 24 }\nentry_lamp_red = { index = 25 }\n\
        exit_lamp_green = { index = 26 }\nexit_lamp_red = { index = 27 }\n";

    #[test]
    fn settings_follow_the_configuration() {
        let d: IoDevice = toml::from_str(&format!(
            "kind = \"gpio\"\nchip = \"/dev/gpiochip3\"\ncycle_ms = 10\n{MAP}"
        ))
        .unwrap();
        let s = settings(&d).unwrap();
        assert_eq!(s.chip, PathBuf::from("/dev/gpiochip3"));
        assert_eq!(s.cycle, Duration::from_millis(10));
        assert_eq!(s.debounce_scans, 2);
        assert_eq!(s.map.input_count(), 11);
        assert_eq!(map_problem(Some(&s.map)), None);
        assert!(settings(&IoDevice::Sim).is_none());
    }

    #[test]
    fn a_missing_or_colliding_map_is_a_problem() {
        let p = map_problem(None).unwrap();
        assert!(p.contains("needs its own pin map"), "{p}");
        let p = map_problem(Some(&device_drivers::io::IoMap::default())).unwrap();
        assert!(p.contains("GPIO line 0"), "{p}");
    }

    #[tokio::test]
    async fn a_missing_chip_is_a_lane_fault_naming_it() {
        use device_drivers::devices::LaneIo;
        let d: IoDevice = toml::from_str(&format!(
            "kind = \"gpio\"\nchip = \"/nonexistent/gpiochip5\"\n{MAP}"
        ))
        .unwrap();
        let mut io = lane_io(&d).unwrap().unwrap();
        let f = tokio::time::timeout(Duration::from_secs(2), io.next_input())
            .await
            .expect("a report")
            .unwrap_err();
        assert!(
            f.to_string()
                .contains("cannot open GPIO chip /nonexistent/gpiochip5"),
            "{f}"
        );
    }
}
