//! JSON types of the upstream API. The OpenAPI 3 description is
//! `docs/upstream-openapi.yaml`; the field names here are the contract.
//!
//! Movement records follow BSI TR-03121 logging practice: who decided what, when, on
//! which document, with which scores and list versions, and why. They never carry
//! fingerprint templates or images: only a score and the threshold.

use super::StoredRecord;
use crate::record::{GateEvent, Outcome, Reason, Record};
use crate::types::{Document, DocumentKind, PaStatus, Time, WatchlistVerdict};
use serde::{Deserialize, Serialize};

/// Direction of travel through the lane (the gate's `[gate] direction`).
pub use crate::decision::Direction;

/// What the gate says about itself in every upload (from its configuration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateInfo {
    /// Gate id; must equal the identity in the gate's client certificate.
    pub gate_id: String,
    /// Lane name at the control point.
    pub lane: String,
    /// Direction of travel.
    pub direction: Direction,
}

/// `POST /v1/records`: a batch of rows of one gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadBatch {
    /// The gate the rows belong to.
    pub gate_id: String,
    /// Rows, any order; (gate_id, seq) is the idempotency key.
    pub records: Vec<WireRecord>,
}

/// One uploaded row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireRecord {
    /// Gate-wide sequence number (1, 2, 3, ...).
    pub seq: u64,
    /// Movement record or event.
    #[serde(flatten)]
    pub body: WireBody,
}

/// The payload of a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum WireBody {
    /// The movement record of one transit.
    Movement(Box<MovementRecord>),
    /// An entry of the events log.
    Event(EventRecord),
}

/// The movement record of one transit, as uploaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovementRecord {
    /// Globally unique transaction id: `<gate_id>-<txn>`.
    pub transaction_id: String,
    /// Gate id.
    pub gate_id: String,
    /// Lane name.
    pub lane: String,
    /// Direction of travel.
    pub direction: Direction,
    /// When the document was presented (Unix milliseconds, gate clock).
    pub started_at_ms: u64,
    /// When the outcome was decided (Unix milliseconds, gate clock).
    pub decided_at_ms: u64,
    /// `cleared`, `referred`, `held` or `aborted`.
    pub outcome: Outcome,
    /// Reasons behind the outcome (empty for a plain clear).
    pub reasons: Vec<Reason>,
    /// The document, when its chip was read.
    pub document: Option<WireDocument>,
    /// Passive authentication result, when the chip was read.
    pub passive_authentication: Option<PaStatus>,
    /// Watchlist verdict and list version, when consulted.
    pub watchlist: Option<WatchlistVerdict>,
    /// Biometric summary: score, threshold, attempts. Never a template or an image.
    pub biometric: Option<WireBiometric>,
    /// The operator whose command decided the outcome, if any.
    pub operator: Option<String>,
}

/// Document data in a movement record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireDocument {
    /// `passport`, `id_card` or `other`.
    pub document_type: DocumentKind,
    /// ICAO three-letter code of the issuing state.
    pub issuing_state: String,
    /// Document number as in the MRZ.
    pub document_number: String,
    /// ICAO three-letter code of the nationality.
    pub nationality: String,
    /// Date of expiry as in the MRZ (`YYMMDD`).
    pub date_of_expiry: String,
    /// Whether the chip MRZ equals the optically read MRZ.
    pub mrz_matches_ocr: bool,
}

/// Biometric summary in a movement record.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireBiometric {
    /// Best comparison score of the last attempt (0..1), if any comparison ran.
    pub score: Option<f32>,
    /// Decision threshold in force.
    pub threshold: f32,
    /// Capture attempts used.
    pub attempts: u8,
}

/// An entry of the events log (operator actions, alarms, faults), as uploaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    /// When it happened (Unix milliseconds, gate clock).
    pub at_ms: u64,
    /// What happened (tagged by `event`).
    pub event: GateEvent,
}

impl WireDocument {
    /// The upload form of a document read by the gate.
    pub fn from_document(d: &Document) -> WireDocument {
        WireDocument {
            document_type: d.kind,
            issuing_state: d.issuing_state.clone(),
            document_number: d.document_number.clone(),
            nationality: d.nationality.clone(),
            date_of_expiry: d.date_of_expiry.to_string(),
            mrz_matches_ocr: d.mrz_matches_ocr,
        }
    }
}

impl MovementRecord {
    /// The upload form of a journaled movement record.
    pub fn from_record(gate: &GateInfo, r: &Record) -> MovementRecord {
        MovementRecord {
            transaction_id: format!("{}-{}", gate.gate_id, r.txn.0),
            gate_id: gate.gate_id.clone(),
            lane: gate.lane.clone(),
            direction: gate.direction,
            started_at_ms: r.started_at.0,
            decided_at_ms: r.decided_at.0,
            outcome: r.outcome,
            reasons: r.reasons.clone(),
            document: r.document.as_ref().map(WireDocument::from_document),
            passive_authentication: r.document.as_ref().map(|d| d.passive_auth),
            watchlist: r.watchlist.clone(),
            biometric: r.biometric.map(|b| WireBiometric {
                score: b.score,
                threshold: b.threshold,
                attempts: b.attempts,
            }),
            operator: r.operator.clone(),
        }
    }
}

impl WireRecord {
    /// The upload form of one outbox row.
    pub fn from_stored(gate: &GateInfo, seq: u64, stored: &StoredRecord) -> WireRecord {
        let body = match stored {
            StoredRecord::Movement(r) => {
                WireBody::Movement(Box::new(MovementRecord::from_record(gate, r)))
            }
            StoredRecord::Event { at, event } => WireBody::Event(EventRecord {
                at_ms: at.0,
                event: event.clone(),
            }),
        };
        WireRecord { seq, body }
    }
}

/// Answer to `POST /v1/records`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadAck {
    /// The gate.
    pub gate_id: String,
    /// Highest `seq` such that the server holds every row `1..=watermark` of the gate.
    pub watermark: u64,
    /// Rows of this batch stored now.
    pub stored: u64,
    /// Rows of this batch the server already held (same `(gate_id, seq)`).
    pub duplicates: u64,
}

/// `POST /v1/heartbeat`: the gate's status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The gate.
    pub gate_id: String,
    /// Gate clock when sent (Unix milliseconds).
    pub sent_at_ms: u64,
    /// Coarse mode (`ready`, `transit`, `held`, `out_of_service`, `emergency`, `maintenance`).
    pub mode: String,
    /// Alarms currently raised (snake_case kinds).
    pub alarms: Vec<String>,
    /// Rows journaled but not yet acknowledged.
    pub backlog: u64,
    /// The watermark the gate last received.
    pub acked_watermark: u64,
    /// Version of the watchlist in force, if any.
    pub watchlist_version: Option<u64>,
    /// Journal disk usage in percent, if known.
    pub disk_used_percent: Option<f64>,
    /// Software version of the gate.
    pub software_version: String,
}

/// Answer to `POST /v1/heartbeat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// Server clock (Unix milliseconds).
    pub server_time_ms: u64,
    /// The server's watermark for the gate.
    pub watermark: u64,
}

/// Answer to `GET /v1/clock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockAnswer {
    /// Server clock (Unix milliseconds).
    pub server_time_ms: u64,
}

/// One file of the watchlist directory (opaque signed blob).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchlistFile {
    /// File name (names sort in publication order).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// Answer to `GET /v1/watchlist/files`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchlistIndex {
    /// Files after the `after` name, in name order.
    pub files: Vec<WatchlistFile>,
}

/// Error body of every non-2xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// One sentence: what failed and why.
    pub error: String,
}

/// Current Unix time in milliseconds (for shells, not the core).
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The gate clock as a core [`Time`].
pub fn now_time() -> Time {
    Time(unix_ms_now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BiometricSummary, TxnId};
    use crate::types::MrzDate;

    fn gate() -> GateInfo {
        GateInfo {
            gate_id: "g1".into(),
            lane: "A3".into(),
            direction: Direction::Arrival,
        }
    }

    fn record() -> Record {
        Record {
            txn: TxnId(42),
            outcome: Outcome::Cleared,
            reasons: vec![],
            started_at: Time(1_700_000_000_000),
            decided_at: Time(1_700_000_006_500),
            document: Some(Document {
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
                    yy: 94,
                    mm: 6,
                    dd: 23,
                },
                passive_auth: PaStatus::Valid,
                mrz_matches_ocr: true,
                enrolled_thumbs: 2,
            }),
            watchlist: Some(WatchlistVerdict::Clear { version: 7 }),
            biometric: Some(BiometricSummary {
                score: Some(0.75),
                threshold: 0.5,
                attempts: 1,
            }),
            operator: None,
        }
    }

    #[test]
    fn movement_record_has_the_logging_fields_and_no_birth_date() {
        let w = WireRecord::from_stored(&gate(), 5, &StoredRecord::Movement(record()));
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(v["seq"], 5);
        assert_eq!(v["kind"], "movement");
        let d = &v["data"];
        assert_eq!(d["transaction_id"], "g1-42");
        assert_eq!(d["lane"], "A3");
        assert_eq!(d["direction"], "arrival");
        assert_eq!(d["outcome"], "cleared");
        assert_eq!(d["document"]["document_type"], "passport");
        assert_eq!(d["document"]["issuing_state"], "UTO");
        assert_eq!(d["document"]["document_number"], "L898902C");
        assert_eq!(d["document"]["date_of_expiry"], "940623");
        assert_eq!(d["passive_authentication"], "valid");
        assert_eq!(d["watchlist"]["version"], 7);
        assert_eq!(d["biometric"]["threshold"], 0.5);
        let text = serde_json::to_string(&w).unwrap();
        assert!(
            !text.contains("690806"),
            "birth date is not uploaded: {text}"
        );
        assert!(!text.contains("template") && !text.contains("image"));
        let back: WireRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn unknown_fields_and_wrong_kinds_are_rejected() {
        let bad = r#"{"gate_id":"g1","records":[{"seq":1,"kind":"movement","data":{"x":1}}]}"#;
        assert!(serde_json::from_str::<UploadBatch>(bad).is_err());
        let bad = r#"{"gate_id":"g1","records":[{"seq":1,"kind":"selfie","data":{}}]}"#;
        assert!(serde_json::from_str::<UploadBatch>(bad).is_err());
        let bad = r#"{"gate_id":"g1","records":[],"template":"AAAA"}"#;
        assert!(serde_json::from_str::<UploadBatch>(bad).is_err());
    }

    #[test]
    fn openapi_spec_names_every_uploaded_field() {
        let spec_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/upstream-openapi.yaml");
        let spec = std::fs::read_to_string(spec_path).unwrap();
        fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
            if let serde_json::Value::Object(m) = v {
                for (k, v) in m {
                    out.push(k.clone());
                    keys(v, out);
                }
            } else if let serde_json::Value::Array(a) = v {
                a.iter().for_each(|v| keys(v, out));
            }
        }
        let mut r = record();
        r.reasons = vec![Reason::Timeout {
            step: crate::record::Step::Biometric,
        }];
        r.operator = Some("officer1".into());
        let w = WireRecord::from_stored(&gate(), 1, &StoredRecord::Movement(r));
        let ack = UploadAck {
            gate_id: "g1".into(),
            watermark: 1,
            stored: 1,
            duplicates: 0,
        };
        let hb = Heartbeat {
            gate_id: "g1".into(),
            sent_at_ms: 1,
            mode: "ready".into(),
            alarms: vec![],
            backlog: 0,
            acked_watermark: 0,
            watchlist_version: Some(1),
            disk_used_percent: Some(1.0),
            software_version: "x".into(),
        };
        let mut all = Vec::new();
        for v in [
            serde_json::to_value(&w).unwrap(),
            serde_json::to_value(&ack).unwrap(),
            serde_json::to_value(&hb).unwrap(),
        ] {
            keys(&v, &mut all);
        }
        for k in all {
            assert!(
                spec.contains(&format!("{k}:")),
                "OpenAPI spec lacks field {k}"
            );
        }
    }
}
