//! Live test through a real pcscd with vsmartcard's vpcd driver: the virtual chip is served
//! over the vpcd socket and read back with the PC/SC transport.
//!
//! Needs Debian `pcscd` and `vsmartcard-vpcd`, pcscd running, and the crate feature `pcsc`:
//! `cargo test -p device-drivers --features pcsc --test pcsc_vpcd -- --ignored --test-threads 1`

#![cfg(feature = "pcsc")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use device_drivers::card::bac::{AccessKey, MrzKey};
use device_drivers::card::chip::{dg_fid, ChipConfig, Fault, VirtualChip, FID_COM, FID_SOD};
use device_drivers::card::crypto::CipherSuite;
use device_drivers::card::pace::{PaceCurve, PaceInfo};
use device_drivers::card::pcsc::{
    list_readers, wait_for_card, watch as pcsc_watch, PcscTransport, ReaderEvent,
};
use device_drivers::card::reader::{read_document, AccessControl, ReadOptions};
use device_drivers::card::vpcd::{self, VpcdEnd};
use device_drivers::card::CardError;
use rand10::rngs::StdRng;
use rand10::SeedableRng;

fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut o = vec![tag];
    match v.len() {
        n if n < 0x80 => o.push(n as u8),
        n if n <= 0xFF => o.extend([0x81, n as u8]),
        n => o.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    o.extend_from_slice(v);
    o
}

fn specimen() -> MrzKey {
    MrzKey::new("L898902C", "690806", "940623").unwrap()
}

fn chip(pace: Option<PaceInfo>, fault: Option<Fault>) -> VirtualChip<StdRng> {
    let mut c = VirtualChip::new(ChipConfig::new(specimen(), pace), StdRng::seed_from_u64(5));
    c.set_file(
        FID_COM,
        hex::decode("60145F0104303130365F36063034303030305C026175").unwrap(),
    );
    let mrz =
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C<3UTO6908061F9406236ZE184226B<<<<<14";
    let mut dg1 = vec![0x5F, 0x1F, 88];
    dg1.extend_from_slice(mrz.as_bytes());
    c.set_file(dg_fid(1), tlv(0x61, &dg1));
    c.set_file(dg_fid(2), tlv(0x75, &vec![0xA5; 15_000]));
    c.set_file(FID_SOD, tlv(0x77, &vec![0x5A; 1_500]));
    if let Some(f) = fault {
        c.inject(f);
    }
    c
}

/// Serve `chip` through vpcd on a thread, run `f` against the vpcd reader, stop.
fn with_served_chip<T>(mut chip: VirtualChip<StdRng>, f: impl FnOnce(&str) -> T) -> (T, VpcdEnd) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let server = sc.spawn(|| {
            let s = vpcd::connect(vpcd::DEFAULT_VPCD_ADDR).expect("pcscd with vpcd must listen");
            vpcd::serve(s, &mut chip, &stop).unwrap()
        });
        let reader = list_readers()
            .unwrap()
            .into_iter()
            .find(|r| r.starts_with("Virtual PCD"))
            .expect("a vpcd reader");
        wait_for_card(&reader, Duration::from_secs(10)).unwrap();
        let out = f(&reader);
        stop.store(true, Ordering::Relaxed);
        let end = server.join().unwrap();
        // give pcscd time to notice the card left before the next test
        std::thread::sleep(Duration::from_millis(700));
        (out, end)
    })
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd running"]
fn bac_and_pace_through_pcscd() {
    for pace in [
        None,
        Some(PaceInfo::ecdh_gm(
            CipherSuite::Aes128,
            PaceCurve::BrainpoolP256r1,
        )),
        Some(PaceInfo::ecdh_gm(CipherSuite::Aes256, PaceCurve::P384)),
    ] {
        let ((r, elapsed), _) = with_served_chip(chip(pace.clone(), None), |reader| {
            let mut t = PcscTransport::connect(reader).unwrap();
            let t0 = Instant::now();
            let r = read_document(
                &mut t,
                &AccessKey::Mrz(specimen()),
                &ReadOptions::default(),
                &mut StdRng::seed_from_u64(9),
            );
            (r, t0.elapsed())
        });
        let r = r.unwrap();
        eprintln!(
            "{:?}: {} APDUs, {} bytes in, {} ms through pcscd",
            r.access_control,
            r.stats.apdus,
            r.stats.bytes_in,
            elapsed.as_millis()
        );
        assert_eq!(r.access_control == AccessControl::Bac, pace.is_none());
        assert_eq!(r.data_groups.get(&2).map(Vec::len), Some(15_004));
        assert_eq!(r.ef_sod.map(|s| s.len()), Some(1_504));
    }
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd running"]
fn wrong_key_and_pulled_card_through_pcscd() {
    let wrong = AccessKey::Mrz(MrzKey::new("L898902C", "690806", "940624").unwrap());
    let (r, _) = with_served_chip(chip(None, None), |reader| {
        let mut t = PcscTransport::connect(reader).unwrap();
        read_document(
            &mut t,
            &wrong,
            &ReadOptions::default(),
            &mut StdRng::seed_from_u64(1),
        )
    });
    assert!(matches!(r, Err(CardError::WrongKey { .. })), "{r:?}");
    let (r, end) = with_served_chip(chip(None, Some(Fault::PulledAt(6))), |reader| {
        let mut t = PcscTransport::connect(reader).unwrap();
        read_document(
            &mut t,
            &AccessKey::Mrz(specimen()),
            &ReadOptions::default(),
            &mut StdRng::seed_from_u64(1),
        )
    });
    assert_eq!(end, VpcdEnd::CardPulled);
    assert!(
        matches!(
            r,
            Err(CardError::CardRemoved | CardError::NoCard | CardError::Reader(_))
        ),
        "{r:?}"
    );
}

/// Collect watcher events on a thread until `stop`.
fn watcher(stop: &AtomicBool, events: &std::sync::Mutex<Vec<ReaderEvent>>) {
    pcsc_watch(stop, Duration::from_millis(100), |e| {
        eprintln!("event: {e:?}");
        events.lock().unwrap().push(e);
    });
}

fn wait_for(
    events: &std::sync::Mutex<Vec<ReaderEvent>>,
    what: impl Fn(&ReaderEvent) -> bool,
) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(15) {
        if events.lock().unwrap().iter().any(&what) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd running"]
fn watcher_reports_card_insert_and_removal() {
    let stop_watch = AtomicBool::new(false);
    let stop_card = AtomicBool::new(false);
    let events = std::sync::Mutex::new(Vec::new());
    let mut c = chip(None, None);
    std::thread::scope(|sc| {
        sc.spawn(|| watcher(&stop_watch, &events));
        assert!(wait_for(&events, |e| *e == ReaderEvent::ServiceUp));
        let server = sc.spawn(|| {
            vpcd::serve_forever(
                vpcd::DEFAULT_VPCD_ADDR,
                &mut c,
                &stop_card,
                Duration::from_millis(200),
            )
        });
        assert!(wait_for(
            &events,
            |e| matches!(e, ReaderEvent::CardPresent(r) if r.starts_with("Virtual PCD"))
        ));
        stop_card.store(true, Ordering::Relaxed);
        assert_eq!(server.join().unwrap().unwrap(), VpcdEnd::Stopped);
        assert!(wait_for(
            &events,
            |e| matches!(e, ReaderEvent::CardAbsent(r) if r.starts_with("Virtual PCD"))
        ));
        stop_watch.store(true, Ordering::Relaxed);
    });
    // the same through the channel-based watcher
    let w = device_drivers::card::pcsc::Watcher::spawn(Duration::from_millis(100)).unwrap();
    let stop_card = AtomicBool::new(false);
    let mut c = chip(None, None);
    std::thread::scope(|sc| {
        let server = sc.spawn(|| {
            vpcd::serve_forever(
                vpcd::DEFAULT_VPCD_ADDR,
                &mut c,
                &stop_card,
                Duration::from_millis(200),
            )
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = false;
        while Instant::now() < deadline && !seen {
            if let Ok(ReaderEvent::CardPresent(_)) =
                w.events.recv_timeout(Duration::from_millis(200))
            {
                seen = true;
            }
        }
        assert!(seen, "no CardPresent through the Watcher channel");
        stop_card.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
        // leave the reader empty for the next test
        let mut gone = false;
        while Instant::now() < deadline && !gone {
            if let Ok(ReaderEvent::CardAbsent(_)) =
                w.events.recv_timeout(Duration::from_millis(200))
            {
                gone = true;
            }
        }
        assert!(gone, "no CardAbsent through the Watcher channel");
    });
    drop(w);
}

/// Restarts pcscd (kills the pid in /run/pcscd/pcscd.pid, starts `pcscd` again): opt in
/// with ECHANNEL_PCSCD_RESTART=1 on a machine whose pcscd the test may restart.
#[test]
#[ignore = "restarts pcscd; opt in with ECHANNEL_PCSCD_RESTART=1"]
fn survives_pcscd_restart() {
    if std::env::var("ECHANNEL_PCSCD_RESTART").as_deref() != Ok("1") {
        eprintln!("skipped: set ECHANNEL_PCSCD_RESTART=1");
        return;
    }
    let stop_watch = AtomicBool::new(false);
    let stop_card = AtomicBool::new(false);
    let events = std::sync::Mutex::new(Vec::new());
    let mut c = chip(None, None);
    std::thread::scope(|sc| {
        sc.spawn(|| watcher(&stop_watch, &events));
        let server = sc.spawn(|| {
            vpcd::serve_forever(
                vpcd::DEFAULT_VPCD_ADDR,
                &mut c,
                &stop_card,
                Duration::from_millis(200),
            )
        });
        assert!(wait_for(&events, |e| matches!(
            e,
            ReaderEvent::CardPresent(_)
        )));
        let pid = std::fs::read_to_string("/run/pcscd/pcscd.pid").unwrap();
        let ok = std::process::Command::new("kill")
            .arg(pid.trim_matches(|c: char| c == '\0' || c.is_whitespace()))
            .status()
            .unwrap();
        assert!(ok.success());
        assert!(wait_for(&events, |e| matches!(
            e,
            ReaderEvent::ServiceDown(_)
        )));
        events.lock().unwrap().clear();
        std::thread::sleep(Duration::from_millis(500));
        let ok = std::process::Command::new("pcscd").status().unwrap();
        assert!(ok.success());
        assert!(wait_for(&events, |e| *e == ReaderEvent::ServiceUp));
        assert!(wait_for(&events, |e| matches!(
            e,
            ReaderEvent::CardPresent(_)
        )));
        // and the card reads again through the new pcscd
        let reader = list_readers()
            .unwrap()
            .into_iter()
            .find(|r| r.starts_with("Virtual PCD"))
            .unwrap();
        let mut t = PcscTransport::connect(&reader).unwrap();
        let r = read_document(
            &mut t,
            &AccessKey::Mrz(specimen()),
            &ReadOptions::default(),
            &mut StdRng::seed_from_u64(3),
        );
        assert!(r.is_ok(), "{r:?}");
        stop_card.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
        stop_watch.store(true, Ordering::Relaxed);
    });
}
