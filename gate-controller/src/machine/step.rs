//! The steps of the machine ([`Phase`]) and the transit in progress ([`Transit`]).

use crate::record::{Mode, Outcome, TxnId};
use crate::types::{Document, Time, WatchlistVerdict};

/// The steps of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Ready,
    Reading,
    CheckingWatchlist,
    Entering,
    ClosingEntry,
    Capturing {
        attempt: u8,
    },
    Matching {
        attempt: u8,
    },
    Committing,
    Exiting,
    ClosingExit,
    LettingOut {
        closing: bool,
    },
    /// After a restart in the middle of a transit: waiting for the lane I/O to say
    /// whether anybody is inside before letting them out or going idle.
    Resuming,
    Notice,
    Held,
    OutOfService,
    Emergency,
    Maintenance,
    Stopped,
}

impl Phase {
    pub(super) fn name(self) -> &'static str {
        match self {
            Phase::Ready => "ready",
            Phase::Reading => "reading_document",
            Phase::CheckingWatchlist => "checking_watchlist",
            Phase::Entering => "entering",
            Phase::ClosingEntry => "closing_entry",
            Phase::Capturing { .. } => "capturing",
            Phase::Matching { .. } => "matching",
            Phase::Committing => "committing",
            Phase::Exiting => "exiting",
            Phase::ClosingExit => "closing_exit",
            Phase::LettingOut { .. } => "letting_out",
            Phase::Resuming => "resuming",
            Phase::Notice => "notice",
            Phase::Held => "held",
            Phase::OutOfService => "out_of_service",
            Phase::Emergency => "emergency",
            Phase::Maintenance => "maintenance",
            Phase::Stopped => "stopped",
        }
    }

    pub(super) fn mode(self) -> Mode {
        match self {
            Phase::Ready => Mode::Ready,
            Phase::Held => Mode::Held,
            Phase::OutOfService | Phase::Stopped => Mode::OutOfService,
            Phase::Emergency => Mode::Emergency,
            Phase::Maintenance => Mode::Maintenance,
            _ => Mode::Transit,
        }
    }

    /// Someone may be inside the mantrap and no decision has been made yet.
    pub(super) fn occupant_undecided(self) -> bool {
        matches!(
            self,
            Phase::Entering
                | Phase::ClosingEntry
                | Phase::Capturing { .. }
                | Phase::Matching { .. }
        )
    }

    /// A transit is under way before anybody entered.
    pub(super) fn pre_entry(self) -> bool {
        matches!(self, Phase::Reading | Phase::CheckingWatchlist)
    }
}

#[derive(Clone, Debug)]
pub(super) struct Transit {
    pub(super) id: TxnId,
    pub(super) started_at: Time,
    pub(super) document: Option<Document>,
    pub(super) watchlist: Option<WatchlistVerdict>,
    pub(super) attempts: u8,
    pub(super) poor_captures: u8,
    pub(super) last_score: Option<f32>,
    /// An outcome record has been emitted (and not retracted by a journal failure).
    pub(super) recorded: Option<Outcome>,
    pub(super) tailgating: bool,
    /// A child came in with the traveller and stays with them (policy `allow`).
    pub(super) child: bool,
    pub(super) lingering_alarm: bool,
    /// Each threshold beam broke at least once during the transit.
    pub(super) beam_seen: [bool; 2],
    /// Somebody walked through each threshold during the transit (entered the mantrap;
    /// left through the exit).
    pub(super) crossed: [bool; 2],
}

impl Transit {
    pub(super) fn new(id: TxnId, now: Time, beams: [bool; 2]) -> Transit {
        Transit {
            id,
            started_at: now,
            document: None,
            watchlist: None,
            attempts: 0,
            poor_captures: 0,
            last_score: None,
            recorded: None,
            tailgating: false,
            child: false,
            lingering_alarm: false,
            beam_seen: beams,
            crossed: [false; 2],
        }
    }
}
