//! `gated`: the per-gate daemon.
//!
//! config → build → run → drain (linkerd2-proxy's shape): the configuration is parsed
//! and validated first (exit 2 on a bad one), then the journal and devices are opened
//! (nothing runs yet), then the gate runs until SIGTERM/SIGINT, which the state machine
//! gets as `Shutdown`: a traveller inside is let out, the record journaled, and only then
//! does the process exit — within `gate.drain_timeout_ms`, or with an error.
//!
//! With `NOTIFY_SOCKET` set (systemd `Type=notify`) it reports `READY=1` once running,
//! `WATCHDOG=1` while the gate loop is alive, and `STOPPING=1` on shutdown.

use anyhow::Context;
use clap::Parser;
use gate_controller::config::{GateConfig, LogFormat, LogSection};
use gate_controller::runtime::clock::{Clock, MonotonicWallClock};
use gate_controller::runtime::settings::GateSettings;
use gate_controller::runtime::{Gate, GateHandle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// The per-gate daemon of echannel.
#[derive(Parser, Debug)]
#[command(name = "gated", version, about = "The echannel gate daemon")]
struct Args {
    /// Gate configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Only validate the configuration (and the files it names), then exit:
    /// 0 valid, 2 invalid.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let (cfg, settings) = match GateConfig::load_settings(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gated: invalid configuration: {e}");
            eprintln!(
                "gated: fix the key named above and run `gated --check --config {}` again",
                args.config.display()
            );
            return ExitCode::from(2);
        }
    };
    if args.check {
        for (key, what) in cfg.not_built() {
            eprintln!(
                "gated: note: {key}: {what} is not built yet; gated will refuse to start with it"
            );
        }
        println!("{}: valid", args.config.display());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = init_logging(&cfg.log) {
        eprintln!("gated: cannot set up logging: {e:#}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gated: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cfg, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "gated stopped with an error");
            eprintln!("gated: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(log: &LogSection) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v).context("RUST_LOG")?,
        _ => EnvFilter::try_new(&log.level).context("log.level")?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn run(cfg: GateConfig, settings: GateSettings) -> anyhow::Result<()> {
    // Build: journal, devices, machine — nothing runs yet.
    let clock = MonotonicWallClock::start();
    let devices = gate_controller::runtime::devices::build(&settings, clock)?;
    let (gate, handle) = Gate::build(&settings, devices, clock)?;
    tracing::info!(
        gate = %cfg.gate.id,
        lane = ?cfg.gate.lane,
        direction = cfg.gate.direction.as_str(),
        journal = %cfg.journal.path.display(),
        now_ms = clock.now().0,
        "gate built"
    );

    // The API (if configured) is bound now, before anything runs.
    let api = match gate_controller::api::ApiConfig::from_section(&cfg.api) {
        Some((api_cfg, local)) => {
            let listener = tokio::net::TcpListener::bind(api_cfg.listen)
                .await
                .with_context(|| format!("api.listen: cannot listen on {}", api_cfg.listen))?;
            Some((listener, api_cfg, local))
        }
        None => None,
    };

    // Run.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Upstream sync over the journal (optional); it outlives the gate loop's drain.
    let upstream = match &cfg.upstream {
        Some(u) => Some(
            gate_controller::upstream::service::UpstreamSync::spawn(
                u,
                &cfg.gate.id,
                cfg.gate.direction,
                &cfg.journal.path,
                Some(handle.status.clone()),
                Some(cfg.watchlist.version),
            )
            .context("starting the upstream sync")?,
        ),
        None => None,
    };
    if let Some((listener, api_cfg, local)) = api {
        let addr = listener
            .local_addr()
            .context("api.listen: no local address")?;
        let extras = gate_controller::api::runtime_link::Extras {
            upstream_backlog: upstream.as_ref().map(|u| u.backlog()),
        };
        gate_controller::api::runtime_link::spawn_server_with(&handle, listener, &api_cfg, extras);
        tracing::info!(%addr, users = api_cfg.tokens.len(), peers = api_cfg.peers.len(), "API, console and display listening");
        if let Some(local) = local {
            // Shown to the person who started gated only (stderr), never logged.
            for line in
                gate_controller::api::runtime_link::sign_in_help(&format!("http://{addr}"), &local)
            {
                eprintln!("gated: {line}");
            }
        }
    }
    // The gate runs once the API follows its feed, so that what it reports from its
    // first step (a lane I/O missing at start) reaches the API in full.
    let mut gate_task = tokio::spawn(gate.run(async {
        let _ = stop_rx.await;
    }));
    notify(&[sd_notify::NotifyState::Ready]);
    let watchdog =
        sd_notify::watchdog_enabled().map(|every| tokio::spawn(watchdog(handle.clone(), every)));
    tracing::info!("gate running");

    let signame = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
        res = &mut gate_task => {
            let report = res.context("the gate task failed")?;
            anyhow::bail!("the gate stopped by itself in step {} (every device task ended)", report.status.machine.step);
        }
    };

    // Drain: the machine finishes or safely aborts the transit.
    let drain = Duration::from_millis(cfg.gate.drain_timeout_ms);
    tracing::info!(
        signal = signame,
        drain_timeout_ms = cfg.gate.drain_timeout_ms,
        "stopping: draining the current transit"
    );
    notify(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(());
    let outcome = tokio::select! {
        r = tokio::time::timeout(drain, &mut gate_task) => r,
        _ = sigterm.recv() => { gate_task.abort(); anyhow::bail!("second signal during the drain: stopping at once in step {}", handle.status.borrow().machine.step) }
        _ = sigint.recv() => { gate_task.abort(); anyhow::bail!("second signal during the drain: stopping at once in step {}", handle.status.borrow().machine.step) }
    };
    if let Some(w) = watchdog {
        w.abort();
    }
    if let Some(u) = upstream {
        u.stop(Duration::from_secs(2)).await;
    }
    match outcome {
        Ok(Ok(report)) => {
            let s = &report.status;
            tracing::info!(
                clean = report.clean,
                records = s.outcomes.total(),
                last_seq = s.last_seq,
                cleared = s.outcomes.cleared,
                referred = s.outcomes.referred,
                held = s.outcomes.held,
                aborted = s.outcomes.aborted,
                "gate stopped"
            );
            Ok(())
        }
        Ok(Err(e)) => Err(e).context("the gate task failed"),
        Err(_) => {
            gate_task.abort();
            let step = handle.status.borrow().machine.step;
            anyhow::bail!(
                "the transit did not end within the drain timeout of {} ms (step {step})",
                cfg.gate.drain_timeout_ms
            )
        }
    }
}

fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Pings the systemd watchdog at half its period while the gate loop keeps refreshing
/// its status (it does so at least once a second); a stuck loop stops the pings.
async fn watchdog(handle: GateHandle, every: Duration) {
    let clock = MonotonicWallClock::start();
    let mut tick = tokio::time::interval(every / 2);
    loop {
        tick.tick().await;
        let at = handle.status.borrow().at;
        let age = clock.now().since(at);
        if age <= (every / 2).as_millis() as u64 + 1_000 {
            notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!(
                age_ms = age,
                "gate loop is not responding: withholding the watchdog ping"
            );
        }
    }
}
