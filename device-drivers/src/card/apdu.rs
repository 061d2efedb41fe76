//! ISO/IEC 7816-4 command and response APDUs (short and extended length), status words,
//! and the transport-level exchange rules: GET RESPONSE chaining on `61xx` and the
//! wrong-length retry on `6Cxx`.

use super::transport::{CardTransport, TransportError};

/// Largest data field of a short APDU.
pub const SHORT_MAX_LC: usize = 255;
/// Largest expected length of a short APDU (encoded as `00`).
pub const SHORT_MAX_LE: usize = 256;
/// Largest expected length of an extended APDU (encoded as `0000`).
pub const EXTENDED_MAX_LE: usize = 65536;

/// Status word `9000`: normal processing.
pub const SW_OK: u16 = 0x9000;
/// Status word `6282`: end of file reached before `Le` bytes were read.
pub const SW_END_OF_FILE: u16 = 0x6282;
/// Status word `6300`: verification failed (PACE/BAC authentication).
pub const SW_AUTH_FAILED: u16 = 0x6300;
/// Status word `6700`: wrong length.
pub const SW_WRONG_LENGTH: u16 = 0x6700;
/// Status word `6982`: security status not satisfied.
pub const SW_SECURITY_NOT_SATISFIED: u16 = 0x6982;
/// Status word `6985`: conditions of use not satisfied.
pub const SW_CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
/// Status word `6987`: expected secure-messaging data objects missing.
pub const SW_SM_OBJECTS_MISSING: u16 = 0x6987;
/// Status word `6988`: secure-messaging data objects incorrect.
pub const SW_SM_OBJECTS_INCORRECT: u16 = 0x6988;
/// Status word `6A80`: incorrect parameters in the data field.
pub const SW_WRONG_DATA: u16 = 0x6A80;
/// Status word `6A82`: file or application not found.
pub const SW_FILE_NOT_FOUND: u16 = 0x6A82;
/// Status word `6A86`: incorrect parameters P1-P2.
pub const SW_WRONG_P1P2: u16 = 0x6A86;
/// Status word `6A88`: referenced data not found.
pub const SW_DATA_NOT_FOUND: u16 = 0x6A88;
/// Status word `6B00`: wrong parameters (offset outside the file).
pub const SW_WRONG_OFFSET: u16 = 0x6B00;
/// Status word `6D00`: instruction not supported.
pub const SW_INS_NOT_SUPPORTED: u16 = 0x6D00;
/// Status word `6E00`: class not supported.
pub const SW_CLA_NOT_SUPPORTED: u16 = 0x6E00;

/// A malformed APDU: the bytes do not follow ISO/IEC 7816-4 encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApduError {
    /// Fewer than the four header bytes of a command.
    #[error("command APDU of {0} bytes is shorter than its 4-byte header")]
    ShortCommand(usize),
    /// The length fields do not match the number of bytes.
    #[error("command APDU length fields do not match its {0} bytes")]
    BadLength(usize),
    /// A response without its 2-byte status word.
    #[error("response APDU of {0} bytes has no status word")]
    ShortResponse(usize),
    /// A data field or expected length beyond what ISO 7816-4 can encode.
    #[error("APDU field of {0} bytes cannot be encoded")]
    TooLong(usize),
}

/// A command APDU: header, optional data field, optional expected length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandApdu {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data field (empty when absent).
    pub data: Vec<u8>,
    /// Expected response length `Ne` (1..=65536), `None` when absent.
    pub le: Option<usize>,
    /// Encode with extended length fields even when short ones would do.
    pub force_extended: bool,
}

impl CommandApdu {
    /// A command with header only (ISO case 1).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        CommandApdu {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
            force_extended: false,
        }
    }

    /// Set the data field.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// Set the expected response length `Ne`.
    pub fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Whether this command needs (or was asked for) extended length fields.
    pub fn is_extended(&self) -> bool {
        self.force_extended
            || self.data.len() > SHORT_MAX_LC
            || self.le.is_some_and(|l| l > SHORT_MAX_LE)
    }

    /// Encode to bytes (short length fields where possible).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ApduError> {
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        let ext = self.is_extended();
        if self.data.len() > 65535 {
            return Err(ApduError::TooLong(self.data.len()));
        }
        if let Some(le) = self.le {
            if le == 0 || le > EXTENDED_MAX_LE {
                return Err(ApduError::TooLong(le));
            }
        }
        if !self.data.is_empty() {
            if ext {
                out.push(0);
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            } else {
                out.push(self.data.len() as u8);
            }
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            if ext {
                if self.data.is_empty() {
                    out.push(0);
                }
                out.extend_from_slice(&((le % EXTENDED_MAX_LE) as u16).to_be_bytes());
            } else {
                out.push((le % SHORT_MAX_LE) as u8);
            }
        }
        Ok(out)
    }

    /// Decode any of the seven ISO 7816-4 cases (1, 2S, 3S, 4S, 2E, 3E, 4E).
    pub fn parse(b: &[u8]) -> Result<Self, ApduError> {
        let (&[cla, ins, p1, p2], body) = b
            .split_first_chunk::<4>()
            .ok_or(ApduError::ShortCommand(b.len()))?;
        let mut cmd = CommandApdu::new(cla, ins, p1, p2);
        let bad = || ApduError::BadLength(b.len());
        match body {
            [] => {}
            [le] => cmd.le = Some(if *le == 0 { 256 } else { usize::from(*le) }),
            [0, hi, lo, rest @ ..] => {
                cmd.force_extended = true;
                let v = usize::from(u16::from_be_bytes([*hi, *lo]));
                if rest.is_empty() {
                    cmd.le = Some(if v == 0 { EXTENDED_MAX_LE } else { v });
                } else {
                    if v == 0 {
                        return Err(bad());
                    }
                    let data = rest.get(..v).ok_or_else(bad)?;
                    cmd.data = data.to_vec();
                    match rest.get(v..).ok_or_else(bad)? {
                        [] => {}
                        [a, c] => {
                            let le = usize::from(u16::from_be_bytes([*a, *c]));
                            cmd.le = Some(if le == 0 { EXTENDED_MAX_LE } else { le });
                        }
                        _ => return Err(bad()),
                    }
                }
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if lc == 0 {
                    return Err(bad());
                }
                cmd.data = rest.get(..lc).ok_or_else(bad)?.to_vec();
                match rest.get(lc..).ok_or_else(bad)? {
                    [] => {}
                    [le] => cmd.le = Some(if *le == 0 { 256 } else { usize::from(*le) }),
                    _ => return Err(bad()),
                }
            }
        }
        Ok(cmd)
    }
}

/// A response APDU: data field and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseApdu {
    /// Response data (may be empty).
    pub data: Vec<u8>,
    /// Status word SW1-SW2.
    pub sw: u16,
}

impl ResponseApdu {
    /// A response from data and status word.
    pub fn new(data: impl Into<Vec<u8>>, sw: u16) -> Self {
        ResponseApdu {
            data: data.into(),
            sw,
        }
    }

    /// Split raw response bytes into data and status word.
    pub fn parse(b: &[u8]) -> Result<Self, ApduError> {
        let (data, sw) = b
            .split_last_chunk::<2>()
            .ok_or(ApduError::ShortResponse(b.len()))?;
        Ok(ResponseApdu {
            data: data.to_vec(),
            sw: u16::from_be_bytes(*sw),
        })
    }

    /// Encode as data followed by the status word.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.data.clone();
        v.extend_from_slice(&self.sw.to_be_bytes());
        v
    }

    /// `9000`, or a warning `62xx`/`63xx` that still carries valid data.
    pub fn is_success(&self) -> bool {
        self.sw == SW_OK || self.sw == SW_END_OF_FILE
    }
}

/// Failure of one exchange at the transport/APDU layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The transport failed (no card, card removed, reader gone).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card answered bytes that are not a response APDU.
    #[error("malformed APDU: {0}")]
    Malformed(#[from] ApduError),
    /// The card kept asking for GET RESPONSE or wrong-length retries beyond any sane bound.
    #[error("card looped in GET RESPONSE / wrong-length retries")]
    Looping,
}

/// Counters of what went over the link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStats {
    /// Command-response pairs exchanged.
    pub apdus: u64,
    /// Bytes received from the card (responses, including status words).
    pub bytes_in: u64,
    /// Bytes sent to the card (commands).
    pub bytes_out: u64,
}

/// Send raw command bytes and count them.
pub fn transmit_counted(
    t: &mut dyn CardTransport,
    stats: &mut LinkStats,
    cmd: &[u8],
) -> Result<Vec<u8>, TransportError> {
    stats.apdus += 1;
    stats.bytes_out += cmd.len() as u64;
    let r = t.transmit(cmd)?;
    stats.bytes_in += r.len() as u64;
    Ok(r)
}

/// Exchange raw command bytes, following `61xx` with GET RESPONSE and repeating on `6Cxx`
/// with the length the card asked for. Returns the reassembled response.
pub fn exchange_raw(
    t: &mut dyn CardTransport,
    stats: &mut LinkStats,
    cmd: &[u8],
) -> Result<ResponseApdu, ExchangeError> {
    let mut cmd = cmd.to_vec();
    let mut resp = ResponseApdu::parse(&transmit_counted(t, stats, &cmd)?)?;
    if resp.sw & 0xFF00 == 0x6C00 {
        // Wrong Le: repeat once with the exact length the card reported (short APDUs only).
        if let Ok(mut c) = CommandApdu::parse(&cmd) {
            if c.le.is_some() {
                let xx = usize::from((resp.sw & 0xFF) as u8);
                c.le = Some(if xx == 0 { SHORT_MAX_LE } else { xx });
                cmd = c.to_bytes()?;
                resp = ResponseApdu::parse(&transmit_counted(t, stats, &cmd)?)?;
            }
        }
    }
    let mut data = std::mem::take(&mut resp.data);
    let mut rounds = 0;
    while resp.sw & 0xFF00 == 0x6100 {
        rounds += 1;
        if rounds > 512 {
            return Err(ExchangeError::Looping);
        }
        let cla = cmd.first().copied().unwrap_or(0) & 0x03;
        let get = [cla, 0xC0, 0x00, 0x00, (resp.sw & 0xFF) as u8];
        resp = ResponseApdu::parse(&transmit_counted(t, stats, &get)?)?;
        data.append(&mut resp.data);
    }
    Ok(ResponseApdu::new(data, resp.sw))
}

/// Encode and exchange a command (see [`exchange_raw`]).
pub fn exchange(
    t: &mut dyn CardTransport,
    stats: &mut LinkStats,
    cmd: &CommandApdu,
) -> Result<ResponseApdu, ExchangeError> {
    exchange_raw(t, stats, &cmd.to_bytes()?)
}

/// Tag, value and total encoded length of one BER-TLV object at the start of `b`
/// (only what the access protocols need: 1–2 byte tags, definite lengths up to 3 bytes).
pub(crate) fn tlv_first(b: &[u8]) -> Option<(u32, &[u8], usize)> {
    let (tag, hl) = tlv_header(b)?;
    let (len, ll) = tlv_len(b.get(hl..)?)?;
    let start = hl + ll;
    let v = b.get(start..start.checked_add(len)?)?;
    Some((tag, v, start + len))
}

/// Tag and header length of a BER tag at the start of `b`.
fn tlv_header(b: &[u8]) -> Option<(u32, usize)> {
    let first = *b.first()?;
    if first & 0x1F != 0x1F {
        return Some((u32::from(first), 1));
    }
    let mut tag = u32::from(first);
    let mut i = 1;
    loop {
        let nb = *b.get(i)?;
        tag = (tag << 8) | u32::from(nb);
        i += 1;
        if nb & 0x80 == 0 {
            return Some((tag, i));
        }
        if i > 3 {
            return None;
        }
    }
}

/// Definite BER length at the start of `b`: (length, bytes used).
fn tlv_len(b: &[u8]) -> Option<(usize, usize)> {
    let first = *b.first()?;
    match first {
        0..=0x7F => Some((usize::from(first), 1)),
        0x81 => Some((usize::from(*b.get(1)?), 2)),
        0x82 => Some((usize::from(u16::from_be_bytes([*b.get(1)?, *b.get(2)?])), 3)),
        0x83 => Some((
            (usize::from(*b.get(1)?) << 16)
                | (usize::from(*b.get(2)?) << 8)
                | usize::from(*b.get(3)?),
            4,
        )),
        _ => None,
    }
}

/// Total length (header + value) of the TLV object whose first bytes are `b`, if the header
/// is complete.
pub(crate) fn tlv_total_len(b: &[u8]) -> Option<usize> {
    let (_, hl) = tlv_header(b)?;
    let (len, ll) = tlv_len(b.get(hl..)?)?;
    Some(hl + ll + len)
}

/// Split a sequence of concatenated TLV objects; `None` when any is malformed.
pub(crate) fn tlv_all(mut b: &[u8]) -> Option<Vec<(u32, &[u8])>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (t, v, n) = tlv_first(b)?;
        out.push((t, v));
        b = b.get(n..)?;
    }
    Some(out)
}

/// BER-encode a TLV with a 1- or 2-byte tag.
pub(crate) fn tlv_encode(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    if tag > 0xFF {
        out.extend_from_slice(&tag.to_be_bytes());
    } else {
        out.push(tag as u8);
    }
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xFF {
        out.extend_from_slice(&[0x81, n as u8]);
    } else if n <= 0xFFFF {
        out.push(0x82);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn encodes_all_cases() {
        let c = CommandApdu::new(0, 0xA4, 2, 0x0C).with_data(vec![1, 0x1E]);
        assert_eq!(c.to_bytes().unwrap(), h("00A4020C02011E"));
        let c = CommandApdu::new(0, 0xB0, 0, 0).with_le(256);
        assert_eq!(c.to_bytes().unwrap(), h("00B0000000"));
        let c = CommandApdu::new(0, 0xB0, 0, 0).with_le(1000);
        assert_eq!(c.to_bytes().unwrap(), h("00B000000003E8"));
        let c = CommandApdu::new(0, 0xB0, 0, 0).with_le(65536);
        assert_eq!(c.to_bytes().unwrap(), h("00B00000000000"));
        let c = CommandApdu::new(0, 0x86, 0, 0)
            .with_data(vec![0xAA; 300])
            .with_le(65536);
        let b = c.to_bytes().unwrap();
        assert_eq!(&b[4..7], &h("00012C")[..]);
        assert_eq!(&b[b.len() - 2..], &[0, 0]);
        assert_eq!(CommandApdu::parse(&b).unwrap().to_bytes().unwrap(), b);
    }

    #[test]
    fn parses_all_cases_and_rejects_bad_lengths() {
        for hex in [
            "00A4040C",
            "00B0000004",
            "00A4020C02011E",
            "0084000008",
            "0CB000000D9701048E08ED6705417E96BA5500",
            "00B000000003E8",
            "00A40400000007AABBCCDDEEFF00",
            "00A40400000007AABBCCDDEEFF000000",
        ] {
            let b = h(hex);
            let c = CommandApdu::parse(&b).unwrap();
            assert_eq!(c.to_bytes().unwrap(), b, "{hex}");
        }
        for bad in [
            "00A4",
            "00A4020C03011E",
            "00A4020C02011E0000",
            "00A40400000",
        ] {
            let b = hex::decode(bad).unwrap_or_default();
            assert!(CommandApdu::parse(&b).is_err(), "{bad}");
        }
    }

    /// A scripted card: checks each command and answers the next response.
    struct Script(std::collections::VecDeque<(Vec<u8>, Vec<u8>)>);

    impl CardTransport for Script {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            let (want, resp) = self.0.pop_front().ok_or(TransportError::CardRemoved)?;
            assert_eq!(hex::encode_upper(apdu), hex::encode_upper(want));
            Ok(resp)
        }
    }

    fn script(pairs: &[(&str, &str)]) -> Script {
        Script(pairs.iter().map(|(c, r)| (h(c), h(r))).collect())
    }

    #[test]
    fn get_response_chaining() {
        let mut t = script(&[
            ("00B0000000", "AABB6104"),
            ("00C0000004", "CCDDEEFF6102"),
            ("00C0000002", "11229000"),
        ]);
        let mut st = LinkStats::default();
        let r = exchange_raw(&mut t, &mut st, &h("00B0000000")).unwrap();
        assert_eq!(r, ResponseApdu::new(h("AABBCCDDEEFF1122"), 0x9000));
        assert_eq!(st.apdus, 3);
        assert_eq!(st.bytes_out, 15);
        assert_eq!(st.bytes_in, 4 + 6 + 4);
        assert!(t.0.is_empty());
    }

    #[test]
    fn wrong_length_retry() {
        let mut t = script(&[("00B0000000", "6C12"), ("00B0000012", "01029000")]);
        let mut st = LinkStats::default();
        let r = exchange_raw(&mut t, &mut st, &h("00B0000000")).unwrap();
        assert_eq!(r, ResponseApdu::new(h("0102"), 0x9000));
        // a case-3 command is never "corrected"
        let mut t = script(&[("00A4020C02011E", "6C00")]);
        let r = exchange_raw(&mut t, &mut st, &h("00A4020C02011E")).unwrap();
        assert_eq!(r.sw, 0x6C00);
        // a card that loses itself in 61xx forever is cut off
        struct Loop;
        impl CardTransport for Loop {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, TransportError> {
                Ok(vec![0x61, 0x01])
            }
        }
        assert!(matches!(
            exchange_raw(&mut Loop, &mut st, &h("00B0000000")),
            Err(ExchangeError::Looping)
        ));
        // removal mid-chain
        let mut t = script(&[("00B0000000", "AABB6104")]);
        assert!(matches!(
            exchange_raw(&mut t, &mut st, &h("00B0000000")),
            Err(ExchangeError::Transport(TransportError::CardRemoved))
        ));
    }

    #[test]
    fn tlv_helpers() {
        let b = h("8709019FF0EC34F9922651990290008E08AD55CC17140B2DED");
        let all = tlv_all(&b).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].0, 0x87);
        assert_eq!(all[1], (0x99, &[0x90u8, 0][..]));
        assert_eq!(tlv_total_len(&h("7F4982010000")), Some(0x100 + 5));
        assert!(tlv_all(&h("8709")).is_none());
        assert_eq!(tlv_encode(0x7F49, &[1, 2]), h("7F49020102"));
        assert_eq!(tlv_encode(0x87, &[0; 200])[..3], h("8781C8")[..]);
    }

    proptest::proptest! {
        /// Encoding then parsing gives back the same command (and the same bytes).
        #[test]
        fn encode_parse_round_trip(
            header in proptest::prelude::any::<[u8; 4]>(),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700),
            le in proptest::option::of(1usize..=65536),
            ext in proptest::prelude::any::<bool>(),
        ) {
            let mut c = CommandApdu::new(header[0], header[1], header[2], header[3]).with_data(data);
            c.le = le;
            c.force_extended = ext && (le.is_some() || !c.data.is_empty());
            let b = c.to_bytes().unwrap();
            let p = CommandApdu::parse(&b).unwrap();
            proptest::prop_assert_eq!(&p.data, &c.data);
            proptest::prop_assert_eq!(p.le, c.le);
            proptest::prop_assert_eq!(p.to_bytes().unwrap(), b);
        }
    }
}
