//! The tokio shell around the state machine: devices in, actions out, real time.
//!
//! ```text
//!  document reader ─┐  (one task per device,            ┌─▶ journal (SQLite, in Core)
//!  fingerprint     ─┼─▶ signals over one channel) ─▶ Gate loop ─▶ Core ─▶ machine
//!  lane I/O        ─┘                                 │  ▲  select!: signals, deadline,
//!                                                     │  │  operator commands, shutdown
//!  GateHandle ◀── status (watch) + feed (broadcast) ──┘  └── commands (mpsc)
//! ```
//!
//! Each device runs in its own task that owns it, turns its futures into [`Input`]s and
//! takes commands; abandoning an operation is dropping its future (the device traits
//! are drop-safe). The gate loop owns the [`Core`] — the machine, the journal, the
//! watchlist and the matcher — and sleeps until the machine's next deadline.
//!
//! Shutdown (mini-redis style): the future passed to [`Gate::run`] completing is fed to
//! the machine as `Event::Shutdown`; the loop keeps running until the machine answers
//! `ShutdownReady` (a traveller inside is let out first), then stops the device tasks.
//! The caller bounds the drain with a timeout.

pub mod clock;
pub mod core;
pub mod devices;
pub mod disk;
pub mod gpio;
pub mod matcher;
pub mod modbus;
pub mod occupancy;
#[cfg(feature = "pcsc")]
pub mod pcsc;
pub mod screening;
pub mod serial;
pub mod settings;
pub mod sim;
pub mod watchlist;

use self::clock::MonotonicWallClock;
pub use self::core::{
    CommandReply, Core, FeedItem, FeedKind, GateStatus, Input, OutcomeCounts, Output, StorageFaults,
};
use self::matcher::section::MatcherSection;
use self::settings::GateSettings;
use crate::journal::{Journal, JournalError};
use crate::record::{Actor, OperatorCommand, Prompt};
use crate::types::Device;
use device_drivers::devices::{
    CaptureError, DeviceFault, DocumentReader, FingerprintScanner, LaneCommand, LaneInput, LaneIo,
    ReadError,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, Instant};

/// Why the gate could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The journal could not be opened or read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The configuration asks for something this build does not have yet.
    #[error("{key}: {what} is not built yet in this version of gated")]
    NotBuilt {
        /// Config key.
        key: &'static str,
        /// What is missing.
        what: &'static str,
    },
    /// The watchlist store could not be opened.
    #[error("watchlist store: {0}")]
    Watchlist(#[from] crate::watchlist::WatchlistError),
    /// A device could not be set up.
    #[error("cannot set up the {device}: {detail}")]
    Device {
        /// Device.
        device: Device,
        /// Why.
        detail: String,
    },
}

/// The devices of a lane.
pub struct Devices {
    /// Document reader.
    pub document: Box<dyn DocumentReader>,
    /// Fingerprint scanner.
    pub fingerprint: Box<dyn FingerprintScanner>,
    /// Doors, sensors, emergency input.
    pub io: Box<dyn LaneIo>,
    /// Where prompts go besides the status (the simulator's travellers read them).
    pub display: Box<dyn TravellerDisplay>,
    /// A watchlist the devices bring along (the simulator knows which of its travellers
    /// are listed), consulted after the configured one.
    pub screening: Option<Box<dyn screening::Screening>>,
}

impl Devices {
    /// Real or fake devices without a display of their own or a watchlist.
    pub fn new(
        document: Box<dyn DocumentReader>,
        fingerprint: Box<dyn FingerprintScanner>,
        io: Box<dyn LaneIo>,
    ) -> Devices {
        Devices {
            document,
            fingerprint,
            io,
            display: Box::new(NoDisplay),
            screening: None,
        }
    }
}

/// A traveller display the shell pushes prompts to (the API's `/display` page reads the
/// status instead).
pub trait TravellerDisplay: Send {
    /// Shows `prompt`; must not block.
    fn show(&mut self, prompt: Prompt);
}

/// A display that shows nothing (prompts are still in the status).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDisplay;

impl TravellerDisplay for NoDisplay {
    fn show(&mut self, _prompt: Prompt) {}
}

/// An operator command with a channel for the answer.
#[derive(Debug)]
pub struct CommandRequest {
    /// The command.
    pub command: OperatorCommand,
    /// Who and why (authenticated by the caller).
    pub actor: Actor,
    /// Where the answer goes.
    pub reply: oneshot::Sender<CommandReply>,
}

/// What the rest of the process (API, console, watchdog) holds to see and command the gate.
#[derive(Clone, Debug)]
pub struct GateHandle {
    /// The latest status (updated after every input and at least once a second).
    pub status: watch::Receiver<GateStatus>,
    feed: broadcast::Sender<FeedItem>,
    commands: mpsc::Sender<CommandRequest>,
}

impl GateHandle {
    /// Subscribes to the live feed (events and journaled records) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedItem> {
        self.feed.subscribe()
    }

    /// Sends an operator command and waits for the gate's answer; `None` if the gate
    /// has stopped.
    pub async fn command(&self, command: OperatorCommand, actor: Actor) -> Option<CommandReply> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(CommandRequest {
                command,
                actor,
                reply,
            })
            .await
            .ok()?;
        rx.await.ok()
    }
}

/// What [`Gate::run`] reports when it stops.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    /// The final status.
    pub status: GateStatus,
    /// Whether the machine reported `ShutdownReady` (false: every signal source ended).
    pub clean: bool,
}

/// A gate ready to run: the core, its devices and the handle's other ends.
pub struct Gate {
    core: Core,
    devices: Devices,
    clock: MonotonicWallClock,
    status: watch::Sender<GateStatus>,
    feed: broadcast::Sender<FeedItem>,
    commands: mpsc::Receiver<CommandRequest>,
    updater: Option<watchlist::Updater>,
    disk: Option<disk::DiskGuard>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

/// How often a faulty device is probed, and how often the status is refreshed.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_secs(1);

impl Gate {
    /// Builds a gate from its configuration and devices: opens the journal, seeds the
    /// machine's transaction ids from it, sets up the watchlist and the matcher. Nothing
    /// runs yet.
    pub fn build(
        cfg: &GateSettings,
        devices: Devices,
        clock: MonotonicWallClock,
    ) -> Result<(Gate, GateHandle), RuntimeError> {
        if let Some((key, what)) = cfg.devices.section.not_built().first() {
            return Err(RuntimeError::NotBuilt { key, what });
        }
        let mut journal = Journal::open(&cfg.journal.path)?;
        journal.claim_gate(&cfg.gate_id)?;
        let matcher: Box<dyn matcher::Matcher> = match cfg.matcher {
            MatcherSection::Sim => Box::new(matcher::SimMatcher),
            MatcherSection::Minutiae => Box::new(matcher::MinutiaeMatcher),
        };
        let mut devices = devices;
        let store = watchlist::open(&cfg.watchlist)?;
        let mut lists: Vec<Box<dyn screening::Screening>> = Vec::new();
        let (mut problems, mut updater) = (Vec::new(), None);
        if let Some(s) = store {
            lists.push(Box::new(s.screening));
            (problems, updater) = (s.problems, s.updater);
        }
        lists.push(Box::new(screening::InlineWatchlist::from_config(
            &cfg.watchlist,
        )));
        lists.extend(devices.screening.take());
        let screening: Box<dyn screening::Screening> = if lists.len() == 1 {
            lists.remove(0)
        } else {
            Box::new(screening::Chained(lists))
        };
        let (mut gate, handle) = Gate::from_parts(
            cfg.gate_id.clone(),
            cfg.machine.clone(),
            journal,
            screening,
            matcher,
            devices,
            clock,
        )?;
        gate.core
            .set_beam_geometry(cfg.devices.section.io.beam_geometry());
        for p in problems {
            gate.core.input(Input::WatchlistUpdate { result: Err(p) });
        }
        gate.updater = updater;
        // The journal's disk is measured before the first traveller can be cleared.
        let mut guard = disk::DiskGuard::from_config(&cfg.journal);
        if let Some(level) = guard.poll() {
            gate.core.input(level);
        }
        gate.disk = Some(guard);
        Ok((gate, handle))
    }

    /// Builds a gate from ready-made parts (tests, benches, other drivers).
    pub fn from_parts(
        gate_id: String,
        machine_cfg: crate::machine::Config,
        journal: Journal,
        screening: Box<dyn screening::Screening>,
        matcher: Box<dyn matcher::Matcher>,
        devices: Devices,
        clock: MonotonicWallClock,
    ) -> Result<(Gate, GateHandle), RuntimeError> {
        let core = Core::start(
            gate_id,
            machine_cfg,
            journal,
            screening,
            matcher,
            Arc::new(clock),
        )?;
        let (status, status_rx) = watch::channel(core.status());
        let (feed, _) = broadcast::channel(1024);
        let (cmd_tx, commands) = mpsc::channel(32);
        let handle = GateHandle {
            status: status_rx,
            feed: feed.clone(),
            commands: cmd_tx,
        };
        Ok((
            Gate {
                core,
                devices,
                clock,
                status,
                feed,
                commands,
                updater: None,
                disk: None,
            },
            handle,
        ))
    }

    /// Runs the gate until the machine reports `ShutdownReady` after `shutdown`
    /// completed (or every signal source ended).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> RunReport {
        let Gate {
            mut core,
            mut devices,
            clock,
            status,
            feed,
            mut commands,
            updater,
            disk,
        } = self;
        let (sig_tx, mut signals) = mpsc::unbounded_channel::<Input>();
        let (doc_tx, doc_rx) = mpsc::unbounded_channel();
        let (fp_tx, fp_rx) = mpsc::unbounded_channel();
        let (io_tx, io_rx) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        tasks.spawn(document_task(devices.document, doc_rx, sig_tx.clone()));
        tasks.spawn(fingerprint_task(devices.fingerprint, fp_rx, sig_tx.clone()));
        tasks.spawn(io_task(devices.io, io_rx, sig_tx));
        // Inputs of the background pollers: watchlist updates, disk guard levels.
        let (wl_tx, mut wl_updates) = mpsc::unbounded_channel::<Input>();
        if let Some(d) = disk {
            tasks.spawn(d.run(wl_tx.clone()));
        }
        if let Some(u) = updater {
            tasks.spawn(u.run(wl_tx));
        }

        tokio::pin!(shutdown);
        let mut stopping = false;
        let mut clean = false;
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            while let Some(out) = core.poll_output() {
                match out {
                    Output::ReadDocument { op } => {
                        let _ = doc_tx.send(DocCmd::Read { op });
                    }
                    Output::CancelDocumentRead => {
                        let _ = doc_tx.send(DocCmd::Cancel);
                    }
                    Output::Capture { op, timeout } => {
                        let _ = fp_tx.send(FpCmd::Capture { op, timeout });
                    }
                    Output::CancelCapture => {
                        let _ = fp_tx.send(FpCmd::Cancel);
                    }
                    Output::Lane(c) => {
                        tracing::debug!(command = ?c, "lane");
                        let _ = io_tx.send(c);
                    }
                    Output::Display(p) => {
                        tracing::debug!(prompt = ?p, "display");
                        devices.display.show(p);
                    }
                    Output::Feed(item) => {
                        let _ = feed.send(item);
                    }
                    Output::ShutdownReady => clean = true,
                }
            }
            core.flush_events();
            status.send_replace(core.status());
            if core.stopped() {
                break;
            }
            let deadline = core.poll_timeout().map(|t| clock.instant_at(t));
            tokio::select! {
                () = &mut shutdown, if !stopping => {
                    stopping = true;
                    tracing::info!(step = core.status().machine.step, "shutdown requested: finishing the transit");
                    core.input(Input::Shutdown);
                }
                sig = signals.recv() => match sig {
                    Some(s) => core.input(s),
                    None => {
                        tracing::error!("every device task ended");
                        break;
                    }
                },
                Some(u) = wl_updates.recv() => core.input(u),
                Some(req) = commands.recv() => {
                    let reply = core.operator(req.command, req.actor);
                    let _ = req.reply.send(reply);
                }
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    core.timeout();
                }
                _ = heartbeat.tick() => {}
            }
        }
        drop((doc_tx, fp_tx, io_tx));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        core.flush_events();
        let final_status = core.status();
        status.send_replace(final_status.clone());
        RunReport {
            status: final_status,
            clean,
        }
    }
}

// ---- device tasks ---------------------------------------------------------------------

#[derive(Debug)]
enum DocCmd {
    Read { op: u64 },
    Cancel,
}

#[derive(Debug)]
enum FpCmd {
    Capture { op: u64, timeout: Duration },
    Cancel,
}

type Signals = mpsc::UnboundedSender<Input>;

fn fault(device: Device, f: &DeviceFault) -> Input {
    Input::Fault {
        device,
        fault: f.clone(),
    }
}

/// Waits for `dev` to work again, answering reads meanwhile with the fault.
async fn document_task(
    mut dev: Box<dyn DocumentReader>,
    mut cmds: mpsc::UnboundedReceiver<DocCmd>,
    sig: Signals,
) {
    let mut broken: Option<DeviceFault> = None;
    let mut queued: Option<DocCmd> = None;
    loop {
        if let Some(f) = broken.clone() {
            tokio::select! {
                c = cmds.recv() => match c {
                    None => return,
                    Some(DocCmd::Read { op }) => {
                        let _ = sig.send(Input::DocumentRead { op, result: Err(ReadError::Device(f)) });
                    }
                    Some(DocCmd::Cancel) => {}
                },
                () = sleep(PROBE_EVERY) => {
                    if dev.probe().await.is_ok() {
                        broken = None;
                        let _ = sig.send(Input::Recovered { device: Device::DocumentReader });
                    }
                }
            }
            continue;
        }
        let cmd = match queued.take() {
            Some(c) => Some(c),
            None => {
                let next = tokio::select! {
                    c = cmds.recv() => Err(c),
                    p = dev.next_presence() => Ok(p),
                };
                match next {
                    Err(None) => return,
                    Err(Some(c)) => Some(c),
                    Ok(Ok(p)) => {
                        let _ = sig.send(Input::Presence(p));
                        None
                    }
                    Ok(Err(f)) => {
                        let _ = sig.send(fault(Device::DocumentReader, &f));
                        broken = Some(f);
                        None
                    }
                }
            }
        };
        let Some(DocCmd::Read { op }) = cmd else {
            continue;
        };
        let result = tokio::select! {
            r = dev.read() => Some(r),
            c = cmds.recv() => {
                match c {
                    None => return,
                    // A newer read replaces this one; a cancel just drops it.
                    Some(c @ DocCmd::Read { .. }) => queued = Some(c),
                    Some(DocCmd::Cancel) => {}
                }
                None
            }
        };
        if let Some(result) = result {
            if let Err(ReadError::Device(f)) = &result {
                broken = Some(f.clone());
            }
            let _ = sig.send(Input::DocumentRead { op, result });
        }
    }
}

async fn fingerprint_task(
    mut dev: Box<dyn FingerprintScanner>,
    mut cmds: mpsc::UnboundedReceiver<FpCmd>,
    sig: Signals,
) {
    let mut broken: Option<DeviceFault> = None;
    let mut queued: Option<FpCmd> = None;
    loop {
        if let Some(f) = broken.clone() {
            tokio::select! {
                c = cmds.recv() => match c {
                    None => return,
                    Some(FpCmd::Capture { op, .. }) => {
                        let _ = sig.send(Input::Captured { op, result: Err(CaptureError::Device(f)) });
                    }
                    Some(FpCmd::Cancel) => {}
                },
                () = sleep(PROBE_EVERY) => {
                    if dev.probe().await.is_ok() {
                        broken = None;
                        let _ = sig.send(Input::Recovered { device: Device::FingerprintScanner });
                    }
                }
            }
            continue;
        }
        let cmd = match queued.take() {
            Some(c) => c,
            None => match cmds.recv().await {
                Some(c) => c,
                None => return,
            },
        };
        let FpCmd::Capture { op, timeout } = cmd else {
            continue;
        };
        let result = tokio::select! {
            r = dev.capture(timeout) => Some(r),
            c = cmds.recv() => {
                match c {
                    None => return,
                    Some(c @ FpCmd::Capture { .. }) => queued = Some(c),
                    Some(FpCmd::Cancel) => {}
                }
                None
            }
        };
        if let Some(result) = result {
            if let Err(CaptureError::Device(f)) = &result {
                // The core reports the fault to the machine when it sees this answer.
                broken = Some(f.clone());
            }
            let _ = sig.send(Input::Captured { op, result });
        }
    }
}

async fn io_task(
    mut dev: Box<dyn LaneIo>,
    mut cmds: mpsc::UnboundedReceiver<LaneCommand>,
    sig: Signals,
) {
    let mut broken = false;
    loop {
        let next = tokio::select! {
            c = cmds.recv() => Err(c),
            i = dev.next_input() => Ok(i),
        };
        match next {
            Err(None) => return,
            Err(Some(c)) => {
                if let Err(f) = dev.command(c).await {
                    if !broken {
                        broken = true;
                        let _ = sig.send(fault(Device::LaneIo, &f));
                    }
                }
            }
            Ok(Ok(LaneInput::Recovered)) => {
                if broken {
                    broken = false;
                    let _ = sig.send(Input::Lane(LaneInput::Recovered));
                }
            }
            Ok(Ok(i)) => {
                let _ = sig.send(Input::Lane(i));
            }
            Ok(Err(f)) => {
                if !broken {
                    broken = true;
                    let _ = sig.send(fault(Device::LaneIo, &f));
                }
                // Do not spin on a driver that fails at once.
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod geometry_tests {
    use super::*;

    /// `[devices.io] first_mantrap_beam_m` reaches the beam body counter of a gate built
    /// from the configuration.
    #[tokio::test]
    async fn the_configured_beam_geometry_reaches_the_counter() {
        let dir = tempfile::tempdir().expect("dir");
        let journal = dir.path().join("j.sqlite");
        let text = |io: &str| {
            format!(
                "[gate]\nid = \"g\"\nlane = \"visitor\"\ndirection = \"arrival\"\n\
                 [journal]\npath = {:?}\n[devices.io]\n{io}\n",
                journal.display().to_string()
            )
        };
        for (io, want) in [
            (
                "kind = \"modbus\"\naddress = \"127.0.0.1:1502\"\nfirst_mantrap_beam_m = 0.9",
                0.9,
            ),
            ("kind = \"modbus\"\naddress = \"127.0.0.1:1502\"", 0.625),
            ("kind = \"sim\"", 0.625),
        ] {
            let cfg = settings::from_toml(&text(io));
            let clock = MonotonicWallClock::start();
            let devices = sim::devices(&cfg.sim, clock).expect("sim devices");
            let (gate, _handle) = Gate::build(&cfg, devices, clock).expect("gate builds");
            assert_eq!(gate.core.beam_geometry().first_mantrap_m, want, "{io}");
        }
    }
}

#[cfg(test)]
mod disk_tests {
    use super::*;
    use crate::record::AlarmKind;
    use crate::upstream::disk::{check, DiskGuardConfig};

    /// `Gate::build` measures the journal's disk before anyone can be cleared, with the
    /// thresholds of `[journal]`.
    #[tokio::test]
    async fn the_journal_disk_is_measured_when_the_gate_is_built() {
        let dir = tempfile::tempdir().expect("dir");
        let used = check(dir.path(), &DiskGuardConfig::default())
            .expect("statvfs")
            .used_percent;
        let journal = dir.path().join("j.sqlite");
        for (alarm, stop, want) in [
            (used / 2.0, 100.0, vec![AlarmKind::DiskSpaceLow]),
            (used / 4.0, used / 2.0, vec![AlarmKind::DiskFull]),
            (used + (100.0 - used) / 2.0, 100.0, vec![]),
        ] {
            let text = format!(
                "[gate]\nid = \"g\"\nlane = \"visitor\"\ndirection = \"arrival\"\n\
                 [journal]\npath = {:?}\ndisk_alarm_percent = {alarm}\n\
                 disk_stop_clearing_percent = {stop}\n",
                journal.display().to_string()
            );
            let cfg = settings::from_toml(&text);
            let clock = MonotonicWallClock::start();
            let devices = sim::devices(&cfg.sim, clock).expect("sim devices");
            let (gate, handle) = Gate::build(&cfg, devices, clock).expect("gate builds");
            assert_eq!(
                gate.core.status().machine.alarms,
                want,
                "used {used} %, alarm at {alarm} %, stop at {stop} %"
            );
            drop((gate, handle));
        }
    }
}
