//! A small in-process lane for tests of the other devices: doors that reach their
//! position 30 ms after a command, and one traveller at a time who walks in when the
//! entry opens for them and out through whichever door opens next.
#![allow(dead_code)]

use device_drivers::devices::{
    CaptureError, DeviceFault, DeviceFuture, FaultKind, FingerprintScanner, LaneCommand, LaneInput,
    LaneIo, LiveCapture,
};
use device_drivers::types::{Door, DoorPosition, Sensor};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::sleep;

/// Where the lane's one traveller is.
#[derive(Default, Debug)]
pub struct Lane {
    /// Somebody waits at the entry (set by the test when they present a document).
    pub waiting: bool,
    /// Somebody is in the mantrap.
    pub inside: bool,
    /// Travellers who left through the exit.
    pub out_exit: u32,
    /// Travellers who went back out through the entry.
    pub out_entry: u32,
}

/// The lane's I/O (see the module documentation).
pub struct FakeLane {
    lane: Arc<Mutex<Lane>>,
    tx: mpsc::UnboundedSender<LaneInput>,
    rx: mpsc::UnboundedReceiver<LaneInput>,
}

fn beam(sensor: Sensor, active: bool) -> LaneInput {
    LaneInput::Sensor { sensor, active }
}

impl FakeLane {
    /// A lane with both doors closed and nobody in it, and the state tests steer.
    pub fn new() -> (FakeLane, Arc<Mutex<Lane>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let lane = Arc::new(Mutex::new(Lane::default()));
        (
            FakeLane {
                lane: lane.clone(),
                tx,
                rx,
            },
            lane,
        )
    }

    fn later(&self, ms: u64, inputs: Vec<LaneInput>) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            sleep(Duration::from_millis(ms)).await;
            for i in inputs {
                let _ = tx.send(i);
                sleep(Duration::from_millis(20)).await;
            }
        });
    }

    fn walk(&self, through: Sensor, persons: u8) {
        self.later(
            100,
            vec![
                beam(through, true),
                LaneInput::Occupancy { persons },
                beam(through, false),
            ],
        );
    }
}

impl LaneIo for FakeLane {
    fn command(&mut self, command: LaneCommand) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            let LaneCommand::Door { door, position } = command else {
                return Ok(());
            };
            self.later(30, vec![LaneInput::DoorReached { door, position }]);
            if position != DoorPosition::Open {
                return Ok(());
            }
            let mut lane = self.lane.lock().unwrap_or_else(|e| e.into_inner());
            match door {
                Door::Exit if lane.inside => {
                    lane.inside = false;
                    lane.out_exit += 1;
                    drop(lane);
                    self.walk(Sensor::ExitBeam, 0);
                }
                Door::Entry if lane.inside => {
                    lane.inside = false;
                    lane.out_entry += 1;
                    drop(lane);
                    self.walk(Sensor::EntryBeam, 0);
                }
                Door::Entry if lane.waiting => {
                    lane.waiting = false;
                    lane.inside = true;
                    drop(lane);
                    self.walk(Sensor::EntryBeam, 1);
                }
                _ => {}
            }
            Ok(())
        })
    }

    fn next_input(&mut self) -> DeviceFuture<'_, Result<LaneInput, DeviceFault>> {
        Box::pin(async move {
            match self.rx.recv().await {
                Some(i) => Ok(i),
                None => Err(DeviceFault::new(FaultKind::Link, "closed")),
            }
        })
    }
}

/// A scanner nobody puts a finger on (for lanes whose documents carry no thumbs).
pub struct NoFinger;

impl FingerprintScanner for NoFinger {
    fn capture(
        &mut self,
        timeout: Duration,
    ) -> DeviceFuture<'_, Result<LiveCapture, CaptureError>> {
        Box::pin(async move {
            sleep(timeout).await;
            Err(CaptureError::NoFinger)
        })
    }

    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}

/// A scanner on which the traveller of the moment puts a new impression of their
/// synthetic finger (`device_drivers::fingerprint::synth`), the one whose enrolment
/// impression the test put into their document's DG3; `None`: nobody's finger.
pub struct SynthFinger {
    /// The seed of the finger placed at the next capture.
    pub finger: Arc<Mutex<Option<u64>>>,
}

impl FingerprintScanner for SynthFinger {
    fn capture(
        &mut self,
        timeout: Duration,
    ) -> DeviceFuture<'_, Result<LiveCapture, CaptureError>> {
        Box::pin(async move {
            let seed = *self.finger.lock().unwrap_or_else(|e| e.into_inner());
            let Some(seed) = seed else {
                sleep(timeout).await;
                return Err(CaptureError::NoFinger);
            };
            sleep(Duration::from_millis(200)).await;
            let live = device_drivers::fingerprint::synth::Finger::generate(seed).impression(
                2,
                &device_drivers::fingerprint::synth::ImpressionParams::default(),
            );
            let minutiae = u16::try_from(live.minutiae.len()).unwrap_or(u16::MAX);
            let bytes = live
                .to_iso2005_bytes()
                .map_err(|e| CaptureError::Poor(e.to_string()))?;
            Ok(LiveCapture {
                info: device_drivers::types::CaptureInfo {
                    quality: 80,
                    minutiae,
                },
                template: device_drivers::devices::BiometricTemplate::new(
                    device_drivers::devices::TemplateFormat::Iso19794_2_2005,
                    bytes,
                ),
            })
        })
    }

    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}
