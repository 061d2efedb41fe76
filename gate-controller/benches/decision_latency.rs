//! Decision latency and durable journal throughput (`cargo bench -p gate-controller
//! --bench decision_latency`). Criterion reports means, not tails, so this bench records
//! every sample and prints percentiles.
//!
//! 1. Decision latency: from the last input of a transit (the fingerprint capture arriving
//!    at the shell's core) to the exit-open command leaving it, which includes the match,
//!    the durable SQLite commit of the movement record (WAL, `synchronous=FULL`, a real file
//!    under `target/tmp`, or in `ECHANNEL_BENCH_DIR`) and the machine's steps — exactly
//!    the path `gated` runs. Whole transits are driven through the core, one after another.
//! 2. Durable journal commits per second (one record per transaction).
//!
//! `ECHANNEL_BENCH_TRANSITS` (default 2000) sets the number of transits and commits.

use device_drivers::devices::{
    BiometricTemplate, ChipRead, Holder, LaneCommand, LaneInput, LiveCapture, Presence,
    TemplateFormat,
};
use gate_controller::journal::Journal;
use gate_controller::machine::{Config, Machine};
use gate_controller::record::{Outcome, Reason, Record, TxnId};
use gate_controller::runtime::clock::{Clock, MonotonicWallClock};
use gate_controller::runtime::matcher::SimMatcher;
use gate_controller::runtime::screening::InlineWatchlist;
use gate_controller::runtime::{Core, Input, Output};
use gate_controller::types::{
    CaptureInfo, Document, DocumentKind, Door, DoorPosition, MrzDate, PaStatus, Sensor, Time,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn doc() -> Document {
    Document {
        kind: DocumentKind::Passport,
        issuing_state: "UTO".into(),
        document_number: "L898902C".into(),
        nationality: "UTO".into(),
        date_of_birth: MrzDate {
            yy: 69,
            mm: 8,
            dd: 6,
        },
        date_of_expiry: MrzDate {
            yy: 40,
            mm: 6,
            dd: 23,
        },
        passive_auth: PaStatus::Valid,
        mrz_matches_ocr: true,
        enrolled_thumbs: 2,
    }
}

fn t(s: &str) -> BiometricTemplate {
    BiometricTemplate::new(TemplateFormat::Simulated, s.as_bytes().to_vec())
}

/// Feeds `input`, flushes events as the gate loop does after carrying out the outputs,
/// and returns the outputs.
fn step(core: &mut Core, input: Input) -> Vec<Output> {
    core.input(input);
    let out = drain(core);
    core.flush_events();
    out
}

fn drain(core: &mut Core) -> Vec<Output> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

fn lane(i: LaneInput) -> Input {
    Input::Lane(i)
}

fn reached(door: Door, position: DoorPosition) -> Input {
    lane(LaneInput::DoorReached { door, position })
}

fn beam(sensor: Sensor, active: bool) -> Input {
    lane(LaneInput::Sensor { sensor, active })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name}: n={} p50={:.3} ms p90={:.3} ms p99={:.3} ms max={:.3} ms",
        v.len(),
        ms(percentile(&v, 0.50)),
        ms(percentile(&v, 0.90)),
        ms(percentile(&v, 0.99)),
        ms(percentile(&v, 1.0)),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("ECHANNEL_BENCH_TRANSITS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if benching { 2000 } else { 20 });
    let dir = match std::env::var_os("ECHANNEL_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        // On the build's disk (target/tmp), not a tmpfs that would make fsync free.
        None => tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")),
    }
    .expect("a temporary directory");

    // ---- 1. decision latency through the core --------------------------------------
    let clock = MonotonicWallClock::start();
    let journal = Journal::open(&dir.path().join("latency.sqlite")).expect("journal");
    let machine = Machine::new(
        Config::default(),
        clock.now(),
        journal.next_txn().expect("txn"),
    );
    let mut core = Core::new(
        "bench".into(),
        machine,
        journal,
        Box::new(InlineWatchlist::default()),
        Box::new(SimMatcher),
        Arc::new(clock),
    );
    drain(&mut core);
    step(&mut core, reached(Door::Entry, DoorPosition::Closed));
    step(&mut core, reached(Door::Exit, DoorPosition::Closed));
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let out = step(&mut core, Input::Presence(Presence::Placed));
        let op = out
            .iter()
            .find_map(|o| match o {
                Output::ReadDocument { op } => Some(*op),
                _ => None,
            })
            .expect("a read");
        let chip = ChipRead {
            document: doc(),
            holder: Holder::default(),
            enrolled: vec![t("p/left"), t("p/right")],
        };
        step(
            &mut core,
            Input::DocumentRead {
                op,
                result: Ok(chip),
            },
        );
        step(&mut core, reached(Door::Entry, DoorPosition::Open));
        step(&mut core, beam(Sensor::EntryBeam, true));
        step(&mut core, lane(LaneInput::Occupancy { persons: 1 }));
        step(&mut core, beam(Sensor::EntryBeam, false));
        let out = step(&mut core, reached(Door::Entry, DoorPosition::Closed));
        let op = out
            .iter()
            .find_map(|o| match o {
                Output::Capture { op, .. } => Some(*op),
                _ => None,
            })
            .expect("a capture");
        let live = LiveCapture {
            info: CaptureInfo {
                quality: 80,
                minutiae: 40,
            },
            template: t("p/right#2"),
        };
        // The measured path: capture in → match → durable commit → exit-open out.
        let t0 = Instant::now();
        core.input(Input::Captured {
            op,
            result: Ok(live),
        });
        let mut opened = false;
        while let Some(o) = core.poll_output() {
            if o == Output::Lane(LaneCommand::Door {
                door: Door::Exit,
                position: DoorPosition::Open,
            }) {
                opened = true;
                break;
            }
        }
        samples.push(t0.elapsed());
        assert!(opened, "the exit opened");
        drain(&mut core);
        core.flush_events();
        step(&mut core, reached(Door::Exit, DoorPosition::Open));
        step(&mut core, beam(Sensor::ExitBeam, true));
        step(&mut core, lane(LaneInput::Occupancy { persons: 0 }));
        step(&mut core, beam(Sensor::ExitBeam, false));
        step(&mut core, reached(Door::Exit, DoorPosition::Closed));
    }
    let status = core.status();
    assert_eq!(status.outcomes.cleared, n as u64, "every transit cleared");
    report(
        "decision latency (capture in -> exit-open out, incl. durable commit)",
        samples,
    );

    // ---- 2. durable journal commits ------------------------------------------------
    let mut j = Journal::open(&dir.path().join("commits.sqlite")).expect("journal");
    let mut commits = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let r = Record {
            txn: TxnId(i as u64 + 1),
            outcome: Outcome::Referred,
            reasons: vec![Reason::BiometricMismatch],
            started_at: Time(1),
            decided_at: Time(2),
            document: Some(doc()),
            watchlist: None,
            biometric: None,
            operator: None,
        };
        let t0 = Instant::now();
        j.append_record(Time(3), &r).expect("commit");
        commits.push(t0.elapsed());
    }
    let total = start.elapsed();
    println!(
        "durable journal commits: {n} in {:.3} s = {:.0} commits/s",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    report(
        "journal commit (one record, WAL + synchronous=FULL)",
        commits,
    );
    println!("journal directory: {}", dir.path().display());
}
