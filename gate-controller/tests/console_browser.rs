//! The operator console and the traveller display in headless Chromium (fantoccini +
//! Debian's chromium and chromium-driver), against simulated gates on loopback.
//! Screenshots go to target/test-artifacts/.

mod common;

use common::browser::*;
use common::*;
use fantoccini::Locator;
use gate_controller::api::ApiConfig;
use gate_controller::prompt::Language;
use gate_controller::record::{AlarmKind, Mode, OperatorCommand, Prompt};
use serde_json::json;
use std::time::{Duration, Instant};

fn tile(id: &str) -> String {
    format!("document.querySelector('.tile[data-gate-id=\"{id}\"]')")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_lists_gates_raises_alarms_within_a_second_and_commands_with_a_reason() {
    let _one = BROWSER.lock().await;
    let p2 = TestGate::start("gate-02", &config()).await;
    let p3 = TestGate::start("gate-03", &config()).await;
    let mut cfg: ApiConfig = config();
    cfg.peers = vec![p2.url(), p3.url()];
    let g1 = TestGate::start("gate-01", &cfg).await;
    p3.sim
        .set_step(Mode::Transit, "capturing", Prompt::PlaceThumb);

    let d = start_driver().await;
    let c = browser(&d).await;
    sign_in(&c, &g1.url(), OPERATOR).await;
    let t = Duration::from_secs(10);
    wait_for(
        &c,
        "three tiles",
        "document.querySelectorAll('.tile').length === 3",
        t,
    )
    .await;
    wait_for(
        &c,
        "gate-01 ready",
        &format!("{}?.dataset.gateState === 'ready'", tile("gate-01")),
        t,
    )
    .await;
    wait_for(
        &c,
        "gate-02 ready",
        &format!("{}?.dataset.gateState === 'ready'", tile("gate-02")),
        t,
    )
    .await;
    wait_for(
        &c,
        "gate-03 in transit",
        &format!("{}?.dataset.gateState === 'transit'", tile("gate-03")),
        t,
    )
    .await;
    let ids = js(&c, "return [...document.querySelectorAll('[data-gate-id]')].map(e => e.dataset.gateId + '=' + e.dataset.gateState);").await;
    assert_eq!(
        ids,
        json!(["gate-01=ready", "gate-02=ready", "gate-03=transit"])
    );
    let prompt = js(
        &c,
        &format!(
            "return {}.querySelector('.prompt').textContent;",
            tile("gate-03")
        ),
    )
    .await;
    assert_eq!(prompt, json!(Prompt::PlaceThumb.text(Language::En)));
    assert_eq!(
        js(&c, "return document.querySelector('#who').textContent;").await,
        json!("olga (operator)")
    );
    screenshot(&c, "console-ready.png").await;

    // An alarm on a peer appears within one second, visibly.
    let raised = Instant::now();
    p2.sim
        .raise_alarm(AlarmKind::Tailgating, "two persons in the mantrap");
    let alarm_li = format!(
        "{}.querySelector('li[data-alarm=\"tailgating\"]')",
        tile("gate-02")
    );
    wait_for(
        &c,
        "the tailgating alarm on gate-02",
        &alarm_li,
        Duration::from_secs(5),
    )
    .await;
    let seen = raised.elapsed();
    assert!(
        seen < Duration::from_secs(1),
        "alarm took {seen:?} to appear"
    );
    assert_eq!(
        js(
            &c,
            &format!("return {}.classList.contains('alarm');", tile("gate-02"))
        )
        .await,
        json!(true)
    );
    // Filter by alarm: only gate-02 stays visible.
    c.find(Locator::Id("filter"))
        .await
        .expect("filter")
        .select_by_value("tailgating")
        .await
        .expect("select");
    let visible = js(
        &c,
        "return [...document.querySelectorAll('.tile:not(.hidden)')].map(e => e.dataset.gateId);",
    )
    .await;
    assert_eq!(visible, json!(["gate-02"]));
    screenshot(&c, "console-alarm.png").await;
    c.find(Locator::Id("filter"))
        .await
        .expect("filter")
        .select_by_value("all")
        .await
        .expect("select");

    // Acknowledge through the confirmation dialog.
    c.find(Locator::Css(
        ".tile[data-gate-id=\"gate-02\"] li[data-alarm=\"tailgating\"] button.ack",
    ))
    .await
    .expect("ack button")
    .click()
    .await
    .expect("click ack");
    wait_for(
        &c,
        "the confirmation dialog",
        "document.querySelector('#confirm').open",
        t,
    )
    .await;
    assert_eq!(
        js(&c, "return document.querySelector('#reason').value;").await,
        json!("alarm acknowledged")
    );
    c.find(Locator::Id("confirm-ok"))
        .await
        .expect("confirm")
        .click()
        .await
        .expect("click confirm");
    wait_for(&c, "the alarm to clear", &format!("!{alarm_li}"), t).await;
    let got = p2.sim.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].command,
        OperatorCommand::AcknowledgeAlarm {
            alarm: AlarmKind::Tailgating
        }
    );
    assert_eq!(
        (got[0].actor.user.as_str(), got[0].actor.reason.as_str()),
        ("olga", "alarm acknowledged")
    );

    // A command with a typed reason.
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
    wait_for(
        &c,
        "the confirmation dialog",
        "document.querySelector('#confirm').open",
        t,
    )
    .await;
    screenshot(&c, "console-confirm.png").await;
    c.find(Locator::Id("reason"))
        .await
        .expect("reason")
        .send_keys("traveller with a pram")
        .await
        .expect("type");
    c.find(Locator::Id("confirm-ok"))
        .await
        .expect("confirm")
        .click()
        .await
        .expect("click confirm");
    wait_for(
        &c,
        "the dialog to close",
        "!document.querySelector('#confirm').open",
        t,
    )
    .await;
    let got = p3.sim.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].command, OperatorCommand::OpenExit);
    assert_eq!(got[0].actor.reason, "traveller with a pram");

    // Traditional Chinese.
    c.find(Locator::Id("lang"))
        .await
        .expect("lang")
        .click()
        .await
        .expect("click lang");
    assert_eq!(
        js(&c, "return document.querySelector('h1').textContent;").await,
        json!("管制站")
    );
    assert_eq!(
        js(
            &c,
            &format!(
                "return {}.querySelector('.state').textContent;",
                tile("gate-01")
            )
        )
        .await,
        json!("就緒")
    );
    assert_eq!(
        js(
            &c,
            &format!(
                "return {}.querySelector('.prompt').textContent;",
                tile("gate-03")
            )
        )
        .await,
        json!(Prompt::PlaceThumb.text(Language::ZhHant))
    );
    screenshot(&c, "console-zh-hant.png").await;

    // A gate that goes away greys out, and comes back when it returns.
    let addr = p3.stop().await;
    wait_for(
        &c,
        "gate-03 offline",
        &format!("{}.dataset.gateState === 'offline'", tile("gate-03")),
        t,
    )
    .await;
    screenshot(&c, "console-offline.png").await;
    let p3 = TestGate::start_on("gate-03", &config(), addr).await;
    wait_for(
        &c,
        "gate-03 back",
        &format!("{}.dataset.gateState === 'ready'", tile("gate-03")),
        Duration::from_secs(15),
    )
    .await;
    drop(p3);
    c.close().await.expect("close session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_the_gates_but_cannot_command() {
    let _one = BROWSER.lock().await;
    let g = TestGate::start("gate-v", &config()).await;
    g.sim.raise_alarm(AlarmKind::DoorFault, "exit door stuck");
    let d = start_driver().await;
    let c = browser(&d).await;
    sign_in(&c, &g.url(), VIEWER).await;
    let t = Duration::from_secs(10);
    wait_for(
        &c,
        "the alarm",
        &format!(
            "{}?.querySelector('li[data-alarm=\"door_fault\"]')",
            tile("gate-v")
        ),
        t,
    )
    .await;
    let disabled = js(&c, &format!(
        "const t = {}; return [t.querySelector('select.cmd').disabled, t.querySelector('button.send').disabled, t.querySelector('button.ack').disabled];",
        tile("gate-v"))).await;
    assert_eq!(disabled, json!([true, true, true]));
    // Even bypassing the UI, the gate answers 403.
    let r = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/v1/commands', {method: 'POST', headers: {'Authorization': 'Bearer ' + arguments[0], 'Content-Type': 'application/json'},
               body: JSON.stringify({command: 'acknowledge_alarm', alarm: 'door_fault', reason: 'try'})})
             .then(async r => done([r.status, (await r.json()).error]));",
            vec![json!(VIEWER)],
        )
        .await
        .expect("fetch from the page");
    assert_eq!(r[0], json!(403), "{r}");
    assert!(r[1].as_str().unwrap_or("").contains("viewer"), "{r}");
    assert!(g.sim.received().is_empty());
    screenshot(&c, "console-viewer.png").await;

    // A wrong token is refused at the login box.
    c.execute("sessionStorage.clear();", vec![])
        .await
        .expect("clear");
    sign_in(&c, &g.url(), "wrong-token").await;
    wait_for(
        &c,
        "the login error",
        "document.querySelector('#login-error').textContent.includes('invalid token')",
        t,
    )
    .await;
    c.close().await.expect("close session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_shows_the_prompt_of_every_step_in_three_languages() {
    let _one = BROWSER.lock().await;
    let g = TestGate::start("gate-d", &config()).await;
    let d = start_driver().await;
    let c = browser(&d).await;
    c.goto(&format!("{}/display", g.url()))
        .await
        .expect("open display");
    let steps = [
        (Mode::Ready, "ready", Prompt::PresentDocument),
        (Mode::Transit, "reading_document", Prompt::ReadingDocument),
        (Mode::Transit, "entering", Prompt::Enter),
        (Mode::Transit, "closing_entry", Prompt::OnePersonOnly),
        (Mode::Transit, "capturing", Prompt::PlaceThumb),
        (Mode::Transit, "capturing", Prompt::TryAgain),
        (Mode::Transit, "committing", Prompt::PleaseWait),
        (Mode::Transit, "exiting", Prompt::Proceed),
        (Mode::Transit, "letting_out", Prompt::GoToCounter),
        (Mode::Held, "held", Prompt::WaitForOfficer),
        (Mode::OutOfService, "out_of_service", Prompt::OutOfService),
        (Mode::Emergency, "emergency", Prompt::Emergency),
    ];
    for (i, (mode, step, prompt)) in steps.into_iter().enumerate() {
        if i > 0 {
            g.sim.set_step(mode, step, prompt);
        }
        let key = serde_json::to_value(prompt).expect("prompt name");
        let key = key.as_str().expect("string");
        wait_for(
            &c,
            key,
            &format!("document.querySelector('#display').dataset.prompt === '{key}'"),
            Duration::from_secs(5),
        )
        .await;
        let texts = js(&c, "return ['en','zh-hant','zh-hans'].map(id => document.getElementById(id).textContent).concat([document.querySelector('#picto svg') !== null]);").await;
        assert_eq!(
            texts,
            json!([
                prompt.text(Language::En),
                prompt.text(Language::ZhHant),
                prompt.text(Language::ZhHans),
                true
            ]),
            "{key}"
        );
        screenshot(&c, &format!("display-{:02}-{key}.png", i + 1)).await;
    }
    c.close().await.expect("close session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tile_shows_the_watchlist_version_age_staleness_lists_and_the_upstream_backlog() {
    use gate_controller::api::link::{WatchlistInfo, WatchlistListInfo};
    use gate_controller::types::Time;
    let _one = BROWSER.lock().await;
    let g = TestGate::start("gate-w", &config()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let published = Time(now - 3 * 3_600_000);
    g.sim.update(|s| {
        s.watchlist = Some(WatchlistInfo {
            version: 7,
            published_at: published,
            stale: true,
            max_age_s: Some(3600),
            lists: vec![WatchlistListInfo {
                list_id: "national".into(),
                version: 7,
                published_at: published,
                documents: 1002,
                persons: 3,
                integrity: "ok".into(),
                stale: true,
            }],
        });
        s.upstream_backlog = Some(12);
    });
    let d = start_driver().await;
    let c = browser(&d).await;
    sign_in(&c, &g.url(), VIEWER).await;
    wait_for(
        &c,
        "the watchlist on the tile",
        &format!(
            "{}?.querySelector('.watchlist')?.textContent.includes('STALE')",
            tile("gate-w")
        ),
        Duration::from_secs(10),
    )
    .await;
    let got = js(
        &c,
        &format!(
            "const t = {}; const w = t.querySelector('.watchlist'); return [w.textContent, w.className, w.title, t.querySelector('.upstream').textContent];",
            tile("gate-w")
        ),
    )
    .await;
    assert_eq!(got[0], json!("v 7 · age 3 h · STALE"), "{got}");
    assert!(got[1].as_str().unwrap_or("").contains("dev-bad"), "{got}");
    let title = got[2].as_str().unwrap_or("");
    assert!(
        title.starts_with("national v 7 · age 3 h · 1002 + 3 persons · ok · STALE"),
        "{got}"
    );
    assert_eq!(got[3], json!("backlog 12"), "{got}");
    // Fresh again, and the upstream caught up.
    g.sim.update(|s| {
        if let Some(w) = s.watchlist.as_mut() {
            w.stale = false;
            w.lists[0].stale = false;
        }
        s.upstream_backlog = Some(0);
    });
    wait_for(
        &c,
        "the fresh watchlist",
        &format!(
            "{}?.querySelector('.upstream')?.textContent === 'backlog 0'",
            tile("gate-w")
        ),
        Duration::from_secs(10),
    )
    .await;
    let got = js(
        &c,
        &format!(
            "const w = {}.querySelector('.watchlist'); return [w.textContent, w.className];",
            tile("gate-w")
        ),
    )
    .await;
    assert_eq!(got, json!(["v 7 · age 3 h", "watchlist"]));
    c.close().await.expect("close session");
}
