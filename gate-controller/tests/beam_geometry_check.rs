//! `gated --check` and `[devices.io] first_mantrap_beam_m` (the beam body counter's lane
//! geometry): a value in range is accepted, anything else is refused naming the key.

use std::path::Path;
use std::process::Command;

/// `gated --check` on a config with this `[devices.io]` table: exit code and stderr.
fn check(dir: &Path, io: &str) -> (i32, String) {
    let p = dir.join("gate.toml");
    std::fs::write(
        &p,
        format!(
            "[gate]\nid = \"g\"\nlane = \"visitor\"\ndirection = \"arrival\"\n\
             [journal]\npath = \"journal.sqlite\"\n[devices.io]\n{io}\n"
        ),
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_gated"))
        .arg("--check")
        .arg("--config")
        .arg(&p)
        .output()
        .expect("gated runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_a_first_mantrap_beam_distance_in_range_and_rejects_others_by_name() {
    let dir = tempfile::tempdir().expect("dir");
    let modbus = "kind = \"modbus\"\naddress = \"127.0.0.1:1502\"\n";
    let (code, err) = check(dir.path(), &format!("{modbus}first_mantrap_beam_m = 0.8"));
    assert_eq!(code, 0, "{err}");
    for bad in ["0.05", "3.5", "nan"] {
        let (code, err) = check(dir.path(), &format!("{modbus}first_mantrap_beam_m = {bad}"));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            err.contains("devices.io.first_mantrap_beam_m"),
            "{bad}: {err}"
        );
    }
    let (code, err) = check(
        dir.path(),
        "kind = \"modbus\"\naddress = \"127.0.0.1:1502\"\nfirst_mantrap_beam_m = \"far\"",
    );
    assert_eq!(code, 2, "{err}");
    // A wrong type inside the `kind`-tagged table is named by its table (serde loses the
    // field's path there, for every `[devices.io]` key).
    assert!(
        err.contains("devices.io") && err.contains("expected f64"),
        "{err}"
    );
    let gpio = "kind = \"gpio\"\nchip = \"/dev/gpiochip0\"\nfirst_mantrap_beam_m = 9.0";
    let (code, err) = check(dir.path(), gpio);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("devices.io.first_mantrap_beam_m"), "{err}");
}
