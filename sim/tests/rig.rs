//! `gate-sim rig`: the lane's world on real transports, played here by a test in the
//! place of `gated` (the end-to-end test with `gated` is in the process tests).
//!
//! The tests marked `#[ignore]` need pcscd with vsmartcard-vpcd (`scripts/dev-services.sh`)
//! and run in the serialized vpcd section of `make test`:
//! `cargo test -p sim --test rig -- --ignored --test-threads 1`.

#[path = "../../gate-controller/tests/common/port.rs"]
mod port;

use device_drivers::card::mrz::{Mrz, MrzFormat};
use device_drivers::devices::FingerprintScanner;
use device_drivers::fingerprint::matcher::compare_records;
use device_drivers::fingerprint::serial::{SerialScanner, SerialSettings};
use device_drivers::io::modbus::{ModbusConfig, ModbusImage};
use device_drivers::io::ProcessImage;
use device_drivers::sim::Behaviour;
use embedded_hal::digital::{InputPin, OutputPin};
use gate_sim::lane::{coil, input};
use gate_sim::rig::{self, RigOptions, RigReport};
use gate_sim::scenario::Scenario;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn scenario_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../configs/scenarios/{name}.toml"))
}

const ONE: &str = r#"
seed = 3
gates = 1
max_duration_s = 90
[[traveller]]
name = "ada"
at_s = 0.5
[expect]
travellers = { ada = "cleared" }
transits = 1
all_done = true
"#;

struct Running {
    dir: tempfile::TempDir,
    modbus: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<RigReport, String>>>,
}

impl Running {
    fn start(text: &str, vpcd: &str) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario::parse(text, "test.toml", "test").unwrap();
        let modbus = format!("127.0.0.1:{}", port::free_port());
        let opts = RigOptions {
            vpcd: vpcd.into(),
            modbus: modbus.clone(),
            mrz_pty: dir.path().join("rig/mrz"),
            scanner_pty: dir.path().join("rig/scanner"),
            display: None,
            patience_ms: 20_000,
            hold_patience_ms: 30_000,
            verbose: true,
            timing: false,
            ocr_ms: gate_sim::rig::DEFAULT_OCR_MS,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            rig::run(&scenario, "test.toml", 3, &opts, flag).map_err(|e| e.to_string())
        });
        let r = Running {
            dir,
            modbus,
            stop,
            thread: Some(thread),
        };
        let t0 = Instant::now();
        while !(r.mrz().exists() && r.scanner().exists()) {
            assert!(t0.elapsed() < Duration::from_secs(30), "no pty links");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn mrz(&self) -> PathBuf {
        self.dir.path().join("rig/mrz")
    }

    fn scanner(&self) -> PathBuf {
        self.dir.path().join("rig/scanner")
    }

    /// Reads the OCR pty on a thread; every chunk read goes to the channel.
    fn ocr_reader(&self) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        let mut f = std::fs::File::open(self.mrz()).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        rx
    }

    fn finish(mut self) -> RigReport {
        let t = self.thread.take().unwrap();
        let t0 = Instant::now();
        while !t.is_finished() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the rig did not end"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        t.join().unwrap().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Collects OCR bytes until a whole zone of `lines` CR LF lines arrived.
fn zone(rx: &mpsc::Receiver<Vec<u8>>, lines: usize, secs: u64) -> Option<String> {
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Ok(b) = rx.recv_timeout(Duration::from_millis(100)) {
            got.extend(b);
            if got.windows(2).filter(|w| w == b"\r\n").count() >= lines {
                return Some(String::from_utf8_lossy(&got).into_owned());
            }
        }
    }
    None
}

/// A gate's side of the I/O module.
struct Io {
    img: ModbusImage,
    ins: Vec<device_drivers::io::modbus::ModbusInputPin>,
    outs: Vec<device_drivers::io::modbus::ModbusOutputPin>,
}

impl Io {
    async fn connect(addr: &str) -> Io {
        let mut img = ModbusImage::new(ModbusConfig::new(addr.to_string()));
        let ins = img.input_pins();
        let outs = img.output_pins();
        img.read_inputs().await.unwrap();
        Io { img, ins, outs }
    }

    async fn set(&mut self, c: usize, on: bool) {
        if on {
            self.outs[c].set_high().unwrap();
        } else {
            self.outs[c].set_low().unwrap();
        }
        self.img.write_outputs().await.unwrap();
    }

    async fn wait(&mut self, what: &str, secs: u64, want: impl Fn(&[bool]) -> bool) {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            self.img.read_inputs().await.unwrap();
            let v: Vec<bool> = self.ins.iter_mut().map(|p| p.is_high().unwrap()).collect();
            if want(&v) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {v:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Plays a gate that clears the traveller at the reader: entry open, in, entry closed,
/// a capture on the scanner, exit open, out, exit closed. Returns the capture's bytes.
async fn clear_one(io: &mut Io, scanner: &Path) -> Vec<u8> {
    io.set(coil::ENTRY_DRIVE_OPEN, true).await;
    io.wait("the traveller inside", 20, |i| {
        i[input::OCCUPANCY] && !i[input::ENTRY_BEAM] && !i[input::ENTRY_SAFETY]
    })
    .await;
    io.set(coil::ENTRY_DRIVE_OPEN, false).await;
    io.wait("the entry closed", 10, |i| i[input::ENTRY_CLOSED])
        .await;
    let mut s = SerialScanner::new(SerialSettings::new(scanner));
    s.probe().await.unwrap();
    let cap = s.capture(Duration::from_secs(10)).await.unwrap();
    io.set(coil::EXIT_DRIVE_OPEN, true).await;
    io.wait("the traveller out", 20, |i| {
        !i[input::OCCUPANCY] && !i[input::EXIT_BEAM] && !i[input::EXIT_SAFETY]
    })
    .await;
    io.set(coil::EXIT_DRIVE_OPEN, false).await;
    io.wait("the exit closed", 10, |i| i[input::EXIT_CLOSED])
        .await;
    cap.template.bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_starts_with_the_gate_and_a_traveller_is_served_on_every_transport() {
    // No vpcd here: the chip is offered to a port nobody listens on (see the ignored
    // test for the PC/SC side).
    let rig = Running::start(ONE, "127.0.0.1:9");
    let rx = rig.ocr_reader();
    // ada arrives 0.5 s after the clock starts: nothing happens before a gate connects.
    assert_eq!(
        zone(&rx, 1, 3),
        None,
        "the clock ran before a gate connected"
    );
    let mut io = Io::connect(&rig.modbus).await;
    let text = zone(&rx, 3, 15).expect("ada's MRZ on the OCR pty");
    let mrz = Mrz::parse(text.trim_end()).expect("a valid zone");
    assert_eq!(mrz.format, MrzFormat::Td1, "{text:?}");
    assert_eq!(mrz.issuing_state, "UTO");
    assert!(
        text.ends_with("\r\n") && text.matches("\r\n").count() == 3,
        "{text:?}"
    );
    let live = clear_one(&mut io, &rig.scanner()).await;

    // The capture is a new impression of ada's own thumb: it matches her DG3 better than
    // anyone else's.
    let s = Scenario::parse(ONE, "t", "t").unwrap();
    let plan = rig::plan(&s, 3, 20_000).unwrap();
    let dg3 = &plan[0].persona.thumbs[0].1;
    let other = rig::plan(&s, 4, 20_000).unwrap();
    let genuine = compare_records(dg3, &live).unwrap().score;
    let impostor = compare_records(&other[0].persona.thumbs[0].1, &live)
        .unwrap()
        .score;
    assert!(genuine > impostor, "genuine {genuine} impostor {impostor}");
    assert_eq!(plan[0].persona.mrz.document_number, mrz.document_number);

    let r = rig.finish();
    assert!(r.ok(), "{r:#?}");
    assert_eq!(r.travellers["ada"], "cleared");
    assert_eq!(r.outcomes.cleared, 1);
    let t = &r.timeline[0];
    assert!(t.presented_ms.unwrap() >= 500, "{t:?}");
    assert!(t.let_in_ms.unwrap() >= t.presented_ms.unwrap(), "{t:?}");
    assert!(t.exit_closed_ms.unwrap() >= t.left_ms.unwrap(), "{t:?}");
    assert!(r.passage_ms.p50.is_some() && r.passage_ms.p90.is_some());
    let v = serde_json::to_value(&r).unwrap();
    for k in [
        "scenario",
        "seed",
        "transits",
        "outcomes",
        "expectations",
        "invariant_violations",
        "travellers",
        "passage_ms",
        "timeline",
    ] {
        assert!(v.get(k).is_some(), "no {k} in {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_that_dies_with_a_traveller_inside_finds_them_there_when_it_reconnects() {
    let rig = Running::start(ONE, "127.0.0.1:9");
    let rx = rig.ocr_reader();
    let mut io = Io::connect(&rig.modbus).await;
    zone(&rx, 3, 15).expect("ada's MRZ");
    io.set(coil::ENTRY_DRIVE_OPEN, true).await;
    io.wait("ada inside", 20, |i| {
        i[input::OCCUPANCY] && !i[input::ENTRY_BEAM] && !i[input::ENTRY_SAFETY]
    })
    .await;
    io.set(coil::ENTRY_DRIVE_OPEN, false).await;
    io.wait("the entry closed", 10, |i| i[input::ENTRY_CLOSED])
        .await;
    // The gate dies (its connection drops) and comes back a few seconds later.
    drop(io);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut io = Io::connect(&rig.modbus).await;
    io.wait("ada still inside", 2, |i| {
        i[input::OCCUPANCY] && i[input::ENTRY_CLOSED] && i[input::EXIT_CLOSED]
    })
    .await;
    // The restarted gate lets her out through the exit; she follows the door.
    io.set(coil::EXIT_DRIVE_OPEN, true).await;
    io.wait("ada out", 20, |i| {
        !i[input::OCCUPANCY] && !i[input::EXIT_BEAM] && !i[input::EXIT_SAFETY]
    })
    .await;
    io.set(coil::EXIT_DRIVE_OPEN, false).await;
    let r = rig.finish();
    assert_eq!(r.travellers["ada"], "cleared", "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traveller_nobody_lets_in_goes_to_the_counter_after_their_patience() {
    let text = ONE.replace(
        "travellers = { ada = \"cleared\" }",
        "travellers = { ada = \"referred\" }",
    );
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::parse(&text, "t.toml", "t").unwrap();
    let modbus = format!("127.0.0.1:{}", port::free_port());
    let opts = RigOptions {
        vpcd: "127.0.0.1:9".into(),
        modbus: modbus.clone(),
        mrz_pty: dir.path().join("mrz"),
        scanner_pty: dir.path().join("scanner"),
        patience_ms: 2_000,
        verbose: false,
        ..RigOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let t = {
        let stop = stop.clone();
        std::thread::spawn(move || rig::run(&scenario, "t.toml", 3, &opts, stop))
    };
    let t0 = Instant::now();
    let _io = loop {
        let mut img = ModbusImage::new(ModbusConfig::new(modbus.clone()));
        if img.read_inputs().await.is_ok() {
            break img;
        }
        assert!(t0.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let r = tokio::task::spawn_blocking(move || t.join().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(r.ok(), "{r:#?}");
    assert_eq!(r.transits, 1);
    assert!(r.passage_ms.p50.is_none());
    let t = &r.timeline[0];
    assert!(t.let_in_ms.is_none() && t.left_ms.is_some(), "{t:?}");
}

#[test]
fn personas_carry_the_documented_watchlist_numbers_and_fit_the_behaviours() {
    let s = Scenario::load(&scenario_file("rig-mix")).unwrap();
    rig::check_scenario(&s).unwrap();
    // 2026-12-03
    let today = 20_790;
    let plan = rig::plan(&s, s.seed, today).unwrap();
    assert!(plan.len() >= 20);
    let mut numbers = std::collections::BTreeSet::new();
    let (mut pace, mut bac) = (0, 0);
    for t in &plan {
        let m = &t.persona.mrz;
        assert_eq!(m.format, MrzFormat::Td1, "{}", t.name);
        assert_eq!(m.issuing_state, "UTO");
        assert!(numbers.insert(m.document_number.clone()), "{m:?} repeats");
        assert_eq!(t.persona.thumbs.len(), 2, "DG3 holds both enrolled thumbs");
        let listed =
            m.document_number.starts_with("RIGHOLD") || m.document_number.starts_with("RIGREFR");
        match t.behaviour {
            Behaviour::WatchlistHold => assert_eq!(m.document_number, "RIGHOLD01"),
            _ => assert!(!listed, "{} carries {}", t.name, m.document_number),
        }
        let exp = device_drivers::types::MrzDate::parse(&m.date_of_expiry).unwrap();
        let today = device_drivers::types::Date::from_unix_days(today);
        let expired = exp.as_expiry(today).unwrap() < today;
        assert_eq!(expired, t.behaviour == Behaviour::ExpiredDocument, "{m:?}");
        if t.pace {
            pace += 1
        } else {
            bac += 1
        }
        let lines = t.ocr_bytes();
        assert_eq!(lines.len(), 3 * 32);
        // What they put on the scanner, against the right thumb in DG3.
        let (finger, params) = t.thumb();
        let live = finger.impression(77, &params);
        let bytes = live.to_iso2005_bytes().unwrap();
        let score = compare_records(&t.persona.thumbs[0].1, &bytes)
            .unwrap()
            .score;
        match t.behaviour {
            Behaviour::PoorQuality => assert!(live.minutiae.len() < 12, "{}", live.minutiae.len()),
            Behaviour::WrongFinger => assert!(score < 0.3, "{}: impostor {score}", t.name),
            _ => assert!(score >= 0.5, "{}: genuine {score}", t.name),
        }
    }
    assert!(pace > 0 && bac > 0, "PACE {pace} BAC {bac}");
    let poor = Scenario::parse(
        "[[traveller]]\nbehaviour = \"poor_quality\"\n",
        "p.toml",
        "p",
    )
    .unwrap();
    let p = &rig::plan(&poor, 1, today).unwrap()[0];
    let (finger, params) = p.thumb();
    assert!(finger.impression(5, &params).minutiae.len() < 12);
}

/// A stand-in for the gate's traveller display: serves `/display/events` (SSE) and sends
/// each prompt given to the returned channel to every client.
fn fake_display() -> (String, mpsc::Sender<&'static str>) {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel::<&'static str>();
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut req = [0u8; 1024];
        let n = c.read(&mut req).unwrap();
        assert!(String::from_utf8_lossy(&req[..n]).starts_with("GET /display/events "));
        c.write_all(b"HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
            .unwrap();
        while let Ok(p) = rx.recv() {
            let ev = format!(
                "event: prompt\ndata: {{\"gate_id\":\"g\",\"mode\":\"x\",\"prompt\":\"{p}\"}}\n\n"
            );
            if c.write_all(ev.as_bytes()).is_err() {
                break;
            }
        }
    });
    (url, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_who_see_the_display_wait_for_the_officer_and_leave_when_released() {
    let text = r#"
seed = 5
gates = 1
max_duration_s = 60
[[traveller]]
name = "hal"
behaviour = "watchlist_hold"
at_s = 0.5
[expect]
travellers = { hal = "held" }
"#;
    let (url, prompts) = fake_display();
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::parse(text, "t.toml", "t").unwrap();
    let modbus = format!("127.0.0.1:{}", port::free_port());
    let opts = RigOptions {
        vpcd: "127.0.0.1:9".into(),
        modbus: modbus.clone(),
        mrz_pty: dir.path().join("mrz"),
        scanner_pty: dir.path().join("scanner"),
        display: Some(url),
        // Following the doors they would leave at once: the display keeps them.
        patience_ms: 500,
        hold_patience_ms: 500,
        verbose: true,
        timing: false,
        ocr_ms: gate_sim::rig::DEFAULT_OCR_MS,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let t = {
        let stop = stop.clone();
        std::thread::spawn(move || rig::run(&scenario, "t.toml", 5, &opts, stop))
    };
    prompts.send("present_document").unwrap();
    let t0 = Instant::now();
    while !dir.path().join("mrz").exists() {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut f = std::fs::File::open(dir.path().join("mrz")).unwrap();
    let mut io = Io::connect(&modbus).await;
    let mut got = Vec::new();
    while got.windows(2).filter(|w| w == b"\r\n").count() < 3 {
        let mut b = [0u8; 128];
        let n = f.read(&mut b).unwrap();
        got.extend_from_slice(&b[..n]);
    }
    assert!(
        String::from_utf8_lossy(&got).contains("RIGHOLD01"),
        "{got:?}"
    );
    prompts.send("reading_document").unwrap();
    prompts.send("wait_for_officer").unwrap();
    // Held: still there well past their patience.
    for _ in 0..100 {
        io.img.read_inputs().await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(!t.is_finished(), "hal left while held");
    // The officer releases the hold: the gate asks for the next document, hal goes.
    prompts.send("present_document").unwrap();
    let r = tokio::task::spawn_blocking(move || t.join().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(r.ok(), "{r:#?}");
    assert_eq!(r.outcomes.held, 1);
    assert_eq!(r.timeline[0].document_number, "RIGHOLD01");
    drop(io);
}

fn gate_sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gate-sim"))
}

#[test]
fn scenarios_the_rig_cannot_serve_and_bad_flags_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let two = dir.path().join("two.toml");
    std::fs::write(&two, "gates = 2\n[[traveller]]\nname = \"a\"\n").unwrap();
    let out = gate_sim()
        .args(["rig", two.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`gates`"), "{err}");
    assert!(out.stdout.is_empty());
    let fault = dir.path().join("fault.toml");
    std::fs::write(
        &fault,
        "[[fault]]\nkind = \"scanner_offline\"\nat_s = 1\nfor_s = 1\n",
    )
    .unwrap();
    let out = gate_sim()
        .args(["rig", fault.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fault[0].kind"));
    let smoke = scenario_file("rig-smoke");
    let out = gate_sim()
        .args(["rig", smoke.to_str().unwrap(), "--modbus", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--modbus"));
    let out = gate_sim().args(["rig", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// The vpcd reader's name as pcscd lists it.
fn vpcd_reader() -> String {
    let readers = device_drivers::card::pcsc::list_readers().expect("pcscd runs");
    readers
        .into_iter()
        .find(|r| r.contains("Virtual PCD"))
        .expect("a vpcd reader")
}

fn card_present(reader: &str) -> bool {
    device_drivers::card::pcsc::PcscTransport::connect(reader).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pcscd with vsmartcard-vpcd running (scripts/dev-services.sh)"]
async fn the_chip_is_on_the_reader_from_presenting_until_the_traveller_walks_in() {
    let reader = vpcd_reader();
    let rig = Running::start(ONE, device_drivers::card::vpcd::DEFAULT_VPCD_ADDR);
    let rx = rig.ocr_reader();
    assert!(!card_present(&reader), "a card before anyone presented");
    let mut io = Io::connect(&rig.modbus).await;
    zone(&rx, 3, 15).expect("ada's MRZ");
    device_drivers::card::pcsc::wait_for_card(&reader, Duration::from_secs(10))
        .expect("ada's chip on the reader");
    // She takes it when the entry opens.
    io.set(coil::ENTRY_DRIVE_OPEN, true).await;
    let t0 = Instant::now();
    while card_present(&reader) {
        assert!(t0.elapsed() < Duration::from_secs(10), "the chip stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    io.set(coil::ENTRY_DRIVE_OPEN, false).await;
    drop(rig);
}
