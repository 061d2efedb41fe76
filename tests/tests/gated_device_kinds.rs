//! Every pair of real/simulated kinds for the document reader, the fingerprint scanner
//! and the lane I/O, as `gated --check` sees it: a combination that cannot work is
//! refused (exit 2) naming the key to change; the others are valid. Which valid ones run
//! a transit, and where that is tested, is in the table of `all_kind_combinations`.

mod support;

use std::path::Path;

/// The `[devices]` tables of one combination, with an MRZ source for a real reader.
fn devices(document: &str, fingerprint: &str, io: &str, dir: &Path) -> String {
    let mut t = String::new();
    match document {
        "sim" => t.push_str("[devices.document]\nkind = \"sim\"\n"),
        _ => t.push_str(&format!(
            "[devices.document]\nkind = \"pcsc\"\nreader = \"Virtual PCD\"\n\
             [devices.mrz]\nkind = \"serial\"\nport = \"{}\"\n",
            dir.join("ocr").display()
        )),
    }
    match fingerprint {
        "sim" => t.push_str("[devices.fingerprint]\nkind = \"sim\"\n"),
        _ => t.push_str(&format!(
            "[devices.fingerprint]\nkind = \"serial\"\nport = \"{}\"\n",
            dir.join("scanner").display()
        )),
    }
    match io {
        "sim" => t.push_str("[devices.io]\nkind = \"sim\"\n"),
        "modbus" => t.push_str("[devices.io]\nkind = \"modbus\"\naddress = \"127.0.0.1:5502\"\n"),
        _ => t.push_str(
            "[devices.io]\nkind = \"gpio\"\nchip = \"/dev/gpiochip0\"\n\
             [devices.io.map.inputs]\nentry_closed = { index = 0 }\nentry_open = { index = 1 }\n\
             exit_closed = { index = 2 }\nexit_open = { index = 3 }\nentry_safety = { index = 4 }\n\
             exit_safety = { index = 5 }\nentry_beam = { index = 6 }\nexit_beam = { index = 7 }\n\
             mantrap_beams = []\nemergency = { index = 8, active_low = true }\n\
             [devices.io.map.outputs]\nentry_drive_open = { index = 20 }\nentry_lock = { index = 21 }\n\
             exit_drive_open = { index = 22 }\nexit_lock = { index = 23 }\n\
             entry_lamp_green = { index = 24 }\nentry_lamp_red = { index = 25 }\n\
             exit_lamp_green = { index = 26 }\nexit_lamp_red = { index = 27 }\n",
        ),
    }
    let matcher = if document == "sim" { "sim" } else { "minutiae" };
    t.push_str(&format!("[matcher]\nkind = \"{matcher}\"\n"));
    t
}

/// Runs `gated --check` on a config with `devices`; its exit code and stderr.
fn check(dir: &Path, name: &str, devices: &str) -> (i32, String) {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[gate]\nid = \"kinds\"\nlane = \"resident\"\ndirection = \"arrival\"\n\
             [journal]\npath = \"j.sqlite\"\n{devices}"
        ),
    )
    .expect("write config");
    let out = support::bin("gated")
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run gated --check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn all_kind_combinations() {
    let dir = tempfile::tempdir().expect("dir");
    // (document, fingerprint, io) → None: valid (and where a transit runs with it), or
    // Some(the key gated names).
    let table: &[(&str, &str, &str, Option<&str>)] = &[
        // gated_status.rs, sim/tests (every scenario), the demo
        ("sim", "sim", "sim", None),
        // tests/tests/modbus_lane.rs: transits over Modbus TCP against gate-sim lane
        ("sim", "sim", "modbus", None),
        // tests/tests/gpio_lane.rs: gated up without its chip, out of service naming it;
        // no GPIO chip (nor the kernel's gpio-sim) exists on these machines, so no transit
        // runs on GPIO here: the scan cycle over GPIO lines is unit-tested with mock pins
        ("sim", "sim", "gpio", None),
        ("sim", "serial", "sim", Some("devices.fingerprint.kind")),
        ("sim", "serial", "modbus", Some("devices.fingerprint.kind")),
        ("sim", "serial", "gpio", Some("devices.fingerprint.kind")),
        ("pcsc", "sim", "sim", Some("devices.fingerprint.kind")),
        ("pcsc", "sim", "modbus", Some("devices.fingerprint.kind")),
        ("pcsc", "sim", "gpio", Some("devices.fingerprint.kind")),
        ("pcsc", "serial", "sim", Some("devices.io.kind")),
        // tests/tests/rig_lane.rs: gated against gate-sim rig, every device real
        ("pcsc", "serial", "modbus", None),
        // the same devices with the lane on a GPIO chip: the reader and scanner are the
        // rig's paths, the lane I/O is gpio_lane.rs's (no chip here, see above)
        ("pcsc", "serial", "gpio", None),
    ];
    for (doc, fp, io, want) in table {
        let name = format!("{doc}-{fp}-{io}");
        let (code, err) = check(dir.path(), &name, &devices(doc, fp, io, dir.path()));
        match want {
            None => assert_eq!(code, 0, "{name} should be valid: {err}"),
            Some(key) => {
                assert_eq!(code, 2, "{name} should be refused: {err}");
                assert!(err.contains(key), "{name}: the message names {key}: {err}");
            }
        }
    }
}

#[test]
fn a_real_reader_needs_one_mrz_source_and_the_minutiae_matcher() {
    let dir = tempfile::tempdir().expect("dir");
    let real = |extra: &str| {
        format!(
            "[devices.document]\nkind = \"pcsc\"\nreader = \"Virtual PCD\"\n{extra}\
             [devices.fingerprint]\nkind = \"serial\"\nport = \"/dev/ttyS9\"\n\
             [devices.io]\nkind = \"modbus\"\naddress = \"127.0.0.1:5502\"\n"
        )
    };
    let cases = [
        (
            "no-mrz",
            real("[matcher]\nkind = \"minutiae\"\n"),
            Some("devices.mrz"),
        ),
        (
            "two-mrz",
            real(
                "mrz_file = \"m.txt\"\n[matcher]\nkind = \"minutiae\"\n\
                 [devices.mrz]\nkind = \"file\"\npath = \"m.txt\"\n",
            ),
            Some("devices.document.mrz_file"),
        ),
        (
            "sim-mrz",
            real("[matcher]\nkind = \"minutiae\"\n[devices.mrz]\nkind = \"sim\"\n"),
            Some("devices.mrz.kind"),
        ),
        (
            "sim-matcher",
            real("[devices.mrz]\nkind = \"file\"\npath = \"m.txt\"\n"),
            Some("matcher.kind"),
        ),
        (
            "legacy-file",
            real("mrz_file = \"m.txt\"\n[matcher]\nkind = \"minutiae\"\n"),
            None,
        ),
        (
            "ocr-on-sim",
            "[devices.mrz]\nkind = \"serial\"\nport = \"/dev/ttyS8\"\n".to_string(),
            Some("devices.mrz.kind"),
        ),
    ];
    for (name, devices, want) in cases {
        let (code, err) = check(dir.path(), name, &devices);
        match want {
            None => assert_eq!(code, 0, "{name} should be valid: {err}"),
            Some(key) => {
                assert_eq!(code, 2, "{name} should be refused: {err}");
                assert!(err.contains(key), "{name}: the message names {key}: {err}");
            }
        }
    }
}
