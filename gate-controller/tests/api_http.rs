//! The gate API over real TCP on 127.0.0.1:0, against a simulated gate.

mod common;

use common::*;
use gate_controller::api::link::WatchlistInfo;
use gate_controller::record::{AlarmKind, GateEvent, Mode, OperatorCommand, Prompt, Role};
use gate_controller::types::Time;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn unauthenticated_and_unknown_tokens_get_401_with_a_clear_message() {
    let g = TestGate::start("g-401", &config()).await;
    for path in ["/v1/status", "/v1/events", "/v1/whoami"] {
        let r = get(g.addr, path, None).await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(r
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")));
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap_or("")
                .contains("Authorization: Bearer"),
            "{}",
            r.body
        );
    }
    let r = post(
        g.addr,
        "/v1/commands",
        None,
        r#"{"command":"refer","reason":"x"}"#,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = get(g.addr, "/v1/status", Some("not-a-real-token")).await;
    assert_eq!(r.status, 401);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("invalid token"),
        "{}",
        r.body
    );
    assert!(g.sim.received().is_empty());
    // A valid token works, and says who it is.
    let r = get(g.addr, "/v1/whoami", Some(VIEWER)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"], "vera");
    assert_eq!(r.json()["role"], "viewer");
}

#[tokio::test]
async fn a_viewer_cannot_command_and_nothing_reaches_the_gate() {
    let g = TestGate::start("g-403", &config()).await;
    let r = post(
        g.addr,
        "/v1/commands",
        Some(VIEWER),
        r#"{"command":"open_exit","reason":"help"}"#,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let msg = r.json()["error"].as_str().unwrap_or("").to_owned();
    assert!(
        msg.contains("vera") && msg.contains("viewer") && msg.contains("operator"),
        "{msg}"
    );
    // An operator cannot issue a supervisor command either.
    let r = post(
        g.addr,
        "/v1/commands",
        Some(OPERATOR),
        r#"{"command":"emergency_reset","reason":"drill over"}"#,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(g.sim.received().is_empty());
}

#[tokio::test]
async fn an_operator_command_is_forwarded_with_user_and_reason() {
    let g = TestGate::start("g-cmd", &config()).await;
    let mut sse = SseStream::open(g.addr, "/v1/events", Some(VIEWER), None).await;
    assert_eq!(sse.status, 200);
    assert!(sse.next_named("status", WAIT).await.is_some());

    let r = post(
        g.addr,
        "/v1/commands",
        Some(OPERATOR),
        r#"{"command":"open_exit","reason":"wheelchair user needs assistance"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["accepted"], true);
    assert_eq!(j["user"], "olga");
    assert_eq!(j["gate_id"], "g-cmd");
    assert_eq!(j["detail"], "exit opened");
    let got = g.sim.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].command, OperatorCommand::OpenExit);
    assert_eq!(got[0].actor.user, "olga");
    assert_eq!(got[0].actor.role, Role::Operator);
    assert_eq!(got[0].actor.reason, "wheelchair user needs assistance");
    // The gate's command event reaches the live feed with who and why.
    let ev = sse.next_named("gate", WAIT).await.expect("command event");
    let e = &ev.json()["event"];
    assert_eq!(e["event"], "command");
    assert_eq!(e["actor"]["user"], "olga");
    assert_eq!(e["actor"]["reason"], "wheelchair user needs assistance");

    // Acknowledging carries the alarm kind; a supervisor may do operator things too.
    g.sim.raise_alarm(AlarmKind::Tailgating, "two persons");
    let r = post(
        g.addr,
        "/v1/commands",
        Some(SUPERVISOR),
        r#"{"command":"acknowledge_alarm","alarm":"tailgating","reason":"seen on camera"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(g.sim.status().snapshot.alarms.is_empty());
    let last = g.sim.received().pop().expect("ack received");
    assert_eq!(
        last.command,
        OperatorCommand::AcknowledgeAlarm {
            alarm: AlarmKind::Tailgating
        }
    );
    assert_eq!(last.actor.user, "sam");
}

#[tokio::test]
async fn a_command_the_gate_refuses_is_409_with_its_reason() {
    let g = TestGate::start("g-409", &config()).await;
    let r = post(
        g.addr,
        "/v1/commands",
        Some(OPERATOR),
        r#"{"command":"release_hold","reason":"cleared by officer"}"#,
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let j = r.json();
    assert_eq!(j["accepted"], false);
    assert_eq!(j["detail"], "the gate is not holding anyone");
    assert!(j["error"].as_str().unwrap_or("").contains("release_hold"));
    assert_eq!(
        g.sim.received().len(),
        1,
        "refused commands still reach the gate (and its journal)"
    );
}

#[tokio::test]
async fn bad_command_bodies_are_400_with_a_message_and_the_server_keeps_serving() {
    let g = TestGate::start("g-400", &config()).await;
    let cases: [(&[u8], &str); 9] = [
        (b"", "invalid command request"),
        (b"{", "invalid command request"),
        (b"[]", "invalid command request"),
        (b"null", "invalid command request"),
        (br#"{"command":"fly_away","reason":"x"}"#, "fly_away"),
        (br#"{"command":"refer"}"#, "reason"),
        (
            br#"{"command":"refer","reason":"   "}"#,
            "a reason is required",
        ),
        (br#"{"command":"acknowledge_alarm","reason":"x"}"#, "alarm"),
        (b"\xff\xfe{\"command\":1}", "invalid command request"),
    ];
    for (body, want) in cases {
        let r = request(g.addr, "POST", "/v1/commands", Some(OPERATOR), Some(body)).await;
        assert_eq!(
            r.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            r.body
        );
        let msg = r.json()["error"].as_str().unwrap_or("").to_owned();
        assert!(
            msg.contains(want),
            "{:?}: message {msg:?} lacks {want:?}",
            String::from_utf8_lossy(body)
        );
    }
    let long = format!(r#"{{"command":"refer","reason":"{}"}}"#, "x".repeat(600));
    let r = post(g.addr, "/v1/commands", Some(OPERATOR), &long).await;
    assert_eq!(r.status, 400);
    assert!(g.sim.received().is_empty());
    assert_eq!(get(g.addr, "/v1/status", Some(VIEWER)).await.status, 200);
}

#[tokio::test]
async fn events_resume_after_last_event_id_and_report_gaps() {
    let g = TestGate::start("g-sse", &config()).await;
    let mut sse = SseStream::open(g.addr, "/v1/events", Some(VIEWER), None).await;
    assert_eq!(sse.status, 200);
    let st = sse
        .next_named("status", WAIT)
        .await
        .expect("initial status");
    assert_eq!(st.json()["gate_id"], "g-sse");
    let a = g.sim.raise_alarm(AlarmKind::Tailgating, "two persons");
    let b = g
        .sim
        .set_step(Mode::Transit, "capturing", Prompt::PlaceThumb);
    let ea = sse.next_named("gate", WAIT).await.expect("event a");
    let eb = sse.next_named("gate", WAIT).await.expect("event b");
    assert_eq!((ea.id, eb.id), (Some(a), Some(b)));
    assert_eq!(ea.json()["event"]["event"], "alarm_raised");
    drop(sse);

    // While disconnected.
    let c = g.sim.raise_alarm(AlarmKind::DoorFault, "entry door stuck");
    let d = g.sim.set_step(Mode::Held, "held", Prompt::WaitForOfficer);

    let mut sse = SseStream::open(g.addr, "/v1/events", Some(VIEWER), Some(b)).await;
    let first = sse.next(WAIT).await.expect("first resumed event");
    assert_eq!(
        (first.event.as_str(), first.id),
        ("gate", Some(c)),
        "{first:?}"
    );
    let second = sse.next(WAIT).await.expect("second resumed event");
    assert_eq!((second.event.as_str(), second.id), ("gate", Some(d)));
    assert_eq!(second.json()["event"]["mode"], "held");
    let st = sse.next(WAIT).await.expect("status after the backlog");
    assert_eq!(st.event, "status");
    assert_eq!(st.json()["mode"], "held");
    assert_eq!(
        st.json()["alarms"],
        serde_json::json!(["tailgating", "door_fault"])
    );
    // Live again, no duplicates.
    let e = g.sim.publish(GateEvent::AlarmCleared {
        alarm: AlarmKind::DoorFault,
    });
    let next = sse.next_named("gate", WAIT).await.expect("live event");
    assert_eq!(next.id, Some(e));

    // An id this gate never issued (e.g. from before a restart) is a gap: reset + status.
    let mut sse = SseStream::open(g.addr, "/v1/events", Some(VIEWER), Some(9_999)).await;
    let r = sse.next(WAIT).await.expect("reset");
    assert_eq!(r.event, "reset");
    assert_eq!(sse.next(WAIT).await.expect("status").event, "status");
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_address() {
    let mut cfg = config();
    cfg.login_burst = 3;
    cfg.login_refill_per_minute = 1;
    let g = TestGate::start("g-429", &cfg).await;
    for i in 0..3 {
        let r = get(g.addr, "/v1/status", Some(&format!("guess-{i}"))).await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = get(g.addr, "/v1/status", Some("guess-4")).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|s| s >= 1));
    assert!(r.json()["error"]
        .as_str()
        .unwrap_or("")
        .contains("too many failed logins"));
    // The endpoint without auth still answers.
    assert_eq!(get(g.addr, "/healthz", None).await.status, 200);
}

#[tokio::test]
async fn status_and_metrics_report_counters_health_watchlist_and_backlog() {
    let g = TestGate::start("g-metrics", &config()).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    g.sim.update(|s| {
        s.counters.cleared = 7;
        s.counters.referred = 2;
        s.watchlist = Some(WatchlistInfo::new(42, Time(now - 90_000)));
        s.upstream_backlog = Some(3);
        s.devices = vec![gate_controller::api::link::DeviceHealth {
            device: gate_controller::types::Device::FingerprintScanner,
            healthy: false,
            detail: "no answer".into(),
        }];
    });
    let s = get(g.addr, "/v1/status", Some(VIEWER)).await.json();
    assert_eq!(s["counters"]["cleared"], 7);
    assert_eq!(s["watchlist"]["version"], 42);
    let age = s["watchlist"]["age_s"].as_u64().expect("age");
    assert!((90..100).contains(&age), "{age}");
    assert_eq!(s["upstream_backlog"], 3);
    assert_eq!(s["mode"], "ready");
    assert_eq!(s["prompt"], "present_document");
    assert_eq!(s["prompt_text"]["zh_hant"], "請將護照或身份證放在閱讀器上");

    let m = get(g.addr, "/metrics", None).await;
    assert_eq!(m.status, 200);
    for want in [
        r#"echannel_transits_total{gate="g-metrics",outcome="cleared"} 7"#,
        r#"echannel_transits_total{gate="g-metrics",outcome="referred"} 2"#,
        r#"echannel_watchlist_version{gate="g-metrics"} 42"#,
        r#"echannel_upstream_backlog{gate="g-metrics"} 3"#,
        r#"echannel_device_healthy{gate="g-metrics",device="fingerprint_scanner"} 0"#,
        "echannel_watchlist_age_seconds{gate=\"g-metrics\"} 9",
    ] {
        assert!(m.body.contains(want), "metrics lack {want}:\n{}", m.body);
    }
    gate_controller::api::metrics::record_step("biometric", 1.7);
    let m = get(g.addr, "/metrics", None).await;
    assert!(
        m.body
            .contains(r#"echannel_step_duration_seconds_bucket{step="biometric",le="2"} 1"#),
        "{}",
        m.body
    );
}

#[tokio::test]
async fn health_display_and_console_are_served_without_external_resources() {
    let g = TestGate::start("g-pages", &config()).await;
    assert_eq!(get(g.addr, "/healthz", None).await.status, 200);
    let r = get(g.addr, "/readyz", None).await;
    assert_eq!((r.status, r.json()["mode"].as_str()), (200, Some("ready")));
    let mut d = SseStream::open(g.addr, "/display/events", None, None).await;
    let p = d.next_named("prompt", WAIT).await.expect("prompt").json();
    assert_eq!(p["prompt"], "present_document");
    assert_eq!(p["text"]["zh_hans"], "请将护照或身份证放在阅读器上");
    g.sim
        .set_step(Mode::Transit, "capturing", Prompt::PlaceThumb);
    let p = d
        .next_named("prompt", WAIT)
        .await
        .expect("next prompt")
        .json();
    assert_eq!(p["text"]["en"], "Place your thumb on the scanner");
    for path in [
        "/",
        "/console.js",
        "/console.css",
        "/display",
        "/display.js",
        "/display.css",
    ] {
        let r = get(g.addr, path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            !r.body.contains("http://")
                && !r.body.contains("https://")
                && !r.body.contains("//cdn"),
            "{path} references an external resource"
        );
    }
    let c = get(g.addr, "/console/config.json", None).await.json();
    assert_eq!(c["gate_id"], "g-pages");
    assert_eq!(get(g.addr, "/nope", None).await.status, 404);
}
