//! `gate-sim demo` as a user starts it: the first stdout line is the console URL (signing
//! in with a one-time operator token), every gate's API answers, and travellers get
//! cleared in (accelerated) real time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(base: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let hostport = base.strip_prefix("http://")?;
    let mut s = TcpStream::connect(hostport).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    out.split_once("\r\n\r\n")
        .map(|(_, body)| (code, body.to_string()))
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
    let dir = tempfile::tempdir().expect("journal dir");
    let child = Command::new(env!("CARGO_BIN_EXE_gate-sim"))
        .args([
            "demo", "--gates", "3", "--port", "0", "--speed", "10", "--dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gate-sim demo starts");
    let mut child = Kill(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").expect("utf-8");
    let (base, token) = first
        .split_once("/#token=")
        .unwrap_or_else(|| panic!("first line is not the console URL with a token: {first}"));
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    let (base, token) = (base.to_owned(), token.to_owned());
    // The header names the reference upstream the gates sync their journals to.
    let upstream = loop {
        let l = lines
            .next()
            .expect("the header names the upstream")
            .expect("utf-8");
        if let Some(i) = l.find("http://") {
            if l.contains("reference upstream") {
                break l[i..].trim_end_matches("/v1/admin/gates").to_owned();
            }
        }
    };
    // Keep draining the summary so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let (code, _) = get(&base, "/v1/status", None).expect("the API answers");
    assert_eq!(code, 401, "the API needs a token");
    let (_, cfg) = get(&base, "/console/config.json", None).expect("console config");
    let cfg: serde_json::Value = serde_json::from_str(&cfg).expect("JSON");
    let mut bases = vec![base.clone()];
    for p in cfg["peers"].as_array().expect("peers") {
        bases.push(p.as_str().expect("url").to_owned());
    }
    assert_eq!(bases.len(), 3, "{cfg}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut cleared = 0;
    let mut ids = Vec::new();
    while Instant::now() < deadline && cleared == 0 {
        std::thread::sleep(Duration::from_millis(500));
        cleared = 0;
        ids.clear();
        for b in &bases {
            if let Some((200, body)) = get(b, "/v1/status", Some(&token)) {
                let v: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
                ids.push(v["gate_id"].as_str().unwrap_or("").to_owned());
                cleared += v["counters"]["cleared"].as_u64().unwrap_or(0);
            }
        }
    }
    assert!(cleared > 0, "nobody was cleared within 40 s at 10x speed");
    ids.sort();
    assert_eq!(ids, ["gate-01", "gate-02", "gate-03"]);
    let (code, html) = get(&base, "/", None).expect("the console answers");
    assert_eq!(code, 200);
    assert!(html.contains("console.js"), "{html}");
    assert!(get(&base, "/nope", None).is_some_and(|(c, _)| c == 404));
    // Every gate's journal reaches the reference upstream, gap-free.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = get(&upstream, "/v1/admin/gates", None).expect("the upstream answers");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let gates = v["gates"].as_array().cloned().unwrap_or_default();
        let synced = gates
            .iter()
            .filter(|g| g["records"].as_u64().unwrap_or(0) > 0 && g["watermark"] == g["records"])
            .count();
        if synced == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every gate synced within 30 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
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
