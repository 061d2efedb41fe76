//! [`ScanLaneIo`]: the tokio task that runs a [`ScanLane`] every cycle around a
//! [`ProcessImage`] exchange, behind the [`LaneIo`] device trait.
//!
//! Each cycle: latch the commands received since the last cycle → `image.read_inputs()`
//! → `lane.scan(now)` → `image.write_outputs()` → queue the input changes. The scan runs
//! whether or not anybody is waiting for inputs, so the local interlocks (emergency
//! release within one cycle) do not depend on the controller. A command does not wait for
//! the next cycle: it is latched and applied at once (`image.read_inputs()` →
//! [`ScanLane::apply`], the interlocks on the fresh readings → `image.write_outputs()`),
//! without counting as a debounce scan.
//!
//! A failed cycle is reported once as `Err(DeviceFault)` from [`LaneIo::next_input`];
//! the task keeps cycling, and the first cycle that works again is reported as
//! [`LaneInput::Recovered`] followed by the current state of every input.

use super::scan::ScanLane;
use super::ProcessImage;
use crate::devices::{DeviceFault, DeviceFuture, FaultKind, LaneCommand, LaneInput, LaneIo};
use embedded_hal::digital::{InputPin, OutputPin};
use std::marker::PhantomData;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// Default scan cycle in milliseconds.
pub const DEFAULT_CYCLE_MS: u64 = 20;

/// Marks the backend types without owning them (they live in the task).
type Backend<P, I, O> = PhantomData<fn() -> (P, I, O)>;

/// A lane I/O device running a [`ScanLane`] in its own tokio task. Dropping it stops
/// the task (the outputs keep their last state).
pub struct ScanLaneIo<P, I, O> {
    commands: mpsc::UnboundedSender<LaneCommand>,
    inputs: mpsc::UnboundedReceiver<Result<LaneInput, DeviceFault>>,
    task: JoinHandle<()>,
    _pins: Backend<P, I, O>,
}

impl<P, I, O> ScanLaneIo<P, I, O>
where
    P: ProcessImage + 'static,
    I: InputPin + Send + 'static,
    O: OutputPin + Send + 'static,
{
    /// Starts scanning `lane` every `cycle` (at least 1 ms) with `image` as its process
    /// image. Must be called inside a tokio runtime.
    pub fn spawn(image: P, lane: ScanLane<I, O>, cycle: Duration) -> ScanLaneIo<P, I, O> {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let cycle = cycle.max(Duration::from_millis(1));
        let task = tokio::spawn(run(image, lane, cycle, cmd_rx, in_tx));
        ScanLaneIo {
            commands: cmd_tx,
            inputs: in_rx,
            task,
            _pins: PhantomData,
        }
    }
}

impl<P, I, O> Drop for ScanLaneIo<P, I, O> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run<P, I, O>(
    mut image: P,
    mut lane: ScanLane<I, O>,
    cycle: Duration,
    mut commands: mpsc::UnboundedReceiver<LaneCommand>,
    inputs: mpsc::UnboundedSender<Result<LaneInput, DeviceFault>>,
) where
    P: ProcessImage,
    I: InputPin,
    O: OutputPin,
{
    let start = Instant::now();
    let mut tick = tokio::time::interval(cycle);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut broken = false;
    loop {
        let commanded = tokio::select! {
            _ = tick.tick() => false,
            c = commands.recv() => match c {
                Some(c) => {
                    lane.latch(c);
                    true
                }
                // The device was dropped.
                None => return,
            },
        };
        loop {
            match commands.try_recv() {
                Ok(c) => lane.latch(c),
                Err(mpsc::error::TryRecvError::Empty) => break,
                // The device was dropped.
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        if commanded {
            // Between scans; while the link is down the next cycle applies it.
            if broken {
                continue;
            }
            let result = async {
                image.read_inputs().await?;
                let reports = lane.apply().map_err(DeviceFault::from)?;
                image.write_outputs().await?;
                Ok::<_, DeviceFault>(reports)
            }
            .await;
            let sent = match result {
                Ok(reports) => reports.into_iter().try_for_each(|c| inputs.send(Ok(c))),
                Err(f) => {
                    broken = true;
                    inputs.send(Err(f))
                }
            };
            if sent.is_err() {
                return;
            }
            continue;
        }
        let now_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let result = async {
            image.read_inputs().await?;
            let changes = lane.scan(now_ms).map_err(DeviceFault::from)?;
            image.write_outputs().await?;
            Ok::<_, DeviceFault>(changes)
        }
        .await;
        let sent = match result {
            Ok(changes) if broken => {
                broken = false;
                // The snapshot carries every state; only the interlock reports of this
                // cycle are not states.
                let events = changes.into_iter().filter(|c| {
                    matches!(
                        c,
                        LaneInput::CloseRefused { .. } | LaneInput::OpenRefused { .. }
                    )
                });
                std::iter::once(LaneInput::Recovered)
                    .chain(lane.snapshot())
                    .chain(events)
                    .try_for_each(|c| inputs.send(Ok(c)))
            }
            Ok(changes) => changes.into_iter().try_for_each(|c| inputs.send(Ok(c))),
            Err(f) if !broken => {
                broken = true;
                inputs.send(Err(f))
            }
            Err(_) => Ok(()),
        };
        if sent.is_err() {
            return;
        }
    }
}

impl<P, I, O> LaneIo for ScanLaneIo<P, I, O>
where
    P: ProcessImage + 'static,
    I: InputPin + Send + 'static,
    O: OutputPin + Send + 'static,
{
    fn command(&mut self, command: LaneCommand) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        let r = self
            .commands
            .send(command)
            .map_err(|_| DeviceFault::new(FaultKind::Unavailable, "the I/O scan task has stopped"));
        Box::pin(async move { r })
    }

    fn next_input(&mut self) -> DeviceFuture<'_, Result<LaneInput, DeviceFault>> {
        Box::pin(async move {
            self.inputs.recv().await.unwrap_or_else(|| {
                Err(DeviceFault::new(
                    FaultKind::Unavailable,
                    "the I/O scan task has stopped",
                ))
            })
        })
    }
}
