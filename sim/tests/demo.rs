//! `gate-sim demo` as a user starts it: the first stdout line is the console URL, the
//! status page answers, and travellers get cleared in (accelerated) real time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_prints_its_url_first_and_clears_travellers() {
    let child = Command::new(env!("CARGO_BIN_EXE_gate-sim"))
        .args(["demo", "--gates", "3", "--port", "0", "--speed", "40"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gate-sim demo starts");
    let mut child = Kill(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").expect("utf-8");
    let port: u16 = first
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.strip_suffix('/'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("first line is not the console URL: {first}"));
    // Keep draining the summary so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut cleared = 0;
    while Instant::now() < deadline && cleared == 0 {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(body) = get(port, "/v1/status") {
            let v: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
            let gates = v["gates"].as_array().expect("gates");
            if gates.len() == 3 {
                cleared = gates
                    .iter()
                    .map(|g| g["outcomes"]["cleared"].as_u64().unwrap_or(0))
                    .sum();
            }
        }
    }
    assert!(cleared > 0, "nobody was cleared within 25 s at 40x speed");
    let html = get(port, "/").expect("the page answers");
    for g in ["gate-01", "gate-02", "gate-03"] {
        assert!(html.contains(&format!("data-gate-id=\"{g}\"")), "{html}");
    }
    assert!(html.contains("data-gate-state=\""));
    assert!(get(port, "/nope").is_some_and(|b| b.contains("not found")));
}

#[test]
fn bad_demo_options_exit_2() {
    for args in [
        vec!["demo", "--speed", "0"],
        vec!["demo", "--gates", "0"],
        vec!["demo", "--speed", "fast"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_gate-sim"))
            .args(&args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}
