//! `gated` with `[api] listen`: the API is served for the gate it runs, with one-time
//! local tokens when none are configured; commands reach the state machine and land in the
//! gate's journal; `--check` refuses a non-loopback API without users.

mod common;
use common::free_port;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn gated() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gated"))
}

fn write_config(dir: &Path, api: &str) -> std::path::PathBuf {
    let p = dir.join("gate.toml");
    std::fs::write(
        &p,
        format!(
            "[gate]\nid = \"api-gate\"\nlane = \"visitor\"\ndirection = \"arrival\"\n\
             drain_timeout_ms = 20000\n\n[journal]\npath = \"journal.sqlite\"\n\
             disk_alarm_percent = 99.8\ndisk_stop_clearing_percent = 99.9\n\n\
             [sim]\nmean_arrival_gap_ms = 3600000\n\n[log]\nformat = \"json\"\n\n[api]\n{api}\n"
        ),
    )
    .unwrap();
    p
}

fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        code,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

#[test]
fn check_refuses_a_public_api_without_users_naming_api_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(dir.path(), "listen = \"0.0.0.0:8080\"");
    let out = gated()
        .arg("--check")
        .arg("--config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api.tokens"), "{err}");
    let p = write_config(
        dir.path(),
        &format!(
            "listen = \"0.0.0.0:8080\"\n[[api.tokens]]\nuser = \"olga\"\nrole = \"operator\"\nsha256 = \"{}\"\n",
            "ab".repeat(32)
        ),
    );
    let out = gated()
        .arg("--check")
        .arg("--config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = write_config(dir.path(), "listen = \"127.0.0.1:8080\"\nsecret = 1");
    let out = gated()
        .arg("--check")
        .arg("--config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("api.secret"));
}

#[test]
fn gated_serves_its_gate_and_journals_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let p = write_config(dir.path(), &format!("listen = \"127.0.0.1:{port}\""));
    let mut child = gated()
        .arg("--config")
        .arg(&p)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut supervisor = None;
    let mut viewer = None;
    let mut url = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while supervisor.is_none() || viewer.is_none() {
        let l = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("gated prints its sign-in lines");
        if let Some(u) = l.strip_prefix("gated: http://") {
            url = Some(u.to_owned());
        }
        let tok = l.rsplit(' ').next().unwrap_or("").to_owned();
        if l.contains("local-supervisor (supervisor)") {
            supervisor = Some(tok);
        } else if l.contains("local-viewer (viewer)") {
            viewer = Some(tok);
        }
    }
    assert_eq!(url.as_deref(), Some(format!("127.0.0.1:{port}/").as_str()));
    let (sup, view) = (supervisor.unwrap(), viewer.unwrap());
    assert_eq!(sup.len(), 64);

    let (code, _) = http(port, "GET", "/v1/status", None, "");
    assert_eq!(code, 401);
    let (code, body) = http(port, "GET", "/v1/status", Some(&view), "");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["gate_id"], "api-gate");
    assert_eq!(v["devices"].as_array().map(Vec::len), Some(3), "{v}");
    // No signed store and no [upstream]: both fields are null.
    assert!(v["watchlist"].is_null(), "{v}");
    assert!(v["upstream_backlog"].is_null(), "{v}");
    let cmd = r#"{"command":"out_of_service","reason":"replace the scanner glass"}"#;
    let (code, body) = http(port, "POST", "/v1/commands", Some(&view), cmd);
    assert_eq!(code, 403, "{body}");
    let (code, body) = http(port, "POST", "/v1/commands", Some(&sup), cmd);
    assert_eq!(code, 200, "{body}");
    let (_, body) = http(port, "GET", "/v1/status", Some(&view), "");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["mode"], "out_of_service", "{v}");
    let (code, body) = http(
        port,
        "POST",
        "/v1/commands",
        Some(&sup),
        r#"{"command":"in_service","reason":"done"}"#,
    );
    assert_eq!(code, 200, "{body}");

    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("gated did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    // Tokens never reach the log.
    let logged: Vec<String> = rx.try_iter().collect();
    assert!(logged.iter().all(|l| !l.contains(&sup)));
    let conn = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
    let bodies: Vec<String> = conn
        .prepare("SELECT body FROM events WHERE kind = 'command' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let first: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(first["command"]["command"], "out_of_service", "{first}");
    assert_eq!(first["actor"]["user"], "local-supervisor");
    assert_eq!(first["actor"]["reason"], "replace the scanner glass");
    assert_eq!(first["accepted"], true);
}
