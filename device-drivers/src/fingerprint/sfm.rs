//! Suprema SFM-style serial protocol (the subset in `docs/fingerprint-serial.md`):
//! packet and data-packet framing as a `tokio_util` codec, and a sans-IO
//! device emulator that answers like a scanner.
//!
//! Command packet, 13 bytes, multi-byte fields little-endian:
//!
//! | byte | 0    | 1       | 2..6  | 6..10 | 10   | 11       | 12   |
//! |------|------|---------|-------|-------|------|----------|------|
//! |      | 0x40 | command | param | size  | flag | checksum | 0x0A |
//!
//! The checksum is the low byte of the sum of bytes 0..=10. A packet whose
//! `size` is non-zero is followed by a data packet: `size` bytes of data, a
//! 4-byte little-endian sum of the data bytes, and 0x0A.
//!
//! The decoder resynchronises on garbage: bytes before a start byte are
//! skipped and reported, a packet with a bad end byte or checksum is
//! reported and scanning resumes one byte after its start.

use super::Template;
use bytes::{Buf, BufMut, BytesMut};
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

/// Start byte of a command packet.
pub const START: u8 = 0x40;
/// End byte of command and data packets.
pub const END: u8 = 0x0A;
/// Length of a command packet.
pub const PACKET_LEN: usize = 13;
/// Largest data packet accepted (a template of 255 minutiae is < 2 KiB).
pub const MAX_DATA: usize = 64 * 1024;

/// Command codes of the subset.
pub mod cmd {
    /// Write a system parameter (flag = parameter id, param = value).
    pub const WRITE_PARAM: u8 = 0x01;
    /// Read a system parameter (flag = parameter id; reply param = value).
    pub const READ_PARAM: u8 = 0x03;
    /// Scan a finger and return its template (ISO/IEC 19794-2:2005) in a data packet.
    pub const SCAN_TEMPLATE: u8 = 0x21;
    /// Cancel the command in progress.
    pub const CANCEL: u8 = 0x60;
}

/// Flag / error codes of the subset (in replies).
pub mod flag {
    /// The command succeeded.
    pub const SUCCESS: u8 = 0x61;
    /// A finger was scanned; the result follows.
    pub const SCAN_SUCCESS: u8 = 0x62;
    /// The scan failed (e.g. too wet or too dry).
    pub const SCAN_FAIL: u8 = 0x63;
    /// The capture quality was too low; scan again.
    pub const TRY_AGAIN: u8 = 0x6B;
    /// No finger was placed within the timeout.
    pub const TIME_OUT: u8 = 0x6C;
    /// The command or parameter is not supported.
    pub const UNSUPPORTED: u8 = 0x75;
    /// The device is busy with another command.
    pub const BUSY: u8 = 0x80;
    /// The command was cancelled.
    pub const CANCELED: u8 = 0x81;
    /// A received packet had a bad checksum.
    pub const DATA_ERROR: u8 = 0x82;
}

/// System parameter identifiers of the subset (flag byte of SW/SR).
pub mod param {
    /// Scan timeout, ASCII-coded: `0x30` = wait forever, `0x30 + n` = n seconds
    /// (n ≤ 60); default `0x3A` (10 s).
    pub const TIMEOUT: u8 = 0x62;
    /// Security level, ASCII-coded: `0x30..=0x37` (FAR 1/10 .. 1/10^8) or
    /// `0x50..=0x52` (automatic); default `0x50`.
    pub const SECURITY_LEVEL: u8 = 0x66;
    /// Minimum image quality 0..=100 below which a scan answers TRY_AGAIN, default 30.
    pub const IMAGE_QUALITY: u8 = 0x6A;
    /// Template format: 0 = ISO/IEC 19794-2:2005 record (the only one in the subset).
    pub const TEMPLATE_TYPE: u8 = 0x96;
}

/// A 13-byte command or reply packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Command code.
    pub command: u8,
    /// 4-byte parameter.
    pub param: u32,
    /// Length of the data packet that follows (0 = none).
    pub size: u32,
    /// Flag or error code.
    pub flag: u8,
}

impl Packet {
    /// A packet with no data.
    pub fn new(command: u8, param: u32, flag: u8) -> Self {
        Packet {
            command,
            param,
            size: 0,
            flag,
        }
    }

    /// The 13 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = START;
        b[1] = self.command;
        b[2..6].copy_from_slice(&self.param.to_le_bytes());
        b[6..10].copy_from_slice(&self.size.to_le_bytes());
        b[10] = self.flag;
        b[11] = checksum(&b[..11]);
        b[12] = END;
        b
    }
}

/// Low byte of the sum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

fn data_checksum(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0u32, |a, &b| a.wrapping_add(u32::from(b)))
}

/// One thing read from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A valid command or reply packet (any data follows as [`Frame::Data`]).
    Packet(Packet),
    /// A valid data packet.
    Data(Vec<u8>),
    /// Bytes skipped while looking for a start byte.
    Garbage(usize),
    /// A packet with a bad end byte or checksum (scanning resumed after its start byte).
    BadPacket {
        /// Checksum carried by the packet.
        carried: u8,
        /// Checksum computed over it.
        computed: u8,
    },
    /// A data packet with a bad checksum or end byte.
    BadData {
        /// Declared length.
        size: usize,
    },
}

/// Errors of the codec itself (I/O on the underlying transport, oversize data).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SfmError {
    /// Transport error.
    #[error("serial I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A packet announced more data than [`MAX_DATA`].
    #[error("data packet of {0} bytes announced, more than the {MAX_DATA} allowed")]
    DataTooLarge(u32),
}

/// What the codec writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A packet; its `size` must match the data packet sent next, if any.
    Packet(Packet),
    /// A data packet body (checksum and end byte are added).
    Data(Vec<u8>),
}

/// `tokio_util` codec for the SFM packet framing, for either end of the line.
#[derive(Debug, Default)]
pub struct SfmCodec {
    /// Length of the data packet expected next, if a packet announced one.
    expect_data: Option<usize>,
}

impl Decoder for SfmCodec {
    type Item = Frame;
    type Error = SfmError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, SfmError> {
        if let Some(n) = self.expect_data {
            if src.len() < n + 5 {
                src.reserve(n + 5 - src.len());
                return Ok(None);
            }
            self.expect_data = None;
            let body = src.split_to(n).to_vec();
            let sum = src.get_u32_le();
            let end = src.get_u8();
            if end != END || sum != data_checksum(&body) {
                return Ok(Some(Frame::BadData { size: n }));
            }
            return Ok(Some(Frame::Data(body)));
        }
        if src.is_empty() {
            return Ok(None);
        }
        if src[0] != START {
            let skip = src.iter().position(|&b| b == START).unwrap_or(src.len());
            src.advance(skip);
            return Ok(Some(Frame::Garbage(skip)));
        }
        if src.len() < PACKET_LEN {
            return Ok(None);
        }
        let computed = checksum(&src[..11]);
        let carried = src[11];
        if src[12] != END || carried != computed {
            src.advance(1);
            return Ok(Some(Frame::BadPacket { carried, computed }));
        }
        let b = src.split_to(PACKET_LEN);
        let p = Packet {
            command: b[1],
            param: u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            size: u32::from_le_bytes([b[6], b[7], b[8], b[9]]),
            flag: b[10],
        };
        if p.size as usize > MAX_DATA {
            return Err(SfmError::DataTooLarge(p.size));
        }
        if p.size > 0 {
            self.expect_data = Some(p.size as usize);
        }
        Ok(Some(Frame::Packet(p)))
    }
}

impl Encoder<Outgoing> for SfmCodec {
    type Error = SfmError;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), SfmError> {
        match item {
            Outgoing::Packet(p) => dst.extend_from_slice(&p.to_bytes()),
            Outgoing::Data(d) => {
                if d.len() > MAX_DATA {
                    return Err(SfmError::DataTooLarge(d.len() as u32));
                }
                dst.reserve(d.len() + 5);
                dst.extend_from_slice(&d);
                dst.put_u32_le(data_checksum(&d));
                dst.put_u8(END);
            }
        }
        Ok(())
    }
}

/// What the emulated finger on the sensor does at the next scan.
#[derive(Debug, Clone, PartialEq)]
pub enum Capture {
    /// A finger is placed and yields this template.
    Finger(Template),
    /// A finger is placed but too wet or dry to scan.
    Unreadable,
}

/// A sans-IO emulation of an SFM-style scanner: feed it packets and the
/// clock, get back reply bytes. The simulator decides what the next
/// capture is ([`SfmEmulator::present`]); an ST command waits for it until
/// the timeout parameter expires.
#[derive(Debug, Clone)]
pub struct SfmEmulator {
    timeout_s: u32,
    security_level: u32,
    image_quality: u32,
    pending_scan_deadline: Option<Option<u64>>,
    next_capture: Option<Capture>,
}

impl Default for SfmEmulator {
    fn default() -> Self {
        SfmEmulator {
            timeout_s: 10,
            security_level: 0x50,
            image_quality: 30,
            pending_scan_deadline: None,
            next_capture: None,
        }
    }
}

impl SfmEmulator {
    /// A scanner with default parameters and no finger.
    pub fn new() -> Self {
        SfmEmulator::default()
    }

    /// Places a finger (or an unreadable one) for the next scan; answers a
    /// waiting ST command at once.
    pub fn present(&mut self, capture: Capture) -> Vec<Outgoing> {
        self.next_capture = Some(capture);
        if self.pending_scan_deadline.is_some() {
            self.pending_scan_deadline = None;
            return self.finish_scan();
        }
        Vec::new()
    }

    /// Whether an ST command is waiting for a finger.
    pub fn scanning(&self) -> bool {
        self.pending_scan_deadline.is_some()
    }

    /// The moment (ms) at which a waiting scan times out, if any.
    pub fn deadline(&self) -> Option<u64> {
        self.pending_scan_deadline.flatten()
    }

    /// Advances the clock: a waiting scan past its deadline answers TIME_OUT.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Outgoing> {
        match self.pending_scan_deadline {
            Some(Some(d)) if now_ms >= d => {
                self.pending_scan_deadline = None;
                vec![Outgoing::Packet(Packet::new(
                    cmd::SCAN_TEMPLATE,
                    0,
                    flag::TIME_OUT,
                ))]
            }
            _ => Vec::new(),
        }
    }

    fn finish_scan(&mut self) -> Vec<Outgoing> {
        let mut out = vec![Outgoing::Packet(Packet::new(
            cmd::SCAN_TEMPLATE,
            0,
            flag::SCAN_SUCCESS,
        ))];
        match self.next_capture.take() {
            Some(Capture::Finger(t)) if u32::from(t.quality) < self.image_quality => {
                out.push(Outgoing::Packet(Packet::new(
                    cmd::SCAN_TEMPLATE,
                    0,
                    flag::TRY_AGAIN,
                )));
            }
            Some(Capture::Finger(t)) => match t.to_iso2005_bytes() {
                Ok(bytes) => {
                    let mut p = Packet::new(cmd::SCAN_TEMPLATE, 0, flag::SUCCESS);
                    p.size = bytes.len() as u32;
                    out.push(Outgoing::Packet(p));
                    out.push(Outgoing::Data(bytes));
                }
                Err(_) => out.push(Outgoing::Packet(Packet::new(
                    cmd::SCAN_TEMPLATE,
                    0,
                    flag::SCAN_FAIL,
                ))),
            },
            Some(Capture::Unreadable) | None => {
                out.push(Outgoing::Packet(Packet::new(
                    cmd::SCAN_TEMPLATE,
                    0,
                    flag::SCAN_FAIL,
                )));
            }
        }
        out
    }

    /// Handles one decoded frame from the host at time `now_ms`.
    pub fn receive(&mut self, frame: &Frame, now_ms: u64) -> Vec<Outgoing> {
        let p = match frame {
            Frame::Packet(p) => *p,
            Frame::BadPacket { .. } | Frame::BadData { .. } => {
                return vec![Outgoing::Packet(Packet::new(0, 0, flag::DATA_ERROR))]
            }
            Frame::Garbage(_) | Frame::Data(_) => return Vec::new(),
        };
        if self.pending_scan_deadline.is_some() && p.command != cmd::CANCEL {
            return vec![Outgoing::Packet(Packet::new(p.command, 0, flag::BUSY))];
        }
        match p.command {
            cmd::WRITE_PARAM => {
                let ok = match p.flag {
                    param::TIMEOUT if (0x30..=0x30 + 60).contains(&p.param) => {
                        self.timeout_s = p.param - 0x30;
                        true
                    }
                    param::SECURITY_LEVEL
                        if (0x30..=0x37).contains(&p.param) || (0x50..=0x52).contains(&p.param) =>
                    {
                        self.security_level = p.param;
                        true
                    }
                    param::IMAGE_QUALITY if p.param <= 100 => {
                        self.image_quality = p.param;
                        true
                    }
                    param::TEMPLATE_TYPE if p.param == 0 => true,
                    _ => false,
                };
                let f = if ok { flag::SUCCESS } else { flag::UNSUPPORTED };
                vec![Outgoing::Packet(Packet::new(cmd::WRITE_PARAM, p.param, f))]
            }
            cmd::READ_PARAM => {
                let v = match p.flag {
                    param::TIMEOUT => Some(0x30 + self.timeout_s),
                    param::SECURITY_LEVEL => Some(self.security_level),
                    param::IMAGE_QUALITY => Some(self.image_quality),
                    param::TEMPLATE_TYPE => Some(0),
                    _ => None,
                };
                let reply = match v {
                    Some(v) => Packet::new(cmd::READ_PARAM, v, flag::SUCCESS),
                    None => Packet::new(cmd::READ_PARAM, 0, flag::UNSUPPORTED),
                };
                vec![Outgoing::Packet(reply)]
            }
            cmd::SCAN_TEMPLATE => {
                if self.next_capture.is_some() {
                    self.finish_scan()
                } else {
                    let deadline =
                        (self.timeout_s > 0).then(|| now_ms + u64::from(self.timeout_s) * 1000);
                    self.pending_scan_deadline = Some(deadline);
                    Vec::new()
                }
            }
            cmd::CANCEL => {
                let mut out = Vec::new();
                if self.pending_scan_deadline.take().is_some() {
                    out.push(Outgoing::Packet(Packet::new(
                        cmd::SCAN_TEMPLATE,
                        0,
                        flag::CANCELED,
                    )));
                }
                out.push(Outgoing::Packet(Packet::new(cmd::CANCEL, 0, flag::SUCCESS)));
                out
            }
            other => vec![Outgoing::Packet(Packet::new(other, 0, flag::UNSUPPORTED))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::synth::{Finger, ImpressionParams};

    fn encode_all(items: Vec<Outgoing>) -> BytesMut {
        let mut c = SfmCodec::default();
        let mut b = BytesMut::new();
        for i in items {
            c.encode(i, &mut b).expect("encodes");
        }
        b
    }

    fn decode_all(mut b: BytesMut) -> Vec<Frame> {
        let mut c = SfmCodec::default();
        let mut out = Vec::new();
        while let Some(f) = c.decode(&mut b).expect("decodes") {
            out.push(f);
        }
        out
    }

    #[test]
    fn packet_layout_and_checksum() {
        let p = Packet::new(cmd::READ_PARAM, 0x0102_0304, param::TIMEOUT);
        let b = p.to_bytes();
        assert_eq!(
            b[..11],
            [0x40, 0x03, 0x04, 0x03, 0x02, 0x01, 0, 0, 0, 0, 0x62]
        );
        let sum: u32 = b[..11].iter().map(|&x| u32::from(x)).sum();
        assert_eq!(u32::from(b[11]), sum % 256);
        assert_eq!(b[12], 0x0A);
    }

    #[test]
    fn resynchronises_after_garbage_and_bad_checksum() {
        let good = Packet::new(cmd::CANCEL, 0, 0);
        let mut bad = Packet::new(cmd::READ_PARAM, 7, 0).to_bytes();
        bad[11] ^= 0xff;
        let mut b = BytesMut::new();
        b.extend_from_slice(&[0x00, 0x13, 0x0A]);
        b.extend_from_slice(&bad);
        b.extend_from_slice(&good.to_bytes());
        let frames = decode_all(b);
        assert_eq!(frames.first(), Some(&Frame::Garbage(3)));
        assert!(matches!(frames.get(1), Some(Frame::BadPacket { .. })));
        assert_eq!(frames.last(), Some(&Frame::Packet(good)));
    }

    #[test]
    fn data_packets_follow_their_announcing_packet() {
        let data = vec![1u8, 2, 3, 250];
        let mut p = Packet::new(cmd::SCAN_TEMPLATE, 0, flag::SUCCESS);
        p.size = data.len() as u32;
        let frames = decode_all(encode_all(vec![
            Outgoing::Packet(p),
            Outgoing::Data(data.clone()),
        ]));
        assert_eq!(frames, vec![Frame::Packet(p), Frame::Data(data.clone())]);
        let mut b = encode_all(vec![Outgoing::Packet(p), Outgoing::Data(data)]);
        let n = b.len();
        b[n - 2] ^= 1; // corrupt the data checksum
        assert_eq!(decode_all(b)[1], Frame::BadData { size: 4 });
    }

    #[test]
    fn partial_input_waits_for_more() {
        let bytes = Packet::new(cmd::CANCEL, 0, 0).to_bytes();
        let mut c = SfmCodec::default();
        let mut b = BytesMut::from(&bytes[..7]);
        assert_eq!(c.decode(&mut b).expect("ok"), None);
        b.extend_from_slice(&bytes[7..]);
        assert!(matches!(
            c.decode(&mut b).expect("ok"),
            Some(Frame::Packet(_))
        ));
    }

    #[test]
    fn emulator_scans_times_out_cancels_and_keeps_parameters() {
        let mut e = SfmEmulator::new();
        let st = Frame::Packet(Packet::new(cmd::SCAN_TEMPLATE, 0, 0));
        // Parameters (ASCII-coded values).
        let call = |e: &mut SfmEmulator, c: u8, v: u32, id: u8| {
            e.receive(&Frame::Packet(Packet::new(c, v, id)), 0)
        };
        let reply = |c: u8, v: u32, f: u8| vec![Outgoing::Packet(Packet::new(c, v, f))];
        assert_eq!(
            call(&mut e, cmd::READ_PARAM, 0, param::TIMEOUT),
            reply(cmd::READ_PARAM, 0x3A, flag::SUCCESS)
        );
        assert_eq!(
            call(&mut e, cmd::WRITE_PARAM, 0x33, param::TIMEOUT),
            reply(cmd::WRITE_PARAM, 0x33, flag::SUCCESS)
        );
        assert_eq!(
            call(&mut e, cmd::READ_PARAM, 0, param::TIMEOUT),
            reply(cmd::READ_PARAM, 0x33, flag::SUCCESS)
        );
        assert_eq!(
            call(&mut e, cmd::WRITE_PARAM, 3, param::TIMEOUT),
            reply(cmd::WRITE_PARAM, 3, flag::UNSUPPORTED)
        );
        assert_eq!(
            call(&mut e, cmd::READ_PARAM, 0, 0x01),
            reply(cmd::READ_PARAM, 0, flag::UNSUPPORTED)
        );
        // No finger: times out after 3 s.
        assert!(e.receive(&st, 1000).is_empty());
        assert!(e.tick(3999).is_empty());
        assert_eq!(
            e.tick(4000),
            vec![Outgoing::Packet(Packet::new(
                cmd::SCAN_TEMPLATE,
                0,
                flag::TIME_OUT
            ))]
        );
        // Cancel while waiting.
        e.receive(&st, 5000);
        let r = e.receive(&Frame::Packet(Packet::new(cmd::CANCEL, 0, 0)), 5100);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            Outgoing::Packet(Packet::new(cmd::SCAN_TEMPLATE, 0, flag::CANCELED))
        );
        // A finger arrives while waiting: scan success, then the ISO record.
        e.receive(&st, 6000);
        let t = Finger::generate(5).impression(1, &ImpressionParams::default());
        let r = e.present(Capture::Finger(t.clone()));
        assert_eq!(
            r[0],
            Outgoing::Packet(Packet::new(cmd::SCAN_TEMPLATE, 0, flag::SCAN_SUCCESS))
        );
        let Outgoing::Data(d) = &r[2] else {
            panic!("data packet")
        };
        assert_eq!(&Template::from_bytes(d).expect("ISO record"), &t);
        // Unreadable finger.
        e.present(Capture::Unreadable);
        let r = e.receive(&st, 7000);
        assert_eq!(
            r[1],
            Outgoing::Packet(Packet::new(cmd::SCAN_TEMPLATE, 0, flag::SCAN_FAIL))
        );
        // Unknown command.
        let r = e.receive(&Frame::Packet(Packet::new(0x55, 0, 0)), 8000);
        assert_eq!(
            r,
            vec![Outgoing::Packet(Packet::new(0x55, 0, flag::UNSUPPORTED))]
        );
    }
}
