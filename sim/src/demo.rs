//! `gate-sim demo`: a whole simulated control point in real time. N gates, each with a
//! stream of generated travellers, stepped by the same [`Gate`] driver as `gate-sim run`
//! but against the wall clock (scaled by `--speed`). A live summary per gate goes to the
//! terminal about once a second, and a tiny HTTP listener serves the status of every
//! gate as HTML (`/`, tiles with `data-gate-id` / `data-gate-state`) and JSON
//! (`/v1/status`). Defaults are embedded; no files are needed. Runs until Ctrl-C.

use crate::gate::{Gate, Watchlist};
use crate::run::START;
use crate::scenario::OperatorPolicy;
use anyhow::Context;
use device_drivers::sim::{Behaviour, Params, Stream};
use device_drivers::types::Time;
use gate_controller::machine::{Config, Event};
use gate_controller::record::Outcome;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Mean time between arrivals at one gate.
const MEAN_GAP_MS: u64 = 18_000;
/// Longest real-time sleep between refreshes.
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// Refresh period of the terminal summary and the status page.
const REFRESH: Duration = Duration::from_secs(1);

/// The behaviour mix of the demo's travellers (weights per 1,000).
pub fn default_mix() -> Vec<(Behaviour, u32)> {
    vec![
        (Behaviour::Normal, 840),
        (Behaviour::Slow, 50),
        (Behaviour::PoorQuality, 20),
        (Behaviour::ExpiredDocument, 20),
        (Behaviour::WrongFinger, 15),
        (Behaviour::TurnsBack, 10),
        (Behaviour::Tailgater, 15),
        (Behaviour::StubbornTailgater, 5),
        (Behaviour::UnreadableChip, 7),
        (Behaviour::NeverEnters, 8),
        (Behaviour::WatchlistRefer, 5),
        (Behaviour::WatchlistHold, 5),
    ]
}

/// Status of one gate (the JSON of `/v1/status`).
#[derive(Clone, Debug, Serialize)]
pub struct GateStatus {
    /// Gate id.
    pub gate_id: String,
    /// Coarse state (`ready`, `transit`, `held`, ...).
    pub state: &'static str,
    /// Current step.
    pub step: &'static str,
    /// Prompt on the traveller display.
    pub prompt: String,
    /// Transits started.
    pub transits: u64,
    /// Outcome counts.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Active alarms.
    pub alarms: Vec<String>,
    /// Alarms raised so far, by kind.
    pub alarms_raised: BTreeMap<String, u64>,
    /// People queueing.
    pub queue: usize,
    /// People in the mantrap.
    pub occupancy: u8,
    /// Recent events, newest last.
    pub recent: Vec<String>,
}

/// Status of the whole control point.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    /// Simulated seconds since the start.
    pub sim_seconds: f64,
    /// Speed factor.
    pub speed: f64,
    /// Gates.
    pub gates: Vec<GateStatus>,
}

fn name_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn status_of(g: &Gate, start: Time) -> GateStatus {
    let snap = g.machine.snapshot();
    let outcomes = Outcome::ALL
        .iter()
        .enumerate()
        .map(|(k, o)| (o.as_str(), g.outcomes[k]))
        .collect();
    GateStatus {
        gate_id: format!("gate-{:02}", g.index + 1),
        state: snap.mode.as_str(),
        step: snap.step,
        prompt: name_of(&snap.prompt),
        transits: g.transits,
        outcomes,
        alarms: snap.alarms.iter().map(name_of).collect(),
        alarms_raised: g.alarms.iter().map(|(a, n)| (name_of(a), *n)).collect(),
        queue: g.world.queue_len(),
        occupancy: g.world.occupancy(),
        recent: g
            .recent
            .iter()
            .map(|(t, s)| format!("{:>8.1}s {s}", t.since(start) as f64 / 1000.0))
            .collect(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The status page: one tile per gate, refreshed by the browser every second.
pub fn render_html(status: &Status) -> String {
    let mut tiles = String::new();
    for g in &status.gates {
        let o = |k: &str| g.outcomes.get(k).copied().unwrap_or(0);
        tiles.push_str(&format!(
            "<section class=\"tile {state}\" data-gate-id=\"{id}\" data-gate-state=\"{state}\">\
             <h2>{id}</h2><p class=\"state\">{state} · {step}</p><p>display: {prompt}</p>\
             <p>cleared {c} · referred {r} · held {h} · aborted {a}</p>\
             <p>queue {q} · in lane {occ}</p><p class=\"alarms\">{alarms}</p></section>",
            id = escape(&g.gate_id),
            state = g.state,
            step = g.step,
            prompt = escape(&g.prompt),
            c = o("cleared"),
            r = o("referred"),
            h = o("held"),
            a = o("aborted"),
            q = g.queue,
            occ = g.occupancy,
            alarms = escape(&g.alarms.join(", ")),
        ));
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"1\"><title>echannel demo</title><style>\
         body{{font-family:sans-serif;margin:1em}}.grid{{display:flex;flex-wrap:wrap;gap:1em}}\
         .tile{{border:2px solid #888;border-radius:8px;padding:.5em 1em;min-width:14em}}\
         .ready{{border-color:#2a2}}.transit{{border-color:#28c}}.held{{border-color:#c22}}\
         .out_of_service,.emergency{{border-color:#e80}}.alarms{{color:#c22}}</style></head>\
         <body><h1>echannel simulated control point</h1><p>{:.0} s simulated at {}× speed · \
         <a href=\"/v1/status\">JSON</a></p><div class=\"grid\">{tiles}</div></body></html>",
        status.sim_seconds, status.speed
    )
}

fn respond(mut stream: TcpStream, status: &Arc<Mutex<Status>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let snapshot = match status.lock() {
        Ok(s) => s.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let (code, ctype, body) = match path {
        "/" | "/index.html" => ("200 OK", "text/html; charset=utf-8", render_html(&snapshot)),
        "/v1/status" | "/status.json" => (
            "200 OK",
            "application/json",
            serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".into()),
        ),
        "/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn serve(listener: TcpListener, status: Arc<Mutex<Status>>) {
    for stream in listener.incoming().flatten() {
        respond(stream, &status);
    }
}

fn print_summary(status: &Status, tty: bool, url: &str) {
    let mut out = String::new();
    if tty {
        out.push_str("\x1b[H\x1b[J");
        out.push_str(&format!("{url}\n"));
    }
    out.push_str(&format!(
        "t = {:>7.0} s simulated ({}x)   Ctrl-C to stop\n",
        status.sim_seconds, status.speed
    ));
    out.push_str(&format!(
        "{:<8} {:<15} {:<19} {:>7} {:>7} {:>8} {:>5} {:>7} {:>5}  alarms\n",
        "gate", "state", "step", "transit", "cleared", "referred", "held", "aborted", "queue"
    ));
    for g in &status.gates {
        let o = |k: &str| g.outcomes.get(k).copied().unwrap_or(0);
        out.push_str(&format!(
            "{:<8} {:<15} {:<19} {:>7} {:>7} {:>8} {:>5} {:>7} {:>5}  {}\n",
            g.gate_id,
            g.state,
            g.step,
            g.transits,
            o("cleared"),
            o("referred"),
            o("held"),
            o("aborted"),
            g.queue,
            g.alarms.join(",")
        ));
    }
    if !tty {
        out.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// Runs the demo until the process is stopped.
pub fn run(gates: usize, port: u16, speed: f64, seed: u64) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (try another --port)"))?;
    let port = listener.local_addr().context("no local address")?.port();
    let url = format!("http://127.0.0.1:{port}/");
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{url}").context("cannot write to stdout")?;
        stdout.flush().context("cannot write to stdout")?;
    }
    let status = Arc::new(Mutex::new(Status {
        speed,
        ..Status::default()
    }));
    let shared = Arc::clone(&status);
    std::thread::spawn(move || serve(listener, shared));

    let policy = OperatorPolicy {
        release_hold_after_s: Some(45.0),
        acknowledge_after_s: Some(20.0),
        in_service_after_door_fault_s: Some(60.0),
    };
    let watchlist = Watchlist::default();
    let mut lanes = Vec::with_capacity(gates);
    for g in 0..gates {
        let gseed = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(g as u64);
        let mut gate = Gate::new(
            g,
            Config::default(),
            Params::default(),
            gseed,
            START,
            2,
            1,
            6,
        )?;
        let first_gap = 500 + 1_500 * g as u64;
        gate.world.set_stream(
            START.plus(first_gap),
            Some(Stream {
                mean_gap_ms: MEAN_GAP_MS,
                mix: default_mix(),
            }),
        );
        lanes.push(gate);
    }
    let mut orders: BTreeMap<(Time, u64), (usize, Event)> = BTreeMap::new();
    let mut seq = 0u64;
    let tty = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut next_refresh = Instant::now();
    loop {
        let elapsed = started.elapsed().as_secs_f64() * speed;
        let now = START.plus((elapsed * 1000.0) as u64);
        // Everything due up to `now`, in time order.
        loop {
            let gate_t = lanes.iter().filter_map(Gate::wakeup).min();
            let order_t = orders.keys().next().map(|k| k.0);
            let t = match (gate_t, order_t) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if t > now {
                break;
            }
            for gate in lanes.iter_mut() {
                if gate.wakeup().is_some_and(|w| w <= t) {
                    gate.step(t, &watchlist);
                }
                for (due, ev) in gate.standing_orders(&policy) {
                    seq += 1;
                    orders.insert((due, seq), (gate.index, ev));
                }
            }
            while let Some(entry) = orders.first_entry() {
                if entry.key().0 > t {
                    break;
                }
                let (g, ev) = entry.remove();
                if let Some(gate) = lanes.get_mut(g) {
                    gate.feed(t, ev, &watchlist);
                }
            }
        }
        if Instant::now() >= next_refresh {
            next_refresh += REFRESH;
            let snapshot = Status {
                sim_seconds: now.since(START) as f64 / 1000.0,
                speed,
                gates: lanes.iter().map(|g| status_of(g, START)).collect(),
            };
            print_summary(&snapshot, tty, &url);
            match status.lock() {
                Ok(mut s) => *s = snapshot,
                Err(p) => *p.into_inner() = snapshot,
            }
        }
        // Sleep until the next wakeup (in wall time) or the next refresh.
        let next = lanes.iter().filter_map(Gate::wakeup).min();
        let wait = next.map_or(MAX_SLEEP, |t| {
            let ahead = t.since(now) as f64 / speed;
            Duration::from_secs_f64(ahead / 1000.0)
        });
        let until_refresh = next_refresh.saturating_duration_since(Instant::now());
        std::thread::sleep(wait.min(MAX_SLEEP).min(until_refresh));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_a_tile_per_gate_with_its_state() {
        let mut gate =
            Gate::new(0, Config::default(), Params::default(), 1, START, 2, 1, 4).expect("gate");
        gate.step(START.plus(20), &Watchlist::default());
        let status = Status {
            sim_seconds: 1.0,
            speed: 1.0,
            gates: vec![status_of(&gate, START)],
        };
        let html = render_html(&status);
        assert!(html.contains("data-gate-id=\"gate-01\""), "{html}");
        assert!(html.contains("data-gate-state=\"ready\""), "{html}");
        let json = serde_json::to_value(&status).expect("json");
        assert_eq!(json["gates"][0]["state"], "ready");
    }

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
