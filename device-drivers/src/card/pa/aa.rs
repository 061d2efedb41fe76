//! Active Authentication (DG15): verifying a chip's INTERNAL AUTHENTICATE answer, and
//! signing one as a virtual chip does.

use super::*;

/// Why Active Authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AaError {
    /// DG15 or its key is malformed.
    #[error("DG15: {0}")]
    Key(#[from] PaError),
    /// An ECDSA key without a signature algorithm from DG14.
    #[error("ECDSA Active Authentication needs the ActiveAuthenticationInfo algorithm from DG14")]
    NoAlgorithm,
    /// The challenge is not 8 bytes.
    #[error("AA challenge must be 8 bytes, got {0}")]
    BadChallenge(usize),
    /// The ISO 9796-2 message representative is malformed.
    #[error("AA response is not a valid ISO 9796-2 signature: {0}")]
    Iso9796(&'static str),
    /// The signature does not verify: the chip is a clone or the response was altered.
    #[error("AA signature does not verify: chip does not hold the DG15 private key")]
    BadSignature,
}

pub(super) fn plain_ecdsa_hash(o: &ObjectIdentifier) -> Option<HashAlg> {
    use super::lds::oid;
    Some(match *o {
        oid::ECDSA_PLAIN_SHA1 => HashAlg::Sha1,
        oid::ECDSA_PLAIN_SHA224 => HashAlg::Sha224,
        oid::ECDSA_PLAIN_SHA256 => HashAlg::Sha256,
        oid::ECDSA_PLAIN_SHA384 => HashAlg::Sha384,
        oid::ECDSA_PLAIN_SHA512 => HashAlg::Sha512,
        _ => HashAlg::from_oid(o).or(match *o {
            oids::ECDSA_SHA1 => Some(HashAlg::Sha1),
            oids::ECDSA_SHA224 => Some(HashAlg::Sha224),
            oids::ECDSA_SHA256 => Some(HashAlg::Sha256),
            oids::ECDSA_SHA384 => Some(HashAlg::Sha384),
            oids::ECDSA_SHA512 => Some(HashAlg::Sha512),
            _ => None,
        })?,
    })
}

/// Verifies an Active Authentication response (INTERNAL AUTHENTICATE) against DG15.
///
/// RSA keys: ISO/IEC 9796-2 digital signature scheme 1 (partial message recovery), trailer
/// `BC` (SHA-1) or `xxCC` (hash named by the byte). EC keys: plain ECDSA (`r‖s`) over the
/// challenge with the hash of `aa_algorithm` (DG14 ActiveAuthenticationInfo).
pub fn verify_active_authentication(
    dg15: &Dg15,
    aa_algorithm: Option<ObjectIdentifier>,
    challenge: &[u8],
    response: &[u8],
) -> Result<(), AaError> {
    if challenge.len() != 8 {
        return Err(AaError::BadChallenge(challenge.len()));
    }
    let key = PublicKey::from_spki("AA", &dg15.public_key_info)?;
    match &key {
        PublicKey::Rsa(k) => iso9796_2_verify(k, challenge, response),
        PublicKey::Ec { .. } => {
            let o = aa_algorithm.ok_or(AaError::NoAlgorithm)?;
            let hash = plain_ecdsa_hash(&o).ok_or(AaError::Key(PaError::UnknownAlgorithm {
                what: "AA signature algorithm",
                oid: o.to_string(),
            }))?;
            key.verify(SignatureScheme::Ecdsa(hash), challenge, response, false)
                .map_err(|_| AaError::BadSignature)
        }
    }
}

pub(super) fn iso9796_hash_id(h: HashAlg) -> u8 {
    match h {
        HashAlg::Sha1 => 0x33,
        HashAlg::Sha256 => 0x34,
        HashAlg::Sha512 => 0x35,
        HashAlg::Sha384 => 0x36,
        HashAlg::Sha224 => 0x38,
    }
}

pub(super) fn iso9796_2_verify(key: &rsa::PublicKey, m2: &[u8], sig: &[u8]) -> Result<(), AaError> {
    use rsa::traits::PublicKeyParts;
    let n_len = key.size();
    if sig.len() != n_len {
        return Err(AaError::Iso9796(
            "response length differs from the modulus length",
        ));
    }
    let s = rsa::BoxedUint::from_be_slice(sig, key.n_bits_precision())
        .map_err(|_| AaError::Iso9796("response does not fit the modulus"))?;
    if s >= *key.n().as_ref() {
        return Err(AaError::Iso9796("response not below the modulus"));
    }
    let m = rsa::hazmat::rsa_encrypt(key, &s).map_err(|_| AaError::BadSignature)?;
    let m = m.to_be_bytes();
    let m: &[u8] = m.get(m.len().saturating_sub(n_len)..).unwrap_or_default();
    let (hash, trailer_len) = match m {
        [.., 0xBC] => (HashAlg::Sha1, 1),
        [.., id, 0xCC] => (
            match id {
                0x33 => HashAlg::Sha1,
                0x34 => HashAlg::Sha256,
                0x35 => HashAlg::Sha512,
                0x36 => HashAlg::Sha384,
                0x38 => HashAlg::Sha224,
                _ => return Err(AaError::BadSignature),
            },
            2,
        ),
        _ => return Err(AaError::BadSignature),
    };
    let header = *m.first().ok_or(AaError::BadSignature)?;
    if header & 0xC0 != 0x40 {
        return Err(AaError::BadSignature);
    }
    if header != 0x6A {
        // 0x4A would mean total recovery: the challenge itself would be inside.
        return Err(AaError::Iso9796("not partial-recovery header 6A"));
    }
    let h_start = m
        .len()
        .checked_sub(trailer_len + hash.output_len())
        .ok_or(AaError::BadSignature)?;
    let m1 = m.get(1..h_start).ok_or(AaError::BadSignature)?;
    let h = m
        .get(h_start..m.len() - trailer_len)
        .ok_or(AaError::BadSignature)?;
    let mut msg = m1.to_vec();
    msg.extend_from_slice(m2);
    if hash.digest(&msg) != h {
        return Err(AaError::BadSignature);
    }
    Ok(())
}

/// Signs an AA challenge the way a chip does (for the virtual chip): ISO/IEC 9796-2 scheme 1
/// with SHA-1 for RSA keys (`m1` supplies the recoverable nonce bytes, repeated as needed),
/// plain ECDSA with `hash` for EC keys.
pub fn sign_active_authentication(
    key: &pki::SigningKey,
    hash: HashAlg,
    challenge: &[u8],
    m1_seed: &[u8],
) -> Result<Vec<u8>, pki::PkiError> {
    match key {
        pki::SigningKey::Rsa(k) => {
            use rsa::traits::PublicKeyParts;
            let n_len = k.size();
            let trailer: Vec<u8> = if hash == HashAlg::Sha1 {
                vec![0xBC]
            } else {
                vec![iso9796_hash_id(hash), 0xCC]
            };
            let m1_len = n_len
                .checked_sub(1 + hash.output_len() + trailer.len())
                .ok_or(pki::PkiError::Crypto(
                    "RSA key too small for ISO 9796-2".into(),
                ))?;
            let m1: Vec<u8> = m1_seed.iter().copied().cycle().take(m1_len).collect();
            if m1.len() != m1_len {
                return Err(pki::PkiError::Crypto("empty ISO 9796-2 nonce seed".into()));
            }
            let mut msg = m1.clone();
            msg.extend_from_slice(challenge);
            let mut rep = vec![0x6A];
            rep.extend_from_slice(&m1);
            rep.extend_from_slice(&hash.digest(&msg));
            rep.extend_from_slice(&trailer);
            // Keep the representative below n: the 0x6A header makes its top bits 01.
            let mval = rsa::BoxedUint::from_be_slice(&rep, k.n_bits_precision())
                .map_err(|e| pki::PkiError::Crypto(e.to_string()))?;
            let s = rsa::hazmat::rsa_decrypt_and_check::<getrandom::SysRng>(k, None, &mval)
                .map_err(|e| pki::PkiError::Crypto(e.to_string()))?;
            let bytes = s.to_be_bytes();
            Ok(bytes
                .get(bytes.len().saturating_sub(n_len)..)
                .unwrap_or_default()
                .to_vec())
        }
        other => other.sign_plain_ecdsa(hash, challenge),
    }
}
