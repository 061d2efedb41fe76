//! The operator console, the API and the traveller display against the demo's gates:
//! the runtime `gated` runs (real state machine, SQLite journal, device tasks) over the
//! simulator's lane, each gate serving its own API. Travellers, tailgaters and door
//! positions are the simulator's; nothing is staged in the gate.
//!
//! Headless Chromium through chromedriver (Debian's chromium + chromium-driver, installed
//! by `make deps`). Screenshots go to `target/test-artifacts/demo-*.png`.

#[path = "../../gate-controller/tests/common/browser.rs"]
mod browser;
#[path = "../../gate-controller/tests/common/port.rs"]
mod port;

use browser::*;
use device_drivers::sim::{Behaviour, Params, TravellerSpec};
use device_drivers::types::Door;
use fantoccini::{Client, Locator};
use gate_controller::prompt::Language;
use gate_controller::record::{AlarmKind, GateEvent, OperatorCommand, Prompt, Role};
use gate_controller::runtime::FeedKind;
use gate_sim::demo::{self, Demo, DemoOptions};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

async fn start_demo(gates: usize, lane: Params, dir: &Path) -> Demo {
    demo::start(DemoOptions {
        gates,
        port: 0,
        speed: 1.0,
        seed: 7,
        stream: false,
        officers: false,
        dir: Some(dir.to_owned()),
        lane,
    })
    .await
    .expect("the demo starts")
}

fn tile(id: &str) -> String {
    format!("document.querySelector('.tile[data-gate-id=\"{id}\"]')")
}

/// The command events in a gate's journal, oldest first.
fn journaled_commands(journal: &Path) -> Vec<GateEvent> {
    let conn = rusqlite::Connection::open(journal).expect("open the journal");
    let mut st = conn
        .prepare("SELECT body FROM events WHERE kind = 'command' ORDER BY id")
        .expect("query");
    let rows = st
        .query_map([], |r| r.get::<_, String>(0))
        .expect("rows")
        .map(|b| serde_json::from_str(&b.expect("row")).expect("a journaled event"))
        .collect();
    rows
}

/// Waits until the journal holds `n` command events (events are written after each batch).
async fn wait_commands(journal: &Path, n: usize) -> Vec<GateEvent> {
    let start = Instant::now();
    loop {
        let got = journaled_commands(journal);
        if got.len() >= n || start.elapsed() > T {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn confirm(c: &Client, reason: Option<&str>) {
    wait_for(
        c,
        "the confirmation dialog",
        "document.querySelector('#confirm').open",
        T,
    )
    .await;
    if let Some(r) = reason {
        c.find(Locator::Id("reason"))
            .await
            .expect("reason")
            .send_keys(r)
            .await
            .expect("type");
    }
    c.find(Locator::Id("confirm-ok"))
        .await
        .expect("confirm")
        .click()
        .await
        .expect("click confirm");
    wait_for(
        c,
        "the dialog to close",
        "!document.querySelector('#confirm').open",
        T,
    )
    .await;
}

/// Waits for the gate's machine to reach `step`.
async fn wait_step(g: &demo::DemoGate, step: &str, limit: Duration) {
    let start = Instant::now();
    let mut rx = g.handle.status.clone();
    while rx.borrow_and_update().machine.step != step {
        assert!(
            start.elapsed() < limit,
            "{} never reached {step} (now {})",
            g.id,
            rx.borrow().machine.step
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_every_demo_gate_alarms_within_a_second_and_commands_the_lane() {
    let _one = BROWSER.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    // Captures take 4 s, so an officer has time to open the exit for a traveller in the
    // mantrap whose thumb does not match.
    let lane = Params {
        capture_ms: (4_000, 4_000),
        ..Params::default()
    };
    let demo = start_demo(3, lane, dir.path()).await;
    let d = start_driver().await;
    let c = browser(&d).await;
    c.goto(&demo.console_url()).await.expect("open the console");
    wait_for(
        &c,
        "three ready tiles",
        "document.querySelectorAll('.tile[data-gate-state=\"ready\"]').length === 3",
        T,
    )
    .await;
    let mut ids = js(
        &c,
        "return [...document.querySelectorAll('[data-gate-id]')].map(e => e.dataset.gateId);",
    )
    .await
    .as_array()
    .expect("ids")
    .clone();
    ids.sort_by_key(|v| v.as_str().unwrap_or("").to_owned());
    assert_eq!(
        ids,
        vec![json!("gate-01"), json!("gate-02"), json!("gate-03")]
    );
    assert_eq!(
        js(&c, "return document.querySelector('#who').textContent;").await,
        json!("demo-operator (operator)")
    );
    assert_eq!(
        js(&c, "return location.hash;").await,
        json!(""),
        "the token is removed from the address bar"
    );
    screenshot(&c, "demo-console-ready.png").await;

    // A tailgater walks into gate-02: the alarm is on the console within a second of the
    // gate raising it.
    let g2 = &demo.gates[1];
    let mut feed = g2.handle.subscribe();
    g2.lane
        .add_traveller(TravellerSpec::new(Behaviour::Tailgater));
    let raised = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let item = feed.recv().await.expect("feed");
            if let FeedKind::Event {
                event:
                    GateEvent::AlarmRaised {
                        alarm: AlarmKind::Tailgating,
                        ..
                    },
            } = item.kind
            {
                return Instant::now();
            }
        }
    })
    .await
    .expect("the simulator's tailgater raises the alarm within 60 s");
    let alarm_li = format!(
        "{}?.querySelector('li[data-alarm=\"tailgating\"]')",
        tile("gate-02")
    );
    wait_for(&c, "the tailgating alarm on gate-02", &alarm_li, T).await;
    let seen = raised.elapsed();
    assert!(seen < Duration::from_secs(1), "the alarm took {seen:?}");
    eprintln!("tailgating alarm: raised by the gate → on the console in {seen:?}");
    assert_eq!(
        js(
            &c,
            &format!("return {}.classList.contains('alarm');", tile("gate-02"))
        )
        .await,
        json!(true)
    );
    screenshot(&c, "demo-console-tailgating.png").await;

    // The alarm stays until an operator acknowledges it, after the tailgater's transit too;
    // acknowledge it from the tile once the lane is clear (while two persons are still
    // inside, the gate raises it again at once).
    wait_step(g2, "ready", Duration::from_secs(60)).await;
    assert_eq!(
        js(&c, &format!("return !!({alarm_li});")).await,
        json!(true),
        "the alarm stays until acknowledged"
    );
    c.find(Locator::Css(
        ".tile[data-gate-id=\"gate-02\"] li[data-alarm=\"tailgating\"] button.ack",
    ))
    .await
    .expect("ack button")
    .click()
    .await
    .expect("click ack");
    confirm(&c, None).await;
    let start = Instant::now();
    while js(&c, &format!("return !!({alarm_li});")).await == json!(true) {
        assert!(
            start.elapsed() < T,
            "the alarm did not clear: journal {:?}, gate alarms {:?}",
            journaled_commands(&g2.journal),
            g2.handle.status.borrow().machine.alarms
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!g2
        .handle
        .status
        .borrow()
        .machine
        .alarms
        .contains(&AlarmKind::Tailgating));
    let cmds = wait_commands(&g2.journal, 1).await;
    match cmds.as_slice() {
        [GateEvent::Command {
            command,
            actor,
            accepted,
            ..
        }] => {
            assert_eq!(
                *command,
                OperatorCommand::AcknowledgeAlarm {
                    alarm: AlarmKind::Tailgating
                }
            );
            assert_eq!(actor.user, "demo-operator");
            assert_eq!(actor.role, Role::Operator);
            assert_eq!(actor.reason, "alarm acknowledged");
            assert!(*accepted);
        }
        other => panic!("expected one journaled acknowledgement, got {other:?}"),
    }

    // A traveller with the wrong thumb in gate-03: the officer opens the exit for them,
    // and the simulated exit door really opens.
    let g3 = &demo.gates[2];
    g3.lane
        .add_traveller(TravellerSpec::new(Behaviour::WrongFinger));
    wait_step(g3, "capturing", Duration::from_secs(60)).await;
    assert_eq!(g3.lane.door(Door::Exit).open_permille, 0);
    c.find(Locator::Css(".tile[data-gate-id=\"gate-03\"] select.cmd"))
        .await
        .expect("cmd")
        .select_by_value("open_exit")
        .await
        .expect("select");
    c.find(Locator::Css(".tile[data-gate-id=\"gate-03\"] button.send"))
        .await
        .expect("send")
        .click()
        .await
        .expect("click send");
    screenshot(&c, "demo-console-confirm.png").await;
    confirm(&c, Some("documents checked by hand")).await;
    let start = Instant::now();
    loop {
        let door = g3.lane.door(Door::Exit);
        if door.open_permille == 1000 {
            break;
        }
        assert!(
            start.elapsed() < T,
            "the simulated exit door did not open: {door:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "open_exit: simulated exit door fully open {:?} after the confirmation",
        start.elapsed()
    );
    screenshot(&c, "demo-console-exit-open.png").await;
    let cmds = wait_commands(&g3.journal, 1).await;
    match cmds.as_slice() {
        [GateEvent::Command {
            command,
            actor,
            accepted,
            ..
        }] => {
            assert_eq!(*command, OperatorCommand::OpenExit);
            assert_eq!(actor.user, "demo-operator");
            assert_eq!(actor.reason, "documents checked by hand");
            assert!(*accepted);
        }
        other => panic!("expected one journaled open_exit, got {other:?}"),
    }
    c.close().await.expect("close session");
    demo.stop(Duration::from_secs(30)).await;
}

/// One HTTP/1.1 request on a fresh connection: (status, JSON body).
fn http(base: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let host = base.strip_prefix("http://").expect("http URL");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_a_token_viewers_cannot_command_and_every_command_is_journaled() {
    let _one = BROWSER.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    let demo = start_demo(1, Params::default(), dir.path()).await;
    let g = &demo.gates[0];
    let base = g.url.clone();
    let op = demo.token(Role::Operator).to_owned();
    let viewer = demo.token(Role::Viewer).to_owned();

    let b = base.clone();
    let (code, body) = tokio::task::spawn_blocking(move || http(&b, "GET", "/v1/status", None, ""))
        .await
        .expect("join");
    assert_eq!(code, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("token"),
        "{body}"
    );
    let b = base.clone();
    let (code, body) = tokio::task::spawn_blocking(move || {
        http(
            &b,
            "POST",
            "/v1/commands",
            None,
            r#"{"command":"out_of_service","reason":"x"}"#,
        )
    })
    .await
    .expect("join");
    assert_eq!(code, 401, "{body}");

    // Three commands through the API: two carried out, one refused by the gate.
    let sent = [
        (
            r#"{"command":"out_of_service","reason":"cleaning the lane"}"#,
            200,
        ),
        (r#"{"command":"in_service","reason":"lane clean"}"#, 200),
        (
            r#"{"command":"release_hold","reason":"no one is held"}"#,
            409,
        ),
    ];
    for (body, want) in sent {
        let (b, t) = (base.clone(), op.clone());
        let (code, answer) =
            tokio::task::spawn_blocking(move || http(&b, "POST", "/v1/commands", Some(&t), body))
                .await
                .expect("join");
        assert_eq!(code, want, "{body} → {answer}");
        assert_eq!(answer["user"], json!("demo-operator"), "{answer}");
    }
    let cmds = wait_commands(&g.journal, 3).await;
    let seen: Vec<(String, String, String, bool)> = cmds
        .iter()
        .map(|e| match e {
            GateEvent::Command {
                command,
                actor,
                accepted,
                ..
            } => (
                serde_json::to_value(command).expect("json")["command"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                actor.user.clone(),
                actor.reason.clone(),
                *accepted,
            ),
            other => panic!("not a command: {other:?}"),
        })
        .collect();
    let want = |c: &str, r: &str, a: bool| (c.into(), "demo-operator".into(), r.into(), a);
    assert_eq!(
        seen,
        vec![
            want("out_of_service", "cleaning the lane", true),
            want("in_service", "lane clean", true),
            want("release_hold", "no one is held", false),
        ]
    );

    // A viewer in the browser: sees the gate, cannot command it (403 from the gate).
    let d = start_driver().await;
    let c = browser(&d).await;
    sign_in(&c, &base, &viewer).await;
    wait_for(
        &c,
        "the gate tile",
        &format!("{}?.dataset.gateState === 'ready'", tile("gate-01")),
        T,
    )
    .await;
    let disabled = js(
        &c,
        &format!(
            "const t = {}; return [t.querySelector('select.cmd').disabled, t.querySelector('button.send').disabled];",
            tile("gate-01")
        ),
    )
    .await;
    assert_eq!(disabled, json!([true, true]));
    let r = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/v1/commands', {method: 'POST', headers: {'Authorization': 'Bearer ' + arguments[0], 'Content-Type': 'application/json'},
               body: JSON.stringify({command: 'out_of_service', reason: 'try'})})
             .then(async r => done([r.status, (await r.json()).error]));",
            vec![json!(viewer)],
        )
        .await
        .expect("fetch from the page");
    assert_eq!(r[0], json!(403), "{r}");
    assert!(r[1].as_str().unwrap_or("").contains("viewer"), "{r}");
    screenshot(&c, "demo-console-viewer.png").await;
    assert_eq!(
        journaled_commands(&g.journal).len(),
        3,
        "a refused login or role journals nothing"
    );
    assert_eq!(g.handle.status.borrow().machine.mode.as_str(), "ready");
    c.close().await.expect("close session");
    demo.stop(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_follows_a_simulated_transit_step_by_step() {
    let _one = BROWSER.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    let lane = Params {
        capture_ms: (2_000, 2_000),
        ..Params::default()
    };
    let demo = start_demo(1, lane, dir.path()).await;
    let g = &demo.gates[0];
    let d = start_driver().await;
    let c = browser(&d).await;
    c.goto(&format!("{}/display", g.url))
        .await
        .expect("open the display");
    wait_for(
        &c,
        "the first prompt",
        "document.querySelector('#display').dataset.prompt === 'present_document'",
        T,
    )
    .await;
    // Record every prompt the page shows, with its three texts, as it changes.
    js(
        &c,
        "window.__shown = [];
         const d = document.querySelector('#display');
         const note = () => {
           const row = [d.dataset.prompt, ...['en','zh-hant','zh-hans'].map(id => document.getElementById(id).textContent),
                        document.querySelector('#picto svg') !== null];
           const last = window.__shown[window.__shown.length - 1];
           if (!last || JSON.stringify(last) !== JSON.stringify(row)) window.__shown.push(row);
         };
         note();
         new MutationObserver(note).observe(d, {subtree: true, childList: true, characterData: true, attributes: true});
         return true;",
    )
    .await;
    g.lane.add_traveller(TravellerSpec::new(Behaviour::Normal));
    // A normal transit: each of these prompts appears, in this order, and the screen is
    // captured while it shows.
    let expected = [
        Prompt::ReadingDocument,
        Prompt::Enter,
        Prompt::PlaceThumb,
        Prompt::Proceed,
        Prompt::PresentDocument,
    ];
    let mut from = 1usize;
    for (i, p) in expected.iter().enumerate() {
        let key = serde_json::to_value(p).expect("name");
        let key = key.as_str().expect("string");
        let start = Instant::now();
        loop {
            let shown = js(&c, "return window.__shown.map(r => r[0]);").await;
            let shown: Vec<String> = serde_json::from_value(shown).expect("names");
            if let Some(k) = shown.iter().skip(from).position(|s| s == key) {
                from += k + 1;
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the display never showed {key} after the earlier steps: {shown:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let now = js(
            &c,
            "return document.querySelector('#display').dataset.prompt;",
        )
        .await;
        if now == json!(key) {
            screenshot(&c, &format!("demo-display-{:02}-{key}.png", i + 1)).await;
        }
    }
    // Every prompt shown had its three texts and a pictogram.
    let shown = js(&c, "return window.__shown;").await;
    for row in shown.as_array().expect("rows") {
        let p: Prompt = serde_json::from_value(row[0].clone()).expect("a prompt name");
        assert_eq!(
            row,
            &json!([
                row[0],
                p.text(Language::En),
                p.text(Language::ZhHant),
                p.text(Language::ZhHans),
                true
            ]),
            "{shown}"
        );
    }
    eprintln!("display showed: {}", shown);
    // And the gate cleared the traveller.
    assert_eq!(g.handle.status.borrow().outcomes.cleared, 1);
    c.close().await.expect("close session");
    demo.stop(Duration::from_secs(30)).await;
}
