//! The serial fingerprint scanner of `[devices.fingerprint] kind = "serial"`: builds the
//! `device_drivers` driver from its configuration. The driver opens the port lazily and
//! reopens it by path after it vanished, so a missing port at start-up is a device fault
//! (the gate starts out of service and recovers when the scanner appears), not a start-up
//! failure.

use super::devices::section::FingerprintDevice;
use device_drivers::devices::FingerprintScanner;
use device_drivers::fingerprint::serial::{SerialScanner, SerialSettings};
use std::time::Duration;

/// The driver settings of a `kind = "serial"` scanner (`None` for other kinds).
pub fn settings(device: &FingerprintDevice) -> Option<SerialSettings> {
    match device {
        FingerprintDevice::Serial {
            port,
            baud,
            reply_timeout_ms,
            retries,
        } => Some(SerialSettings {
            port: port.clone(),
            baud: *baud,
            reply_timeout: Duration::from_millis(*reply_timeout_ms),
            retries: *retries,
        }),
        FingerprintDevice::Sim => None,
    }
}

/// The scanner of a `kind = "serial"` configuration (`None` for other kinds).
pub fn scanner(device: &FingerprintDevice) -> Option<Box<dyn FingerprintScanner>> {
    settings(device).map(|s| Box::new(SerialScanner::new(s)) as Box<dyn FingerprintScanner>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_follow_the_configuration() {
        let d: FingerprintDevice =
            toml::from_str("kind = \"serial\"\nport = \"/dev/ttyUSB3\"\nreply_timeout_ms = 250\n")
                .unwrap();
        let s = settings(&d).unwrap();
        assert_eq!(s.port, std::path::Path::new("/dev/ttyUSB3"));
        assert_eq!(s.baud, 115_200);
        assert_eq!(s.reply_timeout, Duration::from_millis(250));
        assert_eq!(s.retries, 2);
        assert!(settings(&FingerprintDevice::Sim).is_none());
    }
}
