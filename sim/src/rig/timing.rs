//! `gate-sim rig --timing`: the gate's own share of every step of a transit, measured
//! on the rig's side of the real transports.
//!
//! The rig stamps (monotonic clock) each input it makes visible to the gate and each
//! command the gate sends back: the MRZ written on the OCR pty and the chip put into vpcd,
//! every APDU reaching a chip and every response leaving it, every change of a discrete
//! input of the Modbus module (at the world time it happens, however late the gate reads
//! it), every coil write (when its request arrives), every capture command on the SFM pty
//! and every template written back. For each cleared traveller the steps of the machine
//! then give one pair each — the last input the step waits for, and the command that
//! directly answers it ([`PAIRS`]); the gap between them is the controller's share,
//! transports included (the I/O module's scan cycle and debounce, pcscd, the serial
//! lines).

use crate::lane::{coil, input};
use device_drivers::card::transport::TransportError;
use device_drivers::card::vpcd::VirtualCard;
use device_drivers::fingerprint::pty::ScannerEvent;
use device_drivers::sim::TravellerId;
use device_drivers::types::Door;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The step pairs measured, in the order of a transit:
///
/// 1. `document_to_first_apdu`: the later of the MRZ fully written on the OCR pty and
///    the chip put into vpcd → the first APDU reaching the chip;
/// 2. `chip_to_entry_open`: the chip's last response sent → the entry door driven open
///    (coil write);
/// 3. `entered_to_entry_close`: the last of entry door open, somebody in the mantrap,
///    entry beam clear, entry safety field clear (input changes) → the entry door driven
///    closed;
/// 4. `entry_closed_to_capture`: entry door closed (input) → the capture command on the
///    SFM pty;
/// 5. `template_to_exit_open`: the template written on the SFM pty (the last capture
///    before the decision) → the exit door driven open;
/// 6. `out_to_exit_close`: the last of exit door open, mantrap empty, exit beam clear,
///    exit safety field clear → the exit door driven closed.
pub const PAIRS: [&str; 6] = [
    "document_to_first_apdu",
    "chip_to_entry_open",
    "entered_to_entry_close",
    "entry_closed_to_capture",
    "template_to_exit_open",
    "out_to_exit_close",
];

/// What happened to a traveller's chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChipEvent {
    /// Put into vpcd (the card connects to the reader).
    Inserted,
    /// A command APDU reached the chip.
    Command,
    /// The chip's response left it.
    Response,
}

/// Chip events of every traveller, shared with the card threads.
pub type ChipLog = Arc<Mutex<Vec<(Instant, TravellerId, ChipEvent)>>>;

/// Pushes `ev` of `who` into `log` now.
pub fn note_chip(log: &ChipLog, who: TravellerId, ev: ChipEvent) {
    let stamp = Instant::now();
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((stamp, who, ev));
}

/// A virtual card that notes when each APDU arrives and when its response leaves.
pub struct TimedCard<C> {
    inner: C,
    who: TravellerId,
    log: ChipLog,
}

impl<C> TimedCard<C> {
    /// `inner`, the chip of `who`, noted in `log`.
    pub fn new(inner: C, who: TravellerId, log: ChipLog) -> TimedCard<C> {
        TimedCard { inner, who, log }
    }
}

impl<C: VirtualCard> VirtualCard for TimedCard<C> {
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }

    fn power_off(&mut self) {
        self.inner.power_off();
    }

    fn power_on(&mut self) {
        self.inner.power_on();
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn apdu(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        note_chip(&self.log, self.who, ChipEvent::Command);
        let r = self.inner.apdu(command);
        note_chip(&self.log, self.who, ChipEvent::Response);
        r
    }
}

/// Everything stamped during a run, in µs since the lane's clock start.
#[derive(Clone, Debug, Default)]
pub struct Marks {
    /// MRZ fully written on the OCR pty, per traveller.
    pub mrz: Vec<(u64, TravellerId)>,
    /// Chip events.
    pub chip: Vec<(u64, TravellerId, ChipEvent)>,
    /// Scanner events.
    pub scanner: Vec<(u64, ScannerEvent)>,
    /// Discrete input changes (address, new state).
    pub inputs: Vec<(u64, usize, bool)>,
    /// Coil writes that changed a coil (address, new state).
    pub coils: Vec<(u64, usize, bool)>,
}

/// µs from `origin` to `at` (0 if before).
pub fn micros(origin: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(origin).as_micros()).unwrap_or(u64::MAX)
}

/// Distribution of one set of gaps, in ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Gaps measured.
    pub count: u64,
    /// Median (`null` if none).
    pub median: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl Stats {
    /// Nearest-rank percentiles of `gaps_us`.
    pub fn of(gaps_us: &[u64]) -> Stats {
        let mut v = gaps_us.to_vec();
        v.sort_unstable();
        let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
        let pick = |p: f64| super::percentile(&v, p).map(ms);
        Stats {
            count: v.len() as u64,
            median: pick(0.5),
            p90: pick(0.9),
            p99: pick(0.99),
            max: v.last().copied().map(ms),
        }
    }
}

/// One cleared traveller's gaps.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TravellerGaps {
    /// Name.
    pub name: String,
    /// Pair name → gap in ms.
    pub gaps_ms: BTreeMap<String, f64>,
}

/// The `timing` object of the report (`gate-sim rig --timing`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// Per pair of [`PAIRS`]: its gaps over the cleared travellers.
    pub pairs: BTreeMap<String, Stats>,
    /// Every pair's gaps together: the controller's share of a step.
    pub controller_share_ms: Stats,
    /// Inside the chip read: a chip's response → the next APDU to it (pcscd and the
    /// gate's reader code, secure messaging included), over every traveller's chip.
    pub apdu_turnaround_ms: Stats,
    /// Passage (document presented → exit closed behind the traveller) over cleared
    /// travellers: median and p90 in ms, as the report's `passage_ms`.
    pub passage_ms: Stats,
    /// Per cleared traveller, their gaps (each pair at most once).
    pub travellers: Vec<TravellerGaps>,
    /// Cleared travellers for whom some pair could not be found (they contribute the
    /// pairs found before it).
    pub incomplete: Vec<String>,
}

/// One event of the merged timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ev {
    Mrz(TravellerId),
    Chip(TravellerId, ChipEvent),
    Scan(ScannerEvent),
    Input(usize, bool),
    Drive(Door, bool),
}

/// The merged timeline, oldest first; coil writes become effective door drives (drive
/// open and not locked), as the doors see them.
fn timeline(m: &Marks) -> Vec<(u64, Ev)> {
    let mut ev: Vec<(u64, Ev)> = Vec::new();
    ev.extend(m.mrz.iter().map(|(t, who)| (*t, Ev::Mrz(*who))));
    ev.extend(m.chip.iter().map(|(t, who, e)| (*t, Ev::Chip(*who, *e))));
    ev.extend(m.scanner.iter().map(|(t, e)| (*t, Ev::Scan(*e))));
    ev.extend(m.inputs.iter().map(|(t, k, on)| (*t, Ev::Input(*k, *on))));
    let mut coils = [false; crate::lane::COILS];
    let mut drives = [false; 2];
    let mut written = m.coils.clone();
    written.sort_by_key(|(t, _, _)| *t);
    for (t, k, on) in &written {
        if let Some(c) = coils.get_mut(*k) {
            *c = *on;
        }
        let now = [
            coils[coil::ENTRY_DRIVE_OPEN] && !coils[coil::ENTRY_LOCK],
            coils[coil::EXIT_DRIVE_OPEN] && !coils[coil::EXIT_LOCK],
        ];
        for (d, door) in [Door::Entry, Door::Exit].into_iter().enumerate() {
            if now[d] != drives[d] {
                ev.push((*t, Ev::Drive(door, now[d])));
            }
        }
        drives = now;
    }
    // Stable: at equal times the order above (inputs before commands) is kept.
    ev.sort_by_key(|(t, _)| *t);
    ev
}

/// The first event at or after `from` (strictly after with `after`) that `want` takes.
fn first(ev: &[(u64, Ev)], from: u64, after: bool, want: impl Fn(&Ev) -> bool) -> Option<u64> {
    ev.iter()
        .find(|(t, e)| (*t > from || (!after && *t == from)) && want(e))
        .map(|(t, _)| *t)
}

/// The last event in `(lo, hi]` that `want` takes.
fn last(ev: &[(u64, Ev)], lo: u64, hi: u64, want: impl Fn(&Ev) -> bool) -> Option<u64> {
    ev.iter()
        .rev()
        .find(|(t, e)| *t > lo && *t <= hi && want(e))
        .map(|(t, _)| *t)
}

/// The gaps of one cleared traveller, in the order of [`PAIRS`], as far as found.
fn gaps_of(ev: &[(u64, Ev)], who: TravellerId) -> Vec<u64> {
    let mut out = Vec::with_capacity(PAIRS.len());
    let mine = |e: &Ev, want: ChipEvent| *e == Ev::Chip(who, want);
    let Some(mrz) = first(ev, 0, false, |e| *e == Ev::Mrz(who)) else {
        return out;
    };
    let inserted = first(ev, mrz, false, |e| mine(e, ChipEvent::Inserted)).unwrap_or(mrz);
    let t0 = mrz.max(inserted);
    let Some(apdu) = first(ev, t0, false, |e| mine(e, ChipEvent::Command)) else {
        return out;
    };
    out.push(apdu - t0);
    let drive = |door: Door, open: bool| move |e: &Ev| *e == Ev::Drive(door, open);
    let Some(entry_open) = first(ev, apdu, false, drive(Door::Entry, true)) else {
        return out;
    };
    let Some(reply) = last(ev, apdu, entry_open, |e| mine(e, ChipEvent::Response)) else {
        return out;
    };
    out.push(entry_open - reply);
    let Some(entry_close) = first(ev, entry_open, true, drive(Door::Entry, false)) else {
        return out;
    };
    let entered = |e: &Ev| {
        matches!(
            e,
            Ev::Input(input::ENTRY_OPEN, true)
                | Ev::Input(input::OCCUPANCY, true)
                | Ev::Input(input::ENTRY_BEAM, false)
                | Ev::Input(input::ENTRY_SAFETY, false)
        )
    };
    let Some(t) = last(ev, entry_open, entry_close, entered) else {
        return out;
    };
    out.push(entry_close - t);
    let Some(capture) = first(ev, entry_close, true, |e| {
        *e == Ev::Scan(ScannerEvent::ScanCommand)
    }) else {
        return out;
    };
    let Some(t) = last(ev, entry_close, capture, |e| {
        *e == Ev::Input(input::ENTRY_CLOSED, true)
    }) else {
        return out;
    };
    out.push(capture - t);
    let Some(exit_open) = first(ev, capture, true, drive(Door::Exit, true)) else {
        return out;
    };
    let Some(t) = last(ev, capture, exit_open, |e| {
        *e == Ev::Scan(ScannerEvent::TemplateSent)
    }) else {
        return out;
    };
    out.push(exit_open - t);
    let Some(exit_close) = first(ev, exit_open, true, drive(Door::Exit, false)) else {
        return out;
    };
    let out_of_lane = |e: &Ev| {
        matches!(
            e,
            Ev::Input(input::EXIT_OPEN, true)
                | Ev::Input(input::OCCUPANCY, false)
                | Ev::Input(input::EXIT_BEAM, false)
                | Ev::Input(input::EXIT_SAFETY, false)
        )
    };
    let Some(t) = last(ev, exit_open, exit_close, out_of_lane) else {
        return out;
    };
    out.push(exit_close - t);
    out
}

/// A chip's response → the next APDU to the same chip, over every chip.
fn apdu_turnarounds(m: &Marks) -> Vec<u64> {
    let mut chip = m.chip.clone();
    chip.sort_by_key(|(t, _, _)| *t);
    let mut last_reply: BTreeMap<u32, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for (t, who, e) in chip {
        match e {
            ChipEvent::Response => {
                last_reply.insert(who.0, t);
            }
            ChipEvent::Command => {
                if let Some(r) = last_reply.remove(&who.0) {
                    out.push(t.saturating_sub(r));
                }
            }
            ChipEvent::Inserted => {
                last_reply.remove(&who.0);
            }
        }
    }
    out
}

/// The timing of a run: `cleared` are the cleared travellers (id, name) and
/// `passages_ms` their passage times.
pub fn measure(m: &Marks, cleared: &[(TravellerId, String)], passages_ms: &[u64]) -> Timing {
    let ev = timeline(m);
    let mut per_pair: Vec<Vec<u64>> = vec![Vec::new(); PAIRS.len()];
    let mut travellers = Vec::new();
    let mut incomplete = Vec::new();
    for (who, name) in cleared {
        let gaps = gaps_of(&ev, *who);
        if gaps.len() < PAIRS.len() {
            incomplete.push(name.clone());
        }
        let mut gaps_ms = BTreeMap::new();
        for (k, g) in gaps.iter().enumerate() {
            per_pair[k].push(*g);
            gaps_ms.insert(PAIRS[k].to_string(), (*g as f64 / 10.0).round() / 100.0);
        }
        travellers.push(TravellerGaps {
            name: name.clone(),
            gaps_ms,
        });
    }
    let all: Vec<u64> = per_pair.iter().flatten().copied().collect();
    let passages_us: Vec<u64> = passages_ms.iter().map(|p| p * 1000).collect();
    Timing {
        pairs: PAIRS
            .iter()
            .zip(&per_pair)
            .map(|(n, g)| (n.to_string(), Stats::of(g)))
            .collect(),
        controller_share_ms: Stats::of(&all),
        apdu_turnaround_ms: Stats::of(&apdu_turnarounds(m)),
        passage_ms: Stats::of(&passages_us),
        travellers,
        incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADA: TravellerId = TravellerId(0);

    /// A cleared transit as the rig would stamp it, `d` µs between input and command.
    fn transit(d: u64) -> Marks {
        let ms = |x: u64| x * 1000;
        let mut m = Marks::default();
        m.mrz.push((ms(10), ADA));
        m.chip.push((ms(11), ADA, ChipEvent::Inserted));
        m.chip.push((ms(11) + d, ADA, ChipEvent::Command));
        m.chip.push((ms(12), ADA, ChipEvent::Response));
        m.chip.push((ms(13), ADA, ChipEvent::Command));
        m.chip.push((ms(14), ADA, ChipEvent::Response));
        // The entry opens: drive and unlock in one write.
        m.coils.push((ms(14) + d, coil::ENTRY_DRIVE_OPEN, true));
        m.inputs.push((ms(15), input::ENTRY_CLOSED, false));
        m.inputs.push((ms(20), input::ENTRY_OPEN, true));
        m.inputs.push((ms(30), input::ENTRY_BEAM, true));
        m.inputs.push((ms(31), input::OCCUPANCY, true));
        m.inputs.push((ms(32), input::ENTRY_BEAM, false));
        m.coils.push((ms(32) + d, coil::ENTRY_DRIVE_OPEN, false));
        m.inputs.push((ms(33), input::ENTRY_OPEN, false));
        m.inputs.push((ms(40), input::ENTRY_CLOSED, true));
        m.scanner.push((ms(40) + d, ScannerEvent::ScanCommand));
        m.scanner.push((ms(45), ScannerEvent::TemplateSent));
        m.coils.push((ms(45) + d, coil::EXIT_DRIVE_OPEN, true));
        m.inputs.push((ms(50), input::EXIT_OPEN, true));
        m.inputs.push((ms(55), input::EXIT_BEAM, true));
        m.inputs.push((ms(56), input::OCCUPANCY, false));
        m.inputs.push((ms(57), input::EXIT_BEAM, false));
        m.coils.push((ms(57) + d, coil::EXIT_DRIVE_OPEN, false));
        m
    }

    #[test]
    fn every_step_of_a_cleared_transit_gives_its_pair() {
        let m = transit(700);
        let t = measure(&m, &[(ADA, "ada".into())], &[47]);
        assert!(t.incomplete.is_empty(), "{t:?}");
        assert_eq!(t.travellers[0].gaps_ms.len(), PAIRS.len());
        for p in PAIRS {
            assert_eq!(t.pairs[p].count, 1, "{p}");
            assert_eq!(t.pairs[p].median, Some(0.7), "{p}");
        }
        assert_eq!(t.controller_share_ms.count, PAIRS.len() as u64);
        assert_eq!(t.controller_share_ms.p99, Some(0.7));
        // Response at 12 ms → command at 13 ms.
        assert_eq!(t.apdu_turnaround_ms.median, Some(1.0));
        assert_eq!(t.passage_ms.median, Some(47.0));
    }

    #[test]
    fn a_locked_door_is_not_driven_and_a_missing_step_is_incomplete() {
        let mut m = transit(2_000);
        // The entry is locked while driven open, unlocked 5 ms later: that is the command.
        m.coils.insert(0, (1_000, coil::ENTRY_LOCK, true));
        let unlock = 14_000 + 5_000;
        m.coils.push((unlock, coil::ENTRY_LOCK, false));
        let t = measure(&m, &[(ADA, "ada".into())], &[47]);
        assert_eq!(t.travellers[0].gaps_ms["chip_to_entry_open"], 5.0);
        // Without the template the exit pairs cannot be found.
        m.scanner.retain(|(_, e)| *e != ScannerEvent::TemplateSent);
        let t = measure(&m, &[(ADA, "ada".into())], &[47]);
        assert_eq!(t.incomplete, vec!["ada".to_string()]);
        assert_eq!(t.pairs["template_to_exit_open"].count, 0);
        assert_eq!(t.pairs["entry_closed_to_capture"].count, 1);
    }
}
