//! 1:1 fingerprint comparison as the shell sees it: live template against the enrolled
//! thumbs, best score wins. The templates stay here; only the score goes to the machine.

pub mod section;

use crate::record::MatcherFailure;
use device_drivers::devices::{BiometricTemplate, TemplateFormat};
use device_drivers::fingerprint::{self, CardFormat, Template};

/// Why a comparison could not be made (recorded as a matcher error, never as a score).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The matcher does not understand this template encoding.
    #[error("unsupported template format {0:?}")]
    Unsupported(TemplateFormat),
    /// The live capture's template could not be decoded.
    #[error("malformed live template: {0}")]
    MalformedLive(String),
    /// An enrolled template (from the chip) could not be decoded.
    #[error("malformed enrolled template: {0}")]
    MalformedEnrolled(String),
}

impl MatchError {
    /// The failure the movement record carries.
    pub fn failure(&self) -> MatcherFailure {
        match self {
            MatchError::Unsupported(_) => MatcherFailure::UnsupportedTemplate,
            MatchError::MalformedLive(_) => MatcherFailure::MalformedLiveTemplate,
            MatchError::MalformedEnrolled(_) => MatcherFailure::MalformedEnrolledTemplate,
        }
    }
}

/// A 1:1 fingerprint matcher (the ISO 19794-2 minutiae matcher, or the simulator's).
pub trait Matcher: Send {
    /// Similarity of `live` and `enrolled`, 0 (different) ..= 1 (same finger).
    fn compare(
        &self,
        live: &BiometricTemplate,
        enrolled: &BiometricTemplate,
    ) -> Result<f32, MatchError>;

    /// Best score of `live` over every enrolled thumb (0 if there is none or none
    /// can be compared; the first error is returned only when no comparison worked).
    fn best(
        &self,
        live: &BiometricTemplate,
        enrolled: &[BiometricTemplate],
    ) -> Result<f32, MatchError> {
        let mut best: Option<f32> = None;
        let mut first_err = None;
        for e in enrolled {
            match self.compare(live, e) {
                Ok(s) if s.is_finite() => best = Some(best.map_or(s, |b: f32| b.max(s))),
                Ok(_) => {}
                Err(err) => {
                    first_err.get_or_insert(err);
                }
            }
        }
        match (best, first_err) {
            (Some(s), _) => Ok(s),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(0.0),
        }
    }
}

/// The simulator's matcher, for simulated templates only. Two forms:
///
/// - a template naming a finger (`"<person>/<finger>"`, optionally `#<impression>`):
///   the same finger scores [`SIM_GENUINE`], any other [`SIM_IMPOSTOR`];
/// - a live template carrying the score the simulated lane already drew for this
///   capture (`"~0.734"`, see `runtime::sim`): that score, against any enrolled thumb.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimMatcher;

/// Score the simulated matcher gives the same finger.
pub const SIM_GENUINE: f32 = 0.92;
/// Score the simulated matcher gives different fingers.
pub const SIM_IMPOSTOR: f32 = 0.04;

impl Matcher for SimMatcher {
    fn compare(
        &self,
        live: &BiometricTemplate,
        enrolled: &BiometricTemplate,
    ) -> Result<f32, MatchError> {
        for t in [live, enrolled] {
            if t.format() != TemplateFormat::Simulated {
                return Err(MatchError::Unsupported(t.format()));
            }
        }
        if let Some(drawn) = live.bytes().strip_prefix(b"~") {
            let score = std::str::from_utf8(drawn)
                .ok()
                .and_then(|s| s.parse::<f32>().ok())
                .filter(|s| s.is_finite() && (0.0..=1.0).contains(s))
                .ok_or_else(|| MatchError::MalformedLive("bad simulated score".into()))?;
            return Ok(score);
        }
        let finger = |t: &BiometricTemplate| -> Option<Vec<u8>> {
            let b = t.bytes();
            let end = b.iter().position(|&c| c == b'#').unwrap_or(b.len());
            let f = b.get(..end).unwrap_or_default();
            (!f.is_empty()).then(|| f.to_vec())
        };
        let empty = "empty simulated template";
        let live = finger(live).ok_or_else(|| MatchError::MalformedLive(empty.into()))?;
        let enrolled =
            finger(enrolled).ok_or_else(|| MatchError::MalformedEnrolled(empty.into()))?;
        Ok(if live == enrolled {
            SIM_GENUINE
        } else {
            SIM_IMPOSTOR
        })
    }
}

/// The ISO/IEC 19794-2 minutiae matcher (`[matcher] kind = "minutiae"`): decodes both
/// templates (19794-2:2005/2011 records, ANSI 378 records, on-card normal and compact
/// formats) and returns the matcher's normalised score, to be compared with the
/// calibrated `policy.biometric_threshold`. Decoded minutiae live only for the comparison.
#[derive(Clone, Copy, Debug, Default)]
pub struct MinutiaeMatcher;

/// Decodes `t`; `malformed` says which side a decoding error is on.
fn decode(
    t: &BiometricTemplate,
    malformed: fn(String) -> MatchError,
) -> Result<Template, MatchError> {
    let r = match t.format() {
        TemplateFormat::Iso19794_2_2005 | TemplateFormat::Iso19794_2_2011 => {
            Template::from_bytes(t.bytes())
        }
        TemplateFormat::IsoCardNormal => Template::from_card(t.bytes(), CardFormat::Normal),
        TemplateFormat::IsoCardCompact => Template::from_card(t.bytes(), CardFormat::Compact),
        other => return Err(MatchError::Unsupported(other)),
    };
    // The error names the defect (length, field), never template content.
    r.map_err(|e| malformed(e.to_string()))
}

impl Matcher for MinutiaeMatcher {
    fn compare(
        &self,
        live: &BiometricTemplate,
        enrolled: &BiometricTemplate,
    ) -> Result<f32, MatchError> {
        let a = decode(live, MatchError::MalformedLive)?;
        let b = decode(enrolled, MatchError::MalformedEnrolled)?;
        Ok(fingerprint::matcher::compare(&a, &b).score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> BiometricTemplate {
        BiometricTemplate::new(TemplateFormat::Simulated, s.as_bytes().to_vec())
    }

    #[test]
    fn same_finger_any_impression_matches_best_of_both_thumbs() {
        let m = SimMatcher;
        let enrolled = [t("p7/left"), t("p7/right")];
        assert_eq!(m.best(&t("p7/right#3"), &enrolled).unwrap(), SIM_GENUINE);
        assert_eq!(m.best(&t("p7/index#1"), &enrolled).unwrap(), SIM_IMPOSTOR);
        assert_eq!(m.best(&t("p7/left"), &[]).unwrap(), 0.0);
    }

    #[test]
    fn foreign_formats_are_refused() {
        let iso = BiometricTemplate::new(TemplateFormat::Iso19794_2_2005, vec![1, 2, 3]);
        assert!(matches!(
            SimMatcher.best(&iso, &[t("a/b")]),
            Err(MatchError::Unsupported(_))
        ));
        assert!(matches!(
            SimMatcher.compare(&t("#x"), &t("a")),
            Err(MatchError::MalformedLive(_))
        ));
        assert!(matches!(
            SimMatcher.compare(&t("a"), &t("#x")),
            Err(MatchError::MalformedEnrolled(_))
        ));
    }

    #[test]
    fn a_drawn_score_is_read_back_against_any_enrolled_thumb() {
        let m = SimMatcher;
        let enrolled = [t("~enrolled"), t("~enrolled")];
        assert_eq!(m.best(&t("~0.625"), &enrolled).unwrap(), 0.625);
        assert_eq!(
            m.best(&t("~0.625"), &[]).unwrap(),
            0.0,
            "nothing enrolled, no match"
        );
        assert!(m.best(&t("~1.5"), &enrolled).is_err());
        assert!(m.best(&t("~x"), &enrolled).is_err());
    }

    #[test]
    fn the_minutiae_matcher_tells_the_same_synthetic_finger_from_another() {
        use device_drivers::fingerprint::synth::{Finger, ImpressionParams};
        let iso = |finger: u64, seed: u64| {
            let t = Finger::generate(finger).impression(seed, &ImpressionParams::default());
            BiometricTemplate::new(
                TemplateFormat::Iso19794_2_2005,
                t.to_iso2005_bytes().unwrap(),
            )
        };
        let m = MinutiaeMatcher;
        let genuine = m.compare(&iso(40, 1), &iso(40, 2)).unwrap();
        let impostor = m.best(&iso(41, 1), &[iso(40, 2), iso(42, 2)]).unwrap();
        assert!(genuine > 0.6, "genuine {genuine}");
        assert!(impostor < 0.3, "impostor {impostor}");
        assert!(matches!(
            m.compare(&t("a/b"), &iso(40, 1)),
            Err(MatchError::Unsupported(TemplateFormat::Simulated))
        ));
        let broken = || BiometricTemplate::new(TemplateFormat::Iso19794_2_2005, b"FMR\0".to_vec());
        let e = m.compare(&broken(), &iso(40, 1)).unwrap_err();
        assert_eq!(e.failure(), MatcherFailure::MalformedLiveTemplate, "{e}");
        // A malformed enrolled thumb fails the comparison only when no other thumb can
        // be compared.
        let e = m.best(&iso(40, 1), &[broken()]).unwrap_err();
        assert_eq!(
            e.failure(),
            MatcherFailure::MalformedEnrolledTemplate,
            "{e}"
        );
        assert!(m.best(&iso(40, 1), &[broken(), iso(40, 2)]).unwrap() > 0.6);
    }
}
