//! PACE with Generic Mapping over ECDH (ICAO Doc 9303 Part 11 §4.4), on NIST P-256/P-384
//! and brainpoolP256r1/P384r1, with 3DES or AES-128/192/256 session keys.
//!
//! Terminal side as consuming steps:
//! `PaceInit → PaceMapping → PaceKeyAgreement → PaceMutualAuth → SecureChannel`.
//! Chip side: [`ChipPace`], driven by the virtual chip.

use elliptic_curve::ops::Reduce;
use elliptic_curve::point::AffineCoordinates;
use elliptic_curve::sec1::{FromSec1Point, ModulusSize, ToSec1Point};
use elliptic_curve::{CurveAffine, CurveArithmetic, CurveGroup, FieldBytes, FieldBytesSize, Group};
use rand_core::CryptoRng;

use super::apdu::{tlv_all, tlv_encode, tlv_first, CommandApdu, ResponseApdu, SW_OK};
use super::bac::AccessKey;
use super::crypto::{self, CipherSuite, KDF_ENC, KDF_MAC, KDF_PI};
use super::error::CardError;
use super::sm::SecureChannel;

/// Elliptic curve of the PACE domain parameters (standardized parameter IDs of
/// ICAO 9303-11 table 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PaceCurve {
    /// NIST P-256 (secp256r1), parameter ID 12.
    P256,
    /// brainpoolP256r1, parameter ID 13.
    BrainpoolP256r1,
    /// NIST P-384 (secp384r1), parameter ID 15.
    P384,
    /// brainpoolP384r1, parameter ID 16.
    BrainpoolP384r1,
}

impl PaceCurve {
    /// The curve for a standardized domain parameter ID, if supported.
    pub fn from_parameter_id(id: u32) -> Option<Self> {
        match id {
            12 => Some(PaceCurve::P256),
            13 => Some(PaceCurve::BrainpoolP256r1),
            15 => Some(PaceCurve::P384),
            16 => Some(PaceCurve::BrainpoolP384r1),
            _ => None,
        }
    }

    /// The standardized domain parameter ID.
    pub fn parameter_id(self) -> u8 {
        match self {
            PaceCurve::P256 => 12,
            PaceCurve::BrainpoolP256r1 => 13,
            PaceCurve::P384 => 15,
            PaceCurve::BrainpoolP384r1 => 16,
        }
    }

    /// Length of a field element / scalar in bytes.
    pub fn field_len(self) -> usize {
        match self {
            PaceCurve::P256 | PaceCurve::BrainpoolP256r1 => 32,
            PaceCurve::P384 | PaceCurve::BrainpoolP384r1 => 48,
        }
    }
}

pub use super::lds::PaceInfo;
use super::lds::{Cipher, KeyAgreement, Mapping, PaceProtocol, SecurityInfo, SecurityInfos};

impl PaceInfo {
    /// The protocol OID as DER content bytes (as MSE:Set AT and the public-key data
    /// objects carry it).
    pub fn oid_bytes(&self) -> Vec<u8> {
        self.protocol.oid().as_bytes().to_vec()
    }

    /// A PACE-ECDH-GM info (version 2) for `suite` on `curve`.
    pub fn ecdh_gm(suite: CipherSuite, curve: PaceCurve) -> Self {
        let cipher = match suite {
            CipherSuite::Tdes => Cipher::Des3,
            CipherSuite::Aes128 => Cipher::Aes128,
            CipherSuite::Aes192 => Cipher::Aes192,
            CipherSuite::Aes256 => Cipher::Aes256,
        };
        PaceInfo {
            protocol: PaceProtocol {
                key_agreement: KeyAgreement::Ecdh,
                mapping: Mapping::Generic,
                cipher,
            },
            version: 2,
            parameter_id: Some(u32::from(curve.parameter_id())),
        }
    }

    /// The cipher suite and curve, when this reader implements the protocol (ECDH with
    /// Generic Mapping on a standardized curve it knows).
    pub fn supported(&self) -> Result<(CipherSuite, PaceCurve), CardError> {
        let p = self.protocol;
        if (p.key_agreement, p.mapping) != (KeyAgreement::Ecdh, Mapping::Generic) {
            return Err(CardError::UnknownAlgorithm(format!(
                "PACE protocol {}",
                p.name()
            )));
        }
        let suite = match p.cipher {
            Cipher::Des3 => CipherSuite::Tdes,
            Cipher::Aes128 => CipherSuite::Aes128,
            Cipher::Aes192 => CipherSuite::Aes192,
            Cipher::Aes256 => CipherSuite::Aes256,
        };
        let id = self.parameter_id.ok_or_else(|| {
            CardError::UnknownAlgorithm("PACE without a standardized parameter ID".into())
        })?;
        let curve = PaceCurve::from_parameter_id(id)
            .ok_or_else(|| CardError::UnknownAlgorithm(format!("PACE domain parameters {id}")))?;
        Ok((suite, curve))
    }
}

/// EF.CardAccess content offering `infos` (the LDS encoding of [`SecurityInfos`]).
pub fn build_card_access(infos: &[PaceInfo]) -> Vec<u8> {
    SecurityInfos {
        infos: infos.iter().cloned().map(SecurityInfo::Pace).collect(),
    }
    .encode()
}

/// The PACE protocols listed in EF.CardAccess (parsed by [`SecurityInfos`]); other
/// security infos are skipped. A malformed file is a protocol violation of the chip.
pub fn parse_card_access(bytes: &[u8]) -> Result<Vec<PaceInfo>, CardError> {
    let infos = SecurityInfos::parse_card_access(bytes)
        .map_err(|e| CardError::ProtocolViolation(e.to_string()))?;
    Ok(infos.pace().into_iter().cloned().collect())
}

/// PACE password reference (MSE:Set AT tag 83).
fn password_ref(key: &AccessKey) -> u8 {
    match key {
        AccessKey::Mrz(_) => 1,
        AccessKey::Can(_) => 2,
    }
}

/// The password key `Kπ` for `key` under `suite`.
pub fn password_key(suite: CipherSuite, key: &AccessKey) -> Vec<u8> {
    match key {
        AccessKey::Mrz(m) => crypto::kdf(suite, &m.digest(), KDF_PI),
        AccessKey::Can(c) => crypto::kdf(suite, c.as_bytes(), KDF_PI),
    }
}

/// MSE:Set AT selecting PACE (no Le: some chips fall back to BAC when it is present).
pub fn mse_set_at(info: &PaceInfo, key: &AccessKey, with_parameter_id: bool) -> CommandApdu {
    let mut data = tlv_encode(0x80, &info.oid_bytes());
    data.extend(tlv_encode(0x83, &[password_ref(key)]));
    if with_parameter_id {
        if let Some(p) = info.parameter_id.and_then(|p| u8::try_from(p).ok()) {
            data.extend(tlv_encode(0x84, &[p]));
        }
    }
    CommandApdu::new(0x00, 0x22, 0xC1, 0xA4).with_data(data)
}

fn general_authenticate(tag: u8, value: &[u8], last: bool) -> CommandApdu {
    let inner = if tag == 0 {
        Vec::new()
    } else {
        tlv_encode(u16::from(tag), value)
    };
    CommandApdu::new(if last { 0x00 } else { 0x10 }, 0x86, 0x00, 0x00)
        .with_data(tlv_encode(0x7C, &inner))
        .with_le(256)
}

/// The value of data object `tag` inside a GENERAL AUTHENTICATE answer `7C`.
fn ga_object(resp: &ResponseApdu, tag: u32, step: &'static str) -> Result<Vec<u8>, CardError> {
    if resp.sw == 0x6300 || resp.sw & 0xFFF0 == 0x63C0 {
        return Err(CardError::WrongKey {
            protocol: "PACE",
            detail: format!("chip refused {step} (SW {:04X})", resp.sw),
        });
    }
    if resp.sw != SW_OK {
        return Err(CardError::Status {
            command: step,
            sw: resp.sw,
        });
    }
    let bad =
        || CardError::ProtocolViolation(format!("{step}: malformed dynamic authentication data"));
    let (t, v, n) = tlv_first(&resp.data).ok_or_else(bad)?;
    if t != 0x7C || n != resp.data.len() {
        return Err(bad());
    }
    tlv_all(v)
        .ok_or_else(bad)?
        .into_iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v.to_vec())
        .ok_or_else(bad)
}

// ---- elliptic-curve arithmetic, generic over the RustCrypto curve crates ----

fn ec_scalar<C>(b: &[u8]) -> Result<C::Scalar, CardError>
where
    C: CurveArithmetic,
{
    let mut fb = FieldBytes::<C>::default();
    let n = fb.len();
    if b.len() > n {
        return Err(CardError::ProtocolViolation(
            "scalar longer than the group order".into(),
        ));
    }
    if let Some(dst) = fb.get_mut(n - b.len()..) {
        dst.copy_from_slice(b);
    }
    Ok(<C::Scalar as Reduce<FieldBytes<C>>>::reduce(&fb))
}

fn ec_decode<C>(b: &[u8]) -> Result<C::ProjectivePoint, CardError>
where
    C: CurveArithmetic,
    C::AffinePoint: FromSec1Point<C> + ToSec1Point<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let n = FieldBytes::<C>::default().len();
    if b.len() != 1 + 2 * n || b.first() != Some(&0x04) {
        return Err(CardError::ProtocolViolation(
            "public key is not an uncompressed point".into(),
        ));
    }
    let p = C::AffinePoint::from_sec1_bytes(b)
        .map_err(|_| CardError::ProtocolViolation("public key is not on the curve".into()))?;
    if bool::from(p.is_identity()) {
        return Err(CardError::ProtocolViolation(
            "public key is the point at infinity".into(),
        ));
    }
    Ok(p.into())
}

fn ec_encode<C>(p: &C::ProjectivePoint) -> Result<Vec<u8>, CardError>
where
    C: CurveArithmetic,
    C::AffinePoint: FromSec1Point<C> + ToSec1Point<C>,
    FieldBytesSize<C>: ModulusSize,
{
    if bool::from(p.is_identity()) {
        return Err(CardError::ProtocolViolation(
            "result is the point at infinity".into(),
        ));
    }
    Ok(p.to_affine().to_sec1_point(false).as_bytes().to_vec())
}

/// `sk · P` (P encoded; `None` = the standard generator), returned encoded.
fn ec_mul<C>(point: Option<&[u8]>, sk: &[u8]) -> Result<Vec<u8>, CardError>
where
    C: CurveArithmetic,
    C::AffinePoint: FromSec1Point<C> + ToSec1Point<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let base = match point {
        Some(p) => ec_decode::<C>(p)?,
        None => C::ProjectivePoint::generator(),
    };
    ec_encode::<C>(&(base * ec_scalar::<C>(sk)?))
}

/// Generic Mapping: `G' = s·G + H`.
fn ec_map<C>(s: &[u8], h: &[u8]) -> Result<Vec<u8>, CardError>
where
    C: CurveArithmetic,
    C::AffinePoint: FromSec1Point<C> + ToSec1Point<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let h = ec_decode::<C>(h)?;
    ec_encode::<C>(&(C::ProjectivePoint::generator() * ec_scalar::<C>(s)? + h))
}

fn ec_x<C>(p: &[u8]) -> Result<Vec<u8>, CardError>
where
    C: CurveArithmetic,
    C::AffinePoint: FromSec1Point<C> + ToSec1Point<C>,
    FieldBytesSize<C>: ModulusSize,
{
    Ok(ec_decode::<C>(p)?.to_affine().x().to_vec())
}

macro_rules! dispatch {
    ($curve:expr, $f:ident ( $($a:expr),* )) => {
        match $curve {
            PaceCurve::P256 => $f::<p256::NistP256>($($a),*),
            PaceCurve::P384 => $f::<p384::NistP384>($($a),*),
            PaceCurve::BrainpoolP256r1 => $f::<bp256::BrainpoolP256r1>($($a),*),
            PaceCurve::BrainpoolP384r1 => $f::<bp384::BrainpoolP384r1>($($a),*),
        }
    };
}

impl PaceCurve {
    /// `sk · P` for an encoded point `P`, or `sk · G` when `point` is `None`; uncompressed.
    pub fn mul(self, point: Option<&[u8]>, sk: &[u8]) -> Result<Vec<u8>, CardError> {
        dispatch!(self, ec_mul(point, sk))
    }

    /// Generic Mapping `s·G + H`.
    pub fn map_generator(self, s: &[u8], h: &[u8]) -> Result<Vec<u8>, CardError> {
        dispatch!(self, ec_map(s, h))
    }

    /// x-coordinate of an encoded point (validated).
    pub fn x_coordinate(self, p: &[u8]) -> Result<Vec<u8>, CardError> {
        dispatch!(self, ec_x(p))
    }

    /// A random private key: field-length bytes from `rng`, retried while zero mod n
    /// (a source that keeps failing is reported, never looped on).
    fn random_key<R: CryptoRng + ?Sized>(self, rng: &mut R) -> Result<Vec<u8>, CardError> {
        for _ in 0..16 {
            let mut b = vec![0u8; self.field_len()];
            rng.fill_bytes(&mut b);
            if self.mul(None, &b).is_ok() {
                return Ok(b);
            }
        }
        Err(CardError::Reader(
            "random source produced no valid private key".into(),
        ))
    }
}

/// Public-key data object `7F49 { 06 OID, 86 point }` that the authentication tokens cover.
fn public_key_object(oid: &[u8], point: &[u8]) -> Vec<u8> {
    let mut body = tlv_encode(0x06, oid);
    body.extend(tlv_encode(0x86, point));
    tlv_encode(0x7F49, &body)
}

// ---- terminal steps ----

/// Terminal, first PACE step: protocol chosen and password key derived. Send
/// [`PaceInit::set_at`], then [`PaceInit::nonce_request`].
pub struct PaceInit {
    info: PaceInfo,
    suite: CipherSuite,
    curve: PaceCurve,
    k_pi: Vec<u8>,
    key_ref: u8,
}

/// Terminal, second step: nonce decrypted, mapping key sent.
pub struct PaceMapping {
    init: PaceInit,
    s: Vec<u8>,
    sk_map: Vec<u8>,
    command: CommandApdu,
}

/// Terminal, third step: generator mapped, ephemeral key sent.
pub struct PaceKeyAgreement {
    init: PaceInit,
    generator: Vec<u8>,
    sk_eph: Vec<u8>,
    pk_eph: Vec<u8>,
    command: CommandApdu,
}

/// Terminal, fourth step: session keys derived, token sent; waiting for the chip's token.
pub struct PaceMutualAuth {
    init: PaceInit,
    shared_secret: Vec<u8>,
    k_enc: Vec<u8>,
    k_mac: Vec<u8>,
    pk_eph: Vec<u8>,
    command: CommandApdu,
}

impl PaceInit {
    /// Start PACE with a protocol from EF.CardAccess and the traveller's password.
    pub fn new(info: &PaceInfo, key: &AccessKey) -> Result<Self, CardError> {
        let (suite, curve) = info.supported()?;
        Ok(PaceInit {
            info: info.clone(),
            suite,
            curve,
            k_pi: password_key(suite, key),
            key_ref: match key {
                AccessKey::Mrz(_) => 1,
                AccessKey::Can(_) => 2,
            },
        })
    }

    /// The cipher suite negotiated.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The curve negotiated.
    pub fn curve(&self) -> PaceCurve {
        self.curve
    }

    /// MSE:Set AT (tag 84 with the parameter ID only when `with_parameter_id`).
    pub fn set_at(&self, with_parameter_id: bool) -> CommandApdu {
        let mut data = tlv_encode(0x80, &self.info.oid_bytes());
        data.extend(tlv_encode(0x83, &[self.key_ref]));
        if with_parameter_id {
            data.extend(tlv_encode(0x84, &[self.curve.parameter_id()]));
        }
        CommandApdu::new(0x00, 0x22, 0xC1, 0xA4).with_data(data)
    }

    /// GENERAL AUTHENTICATE asking for the encrypted nonce.
    pub fn nonce_request(&self) -> CommandApdu {
        general_authenticate(0, &[], false)
    }

    /// Decrypt the nonce and send the terminal's mapping public key (private key from `rng`).
    pub fn received_nonce<R: CryptoRng + ?Sized>(
        self,
        resp: &ResponseApdu,
        rng: &mut R,
    ) -> Result<PaceMapping, CardError> {
        let z = ga_object(resp, 0x80, "PACE encrypted nonce")?;
        if z.is_empty() || z.len() % self.suite.block_len() != 0 {
            return Err(CardError::ProtocolViolation(format!(
                "PACE nonce of {} bytes is not whole cipher blocks",
                z.len()
            )));
        }
        let s = crypto::cbc_decrypt(self.suite, &self.k_pi, &vec![0; self.suite.block_len()], &z)?;
        let sk_map = self.curve.random_key(rng)?;
        let pk_map = self.curve.mul(None, &sk_map)?;
        let command = general_authenticate(0x81, &pk_map, false);
        Ok(PaceMapping {
            init: self,
            s,
            sk_map,
            command,
        })
    }
}

impl PaceMapping {
    /// The decrypted nonce `s`.
    pub fn nonce(&self) -> &[u8] {
        &self.s
    }

    /// GENERAL AUTHENTICATE carrying the terminal's mapping key.
    pub fn command(&self) -> &CommandApdu {
        &self.command
    }

    /// Map the generator with the chip's mapping key and send an ephemeral key on it.
    pub fn mapped<R: CryptoRng + ?Sized>(
        self,
        resp: &ResponseApdu,
        rng: &mut R,
    ) -> Result<PaceKeyAgreement, CardError> {
        let pk_map_ic = ga_object(resp, 0x82, "PACE mapping")?;
        let curve = self.init.curve;
        let h = curve.mul(Some(&pk_map_ic), &self.sk_map)?;
        let generator = curve.map_generator(&self.s, &h)?;
        let sk_eph = curve.random_key(rng)?;
        let pk_eph = curve.mul(Some(&generator), &sk_eph)?;
        let command = general_authenticate(0x83, &pk_eph, false);
        Ok(PaceKeyAgreement {
            init: self.init,
            generator,
            sk_eph,
            pk_eph,
            command,
        })
    }
}

impl PaceKeyAgreement {
    /// The mapped generator `G'` (uncompressed point).
    pub fn mapped_generator(&self) -> &[u8] {
        &self.generator
    }

    /// GENERAL AUTHENTICATE carrying the terminal's ephemeral key.
    pub fn command(&self) -> &CommandApdu {
        &self.command
    }

    /// Agree on the shared secret with the chip's ephemeral key, derive session keys and
    /// send the terminal's authentication token.
    pub fn agreed(self, resp: &ResponseApdu) -> Result<PaceMutualAuth, CardError> {
        let pk_ic = ga_object(resp, 0x84, "PACE key agreement")?;
        if pk_ic == self.pk_eph {
            return Err(CardError::ProtocolViolation(
                "chip echoed the terminal's ephemeral key".into(),
            ));
        }
        let curve = self.init.curve;
        let shared = curve.mul(Some(&pk_ic), &self.sk_eph)?;
        let shared_secret = curve.x_coordinate(&shared)?;
        let suite = self.init.suite;
        let k_enc = crypto::kdf(suite, &shared_secret, KDF_ENC);
        let k_mac = crypto::kdf(suite, &shared_secret, KDF_MAC);
        let t_ifd = crypto::mac_token(
            suite,
            &k_mac,
            &public_key_object(&self.init.info.oid_bytes(), &pk_ic),
        )?;
        let command = general_authenticate(0x85, &t_ifd, true);
        Ok(PaceMutualAuth {
            init: self.init,
            shared_secret,
            k_enc,
            k_mac,
            pk_eph: self.pk_eph,
            command,
        })
    }
}

impl PaceMutualAuth {
    /// The ECDH shared secret (x-coordinate).
    pub fn shared_secret(&self) -> &[u8] {
        &self.shared_secret
    }

    /// Session keys `(KSenc, KSmac)`.
    pub fn session_keys(&self) -> (&[u8], &[u8]) {
        (&self.k_enc, &self.k_mac)
    }

    /// The last GENERAL AUTHENTICATE (terminal token).
    pub fn command(&self) -> &CommandApdu {
        &self.command
    }

    /// Verify the chip's token and open secure messaging (SSC zero).
    pub fn finish(self, resp: &ResponseApdu) -> Result<SecureChannel, CardError> {
        let t_ic = ga_object(resp, 0x86, "PACE mutual authentication")?;
        let suite = self.init.suite;
        let expect = crypto::mac_token(
            suite,
            &self.k_mac,
            &public_key_object(&self.init.info.oid_bytes(), &self.pk_eph),
        )?;
        if !crypto::ct_eq(&expect, &t_ic) {
            return Err(CardError::BadMac("PACE chip authentication token".into()));
        }
        Ok(SecureChannel::new(suite, self.k_enc, self.k_mac, &[0]))
    }
}

// ---- chip side ----

/// Chip side of PACE: the state between GENERAL AUTHENTICATE steps.
#[derive(Debug)]
pub struct ChipPace {
    info: PaceInfo,
    suite: CipherSuite,
    curve: PaceCurve,
    k_pi: Vec<u8>,
    step: ChipStep,
}

#[derive(Debug)]
enum ChipStep {
    AwaitNonceRequest,
    AwaitMapping {
        s: Vec<u8>,
    },
    AwaitEphemeral {
        generator: Vec<u8>,
    },
    AwaitToken {
        k_enc: Vec<u8>,
        k_mac: Vec<u8>,
        pk_ifd: Vec<u8>,
        pk_ic: Vec<u8>,
    },
    Done,
}

/// What the chip answers to one GENERAL AUTHENTICATE.
#[derive(Debug)]
pub enum ChipPaceAnswer {
    /// Send this response data with `9000` and wait for the next step.
    Continue(Vec<u8>),
    /// Send this response data with `9000`, then secure messaging starts.
    Established(Vec<u8>, SecureChannel),
}

impl ChipPace {
    /// After MSE:Set AT: the chip offers `info` and holds the traveller's password.
    pub fn new(info: &PaceInfo, password: &AccessKey) -> Result<Self, CardError> {
        let (suite, curve) = info.supported()?;
        Ok(ChipPace {
            info: info.clone(),
            suite,
            curve,
            k_pi: password_key(suite, password),
            step: ChipStep::AwaitNonceRequest,
        })
    }

    /// Handle one GENERAL AUTHENTICATE (`data` = its 7C template). `Err` is the status
    /// word to answer; the chip then drops the PACE session.
    pub fn general_authenticate<R: CryptoRng + ?Sized>(
        &mut self,
        data: &[u8],
        chained: bool,
        rng: &mut R,
    ) -> Result<ChipPaceAnswer, u16> {
        let (t, v, n) = tlv_first(data).ok_or(0x6A80u16)?;
        if t != 0x7C || n != data.len() {
            return Err(0x6A80);
        }
        let objs = tlv_all(v).ok_or(0x6A80u16)?;
        let obj = |tag: u32| {
            objs.iter()
                .find(|(t, _)| *t == tag)
                .map(|(_, v)| v.to_vec())
        };
        let step = std::mem::replace(&mut self.step, ChipStep::Done);
        let out = tlv_encode_7c;
        match step {
            ChipStep::AwaitNonceRequest if chained && objs.is_empty() => {
                let bl = self.suite.block_len();
                let mut s = vec![0u8; 16.max(bl)];
                rng.fill_bytes(&mut s);
                let z = crypto::cbc_encrypt(self.suite, &self.k_pi, &vec![0; bl], &s)
                    .map_err(|_| 0x6F00u16)?;
                self.step = ChipStep::AwaitMapping { s };
                Ok(ChipPaceAnswer::Continue(out(0x80, &z)))
            }
            ChipStep::AwaitMapping { s } if chained => {
                let pk_ifd = obj(0x81).ok_or(0x6A80u16)?;
                let sk = self.curve.random_key(rng).map_err(|_| 0x6F00u16)?;
                let pk = self.curve.mul(None, &sk).map_err(|_| 0x6F00u16)?;
                let h = self.curve.mul(Some(&pk_ifd), &sk).map_err(|_| 0x6A80u16)?;
                let generator = self.curve.map_generator(&s, &h).map_err(|_| 0x6A80u16)?;
                self.step = ChipStep::AwaitEphemeral { generator };
                Ok(ChipPaceAnswer::Continue(out(0x82, &pk)))
            }
            ChipStep::AwaitEphemeral { generator } if chained => {
                let pk_ifd = obj(0x83).ok_or(0x6A80u16)?;
                let sk = self.curve.random_key(rng).map_err(|_| 0x6F00u16)?;
                let pk_ic = self
                    .curve
                    .mul(Some(&generator), &sk)
                    .map_err(|_| 0x6F00u16)?;
                if pk_ic == pk_ifd {
                    return Err(0x6A80);
                }
                let shared = self.curve.mul(Some(&pk_ifd), &sk).map_err(|_| 0x6A80u16)?;
                let x = self.curve.x_coordinate(&shared).map_err(|_| 0x6A80u16)?;
                self.step = ChipStep::AwaitToken {
                    k_enc: crypto::kdf(self.suite, &x, KDF_ENC),
                    k_mac: crypto::kdf(self.suite, &x, KDF_MAC),
                    pk_ifd,
                    pk_ic: pk_ic.clone(),
                };
                Ok(ChipPaceAnswer::Continue(out(0x84, &pk_ic)))
            }
            ChipStep::AwaitToken {
                k_enc,
                k_mac,
                pk_ifd,
                pk_ic,
            } if !chained => {
                let t_ifd = obj(0x85).ok_or(0x6A80u16)?;
                let expect = crypto::mac_token(
                    self.suite,
                    &k_mac,
                    &public_key_object(&self.info.oid_bytes(), &pk_ic),
                )
                .map_err(|_| 0x6F00u16)?;
                if !crypto::ct_eq(&expect, &t_ifd) {
                    // wrong password: the terminal's token does not verify
                    return Err(0x6300);
                }
                let t_ic = crypto::mac_token(
                    self.suite,
                    &k_mac,
                    &public_key_object(&self.info.oid_bytes(), &pk_ifd),
                )
                .map_err(|_| 0x6F00u16)?;
                Ok(ChipPaceAnswer::Established(
                    out(0x86, &t_ic),
                    SecureChannel::new(self.suite, k_enc, k_mac, &[0]),
                ))
            }
            _ => Err(0x6985),
        }
    }
}

fn tlv_encode_7c(tag: u8, value: &[u8]) -> Vec<u8> {
    tlv_encode(0x7C, &tlv_encode(u16::from(tag), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::bac::MrzKey;
    use crate::card::crypto::ScriptedRng;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn g1_key() -> AccessKey {
        // MRZ information T22000129364081251010318
        AccessKey::Mrz(MrzKey::new("T22000129", "640812", "101031").unwrap())
    }

    #[test]
    fn card_access_g1() {
        let ca = h("31143012060A04007F0007020204020202010202010D");
        let infos = parse_card_access(&ca).unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!(
            infos[0].supported().unwrap(),
            (CipherSuite::Aes128, PaceCurve::BrainpoolP256r1)
        );
        assert_eq!(build_card_access(&infos), ca);
        assert_eq!(
            mse_set_at(&infos[0], &g1_key(), false).to_bytes().unwrap(),
            h("0022C1A40F800A04007F00070202040202830101")
        );
        assert_eq!(
            mse_set_at(&infos[0], &g1_key(), true).to_bytes().unwrap(),
            h("0022C1A412800A04007F0007020204020283010184010D")
        );
        assert!(parse_card_access(&h("3114")).is_err());
        let dh = PaceInfo {
            protocol: PaceProtocol {
                key_agreement: KeyAgreement::Dh,
                mapping: Mapping::Generic,
                cipher: Cipher::Aes128,
            },
            version: 2,
            parameter_id: Some(0),
        };
        assert!(matches!(
            dh.supported(),
            Err(CardError::UnknownAlgorithm(_))
        ));
    }

    #[test]
    fn pace_ecdh_gm_g1() {
        let key = g1_key();
        if let AccessKey::Mrz(m) = &key {
            assert_eq!(m.mrz_information(), "T22000129364081251010318");
            assert_eq!(
                m.digest().to_vec(),
                h("7E2D2A41C74EA0B38CD36F863939BFA8E9032AAD")
            );
        }
        let info =
            &parse_card_access(&h("31143012060A04007F0007020204020202010202010D")).unwrap()[0];
        assert_eq!(
            password_key(CipherSuite::Aes128, &key),
            h("89DED1B26624EC1E634C1989302849DD")
        );
        let init = PaceInit::new(info, &key).unwrap();
        assert_eq!(
            init.nonce_request().to_bytes().unwrap(),
            h("10860000027C0000")
        );
        let mut rng = ScriptedRng::default();
        rng.push(&h(
            "7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99",
        ))
        .push(&h(
            "A73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595",
        ));
        let mut chip_rng = ScriptedRng::default();
        chip_rng
            .push(&h("3F00C4D39D153F2B2A214A078D899B22"))
            .push(&h(
                "498FF49756F2DC1587840041839A85982BE7761D14715FB091EFA7BCE9058560",
            ))
            .push(&h(
                "107CF58696EF6155053340FD633392BA81909DF7B9706F226F32086C7AFF974A",
            ));
        let mut chip = ChipPace::new(info, &key).unwrap();
        let mut ask = |cmd: &CommandApdu, rng: &mut ScriptedRng| match chip
            .general_authenticate(&cmd.data, cmd.cla & 0x10 != 0, rng)
            .unwrap()
        {
            ChipPaceAnswer::Continue(d) => (ResponseApdu::new(d, 0x9000), None),
            ChipPaceAnswer::Established(d, ch) => (ResponseApdu::new(d, 0x9000), Some(ch)),
        };
        let (r, _) = ask(&init.nonce_request(), &mut chip_rng);
        assert_eq!(
            r.to_bytes(),
            h("7C12801095A3A016522EE98D01E76CB6B98B42C39000")
        );
        let step = init.received_nonce(&r, &mut rng).unwrap();
        assert_eq!(step.nonce(), &h("3F00C4D39D153F2B2A214A078D899B22")[..]);
        let (r, _) = ask(step.command(), &mut chip_rng);
        let step = step.mapped(&r, &mut rng).unwrap();
        assert_eq!(
            step.mapped_generator()[1..33].to_vec(),
            h("8CED63C91426D4F0EB1435E7CB1D74A46723A0AF21C89634F65A9AE87A9265E2")
        );
        let (r, _) = ask(step.command(), &mut chip_rng);
        let step = step.agreed(&r).unwrap();
        assert_eq!(
            step.shared_secret(),
            &h("28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925")[..]
        );
        let (ke, km) = step.session_keys();
        assert_eq!(ke, &h("F5F0E35C0D7161EE6724EE513A0D9A7F")[..]);
        assert_eq!(km, &h("FE251C7858B356B24514B3BD5F4297D1")[..]);
        assert_eq!(
            step.command().to_bytes().unwrap(),
            h("008600000C7C0A8508C2B0BD78D94BA86600")
        );
        let (r, chip_channel) = ask(step.command(), &mut chip_rng);
        assert_eq!(r.to_bytes(), h("7C0A86083ABB9674BCE93C089000"));
        let channel = step.finish(&r).unwrap();
        assert_eq!(channel.ssc(), &[0u8; 16][..]);
        assert_eq!(chip_channel.unwrap().ssc(), channel.ssc());
    }

    #[test]
    fn curves_and_suites_agree_and_wrong_password_fails() {
        use rand10::SeedableRng;
        let mut rng = rand10::rngs::StdRng::seed_from_u64(7);
        let key = AccessKey::can("123456").unwrap();
        // every curve and every suite at least once (the full product is slow in debug)
        for (curve, suite) in [
            (PaceCurve::P256, CipherSuite::Tdes),
            (PaceCurve::P256, CipherSuite::Aes192),
            (PaceCurve::P384, CipherSuite::Aes256),
            (PaceCurve::BrainpoolP256r1, CipherSuite::Aes128),
            (PaceCurve::BrainpoolP384r1, CipherSuite::Aes256),
            (PaceCurve::BrainpoolP384r1, CipherSuite::Tdes),
        ] {
            {
                let info = PaceInfo::ecdh_gm(suite, curve);
                for (terminal_key, ok) in [
                    (key.clone(), true),
                    (AccessKey::can("654321").unwrap(), false),
                ] {
                    let mut chip = ChipPace::new(&info, &key).unwrap();
                    let mut ask = |cmd: &CommandApdu, rng: &mut rand10::rngs::StdRng| match chip
                        .general_authenticate(&cmd.data, cmd.cla & 0x10 != 0, rng)
                    {
                        Ok(ChipPaceAnswer::Continue(d)) => ResponseApdu::new(d, 0x9000),
                        Ok(ChipPaceAnswer::Established(d, _)) => ResponseApdu::new(d, 0x9000),
                        Err(sw) => ResponseApdu::new(vec![], sw),
                    };
                    let init = PaceInit::new(&info, &terminal_key).unwrap();
                    let r = ask(&init.nonce_request(), &mut rng);
                    let s = init.received_nonce(&r, &mut rng).unwrap();
                    let r = ask(s.command(), &mut rng);
                    let s = s.mapped(&r, &mut rng);
                    let s = match s {
                        Ok(s) => s,
                        Err(e) => panic!("{curve:?} {suite:?} {e}"),
                    };
                    let r = ask(s.command(), &mut rng);
                    let s = s.agreed(&r).unwrap();
                    let r = ask(s.command(), &mut rng);
                    let res = s.finish(&r);
                    if ok {
                        assert!(res.is_ok(), "{curve:?} {suite:?}");
                    } else {
                        assert!(
                            matches!(res, Err(CardError::WrongKey { .. })),
                            "{curve:?} {suite:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_invalid_points() {
        let c = PaceCurve::BrainpoolP256r1;
        let g = c.mul(None, &[1]).unwrap();
        let mut off = g.clone();
        off[40] ^= 1;
        assert!(matches!(
            c.mul(Some(&off), &[2]),
            Err(CardError::ProtocolViolation(_))
        ));
        assert!(c.mul(Some(&g[..33]), &[2]).is_err());
        assert!(c.mul(Some(&[0u8]), &[2]).is_err());
    }
}
