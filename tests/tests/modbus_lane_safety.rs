//! `gated` driving a lane over Modbus TCP, as processes, through the lane's safety
//! inputs: `gate-sim lane --modbus --control` serves the simulated lane and takes
//! `emergency on|off`, `tamper on|off` and `state` on its stdin.
//!
//! - The emergency loop is cut on the lane: the scan that first reads the cut loop writes
//!   both doors open and unlocked, green arrows at both ends, red crosses off, buzzer on
//!   (read back from the simulated module: reads of the cut loop before the release = 1);
//!   the gate's mode is `emergency`, and a supervisor's reset is refused while the loop
//!   is still cut. Loop restored + reset → back in service, doors closed and locked.
//! - The cabinet tamper switch opens: out of service with a `device_fault` alarm naming
//!   the tamper switch; closed again → back in service by itself.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{
    bin, free_port, has_alarm, http, lane_io, spawn_gated, status, viewer_token, wait_status,
};

/// `gate-sim lane --modbus 127.0.0.1:PORT --control`, killed when dropped.
struct Lane {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Lane {
    fn start(port: u16, config: &std::path::Path) -> Lane {
        let mut child = bin("gate-sim")
            .args([
                "lane",
                "--modbus",
                &format!("127.0.0.1:{port}"),
                "--control",
            ])
            .arg("--config")
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("gate-sim lane starts");
        let stdin = child.stdin.take().expect("stdin");
        let out = child.stdout.take().expect("stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let first = answers
            .recv_timeout(Duration::from_secs(20))
            .expect("gate-sim lane prints its address");
        assert_eq!(first.trim(), format!("modbus 127.0.0.1:{port}"));
        Lane {
            child,
            stdin,
            answers,
        }
    }

    /// Sends one control line and returns its answer line.
    fn control(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("write to gate-sim lane");
        self.stdin.flush().unwrap();
        self.answers
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("no answer to {line:?}"))
    }

    fn state(&mut self) -> serde_json::Value {
        let a = self.control("state");
        serde_json::from_str(&a).unwrap_or_else(|e| panic!("state JSON: {e}: {a}"))
    }

    /// Polls the lane's state until `want` holds.
    fn wait_state(
        &mut self,
        within: Duration,
        what: &str,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            let v = self.state();
            if want(&v) {
                return v;
            }
            assert!(t0.elapsed() < within, "no {what} within {within:?}: {v}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bits(v: &serde_json::Value, side: &str, names: &[&str]) -> Vec<u64> {
    names
        .iter()
        .map(|n| v[side][*n].as_u64().unwrap_or(9))
        .collect()
}

const CYCLE_MS: u64 = 20;

#[test]
fn emergency_and_tamper_on_a_modbus_lane() {
    let dir = tempfile::tempdir().expect("tempdir");
    let modbus = free_port();
    let api = free_port();
    // Nobody arrives: the lane stays empty, so only the safety inputs move the gate.
    let lane_cfg = dir.path().join("lane.toml");
    std::fs::write(&lane_cfg, "seed = 3\nmean_arrival_gap_ms = 3600000\n").unwrap();
    let gate_cfg = dir.path().join("gate.toml");
    std::fs::write(
        &gate_cfg,
        format!(
            r#"[gate]
id = "safety-gate"
lane = "visitor"
direction = "arrival"

[journal]
# the host disk's usage is not what this test is about
disk_alarm_percent = 99.8
disk_stop_clearing_percent = 99.9
path = "journal.sqlite"

[devices.io]
kind = "modbus"
address = "127.0.0.1:{modbus}"
timeout_ms = 200
cycle_ms = {CYCLE_MS}

[sim]
mean_arrival_gap_ms = 3600000

[api]
listen = "127.0.0.1:{api}"

[log]
format = "json"
"#
        ),
    )
    .unwrap();
    let mut lane = Lane::start(modbus, &lane_cfg);
    let (_gated, rx) = spawn_gated(&gate_cfg, dir.path());
    let (mut sup, mut view) = (None, None);
    while sup.is_none() || view.is_none() {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("gated prints its local tokens");
        let tok = l.rsplit(' ').next().unwrap_or("").to_owned();
        if l.contains("local-supervisor (supervisor)") {
            sup = Some(tok);
        } else if l.contains("local-viewer (viewer)") {
            view = Some(tok);
        }
    }
    let (sup, view) = (sup.unwrap(), view.unwrap());
    wait_status(api, &view, Duration::from_secs(10), "ready", |v| {
        v["mode"] == "ready" && lane_io(v)["healthy"] == true
    });
    // The gate drives its idle lane: doors closed and locked, red crosses lit.
    let idle = lane.wait_state(Duration::from_secs(5), "idle outputs", |v| {
        v["coils"]["entry_lock"] == 1 && v["coils"]["exit_lock"] == 1
    });
    assert_eq!(
        bits(
            &idle,
            "coils",
            &["entry_lamp_red", "exit_lamp_red", "buzzer"]
        ),
        [1, 1, 0],
        "{idle}"
    );

    // ---- emergency: the loop is cut on the lane ----
    assert_eq!(lane.control("emergency on"), "ok emergency on");
    let v = lane.wait_state(Duration::from_secs(2), "the release", |v| {
        !v["emergency_release"]["released_at_ms"].is_null()
    });
    let r = &v["emergency_release"];
    let latency = r["released_at_ms"].as_u64().unwrap() - r["cut_at_ms"].as_u64().unwrap();
    eprintln!(
        "emergency: loop cut → both doors released in {latency} ms (lane time), {} read(s) of the cut loop before the release (cycle {CYCLE_MS} ms)",
        r["reads_before_release"]
    );
    // Released by the very scan that first read the cut loop.
    assert_eq!(r["reads_before_release"], 1, "{v}");
    assert_eq!(
        bits(
            &v,
            "coils",
            &[
                "entry_drive_open",
                "exit_drive_open",
                "entry_lock",
                "exit_lock",
                "entry_lamp_green",
                "exit_lamp_green",
                "entry_lamp_red",
                "exit_lamp_red",
                "buzzer",
            ]
        ),
        [1, 1, 0, 0, 1, 1, 0, 0, 1],
        "every door open and unlocked, lamps to exit: {v}"
    );
    let v = lane.wait_state(Duration::from_secs(5), "both doors open", |v| {
        v["inputs"]["entry_open"] == 1 && v["inputs"]["exit_open"] == 1
    });
    assert_eq!(v["inputs"]["emergency"], 0, "{v}");
    let s = wait_status(api, &view, Duration::from_secs(2), "emergency mode", |v| {
        v["mode"] == "emergency" && has_alarm(v, "emergency")
    });
    eprintln!("gate: {} / {}", s["mode"], s["step"]);

    // A reset while the loop is still cut is refused; the lane stays released.
    let (code, body) = http(
        api,
        "POST",
        "/v1/commands",
        &sup,
        r#"{"command":"emergency_reset","reason":"drill"}"#,
    );
    assert_eq!(code, 409, "{body}");
    std::thread::sleep(Duration::from_millis(5 * CYCLE_MS));
    let v = lane.state();
    assert_eq!(
        bits(&v, "coils", &["entry_drive_open", "exit_drive_open"]),
        [1, 1],
        "{v}"
    );
    assert_eq!(status(api, &view)["mode"], "emergency");

    // Loop restored, then a supervisor's reset: back in service, doors closed and locked.
    assert_eq!(lane.control("emergency off"), "ok emergency off");
    lane.wait_state(Duration::from_secs(2), "the loop restored", |v| {
        v["inputs"]["emergency"] == 1
    });
    // The gate must have seen the restored loop (debounced) before it takes the reset:
    // until then the reset is refused, so retry for a few cycles.
    let t0 = Instant::now();
    let reset = loop {
        let (code, body) = http(
            api,
            "POST",
            "/v1/commands",
            &sup,
            r#"{"command":"emergency_reset","reason":"drill over"}"#,
        );
        if code == 200 || t0.elapsed() > Duration::from_secs(2) {
            break (code, body);
        }
        std::thread::sleep(Duration::from_millis(CYCLE_MS));
    };
    assert_eq!(reset.0, 200, "{}", reset.1);
    eprintln!(
        "reset accepted {:?} after the loop was restored",
        t0.elapsed()
    );
    wait_status(
        api,
        &view,
        Duration::from_secs(10),
        "back in service",
        |v| v["mode"] == "ready" && !has_alarm(v, "emergency"),
    );
    let v = lane.wait_state(Duration::from_secs(10), "doors closed and locked", |v| {
        v["inputs"]["entry_closed"] == 1
            && v["inputs"]["exit_closed"] == 1
            && v["coils"]["entry_lock"] == 1
            && v["coils"]["exit_lock"] == 1
    });
    assert_eq!(
        bits(
            &v,
            "coils",
            &["entry_drive_open", "exit_drive_open", "buzzer"]
        ),
        [0, 0, 0],
        "{v}"
    );

    // ---- tamper: the cabinet opens ----
    assert_eq!(lane.control("tamper on"), "ok tamper on");
    let v = wait_status(api, &view, Duration::from_secs(2), "out of service", |v| {
        v["mode"] == "out_of_service" && has_alarm(v, "device_fault")
    });
    let detail = lane_io(&v)["detail"].as_str().unwrap_or("").to_owned();
    assert!(detail.contains("tamper"), "{v}");
    assert_eq!(lane.control("tamper off"), "ok tamper off");
    wait_status(api, &view, Duration::from_secs(2), "back in service", |v| {
        v["mode"] == "ready" && !has_alarm(v, "device_fault")
    });

    // A bad control line is answered, not fatal.
    assert!(lane.control("open sesame").starts_with("error: "));
}

/// The Modbus link is lost while a traveller stands in the mantrap before any decision:
/// the gate shows `out_of_service` with the alarm (not `transit`) for as long as the link
/// is down, the transit is journaled `aborted`, and once the module is back the traveller
/// is let out through the entry (the exit is never driven open) and the gate returns to
/// service.
#[test]
fn a_lost_link_with_an_undecided_traveller_inside_is_out_of_service_until_let_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let modbus = free_port();
    let api = free_port();
    let lane_cfg = dir.path().join("lane.toml");
    std::fs::write(
        &lane_cfg,
        "seed = 5\nspeed = 2.0\nmean_arrival_gap_ms = 500\n",
    )
    .unwrap();
    let gate_cfg = dir.path().join("gate.toml");
    std::fs::write(
        &gate_cfg,
        format!(
            r#"[gate]
id = "link-gate"
lane = "visitor"
direction = "arrival"

[journal]
# the host disk's usage is not what this test is about
disk_alarm_percent = 99.8
disk_stop_clearing_percent = 99.9
path = "journal.sqlite"

[devices.io]
kind = "modbus"
address = "127.0.0.1:{modbus}"
timeout_ms = 200
cycle_ms = {CYCLE_MS}

[sim]
seed = 7
speed = 1.0
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
    let lane = Lane::start(modbus, &lane_cfg);
    let (_gated, rx) = spawn_gated(&gate_cfg, dir.path());
    let view = viewer_token(&rx, Duration::from_secs(20));
    // Somebody walks in and is asked for their thumb: cut the link now.
    let v = wait_status(api, &view, Duration::from_secs(30), "a capture", |v| {
        v["step"] == "capturing"
    });
    let aborted_before = v["counters"]["aborted"].as_u64().unwrap_or(0);
    drop(lane);
    let v = wait_status(api, &view, Duration::from_secs(5), "the fault", |v| {
        v["mode"] == "out_of_service" && has_alarm(v, "device_fault")
    });
    eprintln!(
        "link cut with a traveller inside → {} / {}",
        v["mode"], v["step"]
    );
    assert_eq!(v["step"], "letting_out", "{v}");
    // Stays out of service while the link is down.
    std::thread::sleep(Duration::from_millis(1_000));
    let v = status(api, &view);
    assert_eq!(v["mode"], "out_of_service", "{v}");
    assert_eq!(
        v["counters"]["aborted"].as_u64().unwrap_or(0),
        aborted_before + 1,
        "{v}"
    );

    // The module is back: the traveller is let out through the entry; the exit stays
    // shut throughout; then back in service.
    let mut lane = Lane::start(modbus, &lane_cfg);
    let t0 = Instant::now();
    let mut entry_opened = false;
    loop {
        let s = lane.state();
        assert_eq!(
            s["coils"]["exit_drive_open"], 0,
            "the exit never opens: {s}"
        );
        entry_opened |= s["coils"]["entry_drive_open"] == 1;
        let v = status(api, &view);
        if v["mode"] == "ready" && entry_opened {
            eprintln!("link back → let out and in service in {:?}", t0.elapsed());
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "not let out and back in service: {v} / {s}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
