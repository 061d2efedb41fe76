//! Transaction tests of the scan driver against embedded-hal-mock pins (every read and
//! write of every cycle is expected exactly), and tests of the tokio scan task.

use super::*;
use crate::devices::{LaneCommand, LaneInput, LaneIo};
use crate::types::{Door, DoorPosition, Sensor};
use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};
use embedded_hal_mock::eh1::MockError;
use std::io::ErrorKind;

// Reference map input numbers.
const ENTRY_CLOSED: usize = 0;
const EXIT_CLOSED: usize = 2;
const EXIT_OPEN: usize = 3;
const ENTRY_SAFETY: usize = 4;
const EXIT_SAFETY: usize = 5;
const ENTRY_BEAM: usize = 6;
const EMERGENCY: usize = 12;

/// Pin levels of the reference lane at rest: both doors closed, the normally closed
/// emergency loop intact (high), nothing else active.
fn idle_in() -> [bool; 16] {
    let mut l = [false; 16];
    l[ENTRY_CLOSED] = true;
    l[EXIT_CLOSED] = true;
    l[EMERGENCY] = true;
    l
}

fn with(mut l: [bool; 16], set: &[(usize, bool)]) -> [bool; 16] {
    for &(i, v) in set {
        l[i] = v;
    }
    l
}

/// Output levels by number: entry drive, entry lock, exit drive, exit lock, entry green,
/// entry red, exit green, exit red, buzzer.
type Outs = [bool; 9];
/// Both doors closed and locked, red crosses lit.
const IDLE_OUT: Outs = [false, true, false, true, false, true, false, true, false];
/// Exit open for the traveller: green arrow at the exit.
const EXIT_OPEN_OUT: Outs = [false, true, true, false, false, true, true, false, false];
/// Emergency release: everything open, unlocked, green, buzzer.
const EMERGENCY_OUT: Outs = [true, false, true, false, true, false, true, false, true];

fn st(b: bool) -> State {
    if b {
        State::High
    } else {
        State::Low
    }
}

/// A cycle's script: input levels read, and output levels written (`None`: the scan
/// stops before writing).
struct Cycle {
    inputs: [bool; 16],
    outputs: Option<Outs>,
    /// Input whose read fails in this cycle (the reads after it do not happen).
    fail_input: Option<usize>,
    /// Output whose write fails in this cycle (the others are still written).
    fail_output: Option<usize>,
}

fn ok(inputs: [bool; 16], outputs: Outs) -> Cycle {
    Cycle {
        inputs,
        outputs: Some(outputs),
        fail_input: None,
        fail_output: None,
    }
}

/// Builds mock pins expecting exactly the reads and writes of `cycles`.
fn mock_lane(map: IoMap, cycles: &[Cycle], n_in: usize, n_out: usize) -> ScanLane<Mock, Mock> {
    let err = MockError::Io(ErrorKind::BrokenPipe);
    let mut ins: Vec<Vec<T>> = vec![Vec::new(); n_in];
    let mut outs: Vec<Vec<T>> = vec![Vec::new(); n_out];
    for c in cycles {
        for (i, tx) in ins.iter_mut().enumerate() {
            match c.fail_input {
                Some(f) if i == f => tx.push(T::get(st(c.inputs[i])).with_error(err.clone())),
                Some(f) if i > f => {}
                _ => tx.push(T::get(st(c.inputs[i]))),
            }
        }
        if let Some(o) = c.outputs {
            for (i, tx) in outs.iter_mut().enumerate() {
                let t = T::set(st(o[i]));
                tx.push(if c.fail_output == Some(i) {
                    t.with_error(err.clone())
                } else {
                    t
                });
            }
        }
    }
    let ins = ins.iter().map(Mock::new).collect();
    let outs = outs.iter().map(Mock::new).collect();
    ScanLane::new(map, ins, outs).unwrap()
}

/// Checks that every expected transaction happened.
fn done(lane: ScanLane<Mock, Mock>) {
    let (ins, outs) = lane.release();
    for mut p in ins.into_iter().chain(outs) {
        p.done();
    }
}

fn reference(cycles: &[Cycle]) -> ScanLane<Mock, Mock> {
    mock_lane(IoMap::default(), cycles, 16, 9)
}

fn door(door: Door, position: DoorPosition) -> LaneCommand {
    LaneCommand::Door { door, position }
}

#[test]
fn idle_cycles_read_every_input_and_write_every_output() {
    let mut lane = reference(&[ok(idle_in(), IDLE_OUT), ok(idle_in(), IDLE_OUT)]);
    // First scan: nothing has been stable for two scans yet.
    assert_eq!(lane.scan(0).unwrap(), vec![]);
    // Second scan: every input settles and is reported once, emergency first.
    let got = lane.scan(20).unwrap();
    let sensor = |sensor, active| LaneInput::Sensor { sensor, active };
    let expected = vec![
        LaneInput::Emergency { active: false },
        LaneInput::DoorReached {
            door: Door::Entry,
            position: DoorPosition::Closed,
        },
        LaneInput::DoorReached {
            door: Door::Exit,
            position: DoorPosition::Closed,
        },
        sensor(Sensor::EntrySafety, false),
        sensor(Sensor::ExitSafety, false),
        sensor(Sensor::EntryBeam, false),
        sensor(Sensor::ExitBeam, false),
        LaneInput::MantrapBeam {
            index: 0,
            active: false,
        },
        LaneInput::MantrapBeam {
            index: 1,
            active: false,
        },
        LaneInput::MantrapBeam {
            index: 2,
            active: false,
        },
        LaneInput::Occupancy { persons: 0 },
        LaneInput::Tamper { active: false },
        LaneInput::MotorFault {
            door: Door::Entry,
            active: false,
        },
        LaneInput::MotorFault {
            door: Door::Exit,
            active: false,
        },
    ];
    assert_eq!(got, expected);
    assert_eq!(lane.snapshot(), expected);
    assert_eq!(lane.scans(), 2);
    assert_eq!(lane.last_scan_ms(), Some(20));
    done(lane);
}

#[test]
fn open_exit_command_drives_exit_open_and_lamps_follow() {
    let idle = idle_in();
    // The exit leaves its closed position and reaches open.
    let moving = with(idle, &[(EXIT_CLOSED, false)]);
    let open = with(moving, &[(EXIT_OPEN, true)]);
    let mut lane = reference(&[
        ok(idle, IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(idle, EXIT_OPEN_OUT),
        ok(moving, EXIT_OPEN_OUT),
        ok(open, EXIT_OPEN_OUT),
        ok(open, EXIT_OPEN_OUT),
        // The entry may not open while the exit is not closed.
        ok(open, EXIT_OPEN_OUT),
    ]);
    lane.scan(0).unwrap();
    lane.scan(20).unwrap();
    lane.latch(door(Door::Exit, DoorPosition::Open));
    assert_eq!(lane.scan(40).unwrap(), vec![]);
    assert_eq!(lane.outputs().drive_open, [false, true]);
    assert_eq!(lane.scan(60).unwrap(), vec![]);
    assert_eq!(lane.scan(80).unwrap(), vec![]);
    assert_eq!(
        lane.scan(100).unwrap(),
        vec![LaneInput::DoorReached {
            door: Door::Exit,
            position: DoorPosition::Open
        }]
    );
    lane.latch(door(Door::Entry, DoorPosition::Open));
    assert_eq!(
        lane.scan(120).unwrap(),
        vec![LaneInput::OpenRefused { door: Door::Entry }]
    );
    done(lane);
}

#[test]
fn a_door_command_is_confirmed_after_its_outputs_are_written_even_without_a_change() {
    let idle = idle_in();
    // The exit left closed by an earlier command it had started to carry out: it is
    // still at its closed stop when the close command comes.
    let mut lane = reference(&[
        ok(idle, IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(with(idle, &[(EXIT_CLOSED, false)]), IDLE_OUT),
        ok(with(idle, &[(EXIT_CLOSED, false)]), IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(idle, IDLE_OUT),
    ]);
    lane.scan(0).unwrap();
    lane.scan(20).unwrap();
    lane.latch(door(Door::Exit, DoorPosition::Closed));
    // Written in this scan: nothing to confirm yet (the reading came before the write).
    assert_eq!(lane.scan(40).unwrap(), vec![]);
    // The next scan reads the door at the commanded position: confirmed once.
    let closed = LaneInput::DoorReached {
        door: Door::Exit,
        position: DoorPosition::Closed,
    };
    assert_eq!(lane.scan(60).unwrap(), vec![closed]);
    // A second close command while the closed stop reads open (raw) is not confirmed
    // until the door is back at it; the debounced return is its only report.
    lane.latch(door(Door::Exit, DoorPosition::Closed));
    assert_eq!(lane.scan(80).unwrap(), vec![]);
    assert_eq!(lane.scan(100).unwrap(), vec![]);
    assert_eq!(lane.scan(120).unwrap(), vec![]);
    assert_eq!(lane.scan(140).unwrap(), vec![closed]);
    done(lane);
}

#[test]
fn close_is_refused_while_the_safety_sensor_is_active() {
    let idle = idle_in();
    let open = with(idle, &[(EXIT_CLOSED, false), (EXIT_OPEN, true)]);
    let blocked = with(open, &[(EXIT_SAFETY, true)]);
    // Held open against the close command: red cross at the exit, buzzer.
    let held: Outs = [false, true, true, false, false, true, false, true, true];
    let mut lane = reference(&[
        ok(idle, IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(open, EXIT_OPEN_OUT),
        ok(open, EXIT_OPEN_OUT),
        // Close commanded with someone in the door: it stays open, from the first
        // (raw, undebounced) reading on.
        ok(blocked, held),
        ok(blocked, held),
        ok(blocked, held),
        // Sensor clears: the debounced "active" lasts one more scan, then it closes.
        ok(open, held),
        ok(open, IDLE_OUT),
    ]);
    lane.scan(0).unwrap();
    lane.scan(20).unwrap();
    lane.latch(door(Door::Exit, DoorPosition::Open));
    lane.scan(40).unwrap();
    lane.scan(60).unwrap();
    lane.latch(door(Door::Exit, DoorPosition::Closed));
    assert_eq!(
        lane.scan(80).unwrap(),
        vec![LaneInput::CloseRefused { door: Door::Exit }]
    );
    assert_eq!(
        lane.scan(100).unwrap(),
        vec![LaneInput::Sensor {
            sensor: Sensor::ExitSafety,
            active: true
        }]
    );
    assert_eq!(lane.scan(120).unwrap(), vec![]);
    assert_eq!(lane.scan(140).unwrap(), vec![]);
    assert_eq!(
        lane.scan(160).unwrap(),
        vec![LaneInput::Sensor {
            sensor: Sensor::ExitSafety,
            active: false
        }]
    );
    done(lane);
}

#[test]
fn a_closed_door_stays_closed_when_its_safety_sensor_fires() {
    // Someone leaning on the closed, locked exit from outside does not open it.
    let idle = idle_in();
    let leaning = with(idle, &[(EXIT_SAFETY, true)]);
    let mut lane = reference(&[
        ok(idle, IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(leaning, IDLE_OUT),
        ok(leaning, IDLE_OUT),
    ]);
    for t in 0..4 {
        lane.scan(t * 20).unwrap();
    }
    done(lane);
}

#[test]
fn emergency_opens_everything_in_the_scan_that_reads_it_and_holds_until_reset() {
    let idle = idle_in();
    // The loop opens (wire cut): the input reads low.
    let emergency = with(idle, &[(EMERGENCY, false)]);
    let mut lane = reference(&[
        ok(idle, IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(idle, EXIT_OPEN_OUT),
        ok(emergency, EMERGENCY_OUT),
        // A reset while the input is still active is void.
        ok(emergency, EMERGENCY_OUT),
        ok(idle, EMERGENCY_OUT),
        ok(idle, EMERGENCY_OUT),
        ok(idle, EMERGENCY_OUT),
        // Reset with the input clear: back to the latched commands.
        ok(idle, IDLE_OUT),
    ]);
    lane.scan(0).unwrap();
    lane.scan(20).unwrap();
    lane.latch(door(Door::Exit, DoorPosition::Open));
    lane.scan(40).unwrap();
    lane.latch(door(Door::Exit, DoorPosition::Closed));
    assert_eq!(
        lane.scan(60).unwrap(),
        vec![LaneInput::Emergency { active: true }]
    );
    assert!(lane.emergency_hold());
    lane.latch(LaneCommand::EmergencyReset);
    assert_eq!(lane.scan(80).unwrap(), vec![]);
    assert_eq!(lane.scan(100).unwrap(), vec![]);
    assert_eq!(
        lane.scan(120).unwrap(),
        vec![LaneInput::Emergency { active: false }]
    );
    // Input clear, no reset yet: still held.
    assert_eq!(lane.scan(140).unwrap(), vec![]);
    assert!(lane.emergency_hold());
    lane.latch(LaneCommand::EmergencyReset);
    assert_eq!(lane.scan(160).unwrap(), vec![]);
    assert!(!lane.emergency_hold());
    done(lane);
}

#[test]
fn emergency_release_command_holds_like_the_input() {
    let idle = idle_in();
    let mut lane = reference(&[
        ok(idle, IDLE_OUT),
        ok(idle, EMERGENCY_OUT),
        ok(idle, EMERGENCY_OUT),
        ok(idle, IDLE_OUT),
    ]);
    lane.scan(0).unwrap();
    lane.latch(LaneCommand::EmergencyRelease);
    lane.scan(20).unwrap();
    lane.scan(40).unwrap();
    // Reset then release within one cycle: the release wins; release then reset: reset.
    lane.latch(LaneCommand::EmergencyReset);
    lane.latch(LaneCommand::EmergencyRelease);
    assert!(lane.emergency_hold());
    lane.latch(LaneCommand::EmergencyReset);
    lane.scan(60).unwrap();
    assert!(!lane.emergency_hold());
    done(lane);
}

#[test]
fn a_one_scan_glitch_is_not_reported() {
    let idle = idle_in();
    let beam = with(idle, &[(ENTRY_BEAM, true)]);
    let mut lane = reference(&[
        ok(idle, IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(beam, IDLE_OUT),
        ok(idle, IDLE_OUT),
        ok(beam, IDLE_OUT),
        ok(beam, IDLE_OUT),
    ]);
    lane.scan(0).unwrap();
    lane.scan(20).unwrap();
    assert_eq!(lane.scan(40).unwrap(), vec![]);
    assert_eq!(lane.scan(60).unwrap(), vec![]);
    assert_eq!(lane.scan(80).unwrap(), vec![]);
    assert_eq!(
        lane.scan(100).unwrap(),
        vec![LaneInput::Sensor {
            sensor: Sensor::EntryBeam,
            active: true
        }]
    );
    done(lane);
}

#[test]
fn debounce_of_one_scan_reports_at_once() {
    let idle = idle_in();
    let beam = with(idle, &[(ENTRY_BEAM, true)]);
    let mut lane = reference(&[ok(idle, IDLE_OUT), ok(beam, IDLE_OUT)]).with_debounce_scans(1);
    assert_eq!(lane.scan(0).unwrap().len(), 14);
    assert_eq!(
        lane.scan(20).unwrap(),
        vec![LaneInput::Sensor {
            sensor: Sensor::EntryBeam,
            active: true
        }]
    );
    done(lane);
}

#[test]
fn active_low_signals_are_inverted_on_read_and_write() {
    // A small lane: four inputs and eight outputs wired differently from the reference.
    let map = IoMap::from_toml_str(
        r#"
[inputs]
entry_closed = { index = 0, active_low = true }
entry_open = { index = 1 }
exit_closed = { index = 0, active_low = true }
exit_open = { index = 1 }
entry_safety = { index = 2, active_low = true }
exit_safety = { index = 3 }
entry_beam = { index = 4, active_low = true }
exit_beam = { index = 5 }
emergency = { index = 6 }
"#,
    );
    // Two signals on one input are refused.
    assert!(map.unwrap_err().to_string().contains("inputs.exit_closed"));
    let map = IoMap::from_toml_str(
        r#"
[inputs]
entry_closed = { index = 0, active_low = true }
entry_open = { index = 1 }
exit_closed = { index = 2 }
exit_open = { index = 3 }
entry_safety = { index = 4, active_low = true }
exit_safety = { index = 5 }
entry_beam = { index = 6, active_low = true }
exit_beam = { index = 7 }
emergency = { index = 8 }

[outputs]
entry_drive_open = { index = 7 }
entry_lock = { index = 6, active_low = true }
exit_drive_open = { index = 5 }
exit_lock = { index = 4, active_low = true }
entry_lamp_green = { index = 3 }
entry_lamp_red = { index = 2, active_low = true }
exit_lamp_green = { index = 1 }
exit_lamp_red = { index = 0, active_low = true }
"#,
    )
    .unwrap();
    // At rest: entry closed (reads low), entry safety clear (reads high), entry beam
    // clear (reads high), exit closed (reads high), emergency (active-high here) low.
    let rest = {
        let mut l = [false; 16];
        l[4] = true;
        l[6] = true;
        l[2] = true;
        l
    };
    // Locks and red lamps are on and active-low: driven low; drives and greens low.
    let out_rest: Outs = [
        false, false, false, false, false, false, false, false, false,
    ];
    // Entry beam broken: the active-low input goes low.
    let beam = with(rest, &[(6, false)]);
    let mut lane = mock_lane(
        map,
        &[ok(rest, out_rest), ok(beam, out_rest), ok(beam, out_rest)],
        9,
        8,
    );
    lane.scan(0).unwrap();
    lane.scan(20).unwrap();
    assert_eq!(
        lane.scan(40).unwrap(),
        vec![LaneInput::Sensor {
            sensor: Sensor::EntryBeam,
            active: true
        }]
    );
    assert_eq!(lane.outputs().lock, [true, true]);
    assert_eq!(lane.outputs().red, [true, true]);
    done(lane);
}

#[test]
fn a_failed_input_read_is_an_io_error_and_writes_nothing() {
    let idle = idle_in();
    let mut lane = reference(&[
        ok(idle, IDLE_OUT),
        Cycle {
            inputs: idle,
            outputs: None,
            fail_input: Some(ENTRY_SAFETY),
            fail_output: None,
        },
        ok(idle, IDLE_OUT),
    ]);
    lane.scan(0).unwrap();
    let e = lane.scan(20).unwrap_err();
    assert!(
        matches!(&e, IoError::Input { index: 4, signal, .. } if signal == "entry_safety"),
        "{e:?}"
    );
    assert!(e.to_string().contains("entry_safety"), "{e}");
    let f = crate::devices::DeviceFault::from(e);
    assert_eq!(f.kind, crate::devices::FaultKind::Link);
    // The failed scan did not count towards debouncing: this is the second good scan.
    assert_eq!(lane.scan(40).unwrap().len(), 14);
    done(lane);
}

#[test]
fn a_failed_output_write_still_writes_the_others() {
    let idle = idle_in();
    let mut lane = reference(&[Cycle {
        inputs: idle,
        outputs: Some(IDLE_OUT),
        fail_input: None,
        fail_output: Some(3),
    }]);
    let e = lane.scan(0).unwrap_err();
    assert!(
        matches!(&e, IoError::Output { index: 3, signal, .. } if signal == "exit_lock"),
        "{e:?}"
    );
    done(lane);
}

#[test]
fn too_few_pins_are_refused() {
    let ins: Vec<Mock> = (0..12).map(|_| Mock::new(&[])).collect();
    let outs: Vec<Mock> = (0..9).map(|_| Mock::new(&[])).collect();
    let keep: Vec<Mock> = ins.iter().chain(&outs).cloned().collect();
    let e = ScanLane::new(IoMap::default(), ins, outs).err().unwrap();
    for mut p in keep {
        p.done();
    }
    assert_eq!(
        e,
        IoError::PinCount {
            side: "input",
            needed: 16,
            given: 12
        }
    );
}

// ---- the tokio scan task -----------------------------------------------------------

pub(crate) mod bank {
    //! Pins backed by a shared bit vector (a stand-in for wiring, usable across threads).
    use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    /// A shared set of pin levels.
    #[derive(Clone)]
    pub struct Bank(pub Arc<Mutex<Vec<bool>>>);

    impl Bank {
        pub fn new(levels: &[bool]) -> Bank {
            Bank(Arc::new(Mutex::new(levels.to_vec())))
        }
        pub fn get(&self, i: usize) -> bool {
            self.0.lock().unwrap()[i]
        }
        pub fn set(&self, i: usize, v: bool) {
            self.0.lock().unwrap()[i] = v;
        }
        pub fn levels(&self) -> Vec<bool> {
            self.0.lock().unwrap().clone()
        }
        pub fn pins(&self) -> Vec<BankPin> {
            let n = self.0.lock().unwrap().len();
            (0..n).map(|i| BankPin(self.clone(), i)).collect()
        }
    }

    /// One pin of a [`Bank`].
    pub struct BankPin(pub Bank, pub usize);

    impl ErrorType for BankPin {
        type Error = Infallible;
    }
    impl InputPin for BankPin {
        fn is_high(&mut self) -> Result<bool, Infallible> {
            Ok(self.0.get(self.1))
        }
        fn is_low(&mut self) -> Result<bool, Infallible> {
            Ok(!self.0.get(self.1))
        }
    }
    impl OutputPin for BankPin {
        fn set_low(&mut self) -> Result<(), Infallible> {
            self.0.set(self.1, false);
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Infallible> {
            self.0.set(self.1, true);
            Ok(())
        }
    }
}

use bank::Bank;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A process image whose exchange fails while `down` is set (a lost link).
struct Flaky {
    down: Arc<AtomicBool>,
}

impl ProcessImage for Flaky {
    fn read_inputs(
        &mut self,
    ) -> crate::devices::DeviceFuture<'_, Result<(), crate::devices::DeviceFault>> {
        let down = self.down.load(Ordering::SeqCst);
        Box::pin(async move {
            if down {
                Err(crate::devices::DeviceFault::new(
                    crate::devices::FaultKind::Link,
                    "connection refused",
                ))
            } else {
                Ok(())
            }
        })
    }
    fn write_outputs(
        &mut self,
    ) -> crate::devices::DeviceFuture<'_, Result<(), crate::devices::DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}

async fn next(io: &mut impl LaneIo) -> Result<LaneInput, crate::devices::DeviceFault> {
    tokio::time::timeout(Duration::from_secs(5), io.next_input())
        .await
        .expect("no lane input within 5 s")
}

#[tokio::test]
async fn scan_task_reports_changes_applies_commands_and_recovers() {
    let inputs = Bank::new(&idle_in());
    let outputs = Bank::new(&[false; 9]);
    let lane = ScanLane::new(IoMap::default(), inputs.pins(), outputs.pins()).unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let mut io = ScanLaneIo::spawn(Flaky { down: down.clone() }, lane, Duration::from_millis(2));
    // Initial states.
    assert_eq!(
        next(&mut io).await.unwrap(),
        LaneInput::Emergency { active: false }
    );
    for _ in 0..13 {
        next(&mut io).await.unwrap();
    }
    assert_eq!(outputs.levels(), IDLE_OUT.to_vec());
    // A command is applied within a cycle or two.
    io.command(door(Door::Exit, DoorPosition::Open))
        .await
        .unwrap();
    inputs.set(EXIT_CLOSED, false);
    inputs.set(EXIT_OPEN, true);
    assert_eq!(
        next(&mut io).await.unwrap(),
        LaneInput::DoorReached {
            door: Door::Exit,
            position: DoorPosition::Open
        }
    );
    assert_eq!(outputs.levels(), EXIT_OPEN_OUT.to_vec());
    // Link lost: one fault, however many cycles fail.
    down.store(true, Ordering::SeqCst);
    let f = next(&mut io).await.unwrap_err();
    assert!(f.detail.contains("connection refused"), "{f}");
    tokio::time::sleep(Duration::from_millis(30)).await;
    inputs.set(ENTRY_BEAM, true);
    // Link back: Recovered, then every current state (including what changed meanwhile).
    down.store(false, Ordering::SeqCst);
    assert_eq!(next(&mut io).await.unwrap(), LaneInput::Recovered);
    let mut snapshot = Vec::new();
    for _ in 0..14 {
        snapshot.push(next(&mut io).await.unwrap());
    }
    // The beam broken during the outage is still being debounced in the first good
    // scan: the snapshot has it clear, the next scan reports it.
    assert!(snapshot.contains(&LaneInput::Sensor {
        sensor: Sensor::EntryBeam,
        active: false
    }));
    assert_eq!(
        next(&mut io).await.unwrap(),
        LaneInput::Sensor {
            sensor: Sensor::EntryBeam,
            active: true
        }
    );
    assert!(snapshot.contains(&LaneInput::DoorReached {
        door: Door::Exit,
        position: DoorPosition::Open
    }));
    assert_eq!(snapshot[0], LaneInput::Emergency { active: false });
}

#[tokio::test]
async fn a_command_is_applied_at_once_not_at_the_next_scan() {
    let inputs = Bank::new(&idle_in());
    let outputs = Bank::new(&[false; 9]);
    let lane = ScanLane::new(IoMap::default(), inputs.pins(), outputs.pins())
        .unwrap()
        .with_debounce_scans(1);
    // One scan now, the next in a minute.
    let mut io = ScanLaneIo::spawn(DirectPins, lane, Duration::from_secs(60));
    settle(&outputs, IDLE_OUT).await;
    io.command(door(Door::Exit, DoorPosition::Open))
        .await
        .unwrap();
    settle(&outputs, EXIT_OPEN_OUT).await;
    // The interlock still holds between scans: the entry does not open while the exit is.
    io.command(door(Door::Entry, DoorPosition::Open))
        .await
        .unwrap();
    for _ in 0..14 {
        next(&mut io).await.unwrap();
    }
    assert_eq!(
        next(&mut io).await.unwrap(),
        LaneInput::OpenRefused { door: Door::Entry }
    );
    assert_eq!(outputs.levels(), EXIT_OPEN_OUT.to_vec());
}

#[tokio::test]
async fn scan_task_releases_on_emergency_without_any_consumer() {
    let inputs = Bank::new(&idle_in());
    let outputs = Bank::new(&[false; 9]);
    let lane = ScanLane::new(IoMap::default(), inputs.pins(), outputs.pins()).unwrap();
    let io = ScanLaneIo::spawn(DirectPins, lane, Duration::from_millis(2));
    settle(&outputs, IDLE_OUT).await;
    inputs.set(EMERGENCY, false);
    settle(&outputs, EMERGENCY_OUT).await;
    // Dropping the device stops the task: the outputs are no longer written.
    drop(io);
    tokio::time::sleep(Duration::from_millis(10)).await;
    outputs.set(0, false);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!outputs.get(0));
}

/// Waits (up to 5 s, the machine is shared) until the output pins read `want`.
async fn settle(outputs: &Bank, want: Outs) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while outputs.levels() != want.to_vec() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outputs {:?}, want {want:?}",
            outputs.levels()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn an_adult_with_child_input_reports_one_head_count_with_the_occupancy() {
    let mut map = IoMap::default();
    map.inputs.adult_with_child = Some(PinRef::high(16));
    let mut level = [false; 17];
    level[0] = true; // entry closed
    level[2] = true; // exit closed
    level[12] = true; // emergency loop closed (normal)
    let inputs = bank::Bank::new(&level);
    let outputs = bank::Bank::new(&[false; 9]);
    let mut lane = ScanLane::new(map, inputs.pins(), outputs.pins())
        .unwrap()
        .with_debounce_scans(1);
    let first = lane.scan(0).unwrap();
    // The first settled state: one head count, no separate occupancy report.
    assert!(first.contains(&LaneInput::Headcount {
        persons: 0,
        children: 0
    }));
    assert!(!first
        .iter()
        .any(|c| matches!(c, LaneInput::Occupancy { .. })));
    inputs.set(11, true);
    assert_eq!(
        lane.scan(20).unwrap(),
        vec![LaneInput::Occupancy { persons: 1 }]
    );
    inputs.set(16, true);
    let two = LaneInput::Headcount {
        persons: 2,
        children: 1,
    };
    assert_eq!(lane.scan(40).unwrap(), vec![two]);
    assert!(lane.snapshot().ends_with(&[two]), "{:?}", lane.snapshot());
    // The child steps out: the adult alone is still there.
    inputs.set(16, false);
    assert_eq!(
        lane.scan(60).unwrap(),
        vec![LaneInput::Headcount {
            persons: 1,
            children: 0
        }]
    );
    // Both leave in the same scan: one report, nobody left.
    inputs.set(16, true);
    lane.scan(80).unwrap();
    inputs.set(16, false);
    inputs.set(11, false);
    assert_eq!(
        lane.scan(100).unwrap(),
        vec![LaneInput::Headcount {
            persons: 0,
            children: 0
        }]
    );
}
