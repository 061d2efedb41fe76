//! A reduced `gate-sim campaign` meets the tailgating, false-alarm and emergency targets
//! (the full campaign: `gate-sim campaign`, figures in docs/scenarios.md).

use gate_sim::campaign::{campaign, CampaignSpec};

#[test]
fn a_reduced_campaign_meets_the_targets() {
    let r = campaign(&CampaignSpec {
        tailgating: 120,
        singles: 1_500,
        emergencies: 30,
        children: 60,
        crashes: 0,
        seed: 11,
        scan_ms: 20,
    })
    .expect("the campaign runs");
    let t = &r.tailgating;
    assert_eq!(t.attempts, 120);
    assert_eq!(t.entered + t.shut_out, t.attempts);
    // Most followers at 0–0.6 m get in; every one of them must be detected.
    assert!(t.entered >= 60, "{t:?}");
    assert!(t.detection_rate >= 0.99, "{t:?}");
    assert_eq!(t.breaches, 0);
    let f = &r.false_alarms;
    assert!(f.transits >= 1_400, "{f:?}");
    assert!(f.false_alarm_rate <= 0.005, "{f:?}");
    let e = &r.emergency;
    assert_eq!(e.trials, 30);
    assert_eq!(e.unreleased, 0);
    assert!(e.max_latency_cycles <= 1, "{e:?}");
    for c in [&r.accompanied_child.refer, &r.accompanied_child.allow] {
        assert_eq!(c.attempts, 60);
        assert_eq!(c.entered + c.shut_out, c.attempts);
        assert_eq!(c.recognised + c.taken_for_tailgating + c.missed, c.entered);
        // Most young children are below the threshold; the rest are taken for tailgating.
        assert!(c.recognised >= 30, "{c:?}");
        assert_eq!(c.missed, 0, "{c:?}");
        assert_eq!(c.breaches, 0);
        assert_eq!(c.invariant_violations, 0);
    }
    let (refer, allow) = (&r.accompanied_child.refer, &r.accompanied_child.allow);
    assert_eq!(
        refer.children_passed_exit, 0,
        "refer: never through the exit"
    );
    assert!(allow.children_passed_exit > 0, "allow: children go through");
    assert!(allow.children_passed_exit <= allow.recognised);
    assert!(r.meets_targets());
}

/// `gated` crashing at random steps and restarting from its journal: no record is ever
/// lost or written twice, and nobody gets through the exit without a clear decision.
/// (Two open gate issues show in the same trials and are not claimed here: a restart
/// commands both doors closed before the lane has reported its safety fields — an
/// invariant 4 violation when someone stands in a door — and a cleared traveller caught
/// between the exit closing after the restart and the entry opening for them is left
/// standing inside; see docs/scenarios.md.)
#[test]
fn crash_trials_lose_and_double_no_record() {
    let r = campaign(&CampaignSpec {
        tailgating: 0,
        singles: 0,
        emergencies: 0,
        children: 0,
        crashes: 60,
        seed: 11,
        scan_ms: 20,
    })
    .expect("the campaign runs");
    let c = &r.crash_restart;
    assert_eq!(c.trials, 60);
    // Most planned crashes happen (a step such as `letting_out` is not in every visit).
    assert!(c.crashed >= 40, "{c:?}");
    assert_eq!(c.restarts, c.crashed, "{c:?}");
    assert_eq!((c.records_lost, c.records_doubled), (0, 0), "{c:?}");
    assert_eq!(c.breaches, 0, "{c:?}");
}

#[test]
fn the_campaign_command_prints_one_json_object() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gate-sim"))
        .args([
            "campaign",
            "--tailgating",
            "4",
            "--singles",
            "50",
            "--emergencies",
            "3",
            "--children",
            "3",
            "--crashes",
            "3",
            "--json",
        ])
        .output()
        .expect("gate-sim runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in [
        "tailgating",
        "false_alarms",
        "emergency",
        "seed",
        "scan_ms",
        "accompanied_child",
        "crash_restart",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
}
