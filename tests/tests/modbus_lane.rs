//! `gated` driving a lane over Modbus TCP, as processes: `gate-sim lane --modbus` serves
//! the simulated lane as an I/O module; `gated` with `[devices.io] kind = "modbus"` (and
//! its simulated reader and scanner) completes transits through it. Killing the lane
//! process takes the gate out of service with a device-fault alarm; a lane restarted on
//! the same port brings it back in service by itself, and transits complete again.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::bin;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

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

struct Gated(Child);

impl Drop for Gated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get_status(port: u16, token: &str) -> serde_json::Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("status JSON: {e}: {out}"))
}

/// Polls the status until `want` holds; panics with the last status after `within`.
fn wait_status(
    port: u16,
    token: &str,
    within: Duration,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> (serde_json::Value, Duration) {
    let t0 = Instant::now();
    loop {
        let v = get_status(port, token);
        if want(&v) {
            return (v, t0.elapsed());
        }
        assert!(t0.elapsed() < within, "no {what} within {within:?}: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cleared(v: &serde_json::Value) -> u64 {
    v["counters"]["cleared"].as_u64().unwrap_or(0)
}

fn lane_io(v: &serde_json::Value) -> serde_json::Value {
    v["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["device"] == "lane_io").cloned())
        .unwrap_or_default()
}

fn has_alarm(v: &serde_json::Value, kind: &str) -> bool {
    v["alarms"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == kind))
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
    let mut child = bin("gated")
        .arg("--config")
        .arg(&gate_cfg)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gated starts");
    let err = child.stderr.take().expect("stderr");
    let _gated = Gated(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let token = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("gated prints its local viewer token");
        if l.contains("local-viewer (viewer)") {
            break l.rsplit(' ').next().unwrap_or("").to_owned();
        }
    };

    // Transits complete through the Modbus lane.
    let (v, took) = wait_status(
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
    wait_status(api, &token, Duration::from_secs(15), "an idle gate", |v| {
        v["step"] == "ready"
    });
    lane.kill();
    let (v, to_fault) = wait_status(api, &token, Duration::from_secs(5), "the fault", |v| {
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
    let v = get_status(api, &token);
    assert_eq!(v["mode"], "out_of_service", "{v}");
    let before = cleared(&v);

    // The lane comes back on the same port: back in service by itself.
    let _lane = Lane::start(modbus, &lane_cfg);
    let (v, to_recover) = wait_status(api, &token, Duration::from_secs(10), "recovery", |v| {
        v["mode"] != "out_of_service" && !has_alarm(v, "device_fault")
    });
    eprintln!("lane back → in service in {to_recover:?}");
    assert_eq!(lane_io(&v)["healthy"], true, "{v}");
    let (v, took) = wait_status(
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
