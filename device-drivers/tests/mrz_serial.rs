//! The serial OCR reader driver against a simulated reader on a real pseudo-terminal:
//! the ICAO 9303 specimens (TD3, TD1), line noise, a partial frame and the gap, a failing
//! check digit, STX/ETX with an XOR block check, the CAN line, the port vanishing and
//! coming back, and a `next_scan` dropped in the middle of a frame.

#![cfg(unix)]

use device_drivers::card::gate::OcrMrz;
use device_drivers::card::mrz::{Mrz, MrzFormat};
use device_drivers::devices::{DeviceFault, FaultKind, MrzReader, MrzScan};
use device_drivers::mrz::{
    encode, Checksum, Framing, PtyOcr, SerialMrzReader, SerialMrzSettings, Terminator,
};
use std::time::Duration;

fn td3() -> Vec<String> {
    vec![
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<".into(),
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10".into(),
    ]
}

fn td1() -> Vec<String> {
    vec![
        "I<UTOD231458907<<<<<<<<<<<<<<<".into(),
        "7408122F1204159UTO<<<<<<<<<<<6".into(),
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<".into(),
    ]
}

struct Rig {
    _dir: tempfile::TempDir,
    ocr: PtyOcr,
    drv: SerialMrzReader,
    framing: Framing,
}

fn rig(framing: Framing) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("ocr");
    let ocr = PtyOcr::start(&link).expect("openpty");
    let mut s = SerialMrzSettings::new(&link);
    s.framing = framing.clone();
    Rig {
        _dir: dir,
        ocr,
        drv: SerialMrzReader::new(s).expect("valid settings"),
        framing,
    }
}

impl Rig {
    fn send(&self, lines: &[String], can: Option<&str>) {
        self.ocr
            .send(&encode(lines, can, &self.framing))
            .expect("sent");
    }
}

async fn next(drv: &mut SerialMrzReader) -> Result<MrzScan, DeviceFault> {
    tokio::time::timeout(Duration::from_secs(5), drv.next_scan())
        .await
        .expect("an answer within 5 s")
}

async fn scan(drv: &mut SerialMrzReader) -> MrzScan {
    next(drv).await.expect("no fault")
}

/// The zone of a read (panics on a misread).
fn zone(s: MrzScan) -> (Mrz, Option<String>) {
    match s {
        MrzScan::Read {
            mrz: OcrMrz::Full(m),
            can,
        } => (m, can),
        other => panic!("expected a full read, got {other:?}"),
    }
}

fn defect(s: MrzScan) -> String {
    match s {
        MrzScan::Misread(d) => d,
        other => panic!("expected a misread, got {other:?}"),
    }
}

async fn nothing_within(drv: &mut SerialMrzReader, ms: u64) {
    let r = tokio::time::timeout(Duration::from_millis(ms), drv.next_scan()).await;
    assert!(r.is_err(), "unexpected {r:?}");
}

#[tokio::test]
async fn reads_a_td3_and_a_td1() {
    let mut r = rig(Framing::default());
    r.drv.probe().await.expect("the port opens");
    assert!(r.drv.is_open());
    r.send(&td3(), None);
    let (m, can) = zone(scan(&mut r.drv).await);
    assert_eq!(m.format, MrzFormat::Td3);
    assert_eq!(m.document_number, "L898902C3");
    assert_eq!(m.date_of_birth, "740812");
    assert_eq!(m.date_of_expiry, "120415");
    assert_eq!(m.surname, "ERIKSSON");
    assert_eq!(can, None);
    r.send(&td1(), None);
    let (m, _) = zone(scan(&mut r.drv).await);
    assert_eq!(m.format, MrzFormat::Td1);
    assert_eq!(m.document_number, "D23145890");
    nothing_within(&mut r.drv, 400).await;
}

#[tokio::test]
async fn noise_before_and_between_frames_is_skipped() {
    let mut r = rig(Framing::default());
    r.ocr
        .send(b"\x00\xff\x13READER V2.1 READY\r\n\xfe\xfe garbage\r\n")
        .expect("noise");
    r.send(&td3(), None);
    r.ocr.send(b"\r\nOK\r\n\x1b[0m\r\n").expect("noise");
    r.send(&td1(), None);
    assert_eq!(zone(scan(&mut r.drv).await).0.format, MrzFormat::Td3);
    assert_eq!(zone(scan(&mut r.drv).await).0.format, MrzFormat::Td1);
    nothing_within(&mut r.drv, 500).await;
    assert!(r.drv.discarded() >= 3, "{}", r.drv.discarded());
}

#[tokio::test]
async fn a_partial_frame_is_discarded_after_the_gap() {
    let mut r = rig(Framing::default());
    r.drv.probe().await.expect("open");
    // Half a line, then silence longer than the gap: noise, dropped.
    r.ocr.send(b"P<UTOERIKSSON<<AN").expect("partial");
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.send(&td3(), None);
    let (m, _) = zone(scan(&mut r.drv).await);
    assert_eq!(m.surname, "ERIKSSON");
    // A whole first line and then silence: the second line is missing, a misread.
    r.ocr
        .send(format!("{}\r\n", td3()[0]).as_bytes())
        .expect("line 1");
    let d = defect(scan(&mut r.drv).await);
    assert!(d.contains("incomplete MRZ"), "{d}");
    // Then the next document reads normally.
    r.send(&td1(), None);
    assert_eq!(zone(scan(&mut r.drv).await).0.format, MrzFormat::Td1);
}

#[tokio::test]
async fn a_failing_check_digit_is_a_misread() {
    let mut r = rig(Framing::default());
    let mut bad = td3();
    bad[1] = bad[1].replacen("1204159", "1204158", 1);
    r.send(&bad, None);
    let d = defect(scan(&mut r.drv).await);
    assert_eq!(d, "check digit of the date of expiry does not match");
    for secret in ["ERIKSSON", "L898902C", "740812", "120415"] {
        assert!(!d.contains(secret));
    }
    r.send(&td3(), None);
    zone(scan(&mut r.drv).await);
}

#[tokio::test]
async fn stx_etx_with_an_xor_block_check() {
    let f = Framing {
        terminator: Terminator::Cr,
        stx_etx: true,
        checksum: Checksum::Xor,
        ..Framing::default()
    };
    let mut r = rig(f.clone());
    // Noise (even ETX bytes) outside frames is skipped.
    r.ocr.send(b"\x03\x00noise\r\x03").expect("noise");
    r.send(&td3(), None);
    assert_eq!(zone(scan(&mut r.drv).await).0.format, MrzFormat::Td3);
    let mut bad = encode(&td1(), None, &f);
    *bad.last_mut().expect("bcc") ^= 0x01;
    r.ocr.send(&bad).expect("bad bcc");
    assert_eq!(
        defect(scan(&mut r.drv).await),
        "block check (XOR) does not match"
    );
    r.send(&td1(), None);
    assert_eq!(zone(scan(&mut r.drv).await).0.format, MrzFormat::Td1);
}

#[tokio::test]
async fn the_can_line_of_a_td1() {
    let f = Framing {
        read_can: true,
        ..Framing::default()
    };
    let mut r = rig(f);
    r.send(&td1(), Some("123456"));
    let (m, can) = zone(scan(&mut r.drv).await);
    assert_eq!(m.format, MrzFormat::Td1);
    assert_eq!(can.as_deref(), Some("123456"));
    // A TD1 without a CAN is read without one after the gap.
    r.send(&td1(), None);
    assert_eq!(zone(scan(&mut r.drv).await).1, None);
    // A TD3 has none.
    r.send(&td3(), None);
    assert_eq!(zone(scan(&mut r.drv).await).1, None);
}

#[tokio::test]
async fn the_port_vanishing_is_a_fault_and_it_reads_again_after_coming_back() {
    let mut r = rig(Framing::default());
    r.send(&td3(), None);
    zone(scan(&mut r.drv).await);
    let port = r.ocr.path().display().to_string();

    // Unplugged while the driver waits for a document.
    let (drv, ocr) = (&mut r.drv, &mut r.ocr);
    let (fault, ()) = tokio::join!(next(drv), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ocr.vanish();
    });
    let fault = fault.expect_err("a fault");
    assert_eq!(fault.kind, FaultKind::Unavailable);
    assert!(fault.detail.contains(&port), "{}", fault.detail);
    assert!(!r.drv.is_open());

    // Still gone: the probe and the next call fail, naming the port.
    let f = r.drv.probe().await.expect_err("gone");
    assert_eq!(f.kind, FaultKind::Unavailable);
    assert!(f.detail.contains(&port), "{}", f.detail);
    assert_eq!(
        next(&mut r.drv).await.expect_err("gone").kind,
        FaultKind::Unavailable
    );

    // Plugged back in: a new pty at the same path.
    r.ocr.reappear().expect("back");
    r.drv.probe().await.expect("reopened");
    r.send(&td1(), None);
    assert_eq!(zone(scan(&mut r.drv).await).0.format, MrzFormat::Td1);
}

#[tokio::test]
async fn unplugged_while_idle_the_probe_notices() {
    let mut r = rig(Framing::default());
    r.drv.probe().await.expect("open");
    r.ocr.vanish();
    let f = r.drv.probe().await.expect_err("the link is gone");
    assert_eq!(f.kind, FaultKind::Unavailable);
    r.ocr.reappear().expect("back");
    r.drv.probe().await.expect("reopened");
    r.send(&td3(), None);
    zone(scan(&mut r.drv).await);
    // Unplugged and plugged back between two probes: the probe reopens the new pty.
    r.ocr.vanish();
    r.ocr.reappear().expect("back again");
    r.drv.probe().await.expect("reopened by path");
    r.send(&td1(), None);
    assert_eq!(zone(scan(&mut r.drv).await).0.format, MrzFormat::Td1);
}

#[tokio::test]
async fn a_dropped_next_scan_loses_nothing() {
    let f = Framing {
        frame_gap_ms: 2_000,
        ..Framing::default()
    };
    let mut r = rig(f);
    let bytes = encode(&td3(), None, &r.framing);
    let (head, tail) = bytes.split_at(60);
    // Half the frame arrives while a call is pending; the call is dropped.
    r.ocr.send(head).expect("head");
    nothing_within(&mut r.drv, 300).await;
    // The rest arrives between calls: the next call returns the frame.
    r.ocr.send(tail).expect("tail");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (m, _) = zone(scan(&mut r.drv).await);
    assert_eq!(m.format, MrzFormat::Td3);

    // Two documents in one burst: one per call, the second kept for the next call.
    let mut two = encode(&td1(), None, &r.framing);
    two.extend(encode(&td3(), None, &r.framing));
    r.ocr.send(&two).expect("burst");
    // Both are in the pty's buffer before the driver reads: one read gets them both.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(zone(scan(&mut r.drv).await).0.format, MrzFormat::Td1);
    // The port is gone now, but the decoded second document is still returned.
    r.ocr.vanish();
    assert_eq!(zone(scan(&mut r.drv).await).0.format, MrzFormat::Td3);
    assert_eq!(
        next(&mut r.drv).await.expect_err("gone").kind,
        FaultKind::Unavailable
    );
}

#[tokio::test]
async fn settings_are_validated_and_deserialize_flattened() {
    let s: SerialMrzSettings =
        toml::from_str("port = \"/dev/ttyACM0\"\nterminator = \"crlf\"\nframe_gap_ms = 200")
            .expect("settings");
    assert_eq!(s.baud, 9600);
    assert_eq!(s.framing.terminator, Terminator::Crlf);
    assert_eq!(s.framing.frame_gap_ms, 200);
    let mut bad = s.clone();
    bad.baud = 0;
    assert_eq!(SerialMrzReader::new(bad).expect_err("baud 0").field, "baud");
    let mut bad = s;
    bad.framing.frame_gap_ms = 0;
    assert_eq!(
        SerialMrzReader::new(bad).expect_err("gap 0").field,
        "frame_gap_ms"
    );
}
