//! Secure messaging (ICAO Doc 9303 Part 11 §9.8): protecting command APDUs and verifying
//! and decrypting response APDUs with session keys from BAC or PACE, for 3DES and AES.
//!
//! The same [`SecureChannel`] type serves both ends: the terminal uses
//! [`SecureChannel::wrap_command`] / [`SecureChannel::unwrap_response`], the chip
//! [`SecureChannel::unwrap_command`] / [`SecureChannel::wrap_response`]. Both ends keep the
//! send sequence counter (SSC) in step: it is incremented before every command and every
//! response.

use super::apdu::{
    tlv_all, tlv_encode, CommandApdu, ResponseApdu, EXTENDED_MAX_LE, SHORT_MAX_LE,
    SW_SM_OBJECTS_INCORRECT, SW_SM_OBJECTS_MISSING,
};
use super::crypto::{self, CipherSuite};
use super::error::CardError;

/// Session keys and send sequence counter of an established secure channel.
#[derive(Clone)]
pub struct SecureChannel {
    suite: CipherSuite,
    k_enc: Vec<u8>,
    k_mac: Vec<u8>,
    ssc: Vec<u8>,
    accept_plain_errors: bool,
}

/// An error status word (SW1 `64`–`6F`, except the `61`/`62`/`63` warning classes and
/// `6Cxx`, which asks for a retry).
fn is_error_status(sw: u16) -> bool {
    matches!(sw >> 8, 0x64..=0x6B | 0x6D..=0x6F)
}

impl std::fmt::Debug for SecureChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureChannel")
            .field("suite", &self.suite)
            .field("ssc", &self.ssc)
            .finish_non_exhaustive()
    }
}

/// A chip's answer to a protected command, after verification and decryption.
pub type PlainResponse = ResponseApdu;

impl SecureChannel {
    /// A channel from session keys and the initial SSC (BAC: derived from the nonces; PACE:
    /// zero). The SSC is left-padded or cut to the cipher's block length.
    pub fn new(suite: CipherSuite, k_enc: Vec<u8>, k_mac: Vec<u8>, ssc: &[u8]) -> Self {
        let bl = suite.block_len();
        let mut s = vec![0u8; bl];
        let n = ssc.len().min(bl);
        if let (Some(dst), Some(src)) = (s.get_mut(bl - n..), ssc.get(ssc.len() - n..)) {
            dst.copy_from_slice(src);
        }
        SecureChannel {
            suite,
            k_enc,
            k_mac,
            ssc: s,
            accept_plain_errors: true,
        }
    }

    /// Whether unprotected error statuses (e.g. `6A82` without DO'8E') are passed on as
    /// unauthenticated refusals (default) or rejected as protocol violations (strict).
    pub fn set_accept_plain_errors(&mut self, accept: bool) {
        self.accept_plain_errors = accept;
    }

    /// Cipher suite of the channel.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// Current send sequence counter.
    pub fn ssc(&self) -> &[u8] {
        &self.ssc
    }

    fn increment(&mut self) {
        for b in self.ssc.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }

    fn iv(&self) -> Result<Vec<u8>, CardError> {
        Ok(match self.suite {
            CipherSuite::Tdes => vec![0u8; 8],
            _ => crypto::encrypt_block(self.suite, &self.k_enc, &self.ssc)?,
        })
    }

    fn mac(&self, parts: &[&[u8]]) -> Result<[u8; 8], CardError> {
        let mut m = self.ssc.clone();
        for p in parts {
            m.extend_from_slice(p);
        }
        Ok(crypto::mac_padded(self.suite, &self.k_mac, &m)?)
    }

    fn encrypt(&self, data: &[u8]) -> Result<Vec<u8>, CardError> {
        let padded = crypto::pad(data, self.suite.block_len());
        Ok(crypto::cbc_encrypt(
            self.suite,
            &self.k_enc,
            &self.iv()?,
            &padded,
        )?)
    }

    fn decrypt(&self, cryptogram: &[u8]) -> Result<Vec<u8>, CardError> {
        if cryptogram.is_empty() || !cryptogram.len().is_multiple_of(self.suite.block_len()) {
            return Err(CardError::ProtocolViolation(format!(
                "cryptogram of {} bytes is not whole blocks",
                cryptogram.len()
            )));
        }
        let plain = crypto::cbc_decrypt(self.suite, &self.k_enc, &self.iv()?, cryptogram)?;
        crypto::unpad(&plain)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| CardError::TamperedData("bad padding in decrypted data".into()))
    }

    fn padded_header(&self, cla: u8, ins: u8, p1: u8, p2: u8) -> Vec<u8> {
        crypto::pad(&[cla, ins, p1, p2], self.suite.block_len())
    }

    /// Terminal side: protect `cmd` (data into DO'87' or, for odd INS, DO'85'; Le into
    /// DO'97'; MAC into DO'8E'). Increments the SSC.
    pub fn wrap_command(&mut self, cmd: &CommandApdu) -> Result<Vec<u8>, CardError> {
        self.increment();
        let cla = cmd.cla | 0x0C;
        let mut dos = Vec::new();
        if !cmd.data.is_empty() {
            let enc = self.encrypt(&cmd.data)?;
            if cmd.ins & 1 == 1 {
                dos.extend(tlv_encode(0x85, &enc));
            } else {
                let mut v = Vec::with_capacity(enc.len() + 1);
                v.push(0x01);
                v.extend_from_slice(&enc);
                dos.extend(tlv_encode(0x87, &v));
            }
        }
        let extended = cmd.is_extended();
        if let Some(le) = cmd.le {
            if extended {
                dos.extend(tlv_encode(
                    0x97,
                    &((le % EXTENDED_MAX_LE) as u16).to_be_bytes(),
                ));
            } else {
                dos.extend(tlv_encode(0x97, &[(le % SHORT_MAX_LE) as u8]));
            }
        }
        let header = self.padded_header(cla, cmd.ins, cmd.p1, cmd.p2);
        let mac = self.mac(&[&header, &dos])?;
        dos.extend(tlv_encode(0x8E, &mac));
        let mut out = CommandApdu::new(cla, cmd.ins, cmd.p1, cmd.p2)
            .with_data(dos)
            .with_le(if extended {
                EXTENDED_MAX_LE
            } else {
                SHORT_MAX_LE
            });
        out.force_extended = extended;
        Ok(out.to_bytes()?)
    }

    /// Terminal side: verify and decrypt a protected response. Increments the SSC.
    ///
    /// A response that carries only a status word is not authenticated: `6987`/`6988` mean the
    /// chip rejected secure messaging; any other such status is reported as
    /// [`CardError::ProtocolViolation`] unless `allow_plain_errors` is set, in which case
    /// error statuses are returned unauthenticated (a success status never is).
    pub fn unwrap_response(&mut self, raw: &[u8]) -> Result<PlainResponse, CardError> {
        self.increment();
        let resp = ResponseApdu::parse(raw)?;
        if resp.data.is_empty() {
            return match resp.sw {
                SW_SM_OBJECTS_MISSING | SW_SM_OBJECTS_INCORRECT => {
                    Err(CardError::SecureMessagingRejected(resp.sw))
                }
                // Many chips answer errors such as 6A82 without secure messaging. An
                // unauthenticated error can only refuse, never supply data, so it is passed
                // on unless the channel is strict.
                sw if self.accept_plain_errors && is_error_status(sw) => {
                    Ok(ResponseApdu::new(Vec::new(), sw))
                }
                sw => Err(CardError::ProtocolViolation(format!(
                    "unprotected status {sw:04X} inside secure messaging"
                ))),
            };
        }
        let objs = tlv_all(&resp.data).ok_or_else(|| {
            CardError::ProtocolViolation("malformed secure-messaging data objects".into())
        })?;
        let mut data_do: Option<(u32, &[u8])> = None;
        let mut sw_do: Option<&[u8]> = None;
        let mut mac_do: Option<&[u8]> = None;
        let mut mac_input_end = 0usize;
        let mut pos = 0usize;
        for (tag, v) in &objs {
            let enc_len = super::apdu::tlv_first(resp.data.get(pos..).unwrap_or_default())
                .map(|(_, _, n)| n)
                .unwrap_or(0);
            match (*tag, mac_do.is_some()) {
                (0x87 | 0x85, false) if data_do.is_none() && sw_do.is_none() => {
                    data_do = Some((*tag, v))
                }
                (0x99, false) if sw_do.is_none() => sw_do = Some(v),
                (0x8E, false) => {
                    mac_do = Some(v);
                    mac_input_end = pos;
                }
                (t, _) => {
                    return Err(CardError::ProtocolViolation(format!(
                        "unexpected data object {t:02X} in protected response"
                    )))
                }
            }
            pos += enc_len;
        }
        let mac = mac_do.ok_or_else(|| {
            CardError::ProtocolViolation("protected response without DO'8E'".into())
        })?;
        let covered = resp.data.get(..mac_input_end).unwrap_or_default();
        let expect = self.mac(&[covered])?;
        if !crypto::ct_eq(&expect, mac) {
            return Err(CardError::BadMac("secure-messaging response MAC".into()));
        }
        let sw_bytes = sw_do.ok_or_else(|| {
            CardError::ProtocolViolation("protected response without DO'99'".into())
        })?;
        let sw = match sw_bytes {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => {
                return Err(CardError::ProtocolViolation(
                    "DO'99' is not two bytes".into(),
                ))
            }
        };
        if sw != resp.sw {
            return Err(CardError::ProtocolViolation(format!(
                "status {:04X} differs from protected status {sw:04X}",
                resp.sw
            )));
        }
        let data = match data_do {
            None => Vec::new(),
            Some((0x87, v)) => match v.split_first() {
                Some((0x01, c)) => self.decrypt(c)?,
                _ => {
                    return Err(CardError::ProtocolViolation(
                        "DO'87' without padding indicator 01".into(),
                    ))
                }
            },
            Some((_, v)) => self.decrypt(v)?,
        };
        Ok(ResponseApdu::new(data, sw))
    }

    /// Chip side: verify and decrypt a protected command. Increments the SSC. Errors mean
    /// the chip must answer `6987`/`6988` unprotected and end secure messaging.
    pub fn unwrap_command(&mut self, raw: &[u8]) -> Result<CommandApdu, u16> {
        self.increment();
        let cmd = CommandApdu::parse(raw).map_err(|_| SW_SM_OBJECTS_MISSING)?;
        if cmd.cla & 0x0C != 0x0C {
            return Err(SW_SM_OBJECTS_MISSING);
        }
        let objs = tlv_all(&cmd.data).ok_or(SW_SM_OBJECTS_INCORRECT)?;
        let mut data = None;
        let mut le = None;
        let mut mac = None;
        let mut covered = Vec::new();
        for (tag, v) in objs {
            if mac.is_some() {
                return Err(SW_SM_OBJECTS_INCORRECT);
            }
            match tag {
                0x87 | 0x85 if data.is_none() && le.is_none() => {
                    data = Some((tag, v));
                    covered.extend(tlv_encode(tag as u16, v));
                }
                0x97 if le.is_none() => {
                    le = Some(v);
                    covered.extend(tlv_encode(0x97, v));
                }
                0x8E => mac = Some(v),
                _ => return Err(SW_SM_OBJECTS_INCORRECT),
            }
        }
        let mac = mac.ok_or(SW_SM_OBJECTS_MISSING)?;
        let header = self.padded_header(cmd.cla, cmd.ins, cmd.p1, cmd.p2);
        let expect = self
            .mac(&[&header, &covered])
            .map_err(|_| SW_SM_OBJECTS_INCORRECT)?;
        if !crypto::ct_eq(&expect, mac) {
            return Err(SW_SM_OBJECTS_INCORRECT);
        }
        let mut plain = CommandApdu::new(cmd.cla & !0x0C, cmd.ins, cmd.p1, cmd.p2);
        if let Some((tag, v)) = data {
            let c = if tag == 0x87 {
                match v.split_first() {
                    Some((0x01, c)) => c,
                    _ => return Err(SW_SM_OBJECTS_INCORRECT),
                }
            } else {
                v
            };
            plain.data = self.decrypt(c).map_err(|_| SW_SM_OBJECTS_INCORRECT)?;
        }
        plain.le = match le {
            None => None,
            Some([0]) => Some(SHORT_MAX_LE),
            Some([n]) => Some(usize::from(*n)),
            Some([0, 0]) => Some(EXTENDED_MAX_LE),
            Some([a, b]) => Some(usize::from(u16::from_be_bytes([*a, *b]))),
            Some(_) => return Err(SW_SM_OBJECTS_INCORRECT),
        };
        plain.force_extended = plain.le.is_some_and(|l| l > SHORT_MAX_LE) || cmd.force_extended;
        Ok(plain)
    }

    /// Chip side: count a response sent without protection (an unprotected error status),
    /// as the terminal does when it receives one.
    pub fn count_unprotected_response(&mut self) {
        self.increment();
    }

    /// Chip side: protect a response (data into DO'87', status into DO'99', MAC into
    /// DO'8E'). Increments the SSC.
    pub fn wrap_response(&mut self, data: &[u8], sw: u16) -> Result<Vec<u8>, CardError> {
        self.increment();
        let mut out = Vec::new();
        if !data.is_empty() {
            let mut v = vec![0x01];
            v.extend(self.encrypt(data)?);
            out.extend(tlv_encode(0x87, &v));
        }
        out.extend(tlv_encode(0x99, &sw.to_be_bytes()));
        let mac = self.mac(&[&out])?;
        out.extend(tlv_encode(0x8E, &mac));
        out.extend_from_slice(&sw.to_be_bytes());
        Ok(out)
    }

    /// Size of the protected response for `n` plain data bytes (to respect APDU limits).
    pub fn protected_response_len(&self, n: usize) -> usize {
        let bl = self.suite.block_len();
        let body = if n == 0 {
            0
        } else {
            let c = (n / bl + 1) * bl + 1;
            c + if c < 0x80 {
                2
            } else if c <= 0xFF {
                3
            } else {
                4
            }
        };
        body + 4 + 10 + 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn d4_channel() -> SecureChannel {
        SecureChannel::new(
            CipherSuite::Tdes,
            h("979EC13B1CBFE9DCD01AB0FED307EAE5"),
            h("F1CB1F1FB5ADF208806B89DC579DC1F8"),
            &h("887022120C06C226"),
        )
    }

    /// (plain command, protected command, protected response, plain data)
    const D4: [(&str, &str, &str, &str); 3] = [
        (
            "00A4020C02011E",
            "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800",
            "990290008E08FA855A5D4C50A8ED9000",
            "",
        ),
        (
            "00B0000004",
            "0CB000000D9701048E08ED6705417E96BA5500",
            "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000",
            "60145F01",
        ),
        (
            "00B0000412",
            "0CB000040D9701128E082EA28A70F3C7B53500",
            "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000",
            "04303130365F36063034303030305C026175",
        ),
    ];

    #[test]
    fn icao_d4_terminal_side() {
        let mut ch = d4_channel();
        for (plain, prot, resp, data) in D4 {
            let cmd = CommandApdu::parse(&h(plain)).unwrap();
            assert_eq!(ch.wrap_command(&cmd).unwrap(), h(prot), "{plain}");
            let r = ch.unwrap_response(&h(resp)).unwrap();
            assert_eq!(r.sw, 0x9000);
            assert_eq!(r.data, h(data));
        }
        assert_eq!(ch.ssc(), &h("887022120C06C22C")[..]);
    }

    #[test]
    fn icao_d4_chip_side() {
        let mut ch = d4_channel();
        for (plain, prot, resp, data) in D4 {
            let cmd = ch.unwrap_command(&h(prot)).unwrap();
            assert_eq!(cmd, CommandApdu::parse(&h(plain)).unwrap());
            assert_eq!(ch.wrap_response(&h(data), 0x9000).unwrap(), h(resp));
        }
    }

    #[test]
    fn rejects_tampering() {
        let (_, _, resp, _) = D4[1];
        // flipped ciphertext bit: MAC fails
        let mut ch = d4_channel();
        for _ in 0..3 {
            ch.increment();
        }
        // untouched, it verifies
        assert!(ch.clone().unwrap_response(&h(resp)).is_ok());
        let mut r = h(resp);
        r[4] ^= 1;
        assert!(matches!(ch.unwrap_response(&r), Err(CardError::BadMac(_))));
        // wrong SSC (a replayed response): MAC fails
        let mut ch = d4_channel();
        assert!(matches!(
            ch.unwrap_response(&h(resp)),
            Err(CardError::BadMac(_))
        ));
        // unprotected 9000 inside SM
        let mut ch = d4_channel();
        assert!(matches!(
            ch.unwrap_response(&h("9000")),
            Err(CardError::ProtocolViolation(_))
        ));
        // an unprotected error is passed on as a refusal, or rejected when strict
        let mut ch = d4_channel();
        assert_eq!(
            ch.unwrap_response(&h("6A82")),
            Ok(ResponseApdu::new(vec![], 0x6A82))
        );
        ch.set_accept_plain_errors(false);
        assert!(matches!(
            ch.unwrap_response(&h("6A82")),
            Err(CardError::ProtocolViolation(_))
        ));
        // unprotected warnings carry no authority either
        let mut ch = d4_channel();
        assert!(ch.unwrap_response(&h("6282")).is_err());
        // 6988: the chip dropped SM
        let mut ch = d4_channel();
        assert_eq!(
            ch.unwrap_response(&h("6988")),
            Err(CardError::SecureMessagingRejected(0x6988))
        );
        // missing MAC object
        let mut ch = d4_channel();
        assert!(matches!(
            ch.unwrap_response(&h("990290009000")),
            Err(CardError::ProtocolViolation(_))
        ));
        // outer status differs from the authenticated one
        let mut ch = d4_channel();
        for _ in 0..3 {
            ch.increment();
        }
        let mut r = h(resp);
        let n = r.len();
        r[n - 2] = 0x6A;
        r[n - 1] = 0x82;
        assert!(matches!(
            ch.unwrap_response(&r),
            Err(CardError::ProtocolViolation(_))
        ));
    }

    #[test]
    fn aes_round_trip_and_extended_length() {
        for suite in [
            CipherSuite::Aes128,
            CipherSuite::Aes192,
            CipherSuite::Aes256,
            CipherSuite::Tdes,
        ] {
            let ke: Vec<u8> = (0..suite.key_len() as u8).collect();
            let km: Vec<u8> = (100..100 + suite.key_len() as u8).collect();
            let mut term = SecureChannel::new(suite, ke.clone(), km.clone(), &[0]);
            let mut chip = SecureChannel::new(suite, ke, km, &[0]);
            for (data, le) in [
                (vec![], Some(4usize)),
                (vec![1u8, 2, 3], None),
                (vec![9u8; 300], Some(1000)),
                (vec![], Some(65536)),
            ] {
                let mut cmd = CommandApdu::new(0x00, 0xB0, 0x01, 0x02).with_data(data);
                cmd.le = le;
                let wire = term.wrap_command(&cmd).unwrap();
                let got = chip.unwrap_command(&wire).unwrap();
                assert_eq!(got.data, cmd.data);
                assert_eq!(got.le, cmd.le);
                let payload = vec![0x5Au8; le.unwrap_or(0).min(2000)];
                let resp = chip.wrap_response(&payload, 0x9000).unwrap();
                assert_eq!(resp.len(), chip.protected_response_len(payload.len()));
                let r = term.unwrap_response(&resp).unwrap();
                assert_eq!(r.data, payload);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the terminal protects, the chip recovers exactly; and the chip's
        /// protected answer unwraps to the same data and status at the terminal.
        #[test]
        fn protect_unprotect_round_trip(
            suite in 0usize..4,
            ins in proptest::prelude::any::<u8>(),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            le in proptest::option::of(1usize..=65536),
            answer in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            sw in proptest::prelude::any::<u16>(),
        ) {
            let suite = [CipherSuite::Tdes, CipherSuite::Aes128, CipherSuite::Aes192, CipherSuite::Aes256][suite];
            let ke = vec![0x31; suite.key_len()];
            let km = vec![0x52; suite.key_len()];
            let mut term = SecureChannel::new(suite, ke.clone(), km.clone(), &[7]);
            let mut chip = SecureChannel::new(suite, ke, km, &[7]);
            let mut cmd = CommandApdu::new(0x00, ins, 0x12, 0x34).with_data(data);
            cmd.le = le;
            let wire = term.wrap_command(&cmd).unwrap();
            let got = chip.unwrap_command(&wire).unwrap();
            proptest::prop_assert_eq!(&got.data, &cmd.data);
            proptest::prop_assert_eq!(got.le, cmd.le);
            proptest::prop_assert_eq!((got.ins, got.p1, got.p2), (ins, 0x12, 0x34));
            let sw = sw | 0x6000; // a real status word (SW1 6x or 9x)
            let resp = chip.wrap_response(&answer, sw).unwrap();
            let r = term.unwrap_response(&resp).unwrap();
            proptest::prop_assert_eq!(r.data, answer);
            proptest::prop_assert_eq!(r.sw, sw);
        }

        /// Arbitrary bytes never panic either side.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let mut ch = d4_channel();
            let _ = ch.unwrap_response(&bytes);
            let _ = ch.unwrap_command(&bytes);
            let _ = CommandApdu::parse(&bytes);
        }
    }
}
