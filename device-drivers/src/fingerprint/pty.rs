//! A simulated scanner on the far side of a real pseudo-terminal (`openpty`): the
//! [`SfmEmulator`] answering over the master end, with the slave end reachable at a
//! stable path (a symlink, like a udev `/dev/serial/by-id/...` link), so a driver opens
//! it exactly like a real port.
//!
//! The test or simulator scripts what the finger on the sensor does ([`PtyScanner::queue`],
//! [`PtyScanner::set_finger`]) and how the line misbehaves (garbage, corrupted replies,
//! silence); [`PtyScanner::vanish`] closes the pty and removes the link (the adapter is
//! unplugged) and [`PtyScanner::reappear`] brings up a new pty at the same path.

use super::sfm::{cmd, Capture, Frame, Outgoing, SfmCodec, SfmEmulator, END, START};
use super::synth::{Finger, ImpressionParams};
use crate::port::pty::{self, write_all, LinkedPty};
use bytes::BytesMut;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio_util::codec::{Decoder, Encoder};

/// What the finger does at the next scan command.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// A finger (or an unreadable one) is on the sensor.
    Capture(Capture),
    /// No finger: the scan runs into the scanner's timeout.
    NoFinger,
}

/// What the scanner saw on its line or sent back, as timed by
/// [`PtyScanner::record_events`] (the rig's benchmark measures the gate's answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScannerEvent {
    /// A scan (capture) command was received.
    ScanCommand,
    /// The last byte of a template (the data packet of a successful scan) was written.
    TemplateSent,
}

/// The script shared with the emulator thread.
#[derive(Default)]
struct Script {
    /// Kept events with when they happened; `None`: not kept.
    events: Option<Vec<(Instant, ScannerEvent)>>,
    queued: VecDeque<Placement>,
    finger: Option<(Finger, ImpressionParams, u64)>,
    corrupt_replies: u32,
    garbage: Vec<u8>,
    silent: bool,
    scans: u32,
    cancels: u32,
    bad_requests: u32,
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A simulated SFM-style scanner behind a pseudo-terminal.
pub struct PtyScanner {
    link: PathBuf,
    script: Arc<Mutex<Script>>,
    running: Option<Running>,
}

fn lock(s: &Mutex<Script>) -> MutexGuard<'_, Script> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl PtyScanner {
    /// Opens a pty, links its slave end at `link` (replacing what is there) and starts
    /// answering on the master end.
    pub fn start(link: &Path) -> io::Result<PtyScanner> {
        let mut s = PtyScanner {
            link: link.to_owned(),
            script: Arc::new(Mutex::new(Script::default())),
            running: None,
        };
        s.reappear()?;
        Ok(s)
    }

    /// The path a driver opens.
    pub fn path(&self) -> &Path {
        &self.link
    }

    /// Whether the device is there.
    pub fn present(&self) -> bool {
        self.running.is_some()
    }

    /// Queues what happens at the next scan (before any [`PtyScanner::set_finger`]).
    pub fn queue(&self, placement: Placement) {
        lock(&self.script).queued.push_back(placement);
    }

    /// From now on every scan without a queued placement is a new impression of
    /// `finger` (seeds counting up from `first_seed`); `None` = no finger, scans time out.
    pub fn set_finger(&self, finger: Option<(Finger, ImpressionParams)>, first_seed: u64) {
        lock(&self.script).finger = finger.map(|(f, p)| (f, p, first_seed));
    }

    /// Corrupts the checksum of the next `n` reply packets.
    pub fn corrupt_replies(&self, n: u32) {
        lock(&self.script).corrupt_replies = n;
    }

    /// Sends `bytes` of line noise before the next reply.
    pub fn garbage_before_next_reply(&self, bytes: &[u8]) {
        lock(&self.script).garbage.extend_from_slice(bytes);
    }

    /// A silent scanner reads and ignores every request.
    pub fn set_silent(&self, silent: bool) {
        lock(&self.script).silent = silent;
    }

    /// Scan commands received so far.
    pub fn scans(&self) -> u32 {
        lock(&self.script).scans
    }

    /// Cancel commands received so far.
    pub fn cancels(&self) -> u32 {
        lock(&self.script).cancels
    }

    /// Requests received with a bad checksum so far.
    pub fn bad_requests(&self) -> u32 {
        lock(&self.script).bad_requests
    }

    /// From now on keeps every [`ScannerEvent`] with its (monotonic) time, for
    /// [`PtyScanner::take_events`].
    pub fn record_events(&self) {
        lock(&self.script).events.get_or_insert_with(Vec::new);
    }

    /// The events kept since the last call, oldest first.
    pub fn take_events(&self) -> Vec<(Instant, ScannerEvent)> {
        lock(&self.script)
            .events
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The adapter is unplugged: the pty is closed (the driver's reads fail) and the
    /// link removed.
    pub fn vanish(&mut self) {
        self.running = None;
        pty::unlink(&self.link);
    }

    /// The adapter is plugged back in: a new pty, linked at the same path.
    pub fn reappear(&mut self) -> io::Result<()> {
        self.vanish();
        let LinkedPty { master, slave } = LinkedPty::open(&self.link)?;
        let stop = Arc::new(AtomicBool::new(false));
        let script = self.script.clone();
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pty-scanner".into())
            .spawn(move || serve(master, slave, script, stop2))?;
        self.running = Some(Running {
            stop,
            thread: Some(thread),
        });
        Ok(())
    }
}

impl Drop for PtyScanner {
    fn drop(&mut self) {
        self.vanish();
    }
}

/// The emulator loop on the master end; keeps the slave end open too, so the master
/// never sees a hang-up while no driver has the port open.
fn serve(master: OwnedFd, slave: OwnedFd, script: Arc<Mutex<Script>>, stop: Arc<AtomicBool>) {
    let t0 = Instant::now();
    let mut emu = SfmEmulator::new();
    let mut codec = SfmCodec::default();
    let mut out_codec = SfmCodec::default();
    let mut rx = BytesMut::new();
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 10) };
        // SAFETY: reading into a valid buffer from an fd we own.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            rx.extend_from_slice(&buf[..n as usize]);
        }
        let now = t0.elapsed().as_millis() as u64;
        let mut out = Vec::new();
        loop {
            let frame = match codec.decode(&mut rx) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    rx.clear();
                    codec = SfmCodec::default();
                    break;
                }
            };
            let mut s = lock(&script);
            if s.silent {
                continue;
            }
            if let (Frame::Packet(p), Some(events)) = (&frame, s.events.as_mut()) {
                if p.command == cmd::SCAN_TEMPLATE {
                    events.push((Instant::now(), ScannerEvent::ScanCommand));
                }
            }
            match &frame {
                Frame::Packet(p) if p.command == cmd::SCAN_TEMPLATE && !emu.scanning() => {
                    s.scans += 1;
                    let next = s.queued.pop_front().or_else(|| {
                        s.finger.as_mut().map(|(f, params, seed)| {
                            *seed += 1;
                            Placement::Capture(Capture::Finger(f.impression(*seed, params)))
                        })
                    });
                    if let Some(Placement::Capture(c)) = next {
                        let _ = emu.present(c);
                    }
                }
                Frame::Packet(p) if p.command == cmd::CANCEL => s.cancels += 1,
                Frame::BadPacket { .. } => s.bad_requests += 1,
                _ => {}
            }
            drop(s);
            out.extend(emu.receive(&frame, now));
        }
        out.extend(emu.tick(now));
        for item in out {
            let mut bytes = BytesMut::new();
            if out_codec.encode(item.clone(), &mut bytes).is_err() {
                continue;
            }
            let mut s = lock(&script);
            if s.silent {
                continue;
            }
            if !s.garbage.is_empty() {
                let g = std::mem::take(&mut s.garbage);
                write_all(&master, &g, &|| stop.load(Ordering::SeqCst));
            }
            if matches!(item, Outgoing::Packet(_))
                && s.corrupt_replies > 0
                && bytes.len() == 13
                && bytes[0] == START
                && bytes[12] == END
            {
                s.corrupt_replies -= 1;
                bytes[11] ^= 0x5A;
            }
            drop(s);
            write_all(&master, &bytes, &|| stop.load(Ordering::SeqCst));
            if matches!(item, Outgoing::Data(_)) {
                if let Some(events) = lock(&script).events.as_mut() {
                    events.push((Instant::now(), ScannerEvent::TemplateSent));
                }
            }
        }
    }
    drop(slave);
    drop(master);
}
