//! One transit: document, watchlist, entry, fingerprint, decision, record, exit.

use super::signals::Action;
use super::step::{Phase, Transit};
use super::{Machine, JOURNAL_RETRY_MS};
use crate::decision::{self, WatchlistDecision};
use crate::disk::DiskLevel;
use crate::party::{classify, Party};
use crate::record::{
    AlarmKind, BiometricSummary, GateEvent, MatcherFailure, Outcome, Prompt, Reason, Record, TxnId,
};
use crate::types::{
    CaptureFailure, CaptureInfo, Device, Document, DocumentKey, FaultKind, ReadFailure, Time,
    WatchlistVerdict,
};

impl Machine {
    pub(super) fn on_document_presented(&mut self, now: Time) {
        if self.phase != Phase::Ready {
            return;
        }
        let id = TxnId(self.next_txn);
        self.next_txn += 1;
        self.transit = Some(Transit::new(id, now, self.beams));
        self.emit(GateEvent::TransitStarted { txn: id });
        self.push(Action::ReadDocument);
        self.show(Prompt::ReadingDocument);
        self.set_phase(now, Phase::Reading);
    }

    pub(super) fn on_document_read(&mut self, now: Time, result: Result<Document, ReadFailure>) {
        if self.phase != Phase::Reading {
            return;
        }
        let doc = match result {
            Ok(doc) => doc,
            Err(f) => {
                let reason = Reason::ChipUnreadable {
                    error: f.code,
                    detail: f.detail,
                };
                self.refer_pre_entry(now, vec![reason]);
                return;
            }
        };
        let reasons = decision::check_document(&doc, &self.cfg.policy, now.date());
        let key = DocumentKey {
            issuing_state: doc.issuing_state.clone(),
            document_number: doc.document_number.clone(),
        };
        if let Some(t) = self.transit.as_mut() {
            t.document = Some(doc);
        }
        if !reasons.is_empty() {
            self.refer_pre_entry(now, reasons);
            return;
        }
        self.push(Action::CheckWatchlist { key });
        self.set_phase(now, Phase::CheckingWatchlist);
    }

    pub(super) fn on_watchlist(&mut self, now: Time, verdict: WatchlistVerdict) {
        if self.phase != Phase::CheckingWatchlist {
            return;
        }
        let decision = decision::watchlist_decision(&verdict);
        if matches!(verdict, WatchlistVerdict::Stale { .. }) {
            self.raise(
                AlarmKind::WatchlistStale,
                "watchlist past its staleness limit",
            );
        } else {
            self.clear_alarm(AlarmKind::WatchlistStale);
        }
        if let Some(t) = self.transit.as_mut() {
            t.watchlist = Some(verdict);
        }
        match decision {
            WatchlistDecision::Proceed if self.disk.0 == DiskLevel::StopClearing => {
                // The journal's disk is full: nobody new is let in (a record must always
                // still fit before a door opens). Raised again if acknowledged meanwhile.
                let detail = self.disk.1.clone();
                self.raise(AlarmKind::DiskFull, detail);
                self.refer_pre_entry(now, vec![Reason::DiskFull]);
            }
            WatchlistDecision::Proceed => {
                self.show(Prompt::Enter);
                self.set_phase(now, Phase::Entering);
            }
            WatchlistDecision::Refer(r) => self.refer_pre_entry(now, vec![r]),
            WatchlistDecision::Hold(r) => {
                let detail = format!("{r:?}");
                self.record(now, Outcome::Held, vec![r], None);
                self.raise(AlarmKind::WatchlistHold, detail);
                self.show(Prompt::WaitForOfficer);
                self.set_phase(now, Phase::Held);
            }
        }
    }

    /// The disk guard's level changed: one alarm per level above `Ok`. A traveller
    /// already let in finishes as usual (their record is committed before the exit
    /// opens, or they are let out through the entry if it cannot be); the next one is
    /// referred before entry while the level is `StopClearing` (in `on_watchlist`).
    pub(super) fn on_disk_level(&mut self, level: DiskLevel, detail: String) {
        self.disk = (level, detail.clone());
        match level {
            DiskLevel::Ok => {
                self.clear_alarm(AlarmKind::DiskSpaceLow);
                self.clear_alarm(AlarmKind::DiskFull);
            }
            DiskLevel::Alarm => {
                self.clear_alarm(AlarmKind::DiskFull);
                self.raise(AlarmKind::DiskSpaceLow, detail);
            }
            DiskLevel::StopClearing => {
                self.clear_alarm(AlarmKind::DiskSpaceLow);
                self.raise(AlarmKind::DiskFull, detail);
            }
        }
    }

    /// Who is in the mantrap now.
    pub(super) fn party(&self) -> Party {
        classify(self.occupancy, self.children)
    }

    /// Policy `refer`: one adult came in with one child. Both are sent back out through
    /// the entry to the counter; the exit stays shut; the operator is told.
    pub(super) fn refer_child(&mut self, now: Time) {
        self.raise(
            AlarmKind::AccompaniedChild,
            "a traveller came in with a child: referred to the counter",
        );
        self.record(now, Outcome::Referred, vec![Reason::AccompaniedChild], None);
        // As `let_out`, with the prompt that tells the pair why (no capture runs yet).
        self.show(Prompt::AccompaniedChild);
        self.set_phase(now, Phase::LettingOut { closing: false });
    }

    pub(super) fn on_tailgating(&mut self) {
        if let Some(t) = self.transit.as_mut() {
            if !t.tailgating {
                t.tailgating = true;
            }
        }
        self.raise(
            AlarmKind::Tailgating,
            format!("{} persons in the mantrap", self.occupancy),
        );
        self.show(Prompt::OnePersonOnly);
    }

    pub(super) fn start_capture(&mut self, now: Time, attempt: u8) {
        if let Some(t) = self.transit.as_mut() {
            t.attempts = attempt;
        }
        self.push(Action::CaptureFingerprint { attempt });
        self.show(if attempt > 1 {
            Prompt::TryAgain
        } else {
            Prompt::PlaceThumb
        });
        self.set_phase(now, Phase::Capturing { attempt });
    }

    pub(super) fn on_capture(&mut self, now: Time, result: Result<CaptureInfo, CaptureFailure>) {
        let Phase::Capturing { attempt } = self.phase else {
            return;
        };
        let p = &self.cfg.policy;
        match result {
            Ok(info) if info.minutiae >= p.min_minutiae && info.quality >= p.min_quality => {
                self.push(Action::MatchFingerprint { attempt });
                self.show(Prompt::PleaseWait);
                self.set_phase(now, Phase::Matching { attempt });
            }
            Ok(_) | Err(CaptureFailure::Poor) => {
                if let Some(t) = self.transit.as_mut() {
                    t.poor_captures += 1;
                }
                self.next_attempt(now, attempt);
            }
            Err(CaptureFailure::NoFinger) => self.next_attempt(now, attempt),
        }
    }

    pub(super) fn on_match(&mut self, now: Time, score: f32) {
        let Phase::Matching { attempt } = self.phase else {
            return;
        };
        if let Some(t) = self.transit.as_mut() {
            t.last_score = Some(score);
        }
        if decision::is_match(score, &self.cfg.policy) {
            self.decide_clear(now, Vec::new(), None);
        } else {
            self.next_attempt(now, attempt);
        }
    }

    /// The matcher made no score: a referral with the matcher's error, never a retry
    /// (the same templates would fail again) and never a mismatch.
    pub(super) fn on_match_failed(&mut self, now: Time, error: MatcherFailure) {
        if !matches!(self.phase, Phase::Matching { .. }) {
            return;
        }
        self.refer_inside(now, vec![Reason::MatcherError { error }], None);
    }

    pub(super) fn next_attempt(&mut self, now: Time, attempt: u8) {
        if attempt < self.cfg.policy.max_attempts {
            self.start_capture(now, attempt + 1);
            return;
        }
        let all_poor = self
            .transit
            .as_ref()
            .is_some_and(|t| t.last_score.is_none() && t.poor_captures > 0);
        let reason = if all_poor {
            Reason::BiometricQuality
        } else {
            Reason::BiometricMismatch
        };
        self.refer_inside(now, vec![reason], None);
    }

    pub(super) fn decide_clear(
        &mut self,
        now: Time,
        reasons: Vec<Reason>,
        operator: Option<String>,
    ) {
        self.record(now, Outcome::Cleared, reasons, operator);
        self.show(Prompt::PleaseWait);
        self.set_phase(now, Phase::Committing);
    }

    pub(super) fn on_journaled(&mut self, now: Time, txn: TxnId) {
        let Some(pos) = self.unacked.iter().position(|r| r.txn == txn) else {
            return;
        };
        let record = self.unacked.remove(pos);
        if self.faults.remove(&Device::Journal) {
            self.emit(GateEvent::DeviceRecovered {
                device: Device::Journal,
            });
            self.clear_alarm(AlarmKind::JournalFailure);
        }
        let awaited = self.transit.as_ref().is_some_and(|t| t.id == txn);
        if self.phase == Phase::Committing && awaited && record.outcome == Outcome::Cleared {
            self.show(Prompt::Proceed);
            self.set_phase(now, Phase::Exiting);
        }
    }

    pub(super) fn on_journal_failed(&mut self, now: Time, txn: TxnId, detail: String) {
        let Some(pos) = self.unacked.iter().position(|r| r.txn == txn) else {
            return;
        };
        let record = self.unacked.remove(pos);
        if self.faults.insert(Device::Journal) {
            self.emit(GateEvent::DeviceFault {
                device: Device::Journal,
                kind: Some(FaultKind::Storage),
                detail: detail.clone(),
            });
        }
        self.raise(AlarmKind::JournalFailure, detail);
        let committing = self.phase == Phase::Committing
            && record.outcome == Outcome::Cleared
            && self.transit.as_ref().is_some_and(|t| t.id == txn);
        if committing {
            // The clear decision is not durable, so the exit stays shut: the traveller is
            // referred instead (invariant 1), and that record is retried like any other.
            if let Some(t) = self.transit.as_mut() {
                t.recorded = None;
            }
            self.refer_inside(now, vec![Reason::JournalFailure], None);
        } else {
            // Keep the record and write it again later: nothing journaled is ever dropped.
            self.retry.push(record);
            if self.retry_at.is_none() {
                self.retry_at = Some(now.plus(JOURNAL_RETRY_MS));
            }
        }
    }

    /// Refers before anyone entered: record, notice on the display, then ready.
    pub(super) fn refer_pre_entry(&mut self, now: Time, reasons: Vec<Reason>) {
        self.record(now, Outcome::Referred, reasons, None);
        self.show(Prompt::GoToCounter);
        self.set_phase(now, Phase::Notice);
    }

    pub(super) fn abort_pre_entry(&mut self, now: Time, reason: Reason) {
        if self.phase == Phase::Reading {
            self.push(Action::CancelDocumentRead);
        }
        self.record(now, Outcome::Aborted, vec![reason], None);
        self.finish_transit(now);
    }

    /// Refers someone inside the mantrap: record, then let them out through the entry.
    pub(super) fn refer_inside(
        &mut self,
        now: Time,
        reasons: Vec<Reason>,
        operator: Option<String>,
    ) {
        self.record(now, Outcome::Referred, reasons, operator);
        self.let_out(now);
    }

    pub(super) fn let_out(&mut self, now: Time) {
        if matches!(self.phase, Phase::Capturing { .. }) {
            self.push(Action::CancelCapture);
        }
        self.show(Prompt::GoToCounter);
        self.set_phase(now, Phase::LettingOut { closing: false });
    }

    /// Emits the one outcome record of the current transit (no-op if already recorded).
    pub(super) fn record(
        &mut self,
        now: Time,
        outcome: Outcome,
        reasons: Vec<Reason>,
        operator: Option<String>,
    ) {
        let threshold = self.cfg.policy.biometric_threshold;
        let Some(t) = self.transit.as_mut() else {
            return;
        };
        if t.recorded.is_some() {
            return;
        }
        t.recorded = Some(outcome);
        let biometric = (t.attempts > 0).then_some(BiometricSummary {
            score: t.last_score,
            threshold,
            attempts: t.attempts,
        });
        let mut reasons = reasons;
        if t.tailgating && outcome != Outcome::Cleared && !reasons.contains(&Reason::Tailgating) {
            reasons.push(Reason::Tailgating);
        }
        // A child shut in with the traveller (policy `allow`) is noted whatever the outcome.
        if t.child && !reasons.contains(&Reason::AccompaniedChild) {
            reasons.push(Reason::AccompaniedChild);
        }
        let record = Record {
            txn: t.id,
            outcome,
            reasons,
            started_at: t.started_at,
            decided_at: now,
            document: t.document.clone(),
            watchlist: t.watchlist.clone(),
            biometric,
            operator,
        };
        self.unacked.push(record.clone());
        self.push(Action::Journal { record });
    }

    /// Ends the transit and returns to whatever the gate should be doing when idle.
    pub(super) fn finish_transit(&mut self, now: Time) {
        if self.transit.as_ref().is_some_and(|t| t.recorded.is_none()) {
            // Defensive: every path records first; never leave a transit without one.
            self.record(now, Outcome::Aborted, vec![Reason::NeverEntered], None);
        }
        if let Some(t) = self.transit.take() {
            self.supervise_beams(now, &t);
        }
        self.clear_alarm(AlarmKind::Lingering);
        self.go_idle(now);
    }

    /// Counts transits through which a threshold beam stayed clear although somebody
    /// walked through it; too many in a row is a failed beam.
    pub(super) fn supervise_beams(&mut self, now: Time, t: &Transit) {
        let limit = self.cfg.beam_silent_transits;
        for k in 0..2 {
            if !t.crossed[k] {
                continue;
            }
            if t.beam_seen[k] {
                self.beam_silent[k] = 0;
            } else {
                self.beam_silent[k] = self.beam_silent[k].saturating_add(1);
                if limit > 0 && self.beam_silent[k] >= limit {
                    let why = format!("never broke across {limit} transits");
                    self.on_beam_fault(now, k, &why);
                }
            }
        }
    }

    pub(super) fn go_idle(&mut self, now: Time) {
        let phase = if self.shutdown {
            Phase::Stopped
        } else if self.maintenance {
            Phase::Maintenance
        } else if self.manual_oos
            || self.door_fault
            || self.beam_faulty()
            || !self.faults.is_empty()
        {
            Phase::OutOfService
        } else {
            Phase::Ready
        };
        self.show(match phase {
            Phase::Ready => Prompt::PresentDocument,
            _ => Prompt::OutOfService,
        });
        self.set_phase(now, phase);
        if phase == Phase::Stopped {
            self.push(Action::ShutdownReady);
        }
    }
}
