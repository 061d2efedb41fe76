//! Who is in the mantrap: the overhead sensor's head count, with the heads below its
//! child height threshold counted apart, judged against the lane's accompanied-child
//! policy. Pure functions, used by the state machine.
//!
//! | persons | of them children | party |
//! |---|---|---|
//! | 0 | – | [`Party::Empty`] |
//! | 1 | 0 or 1 | [`Party::One`] (the document holder; a short holder of at least `min_age` is still one person) |
//! | 2 | exactly 1 | [`Party::AdultWithChild`] |
//! | 2 | 0 (two adults) or 2 (two children) | [`Party::Crowd`] (tailgating) |
//! | ≥ 3 | any | [`Party::Crowd`] (tailgating) |

use serde::{Deserialize, Serialize};

/// What the gate does when one adult brings one child into the mantrap (`[lane]
/// accompanied_child`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildPolicy {
    /// The pair passes on the adult's clear decision; the record notes the child.
    Allow,
    /// The pair is sent to the counter (an officer sees the child); the exit stays shut.
    /// The default: a child has no clear decision of its own.
    #[default]
    Refer,
}

impl ChildPolicy {
    /// The snake_case name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            ChildPolicy::Allow => "allow",
            ChildPolicy::Refer => "refer",
        }
    }
}

/// `[lane]`: who may be in the mantrap with the traveller.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaneSection {
    /// One adult with one child (below the overhead sensor's child height threshold):
    /// `"allow"` (pass on the adult's clear decision) or `"refer"` (default: both to the
    /// counter). Anything else in the mantrap with the traveller is tailgating.
    pub accompanied_child: ChildPolicy,
}

/// The people in the mantrap as the machine judges them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// Nobody counted.
    Empty,
    /// One person.
    One,
    /// One adult and one child (below the sensor's child height threshold).
    AdultWithChild,
    /// More people than one traveller (with at most one child) may be: tailgating.
    Crowd,
}

/// Classifies a head count. `children` larger than `persons` is a sensor inconsistency
/// and is taken as `persons` (never as fewer people).
pub fn classify(persons: u8, children: u8) -> Party {
    let children = children.min(persons);
    match persons {
        0 => Party::Empty,
        1 => Party::One,
        2 if children == 1 => Party::AdultWithChild,
        _ => Party::Crowd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_adult_with_one_child_is_an_accompanied_child() {
        assert_eq!(classify(0, 0), Party::Empty);
        assert_eq!(classify(1, 0), Party::One);
        assert_eq!(classify(1, 1), Party::One);
        assert_eq!(classify(2, 1), Party::AdultWithChild);
        assert_eq!(classify(2, 0), Party::Crowd, "two adults");
        assert_eq!(classify(2, 2), Party::Crowd, "two children");
        assert_eq!(classify(3, 1), Party::Crowd, "a child and a tailgater");
        assert_eq!(classify(3, 2), Party::Crowd);
        assert_eq!(
            classify(2, 9),
            Party::Crowd,
            "inconsistent count: two children"
        );
    }

    #[test]
    fn refer_is_the_default_policy() {
        assert_eq!(ChildPolicy::default(), ChildPolicy::Refer);
        let p: ChildPolicy = serde_json::from_str("\"allow\"").expect("parses");
        assert_eq!(p, ChildPolicy::Allow);
        assert_eq!(p.as_str(), "allow");
    }
}
