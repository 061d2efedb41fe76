//! The document reader and the fingerprint scanner with its matcher.

use super::*;

impl World {
    pub(super) fn at_reader(&self) -> Option<u32> {
        self.current
            .filter(|i| self.travellers[*i as usize].mind == Mind::AtReader)
    }

    pub(super) fn read(&mut self, now: Time) {
        if self.offline.contains_key(&Device::DocumentReader) {
            return;
        }
        self.reader_token += 1;
        let who = self
            .at_reader()
            .filter(|i| self.travellers[*i as usize].presented);
        let delay = match who {
            Some(i) => {
                self.travellers[i as usize].read_started = true;
                uniform(&mut self.rng, self.p.chip_read_ms)
            }
            None => self.p.no_card_ms,
        };
        self.schedule(now.plus(delay), Timer::ReadDone(self.reader_token, who));
    }

    pub(super) fn read_result(&self, who: Option<u32>) -> Result<Document, ReadFailure> {
        let fail = |code: ChipFailure, detail: &str| {
            Err(ReadFailure {
                code,
                detail: detail.into(),
            })
        };
        let Some(i) = who else {
            return fail(ChipFailure::NoDocument, "no document on the reader");
        };
        let t = &self.travellers[i as usize];
        if t.mind != Mind::AtReader {
            return fail(
                ChipFailure::CardRemoved,
                "the document was taken off the reader",
            );
        }
        if t.spec.behaviour == Behaviour::UnreadableChip {
            return fail(ChipFailure::NoAnswer, "the chip did not answer");
        }
        match &t.document {
            Some(d) => Ok(d.clone()),
            None => fail(ChipFailure::NoDocument, "no document on the reader"),
        }
    }

    pub(super) fn capture(&mut self, now: Time) {
        if self.offline.contains_key(&Device::FingerprintScanner) {
            return;
        }
        self.capture_token += 1;
        self.last_score = None;
        let len = self.len;
        let who = self.current.filter(|i| {
            let t = &self.travellers[*i as usize];
            matches!(t.mind, Mind::Entering | Mind::Standing) && t.body.c > 0 && t.body.c < len
        });
        let token = self.capture_token;
        let Some(i) = who else {
            let at = now.plus(self.p.scanner_timeout_ms);
            self.schedule(
                at,
                Timer::CaptureDone(token, Err(CaptureFailure::NoFinger), None),
            );
            return;
        };
        let (behaviour, reaction, walk) = {
            let t = &self.travellers[i as usize];
            let walk = (t.body.target - t.body.c).unsigned_abs() / t.body.speed.max(1) as u64;
            (t.spec.behaviour, t.reaction, walk)
        };
        let delay =
            walk + uniform(&mut self.rng, reaction) + uniform(&mut self.rng, self.p.capture_ms);
        let poor = match behaviour {
            Behaviour::PoorQuality => self.p.poor_quality_capture_prob,
            _ => self.p.poor_capture_prob,
        };
        let (result, score) = if self.rng.chance(poor) {
            if self.rng.chance(0.5) {
                (Err(CaptureFailure::Poor), None)
            } else {
                let info = CaptureInfo {
                    quality: self.rng.between(5, 19) as u8,
                    minutiae: self.rng.between(4, 11) as u16,
                };
                (Ok(info), None)
            }
        } else {
            let info = CaptureInfo {
                quality: self.rng.between(40, 95) as u8,
                minutiae: self.rng.between(20, 60) as u16,
            };
            let dist = if behaviour == Behaviour::WrongFinger {
                self.p.impostor
            } else {
                self.p.genuine
            };
            (Ok(info), Some(normal(&mut self.rng, dist)))
        };
        let timer = if delay > self.p.scanner_timeout_ms {
            (
                self.p.scanner_timeout_ms,
                Err(CaptureFailure::NoFinger),
                None,
            )
        } else {
            (delay, result, score)
        };
        self.schedule(
            now.plus(timer.0),
            Timer::CaptureDone(token, timer.1, timer.2),
        );
    }
}
