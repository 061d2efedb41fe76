//! The serial scanner driver against the simulated scanner over a real pseudo-terminal:
//! capture, no-finger timeout, a silent device, corrupted replies, line noise, a dropped
//! capture, and the port vanishing and coming back (also in the middle of a scan).

#![cfg(unix)]

use device_drivers::devices::{CaptureError, FaultKind, FingerprintScanner, TemplateFormat};
use device_drivers::fingerprint::pty::{Placement, PtyScanner};
use device_drivers::fingerprint::serial::{SerialScanner, SerialSettings};
use device_drivers::fingerprint::sfm::Capture;
use device_drivers::fingerprint::synth::{Finger, ImpressionParams};
use device_drivers::fingerprint::Template;
use std::time::{Duration, Instant};

struct Rig {
    _dir: tempfile::TempDir,
    sim: PtyScanner,
    drv: SerialScanner,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("scanner");
    let sim = PtyScanner::start(&link).expect("openpty");
    let mut s = SerialSettings::new(&link);
    s.reply_timeout = Duration::from_millis(400);
    Rig {
        _dir: dir,
        sim,
        drv: SerialScanner::new(s),
    }
}

fn impression(finger: u64, seed: u64) -> Template {
    Finger::generate(finger).impression(seed, &ImpressionParams::default())
}

fn fault_kind(r: Result<impl std::fmt::Debug, CaptureError>) -> FaultKind {
    match r {
        Err(CaptureError::Device(f)) => f.kind,
        other => panic!("expected a device fault, got {other:?}"),
    }
}

#[tokio::test]
async fn captures_an_iso_template_and_its_quality() {
    let mut r = rig();
    let t = impression(11, 1);
    r.sim.queue(Placement::Capture(Capture::Finger(t.clone())));
    let c = r
        .drv
        .capture(Duration::from_secs(3))
        .await
        .expect("captured");
    assert_eq!(c.template.format(), TemplateFormat::Iso19794_2_2005);
    assert_eq!(
        Template::from_bytes(c.template.bytes()).expect("ISO record"),
        t
    );
    assert_eq!(c.info.quality, t.quality);
    assert_eq!(usize::from(c.info.minutiae), t.minutiae.len());
    assert_eq!(r.sim.scans(), 1);
    // A second capture on the same port.
    r.sim.queue(Placement::Capture(Capture::Unreadable));
    match r.drv.capture(Duration::from_secs(3)).await {
        Err(CaptureError::Poor(_)) => {}
        other => panic!("unreadable finger: {other:?}"),
    }
    r.drv.probe().await.expect("the scanner answers");
}

#[tokio::test]
async fn no_finger_times_out_on_the_scanner_and_a_silent_scanner_is_a_fault() {
    let mut r = rig();
    r.sim.queue(Placement::NoFinger);
    let t0 = Instant::now();
    let res = r.drv.capture(Duration::from_millis(1_000)).await;
    assert!(
        matches!(res, Err(CaptureError::NoFinger)),
        "{:?}",
        res.map(|c| c.info)
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // The scanner stops answering: a timeout fault, and the probe fails too.
    r.sim.set_silent(true);
    r.sim
        .queue(Placement::Capture(Capture::Finger(impression(1, 1))));
    assert_eq!(
        fault_kind(r.drv.capture(Duration::from_secs(1)).await),
        FaultKind::Timeout
    );
    assert_eq!(
        r.drv.probe().await.expect_err("silent").kind,
        FaultKind::Timeout
    );
    r.sim.set_silent(false);
    r.drv.probe().await.expect("answers again");
}

#[tokio::test]
async fn a_corrupted_reply_is_retried_and_persistent_corruption_is_a_fault() {
    let mut r = rig();
    r.drv.probe().await.expect("ready");
    r.sim.set_finger(
        Some((Finger::generate(3), ImpressionParams::default())),
        100,
    );
    // A first capture sets the scanner's timeout; the corrupted reply hits the scan.
    r.drv
        .capture(Duration::from_secs(3))
        .await
        .expect("captured");
    assert_eq!(r.sim.scans(), 1);
    // Both the "finger sensed" packet and the result packet announcing the template
    // arrive corrupted: the template is lost and the driver must scan again.
    r.sim.corrupt_replies(2);
    let c = r
        .drv
        .capture(Duration::from_secs(3))
        .await
        .expect("captured after a retry");
    assert!(c.info.minutiae > 0);
    assert!(r.drv.noise().1 >= 1, "the bad packet was seen");
    // The scanner's reply was lost the first time: the driver cancelled and scanned again.
    assert_eq!(r.sim.scans(), 3, "scanned again after the lost reply");
    assert!(r.sim.cancels() >= 1);
    // Every reply corrupted: no endless loop, a protocol fault.
    r.sim.corrupt_replies(1_000);
    assert_eq!(
        fault_kind(r.drv.capture(Duration::from_secs(3)).await),
        FaultKind::Protocol
    );
    r.sim.corrupt_replies(0);
    r.drv.probe().await.expect("fine again");
    r.drv
        .capture(Duration::from_secs(3))
        .await
        .expect("captures again");
}

#[tokio::test]
async fn line_noise_before_replies_is_skipped() {
    let mut r = rig();
    r.sim
        .garbage_before_next_reply(&[0x00, 0xFF, 0x13, 0x0A, 0x40, 0x40, 0x21, 0x55]);
    r.drv.probe().await.expect("probe through noise");
    let t = impression(21, 4);
    r.sim.queue(Placement::Capture(Capture::Finger(t.clone())));
    r.sim.garbage_before_next_reply(b"\x40garbage\x0a\x40\x21");
    let c = r
        .drv
        .capture(Duration::from_secs(3))
        .await
        .expect("captured through noise");
    assert_eq!(Template::from_bytes(c.template.bytes()).expect("ISO"), t);
    let (garbage, bad) = r.drv.noise();
    assert!(
        garbage >= 4 && garbage + bad >= 8,
        "noise skipped: {:?}",
        r.drv.noise()
    );
}

#[tokio::test]
async fn a_dropped_capture_is_cancelled_before_the_next_request() {
    let mut r = rig();
    r.sim.queue(Placement::NoFinger);
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        r.drv.capture(Duration::from_secs(5)),
    )
    .await;
    assert!(dropped.is_err(), "still scanning when dropped");
    let cancels = r.sim.cancels();
    r.sim
        .queue(Placement::Capture(Capture::Finger(impression(5, 5))));
    r.drv
        .capture(Duration::from_secs(3))
        .await
        .expect("the next capture works (no BUSY)");
    assert_eq!(r.sim.cancels(), cancels + 1, "one CA before the new scan");
}

#[tokio::test]
async fn the_port_vanishing_is_a_fault_until_it_comes_back() {
    let mut r = rig();
    r.sim
        .queue(Placement::Capture(Capture::Finger(impression(7, 1))));
    r.drv.capture(Duration::from_secs(3)).await.expect("works");
    r.sim.vanish();
    assert_eq!(
        fault_kind(r.drv.capture(Duration::from_secs(3)).await),
        FaultKind::Unavailable
    );
    assert!(!r.drv.is_open(), "the dead port was dropped");
    assert_eq!(
        r.drv.probe().await.expect_err("gone").kind,
        FaultKind::Unavailable
    );
    r.sim.reappear().expect("plugged back in");
    r.drv.probe().await.expect("reopened by path");
    let t = impression(7, 2);
    r.sim.queue(Placement::Capture(Capture::Finger(t.clone())));
    let c = r
        .drv
        .capture(Duration::from_secs(3))
        .await
        .expect("works again");
    assert_eq!(Template::from_bytes(c.template.bytes()).expect("ISO"), t);
}

#[tokio::test]
async fn the_port_vanishing_mid_scan_ends_the_scan_with_a_fault_at_once() {
    let mut r = rig();
    r.drv.probe().await.expect("ready");
    r.sim.queue(Placement::NoFinger);
    let t0 = Instant::now();
    let (drv, sim) = (&mut r.drv, &mut r.sim);
    let (res, ()) = tokio::join!(drv.capture(Duration::from_secs(10)), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sim.vanish();
    });
    assert_eq!(fault_kind(res), FaultKind::Unavailable);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    r.sim.reappear().expect("back");
    r.drv.probe().await.expect("recovered");
}
