//! The people: travellers, their companions and wrong-way intruders, what they have in
//! mind, and how they decide what to do next.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mind {
    Scheduled,
    Queued,
    SteppingUp,
    AtReader,
    Entering,
    TurningIn,
    Pausing,
    Standing,
    LeavingForward { emergency: bool },
    LeavingBack,
    Gone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CMind {
    Waiting,
    Following,
    SteppingBack,
    PushingThrough,
    Gone,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Body {
    pub(super) c: i64,
    pub(super) target: i64,
    /// Micrometres per millisecond (= mm/s).
    pub(super) speed: i64,
    /// What trails behind the body (a pulled suitcase), in micrometres: beams and safety
    /// sensors see `[c - half - tail, c + half]`, the overhead occupancy sensor only `c`.
    pub(super) tail: i64,
}

/// Someone on the far side of the exit who walks in the wrong way as soon as the exit
/// door stands open, goes a little way in, and walks back out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IMind {
    Waiting,
    In,
    Pausing,
    Out,
    Gone,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Intruder {
    pub(super) mind: IMind,
    pub(super) body: Body,
}

#[derive(Clone, Debug)]
pub(super) struct Tailgater {
    pub(super) kind: Companion,
    pub(super) mind: CMind,
    pub(super) body: Body,
    pub(super) gap: i64,
    pub(super) passed_exit: bool,
    pub(super) entered: bool,
    /// The overhead sensor measures this person below its child height threshold.
    pub(super) short: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Traveller {
    pub(super) spec: TravellerSpec,
    pub(super) document: Option<Document>,
    pub(super) listing: Option<Listing>,
    pub(super) fate: Fate,
    pub(super) mind: Mind,
    pub(super) body: Body,
    pub(super) reaction: MsRange,
    pub(super) entered: bool,
    pub(super) presented: bool,
    pub(super) present_token: u64,
    /// When they last put their document on the reader.
    pub(super) presented_at: Time,
    pub(super) read_started: bool,
    pub(super) companion: Option<Tailgater>,
}

impl World {
    pub(super) fn stream_gap(&mut self) -> u64 {
        let mean = self.stream.as_ref().map_or(1_000, |s| s.mean_gap_ms.max(1)) as f64;
        (self.rng.exponential(mean).round() as u64).max(1)
    }

    pub(super) fn stream_pick(&mut self) -> Option<Behaviour> {
        let s = self.stream.as_ref()?;
        let total: u64 = s.mix.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut x = self.rng.below(total);
        for (b, w) in &s.mix {
            let w = u64::from(*w);
            if x < w {
                return Some(*b);
            }
            x -= w;
        }
        None
    }

    pub(super) fn arrive(&mut self, now: Time, i: u32) {
        let behaviour = self.travellers[i as usize].spec.behaviour;
        let doc = match self.travellers[i as usize].spec.document.clone() {
            Some(d) => d,
            None => generate_document(&mut self.rng, behaviour, now),
        };
        let listing = match behaviour {
            Behaviour::WatchlistHold => Some(Listing {
                hold: true,
                reason: "SLTD".into(),
            }),
            Behaviour::WatchlistRefer => Some(Listing {
                hold: false,
                reason: "LOST".into(),
            }),
            _ => None,
        };
        if let Some(l) = &listing {
            let key = DocumentKey {
                issuing_state: doc.issuing_state.clone(),
                document_number: doc.document_number.clone(),
            };
            self.listings.insert(key, l.clone());
        }
        let t = &mut self.travellers[i as usize];
        t.document = Some(doc);
        t.listing = listing;
        t.mind = Mind::Queued;
        self.queue.push_back(i);
    }

    /// A traveller decides what to do given the display and where they are.
    pub(super) fn think(&mut self, now: Time, i: u32, out: &mut Vec<Signal>) {
        let Some(cue) = self.display else { return };
        let half = self.half;
        let len = self.len;
        let out_target = -OUTSIDE_FIELD_UM - 4 * half;
        let far_target = len + OUTSIDE_FIELD_UM + 4 * half;
        let stand = self.stand_c;
        let mut represent = None;
        {
            let t = &mut self.travellers[i as usize];
            let b = t.spec.behaviour;
            match t.mind {
                Mind::AtReader => {
                    if !t.read_started {
                        if cue == Prompt::PresentDocument && !t.presented {
                            t.presented = true;
                            t.presented_at = now;
                            t.present_token += 1;
                            represent = Some(t.present_token);
                            out.push(Signal::DocumentPresented {
                                traveller: TravellerId(i),
                            });
                        }
                    } else {
                        match cue {
                            Prompt::Enter => match b {
                                Behaviour::NeverEnters => {}
                                Behaviour::TurnsBack => {
                                    t.mind = Mind::TurningIn;
                                    t.body.target = TURN_BACK_FRONT_UM - half;
                                }
                                _ => {
                                    t.mind = Mind::Entering;
                                    t.body.target = stand;
                                }
                            },
                            // Still the prompt they presented under (the gate has not
                            // noticed the document yet, e.g. while the OCR reads it):
                            // they wait.
                            Prompt::PresentDocument if self.display_since <= t.presented_at => {}
                            Prompt::PresentDocument
                            | Prompt::GoToCounter
                            | Prompt::AccompaniedChild
                            | Prompt::OutOfService
                            | Prompt::Emergency => {
                                t.mind = Mind::LeavingBack;
                                t.body.target = out_target;
                            }
                            _ => {}
                        }
                    }
                }
                Mind::Entering | Mind::Standing | Mind::TurningIn | Mind::Pausing => match cue {
                    Prompt::Proceed if matches!(t.mind, Mind::Entering | Mind::Standing) => {
                        t.mind = Mind::LeavingForward { emergency: false };
                        t.body.target = far_target;
                    }
                    Prompt::Emergency => {
                        if t.body.c > len / 2 {
                            t.mind = Mind::LeavingForward { emergency: true };
                            t.body.target = far_target;
                        } else {
                            t.mind = Mind::LeavingBack;
                            t.body.target = out_target;
                        }
                    }
                    Prompt::GoToCounter
                    | Prompt::AccompaniedChild
                    | Prompt::PresentDocument
                    | Prompt::OutOfService => {
                        t.mind = Mind::LeavingBack;
                        t.body.target = out_target;
                    }
                    _ => {}
                },
                // On the way out when told to go to the counter (the gate restarted and
                // lets them out through the entry): still short of the exit, they turn
                // back.
                Mind::LeavingForward { emergency: false }
                    if cue == Prompt::GoToCounter && t.body.c < len =>
                {
                    t.mind = Mind::LeavingBack;
                    t.body.target = out_target;
                }
                _ => {}
            }
            // The companion of a tailgating pair.
            let leader_mind = t.mind;
            if let Some(c) = t.companion.as_mut() {
                let inside = c.body.c > 0 && c.body.c < len;
                match (c.mind, leader_mind) {
                    (CMind::Waiting, Mind::Entering | Mind::TurningIn) => {
                        c.mind = CMind::Following;
                    }
                    (CMind::Following, _) if inside => match cue {
                        Prompt::OnePersonOnly if c.kind == Companion::StepsBack => {
                            c.mind = CMind::SteppingBack;
                            c.body.target = out_target;
                        }
                        Prompt::GoToCounter
                        | Prompt::AccompaniedChild
                        | Prompt::PresentDocument
                        | Prompt::OutOfService => {
                            c.mind = CMind::SteppingBack;
                            c.body.target = out_target;
                        }
                        Prompt::Emergency => {
                            if c.body.c > len / 2 {
                                c.mind = CMind::PushingThrough;
                                c.body.target = far_target;
                            } else {
                                c.mind = CMind::SteppingBack;
                                c.body.target = out_target;
                            }
                        }
                        // A child goes where the adult goes (the gate decides for both).
                        Prompt::Proceed if c.kind == Companion::Child => {
                            c.mind = CMind::PushingThrough;
                            c.body.target = far_target;
                        }
                        Prompt::Proceed if c.kind == Companion::Stubborn => {
                            c.mind = CMind::PushingThrough;
                            c.body.target = far_target;
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        if let Some(token) = represent {
            let at = now.plus(self.p.represent_ms);
            self.schedule(at, Timer::RepresentCheck(i, token));
        }
    }
}
