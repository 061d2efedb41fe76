//! A virtual eMRTD chip (card side): answers SELECT, READ BINARY, GET CHALLENGE,
//! EXTERNAL AUTHENTICATE (BAC), MSE:Set AT and GENERAL AUTHENTICATE (PACE-ECDH-GM) and
//! speaks secure messaging, over files held as a map `FID → bytes`. It carries a link model
//! (latency, bit rate, APDU size limit; pure numbers, it never sleeps) and fault injection.

use std::collections::BTreeMap;

use rand_core::CryptoRng;

use super::apdu::{
    CommandApdu, ResponseApdu, SW_AUTH_FAILED, SW_CONDITIONS_NOT_SATISFIED, SW_DATA_NOT_FOUND,
    SW_END_OF_FILE, SW_FILE_NOT_FOUND, SW_INS_NOT_SUPPORTED, SW_OK, SW_SECURITY_NOT_SATISFIED,
    SW_SM_OBJECTS_MISSING, SW_WRONG_DATA, SW_WRONG_LENGTH, SW_WRONG_OFFSET, SW_WRONG_P1P2,
};
use super::bac::{self, AccessKey, MrzKey};
use super::pace::{self, ChipPace, ChipPaceAnswer, PaceInfo};
use super::sm::SecureChannel;
use super::transport::{CardTransport, TransportError};

/// Application identifier of the eMRTD LDS1 application.
pub const EMRTD_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];
/// File identifier of EF.CardAccess (in the master file).
pub const FID_CARD_ACCESS: u16 = 0x011C;
/// File identifier of EF.COM.
pub const FID_COM: u16 = 0x011E;
/// File identifier of EF.SOD.
pub const FID_SOD: u16 = 0x011D;

/// File identifier of data group `n` (1..=16).
pub fn dg_fid(n: u8) -> u16 {
    0x0100 | u16::from(n)
}

/// The contactless link between reader and chip, as numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkModel {
    /// Fixed cost of one command-response exchange, microseconds.
    pub per_apdu_latency_us: u64,
    /// Bit rate of the link, bits per second.
    pub bit_rate_bps: u64,
    /// Largest command or response APDU (bytes, including header and status word).
    pub max_apdu_size: usize,
}

impl Default for LinkModel {
    /// 424 kbit/s, 5 ms per APDU, extended length up to 64 KiB.
    fn default() -> Self {
        LinkModel {
            per_apdu_latency_us: 5_000,
            bit_rate_bps: 424_000,
            max_apdu_size: 65_544,
        }
    }
}

impl LinkModel {
    /// Time for one exchange of `out_bytes` to the chip and `in_bytes` back, microseconds.
    pub fn exchange_us(&self, out_bytes: usize, in_bytes: usize) -> u64 {
        let bits = ((out_bytes + in_bytes) as u64) * 8;
        self.per_apdu_latency_us + bits * 1_000_000 / self.bit_rate_bps.max(1)
    }
}

/// A fault to inject at a given APDU (counted from 1 since the chip was powered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The card leaves the field when APDU `k` arrives: no answer, then no card.
    PulledAt(u64),
    /// One bit of the answer to APDU `k` is flipped.
    CorruptResponseAt(u64),
    /// The secure-messaging MAC of the answer to APDU `k` is wrong.
    WrongMacAt(u64),
}

/// What a virtual chip offers and how it behaves.
#[derive(Debug, Clone)]
pub struct ChipConfig {
    /// The MRZ information the chip's BAC/PACE MRZ password is derived from.
    pub mrz_key: MrzKey,
    /// The card access number, if the chip has one (PACE CAN password).
    pub can: Option<String>,
    /// The PACE protocol in EF.CardAccess; `None` = a BAC-only chip without EF.CardAccess.
    pub pace: Option<PaceInfo>,
    /// Whether BAC is accepted (`false` = PACE-only chip: EXTERNAL AUTHENTICATE → `6A88`).
    pub bac: bool,
    /// Whether extended-length APDUs are accepted.
    pub extended_length: bool,
    /// Quirk: answer `6700` to MSE:Set AT or SELECT that carry an Le.
    pub reject_le_on_mse_and_select: bool,
    /// Quirk on MSE:Set AT tag 84 (parameter ID): `Some(true)` requires it, `Some(false)`
    /// refuses it, `None` takes either.
    pub parameter_id_tag: Option<bool>,
    /// Quirk: answer errors under secure messaging unprotected (bare status word).
    pub plain_errors: bool,
    /// Whether READ BINARY by short file identifier (P1 = `80 | SFI`) is accepted.
    pub short_file_ids: bool,
    /// Data groups readable only after terminal authentication (answer `6982`), e.g. DG3.
    pub protected_dgs: Vec<u8>,
    /// The link model.
    pub link: LinkModel,
}

impl ChipConfig {
    /// A chip for `mrz_key` with PACE `pace` (or BAC only when `None`), extended length,
    /// the default link model and no quirks.
    pub fn new(mrz_key: MrzKey, pace: Option<PaceInfo>) -> Self {
        ChipConfig {
            mrz_key,
            can: None,
            pace,
            bac: true,
            extended_length: true,
            reject_le_on_mse_and_select: true,
            short_file_ids: true,
            plain_errors: false,
            parameter_id_tag: None,
            protected_dgs: Vec::new(),
            link: LinkModel::default(),
        }
    }
}

enum Auth {
    None,
    BacChallenged([u8; 8]),
    Pace(Box<ChipPace>),
    Secure(Box<SecureChannel>),
}

/// The virtual chip. Implements [`CardTransport`], so a terminal can talk to it in-process.
pub struct VirtualChip<R> {
    config: ChipConfig,
    rng: R,
    mf_files: BTreeMap<u16, Vec<u8>>,
    app_files: BTreeMap<u16, Vec<u8>>,
    app_selected: bool,
    current_ef: Option<u16>,
    auth: Auth,
    faults: Vec<Fault>,
    apdus: u64,
    removed: bool,
    link_time_us: u64,
}

impl<R: CryptoRng> VirtualChip<R> {
    /// A powered chip with no LDS files yet (EF.CardAccess is built from the config).
    pub fn new(config: ChipConfig, rng: R) -> Self {
        let mut mf_files = BTreeMap::new();
        if let Some(p) = &config.pace {
            mf_files.insert(
                FID_CARD_ACCESS,
                pace::build_card_access(std::slice::from_ref(p)),
            );
        }
        VirtualChip {
            config,
            rng,
            mf_files,
            app_files: BTreeMap::new(),
            app_selected: false,
            current_ef: None,
            auth: Auth::None,
            faults: Vec::new(),
            apdus: 0,
            removed: false,
            link_time_us: 0,
        }
    }

    /// Gives the chip a card access number (PACE-CAN), or takes it away.
    pub fn set_can(&mut self, can: Option<String>) {
        self.config.can = can;
    }

    /// Put an elementary file into the eMRTD application (EF.COM, DGs, EF.SOD).
    pub fn set_file(&mut self, fid: u16, bytes: Vec<u8>) {
        self.app_files.insert(fid, bytes);
    }

    /// Put an elementary file into the master file (EF.CardAccess, EF.ATR/INFO).
    pub fn set_mf_file(&mut self, fid: u16, bytes: Vec<u8>) {
        self.mf_files.insert(fid, bytes);
    }

    /// Schedule a fault.
    pub fn inject(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// APDUs received since power-on.
    pub fn apdu_count(&self) -> u64 {
        self.apdus
    }

    /// Link time accumulated under the link model, microseconds.
    pub fn link_time_us(&self) -> u64 {
        self.link_time_us
    }

    /// Put the card back into the field: power-on reset, session state cleared.
    pub fn reinsert(&mut self) {
        self.removed = false;
        self.reset();
    }

    /// Warm reset: selection and security state cleared (files and faults kept).
    pub fn reset(&mut self) {
        self.app_selected = false;
        self.current_ef = None;
        self.auth = Auth::None;
        self.apdus = 0;
    }

    /// Answer one command APDU (raw bytes in, raw bytes out).
    pub fn process(&mut self, raw: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.removed {
            return Err(TransportError::CardRemoved);
        }
        self.apdus += 1;
        let k = self.apdus;
        if self.faults.contains(&Fault::PulledAt(k)) {
            self.removed = true;
            return Err(TransportError::CardRemoved);
        }
        let mut resp = self.answer(raw, k);
        if self.faults.contains(&Fault::CorruptResponseAt(k)) {
            let i = resp.len().saturating_sub(2) / 2;
            if let Some(b) = resp.get_mut(i) {
                *b ^= 0x10;
            }
        }
        self.link_time_us += self.config.link.exchange_us(raw.len(), resp.len());
        Ok(resp)
    }

    fn answer(&mut self, raw: &[u8], k: u64) -> Vec<u8> {
        let plain_sw = |sw: u16| sw.to_be_bytes().to_vec();
        if raw.len() > self.config.link.max_apdu_size {
            return plain_sw(SW_WRONG_LENGTH);
        }
        let Ok(cmd) = CommandApdu::parse(raw) else {
            return plain_sw(SW_WRONG_LENGTH);
        };
        if cmd.force_extended && !self.config.extended_length {
            return plain_sw(SW_WRONG_LENGTH);
        }
        if cmd.cla & 0x0C == 0x0C {
            let Auth::Secure(ch) = &mut self.auth else {
                return plain_sw(SW_SM_OBJECTS_MISSING);
            };
            let inner = match ch.unwrap_command(raw) {
                Ok(c) => c,
                Err(sw) => {
                    self.auth = Auth::None;
                    return plain_sw(sw);
                }
            };
            let r = self.execute(&inner, true);
            let Auth::Secure(ch) = &mut self.auth else {
                return plain_sw(SW_SM_OBJECTS_MISSING);
            };
            let mut data = r.data;
            let mut sw = r.sw;
            // Responses beyond what the link carries are refused with "wrong length".
            let limit = if inner.force_extended {
                self.config.link.max_apdu_size
            } else {
                258
            };
            if ch.protected_response_len(data.len()) > limit {
                data.clear();
                sw = SW_WRONG_LENGTH;
            }
            if self.config.plain_errors && data.is_empty() && sw >> 8 >= 0x64 && sw >> 8 != 0x90 {
                // the terminal counts an unprotected answer too
                ch.count_unprotected_response();
                return plain_sw(sw);
            }
            let mut out = match ch.wrap_response(&data, sw) {
                Ok(o) => o,
                Err(_) => return plain_sw(0x6F00),
            };
            if self.faults.contains(&Fault::WrongMacAt(k)) {
                let n = out.len();
                if let Some(b) = out.get_mut(n.saturating_sub(3)) {
                    *b ^= 0x01;
                }
            }
            out
        } else {
            if matches!(self.auth, Auth::Secure(_)) {
                // A plain command ends secure messaging.
                self.auth = Auth::None;
                return plain_sw(SW_SM_OBJECTS_MISSING);
            }
            let mut r = self.execute(&cmd, false);
            let limit = if cmd.force_extended {
                self.config.link.max_apdu_size
            } else {
                258
            };
            if r.data.len() + 2 > limit {
                r = ResponseApdu::new(vec![], SW_WRONG_LENGTH);
            }
            r.to_bytes()
        }
    }

    fn execute(&mut self, cmd: &CommandApdu, secure: bool) -> ResponseApdu {
        let sw = |s: u16| ResponseApdu::new(vec![], s);
        match (cmd.cla & !0x10, cmd.ins) {
            (0x00, 0xA4) => self.select(cmd),
            (0x00, 0xB0) => self.read_binary(cmd, secure),
            (0x00, 0xB1) => self.read_binary_odd(cmd, secure),
            (0x00, 0x84) => {
                let n = cmd.le.unwrap_or(0);
                if n != 8 {
                    return sw(SW_WRONG_LENGTH);
                }
                let mut c = [0u8; 8];
                self.rng.fill_bytes(&mut c);
                self.auth = Auth::BacChallenged(c);
                ResponseApdu::new(c.to_vec(), SW_OK)
            }
            (0x00, 0x82) => {
                if !self.config.bac {
                    return sw(SW_DATA_NOT_FOUND);
                }
                let Auth::BacChallenged(rnd_ic) = std::mem::replace(&mut self.auth, Auth::None)
                else {
                    return sw(SW_CONDITIONS_NOT_SATISFIED);
                };
                let mut k_ic = [0u8; 16];
                self.rng.fill_bytes(&mut k_ic);
                match bac::chip_authenticate(&self.config.mrz_key, &rnd_ic, &k_ic, &cmd.data) {
                    Ok((data, ch)) => {
                        self.auth = Auth::Secure(Box::new(ch));
                        ResponseApdu::new(data, SW_OK)
                    }
                    Err(s) => sw(s),
                }
            }
            (0x00, 0x22) if cmd.p1 == 0xC1 && cmd.p2 == 0xA4 => self.mse_set_at(cmd),
            (0x00, 0x86) => {
                let Auth::Pace(p) = &mut self.auth else {
                    return sw(SW_CONDITIONS_NOT_SATISFIED);
                };
                match p.general_authenticate(&cmd.data, cmd.cla & 0x10 != 0, &mut self.rng) {
                    Ok(ChipPaceAnswer::Continue(d)) => ResponseApdu::new(d, SW_OK),
                    Ok(ChipPaceAnswer::Established(d, ch)) => {
                        self.auth = Auth::Secure(Box::new(ch));
                        ResponseApdu::new(d, SW_OK)
                    }
                    Err(s) => {
                        self.auth = Auth::None;
                        if s == SW_AUTH_FAILED {
                            sw(SW_AUTH_FAILED)
                        } else {
                            sw(s)
                        }
                    }
                }
            }
            (0x00, _) => sw(SW_INS_NOT_SUPPORTED),
            _ => sw(0x6E00),
        }
    }

    fn select(&mut self, cmd: &CommandApdu) -> ResponseApdu {
        let sw = |s: u16| ResponseApdu::new(vec![], s);
        if self.config.reject_le_on_mse_and_select && cmd.le.is_some() && cmd.p2 == 0x0C {
            return sw(SW_WRONG_LENGTH);
        }
        match cmd.p1 {
            0x04 => {
                if cmd.data == EMRTD_AID {
                    self.app_selected = true;
                    self.current_ef = None;
                    sw(SW_OK)
                } else {
                    sw(SW_FILE_NOT_FOUND)
                }
            }
            0x00 if cmd.data.is_empty() || cmd.data == [0x3F, 0x00] => {
                self.app_selected = false;
                self.current_ef = None;
                sw(SW_OK)
            }
            0x00 | 0x02 => {
                let [a, b] = cmd.data.as_slice() else {
                    return sw(SW_WRONG_DATA);
                };
                let fid = u16::from_be_bytes([*a, *b]);
                let exists = if self.app_selected {
                    self.app_files.contains_key(&fid)
                } else {
                    self.mf_files.contains_key(&fid)
                };
                if exists {
                    self.current_ef = Some(fid);
                    sw(SW_OK)
                } else {
                    sw(SW_FILE_NOT_FOUND)
                }
            }
            _ => sw(SW_WRONG_P1P2),
        }
    }

    /// The file `fid` of the selected application (only over secure messaging, and never
    /// a data group the chip protects) or of the master file, for both READ BINARY forms.
    fn readable(&self, fid: u16, secure: bool) -> Result<&Vec<u8>, u16> {
        let file = if self.app_selected {
            if !secure || self.config.protected_dgs.iter().any(|&n| dg_fid(n) == fid) {
                return Err(SW_SECURITY_NOT_SATISFIED);
            }
            self.app_files.get(&fid)
        } else {
            self.mf_files.get(&fid)
        };
        file.ok_or(SW_FILE_NOT_FOUND)
    }

    fn read_binary(&mut self, cmd: &CommandApdu, secure: bool) -> ResponseApdu {
        let sw = |s: u16| ResponseApdu::new(vec![], s);
        let (fid, offset) = if cmd.p1 & 0x80 != 0 {
            if !self.config.short_file_ids {
                return sw(SW_WRONG_P1P2);
            }
            let fid = 0x0100 | u16::from(cmd.p1 & 0x1F);
            let files = if self.app_selected {
                &self.app_files
            } else {
                &self.mf_files
            };
            if !files.contains_key(&fid) {
                return sw(SW_FILE_NOT_FOUND);
            }
            self.current_ef = Some(fid);
            (fid, usize::from(cmd.p2))
        } else {
            let Some(fid) = self.current_ef else {
                return sw(0x6986);
            };
            (
                fid,
                usize::from(u16::from_be_bytes([cmd.p1 & 0x7F, cmd.p2])),
            )
        };
        let file = match self.readable(fid, secure) {
            Ok(f) => f,
            Err(status) => return sw(status),
        };
        let Some(le) = cmd.le else {
            return sw(SW_WRONG_LENGTH);
        };
        if offset > file.len() {
            return sw(SW_WRONG_OFFSET);
        }
        let end = offset.saturating_add(le).min(file.len());
        let data = file.get(offset..end).unwrap_or_default().to_vec();
        let status = if data.len() < le {
            SW_END_OF_FILE
        } else {
            SW_OK
        };
        ResponseApdu::new(data, status)
    }

    /// READ BINARY with odd INS: current EF (P1-P2 = 0000), offset in DO'54', data in DO'53'.
    fn read_binary_odd(&mut self, cmd: &CommandApdu, secure: bool) -> ResponseApdu {
        let sw = |s: u16| ResponseApdu::new(vec![], s);
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return sw(SW_WRONG_P1P2);
        }
        let offset = match super::apdu::tlv_first(&cmd.data) {
            Some((0x54, v, n)) if n == cmd.data.len() && !v.is_empty() && v.len() <= 3 => {
                v.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
            }
            _ => return sw(SW_WRONG_DATA),
        };
        let Some(le) = cmd.le else {
            return sw(SW_WRONG_LENGTH);
        };
        // the DO'53' header (up to 4 bytes) counts against Le
        let hdr = if le < 0x80 + 2 {
            2
        } else if le <= 0xFF + 3 {
            3
        } else {
            4
        };
        let Some(want) = le.checked_sub(hdr).filter(|w| *w > 0) else {
            return sw(SW_WRONG_LENGTH);
        };
        let Some(fid) = self.current_ef else {
            return sw(0x6986);
        };
        let file = match self.readable(fid, secure) {
            Ok(f) => f,
            Err(status) => return sw(status),
        };
        if offset > file.len() {
            return sw(SW_WRONG_OFFSET);
        }
        let end = offset.saturating_add(want).min(file.len());
        let data = file.get(offset..end).unwrap_or_default();
        let status = if data.len() < want {
            SW_END_OF_FILE
        } else {
            SW_OK
        };
        ResponseApdu::new(super::apdu::tlv_encode(0x53, data), status)
    }

    fn mse_set_at(&mut self, cmd: &CommandApdu) -> ResponseApdu {
        let sw = |s: u16| ResponseApdu::new(vec![], s);
        if self.config.reject_le_on_mse_and_select && cmd.le.is_some() {
            return sw(SW_WRONG_LENGTH);
        }
        let Some(info) = self.config.pace.clone() else {
            return sw(SW_INS_NOT_SUPPORTED);
        };
        let Some(objs) = super::apdu::tlv_all(&cmd.data) else {
            return sw(SW_WRONG_DATA);
        };
        let get = |t: u32| objs.iter().find(|(tag, _)| *tag == t).map(|(_, v)| *v);
        if get(0x80) != Some(info.oid_bytes().as_slice()) {
            return sw(SW_WRONG_DATA);
        }
        match (self.config.parameter_id_tag, get(0x84).is_some()) {
            (Some(true), false) | (Some(false), true) => return sw(SW_WRONG_DATA),
            _ => {}
        }
        if let Some(p) = get(0x84) {
            if info.parameter_id.map(|x| vec![x as u8]) != Some(p.to_vec()) {
                return sw(SW_WRONG_DATA);
            }
        }
        let password = match get(0x83) {
            Some([1]) => AccessKey::Mrz(self.config.mrz_key.clone()),
            Some([2]) => match &self.config.can {
                Some(c) => AccessKey::Can(c.clone()),
                None => return sw(SW_DATA_NOT_FOUND),
            },
            _ => return sw(SW_DATA_NOT_FOUND),
        };
        match ChipPace::new(&info, &password) {
            Ok(p) => {
                self.auth = Auth::Pace(Box::new(p));
                sw(SW_OK)
            }
            Err(_) => sw(SW_WRONG_DATA),
        }
    }
}

impl<R: CryptoRng> CardTransport for VirtualChip<R> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.process(apdu)
    }
}
