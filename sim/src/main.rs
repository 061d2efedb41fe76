//! `gate-sim`: hardware simulator, scenario runner and demo.

mod upstream;
mod vcard;

use clap::{Parser, Subcommand};
use gate_sim::run::{run, Timing};
use gate_sim::scenario::Scenario;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gate-sim",
    version,
    about = "echannel hardware simulator, scenario runner and demo"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario in virtual time and check its expectations and the invariants.
    Run {
        /// Scenario file (TOML; see docs/scenarios.md).
        scenario: PathBuf,
        /// Seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Print exactly one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Add wall-clock figures (the output is then no longer reproducible).
        #[arg(long)]
        timing: bool,
        /// Print every state-machine input and its actions to stderr.
        #[arg(long)]
        trace: bool,
    },
    /// Run simulated gates in real time with a stream of travellers until Ctrl-C.
    Demo {
        /// Number of gates.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        gates: u16,
        /// Port of the console (the first gate's API) on 127.0.0.1 (0: any free port);
        /// the other gates listen on free ports.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Speed factor: 2 runs twice as fast as real time.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// No simulated officers: every alarm waits for the console.
        #[arg(long)]
        no_officers: bool,
        /// Keep the gates' journals in DIR (default: a temporary directory removed at exit).
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Seeded campaigns: tailgating detection, false tailgating alarms, emergency latency.
    Campaign {
        /// Tailgating attempts.
        #[arg(long, default_value_t = 1_000)]
        tailgating: u64,
        /// Single travellers for the false-alarm rate.
        #[arg(long, default_value_t = 10_000)]
        singles: u64,
        /// Emergency trials.
        #[arg(long, default_value_t = 200)]
        emergencies: u64,
        /// Adults with an accompanying child, per policy (refer, allow).
        #[arg(long, default_value_t = 1_000)]
        children: u64,
        /// Crash-and-restart trials (gated dies at a random step, restarts from its journal).
        #[arg(long, default_value_t = 1_000)]
        crashes: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// I/O scan cycle in ms (for the emergency latency in cycles).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
        scan_ms: u64,
        /// Print exactly one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Serve one simulated lane (doors, beams, lamps, emergency input) as a Modbus TCP
    /// I/O module until stopped (register map: docs/io.md).
    Lane {
        /// `HOST:PORT` to listen on (port 0: any free port; the address is printed).
        #[arg(long, value_name = "HOST:PORT")]
        modbus: String,
        /// Lane file (TOML: seed, mean_arrival_gap_ms, speed, unit_id, [lane]).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Seed of the people arriving (default: the file's, else 1).
        #[arg(long)]
        seed: Option<u64>,
        /// Read control commands from stdin, one a line, each answered by one line on
        /// stdout: `emergency on` (cut the normally closed emergency loop: input 12
        /// reads 0) / `emergency off` (restore it), `tamper on` / `tamper off` (cabinet
        /// open: input 13 reads 1), `state` (every input and coil by name as one JSON
        /// object). A bad line is answered `error: ...` and changes nothing.
        #[arg(long)]
        control: bool,
    },
    /// Run one lane's world in real time with every device on its real transport: chips
    /// through vpcd, MRZ on an OCR reader pty, thumbs on an SFM scanner pty, doors, beams
    /// and lamps on a Modbus TCP I/O module (docs/rig.md). The clock starts when a gate
    /// first connects to the I/O module.
    Rig {
        /// Scenario file (TOML; see docs/scenarios.md and docs/rig.md).
        scenario: PathBuf,
        /// Seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Print exactly one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// vpcd `HOST:PORT` the travellers' chips are served to.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:35963")]
        vpcd: String,
        /// `HOST:PORT` the Modbus TCP I/O module listens on.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5502")]
        modbus: String,
        /// Where the OCR MRZ reader's pty is linked.
        #[arg(long, value_name = "PATH", default_value = "target/rig/mrz")]
        mrz_pty: PathBuf,
        /// Where the SFM fingerprint scanner's pty is linked.
        #[arg(long, value_name = "PATH", default_value = "target/rig/scanner")]
        scanner_pty: PathBuf,
        /// The gate's API base URL (`http://HOST:PORT`): the travellers read its display
        /// (`/display/events`) instead of guessing from the doors.
        #[arg(long, value_name = "URL")]
        display: Option<String>,
        /// How long (ms) a traveller who cannot see the display waits at the reader for
        /// the entry door before going to the counter.
        #[arg(long, value_name = "MS", default_value_t = gate_sim::rig::DEFAULT_PATIENCE_MS)]
        patience_ms: u64,
        /// Likewise for a `watchlist_hold` traveller.
        #[arg(long, value_name = "MS", default_value_t = gate_sim::rig::DEFAULT_HOLD_PATIENCE_MS)]
        hold_patience_ms: u64,
        /// The OCR reader's read time (ms): the chip is in the reader's field as soon as
        /// the document is placed, the MRZ lines leave the reader this long after.
        #[arg(long, value_name = "MS", default_value_t = gate_sim::rig::DEFAULT_OCR_MS)]
        ocr_ms: u64,
        /// No progress lines on stderr.
        #[arg(long)]
        quiet: bool,
        /// Benchmark: stamp every input the rig makes visible and the gate's command
        /// that answers it; the report gets a `timing` object (docs/rig.md).
        #[arg(long)]
        timing: bool,
    },
    /// Serve a virtual eMRTD chip (the ICAO specimen or a seeded persona) through vpcd until stopped.
    Card(vcard::CardArgs),
    /// Run the reference upstream server until stopped.
    Upstream(upstream::UpstreamArgs),
    /// Development PKI for the upstream link.
    #[command(subcommand)]
    Pki(upstream::PkiCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            scenario,
            seed,
            json,
            timing,
            trace,
        } => run_cmd(&scenario, seed, json, timing, trace),
        Cmd::Demo {
            gates,
            port,
            speed,
            seed,
            no_officers,
            dir,
        } => {
            if !(speed.is_finite() && speed > 0.0 && speed <= 1000.0) {
                eprintln!("gate-sim demo: --speed must be a number in (0, 1000], got {speed}");
                return ExitCode::from(2);
            }
            let opts = gate_sim::demo::DemoOptions {
                gates: usize::from(gates),
                port,
                speed,
                seed,
                officers: !no_officers,
                dir,
                ..gate_sim::demo::DemoOptions::default()
            };
            match gate_sim::demo::run(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gate-sim demo: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Campaign {
            tailgating,
            singles,
            emergencies,
            children,
            crashes,
            seed,
            scan_ms,
            json,
        } => {
            let spec = gate_sim::campaign::CampaignSpec {
                tailgating,
                singles,
                emergencies,
                children,
                crashes,
                seed,
                scan_ms,
            };
            match gate_sim::campaign::campaign(&spec) {
                Ok(r) => {
                    if json {
                        match serde_json::to_string_pretty(&r) {
                            Ok(s) => println!("{s}"),
                            Err(e) => {
                                eprintln!("gate-sim campaign: cannot render the report: {e}");
                                return ExitCode::from(1);
                            }
                        }
                    } else {
                        let t = &r.tailgating;
                        let f = &r.false_alarms;
                        let m = &r.emergency;
                        println!(
                            "tailgating: {} attempts, {} follower(s) shut out, {}/{} inside detected ({:.2} %), {} breach(es)",
                            t.attempts,
                            t.shut_out,
                            t.detected,
                            t.entered,
                            t.detection_rate * 100.0,
                            t.breaches
                        );
                        println!(
                            "false tailgating alarms: {} over {} transits ({:.3} %)",
                            f.false_alarms,
                            f.transits,
                            f.false_alarm_rate * 100.0
                        );
                        println!(
                            "emergency release: max {} ms = {} scan cycle(s) of {} ms over {} trials, {} unreleased",
                            m.max_latency_ms, m.max_latency_cycles, r.scan_ms, m.trials, m.unreleased
                        );
                        for (name, c) in [
                            ("refer", &r.accompanied_child.refer),
                            ("allow", &r.accompanied_child.allow),
                        ] {
                            println!(
                                "accompanied child ({name}): {} attempts, {} shut out, of {} inside {} recognised ({:.2} %), {} taken for tailgating, {} missed; {} cleared, {} child(ren) through the exit, {} breach(es)",
                                c.attempts,
                                c.shut_out,
                                c.entered,
                                c.recognised,
                                c.recognition_rate * 100.0,
                                c.taken_for_tailgating,
                                c.missed,
                                c.cleared,
                                c.children_passed_exit,
                                c.breaches
                            );
                        }
                        let c = &r.crash_restart;
                        println!(
                            "crash and restart: {} trials, {} crashed ({} restarts), {} transit(s) aborted; {} record(s) lost, {} doubled, {} shut in, {} breach(es), {} invariant violation(s)",
                            c.trials,
                            c.crashed,
                            c.restarts,
                            c.aborted,
                            c.records_lost,
                            c.records_doubled,
                            c.shut_in,
                            c.breaches,
                            c.invariant_violations
                        );
                    }
                    if r.meets_targets() {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!("gate-sim campaign: a target was missed (seed {seed})");
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("gate-sim campaign: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Lane {
            modbus,
            config,
            seed,
            control,
        } => lane_cmd(&modbus, config.as_deref(), seed, control),
        Cmd::Rig {
            scenario,
            seed,
            json,
            vpcd,
            modbus,
            mrz_pty,
            scanner_pty,
            display,
            patience_ms,
            hold_patience_ms,
            ocr_ms,
            quiet,
            timing,
        } => {
            let opts = gate_sim::rig::RigOptions {
                vpcd,
                modbus,
                mrz_pty,
                scanner_pty,
                display,
                patience_ms,
                hold_patience_ms,
                ocr_ms,
                verbose: !quiet,
                timing,
            };
            rig_cmd(&scenario, seed, json, &opts)
        }
        Cmd::Card(a) => match vcard::run(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gate-sim card: {e:#}");
                let usage = e.downcast_ref::<vcard::BadUsage>().is_some();
                ExitCode::from(if usage { 2 } else { 1 })
            }
        },
        Cmd::Upstream(a) => report_anyhow("upstream", upstream::cli_upstream(a)),
        Cmd::Pki(c) => report_anyhow("pki", upstream::cli_pki(c)),
    }
}

/// `gate-sim lane`: serves until SIGINT/SIGTERM.
fn lane_cmd(
    addr: &str,
    config: Option<&std::path::Path>,
    seed: Option<u64>,
    control: bool,
) -> ExitCode {
    use gate_sim::lane::{serve, LaneFile};
    let file = match config {
        Some(p) => match LaneFile::load(p) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("gate-sim lane: {e}");
                return ExitCode::from(2);
            }
        },
        None => LaneFile::default(),
    };
    let seed = seed.unwrap_or(file.seed);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gate-sim lane: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async {
        let server = match serve(addr, &file, seed).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("gate-sim lane: {e}");
                return ExitCode::from(1);
            }
        };
        println!("modbus {}", server.addr);
        eprintln!(
            "gate-sim lane: serving the simulated lane as Modbus TCP I/O on {} (seed {seed}); register map in docs/io.md",
            server.addr
        );
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("gate-sim lane: cannot watch for SIGTERM: {e}");
                    return ExitCode::from(1);
                }
            };
        let server = std::sync::Arc::new(server);
        if control {
            let server = server.clone();
            tokio::spawn(async move {
                use std::io::Write;
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                // Control ends at the end of stdin; the lane keeps serving.
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let answer = server
                        .with_model(|m, now| m.control(now, &line))
                        .unwrap_or_else(|e| format!("error: {e}"));
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{answer}").and_then(|()| out.flush());
                }
            });
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        drop(server);
        ExitCode::SUCCESS
    })
}

/// `gate-sim rig`: runs until the scenario is done (SIGINT/SIGTERM: reports early).
fn rig_cmd(
    path: &std::path::Path,
    seed: Option<u64>,
    json: bool,
    opts: &gate_sim::rig::RigOptions,
) -> ExitCode {
    use gate_sim::rig::RigError;
    use std::net::ToSocketAddrs;
    let scenario = match Scenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gate-sim rig: {e}");
            return ExitCode::from(2);
        }
    };
    for (flag, v) in [("--vpcd", &opts.vpcd), ("--modbus", &opts.modbus)] {
        if v.to_socket_addrs()
            .map(|mut i| i.next().is_none())
            .unwrap_or(true)
        {
            eprintln!(
                "gate-sim rig: {flag} {v:?} is not a HOST:PORT address (e.g. 127.0.0.1:5502)"
            );
            return ExitCode::from(2);
        }
    }
    if let Some(d) = &opts.display {
        if !d.starts_with("http://") {
            eprintln!("gate-sim rig: --display {d:?} is not an http://HOST:PORT URL");
            return ExitCode::from(2);
        }
    }
    let seed = seed.unwrap_or(scenario.seed);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = stop.clone();
        let flag = move || stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            let _ = std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    rt.block_on(async {
                        let Ok(mut term) = tokio::signal::unix::signal(
                            tokio::signal::unix::SignalKind::terminate(),
                        ) else {
                            let _ = tokio::signal::ctrl_c().await;
                            return;
                        };
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    });
                    flag();
                });
        }
    }
    let report = match gate_sim::rig::run(&scenario, &path.display().to_string(), seed, opts, stop)
    {
        Ok(r) => r,
        Err(e @ RigError::Scenario { .. }) => {
            eprintln!("gate-sim rig: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("gate-sim rig: {e}");
            return ExitCode::from(1);
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("gate-sim rig: cannot render the report: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        let o = &report.outcomes;
        println!(
            "scenario {} seed {}: {} traveller(s), {} transit(s) in {:.1} s",
            report.scenario,
            report.seed,
            report.travellers.len(),
            report.transits,
            report.virtual_duration_s
        );
        println!(
            "  outcomes: cleared {} referred {} held {} aborted {}",
            o.cleared, o.referred, o.held, o.aborted
        );
        if let (Some(p50), Some(p90)) = (report.passage_ms.p50, report.passage_ms.p90) {
            println!("  passage: p50 {p50} ms, p90 {p90} ms");
        }
        if let Some(t) = &report.timing {
            let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
            println!("  controller share (ms): count median p90 p99 max");
            let rows = t.pairs.iter().map(|(n, s)| (n.as_str(), s)).chain([
                ("all pairs", &t.controller_share_ms),
                ("apdu turnaround", &t.apdu_turnaround_ms),
            ]);
            for (name, s) in rows {
                println!(
                    "    {name:<24} {:>4} {:>7} {:>7} {:>7} {:>7}",
                    s.count,
                    ms(s.median),
                    ms(s.p90),
                    ms(s.p99),
                    ms(s.max)
                );
            }
            if !t.incomplete.is_empty() {
                println!("    incomplete: {}", t.incomplete.join(", "));
            }
        }
        for t in &report.timeline {
            println!(
                "  {} ({}, {} {}): {}",
                t.name, t.behaviour, t.issuing_state, t.document_number, t.outcome
            );
        }
        for c in &report.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            println!("  {mark} {}: want {}, got {}", c.expect, c.want, c.got);
        }
        for v in &report.violations {
            println!(
                "  VIOLATION {} at {} ms: {}",
                v.invariant, v.at_ms, v.detail
            );
        }
        println!(
            "  expectations: {} passed, {} failed; invariant violations: {}",
            report.expectations.passed, report.expectations.failed, report.invariant_violations
        );
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "gate-sim rig: scenario {} FAILED with seed {} ({} expectation(s) failed, {} invariant violation(s))",
            report.scenario,
            report.seed,
            report.expectations.failed,
            report.invariant_violations
        );
        ExitCode::from(1)
    }
}

/// Prints an error chain and maps it to exit code 1.
fn report_anyhow(what: &str, r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gate-sim {what}: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_cmd(
    path: &std::path::Path,
    seed: Option<u64>,
    json: bool,
    timing: bool,
    trace: bool,
) -> ExitCode {
    let scenario = match Scenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gate-sim run: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = seed.unwrap_or(scenario.seed);
    let started = std::time::Instant::now();
    let mut report = match run(scenario, seed, trace) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gate-sim run: {e:#}");
            return ExitCode::from(1);
        }
    };
    if timing {
        let wall = started.elapsed().as_secs_f64();
        report.timing = Some(Timing {
            wall_ms: wall * 1000.0,
            transits_per_s: report.transits as f64 / wall.max(1e-9),
            inputs_per_s: report.per_gate.iter().map(|g| g.inputs).sum::<u64>() as f64
                / wall.max(1e-9),
        });
    }
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("gate-sim run: cannot render the report: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        print_human(&report);
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "gate-sim run: scenario {} FAILED with seed {} ({} expectation(s) failed, {} invariant violation(s)); replay: gate-sim run {} --seed {}",
            report.scenario,
            report.seed,
            report.expectations.failed,
            report.invariant_violations,
            path.display(),
            report.seed
        );
        ExitCode::from(1)
    }
}

fn print_human(r: &gate_sim::run::Report) {
    println!(
        "scenario {} seed {}: {} gate(s), {} traveller(s), {} transit(s) in {:.1} s virtual",
        r.scenario, r.seed, r.gates, r.travellers, r.transits, r.virtual_duration_s
    );
    let o = &r.outcomes;
    println!(
        "  outcomes: cleared {} referred {} held {} aborted {}",
        o.cleared, o.referred, o.held, o.aborted
    );
    if !r.alarms.is_empty() {
        let a: Vec<String> = r.alarms.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("  alarms: {}", a.join(", "));
    }
    for c in &r.checks {
        let mark = if c.passed { "ok  " } else { "FAIL" };
        println!("  {mark} {}: want {}, got {}", c.expect, c.want, c.got);
    }
    for v in &r.violations {
        println!(
            "  VIOLATION gate {} invariant {} at {} ms: {}",
            v.gate, v.invariant, v.at_ms, v.detail
        );
    }
    if let Some(t) = &r.timing {
        println!(
            "  timing: {:.1} ms wall, {:.0} transits/s, {:.0} inputs/s",
            t.wall_ms, t.transits_per_s, t.inputs_per_s
        );
    }
    println!(
        "  expectations: {} passed, {} failed; invariant violations: {}",
        r.expectations.passed, r.expectations.failed, r.invariant_violations
    );
}
