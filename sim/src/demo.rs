//! `gate-sim demo`: a whole simulated control point in real time, with the operator
//! console.
//!
//! Each of the N gates is the very runtime `gated` runs ([`gate_controller::runtime::Gate`]:
//! the real state machine, a SQLite journal, the device tasks) over the simulator's lane
//! (`[devices] kind = "sim"`, the seeded [`device_drivers::sim::World`] stepped in real time
//! × `--speed`), with a stream of generated travellers. Each gate serves its own API,
//! console and traveller display ([`gate_controller::api`]) on 127.0.0.1: the first gate on
//! `--port`, the others on free ports, every gate listing the others as console peers.
//!
//! The first line on stdout is the console URL; its fragment carries a one-time operator
//! token, so opening it signs in (the next lines name every demo user and token). Then a
//! summary per gate follows about once a second. Simulated officers act on alarms the
//! console user leaves alone (`--no-officers` leaves everything to the console).
//! Every gate syncs its journal to a reference upstream server ([`crate::reference`]) on
//! a loopback port, over plain HTTP, exactly as `gated` does with `[upstream]`; the summary
//! shows each gate's upload backlog. Journals and the upstream's database go to a fresh
//! temporary directory, removed at exit (`--dir` keeps them).
//! Runs until Ctrl-C; the gates then finish their transits.

use crate::reference::{server, store::Store};
use crate::scenario::OperatorPolicy;
use anyhow::Context;
use device_drivers::sim::{Behaviour, Params, Stream};
use gate_controller::api::config::{random_token, LocalTokens};
use gate_controller::api::{runtime_link, ApiConfig};
use gate_controller::config::GateConfig;
use gate_controller::record::{Actor, AlarmKind, GateEvent, OperatorCommand, Role};
use gate_controller::runtime::clock::MonotonicWallClock;
use gate_controller::runtime::sim::section::SimSection;
use gate_controller::runtime::sim::{devices_with_lane, SimLane};
use gate_controller::runtime::{FeedKind, Gate, GateHandle, RunReport};
use gate_controller::upstream::service::UpstreamSync;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Mean time between arrivals at one gate (simulated milliseconds).
pub const MEAN_GAP_MS: u64 = 18_000;
/// Refresh period of the terminal summary.
const REFRESH: Duration = Duration::from_secs(1);
/// How long the gates get to finish their transits at exit.
const DRAIN: Duration = Duration::from_secs(20);

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

/// How to start a demo.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Number of gates (`gate-01` ...).
    pub gates: usize,
    /// Port of the first gate's API and console on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Simulated time runs this many times faster than real time.
    pub speed: f64,
    /// Seed of the traveller streams.
    pub seed: u64,
    /// Generate travellers (false: only those a driver adds through [`DemoGate::lane`]).
    pub stream: bool,
    /// Simulated officers act on alarms left alone (see [`officer_policy`]).
    pub officers: bool,
    /// Where the journals go; `None`: a fresh temporary directory removed at exit.
    pub dir: Option<PathBuf>,
    /// The lane model of every gate.
    pub lane: Params,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            gates: 4,
            port: 8080,
            speed: 1.0,
            seed: 1,
            stream: true,
            officers: true,
            dir: None,
            lane: Params::default(),
        }
    }
}

/// When the simulated officers act on an alarm (simulated seconds after it was raised).
pub fn officer_policy() -> OperatorPolicy {
    OperatorPolicy {
        release_hold_after_s: Some(45.0),
        acknowledge_after_s: Some(20.0),
        in_service_after_door_fault_s: Some(60.0),
    }
}

/// Counters the summary shows that the gate's status does not carry.
#[derive(Clone, Debug, Default)]
pub struct GateStats {
    /// Transits started since the demo started.
    pub transits: u64,
    /// Alarms raised since the demo started, by kind.
    pub alarms: BTreeMap<AlarmKind, u64>,
}

/// One running demo gate.
pub struct DemoGate {
    /// Gate id.
    pub id: String,
    /// Base URL of its API, console and display (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The runtime's handle (status, live feed, commands).
    pub handle: GateHandle,
    /// The simulated lane: add travellers, inject faults, look at the doors.
    pub lane: SimLane,
    /// Its journal (SQLite).
    pub journal: PathBuf,
    /// Counters for the summary.
    pub stats: Arc<Mutex<GateStats>>,
    /// Its journal's sync to the reference upstream.
    pub sync: UpstreamSync,
    task: JoinHandle<RunReport>,
}

/// A running demo.
pub struct Demo {
    /// The gates, in order.
    pub gates: Vec<DemoGate>,
    /// The demo users: `(user, role, token)`; the first is the operator.
    pub tokens: LocalTokens,
    /// Base URL of the reference upstream server (`http://127.0.0.1:PORT`).
    pub upstream_url: String,
    /// The reference upstream's store (what it has received).
    pub upstream: Store,
    stop: watch::Sender<bool>,
    helpers: Vec<JoinHandle<()>>,
    _tmp: Option<TempDir>,
}

impl Demo {
    /// The token of the first user with `role`.
    pub fn token(&self, role: Role) -> &str {
        self.tokens
            .users
            .iter()
            .find(|(_, r, _)| *r == role)
            .map(|(_, _, t)| t.as_str())
            .unwrap_or("")
    }

    /// The console URL (the first gate's), signing in as the operator.
    pub fn console_url(&self) -> String {
        let base = self.gates.first().map(|g| g.url.as_str()).unwrap_or("");
        format!("{base}/#token={}", self.token(Role::Operator))
    }

    /// Stops every gate (each finishes or safely aborts its transit) and waits up to
    /// `drain` for them.
    pub async fn stop(self, drain: Duration) -> Vec<Option<RunReport>> {
        let _ = self.stop.send(true);
        let mut out = Vec::new();
        for g in self.gates {
            out.push(
                tokio::time::timeout(drain, g.task)
                    .await
                    .ok()
                    .and_then(Result::ok),
            );
            g.sync.stop(Duration::from_secs(2)).await;
        }
        for h in self.helpers {
            h.abort();
        }
        out
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gate_config(
    id: &str,
    journal: &Path,
    upstream: &str,
    seed: u64,
    o: &DemoOptions,
) -> anyhow::Result<GateConfig> {
    let text = format!(
        "[gate]\nid = \"{id}\"\nlane = \"visitor\"\ndirection = \"arrival\"\n\n[journal]\npath = {:?}\n\n[upstream]\nurl = {upstream:?}\nheartbeat_ms = 5000\n",
        journal.display().to_string()
    );
    let mut cfg = GateConfig::parse(&text, Path::new("<demo>"))
        .with_context(|| format!("the embedded configuration of {id}"))?;
    cfg.sim = SimSection {
        seed,
        mean_arrival_gap_ms: MEAN_GAP_MS,
        speed: o.speed,
        mix: default_mix().into_iter().collect(),
        lane: o.lane.clone(),
    };
    let problems = cfg.problems();
    if let Some(p) = problems.first() {
        anyhow::bail!(
            "the demo configuration of {id} is invalid: {}: {}",
            p.key,
            p.problem
        );
    }
    Ok(cfg)
}

/// Starts the gates and their APIs on the current tokio runtime.
pub async fn start(o: DemoOptions) -> anyhow::Result<Demo> {
    anyhow::ensure!(o.gates >= 1, "at least one gate is needed");
    let (dir, tmp) = match &o.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create the journal directory {}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let d = std::env::temp_dir().join(format!(
                "echannel-demo-{}-{}",
                std::process::id(),
                &random_token()[..8]
            ));
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            (d.clone(), Some(TempDir(d)))
        }
    };
    let tokens = LocalTokens {
        users: vec![
            ("demo-operator".into(), Role::Operator, random_token()),
            ("demo-supervisor".into(), Role::Supervisor, random_token()),
            ("demo-viewer".into(), Role::Viewer, random_token()),
        ],
    };
    // Bind every listener first: the peers must be known before any API starts.
    let mut listeners = Vec::with_capacity(o.gates);
    for g in 0..o.gates {
        let port = if g == 0 { o.port } else { 0 };
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port} (try another --port)"))?;
        let addr = l.local_addr().context("no local address")?;
        listeners.push((l, format!("http://{addr}")));
    }
    let urls: Vec<String> = listeners.iter().map(|(_, u)| u.clone()).collect();
    let (stop, stop_rx) = watch::channel(false);
    let mut gates = Vec::with_capacity(o.gates);
    let mut helpers = Vec::new();
    // The reference upstream (plain HTTP on loopback; the gates' journals sync to it).
    let upstream = Store::open_sqlite(&dir.join("upstream.sqlite"))
        .context("cannot open the reference upstream's database")?;
    let up_listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot listen for the reference upstream on 127.0.0.1")?;
    let upstream_url = format!(
        "http://{}",
        up_listener.local_addr().context("no local address")?
    );
    {
        let app = server::App::new(upstream.clone(), None);
        let mut rx = stop_rx.clone();
        helpers.push(tokio::spawn(async move {
            let stopped = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = server::serve_plain(up_listener, app, stopped).await {
                tracing::error!("reference upstream stopped: {e:#}");
            }
        }));
    }
    for (g, (listener, url)) in listeners.into_iter().enumerate() {
        let id = format!("gate-{:02}", g + 1);
        let journal = dir.join(format!("{id}.sqlite"));
        let seed = o
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(g as u64);
        let cfg = gate_config(&id, &journal, &upstream_url, seed, &o)?;
        let clock = MonotonicWallClock::start();
        let (devices, lane) = devices_with_lane(&cfg.sim, clock)
            .with_context(|| format!("cannot set up the simulated lane of {id}"))?;
        let settings = cfg
            .settings()
            .map_err(|p| anyhow::anyhow!("the demo configuration of {id} is invalid: {p:?}"))?;
        let (gate, handle) =
            Gate::build(&settings, devices, clock).with_context(|| format!("cannot build {id}"))?;
        let section = cfg
            .upstream
            .as_ref()
            .context("the demo configuration has an [upstream] section")?;
        let sync = UpstreamSync::spawn(
            section,
            &id,
            cfg.gate.direction,
            &journal,
            Some(handle.status.clone()),
            Some(cfg.watchlist.version),
        )
        .with_context(|| format!("cannot start the upstream sync of {id}"))?;
        if o.stream {
            // Stagger the first arrivals so the gates do not move in step.
            let first = Duration::from_millis(500 + 1_500 * g as u64);
            let lane2 = lane.clone();
            let speed = o.speed;
            helpers.push(tokio::spawn(async move {
                tokio::time::sleep(first.div_f64(speed)).await;
                lane2.set_stream(Some(Stream {
                    mean_gap_ms: MEAN_GAP_MS,
                    mix: default_mix(),
                }));
            }));
        } else {
            lane.set_stream(None);
        }
        let mut api = ApiConfig::new(listener.local_addr().context("no local address")?);
        for (user, role, token) in &tokens.users {
            api = api.with_token(user, *role, token);
        }
        api.peers = urls.iter().filter(|u| **u != url).cloned().collect();
        let mut rx = stop_rx.clone();
        let task = tokio::spawn(gate.run(async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        helpers.push(runtime_link::spawn_server_with(
            &handle,
            listener,
            &api,
            runtime_link::Extras {
                upstream_backlog: Some(sync.backlog()),
            },
        ));
        let stats = Arc::new(Mutex::new(GateStats::default()));
        helpers.push(tokio::spawn(watch_gate(
            handle.clone(),
            stats.clone(),
            o.officers.then(officer_policy),
            o.speed,
        )));
        gates.push(DemoGate {
            id,
            url,
            handle,
            lane,
            journal,
            stats,
            sync,
            task,
        });
    }
    Ok(Demo {
        gates,
        tokens,
        upstream_url,
        upstream,
        stop,
        helpers,
        _tmp: tmp,
    })
}

/// Counts transits and alarms, and plays the simulated officers under `policy`.
async fn watch_gate(
    gate: GateHandle,
    stats: Arc<Mutex<GateStats>>,
    policy: Option<OperatorPolicy>,
    speed: f64,
) {
    let mut feed = gate.subscribe();
    loop {
        let item = match feed.recv().await {
            Ok(i) => i,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let FeedKind::Event { event } = item.kind else {
            continue;
        };
        match event {
            GateEvent::TransitStarted { .. } => {
                lock(&stats).transits += 1;
            }
            GateEvent::AlarmRaised { alarm, .. } => {
                *lock(&stats).alarms.entry(alarm).or_insert(0) += 1;
                if let Some((after_s, command)) = policy.as_ref().and_then(|p| order(p, alarm)) {
                    let gate = gate.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs_f64(after_s / speed)).await;
                        let actor = Actor {
                            user: "sim-officer".into(),
                            role: Role::Operator,
                            reason: format!("standing order on {}", alarm_name(alarm)),
                        };
                        let _ = gate.command(command, actor).await;
                    });
                }
            }
            _ => {}
        }
    }
}

/// What a simulated officer does about `alarm`, and after how many simulated seconds.
fn order(p: &OperatorPolicy, alarm: AlarmKind) -> Option<(f64, OperatorCommand)> {
    match alarm {
        AlarmKind::WatchlistHold => p
            .release_hold_after_s
            .map(|d| (d, OperatorCommand::ReleaseHold)),
        AlarmKind::Tailgating | AlarmKind::Lingering => p
            .acknowledge_after_s
            .map(|d| (d, OperatorCommand::AcknowledgeAlarm { alarm })),
        AlarmKind::DoorFault => p
            .in_service_after_door_fault_s
            .map(|d| (d, OperatorCommand::InService)),
        _ => None,
    }
}

fn alarm_name(a: AlarmKind) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{a:?}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The per-gate summary table.
pub fn summary(demo: &Demo) -> String {
    let mut out = format!(
        "{:<8} {:<15} {:<19} {:>7} {:>7} {:>8} {:>5} {:>7} {:>5} {:>7}  alarms\n",
        "gate",
        "state",
        "step",
        "transit",
        "cleared",
        "referred",
        "held",
        "aborted",
        "queue",
        "backlog"
    );
    for g in &demo.gates {
        let s = g.handle.status.borrow().clone();
        let stats = lock(&g.stats).clone();
        let alarms: Vec<String> = s.machine.alarms.iter().map(|a| alarm_name(*a)).collect();
        out.push_str(&format!(
            "{:<8} {:<15} {:<19} {:>7} {:>7} {:>8} {:>5} {:>7} {:>5} {:>7}  {}\n",
            g.id,
            s.machine.mode.as_str(),
            s.machine.step,
            stats.transits,
            s.outcomes.cleared,
            s.outcomes.referred,
            s.outcomes.held,
            s.outcomes.aborted,
            g.lane.queue_len(),
            g.sync.backlog().borrow().rows(),
            alarms.join(",")
        ));
    }
    out
}

fn sign_in_lines(demo: &Demo) -> Vec<String> {
    let mut lines = vec![demo.console_url()];
    let base = demo.gates.first().map(|g| g.url.as_str()).unwrap_or("");
    lines.extend(
        runtime_link::sign_in_help(base, &demo.tokens)
            .into_iter()
            .skip(1),
    );
    lines.push(format!(
        "  traveller display of each gate: {base}/display (other gates: see the console)"
    ));
    lines.push(format!(
        "  reference upstream (journals synced there): {}/v1/admin/gates",
        demo.upstream_url
    ));
    lines
}

/// Runs the demo until Ctrl-C (the `gate-sim demo` command).
pub fn run(o: DemoOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let speed = o.speed;
        let demo = start(o).await?;
        let header = sign_in_lines(&demo);
        {
            let mut stdout = std::io::stdout().lock();
            for l in &header {
                writeln!(stdout, "{l}").context("cannot write to stdout")?;
            }
            stdout.flush().context("cannot write to stdout")?;
        }
        let tty = std::io::stdout().is_terminal();
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(REFRESH);
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = term.recv() => break,
                _ = tick.tick() => {
                    let mut out = String::new();
                    if tty {
                        out.push_str("\x1b[H\x1b[J");
                        for l in &header {
                            out.push_str(l);
                            out.push('\n');
                        }
                    }
                    out.push_str(&format!(
                        "t = {:>7.0} s simulated ({speed}x)   Ctrl-C to stop\n",
                        started.elapsed().as_secs_f64() * speed
                    ));
                    out.push_str(&summary(&demo));
                    if !tty {
                        out.push('\n');
                    }
                    let mut stdout = std::io::stdout().lock();
                    let _ = stdout.write_all(out.as_bytes());
                    let _ = stdout.flush();
                }
            }
        }
        eprintln!("gate-sim demo: stopping: the gates finish their transits");
        let reports = demo.stop(DRAIN).await;
        if reports.iter().any(Option::is_none) {
            eprintln!(
                "gate-sim demo: a gate did not stop within {} s",
                DRAIN.as_secs()
            );
        }
        Ok(())
    })
}
