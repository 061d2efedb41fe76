//! How an OCR page or swipe reader frames the machine-readable zone on its serial (or
//! USB-CDC) line, and a sans-IO decoder that finds MRZ frames in a noisy byte stream.
//!
//! The decoder is fed bytes with the time they arrived ([`MrzDecoder::push`]) and told
//! when its frame gap has passed ([`MrzDecoder::poll_timeout`],
//! [`MrzDecoder::handle_timeout`]); it never reads a clock. Every defect it reports names
//! what failed (a check digit, a missing line, a bad block check), never the zone's
//! content. See `docs/mrz.md` for the byte streams it accepts.

use crate::card::gate::OcrMrz;
use crate::card::mrz::{Mrz, MrzError, MrzFormat};
use crate::devices::MrzScan;
use serde::{Deserialize, Serialize};

/// Start of text: opens a frame when [`Framing::stx_etx`] is set.
pub const STX: u8 = 0x02;
/// End of text: closes a frame when [`Framing::stx_etx`] is set.
pub const ETX: u8 = 0x03;
/// The default [`Framing::frame_gap_ms`].
pub const DEFAULT_FRAME_GAP_MS: u64 = 300;

/// Longest line kept (line mode); longer runs keep only their tail, which is where the
/// MRZ line is when line noise was glued in front of it.
const MAX_LINE: usize = 256;
/// What is kept of an overlong line.
const KEEP_LINE: usize = 64;
/// Longest STX … ETX body accepted (a TD1 with a CAN and CR LF is about 100 bytes).
const MAX_BODY: usize = 1024;
/// MRZ line widths: TD1, TD2, TD3.
const WIDTHS: [usize; 3] = [30, 36, 44];
/// A run of this many MRZ characters makes a discarded frame a misread, not noise.
const MRZ_LIKE_RUN: usize = 20;

/// What ends a line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Terminator {
    /// Carriage return (LF bytes are ignored).
    Cr,
    /// Line feed (CR bytes are ignored).
    Lf,
    /// CR followed by LF (a lone CR or LF is ignored).
    Crlf,
    /// Any of CR, LF or CR LF.
    #[default]
    Any,
}

/// The block check after a frame's ETX.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checksum {
    /// No block check.
    #[default]
    None,
    /// One byte after ETX: the XOR of every byte strictly between STX and ETX.
    Xor,
}

/// How the reader frames the MRZ (the framing keys of `[devices.mrz]`).
///
/// Meant to be `#[serde(flatten)]`ed into the device section, so it does not deny
/// unknown fields itself (serde's `flatten` and `deny_unknown_fields` do not mix): the
/// section that embeds it checks for unknown keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Framing {
    /// What ends a line (`"cr"`, `"lf"`, `"crlf"`, `"any"`; default `"any"`).
    pub terminator: Terminator,
    /// Frames are wrapped in STX (0x02) … ETX (0x03) (default false).
    pub stx_etx: bool,
    /// Block check after ETX (`"none"`, `"xor"`; default `"none"`; `"xor"` needs
    /// `stx_etx`).
    pub checksum: Checksum,
    /// The reader sends a TD1 card's card access number as a 6-digit line after the MRZ
    /// lines (default false).
    pub read_can: bool,
    /// Longest silence inside a frame, in milliseconds: a frame still incomplete this
    /// long after its last byte is discarded (default 300).
    pub frame_gap_ms: u64,
}

impl Default for Framing {
    fn default() -> Framing {
        Framing {
            terminator: Terminator::Any,
            stx_etx: false,
            checksum: Checksum::None,
            read_can: false,
            frame_gap_ms: DEFAULT_FRAME_GAP_MS,
        }
    }
}

/// A setting of `[devices.mrz]` with a value the reader cannot work with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("[devices.mrz] {field}: {detail}")]
pub struct SettingError {
    /// The key.
    pub field: &'static str,
    /// What is wrong with its value.
    pub detail: String,
}

impl SettingError {
    /// An error of the key `field`.
    pub fn new(field: &'static str, detail: impl Into<String>) -> SettingError {
        SettingError {
            field,
            detail: detail.into(),
        }
    }
}

impl Framing {
    /// Checks the values: `frame_gap_ms` within 10–60000, and `checksum = "xor"` only
    /// with `stx_etx = true`.
    pub fn validate(&self) -> Result<(), SettingError> {
        if !(10..=60_000).contains(&self.frame_gap_ms) {
            return Err(SettingError::new(
                "frame_gap_ms",
                format!("{} is outside 10–60000", self.frame_gap_ms),
            ));
        }
        if self.checksum == Checksum::Xor && !self.stx_etx {
            return Err(SettingError::new(
                "checksum",
                "\"xor\" needs stx_etx = true (the block check follows ETX)",
            ));
        }
        Ok(())
    }

    fn terminator_bytes(&self) -> &'static [u8] {
        match self.terminator {
            Terminator::Cr => b"\r",
            Terminator::Lf => b"\n",
            Terminator::Crlf | Terminator::Any => b"\r\n",
        }
    }
}

/// The XOR block check of a frame body (the bytes strictly between STX and ETX).
pub fn bcc(body: &[u8]) -> u8 {
    body.iter().fold(0, |a, b| a ^ b)
}

/// The bytes a reader framed by `framing` sends for `lines` (and the CAN line after
/// them, when given): every line ended by the terminator (CR LF for `"crlf"` and
/// `"any"`), wrapped in STX … ETX and followed by the block check when so framed. For
/// simulators and tests; the lines are sent as given, valid or not.
pub fn encode(lines: &[String], can: Option<&str>, framing: &Framing) -> Vec<u8> {
    let term = framing.terminator_bytes();
    let mut body = Vec::new();
    for l in lines.iter().map(String::as_str).chain(can) {
        body.extend_from_slice(l.as_bytes());
        body.extend_from_slice(term);
    }
    if !framing.stx_etx {
        return body;
    }
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(STX);
    out.extend_from_slice(&body);
    out.push(ETX);
    if framing.checksum == Checksum::Xor {
        out.push(bcc(&body));
    }
    out
}

/// Splits a byte stream into lines by a [`Terminator`].
#[derive(Debug, Default)]
struct Splitter {
    line: Vec<u8>,
    cr: bool,
}

impl Splitter {
    /// Feeds one byte; a line is returned when `b` ends it.
    fn feed(&mut self, b: u8, t: Terminator) -> Option<Vec<u8>> {
        match (t, b) {
            (Terminator::Any, b'\r' | b'\n')
            | (Terminator::Cr, b'\r')
            | (Terminator::Lf, b'\n') => Some(std::mem::take(&mut self.line)),
            (Terminator::Cr, b'\n') | (Terminator::Lf, b'\r') => None,
            (Terminator::Crlf, b'\r') => {
                self.cr = true;
                None
            }
            (Terminator::Crlf, b'\n') => {
                if std::mem::take(&mut self.cr) {
                    Some(std::mem::take(&mut self.line))
                } else {
                    None
                }
            }
            _ => {
                self.cr = false;
                self.line.push(b);
                if self.line.len() > MAX_LINE {
                    let cut = self.line.len() - KEEP_LINE;
                    self.line.drain(..cut);
                }
                None
            }
        }
    }

    /// The unterminated rest.
    fn take(&mut self) -> Vec<u8> {
        self.cr = false;
        std::mem::take(&mut self.line)
    }

    fn is_empty(&self) -> bool {
        self.line.is_empty()
    }
}

fn is_mrz_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'<'
}

/// The line without spaces and tabs.
fn strip(raw: &[u8]) -> Vec<u8> {
    raw.iter()
        .copied()
        .filter(|b| !matches!(b, b' ' | b'\t'))
        .collect()
}

/// The trailing run of MRZ characters of a line.
fn mrz_tail(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .rposition(|b| !is_mrz_char(*b))
        .map_or(0, |i| i + 1);
    text.get(start..).unwrap_or_default()
}

/// The last `n` bytes of `s` (all of it when shorter).
fn last(s: &[u8], n: usize) -> &[u8] {
    s.get(s.len().saturating_sub(n)..).unwrap_or_default()
}

/// Whether some line of `body` holds a run of MRZ characters long enough to be (part of)
/// an MRZ line: a frame that fails is then a misread rather than noise.
fn looks_like_mrz(body: &[u8]) -> bool {
    let mut run = 0;
    for b in body {
        if is_mrz_char(*b) {
            run += 1;
            if run >= MRZ_LIKE_RUN {
                return true;
            }
        } else if !matches!(b, b' ' | b'\t') {
            run = 0;
        }
    }
    false
}

fn field_name(field: &str) -> &str {
    match field {
        "document_number" => "document number",
        "date_of_birth" => "date of birth",
        "date_of_expiry" => "date of expiry",
        "optional_data" => "optional data",
        "composite" => "composite",
        "document_code" => "document code",
        "issuing_state" => "issuing state",
        "nationality" => "nationality",
        "sex" => "sex",
        "name" => "name",
        other => other,
    }
}

/// What failed in an MRZ, without its content.
pub fn defect(e: &MrzError) -> String {
    match e {
        MrzError::BadLength(n) => {
            format!("the MRZ has {n} characters; expected 90 (TD1), 72 (TD2) or 88 (TD3)")
        }
        MrzError::BadLineLength {
            line,
            expected,
            found,
        } => format!("MRZ line {line} has {found} characters, expected {expected}"),
        MrzError::BadLineCount { expected, found } => {
            format!("the MRZ has {found} lines, expected {expected}")
        }
        MrzError::BadCharacter { position, .. } => {
            format!("MRZ character {position} is not one of A-Z, 0-9, <")
        }
        MrzError::CheckDigit { field, .. } => {
            format!("check digit of the {} does not match", field_name(field))
        }
        MrzError::BadField { field, .. } => {
            format!("MRZ field {} is invalid", field_name(field))
        }
    }
}

/// Lines of a frame (line mode) and the state around them.
#[derive(Debug)]
enum Stage {
    /// Between frames.
    Idle,
    /// Line mode: the lines of an open frame. `first` is the trailing MRZ run of the
    /// first line (at most 44 characters); its width is fixed by the second line.
    Lines {
        first: Vec<u8>,
        /// The first line was exactly an MRZ line (not glued to noise).
        exact_first: bool,
        rest: Vec<Vec<u8>>,
        width: Option<usize>,
    },
    /// Line mode: a complete TD1 waiting for its CAN line.
    AwaitCan(Box<Mrz>),
    /// STX/ETX mode: inside a frame.
    Body(Vec<u8>),
    /// STX/ETX mode: after ETX, waiting for the block check.
    Bcc(Vec<u8>),
}

/// Finds MRZ frames in the byte stream of an OCR reader (sans-IO; see the module
/// documentation).
#[derive(Debug)]
pub struct MrzDecoder {
    framing: Framing,
    split: Splitter,
    stage: Stage,
    /// When the last byte arrived.
    last_ms: u64,
    /// Noise lines and frames skipped (diagnostics).
    discarded: u64,
}

fn lines_of(width: usize) -> usize {
    if width == 30 {
        3
    } else {
        2
    }
}

impl MrzDecoder {
    /// A decoder for `framing` (not validated: any value decodes something).
    pub fn new(framing: Framing) -> MrzDecoder {
        MrzDecoder {
            framing,
            split: Splitter::default(),
            stage: Stage::Idle,
            last_ms: 0,
            discarded: 0,
        }
    }

    /// The framing decoded.
    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    /// Noise lines and frames skipped so far (diagnostics; no content).
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Forgets a partial frame without reporting it (the line was lost, e.g. the port
    /// closed); the diagnostics counter is kept.
    pub fn reset(&mut self) {
        self.split = Splitter::default();
        self.stage = Stage::Idle;
    }

    /// Whether a frame (or a line) is partly received.
    pub fn is_partial(&self) -> bool {
        !matches!(self.stage, Stage::Idle) || (!self.framing.stx_etx && !self.split.is_empty())
    }

    /// Feeds bytes that arrived at `now_ms`; returns the scans they completed. A frame
    /// whose gap passed before these bytes is discarded first.
    pub fn push(&mut self, bytes: &[u8], now_ms: u64) -> Vec<MrzScan> {
        let mut out = self.handle_timeout(now_ms);
        for &b in bytes {
            if self.framing.stx_etx {
                self.stx_byte(b, &mut out);
            } else if let Some(line) = self.split.feed(b, self.framing.terminator) {
                self.on_line(&line, &mut out);
            }
        }
        if !bytes.is_empty() {
            self.last_ms = now_ms;
        }
        out
    }

    /// When [`MrzDecoder::handle_timeout`] must be called: the frame gap after the last
    /// byte of a partial frame; `None` when nothing is partial.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.is_partial()
            .then(|| self.last_ms.saturating_add(self.framing.frame_gap_ms))
    }

    /// Ends a partial frame whose gap has passed by `now_ms`: an unterminated last line
    /// counts as ended; a frame still incomplete is a misread when it had an MRZ line,
    /// noise otherwise; a TD1 waiting for its CAN is read without one.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Vec<MrzScan> {
        let mut out = Vec::new();
        match self.poll_timeout() {
            Some(t) if now_ms >= t => {}
            _ => return out,
        }
        if !self.framing.stx_etx {
            let rest = self.split.take();
            if !rest.is_empty() {
                self.on_line(&rest, &mut out);
            }
        }
        match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::Idle => {}
            Stage::Lines {
                exact_first,
                rest,
                width,
                ..
            } => {
                let have = 1 + rest.len();
                if exact_first || !rest.is_empty() {
                    let of = width.map_or(String::new(), |w| format!(" of {}", lines_of(w)));
                    out.push(MrzScan::Misread(format!(
                        "incomplete MRZ: {have} line(s){of} within the frame gap"
                    )));
                } else {
                    self.discarded += 1;
                }
            }
            Stage::AwaitCan(m) => out.push(read(*m, None)),
            Stage::Body(body) => self.fail(
                &body,
                "no end of frame (ETX) within the frame gap".into(),
                &mut out,
            ),
            Stage::Bcc(body) => {
                self.fail(&body, "block check byte missing".into(), &mut out);
            }
        }
        out
    }

    /// A frame that failed: a misread if it looks like an MRZ, noise otherwise.
    fn fail(&mut self, body: &[u8], defect: String, out: &mut Vec<MrzScan>) {
        if looks_like_mrz(body) {
            out.push(MrzScan::Misread(defect));
        } else {
            self.discarded += 1;
        }
    }

    fn stx_byte(&mut self, b: u8, out: &mut Vec<MrzScan>) {
        match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::Idle => {
                if b == STX {
                    self.stage = Stage::Body(Vec::new());
                }
            }
            Stage::Body(mut body) => {
                if b == STX {
                    self.fail(&body, "frame interrupted by a new STX".into(), out);
                    self.stage = Stage::Body(Vec::new());
                } else if b == ETX {
                    if self.framing.checksum == Checksum::Xor {
                        self.stage = Stage::Bcc(body);
                    } else {
                        self.complete(&body, out);
                    }
                } else if body.len() >= MAX_BODY {
                    self.fail(&body, format!("frame longer than {MAX_BODY} bytes"), out);
                } else {
                    body.push(b);
                    self.stage = Stage::Body(body);
                }
            }
            Stage::Bcc(body) => {
                if b == bcc(&body) {
                    self.complete(&body, out);
                } else {
                    self.fail(&body, "block check (XOR) does not match".into(), out);
                }
            }
            // Line-mode stages do not occur in STX/ETX mode.
            Stage::Lines { .. } | Stage::AwaitCan(_) => {}
        }
    }

    /// A whole STX … ETX body.
    fn complete(&mut self, body: &[u8], out: &mut Vec<MrzScan>) {
        let mut split = Splitter::default();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for &b in body {
            if let Some(l) = split.feed(b, self.framing.terminator) {
                lines.push(strip(&l));
            }
        }
        lines.push(strip(&split.take()));
        lines.retain(|l| !l.is_empty());
        let mut can = None;
        if self.framing.read_can
            && lines.len() > 1
            && lines
                .last()
                .is_some_and(|l| l.iter().all(u8::is_ascii_digit))
        {
            can = lines.pop();
        }
        let text: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let scan = match (text.is_empty(), Mrz::parse(&text.join("\n"))) {
            (true, _) => Err("empty frame".to_string()),
            (false, Err(e)) => Err(defect(&e)),
            (false, Ok(m)) => match can {
                Some(c) if c.len() != 6 => Err(format!(
                    "the card access number has {} digits, expected 6",
                    c.len()
                )),
                Some(_) if m.format != MrzFormat::Td1 => {
                    Err("a card access number follows a TD2/TD3 MRZ".into())
                }
                c => Ok(read(m, c.map(|c| String::from_utf8_lossy(&c).into_owned()))),
            },
        };
        match scan {
            Ok(s) => out.push(s),
            Err(d) => self.fail(body, d, out),
        }
    }

    /// One line (line mode).
    fn on_line(&mut self, raw: &[u8], out: &mut Vec<MrzScan>) {
        let text = strip(raw);
        if text.is_empty() {
            return;
        }
        let tail = mrz_tail(&text);
        let exact = tail.len() == text.len() && WIDTHS.contains(&text.len());
        let opens = tail.len() >= WIDTHS[0];
        match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::AwaitCan(m) => {
                if text.iter().all(u8::is_ascii_digit) {
                    if text.len() == 6 {
                        let can = String::from_utf8_lossy(&text).into_owned();
                        out.push(read(*m, Some(can)));
                    } else {
                        out.push(MrzScan::Misread(format!(
                            "the card access number has {} digits, expected 6",
                            text.len()
                        )));
                    }
                    return;
                }
                if opens {
                    out.push(read(*m, None));
                    self.open(tail, exact);
                } else {
                    self.discarded += 1;
                    self.stage = Stage::AwaitCan(m);
                }
            }
            Stage::Idle | Stage::Body(_) | Stage::Bcc(_) => {
                if opens {
                    self.open(tail, exact);
                } else {
                    self.discarded += 1;
                }
            }
            Stage::Lines {
                mut first,
                exact_first,
                mut rest,
                width,
            } => {
                let have = 1 + rest.len();
                let fits = match width {
                    None => exact && text.len() <= first.len(),
                    Some(w) => exact && text.len() == w,
                };
                if fits {
                    let w = text.len();
                    if width.is_none() {
                        first = last(&first, w).to_vec();
                    }
                    rest.push(text);
                    if 1 + rest.len() == lines_of(w) {
                        let mut all = vec![first];
                        all.extend(rest);
                        self.finish(&all, out);
                    } else {
                        self.stage = Stage::Lines {
                            first,
                            exact_first,
                            rest,
                            width: Some(w),
                        };
                    }
                } else if opens {
                    // Not this frame's next line, but an MRZ-sized line: the frame is
                    // broken (or was noise), and this line may open the next one.
                    if exact_first || !rest.is_empty() {
                        let d = if exact {
                            format!("incomplete MRZ: line {} is missing", have + 1)
                        } else {
                            let expected =
                                width.map_or("30, 36 or 44".to_string(), |w| w.to_string());
                            format!(
                                "MRZ line {} has {} characters, expected {expected}",
                                have + 1,
                                text.len()
                            )
                        };
                        out.push(MrzScan::Misread(d));
                    } else {
                        self.discarded += 1;
                    }
                    self.open(tail, exact);
                } else {
                    self.discarded += 1;
                    self.stage = Stage::Lines {
                        first,
                        exact_first,
                        rest,
                        width,
                    };
                }
            }
        }
    }

    fn open(&mut self, tail: &[u8], exact: bool) {
        self.stage = Stage::Lines {
            first: last(tail, WIDTHS[2]).to_vec(),
            exact_first: exact,
            rest: Vec::new(),
            width: None,
        };
    }

    /// All lines of a line-mode frame are there.
    fn finish(&mut self, lines: &[Vec<u8>], out: &mut Vec<MrzScan>) {
        let text: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        match Mrz::parse(&text.join("\n")) {
            Ok(m) if self.framing.read_can && m.format == MrzFormat::Td1 => {
                self.stage = Stage::AwaitCan(Box::new(m));
            }
            Ok(m) => out.push(read(m, None)),
            Err(e) => out.push(MrzScan::Misread(defect(&e))),
        }
    }
}

fn read(m: Mrz, can: Option<String>) -> MrzScan {
    MrzScan::Read {
        mrz: OcrMrz::Full(m),
        can,
    }
}
