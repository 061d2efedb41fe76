//! `[devices] kind = "sim"`: the simulator's lane ([`device_drivers::sim::World`]) stepped
//! in real time and presented through the device traits, so `gated` runs the very same
//! shell code against simulated travellers as against hardware.
//!
//! One task owns the stepping: it sleeps until the world's next wake-up or a device
//! command, advances the world to "now" (real time × `[sim] speed`), and routes each
//! world signal to the device it belongs to. The device objects are thin channel ends.
//!
//! The world draws comparison scores itself (its matcher model): a simulated capture is
//! followed at once by the world's match, and the live template handed to the shell is
//! a simulated template carrying that drawn score (`~0.734`), which
//! [`super::matcher::SimMatcher`] reads back. Enrolled templates of simulated documents
//! are placeholders (`~enrolled`), one per enrolled thumb.

mod adapter;
pub mod section;
pub mod stepped;

pub use adapter::ENROLLED_MARK;

use self::adapter::{chip_read, lock, Adapter, Offline, ReaderMsg, Routed, Shared, SimListings};
use self::section::SimSection;
use super::clock::MonotonicWallClock;
use super::{Devices, RuntimeError, TravellerDisplay};
use crate::record::Prompt;
use crate::types::{Device, Door, Time};
use device_drivers::devices::{
    CaptureError, ChipRead, DeviceFault, DeviceFuture, DocumentReader, FaultKind,
    FingerprintScanner, LaneCommand, LaneInput, LaneIo, LiveCapture, Presence, ReadError,
};
use device_drivers::sim::{
    DoorView, Injection, Stream, TravellerId, TravellerSpec, World, WorldCommand,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;
use tokio::time::Instant;

/// World time: real elapsed time since the start, times the speed factor.
#[derive(Clone, Copy, Debug)]
struct WorldClock {
    start: Instant,
    start_ms: u64,
    speed: f64,
}

impl WorldClock {
    fn now(&self) -> Time {
        let real = self.start.elapsed().as_secs_f64() * 1000.0;
        Time(self.start_ms + (real * self.speed) as u64)
    }
    fn instant_at(&self, t: Time) -> Instant {
        let world_ms = t.0.saturating_sub(self.start_ms) as f64;
        self.start + Duration::from_secs_f64(world_ms / self.speed / 1000.0)
    }
}

/// The simulated lane's devices and its watchlist, with the stepping task spawned on the
/// current tokio runtime.
pub fn devices(sim: &SimSection, clock: MonotonicWallClock) -> Result<Devices, RuntimeError> {
    devices_with_lane(sim, clock).map(|(d, _)| d)
}

/// A handle on a running simulated lane, for drivers that play the world as well as run
/// the gate (`gate-sim demo`, tests): add travellers, inject faults, look at the doors.
#[derive(Clone)]
pub struct SimLane {
    world: Shared,
    clock: WorldClock,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for SimLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimLane").finish_non_exhaustive()
    }
}

impl SimLane {
    /// The world's current time.
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// Runs `f` on the world, then wakes the stepping task (which re-plans its sleep).
    fn change<T>(&self, f: impl FnOnce(&mut World, Time) -> T) -> T {
        let out = {
            let mut w = lock(&self.world);
            let now = self.clock.now();
            f(&mut w, now)
        };
        self.wake.notify_one();
        out
    }

    /// A traveller who joins the queue now.
    pub fn add_traveller(&self, spec: TravellerSpec) -> TravellerId {
        self.change(|w, now| w.add_traveller(now, spec))
    }

    /// Something that happens to the lane now (a fault, the emergency input).
    pub fn inject(&self, injection: Injection) {
        self.change(|w, now| w.inject(now, injection));
    }

    /// Starts, replaces or (with `None`) stops the stream of generated travellers.
    pub fn set_stream(&self, stream: Option<Stream>) {
        self.change(|w, now| w.set_stream(now, stream));
    }

    /// Where `door` physically is now.
    pub fn door(&self, door: Door) -> DoorView {
        let w = lock(&self.world);
        w.door(door, self.clock.now())
    }

    /// People queueing at the reader.
    pub fn queue_len(&self) -> usize {
        lock(&self.world).queue_len()
    }

    /// People in the mantrap.
    pub fn occupancy(&self) -> u8 {
        lock(&self.world).occupancy()
    }
}

/// [`devices`], plus a [`SimLane`] handle on the world they simulate.
pub fn devices_with_lane(
    sim: &SimSection,
    clock: MonotonicWallClock,
) -> Result<(Devices, SimLane), RuntimeError> {
    use super::clock::Clock;
    let mut world = World::new(sim.lane.clone(), sim.seed).map_err(|e| RuntimeError::Device {
        device: Device::LaneIo,
        detail: format!("sim.lane: {e}"),
    })?;
    let wclock = WorldClock {
        start: Instant::now(),
        start_ms: clock.now().0,
        speed: sim.speed,
    };
    world.set_stream(
        wclock.now(),
        Some(Stream {
            mean_gap_ms: sim.mean_arrival_gap_ms,
            mix: sim.mix.iter().map(|(b, w)| (*b, *w)).collect(),
        }),
    );
    let world: Shared = Arc::new(Mutex::new(world));
    let adapter = Adapter::default();
    let offline: Offline = adapter.offline.clone();
    let (cmd_tx, cmd_rx) = unbounded_channel();
    let (reader_tx, reader_rx) = unbounded_channel();
    let (scan_tx, scan_rx) = unbounded_channel();
    let (lane_tx, lane_rx) = unbounded_channel();
    let router = Router {
        reader: reader_tx,
        scanner: scan_tx,
        lane: lane_tx,
        adapter,
    };
    let wake = Arc::new(Notify::new());
    tokio::spawn(step_world(
        world.clone(),
        wclock,
        cmd_rx,
        router,
        wake.clone(),
    ));
    let lane = SimLane {
        world: world.clone(),
        clock: wclock,
        wake,
    };
    let devices = Devices {
        document: Box::new(SimReader {
            cmd: cmd_tx.clone(),
            rx: reader_rx,
            offline: offline.clone(),
        }),
        fingerprint: Box::new(SimScanner {
            cmd: cmd_tx.clone(),
            rx: scan_rx,
            offline,
        }),
        io: Box::new(SimLaneIo {
            cmd: cmd_tx.clone(),
            rx: lane_rx,
        }),
        display: Box::new(SimDisplay { cmd: cmd_tx }),
        screening: Some(Box::new(SimListings { world })),
    };
    Ok((devices, lane))
}

/// Routes world signals to the device channels.
struct Router {
    reader: UnboundedSender<ReaderMsg>,
    scanner: UnboundedSender<Result<LiveCapture, CaptureError>>,
    lane: UnboundedSender<Result<LaneInput, DeviceFault>>,
    adapter: Adapter,
}

impl Router {
    /// Routes one signal; returns a command for the world when one is due at once.
    fn route(&mut self, s: device_drivers::sim::Signal) -> Option<WorldCommand> {
        match self.adapter.route(s) {
            Routed::Reader(m) => {
                let _ = self.reader.send(m);
            }
            Routed::Scanner(r) => {
                let _ = self.scanner.send(r);
            }
            Routed::Lane(r) => {
                let _ = self.lane.send(r);
            }
            // The reader's and scanner's probes find them working again.
            Routed::Recovered(_) | Routed::Nothing => {}
            Routed::World(c) => return Some(c),
        }
        None
    }
}

async fn step_world(
    world: Shared,
    clock: WorldClock,
    mut cmds: UnboundedReceiver<WorldCommand>,
    mut router: Router,
    poke: Arc<Notify>,
) {
    {
        // Like a real lane I/O once its inputs have settled: every input's state once
        // (a restarted gate drives no door before it knows where both are).
        let mut w = lock(&world);
        let now = clock.now();
        for s in w.inputs_now(now) {
            if let Some(c) = router.route(s) {
                w.command(now, c);
            }
        }
    }
    loop {
        let wake = {
            let mut w = lock(&world);
            let now = clock.now();
            let mut signals = w.advance_to(now);
            while !signals.is_empty() {
                for s in signals {
                    if let Some(c) = router.route(s) {
                        w.command(now, c);
                    }
                }
                // A command issued while routing may be due at once.
                signals = w.advance_to(now);
            }
            w.next_wakeup()
        };
        let sleep = tokio::time::sleep_until(wake.map_or_else(
            || Instant::now() + Duration::from_secs(3600),
            |t| clock.instant_at(t),
        ));
        tokio::select! {
            c = cmds.recv() => match c {
                None => return,
                Some(c) => {
                    let mut w = lock(&world);
                    let now = clock.now();
                    for s in w.advance_to(now) {
                        if let Some(c) = router.route(s) {
                            w.command(now, c);
                        }
                    }
                    w.command(now, c);
                }
            },
            () = sleep => {}
            () = poke.notified() => {}
        }
    }
}

/// Sends `cancel` when dropped before [`CancelGuard::done`].
struct CancelGuard<'a> {
    cmd: &'a UnboundedSender<WorldCommand>,
    cancel: Option<WorldCommand>,
}

impl CancelGuard<'_> {
    fn done(mut self) {
        self.cancel = None;
    }
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.cancel.take() {
            let _ = self.cmd.send(c);
        }
    }
}

fn gone() -> DeviceFault {
    DeviceFault::new(FaultKind::Unavailable, "the simulated lane stopped")
}

/// The simulated document reader.
struct SimReader {
    cmd: UnboundedSender<WorldCommand>,
    rx: UnboundedReceiver<ReaderMsg>,
    offline: Offline,
}

impl DocumentReader for SimReader {
    fn next_presence(&mut self) -> DeviceFuture<'_, Result<Presence, DeviceFault>> {
        Box::pin(async move {
            loop {
                match self.rx.recv().await {
                    Some(ReaderMsg::Presence(p)) => return Ok(p),
                    Some(ReaderMsg::Fault(f)) => return Err(f),
                    Some(ReaderMsg::Read(_)) => {} // the answer of an abandoned read
                    None => return Err(gone()),
                }
            }
        })
    }

    fn read(&mut self) -> DeviceFuture<'_, Result<ChipRead, ReadError>> {
        Box::pin(async move {
            // Answers of reads abandoned earlier are stale.
            while let Ok(m) = self.rx.try_recv() {
                if let ReaderMsg::Fault(f) = m {
                    return Err(ReadError::Device(f));
                }
            }
            if self.cmd.send(WorldCommand::ReadDocument).is_err() {
                return Err(ReadError::Device(gone()));
            }
            let guard = CancelGuard {
                cmd: &self.cmd,
                cancel: Some(WorldCommand::CancelRead),
            };
            let result = loop {
                match self.rx.recv().await {
                    Some(ReaderMsg::Read(r)) => break r,
                    Some(ReaderMsg::Fault(f)) => {
                        guard.done();
                        return Err(ReadError::Device(f));
                    }
                    Some(ReaderMsg::Presence(_)) => {}
                    None => {
                        guard.done();
                        return Err(ReadError::Device(gone()));
                    }
                }
            };
            guard.done();
            chip_read(result)
        })
    }

    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            if Adapter::is_offline(&self.offline, Device::DocumentReader) {
                Err(DeviceFault::new(
                    FaultKind::Unavailable,
                    "simulated reader offline",
                ))
            } else {
                Ok(())
            }
        })
    }
}

/// The simulated fingerprint scanner.
struct SimScanner {
    cmd: UnboundedSender<WorldCommand>,
    rx: UnboundedReceiver<Result<LiveCapture, CaptureError>>,
    offline: Offline,
}

impl FingerprintScanner for SimScanner {
    fn capture(
        &mut self,
        _timeout: Duration,
    ) -> DeviceFuture<'_, Result<LiveCapture, CaptureError>> {
        // The world's scanner has its own no-finger timeout (`sim.lane.scanner_timeout_ms`).
        Box::pin(async move {
            while self.rx.try_recv().is_ok() {}
            if Adapter::is_offline(&self.offline, Device::FingerprintScanner) {
                return Err(CaptureError::Device(DeviceFault::new(
                    FaultKind::Unavailable,
                    "simulated scanner offline",
                )));
            }
            if self.cmd.send(WorldCommand::Capture { attempt: 0 }).is_err() {
                return Err(CaptureError::Device(gone()));
            }
            let guard = CancelGuard {
                cmd: &self.cmd,
                cancel: Some(WorldCommand::CancelCapture),
            };
            let r = self.rx.recv().await;
            guard.done();
            r.unwrap_or_else(|| Err(CaptureError::Device(gone())))
        })
    }

    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            if Adapter::is_offline(&self.offline, Device::FingerprintScanner) {
                Err(DeviceFault::new(
                    FaultKind::Unavailable,
                    "simulated scanner offline",
                ))
            } else {
                Ok(())
            }
        })
    }
}

/// The simulated lane I/O.
struct SimLaneIo {
    cmd: UnboundedSender<WorldCommand>,
    rx: UnboundedReceiver<Result<LaneInput, DeviceFault>>,
}

impl LaneIo for SimLaneIo {
    fn command(&mut self, command: LaneCommand) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            self.cmd
                .send(WorldCommand::Lane(command))
                .map_err(|_| gone())
        })
    }

    fn next_input(&mut self) -> DeviceFuture<'_, Result<LaneInput, DeviceFault>> {
        Box::pin(async move {
            match self.rx.recv().await {
                Some(r) => r,
                None => std::future::pending().await,
            }
        })
    }
}

/// The simulated travellers read the display.
struct SimDisplay {
    cmd: UnboundedSender<WorldCommand>,
}

impl TravellerDisplay for SimDisplay {
    fn show(&mut self, prompt: Prompt) {
        let _ = self.cmd.send(WorldCommand::Display { cue: prompt });
    }
}

/// A real lane I/O (`[devices.io] kind = "modbus" | "gpio"`) that the simulated lane's
/// travellers watch: the gate's door commands go to `real` and are shown to the
/// simulated lane behind `world_io` as well, so that simulated travellers (who present
/// simulated documents and give simulated thumbs) walk in and out as the doors say.
/// Everything the machine learns of the lane comes from `real`; `world_io`'s own inputs
/// are dropped.
pub fn watched_by_world(real: Box<dyn LaneIo>, world_io: Box<dyn LaneIo>) -> Box<dyn LaneIo> {
    Box::new(Watched {
        real,
        world: world_io,
    })
}

struct Watched {
    real: Box<dyn LaneIo>,
    world: Box<dyn LaneIo>,
}

impl LaneIo for Watched {
    fn command(&mut self, command: LaneCommand) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            // The simulated lane only positions the simulated travellers; its errors do
            // not concern the real lane.
            let _ = self.world.command(command).await;
            self.real.command(command).await
        })
    }

    fn next_input(&mut self) -> DeviceFuture<'_, Result<LaneInput, DeviceFault>> {
        Box::pin(async move {
            loop {
                // Both are cancel-safe channel receives.
                tokio::select! {
                    biased;
                    i = self.real.next_input() => return i,
                    _ = self.world.next_input() => {}
                }
            }
        })
    }
}
