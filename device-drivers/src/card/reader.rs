//! The terminal-side read flow of an eMRTD: PACE when EF.CardAccess offers it, else BAC;
//! then the eMRTD application, EF.COM, the data groups and EF.SOD through secure messaging.
//! Returns the raw file bytes (parsing and passive authentication happen elsewhere).

use std::collections::BTreeMap;

use rand_core::CryptoRng;

use super::apdu::{
    exchange, tlv_encode, tlv_first, tlv_total_len, CommandApdu, LinkStats, ResponseApdu,
    EXTENDED_MAX_LE, SW_END_OF_FILE, SW_FILE_NOT_FOUND, SW_OK, SW_SECURITY_NOT_SATISFIED,
    SW_WRONG_LENGTH,
};
use super::bac::{self, AccessKey, BacInit};
use super::chip::{dg_fid, EMRTD_AID, FID_CARD_ACCESS, FID_COM, FID_SOD};
use super::crypto::CipherSuite;
use super::error::CardError;
use super::pace::{self, PaceCurve, PaceInit};
use super::sm::SecureChannel;
use super::transport::CardTransport;

/// Largest plain READ BINARY chunk that every chip accepts in a short APDU under secure
/// messaging (the protected answer then stays within 256 bytes).
pub const SAFE_CHUNK: usize = 223;

/// Largest file the reader accepts (a limit against chips that claim endless files).
pub const MAX_FILE_LEN: usize = 1 << 20;

/// How the read should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Data groups to read (those not listed in EF.COM are skipped); empty = all listed.
    pub data_groups: Vec<u8>,
    /// Try PACE when EF.CardAccess offers it (else go straight to BAC).
    pub prefer_pace: bool,
    /// Send tag 84 (parameter ID) in MSE:Set AT.
    pub mse_parameter_id: bool,
    /// Try extended-length READ BINARY first (falls back to [`SAFE_CHUNK`] when refused).
    pub extended_length: bool,
    /// Largest chunk for extended READ BINARY (halved while the chip refuses it).
    pub extended_chunk: usize,
    /// Chunk size for short READ BINARY (at most 231 under SM; [`SAFE_CHUNK`] by default).
    pub short_chunk: usize,
    /// Start each file with READ BINARY by short file identifier (saves the SELECT).
    pub short_file_identifiers: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            data_groups: Vec::new(),
            prefer_pace: true,
            mse_parameter_id: false,
            extended_length: true,
            extended_chunk: 32_768,
            short_chunk: SAFE_CHUNK,
            short_file_identifiers: true,
        }
    }
}

/// Which access control opened the chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessControl {
    /// Basic Access Control (3DES).
    Bac,
    /// PACE-ECDH-GM with this cipher suite on this curve.
    Pace {
        /// Session cipher.
        suite: CipherSuite,
        /// Domain parameters.
        curve: PaceCurve,
    },
}

impl AccessControl {
    /// `"PACE"` or `"BAC"` (the CLI contract's `access_control`).
    pub fn name(&self) -> &'static str {
        match self {
            AccessControl::Bac => "BAC",
            AccessControl::Pace { .. } => "PACE",
        }
    }
}

/// The files read from a chip, raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipRead {
    /// How the chip was opened.
    pub access_control: AccessControl,
    /// EF.CardAccess, when the chip has one.
    pub card_access: Option<Vec<u8>>,
    /// EF.COM.
    pub ef_com: Vec<u8>,
    /// Data groups read, by number.
    pub data_groups: BTreeMap<u8, Vec<u8>>,
    /// Data groups listed but refused by access rules (e.g. DG3 behind EAC): number, SW.
    pub refused: Vec<(u8, u16)>,
    /// EF.SOD, when present.
    pub ef_sod: Option<Vec<u8>>,
    /// What went over the link.
    pub stats: LinkStats,
}

/// A session with the chip: link, counters, and secure messaging once established.
struct Session<'t> {
    t: &'t mut dyn CardTransport,
    stats: LinkStats,
    sm: Option<SecureChannel>,
    extended: bool,
    extended_chunk: usize,
    short_chunk: usize,
    use_sfi: bool,
}

impl Session<'_> {
    fn send(&mut self, cmd: &CommandApdu) -> Result<ResponseApdu, CardError> {
        match &mut self.sm {
            None => Ok(exchange(self.t, &mut self.stats, cmd)?),
            Some(ch) => {
                let wrapped = ch.wrap_command(cmd)?;
                let raw = super::apdu::exchange_raw(self.t, &mut self.stats, &wrapped)?;
                ch.unwrap_response(&raw.to_bytes())
            }
        }
    }

    fn select_ef(&mut self, fid: u16) -> Result<u16, CardError> {
        let cmd = CommandApdu::new(0x00, 0xA4, 0x02, 0x0C).with_data(fid.to_be_bytes().to_vec());
        Ok(self.send(&cmd)?.sw)
    }

    fn read_chunk(
        &mut self,
        offset: usize,
        le: usize,
        sfi: Option<u8>,
    ) -> Result<ResponseApdu, CardError> {
        let [p1, p2] = match sfi {
            Some(sfi) => [0x80 | (sfi & 0x1F), 0],
            None if offset > 0x7FFF => return self.read_chunk_odd(offset, le),
            None => (offset as u16).to_be_bytes(),
        };
        let mut cmd = CommandApdu::new(0x00, 0xB0, p1, p2).with_le(le);
        cmd.force_extended = le > 256;
        self.send(&cmd)
    }

    /// READ BINARY with odd INS (`B1`) for offsets beyond 32767: the offset goes in DO'54',
    /// the data comes back in DO'53' (whose header counts against Le).
    fn read_chunk_odd(&mut self, offset: usize, le: usize) -> Result<ResponseApdu, CardError> {
        let off = u32::try_from(offset)
            .map_err(|_| CardError::ProtocolViolation(format!("offset {offset} too large")))?;
        let bytes = off.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(2);
        let data = tlv_encode(0x54, bytes.get(skip..).unwrap_or_default());
        // room for the DO'53' header, within the chunk limit in force
        let cap = if self.extended {
            self.extended_chunk
        } else {
            self.short_chunk
        };
        let le = (le + 4).min(cap.max(le));
        let mut cmd = CommandApdu::new(0x00, 0xB1, 0x00, 0x00)
            .with_data(data)
            .with_le(le);
        cmd.force_extended = le > 256;
        let r = self.send(&cmd)?;
        if r.data.is_empty() {
            return Ok(r);
        }
        match tlv_first(&r.data) {
            Some((0x53, v, n)) if n == r.data.len() => Ok(ResponseApdu::new(v.to_vec(), r.sw)),
            _ => Err(CardError::ProtocolViolation(
                "READ BINARY (odd INS) answer is not a DO'53'".into(),
            )),
        }
    }

    /// Read one chunk, falling back from extended to short reads when the chip refuses.
    fn read_some(
        &mut self,
        offset: usize,
        want: usize,
        sfi: Option<u8>,
    ) -> Result<Vec<u8>, CardError> {
        loop {
            let le = if self.extended {
                want.clamp(1, self.extended_chunk)
            } else {
                want.clamp(1, self.short_chunk)
            };
            let r = self.read_chunk(offset, le, sfi)?;
            match r.sw {
                SW_OK | SW_END_OF_FILE if !r.data.is_empty() => return Ok(r.data),
                SW_WRONG_LENGTH | 0x6D00 | 0x6E00 if le > self.short_chunk => {
                    // Too long for this chip: halve the extended chunk, then give up on
                    // extended length altogether.
                    if le / 2 > 256 {
                        self.extended_chunk = le / 2;
                    } else {
                        self.extended = false;
                    }
                }
                sw if sw & 0xFF00 == 0x6C00 && le > 1 => {
                    let xx = usize::from((sw & 0xFF) as u8);
                    if xx == 0 || xx >= le {
                        return Err(CardError::ProtocolViolation(format!(
                            "READ BINARY: chip asked for Le {xx} after Le {le}"
                        )));
                    }
                    self.extended = false;
                    self.short_chunk = self.short_chunk.min(xx);
                }
                sw => {
                    return Err(CardError::Status {
                        command: "READ BINARY",
                        sw,
                    })
                }
            }
        }
    }

    /// Read a whole TLV-structured EF: by short file identifier when the chip allows it
    /// (one APDU less), else SELECT then READ BINARY. `Ok(None)` when there is no such file.
    fn read_file(&mut self, fid: u16) -> Result<Option<Vec<u8>>, CardError> {
        let first_want = if self.extended {
            self.extended_chunk
        } else {
            self.short_chunk
        };
        let mut first = None;
        if self.use_sfi && fid & 0xFFE0 == 0x0100 {
            match self.read_some(0, first_want, Some((fid & 0x1F) as u8)) {
                Ok(b) => first = Some(b),
                Err(CardError::Status { sw, .. }) if sw == SW_FILE_NOT_FOUND => return Ok(None),
                Err(CardError::Status { sw, .. }) if sw == SW_SECURITY_NOT_SATISFIED => {
                    return Err(CardError::Status {
                        command: "READ BINARY",
                        sw,
                    })
                }
                // Any other refusal: this chip does not read by SFI; select instead.
                Err(CardError::Status { .. }) => self.use_sfi = false,
                Err(e) => return Err(e),
            }
        }
        let mut buf = match first {
            Some(b) => b,
            None => {
                match self.select_ef(fid)? {
                    SW_OK => {}
                    SW_FILE_NOT_FOUND => return Ok(None),
                    sw => {
                        return Err(CardError::Status {
                            command: "SELECT EF",
                            sw,
                        })
                    }
                }
                self.read_some(0, first_want, None)?
            }
        };
        let total = tlv_total_len(&buf).ok_or_else(|| {
            CardError::ProtocolViolation(format!("EF {fid:04X} does not start with a TLV header"))
        })?;
        if total > MAX_FILE_LEN {
            return Err(CardError::ProtocolViolation(format!(
                "EF {fid:04X} claims {total} bytes, more than any LDS file may hold"
            )));
        }
        buf.truncate(total);
        while buf.len() < total {
            let mut more = self.read_some(buf.len(), total - buf.len(), None)?;
            more.truncate(total - buf.len());
            buf.extend(more);
        }
        Ok(Some(buf))
    }
}

fn pace_flow<R: CryptoRng + ?Sized>(
    s: &mut Session<'_>,
    info: &pace::PaceInfo,
    key: &AccessKey,
    opts: &ReadOptions,
    rng: &mut R,
) -> Result<AccessControl, CardError> {
    let init = PaceInit::new(info, key)?;
    let ac = AccessControl::Pace {
        suite: init.suite(),
        curve: init.curve(),
    };
    let mut r = s.send(&init.set_at(opts.mse_parameter_id))?;
    if r.sw != SW_OK {
        // Chips differ on tag 84 (parameter ID): some require it, some refuse it.
        r = s.send(&init.set_at(!opts.mse_parameter_id))?;
    }
    if r.sw != SW_OK {
        return Err(CardError::Status {
            command: "MSE:Set AT",
            sw: r.sw,
        });
    }
    let r = s.send(&init.nonce_request())?;
    let step = init.received_nonce(&r, rng)?;
    let r = s.send(step.command())?;
    let step = step.mapped(&r, rng)?;
    let r = s.send(step.command())?;
    let step = step.agreed(&r)?;
    let r = s.send(step.command())?;
    s.sm = Some(step.finish(&r)?);
    Ok(ac)
}

fn select_application(s: &mut Session<'_>) -> Result<(), CardError> {
    let r = s.send(&CommandApdu::new(0x00, 0xA4, 0x04, 0x0C).with_data(EMRTD_AID.to_vec()))?;
    if r.sw != SW_OK {
        return Err(CardError::Status {
            command: "SELECT eMRTD application",
            sw: r.sw,
        });
    }
    Ok(())
}

fn bac_flow<R: CryptoRng + ?Sized>(
    s: &mut Session<'_>,
    key: &AccessKey,
    rng: &mut R,
) -> Result<AccessControl, CardError> {
    let AccessKey::Mrz(mrz) = key else {
        return Err(CardError::UnknownAlgorithm(
            "the chip offers no PACE, and a CAN cannot open a chip with BAC".into(),
        ));
    };
    select_application(s)?;
    let r = s.send(&bac::get_challenge())?;
    let step = BacInit::new(mrz).challenged(&r, rng)?;
    let r = s.send(step.external_authenticate())?;
    s.sm = Some(step.finish(&r)?);
    Ok(AccessControl::Bac)
}

/// Data-group numbers listed in EF.COM (tag list `5C`).
pub fn ef_com_data_groups(ef_com: &[u8]) -> Result<Vec<u8>, CardError> {
    let bad = || CardError::ProtocolViolation("EF.COM is malformed".into());
    let (tag, v, _) = tlv_first(ef_com).ok_or_else(bad)?;
    if tag != 0x60 {
        return Err(bad());
    }
    let list = super::apdu::tlv_all(v)
        .ok_or_else(bad)?
        .into_iter()
        .find(|(t, _)| *t == 0x5C)
        .map(|(_, v)| v)
        .ok_or_else(bad)?;
    let mut out = Vec::new();
    for t in list {
        let n = match t {
            0x61 => 1,
            0x75 => 2,
            0x63 => 3,
            0x76 => 4,
            0x65..=0x70 => t - 0x65 + 5,
            _ => return Err(bad()),
        };
        out.push(n);
    }
    Ok(out)
}

/// Open the chip with `key` and read EF.COM, the data groups and EF.SOD.
pub fn read_document<R: CryptoRng + ?Sized>(
    t: &mut dyn CardTransport,
    key: &AccessKey,
    opts: &ReadOptions,
    rng: &mut R,
) -> Result<ChipRead, CardError> {
    let mut s = Session {
        t,
        stats: LinkStats::default(),
        sm: None,
        extended: opts.extended_length,
        extended_chunk: opts.extended_chunk.clamp(257, EXTENDED_MAX_LE),
        short_chunk: opts.short_chunk.clamp(1, 231),
        use_sfi: opts.short_file_identifiers,
    };
    // EF.CardAccess in the master file, read without secure messaging.
    // A chip that refuses EF.CardAccess in any way simply has no PACE to offer.
    let card_access = match s.read_file(FID_CARD_ACCESS) {
        Ok(ca) => ca,
        Err(CardError::Status { .. }) => None,
        Err(e) => return Err(e),
    };
    let pace_info = match (&card_access, opts.prefer_pace) {
        (Some(ca), true) => pace::parse_card_access(ca)?
            .into_iter()
            .find(|i| i.supported().is_ok()),
        _ => None,
    };
    let access_control = match pace_info {
        Some(info) => match pace_flow(&mut s, &info, key, opts, rng) {
            Ok(ac) => {
                select_application(&mut s)?;
                ac
            }
            // The chip refused to start PACE at all (not a wrong key): BAC is the fallback.
            Err(CardError::Status {
                command: "MSE:Set AT",
                ..
            }) if matches!(key, AccessKey::Mrz(_)) => bac_flow(&mut s, key, rng)?,
            Err(e) => return Err(e),
        },
        None => bac_flow(&mut s, key, rng)?,
    };
    let ef_com = s.read_file(FID_COM)?.ok_or(CardError::Status {
        command: "SELECT EF.COM",
        sw: SW_FILE_NOT_FOUND,
    })?;
    let listed = ef_com_data_groups(&ef_com)?;
    let mut data_groups = BTreeMap::new();
    let mut refused = Vec::new();
    for n in listed {
        if !opts.data_groups.is_empty() && !opts.data_groups.contains(&n) {
            continue;
        }
        match s.read_file(dg_fid(n)) {
            Ok(Some(b)) => {
                data_groups.insert(n, b);
            }
            Ok(None) => refused.push((n, SW_FILE_NOT_FOUND)),
            Err(CardError::Status { sw, .. }) if sw == SW_SECURITY_NOT_SATISFIED => {
                refused.push((n, sw));
            }
            Err(e) => return Err(e),
        }
    }
    let ef_sod = s.read_file(FID_SOD)?;
    Ok(ChipRead {
        access_control,
        card_access,
        ef_com,
        data_groups,
        refused,
        ef_sod,
        stats: s.stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::bac::MrzKey;
    use crate::card::chip::{ChipConfig, Fault, LinkModel, VirtualChip};
    use crate::card::pace::PaceInfo;
    use rand10::rngs::StdRng;
    use rand10::SeedableRng;

    const EF_COM: &str = "60145F0104303130365F36063034303030305C026175";

    fn specimen_key() -> MrzKey {
        MrzKey::new("L898902C", "690806", "940623").unwrap()
    }

    fn dg1() -> Vec<u8> {
        let mrz = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\
                   L898902C<3UTO6908061F9406236ZE184226B<<<<<14";
        let mrz: String = mrz.split_whitespace().collect();
        assert_eq!(mrz.len(), 88);
        tlv_encode(0x61, &tlv_encode(0x5F1F, mrz.as_bytes()))
    }

    fn blob(tag: u16, n: usize, seed: u8) -> Vec<u8> {
        let v: Vec<u8> = (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        tlv_encode(tag, &v)
    }

    use crate::card::apdu::tlv_encode;

    fn chip(pace: Option<PaceInfo>, seed: u64) -> VirtualChip<StdRng> {
        let mut cfg = ChipConfig::new(specimen_key(), pace);
        cfg.can = Some("123456".into());
        let mut c = VirtualChip::new(cfg, StdRng::seed_from_u64(seed));
        c.set_file(FID_COM, hex::decode(EF_COM).unwrap());
        c.set_file(dg_fid(1), dg1());
        c.set_file(dg_fid(2), blob(0x75, 15_000, 2));
        c.set_file(FID_SOD, blob(0x77, 1_800, 9));
        c
    }

    fn check_files(r: &ChipRead) {
        assert_eq!(r.ef_com, hex::decode(EF_COM).unwrap());
        assert_eq!(r.data_groups.get(&1), Some(&dg1()));
        assert_eq!(r.data_groups.get(&2), Some(&blob(0x75, 15_000, 2)));
        assert_eq!(r.ef_sod, Some(blob(0x77, 1_800, 9)));
    }

    fn mrz() -> AccessKey {
        AccessKey::Mrz(specimen_key())
    }

    #[test]
    fn bac_read_through_secure_messaging() {
        let mut c = chip(None, 1);
        let mut rng = StdRng::seed_from_u64(100);
        let r = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
        assert_eq!(r.access_control, AccessControl::Bac);
        assert!(r.card_access.is_none());
        check_files(&r);
        assert_eq!(r.stats.apdus, c.apdu_count());
    }

    #[test]
    fn pace_read_on_every_curve() {
        let mut rng = StdRng::seed_from_u64(101);
        for (i, (curve, suite)) in [
            (PaceCurve::P256, CipherSuite::Aes128),
            (PaceCurve::BrainpoolP256r1, CipherSuite::Aes128),
            (PaceCurve::P384, CipherSuite::Aes256),
            (PaceCurve::BrainpoolP384r1, CipherSuite::Aes192),
            (PaceCurve::BrainpoolP256r1, CipherSuite::Tdes),
        ]
        .into_iter()
        .enumerate()
        {
            for key in [mrz(), AccessKey::can("123456").unwrap()] {
                let mut c = chip(Some(PaceInfo::ecdh_gm(suite, curve)), i as u64);
                let opts = ReadOptions {
                    mse_parameter_id: i % 2 == 0,
                    ..ReadOptions::default()
                };
                let r = read_document(&mut c, &key, &opts, &mut rng).unwrap();
                assert_eq!(r.access_control, AccessControl::Pace { suite, curve });
                check_files(&r);
            }
        }
    }

    #[test]
    fn wrong_keys_are_clean_typed_errors() {
        let mut rng = StdRng::seed_from_u64(102);
        let wrong = AccessKey::Mrz(MrzKey::new("L898902C", "690806", "940624").unwrap());
        let e = read_document(
            &mut chip(None, 3),
            &wrong,
            &ReadOptions::default(),
            &mut rng,
        );
        assert!(
            matches!(
                e,
                Err(CardError::WrongKey {
                    protocol: "BAC",
                    ..
                })
            ),
            "{e:?}"
        );
        let pace = Some(PaceInfo::ecdh_gm(
            CipherSuite::Aes128,
            PaceCurve::BrainpoolP256r1,
        ));
        let e = read_document(
            &mut chip(pace.clone(), 3),
            &wrong,
            &ReadOptions::default(),
            &mut rng,
        );
        assert!(
            matches!(
                e,
                Err(CardError::WrongKey {
                    protocol: "PACE",
                    ..
                })
            ),
            "{e:?}"
        );
        let can = AccessKey::can("999999").unwrap();
        let e = read_document(&mut chip(pace, 3), &can, &ReadOptions::default(), &mut rng);
        assert!(
            matches!(
                e,
                Err(CardError::WrongKey {
                    protocol: "PACE",
                    ..
                })
            ),
            "{e:?}"
        );
        let e = read_document(&mut chip(None, 3), &can, &ReadOptions::default(), &mut rng);
        assert!(matches!(e, Err(CardError::UnknownAlgorithm(_))), "{e:?}");
    }

    #[test]
    fn card_pulled_at_any_apdu_is_a_clean_error() {
        let mut rng = StdRng::seed_from_u64(103);
        for pace in [
            None,
            Some(PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256)),
        ] {
            let total = {
                let mut c = chip(pace.clone(), 4);
                read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
                c.apdu_count()
            };
            assert!(total >= 8);
            for k in 1..=total {
                let mut c = chip(pace.clone(), 4);
                c.inject(Fault::PulledAt(k));
                let e = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng);
                assert_eq!(e, Err(CardError::CardRemoved), "pulled at {k}");
            }
        }
    }

    #[test]
    fn wrong_mac_and_corruption_are_detected() {
        let mut rng = StdRng::seed_from_u64(104);
        for pace in [
            None,
            Some(PaceInfo::ecdh_gm(CipherSuite::Aes256, PaceCurve::P256)),
        ] {
            let total = {
                let mut c = chip(pace.clone(), 5);
                read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
                c.apdu_count()
            };
            // the last few APDUs are all under secure messaging
            for k in total - 3..=total {
                let mut c = chip(pace.clone(), 5);
                c.inject(Fault::WrongMacAt(k));
                let e = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng);
                assert!(
                    matches!(e, Err(CardError::BadMac(_))),
                    "wrong MAC at {k}: {e:?}"
                );
                let mut c = chip(pace.clone(), 5);
                c.inject(Fault::CorruptResponseAt(k));
                let e = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng);
                assert!(
                    matches!(
                        e,
                        Err(CardError::BadMac(_) | CardError::ProtocolViolation(_))
                    ),
                    "corrupt at {k}: {e:?}"
                );
            }
            // every single corrupted answer makes the read fail; none passes silently
            for k in 1..=total {
                let mut c = chip(pace.clone(), 5);
                c.inject(Fault::CorruptResponseAt(k));
                let r = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng);
                if let Ok(r) = r {
                    // a flipped bit in plain EF.CardAccess/challenge must still not yield
                    // different files
                    check_files(&r);
                }
            }
        }
    }

    #[test]
    fn short_length_chip_and_fallback_from_extended() {
        let mut rng = StdRng::seed_from_u64(105);
        let pace = Some(PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256));
        let mut ext = chip(pace.clone(), 6);
        let r_ext = read_document(&mut ext, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
        let mut short_cfg = ChipConfig::new(specimen_key(), pace);
        short_cfg.extended_length = false;
        short_cfg.link = LinkModel {
            max_apdu_size: 261,
            ..LinkModel::default()
        };
        let mut short = VirtualChip::new(short_cfg, StdRng::seed_from_u64(6));
        short.set_file(FID_COM, hex::decode(EF_COM).unwrap());
        short.set_file(dg_fid(1), dg1());
        short.set_file(dg_fid(2), blob(0x75, 15_000, 2));
        short.set_file(FID_SOD, blob(0x77, 1_800, 9));
        let r_short = read_document(&mut short, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
        check_files(&r_short);
        // 15 000 + 1 800 bytes in 223-byte chunks vs one chunk per file
        assert!(r_short.stats.apdus >= r_ext.stats.apdus + (15_000 + 1_800) / 223 - 2);
        assert!(ext.link_time_us() < short.link_time_us());
    }

    #[test]
    fn protected_data_group_is_reported_not_fatal() {
        let mut rng = StdRng::seed_from_u64(106);
        let mut cfg = ChipConfig::new(specimen_key(), None);
        cfg.protected_dgs = vec![3];
        let mut c = VirtualChip::new(cfg, StdRng::seed_from_u64(7));
        c.set_file(FID_COM, hex::decode("600B5F0104303130365C026163").unwrap());
        c.set_file(dg_fid(1), dg1());
        c.set_file(dg_fid(3), blob(0x63, 500, 3));
        let r = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
        assert_eq!(r.refused, vec![(3, SW_SECURITY_NOT_SATISFIED)]);
        assert_eq!(r.ef_sod, None);
        assert_eq!(r.data_groups.len(), 1);
    }

    #[test]
    fn chip_without_sfi_support_is_read_by_select() {
        let mut rng = StdRng::seed_from_u64(107);
        for pace in [
            None,
            Some(PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256)),
        ] {
            let mut c = chip(pace.clone(), 8);
            let with_sfi =
                read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
            let mut cfg = ChipConfig::new(specimen_key(), pace);
            cfg.short_file_ids = false;
            let mut c = VirtualChip::new(cfg, StdRng::seed_from_u64(8));
            c.set_file(FID_COM, hex::decode(EF_COM).unwrap());
            c.set_file(dg_fid(1), dg1());
            c.set_file(dg_fid(2), blob(0x75, 15_000, 2));
            c.set_file(FID_SOD, blob(0x77, 1_800, 9));
            let r = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
            check_files(&r);
            // one refused SFI read, then SELECT + READ for every file
            assert!(r.stats.apdus > with_sfi.stats.apdus);
        }
    }

    /// Link-model figures for DG1 + DG2 (15 kB) + EF.SOD under 424 kbit/s and 5 ms per APDU:
    /// virtual link time against the lower bound (file bytes at the bit rate plus the round
    /// trips no reader can avoid: EF.CardAccess, MSE:Set AT, 4 × GENERAL AUTHENTICATE,
    /// SELECT application, one read per file). Pure numbers from the link model, no clock.
    #[test]
    fn link_time_against_lower_bound() {
        let mut rng = StdRng::seed_from_u64(108);
        let pace = Some(PaceInfo::ecdh_gm(
            CipherSuite::Aes128,
            PaceCurve::BrainpoolP256r1,
        ));
        let link = LinkModel::default();
        let files = [
            hex::decode(EF_COM).unwrap(),
            dg1(),
            blob(0x75, 15_000, 2),
            blob(0x77, 1_800, 9),
        ];
        let file_bytes: usize = files.iter().map(Vec::len).sum();
        let unavoidable = 1 + 1 + 4 + 1 + files.len() as u64;
        let bound_us = unavoidable * link.per_apdu_latency_us
            + (file_bytes as u64) * 8 * 1_000_000 / link.bit_rate_bps;
        let mut figures = Vec::new();
        for extended in [true, false] {
            let mut c = chip(pace.clone(), 9);
            let opts = ReadOptions {
                extended_length: extended,
                ..ReadOptions::default()
            };
            let r = read_document(&mut c, &mrz(), &opts, &mut rng).unwrap();
            check_files(&r);
            let ratio = c.link_time_us() as f64 / bound_us as f64;
            eprintln!(
                "extended={extended}: apdus={} bytes_in={} bytes_out={} link={} ms bound={} ms ratio={ratio:.3}",
                r.stats.apdus,
                r.stats.bytes_in,
                r.stats.bytes_out,
                c.link_time_us() / 1000,
                bound_us / 1000
            );
            figures.push(ratio);
        }
        assert!(figures[0] <= 1.25, "extended-length ratio {}", figures[0]);
        assert!(figures[1] > figures[0]);
    }

    #[test]
    fn files_beyond_32k_are_read_with_odd_ins() {
        let mut rng = StdRng::seed_from_u64(109);
        for (extended, pace) in [
            (
                true,
                Some(PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256)),
            ),
            (false, None),
        ] {
            let mut c = chip(pace, 10);
            let big = blob(0x75, 70_000, 4);
            c.set_file(dg_fid(2), big.clone());
            let opts = ReadOptions {
                extended_length: extended,
                ..ReadOptions::default()
            };
            let r = read_document(&mut c, &mrz(), &opts, &mut rng).unwrap();
            assert_eq!(r.data_groups.get(&2), Some(&big));
        }
    }

    #[test]
    fn extended_chunk_shrinks_to_what_the_chip_takes() {
        let mut rng = StdRng::seed_from_u64(110);
        let pace = Some(PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256));
        let mut cfg = ChipConfig::new(specimen_key(), pace);
        cfg.link.max_apdu_size = 2_100;
        let mut c = VirtualChip::new(cfg, StdRng::seed_from_u64(11));
        c.set_file(FID_COM, hex::decode(EF_COM).unwrap());
        c.set_file(dg_fid(1), dg1());
        c.set_file(dg_fid(2), blob(0x75, 15_000, 2));
        c.set_file(FID_SOD, blob(0x77, 1_800, 9));
        let r = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
        check_files(&r);
        // 32768 → 16384 → ... → 2048 refused, 1024-byte chunks after that: far fewer APDUs
        // than 223-byte chunks (≈ 76)
        assert!(r.stats.apdus < 45, "{}", r.stats.apdus);
    }

    #[test]
    fn absurd_file_length_is_refused() {
        let mut rng = StdRng::seed_from_u64(111);
        let mut c = chip(None, 12);
        c.set_file(dg_fid(1), hex::decode("61837FFFFF5F1F").unwrap());
        let e = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng);
        assert!(matches!(e, Err(CardError::ProtocolViolation(_))), "{e:?}");
    }

    #[test]
    fn a_protected_data_group_is_refused_to_both_read_binary_forms() {
        let mut rng = StdRng::seed_from_u64(120);
        let mut cfg = ChipConfig::new(specimen_key(), None);
        cfg.protected_dgs = vec![3];
        let mut c = VirtualChip::new(cfg, StdRng::seed_from_u64(21));
        c.set_file(dg_fid(1), dg1());
        c.set_file(dg_fid(3), blob(0x63, 100, 3));
        let mut s = Session {
            t: &mut c,
            stats: LinkStats::default(),
            sm: None,
            extended: false,
            extended_chunk: 257,
            short_chunk: 200,
            use_sfi: false,
        };
        bac_flow(&mut s, &AccessKey::Mrz(specimen_key()), &mut rng).unwrap();
        for (dg, want) in [(1, SW_OK), (3, SW_SECURITY_NOT_SATISFIED)] {
            assert_eq!(s.select_ef(dg_fid(dg)).unwrap(), SW_OK, "DG{dg}");
            let even = CommandApdu::new(0x00, 0xB0, 0x00, 0x00).with_le(16);
            let odd = CommandApdu::new(0x00, 0xB1, 0x00, 0x00)
                .with_data(tlv_encode(0x54, &[0]))
                .with_le(20);
            assert_eq!(s.send(&even).unwrap().sw, want, "DG{dg} even INS");
            assert_eq!(s.send(&odd).unwrap().sw, want, "DG{dg} odd INS");
        }
    }

    #[test]
    fn chip_with_unprotected_errors() {
        let mut rng = StdRng::seed_from_u64(112);
        for pace in [
            None,
            Some(PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256)),
        ] {
            let mut cfg = ChipConfig::new(specimen_key(), pace);
            cfg.plain_errors = true;
            cfg.protected_dgs = vec![2];
            let mut c = VirtualChip::new(cfg, StdRng::seed_from_u64(13));
            c.set_file(FID_COM, hex::decode(EF_COM).unwrap());
            c.set_file(dg_fid(1), dg1());
            c.set_file(dg_fid(2), blob(0x75, 15_000, 2));
            // no EF.SOD: plain 6A82; DG2: plain 6982
            let r = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
            assert_eq!(r.data_groups.get(&1), Some(&dg1()));
            assert_eq!(r.refused, vec![(2, SW_SECURITY_NOT_SATISFIED)]);
            assert_eq!(r.ef_sod, None);
        }
    }

    #[test]
    fn mse_set_at_retries_with_or_without_parameter_id() {
        let mut rng = StdRng::seed_from_u64(113);
        let pace = Some(PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256));
        for (require, send) in [(Some(true), false), (Some(false), true), (None, false)] {
            let mut cfg = ChipConfig::new(specimen_key(), pace.clone());
            cfg.parameter_id_tag = require;
            let mut c = VirtualChip::new(cfg, StdRng::seed_from_u64(14));
            c.set_file(FID_COM, hex::decode(EF_COM).unwrap());
            c.set_file(dg_fid(1), dg1());
            let opts = ReadOptions {
                mse_parameter_id: send,
                ..ReadOptions::default()
            };
            let r = read_document(&mut c, &mrz(), &opts, &mut rng).unwrap();
            assert!(matches!(r.access_control, AccessControl::Pace { .. }));
            // EF.CardAccess, MSE (+1 retry when the first form is refused), 4 GA, SELECT,
            // EF.COM, DG1, DG2 (absent), EF.SOD (absent)
            let expected = if require.is_some() { 12 } else { 11 };
            assert_eq!(r.stats.apdus, expected, "{require:?}");
        }
    }

    #[test]
    fn pace_refused_at_mse_falls_back_to_bac() {
        let mut rng = StdRng::seed_from_u64(114);
        // EF.CardAccess offers PACE, but the chip does not implement MSE:Set AT
        let mut c = chip(None, 15);
        c.set_mf_file(
            FID_CARD_ACCESS,
            pace::build_card_access(&[PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256)]),
        );
        let r = read_document(&mut c, &mrz(), &ReadOptions::default(), &mut rng).unwrap();
        assert_eq!(r.access_control, AccessControl::Bac);
        assert!(r.card_access.is_some());
        check_files(&r);
        // a CAN cannot fall back to BAC
        let mut c = chip(None, 15);
        c.set_mf_file(
            FID_CARD_ACCESS,
            pace::build_card_access(&[PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256)]),
        );
        let e = read_document(
            &mut c,
            &AccessKey::can("123456").unwrap(),
            &ReadOptions::default(),
            &mut rng,
        );
        assert!(
            matches!(
                e,
                Err(CardError::Status {
                    command: "MSE:Set AT",
                    ..
                })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn ef_com_tag_list() {
        assert_eq!(
            ef_com_data_groups(&hex::decode(EF_COM).unwrap()).unwrap(),
            vec![1, 2]
        );
        assert!(ef_com_data_groups(&hex::decode("6003").unwrap()).is_err());
    }
}
