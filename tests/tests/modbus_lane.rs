//! `gated` driving a lane over Modbus TCP, as processes: `gate-sim lane --modbus` serves
//! the simulated lane as an I/O module; `gated` with `[devices.io] kind = "modbus"` (and
//! its simulated reader and scanner) completes transits through it. Killing the lane
//! process takes the gate out of service with a device-fault alarm; a lane restarted on
//! the same port brings it back in service by itself, and transits complete again.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::{
    bin, free_port, has_alarm, lane_io, spawn_gated, status, viewer_token, wait_status_timed,
};

/// `gate-sim lane --modbus 127.0.0.1:PORT --config LANE`, killed when dropped.
struct Lane(Child);

impl Lane {
    fn start(port: u16, config: &Path) -> Lane {
        let mut child = bin("gate-sim")
            .args(["lane", "--modbus", &format!("127.0.0.1:{port}"), "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("gate-sim lane starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("gate-sim lane prints its address");
        assert_eq!(first.trim(), format!("modbus 127.0.0.1:{port}"));
        Lane(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cleared(v: &serde_json::Value) -> u64 {
    v["counters"]["cleared"].as_u64().unwrap_or(0)
}

#[test]
fn gated_drives_a_modbus_lane_goes_out_of_service_when_the_link_is_cut_and_recovers() {
    let t_start = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let modbus = free_port();
    let api = free_port();
    let lane_cfg = dir.path().join("lane.toml");
    std::fs::write(
        &lane_cfg,
        "seed = 5\nspeed = 3.0\nmean_arrival_gap_ms = 500\n",
    )
    .unwrap();
    let gate_cfg = dir.path().join("gate.toml");
    std::fs::write(
        &gate_cfg,
        format!(
            r#"[gate]
id = "modbus-gate"
lane = "visitor"
direction = "arrival"

[timeouts]
notice_ms = 200

[journal]
# the host disk's usage is not what this test is about
disk_alarm_percent = 99.8
disk_stop_clearing_percent = 99.9
path = "journal.sqlite"

[devices.io]
kind = "modbus"
address = "127.0.0.1:{modbus}"
unit_id = 1
timeout_ms = 200
cycle_ms = 20

[sim]
seed = 7
speed = 3.0
mean_arrival_gap_ms = 1000

[sim.mix]
normal = 1

[api]
listen = "127.0.0.1:{api}"

[log]
format = "json"
"#
        ),
    )
    .unwrap();
    let out = bin("gated")
        .args(["--check", "--config"])
        .arg(&gate_cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut lane = Lane::start(modbus, &lane_cfg);
    let (_gated, rx) = spawn_gated(&gate_cfg, dir.path());
    let token = viewer_token(&rx, Duration::from_secs(20));

    // Transits complete through the Modbus lane.
    let (v, took) = wait_status_timed(
        api,
        &token,
        Duration::from_secs(15),
        "two cleared transits",
        |v| cleared(v) >= 2,
    );
    eprintln!(
        "two transits cleared over Modbus after {took:?}: {}",
        v["counters"]
    );
    assert_eq!(lane_io(&v)["healthy"], true, "{v}");

    // Cut the link between transits (nobody inside): out of service with an alarm.
    wait_status_timed(api, &token, Duration::from_secs(15), "an idle gate", |v| {
        v["step"] == "ready"
    });
    lane.kill();
    let (v, to_fault) = wait_status_timed(api, &token, Duration::from_secs(5), "the fault", |v| {
        v["mode"] == "out_of_service" && has_alarm(v, "device_fault")
    });
    eprintln!("link cut → out of service with alarm in {to_fault:?}");
    assert_eq!(lane_io(&v)["healthy"], false, "{v}");
    assert!(
        lane_io(&v)["detail"]
            .as_str()
            .unwrap_or("")
            .contains("Modbus"),
        "{v}"
    );
    // It stays out of service while the link is down.
    std::thread::sleep(Duration::from_millis(1_000));
    let v = status(api, &token);
    assert_eq!(v["mode"], "out_of_service", "{v}");
    let before = cleared(&v);

    // The lane comes back on the same port: back in service by itself.
    let _lane = Lane::start(modbus, &lane_cfg);
    let (v, to_recover) =
        wait_status_timed(api, &token, Duration::from_secs(10), "recovery", |v| {
            v["mode"] != "out_of_service" && !has_alarm(v, "device_fault")
        });
    eprintln!("lane back → in service in {to_recover:?}");
    assert_eq!(lane_io(&v)["healthy"], true, "{v}");
    let (v, took) = wait_status_timed(
        api,
        &token,
        Duration::from_secs(15),
        "another transit",
        |v| cleared(v) > before,
    );
    eprintln!(
        "another transit cleared {took:?} after recovery: {}",
        v["counters"]
    );
    eprintln!("whole test: {:?}", t_start.elapsed());
}
