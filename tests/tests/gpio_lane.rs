//! `gated` with `[devices.io] kind = "gpio"`, as a process. No GPIO chip exists on the
//! development machines (and the kernel's `gpio-sim` cannot be loaded there: no module
//! tree, no configfs), so this checks what a gate does without its chip: `gated --check`
//! accepts the GPIO keys and refuses unknown or unusable ones naming them; `gated` with a
//! missing chip starts, goes out of service with a `device_fault` alarm naming the chip
//! path, and stays up and out of service (the scan cycle keeps requesting the chip; the
//! retry itself is unit-tested in `device_drivers::io::gpio`).

mod support;

use std::time::{Duration, Instant};
use support::{bin, free_port, has_alarm, lane_io, spawn_gated, status};

/// A pin map for a 40-pin header: inputs on lines 2..=17, outputs on 20..=28.
const MAP: &str = r#"
[devices.io.map.inputs]
entry_closed = { index = 2 }
entry_open = { index = 3 }
exit_closed = { index = 4 }
exit_open = { index = 5 }
entry_safety = { index = 6 }
exit_safety = { index = 7 }
entry_beam = { index = 8 }
exit_beam = { index = 9 }
mantrap_beams = [{ index = 10 }, { index = 11 }, { index = 12 }]
occupancy = { index = 13 }
emergency = { index = 14, active_low = true }
tamper = { index = 15 }

[devices.io.map.outputs]
entry_drive_open = { index = 20 }
entry_lock = { index = 21 }
exit_drive_open = { index = 22 }
exit_lock = { index = 23 }
entry_lamp_green = { index = 24 }
entry_lamp_red = { index = 25 }
exit_lamp_green = { index = 26 }
exit_lamp_red = { index = 27 }
buzzer = { index = 28 }
"#;

fn config(io: &str, api: u16) -> String {
    format!(
        r#"[gate]
id = "gpio-gate"
lane = "visitor"
direction = "arrival"

[journal]
# the host disk's usage is not what this test is about
disk_alarm_percent = 99.8
disk_stop_clearing_percent = 99.9
path = "journal.sqlite"

[devices.io]
{io}

[api]
listen = "127.0.0.1:{api}"

[log]
format = "json"
"#
    )
}

fn check(dir: &std::path::Path, text: &str) -> (bool, String) {
    let f = dir.join("check.toml");
    std::fs::write(&f, text).unwrap();
    let out = bin("gated")
        .args(["--check", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn gated_check_accepts_the_gpio_keys_and_refuses_bad_ones_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let good = "kind = \"gpio\"\nchip = \"/dev/gpiochip0\"\ncycle_ms = 10\ndebounce_scans = 3";
    let (ok, err) = check(dir.path(), &config(&format!("{good}\n{MAP}"), 1));
    assert!(ok, "{err}");
    assert!(
        !err.contains("not built"),
        "gpio is built by default: {err}"
    );

    let (ok, err) = check(
        dir.path(),
        &config(&format!("{good}\nlines = 40\n{MAP}"), 1),
    );
    assert!(!ok && err.contains("lines"), "unknown key: {err}");

    let (ok, err) = check(dir.path(), &config(good, 1));
    assert!(!ok && err.contains("devices.io.map"), "no map: {err}");

    let bad = "kind = \"gpio\"\nchip = \"/dev/gpiochip0\"\ncycle_ms = 0\ndebounce_scans = 0";
    let (ok, err) = check(dir.path(), &config(&format!("{bad}\n{MAP}"), 1));
    assert!(
        !ok && err.contains("devices.io.cycle_ms") && err.contains("devices.io.debounce_scans"),
        "{err}"
    );
    // One line used as an input and an output.
    let clash = MAP.replace("buzzer = { index = 28 }", "buzzer = { index = 14 }");
    let (ok, err) = check(dir.path(), &config(&format!("{good}\n{clash}"), 1));
    assert!(
        !ok && err.contains("devices.io.map") && err.contains("GPIO line 14"),
        "{err}"
    );
}

#[test]
fn gated_with_a_missing_gpio_chip_runs_out_of_service_with_an_alarm_naming_the_chip() {
    let dir = tempfile::tempdir().unwrap();
    let api = free_port();
    let chip = dir.path().join("gpiochip9");
    let io = format!("kind = \"gpio\"\nchip = \"{}\"\n{MAP}", chip.display());
    let cfg = dir.path().join("gate.toml");
    std::fs::write(&cfg, config(&io, api)).unwrap();
    let (mut gated, rx) = spawn_gated(&cfg, dir.path());
    let mut lines = Vec::new();
    let token = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("gated prints its local viewer token");
        lines.push(l.clone());
        if l.contains("local-viewer (viewer)") {
            break l.rsplit(' ').next().unwrap_or("").to_owned();
        }
    };
    let t0 = Instant::now();
    let v = loop {
        let v = status(api, &token);
        if v["mode"] == "out_of_service" && has_alarm(&v, "device_fault") {
            break v;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "no fault: {v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("missing chip → out of service in {:?}", t0.elapsed());
    let lane = lane_io(&v);
    assert_eq!(lane["healthy"], false, "{v}");
    let detail = lane["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(&format!("cannot open GPIO chip {}", chip.display())),
        "{v}"
    );
    // Still running and still out of service a while later (not exited, not recovered).
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(gated.0.try_wait().unwrap().is_none(), "gated exited");
    let v = status(api, &token);
    assert_eq!(v["mode"], "out_of_service", "{v}");
    assert!(has_alarm(&v, "device_fault"), "{v}");
    // The log names the chip too, once (no alarm storm while it keeps retrying).
    lines.extend(rx.try_iter());
    let faults = lines
        .iter()
        .filter(|l| l.contains("device fault") && l.contains("gpiochip9"))
        .count();
    assert_eq!(faults, 1, "{lines:#?}");
}
