//! Basic Access Control (ICAO Doc 9303 Part 11 §4.3): the MRZ-derived access key, the
//! terminal's steps `BacInit → BacChallenged → SecureChannel`, and the chip's answer.

use rand_core::CryptoRng;

use super::apdu::{CommandApdu, ResponseApdu, SW_AUTH_FAILED, SW_OK};
use super::crypto::{self, CipherSuite, KDF_ENC, KDF_MAC};
use super::error::CardError;
use super::mrz::{self, MrzError};
use super::sm::SecureChannel;

/// A malformed access key: the MRZ fields or CAN cannot form a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessKeyError {
    /// A field of the MRZ key is malformed (characters outside the MRZ alphabet, an
    /// empty document number, a date that is not `YYMMDD`).
    #[error(transparent)]
    Mrz(#[from] MrzError),
    /// A CAN is not 6 digits.
    #[error("CAN must be six digits")]
    BadCan,
}

/// The "MRZ information" that keys BAC and the PACE MRZ password: document number, date
/// of birth and date of expiry, each followed by its check digit.
#[derive(Clone, PartialEq, Eq)]
pub struct MrzKey {
    info: String,
}

impl std::fmt::Debug for MrzKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MrzKey(..)")
    }
}

impl MrzKey {
    /// Build the key from the three fields as printed (checked and turned into the MRZ
    /// information by [`mrz::MrzKey`], the one definition of both; the check digits are
    /// computed there, a document number shorter than 9 characters is filled with `<`).
    pub fn new(
        document_number: &str,
        date_of_birth: &str,
        date_of_expiry: &str,
    ) -> Result<Self, AccessKeyError> {
        let key = mrz::MrzKey::new(document_number, date_of_birth, date_of_expiry)?;
        Self::from_fields(&key)
    }

    /// The key of fields already checked (e.g. from an OCR MRZ).
    pub fn from_fields(key: &mrz::MrzKey) -> Result<Self, AccessKeyError> {
        Ok(MrzKey {
            info: key.mrz_information()?,
        })
    }

    /// The MRZ information string (e.g. `L898902C<369080619406236`).
    pub fn mrz_information(&self) -> &str {
        &self.info
    }

    /// SHA-1 of the MRZ information (BAC `Kseed` source, PACE password `K`).
    pub fn digest(&self) -> [u8; 20] {
        crypto::sha1(self.info.as_bytes())
    }
}

/// The secret a traveller's chip is opened with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessKey {
    /// The MRZ information (BAC or PACE).
    Mrz(MrzKey),
    /// The card access number printed on the card (PACE only).
    Can(String),
}

impl AccessKey {
    /// A CAN key from its digits.
    pub fn can(can: &str) -> Result<Self, AccessKeyError> {
        let c = can.trim();
        if c.len() != 6 || !c.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccessKeyError::BadCan);
        }
        Ok(AccessKey::Can(c.to_string()))
    }
}

/// BAC basic access keys `(Kenc, Kmac)` derived from the MRZ key (ICAO 9303-11 §9.7.2).
pub fn basic_access_keys(key: &MrzKey) -> (Vec<u8>, Vec<u8>) {
    let seed = key.digest();
    let seed = seed.get(..16).unwrap_or_default();
    (
        crypto::kdf(CipherSuite::Tdes, seed, KDF_ENC),
        crypto::kdf(CipherSuite::Tdes, seed, KDF_MAC),
    )
}

/// GET CHALLENGE for the 8-byte chip nonce RND.IC.
pub fn get_challenge() -> CommandApdu {
    CommandApdu::new(0x00, 0x84, 0x00, 0x00).with_le(8)
}

/// Terminal, first BAC step: basic access keys derived, waiting for the chip's challenge.
pub struct BacInit {
    k_enc: Vec<u8>,
    k_mac: Vec<u8>,
}

/// Terminal, second BAC step: EXTERNAL AUTHENTICATE built, waiting for the chip's answer.
pub struct BacChallenged {
    k_enc: Vec<u8>,
    k_mac: Vec<u8>,
    rnd_ic: [u8; 8],
    rnd_ifd: [u8; 8],
    k_ifd: [u8; 16],
    command: CommandApdu,
}

impl BacInit {
    /// Start BAC with the MRZ key.
    pub fn new(key: &MrzKey) -> Self {
        let (k_enc, k_mac) = basic_access_keys(key);
        BacInit { k_enc, k_mac }
    }

    /// Take the chip's GET CHALLENGE answer, choose RND.IFD and K.IFD from `rng`, and build
    /// EXTERNAL AUTHENTICATE.
    pub fn challenged<R: CryptoRng + ?Sized>(
        self,
        challenge: &ResponseApdu,
        rng: &mut R,
    ) -> Result<BacChallenged, CardError> {
        if challenge.sw != SW_OK {
            return Err(CardError::Status {
                command: "GET CHALLENGE",
                sw: challenge.sw,
            });
        }
        let rnd_ic: [u8; 8] = challenge.data.as_slice().try_into().map_err(|_| {
            CardError::ProtocolViolation(format!(
                "GET CHALLENGE returned {} bytes, not 8",
                challenge.data.len()
            ))
        })?;
        let mut rnd_ifd = [0u8; 8];
        let mut k_ifd = [0u8; 16];
        rng.fill_bytes(&mut rnd_ifd);
        rng.fill_bytes(&mut k_ifd);
        let mut s = Vec::with_capacity(32);
        s.extend_from_slice(&rnd_ifd);
        s.extend_from_slice(&rnd_ic);
        s.extend_from_slice(&k_ifd);
        let e_ifd = crypto::cbc_encrypt(CipherSuite::Tdes, &self.k_enc, &[0; 8], &s)?;
        let m_ifd = crypto::mac_padded(CipherSuite::Tdes, &self.k_mac, &e_ifd)?;
        let mut data = e_ifd;
        data.extend_from_slice(&m_ifd);
        let command = CommandApdu::new(0x00, 0x82, 0x00, 0x00)
            .with_data(data)
            .with_le(40);
        Ok(BacChallenged {
            k_enc: self.k_enc,
            k_mac: self.k_mac,
            rnd_ic,
            rnd_ifd,
            k_ifd,
            command,
        })
    }
}

impl BacChallenged {
    /// The EXTERNAL AUTHENTICATE command to send.
    pub fn external_authenticate(&self) -> &CommandApdu {
        &self.command
    }

    /// Verify the chip's answer and derive the session keys and SSC.
    pub fn finish(self, resp: &ResponseApdu) -> Result<SecureChannel, CardError> {
        if resp.sw == SW_AUTH_FAILED || resp.sw == 0x6982 || resp.sw == 0x6A80 {
            return Err(CardError::WrongKey {
                protocol: "BAC",
                detail: format!("chip refused EXTERNAL AUTHENTICATE (SW {:04X})", resp.sw),
            });
        }
        if resp.sw != SW_OK {
            return Err(CardError::Status {
                command: "EXTERNAL AUTHENTICATE",
                sw: resp.sw,
            });
        }
        let (e_ic, m_ic) = match resp.data.len() {
            40 => resp.data.split_at(32),
            n => {
                return Err(CardError::ProtocolViolation(format!(
                    "EXTERNAL AUTHENTICATE answer of {n} bytes, not 40"
                )))
            }
        };
        let mac = crypto::mac_padded(CipherSuite::Tdes, &self.k_mac, e_ic)?;
        if !crypto::ct_eq(&mac, m_ic) {
            return Err(CardError::BadMac(
                "BAC chip authentication cryptogram".into(),
            ));
        }
        let r = crypto::cbc_decrypt(CipherSuite::Tdes, &self.k_enc, &[0; 8], e_ic)?;
        let (rnd_ic, rest) = r.split_at(8);
        let (rnd_ifd, k_ic) = rest.split_at(8);
        if rnd_ic != self.rnd_ic || rnd_ifd != self.rnd_ifd {
            return Err(CardError::TamperedData(
                "BAC chip cryptogram does not echo the nonces".into(),
            ));
        }
        Ok(session(&self.k_ifd, k_ic, &self.rnd_ic, &self.rnd_ifd))
    }
}

/// Session keys and SSC from the two key halves and nonces.
fn session(k_ifd: &[u8], k_ic: &[u8], rnd_ic: &[u8], rnd_ifd: &[u8]) -> SecureChannel {
    let seed: Vec<u8> = k_ifd.iter().zip(k_ic).map(|(a, b)| a ^ b).collect();
    let mut ssc = Vec::with_capacity(8);
    ssc.extend_from_slice(rnd_ic.get(4..8).unwrap_or_default());
    ssc.extend_from_slice(rnd_ifd.get(4..8).unwrap_or_default());
    SecureChannel::new(
        CipherSuite::Tdes,
        crypto::kdf(CipherSuite::Tdes, &seed, KDF_ENC),
        crypto::kdf(CipherSuite::Tdes, &seed, KDF_MAC),
        &ssc,
    )
}

/// Chip side of EXTERNAL AUTHENTICATE: check the terminal's cryptogram against the chip's
/// challenge `rnd_ic`, answer with the chip's cryptogram (keyed by `k_ic`) and open the
/// secure channel. An `Err` is the status word to answer (`6300` wrong key).
pub fn chip_authenticate(
    key: &MrzKey,
    rnd_ic: &[u8; 8],
    k_ic: &[u8; 16],
    command_data: &[u8],
) -> Result<(Vec<u8>, SecureChannel), u16> {
    let (k_enc, k_mac) = basic_access_keys(key);
    if command_data.len() != 40 {
        return Err(0x6700);
    }
    let (e_ifd, m_ifd) = command_data.split_at(32);
    let mac = crypto::mac_padded(CipherSuite::Tdes, &k_mac, e_ifd).map_err(|_| 0x6F00u16)?;
    if !crypto::ct_eq(&mac, m_ifd) {
        return Err(SW_AUTH_FAILED);
    }
    let s =
        crypto::cbc_decrypt(CipherSuite::Tdes, &k_enc, &[0; 8], e_ifd).map_err(|_| 0x6F00u16)?;
    let (rnd_ifd, rest) = s.split_at(8);
    let (their_ic, k_ifd) = rest.split_at(8);
    if their_ic != rnd_ic {
        return Err(SW_AUTH_FAILED);
    }
    let mut r = Vec::with_capacity(32);
    r.extend_from_slice(rnd_ic);
    r.extend_from_slice(rnd_ifd);
    r.extend_from_slice(k_ic);
    let e_ic =
        crypto::cbc_encrypt(CipherSuite::Tdes, &k_enc, &[0; 8], &r).map_err(|_| 0x6F00u16)?;
    let m_ic = crypto::mac_padded(CipherSuite::Tdes, &k_mac, &e_ic).map_err(|_| 0x6F00u16)?;
    let mut out = e_ic;
    out.extend_from_slice(&m_ic);
    Ok((out, session(k_ifd, k_ic, rnd_ic, rnd_ifd)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::crypto::ScriptedRng;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn specimen() -> MrzKey {
        MrzKey::new("L898902C", "690806", "940623").unwrap()
    }

    #[test]
    fn mrz_information_and_keys_d2() {
        let k = specimen();
        assert_eq!(k.mrz_information(), "L898902C<369080619406236");
        assert_eq!(
            k.digest()[..16].to_vec(),
            h("239AB9CB282DAF66231DC5A4DF6BFBAE")
        );
        let (enc, mac) = basic_access_keys(&k);
        assert_eq!(enc, h("AB94FDECF2674FDFB9B391F85D7F76F2"));
        assert_eq!(mac, h("7962D9ECE03D1ACD4C76089DCE131543"));
        assert!(MrzKey::new("L898902C", "69086", "940623").is_err());
        assert!(MrzKey::new("L89?", "690806", "940623").is_err());
        assert!(AccessKey::can("12345").is_err());
        assert!(AccessKey::can("123456").is_ok());
    }

    #[test]
    fn mutual_authentication_d3() {
        let mut rng = ScriptedRng::default();
        rng.push(&h("781723860C06C226"))
            .push(&h("0B795240CB7049B01C19B33E32804F0B"));
        let challenge = ResponseApdu::new(h("4608F91988702212"), 0x9000);
        let step = BacInit::new(&specimen())
            .challenged(&challenge, &mut rng)
            .unwrap();
        assert_eq!(
            step.external_authenticate().data,
            h(
                "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2\
               5F1448EEA8AD90A7"
            )
        );
        assert_eq!(
            step.external_authenticate().to_bytes().unwrap()[..5],
            h("0082000028")[..]
        );
        let chip =
            h("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449");
        // the chip side reproduces the chip's printed cryptogram from its nonce and K.IC
        let (resp, chip_channel) = chip_authenticate(
            &specimen(),
            &h("4608F91988702212").try_into().unwrap(),
            &h("0B4F80323EB3191CB04970CB4052790B").try_into().unwrap(),
            &step.external_authenticate().data,
        )
        .unwrap();
        assert_eq!(resp, chip);
        let channel = step.finish(&ResponseApdu::new(chip, 0x9000)).unwrap();
        assert_eq!(channel.ssc(), &h("887022120C06C226")[..]);
        assert_eq!(chip_channel.ssc(), channel.ssc());
        // session keys: the D.4 vectors verify only under KSenc/KSmac of D.3
        let mut ch = channel;
        let wrapped = ch
            .wrap_command(&CommandApdu::new(0, 0xA4, 2, 0x0C).with_data(h("011E")))
            .unwrap();
        assert_eq!(
            wrapped,
            h("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800")
        );
        let seed: Vec<u8> = h("0B795240CB7049B01C19B33E32804F0B")
            .iter()
            .zip(h("0B4F80323EB3191CB04970CB4052790B"))
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(seed, h("0036D272F5C350ACAC50C3F572D23600"));
        assert_eq!(
            crypto::kdf(CipherSuite::Tdes, &seed, KDF_ENC),
            h("979EC13B1CBFE9DCD01AB0FED307EAE5")
        );
        assert_eq!(
            crypto::kdf(CipherSuite::Tdes, &seed, KDF_MAC),
            h("F1CB1F1FB5ADF208806B89DC579DC1F8")
        );
    }

    #[test]
    fn wrong_key_and_tampering_are_typed() {
        let mut rng = ScriptedRng::default();
        let challenge = ResponseApdu::new(h("4608F91988702212"), 0x9000);
        let wrong = MrzKey::new("L898902C", "690806", "940624").unwrap();
        let step = BacInit::new(&wrong)
            .challenged(&challenge, &mut rng)
            .unwrap();
        let chip = chip_authenticate(
            &specimen(),
            &h("4608F91988702212").try_into().unwrap(),
            &[1; 16],
            &step.external_authenticate().data,
        );
        assert_eq!(chip.err(), Some(SW_AUTH_FAILED));
        assert!(matches!(
            step.finish(&ResponseApdu::new(vec![], 0x6300)),
            Err(CardError::WrongKey { .. })
        ));
        // a chip answer whose MAC does not verify
        let step = BacInit::new(&specimen())
            .challenged(&challenge, &mut rng)
            .unwrap();
        let (mut resp, _) = chip_authenticate(
            &specimen(),
            &h("4608F91988702212").try_into().unwrap(),
            &[1; 16],
            &step.external_authenticate().data,
        )
        .unwrap();
        resp[3] ^= 0x40;
        assert!(matches!(
            step.finish(&ResponseApdu::new(resp, 0x9000)),
            Err(CardError::BadMac(_))
        ));
    }
}
