//! Passive authentication (ICAO 9303 Part 11, 5.1): EF.SOD (CMS SignedData) parsing, the
//! Document Signer certificate chain to a CSCA trust store, signature verification
//! (RSA PKCS#1 v1.5, RSA-PSS, ECDSA on P-256/P-384/brainpoolP256r1/brainpoolP384r1), data-group
//! hash comparison, chip-MRZ versus OCR-MRZ comparison, and Active Authentication (DG15).
//!
//! CMS is parsed with the project's own BER-TLV reader so that the exact signed bytes are kept
//! (signed attributes are verified as encoded, never re-encoded); certificates are decoded with
//! `x509-cert`.
//!
//! Outcome: [`PaStatus::Valid`] when every check passed; [`PaStatus::Invalid`] when the
//! document data contradicts its signature (tampered data group, bad SOD signature, forged or
//! expired certificate, malformed SOD); [`PaStatus::Untrusted`] when the signature is intact
//! but no CSCA in the trust store vouches for the Document Signer; [`PaStatus::NotChecked`]
//! when there was nothing to check against (no trust store or no SOD).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use thiserror::Error;
use x509_cert::Certificate;

use super::lds::{self, Dg15, LdsError};
use super::mrz::{Mrz, MrzKey};
use super::tlv::{self, Tlv, TlvError};

pub mod pki;

/// Object identifiers used by passive and active authentication.
pub mod oids {
    use const_oid::ObjectIdentifier;

    /// id-signedData.
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// id-icao-mrtd-security-ldsSecurityObject.
    pub const LDS_SECURITY_OBJECT: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.23.136.1.1.1");
    /// id-icao-cscaMasterList.
    pub const CSCA_MASTER_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.2");
    /// contentType attribute.
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    /// messageDigest attribute.
    pub const MESSAGE_DIGEST: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    /// signingTime attribute.
    pub const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
    /// SHA-1.
    pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    /// SHA-224.
    pub const SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.4");
    /// SHA-256.
    pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// SHA-384.
    pub const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
    /// SHA-512.
    pub const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
    /// rsaEncryption.
    pub const RSA_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    /// sha1WithRSAEncryption.
    pub const SHA1_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    /// sha384WithRSAEncryption.
    pub const SHA384_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    /// sha512WithRSAEncryption.
    pub const SHA512_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
    /// sha224WithRSAEncryption.
    pub const SHA224_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.14");
    /// id-RSASSA-PSS.
    pub const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
    /// id-mgf1.
    pub const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
    /// id-ecPublicKey.
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// ecdsa-with-SHA1.
    pub const ECDSA_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
    /// ecdsa-with-SHA224.
    pub const ECDSA_SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.1");
    /// ecdsa-with-SHA256.
    pub const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    /// ecdsa-with-SHA384.
    pub const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    /// ecdsa-with-SHA512.
    pub const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
    /// prime256v1 / NIST P-256.
    pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    /// secp384r1 / NIST P-384.
    pub const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    /// brainpoolP256r1.
    pub const BRAINPOOL_P256R1: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.7");
    /// brainpoolP384r1.
    pub const BRAINPOOL_P384R1: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.11");
}

/// Why passive or active authentication failed, precisely enough for the decision record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PaError {
    /// EF.SOD (or a master list) has broken TLV framing.
    #[error("{what}: {source}")]
    Tlv {
        /// Which structure.
        what: &'static str,
        /// The TLV defect.
        source: TlvError,
    },
    /// A structure is well framed but not what the standard requires.
    #[error("{what}: bad structure at offset {offset}: {detail}")]
    Structure {
        /// Which structure.
        what: &'static str,
        /// Offset of the offending element.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
    /// An LDS file could not be parsed.
    #[error(transparent)]
    Lds(#[from] LdsError),
    /// An algorithm or curve this implementation does not support.
    #[error("unsupported {what}: {oid}")]
    UnknownAlgorithm {
        /// What kind of algorithm (digest, signature, curve).
        what: &'static str,
        /// Its OID.
        oid: String,
    },
    /// A certificate that does not decode.
    #[error("{which} certificate is malformed: {detail}")]
    BadCertificate {
        /// Which certificate (DS, CSCA, ...).
        which: String,
        /// The decoder's complaint.
        detail: String,
    },
    /// A public key that does not decode or is not on its curve.
    #[error("{which} public key is malformed: {detail}")]
    BadPublicKey {
        /// Whose key.
        which: String,
        /// What is wrong.
        detail: String,
    },
    /// A signature that does not verify.
    #[error("{what} signature does not verify: tampered data or wrong key")]
    BadSignature {
        /// Which signature.
        what: String,
    },
    /// A data group whose hash differs from the one signed in EF.SOD.
    #[error("DG{dg} hash differs from EF.SOD: the data group was tampered with")]
    HashMismatch {
        /// The data group number.
        dg: u8,
    },
    /// A data group read from the chip that EF.SOD does not cover.
    #[error("DG{dg} was read but EF.SOD holds no hash for it")]
    DataGroupNotInSod {
        /// The data group number.
        dg: u8,
    },
    /// The messageDigest signed attribute does not match the LDS security object.
    #[error("messageDigest attribute does not match the LDS security object: tampered EF.SOD")]
    MessageDigestMismatch,
    /// EF.SOD carries no certificate matching its signer.
    #[error("EF.SOD carries no Document Signer certificate matching its signer identifier")]
    NoDsCertificate,
    /// No CSCA in the trust store has the DS certificate's issuer name.
    #[error("no CSCA in the trust store issued the DS certificate (issuer {issuer})")]
    NoTrustAnchor {
        /// The DS issuer name.
        issuer: String,
    },
    /// CSCAs with the right name exist but none signed the DS certificate.
    #[error("DS certificate (issuer {issuer}) is not signed by any trusted CSCA of that name")]
    ChainSignature {
        /// The DS issuer name.
        issuer: String,
    },
    /// A certificate outside its validity period at the checking time.
    #[error("{which} certificate is not valid at {at} (valid {not_before} to {not_after})")]
    CertificateNotValid {
        /// Which certificate.
        which: String,
        /// The checking time.
        at: String,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// A trust-store file that could not be read.
    #[error("trust store {path}: {detail}")]
    TrustStore {
        /// The file or directory.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

impl PaError {
    /// The PA status this failure leads to.
    pub fn status(&self) -> PaStatus {
        match self {
            PaError::NoDsCertificate
            | PaError::NoTrustAnchor { .. }
            | PaError::ChainSignature { .. }
            | PaError::TrustStore { .. } => PaStatus::Untrusted,
            _ => PaStatus::Invalid,
        }
    }
}

fn tlv_err(what: &'static str) -> impl Fn(TlvError) -> PaError {
    move |source| PaError::Tlv { what, source }
}

fn bad(what: &'static str, offset: usize, detail: impl Into<String>) -> PaError {
    PaError::Structure {
        what,
        offset,
        detail: detail.into(),
    }
}

/// A signature that does not verify under the given key and scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("signature does not verify")]
pub struct SignatureMismatch;

/// Digest algorithms used by ICAO 9303.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum HashAlg {
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// The algorithm for a digest OID.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<HashAlg> {
        Some(match *o {
            oids::SHA1 => HashAlg::Sha1,
            oids::SHA224 => HashAlg::Sha224,
            oids::SHA256 => HashAlg::Sha256,
            oids::SHA384 => HashAlg::Sha384,
            oids::SHA512 => HashAlg::Sha512,
            _ => return None,
        })
    }

    /// The digest OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlg::Sha1 => oids::SHA1,
            HashAlg::Sha224 => oids::SHA224,
            HashAlg::Sha256 => oids::SHA256,
            HashAlg::Sha384 => oids::SHA384,
            HashAlg::Sha512 => oids::SHA512,
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha224 => sha2::Sha224::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// Elliptic curves supported for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// brainpoolP256r1.
    BrainpoolP256r1,
    /// brainpoolP384r1.
    BrainpoolP384r1,
}

impl Curve {
    fn from_oid(o: &ObjectIdentifier) -> Option<Curve> {
        Some(match *o {
            oids::P256 => Curve::P256,
            oids::P384 => Curve::P384,
            oids::BRAINPOOL_P256R1 => Curve::BrainpoolP256r1,
            oids::BRAINPOOL_P384R1 => Curve::BrainpoolP384r1,
            _ => return None,
        })
    }

    /// The named-curve OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => oids::P256,
            Curve::P384 => oids::P384,
            Curve::BrainpoolP256r1 => oids::BRAINPOOL_P256R1,
            Curve::BrainpoolP384r1 => oids::BRAINPOOL_P384R1,
        }
    }

    /// Field size in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 | Curve::BrainpoolP256r1 => 32,
            Curve::P384 | Curve::BrainpoolP384r1 => 48,
        }
    }

    /// Matches explicit domain parameters (as many CSCA certificates carry them) by prime.
    fn from_prime(p: &[u8]) -> Option<Curve> {
        let p: &[u8] = match p {
            [0, rest @ ..] => rest,
            _ => p,
        };
        const P256_P: [u8; 32] =
            hex_literal::hex!("FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF");
        const BP256_P: [u8; 32] =
            hex_literal::hex!("A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377");
        const P384_P: [u8; 48] = hex_literal::hex!(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF"
        );
        const BP384_P: [u8; 48] = hex_literal::hex!(
            "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB71123ACD3A729901D1A71874700133107EC53"
        );
        if p == P256_P {
            Some(Curve::P256)
        } else if p == BP256_P {
            Some(Curve::BrainpoolP256r1)
        } else if p == P384_P {
            Some(Curve::P384)
        } else if p == BP384_P {
            Some(Curve::BrainpoolP384r1)
        } else {
            None
        }
    }
}

/// A verification public key (from a certificate or DG15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA.
    Rsa(rsa::PublicKey),
    /// An EC point (SEC1 encoding) on a supported curve, already validated.
    Ec {
        /// The curve.
        curve: Curve,
        /// SEC1 point encoding.
        point: Vec<u8>,
    },
}

/// A signature scheme with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(HashAlg),
    /// RSASSA-PSS with MGF1 over the same hash.
    RsaPss {
        /// Message and MGF1 hash.
        hash: HashAlg,
        /// Salt length in bytes.
        salt_len: usize,
    },
    /// ECDSA.
    Ecdsa(HashAlg),
}

impl SignatureScheme {
    /// The hash the scheme applies to the message.
    pub fn hash(self) -> HashAlg {
        match self {
            SignatureScheme::RsaPkcs1(h)
            | SignatureScheme::RsaPss { hash: h, .. }
            | SignatureScheme::Ecdsa(h) => h,
        }
    }

    /// A short name for reports, e.g. `ecdsa-with-SHA256`.
    pub fn name(self) -> String {
        match self {
            SignatureScheme::RsaPkcs1(h) => format!("{h:?}WithRSAEncryption").to_lowercase(),
            SignatureScheme::RsaPss { hash, salt_len } => {
                format!("RSASSA-PSS({hash:?}, salt {salt_len})")
            }
            SignatureScheme::Ecdsa(h) => format!("ecdsa-with-{h:?}").to_uppercase(),
        }
    }

    /// Parses an AlgorithmIdentifier (DER). `digest` is the separately given digest
    /// (SignerInfo.digestAlgorithm) used when the identifier names only the key type.
    pub fn from_algorithm_identifier(
        der: &[u8],
        digest: Option<HashAlg>,
    ) -> Result<SignatureScheme, PaError> {
        const W: &str = "signature AlgorithmIdentifier";
        let (o, params) = parse_algorithm_identifier(W, der)?;
        let need_digest = || {
            digest.ok_or(PaError::UnknownAlgorithm {
                what: "signature algorithm without a digest",
                oid: o.to_string(),
            })
        };
        Ok(match o {
            oids::SHA1_WITH_RSA => SignatureScheme::RsaPkcs1(HashAlg::Sha1),
            oids::SHA224_WITH_RSA => SignatureScheme::RsaPkcs1(HashAlg::Sha224),
            oids::SHA256_WITH_RSA => SignatureScheme::RsaPkcs1(HashAlg::Sha256),
            oids::SHA384_WITH_RSA => SignatureScheme::RsaPkcs1(HashAlg::Sha384),
            oids::SHA512_WITH_RSA => SignatureScheme::RsaPkcs1(HashAlg::Sha512),
            oids::RSA_ENCRYPTION => SignatureScheme::RsaPkcs1(need_digest()?),
            oids::ECDSA_SHA1 => SignatureScheme::Ecdsa(HashAlg::Sha1),
            oids::ECDSA_SHA224 => SignatureScheme::Ecdsa(HashAlg::Sha224),
            oids::ECDSA_SHA256 => SignatureScheme::Ecdsa(HashAlg::Sha256),
            oids::ECDSA_SHA384 => SignatureScheme::Ecdsa(HashAlg::Sha384),
            oids::ECDSA_SHA512 => SignatureScheme::Ecdsa(HashAlg::Sha512),
            oids::EC_PUBLIC_KEY => SignatureScheme::Ecdsa(need_digest()?),
            oids::RSASSA_PSS => parse_pss_params(params)?,
            other => {
                return Err(PaError::UnknownAlgorithm {
                    what: "signature algorithm",
                    oid: other.to_string(),
                })
            }
        })
    }

    /// Encodes the AlgorithmIdentifier for this scheme (DER).
    pub fn algorithm_identifier(self) -> Vec<u8> {
        let with_null = |o: ObjectIdentifier| {
            tlv::encode_constructed(
                0x30,
                &[tlv::encode(0x06, o.as_bytes()), tlv::encode(0x05, &[])],
            )
        };
        match self {
            SignatureScheme::RsaPkcs1(h) => with_null(match h {
                HashAlg::Sha1 => oids::SHA1_WITH_RSA,
                HashAlg::Sha224 => oids::SHA224_WITH_RSA,
                HashAlg::Sha256 => oids::SHA256_WITH_RSA,
                HashAlg::Sha384 => oids::SHA384_WITH_RSA,
                HashAlg::Sha512 => oids::SHA512_WITH_RSA,
            }),
            SignatureScheme::Ecdsa(h) => {
                let o = match h {
                    HashAlg::Sha1 => oids::ECDSA_SHA1,
                    HashAlg::Sha224 => oids::ECDSA_SHA224,
                    HashAlg::Sha256 => oids::ECDSA_SHA256,
                    HashAlg::Sha384 => oids::ECDSA_SHA384,
                    HashAlg::Sha512 => oids::ECDSA_SHA512,
                };
                tlv::encode_constructed(0x30, &[tlv::encode(0x06, o.as_bytes())])
            }
            SignatureScheme::RsaPss { hash, salt_len } => {
                let hash_alg = with_null(hash.oid());
                let mgf = tlv::encode_constructed(
                    0x30,
                    &[tlv::encode(0x06, oids::MGF1.as_bytes()), hash_alg.clone()],
                );
                let salt = tlv::encode(0x02, &der_uint_bytes(salt_len as u64));
                let params = tlv::encode_constructed(
                    0x30,
                    &[
                        tlv::encode(0xA0, &hash_alg),
                        tlv::encode(0xA1, &mgf),
                        tlv::encode(0xA2, &salt),
                    ],
                );
                tlv::encode_constructed(
                    0x30,
                    &[tlv::encode(0x06, oids::RSASSA_PSS.as_bytes()), params],
                )
            }
        }
    }
}

fn der_uint_bytes(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|b| **b == 0).count();
    let mut out = bytes.get(skip..).unwrap_or_default().to_vec();
    if out.first().is_some_and(|b| b & 0x80 != 0) {
        out.insert(0, 0);
    }
    out
}

fn small_uint(what: &'static str, t: &Tlv<'_>) -> Result<u64, PaError> {
    if t.tag.0 != 0x02 || t.value.is_empty() || t.value.len() > 8 {
        return Err(bad(what, t.offset, "expected a small non-negative INTEGER"));
    }
    if t.value.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(bad(what, t.offset, "negative INTEGER"));
    }
    Ok(t.value.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
}

fn parse_oid(what: &'static str, t: &Tlv<'_>) -> Result<ObjectIdentifier, PaError> {
    if t.tag.0 != 0x06 {
        return Err(bad(
            what,
            t.offset,
            format!("expected an OID, found tag {}", t.tag),
        ));
    }
    ObjectIdentifier::from_bytes(t.value).map_err(|e| bad(what, t.offset, format!("bad OID: {e}")))
}

/// Parses an AlgorithmIdentifier into (OID, raw parameters element if any).
fn parse_algorithm_identifier<'a>(
    what: &'static str,
    der: &'a [u8],
) -> Result<(ObjectIdentifier, Option<Tlv<'a>>), PaError> {
    let seq = Tlv::parse_exact(der, 0x30).map_err(tlv_err(what))?;
    let kids = seq.children().map_err(tlv_err(what))?;
    let first = kids
        .first()
        .ok_or_else(|| bad(what, 0, "empty AlgorithmIdentifier"))?;
    let o = parse_oid(what, first)?;
    let params = kids.get(1).copied().filter(|p| p.tag.0 != 0x05);
    Ok((o, params))
}

fn parse_pss_params(params: Option<Tlv<'_>>) -> Result<SignatureScheme, PaError> {
    const W: &str = "RSASSA-PSS parameters";
    let mut hash = HashAlg::Sha1;
    let mut mgf_hash = HashAlg::Sha1;
    let mut salt_len = 20usize;
    if let Some(p) = params {
        for f in p.children().map_err(tlv_err(W))? {
            let inner = Tlv::parse_exact(
                f.value,
                match f.value.first() {
                    Some(t) => u32::from(*t),
                    None => return Err(bad(W, f.offset, "empty field")),
                },
            )
            .map_err(tlv_err(W))?;
            match f.tag.0 {
                0xA0 => {
                    let (o, _) = parse_algorithm_identifier(W, inner.raw)?;
                    hash = HashAlg::from_oid(&o).ok_or(PaError::UnknownAlgorithm {
                        what: "PSS hash",
                        oid: o.to_string(),
                    })?;
                }
                0xA1 => {
                    let (o, mp) = parse_algorithm_identifier(W, inner.raw)?;
                    if o != oids::MGF1 {
                        return Err(PaError::UnknownAlgorithm {
                            what: "PSS mask generation function",
                            oid: o.to_string(),
                        });
                    }
                    let mp = mp.ok_or_else(|| bad(W, f.offset, "MGF1 without hash"))?;
                    let (ho, _) = parse_algorithm_identifier(W, mp.raw)?;
                    mgf_hash = HashAlg::from_oid(&ho).ok_or(PaError::UnknownAlgorithm {
                        what: "MGF1 hash",
                        oid: ho.to_string(),
                    })?;
                }
                0xA2 => salt_len = small_uint(W, &inner)? as usize,
                0xA3 => {
                    if small_uint(W, &inner)? != 1 {
                        return Err(bad(W, f.offset, "trailer field must be 1"));
                    }
                }
                _ => return Err(bad(W, f.offset, format!("unknown field {}", f.tag))),
            }
        }
    }
    if mgf_hash != hash {
        return Err(PaError::UnknownAlgorithm {
            what: "PSS with different message and MGF1 hashes",
            oid: format!("{hash:?}/{mgf_hash:?}"),
        });
    }
    Ok(SignatureScheme::RsaPss { hash, salt_len })
}

fn bit_string_bytes<'a>(what: &'static str, t: &Tlv<'a>) -> Result<&'a [u8], PaError> {
    if t.tag.0 != 0x03 {
        return Err(bad(what, t.offset, "expected a BIT STRING"));
    }
    match t.value {
        [0, rest @ ..] => Ok(rest),
        _ => Err(bad(what, t.offset, "BIT STRING with unused bits")),
    }
}

impl PublicKey {
    /// Decodes a SubjectPublicKeyInfo (DER). `which` names the key in errors.
    pub fn from_spki(which: &str, der: &[u8]) -> Result<PublicKey, PaError> {
        const W: &str = "SubjectPublicKeyInfo";
        let bad_key = |detail: String| PaError::BadPublicKey {
            which: which.to_string(),
            detail,
        };
        let seq = Tlv::parse_exact(der, 0x30).map_err(tlv_err(W))?;
        let kids = seq.children().map_err(tlv_err(W))?;
        let [alg, key] = kids.as_slice() else {
            return Err(bad(W, 0, "expected algorithm and key"));
        };
        let (o, params) = parse_algorithm_identifier(W, alg.raw)?;
        let key_bytes = bit_string_bytes(W, key)?;
        match o {
            oids::RSA_ENCRYPTION => {
                use rsa::pkcs1::DecodeRsaPublicKey;
                let k = rsa::PublicKey::from_pkcs1_der(key_bytes)
                    .map_err(|e| bad_key(format!("RSA key: {e}")))?;
                Ok(PublicKey::Rsa(k))
            }
            oids::EC_PUBLIC_KEY => {
                let params = params.ok_or_else(|| bad_key("EC key without curve".into()))?;
                let curve = match params.tag.0 {
                    0x06 => {
                        let c = parse_oid(W, &params)?;
                        Curve::from_oid(&c).ok_or(PaError::UnknownAlgorithm {
                            what: "elliptic curve",
                            oid: c.to_string(),
                        })?
                    }
                    0x30 => explicit_curve(&params)?,
                    _ => return Err(bad_key("EC parameters neither named nor explicit".into())),
                };
                let point = key_bytes.to_vec();
                validate_point(curve, &point).map_err(bad_key)?;
                Ok(PublicKey::Ec { curve, point })
            }
            other => Err(PaError::UnknownAlgorithm {
                what: "public key algorithm",
                oid: other.to_string(),
            }),
        }
    }

    /// Encodes as SubjectPublicKeyInfo (DER).
    pub fn to_spki(&self) -> Vec<u8> {
        match self {
            PublicKey::Rsa(k) => {
                use rsa::pkcs1::EncodeRsaPublicKey;
                let body = k
                    .to_pkcs1_der()
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_default();
                let alg = tlv::encode_constructed(
                    0x30,
                    &[
                        tlv::encode(0x06, oids::RSA_ENCRYPTION.as_bytes()),
                        tlv::encode(0x05, &[]),
                    ],
                );
                let mut bits = vec![0u8];
                bits.extend_from_slice(&body);
                tlv::encode_constructed(0x30, &[alg, tlv::encode(0x03, &bits)])
            }
            PublicKey::Ec { curve, point } => {
                let alg = tlv::encode_constructed(
                    0x30,
                    &[
                        tlv::encode(0x06, oids::EC_PUBLIC_KEY.as_bytes()),
                        tlv::encode(0x06, curve.oid().as_bytes()),
                    ],
                );
                let mut bits = vec![0u8];
                bits.extend_from_slice(point);
                tlv::encode_constructed(0x30, &[alg, tlv::encode(0x03, &bits)])
            }
        }
    }

    /// Verifies `signature` over `message` with `scheme`. ECDSA signatures are DER
    /// (`Ecdsa-Sig-Value`) when `der_ecdsa`, else plain `r‖s` (BSI TR-03111).
    pub fn verify(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
        signature: &[u8],
        der_ecdsa: bool,
    ) -> Result<(), SignatureMismatch> {
        let digest = scheme.hash().digest(message);
        self.verify_prehash(scheme, &digest, signature, der_ecdsa)
    }

    /// Like [`PublicKey::verify`] with the message digest already computed.
    pub fn verify_prehash(
        &self,
        scheme: SignatureScheme,
        digest: &[u8],
        signature: &[u8],
        der_ecdsa: bool,
    ) -> Result<(), SignatureMismatch> {
        match (self, scheme) {
            (PublicKey::Rsa(k), SignatureScheme::RsaPkcs1(h)) => {
                let padding = match h {
                    HashAlg::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                    HashAlg::Sha224 => rsa::Pkcs1v15Sign::new::<sha2::Sha224>(),
                    HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                    HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                };
                k.verify(padding, digest, signature)
                    .map_err(|_| SignatureMismatch)
            }
            (PublicKey::Rsa(k), SignatureScheme::RsaPss { hash, salt_len }) => {
                let r = match hash {
                    HashAlg::Sha1 => k.verify(
                        rsa::Pss::<sha1::Sha1>::new_with_salt(salt_len),
                        digest,
                        signature,
                    ),
                    HashAlg::Sha224 => k.verify(
                        rsa::Pss::<sha2::Sha224>::new_with_salt(salt_len),
                        digest,
                        signature,
                    ),
                    HashAlg::Sha256 => k.verify(
                        rsa::Pss::<sha2::Sha256>::new_with_salt(salt_len),
                        digest,
                        signature,
                    ),
                    HashAlg::Sha384 => k.verify(
                        rsa::Pss::<sha2::Sha384>::new_with_salt(salt_len),
                        digest,
                        signature,
                    ),
                    HashAlg::Sha512 => k.verify(
                        rsa::Pss::<sha2::Sha512>::new_with_salt(salt_len),
                        digest,
                        signature,
                    ),
                };
                r.map_err(|_| SignatureMismatch)
            }
            (PublicKey::Ec { curve, point }, SignatureScheme::Ecdsa(_)) => {
                ecdsa_verify(*curve, point, digest, signature, der_ecdsa)
            }
            _ => Err(SignatureMismatch),
        }
    }
}

macro_rules! ec_verify {
    ($c:ty, $point:expr, $digest:expr, $sig:expr, $der:expr) => {{
        use ecdsa::signature::hazmat::PrehashVerifier;
        let vk =
            ecdsa::VerifyingKey::<$c>::from_sec1_bytes($point).map_err(|_| SignatureMismatch)?;
        let sig = if $der {
            ecdsa::Signature::<$c>::from_der($sig)
        } else {
            ecdsa::Signature::<$c>::from_slice($sig)
        }
        .map_err(|_| SignatureMismatch)?;
        vk.verify_prehash($digest, &sig)
            .map_err(|_| SignatureMismatch)
    }};
}

fn ecdsa_verify(
    curve: Curve,
    point: &[u8],
    digest: &[u8],
    sig: &[u8],
    der: bool,
) -> Result<(), SignatureMismatch> {
    match curve {
        Curve::P256 => ec_verify!(p256::NistP256, point, digest, sig, der),
        Curve::P384 => ec_verify!(p384::NistP384, point, digest, sig, der),
        Curve::BrainpoolP256r1 => ec_verify!(bp256::BrainpoolP256r1, point, digest, sig, der),
        Curve::BrainpoolP384r1 => ec_verify!(bp384::BrainpoolP384r1, point, digest, sig, der),
    }
}

fn validate_point(curve: Curve, point: &[u8]) -> Result<(), String> {
    let ok = match curve {
        Curve::P256 => ecdsa::VerifyingKey::<p256::NistP256>::from_sec1_bytes(point).is_ok(),
        Curve::P384 => ecdsa::VerifyingKey::<p384::NistP384>::from_sec1_bytes(point).is_ok(),
        Curve::BrainpoolP256r1 => {
            ecdsa::VerifyingKey::<bp256::BrainpoolP256r1>::from_sec1_bytes(point).is_ok()
        }
        Curve::BrainpoolP384r1 => {
            ecdsa::VerifyingKey::<bp384::BrainpoolP384r1>::from_sec1_bytes(point).is_ok()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("point is not on {curve:?}"))
    }
}

/// Explicit ECParameters: identify the curve by its prime; the point is later validated on
/// the named curve's own equation, and verification uses the named curve's generator.
fn explicit_curve(params: &Tlv<'_>) -> Result<Curve, PaError> {
    const W: &str = "explicit EC parameters";
    let kids = params.children().map_err(tlv_err(W))?;
    let field = kids
        .get(1)
        .ok_or_else(|| bad(W, params.offset, "no fieldID"))?;
    let fk = field.children().map_err(tlv_err(W))?;
    let prime = fk
        .get(1)
        .filter(|t| t.tag.0 == 0x02)
        .ok_or_else(|| bad(W, field.offset, "fieldID has no prime"))?;
    Curve::from_prime(prime.value).ok_or(PaError::UnknownAlgorithm {
        what: "explicit elliptic curve",
        oid: "(unrecognised prime)".into(),
    })
}

/// Who signed a SignerInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    /// IssuerAndSerialNumber: issuer Name DER and serial INTEGER content.
    IssuerSerial {
        /// Issuer Name, DER.
        issuer: Vec<u8>,
        /// Serial number bytes (INTEGER content).
        serial: Vec<u8>,
    },
    /// SubjectKeyIdentifier.
    SubjectKeyId(Vec<u8>),
}

/// A parsed CMS SignedData with exactly one signer (EF.SOD, master lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedData {
    /// eContentType.
    pub content_type: ObjectIdentifier,
    /// The encapsulated content (OCTET STRING value).
    pub content: Vec<u8>,
    /// Certificates carried in the SignedData, DER each.
    pub certificates: Vec<Vec<u8>>,
    /// The signer identifier.
    pub signer_id: SignerId,
    /// SignerInfo.digestAlgorithm.
    pub digest_algorithm: HashAlg,
    /// The signed attributes as signed (re-tagged as SET, 0x31), if present.
    pub signed_attrs: Option<Vec<u8>>,
    /// The messageDigest signed attribute.
    pub message_digest: Option<Vec<u8>>,
    /// The contentType signed attribute.
    pub content_type_attr: Option<ObjectIdentifier>,
    /// The signature scheme.
    pub signature_scheme: SignatureScheme,
    /// The signature value.
    pub signature: Vec<u8>,
}

impl SignedData {
    /// Parses a CMS ContentInfo holding SignedData.
    pub fn parse(what: &'static str, der: &[u8]) -> Result<SignedData, PaError> {
        let e = tlv_err(what);
        let ci = Tlv::parse_exact(der, 0x30).map_err(&e)?;
        let ck = ci.children().map_err(&e)?;
        let [ct, content] = ck.as_slice() else {
            return Err(bad(what, 0, "ContentInfo needs contentType and content"));
        };
        if parse_oid(what, ct)? != oids::SIGNED_DATA {
            return Err(bad(what, ct.offset, "content type is not signedData"));
        }
        if content.tag.0 != 0xA0 {
            return Err(bad(what, content.offset, "content is not [0] EXPLICIT"));
        }
        let sd_kids = content.children().map_err(&e)?;
        let sd = sd_kids
            .first()
            .filter(|t| t.tag.0 == 0x30 && sd_kids.len() == 1)
            .ok_or_else(|| bad(what, content.offset, "SignedData is not one SEQUENCE"))?;
        let mut it = sd.children().map_err(&e)?.into_iter().peekable();
        let version = it
            .next()
            .ok_or_else(|| bad(what, sd.offset, "no version"))?;
        if !matches!(small_uint(what, &version)?, 1 | 3) {
            return Err(bad(
                what,
                version.offset,
                "SignedData version must be 1 or 3",
            ));
        }
        let digests = it
            .next()
            .filter(|t| t.tag.0 == 0x31)
            .ok_or_else(|| bad(what, sd.offset, "no digestAlgorithms SET"))?;
        let mut digest_oids = Vec::new();
        for d in digests.children().map_err(&e)? {
            digest_oids.push(parse_algorithm_identifier(what, d.raw)?.0);
        }
        let eci = it
            .next()
            .filter(|t| t.tag.0 == 0x30)
            .ok_or_else(|| bad(what, sd.offset, "no encapContentInfo"))?;
        let ek = eci.children().map_err(&e)?;
        let content_type = parse_oid(
            what,
            ek.first()
                .ok_or_else(|| bad(what, eci.offset, "no eContentType"))?,
        )?;
        let wrapped = ek.get(1).filter(|t| t.tag.0 == 0xA0).ok_or_else(|| {
            bad(
                what,
                eci.offset,
                "no eContent (detached content is not allowed)",
            )
        })?;
        let octets = Tlv::parse_exact(wrapped.value, 0x04).map_err(&e)?;
        let mut certificates = Vec::new();
        if it.peek().is_some_and(|t| t.tag.0 == 0xA0) {
            if let Some(certs) = it.next() {
                for c in certs.children().map_err(&e)? {
                    if c.tag.0 == 0x30 {
                        certificates.push(c.raw.to_vec());
                    }
                }
            }
        }
        if it.peek().is_some_and(|t| t.tag.0 == 0xA1) {
            it.next();
        }
        let signer_infos = it
            .next()
            .filter(|t| t.tag.0 == 0x31)
            .ok_or_else(|| bad(what, sd.offset, "no signerInfos SET"))?;
        if let Some(extra) = it.next() {
            return Err(bad(
                what,
                extra.offset,
                "unexpected element after signerInfos",
            ));
        }
        let infos = signer_infos.children().map_err(&e)?;
        let [si] = infos.as_slice() else {
            return Err(bad(
                what,
                signer_infos.offset,
                format!("expected exactly one SignerInfo, found {}", infos.len()),
            ));
        };
        if si.tag.0 != 0x30 {
            return Err(bad(what, si.offset, "SignerInfo is not a SEQUENCE"));
        }
        let mut sk = si.children().map_err(&e)?.into_iter().peekable();
        let v = sk
            .next()
            .ok_or_else(|| bad(what, si.offset, "SignerInfo has no version"))?;
        if !matches!(small_uint(what, &v)?, 1 | 3) {
            return Err(bad(what, v.offset, "SignerInfo version must be 1 or 3"));
        }
        let sid = sk
            .next()
            .ok_or_else(|| bad(what, si.offset, "SignerInfo has no sid"))?;
        let signer_id = match sid.tag.0 {
            0x30 => {
                let parts = sid.children().map_err(&e)?;
                let [issuer, serial] = parts.as_slice() else {
                    return Err(bad(
                        what,
                        sid.offset,
                        "IssuerAndSerialNumber needs 2 fields",
                    ));
                };
                if issuer.tag.0 != 0x30 || serial.tag.0 != 0x02 {
                    return Err(bad(what, sid.offset, "bad IssuerAndSerialNumber"));
                }
                SignerId::IssuerSerial {
                    issuer: issuer.raw.to_vec(),
                    serial: serial.value.to_vec(),
                }
            }
            0x80 => SignerId::SubjectKeyId(sid.value.to_vec()),
            _ => return Err(bad(what, sid.offset, "unknown signer identifier")),
        };
        let dalg = sk
            .next()
            .ok_or_else(|| bad(what, si.offset, "no digestAlgorithm"))?;
        let (doid, _) = parse_algorithm_identifier(what, dalg.raw)?;
        let digest_algorithm = HashAlg::from_oid(&doid).ok_or(PaError::UnknownAlgorithm {
            what: "digest algorithm",
            oid: doid.to_string(),
        })?;
        if !digest_oids.contains(&doid) {
            return Err(bad(
                what,
                digests.offset,
                "digestAlgorithms does not list the signer's digest algorithm",
            ));
        }
        let mut signed_attrs = None;
        let mut message_digest = None;
        let mut content_type_attr = None;
        if sk.peek().is_some_and(|t| t.tag.0 == 0xA0) {
            if let Some(attrs) = sk.next() {
                signed_attrs = Some(tlv::encode(0x31, attrs.value));
                for a in attrs.children().map_err(&e)? {
                    let ak = a.children().map_err(&e)?;
                    let [ao, vals] = ak.as_slice() else {
                        return Err(bad(what, a.offset, "Attribute needs type and values"));
                    };
                    let ao = parse_oid(what, ao)?;
                    let vk = vals.children().map_err(&e)?;
                    let [val] = vk.as_slice() else {
                        if ao == oids::MESSAGE_DIGEST || ao == oids::CONTENT_TYPE {
                            return Err(bad(what, vals.offset, "attribute must have one value"));
                        }
                        continue;
                    };
                    if ao == oids::MESSAGE_DIGEST {
                        if val.tag.0 != 0x04 {
                            return Err(bad(
                                what,
                                val.offset,
                                "messageDigest is not an OCTET STRING",
                            ));
                        }
                        message_digest = Some(val.value.to_vec());
                    } else if ao == oids::CONTENT_TYPE {
                        content_type_attr = Some(parse_oid(what, val)?);
                    }
                }
            }
        }
        let salg = sk
            .next()
            .ok_or_else(|| bad(what, si.offset, "no signatureAlgorithm"))?;
        let signature_scheme =
            SignatureScheme::from_algorithm_identifier(salg.raw, Some(digest_algorithm))?;
        let sig = sk
            .next()
            .filter(|t| t.tag.0 == 0x04)
            .ok_or_else(|| bad(what, si.offset, "no signature OCTET STRING"))?;
        Ok(SignedData {
            content_type,
            content: octets.value.to_vec(),
            certificates,
            signer_id,
            digest_algorithm,
            signed_attrs,
            message_digest,
            content_type_attr,
            signature_scheme,
            signature: sig.value.to_vec(),
        })
    }

    /// The certificate the signer identifier points to.
    pub fn signer_certificate(&self) -> Option<&[u8]> {
        self.certificates.iter().map(|c| c.as_slice()).find(|c| {
            let Ok(cert) = Certificate::from_der(c) else {
                return false;
            };
            match &self.signer_id {
                SignerId::IssuerSerial { issuer, serial } => {
                    let tbs = cert.tbs_certificate();
                    tbs.issuer().to_der().ok().as_deref() == Some(issuer.as_slice())
                        && tbs.serial_number().as_bytes() == serial.as_slice()
                }
                SignerId::SubjectKeyId(id) => {
                    subject_key_id(&cert).as_deref() == Some(id.as_slice())
                }
            }
        })
    }

    /// Checks the content digest attribute and the signature with `key`.
    pub fn verify_signature(&self, what: &str, key: &PublicKey) -> Result<(), PaError> {
        let signed: &[u8] = match &self.signed_attrs {
            Some(attrs) => {
                let md = self.message_digest.as_ref().ok_or_else(|| {
                    bad("SignerInfo", 0, "signed attributes without messageDigest")
                })?;
                if self.digest_algorithm.digest(&self.content) != *md {
                    return Err(PaError::MessageDigestMismatch);
                }
                if self
                    .content_type_attr
                    .is_some_and(|c| c != self.content_type)
                {
                    return Err(bad(
                        "SignerInfo",
                        0,
                        "contentType attribute differs from eContentType",
                    ));
                }
                attrs
            }
            None => &self.content,
        };
        key.verify(self.signature_scheme, signed, &self.signature, true)
            .map_err(|_| PaError::BadSignature {
                what: what.to_string(),
            })
    }
}

fn subject_key_id(cert: &Certificate) -> Option<Vec<u8>> {
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    cert.tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .ok()
        .flatten()
        .map(|(_, ski)| ski.0.as_bytes().to_vec())
}

fn authority_key_id(cert: &Certificate) -> Option<Vec<u8>> {
    use x509_cert::ext::pkix::AuthorityKeyIdentifier;
    cert.tbs_certificate()
        .get_extension::<AuthorityKeyIdentifier>()
        .ok()
        .flatten()
        .and_then(|(_, aki)| aki.key_identifier.map(|k| k.as_bytes().to_vec()))
}

/// The LDS security object signed inside EF.SOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdsSecurityObject {
    /// Version (0 for LDS 1.7, 1 with LDS version info).
    pub version: u64,
    /// Hash algorithm of the data-group hashes.
    pub hash_algorithm: HashAlg,
    /// Data-group number → hash.
    pub hashes: BTreeMap<u8, Vec<u8>>,
}

impl LdsSecurityObject {
    /// Parses the DER LDSSecurityObject.
    pub fn parse(der: &[u8]) -> Result<LdsSecurityObject, PaError> {
        const W: &str = "LDSSecurityObject";
        let e = tlv_err(W);
        let seq = Tlv::parse_exact(der, 0x30).map_err(&e)?;
        let kids = seq.children().map_err(&e)?;
        let (Some(v), Some(alg), Some(list)) = (kids.first(), kids.get(1), kids.get(2)) else {
            return Err(bad(
                W,
                0,
                "needs version, hashAlgorithm and dataGroupHashValues",
            ));
        };
        let version = small_uint(W, v)?;
        let (ho, _) = parse_algorithm_identifier(W, alg.raw)?;
        let hash_algorithm = HashAlg::from_oid(&ho).ok_or(PaError::UnknownAlgorithm {
            what: "LDS hash algorithm",
            oid: ho.to_string(),
        })?;
        let mut hashes = BTreeMap::new();
        for h in list.children().map_err(&e)? {
            let hk = h.children().map_err(&e)?;
            let [n, val] = hk.as_slice() else {
                return Err(bad(W, h.offset, "DataGroupHash needs number and value"));
            };
            let n = small_uint(W, n)?;
            let n = u8::try_from(n)
                .ok()
                .filter(|n| (1..=16).contains(n))
                .ok_or_else(|| bad(W, h.offset, format!("data-group number {n} out of range")))?;
            if val.tag.0 != 0x04 || val.value.len() != hash_algorithm.output_len() {
                return Err(bad(
                    W,
                    val.offset,
                    format!("DG{n} hash has the wrong form or length"),
                ));
            }
            if hashes.insert(n, val.value.to_vec()).is_some() {
                return Err(bad(W, h.offset, format!("DG{n} listed twice")));
            }
        }
        Ok(LdsSecurityObject {
            version,
            hash_algorithm,
            hashes,
        })
    }

    /// Encodes as DER (version 0, no LDS version info).
    pub fn encode(&self) -> Vec<u8> {
        let alg = tlv::encode_constructed(
            0x30,
            &[
                tlv::encode(0x06, self.hash_algorithm.oid().as_bytes()),
                tlv::encode(0x05, &[]),
            ],
        );
        let list: Vec<Vec<u8>> = self
            .hashes
            .iter()
            .map(|(n, h)| {
                tlv::encode_constructed(
                    0x30,
                    &[
                        tlv::encode(0x02, &der_uint_bytes(u64::from(*n))),
                        tlv::encode(0x04, h),
                    ],
                )
            })
            .collect();
        tlv::encode_constructed(
            0x30,
            &[
                tlv::encode(0x02, &der_uint_bytes(self.version)),
                alg,
                tlv::encode_constructed(0x30, &list),
            ],
        )
    }
}

/// A parsed EF.SOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sod {
    /// The CMS SignedData.
    pub signed_data: SignedData,
    /// The signed LDS security object.
    pub lds: LdsSecurityObject,
}

impl Sod {
    /// Parses EF.SOD (tag 77 around a CMS ContentInfo).
    pub fn parse(ef_sod: &[u8]) -> Result<Sod, PaError> {
        let ci = lds::sod_content(ef_sod)?;
        let signed_data = SignedData::parse("EF.SOD", ci)?;
        if signed_data.content_type != oids::LDS_SECURITY_OBJECT {
            return Err(bad(
                "EF.SOD",
                0,
                format!(
                    "eContentType {} is not ldsSecurityObject",
                    signed_data.content_type
                ),
            ));
        }
        let lds = LdsSecurityObject::parse(&signed_data.content)?;
        Ok(Sod { signed_data, lds })
    }
}

/// A trusted CSCA certificate.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    /// The decoded certificate.
    pub certificate: Certificate,
    /// Its DER.
    pub der: Vec<u8>,
    /// Where it came from (file path or "master list").
    pub source: String,
}

/// A set of CSCA certificates (trust anchors).
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> TrustStore {
        TrustStore::default()
    }

    /// The anchors.
    pub fn anchors(&self) -> &[TrustAnchor] {
        &self.anchors
    }

    /// Adds one DER certificate.
    pub fn add_der(&mut self, der: &[u8], source: &str) -> Result<(), PaError> {
        let certificate = Certificate::from_der(der).map_err(|e| PaError::BadCertificate {
            which: format!("CSCA ({source})"),
            detail: e.to_string(),
        })?;
        if !self.anchors.iter().any(|a| a.der == der) {
            self.anchors.push(TrustAnchor {
                certificate,
                der: der.to_vec(),
                source: source.to_string(),
            });
        }
        Ok(())
    }

    /// Adds every certificate of a PEM file, or the file itself if it is DER.
    pub fn add_file_bytes(&mut self, bytes: &[u8], source: &str) -> Result<usize, PaError> {
        if bytes.starts_with(b"-----BEGIN") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            let certs =
                Certificate::load_pem_chain(bytes).map_err(|e| PaError::BadCertificate {
                    which: format!("CSCA ({source})"),
                    detail: e.to_string(),
                })?;
            for c in &certs {
                let der = c.to_der().map_err(|e| PaError::BadCertificate {
                    which: format!("CSCA ({source})"),
                    detail: e.to_string(),
                })?;
                self.add_der(&der, source)?;
            }
            Ok(certs.len())
        } else {
            self.add_der(bytes, source)?;
            Ok(1)
        }
    }

    /// Loads every `.der`, `.cer`, `.crt` and `.pem` file of a directory; a `.ml` file is
    /// imported as an ICAO master list. Fails on the first unreadable or malformed file.
    pub fn load_dir(dir: &Path) -> Result<TrustStore, PaError> {
        let io_err = |path: &Path, e: std::io::Error| PaError::TrustStore {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let mut store = TrustStore::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| io_err(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| e.to_ascii_lowercase())
                .unwrap_or_default();
            let source = path.display().to_string();
            match ext.as_str() {
                "der" | "cer" | "crt" | "pem" => {
                    let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
                    store.add_file_bytes(&bytes, &source)?;
                }
                "ml" => {
                    let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
                    store.import_master_list(&bytes, &source)?;
                }
                _ => {}
            }
        }
        if store.anchors.is_empty() {
            return Err(PaError::TrustStore {
                path: dir.display().to_string(),
                detail: "no CSCA certificates (.der/.cer/.crt/.pem/.ml) found".into(),
            });
        }
        Ok(store)
    }

    /// Imports an ICAO CSCA master list (CMS SignedData over `CscaMasterList`). The list's
    /// signature is verified with its signer certificate, and that signer must be issued by
    /// one of the CSCAs the list contains; deciding whether the issuing state itself is to be
    /// trusted is left to whoever provisions the list. Returns how many certificates were added.
    pub fn import_master_list(&mut self, data: &[u8], source: &str) -> Result<usize, PaError> {
        const W: &str = "CSCA master list";
        let sd = SignedData::parse(W, data)?;
        if sd.content_type != oids::CSCA_MASTER_LIST {
            return Err(bad(W, 0, "eContentType is not cscaMasterList"));
        }
        let signer = sd.signer_certificate().ok_or(PaError::NoDsCertificate)?;
        let signer_cert = parse_cert("master-list signer", signer)?;
        let key = cert_public_key("master-list signer", &signer_cert)?;
        sd.verify_signature("master list", &key)?;
        let seq = Tlv::parse_exact(&sd.content, 0x30).map_err(tlv_err(W))?;
        let kids = seq.children().map_err(tlv_err(W))?;
        let list = kids
            .get(1)
            .filter(|t| t.tag.0 == 0x31)
            .ok_or_else(|| bad(W, seq.offset, "no certList SET"))?;
        let mut inner = TrustStore::new();
        for c in list.children().map_err(tlv_err(W))? {
            inner.add_der(c.raw, source)?;
        }
        inner
            .find_issuer("master-list signer", &signer_cert, signer, None)
            .map_err(|_| PaError::ChainSignature {
                issuer: signer_cert.tbs_certificate().issuer().to_string(),
            })?;
        let n = inner.anchors.len();
        for a in inner.anchors {
            self.add_der(&a.der, source)?;
        }
        Ok(n)
    }

    /// Finds the anchor that issued `cert` (name match, AKI/SKI match when both present, and
    /// a verifying signature). Checks validity of both at `at` when given.
    fn find_issuer(
        &self,
        which: &str,
        cert: &Certificate,
        cert_der: &[u8],
        at: Option<SystemTime>,
    ) -> Result<&TrustAnchor, PaError> {
        let issuer = cert.tbs_certificate().issuer();
        let aki = authority_key_id(cert);
        let candidates: Vec<&TrustAnchor> = self
            .anchors
            .iter()
            .filter(|a| a.certificate.tbs_certificate().subject() == issuer)
            .filter(|a| match (&aki, subject_key_id(&a.certificate)) {
                (Some(x), Some(y)) => *x == y,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(PaError::NoTrustAnchor {
                issuer: issuer.to_string(),
            });
        }
        let (tbs, scheme, sig) = split_certificate(which, cert_der)?;
        let mut found = None;
        for a in candidates {
            let Ok(key) = cert_public_key("CSCA", &a.certificate) else {
                continue;
            };
            if key.verify(scheme, tbs, sig, true).is_ok() {
                found = Some(a);
                break;
            }
        }
        let anchor = found.ok_or_else(|| PaError::ChainSignature {
            issuer: issuer.to_string(),
        })?;
        if let Some(at) = at {
            check_validity("CSCA", &anchor.certificate, at)?;
        }
        Ok(anchor)
    }
}

fn parse_cert(which: &str, der: &[u8]) -> Result<Certificate, PaError> {
    Certificate::from_der(der).map_err(|e| PaError::BadCertificate {
        which: which.to_string(),
        detail: e.to_string(),
    })
}

fn cert_public_key(which: &str, cert: &Certificate) -> Result<PublicKey, PaError> {
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| PaError::BadCertificate {
            which: which.to_string(),
            detail: e.to_string(),
        })?;
    PublicKey::from_spki(which, &spki)
}

/// Splits a certificate into (tbsCertificate bytes as encoded, signature scheme, signature).
fn split_certificate<'a>(
    which: &str,
    der: &'a [u8],
) -> Result<(&'a [u8], SignatureScheme, &'a [u8]), PaError> {
    const W: &str = "certificate";
    let seq = Tlv::parse_exact(der, 0x30).map_err(tlv_err(W))?;
    let kids = seq.children().map_err(tlv_err(W))?;
    let [tbs, alg, sig] = kids.as_slice() else {
        return Err(PaError::BadCertificate {
            which: which.to_string(),
            detail: "expected tbsCertificate, signatureAlgorithm, signature".into(),
        });
    };
    let scheme = SignatureScheme::from_algorithm_identifier(alg.raw, None)?;
    Ok((tbs.raw, scheme, bit_string_bytes(W, sig)?))
}

fn fmt_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    match der::DateTime::from_unix_duration(secs) {
        Ok(dt) => dt.to_string(),
        Err(_) => format!("{}s", secs.as_secs()),
    }
}

fn check_validity(which: &str, cert: &Certificate, at: SystemTime) -> Result<(), PaError> {
    let v = cert.tbs_certificate().validity();
    let nb = v.not_before.to_system_time();
    let na = v.not_after.to_system_time();
    if at < nb || at > na {
        return Err(PaError::CertificateNotValid {
            which: which.to_string(),
            at: fmt_time(at),
            not_before: fmt_time(nb),
            not_after: fmt_time(na),
        });
    }
    Ok(())
}

/// Outcome of passive authentication: the gate's own vocabulary type (one definition).
pub use crate::types::PaStatus;

/// The passive-authentication result with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaReport {
    /// The status.
    pub status: PaStatus,
    /// One human sentence explaining the status.
    pub detail: String,
    /// The typed failure, when not valid.
    #[serde(skip)]
    pub error: Option<PaError>,
    /// Data groups whose hashes were compared and matched.
    pub data_groups_verified: Vec<u8>,
    /// SOD signature scheme, when parsed.
    pub signature_scheme: Option<String>,
    /// DS certificate subject, when known.
    pub ds_subject: Option<String>,
    /// CSCA subject the chain ended at, when found.
    pub csca_subject: Option<String>,
}

/// Runs passive authentication.
///
/// `data_groups` maps data-group numbers to the raw file bytes read from the chip; every one
/// of them must be listed in EF.SOD with a matching hash. `trust` is the CSCA trust store
/// (`None`: the SOD is checked for internal consistency only and the status is at best
/// `not_checked`). Certificate validity is checked at `at`.
pub fn verify(
    ef_sod: Option<&[u8]>,
    data_groups: &BTreeMap<u8, Vec<u8>>,
    trust: Option<&TrustStore>,
    at: SystemTime,
) -> PaReport {
    let mut report = PaReport {
        status: PaStatus::NotChecked,
        detail: String::new(),
        error: None,
        data_groups_verified: Vec::new(),
        signature_scheme: None,
        ds_subject: None,
        csca_subject: None,
    };
    let Some(ef_sod) = ef_sod else {
        report.detail = "EF.SOD was not read".into();
        return report;
    };
    match run(ef_sod, data_groups, trust, at, &mut report) {
        Ok(()) => {
            if trust.is_some() {
                report.status = PaStatus::Valid;
                report.detail = format!(
                    "SOD signature, DS chain to CSCA and hashes of DG {:?} verified",
                    report.data_groups_verified
                );
            } else {
                report.detail = "no CSCA trust store: SOD signature and data-group hashes are consistent, chain not checked".into();
            }
        }
        Err(e) => {
            report.status = e.status();
            report.detail = e.to_string();
            report.error = Some(e);
        }
    }
    report
}

fn run(
    ef_sod: &[u8],
    data_groups: &BTreeMap<u8, Vec<u8>>,
    trust: Option<&TrustStore>,
    at: SystemTime,
    report: &mut PaReport,
) -> Result<(), PaError> {
    let sod = Sod::parse(ef_sod)?;
    report.signature_scheme = Some(sod.signed_data.signature_scheme.name());
    // 1. Data-group hashes: document data must match what was signed.
    for (dg, bytes) in data_groups {
        let expected = sod
            .lds
            .hashes
            .get(dg)
            .ok_or(PaError::DataGroupNotInSod { dg: *dg })?;
        if sod.lds.hash_algorithm.digest(bytes) != *expected {
            return Err(PaError::HashMismatch { dg: *dg });
        }
    }
    // 2. SOD signature with the DS key.
    let ds_der = sod
        .signed_data
        .signer_certificate()
        .ok_or(PaError::NoDsCertificate)?;
    let ds = parse_cert("DS", ds_der)?;
    report.ds_subject = Some(ds.tbs_certificate().subject().to_string());
    let ds_key = cert_public_key("DS", &ds)?;
    sod.signed_data.verify_signature("EF.SOD", &ds_key)?;
    report.data_groups_verified = data_groups.keys().copied().collect();
    // 3. DS certificate chain to a CSCA, validity at `at`.
    if let Some(store) = trust {
        let anchor = store.find_issuer("DS", &ds, ds_der, Some(at))?;
        report.csca_subject = Some(anchor.certificate.tbs_certificate().subject().to_string());
        check_validity("DS", &ds, at)?;
    }
    Ok(())
}

/// Result of comparing the chip's MRZ (DG1) with the MRZ read optically.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MrzComparison {
    /// True when every compared field is equal.
    pub equal: bool,
    /// Names of the fields that differ.
    pub mismatched: Vec<&'static str>,
}

/// Compares the chip MRZ with the OCR MRZ field by field.
pub fn compare_mrz(chip: &Mrz, ocr: &Mrz) -> MrzComparison {
    let mut mismatched = Vec::new();
    let fields: [(&'static str, bool); 12] = [
        ("format", chip.format == ocr.format),
        ("document_code", chip.document_code == ocr.document_code),
        ("issuing_state", chip.issuing_state == ocr.issuing_state),
        (
            "document_number",
            chip.document_number == ocr.document_number,
        ),
        ("surname", chip.surname == ocr.surname),
        ("given_names", chip.given_names == ocr.given_names),
        ("nationality", chip.nationality == ocr.nationality),
        ("date_of_birth", chip.date_of_birth == ocr.date_of_birth),
        ("sex", chip.sex == ocr.sex),
        ("date_of_expiry", chip.date_of_expiry == ocr.date_of_expiry),
        ("optional_data", chip.optional_data == ocr.optional_data),
        (
            "optional_data_2",
            chip.optional_data_2 == ocr.optional_data_2,
        ),
    ];
    for (name, same) in fields {
        if !same {
            mismatched.push(name);
        }
    }
    MrzComparison {
        equal: mismatched.is_empty(),
        mismatched,
    }
}

/// Compares the chip MRZ with an access key (when only the key was typed, not a full MRZ).
pub fn mrz_matches_key(chip: &Mrz, key: &MrzKey) -> bool {
    chip.document_number == key.document_number
        && chip.date_of_birth == key.date_of_birth
        && chip.date_of_expiry == key.date_of_expiry
}

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

fn plain_ecdsa_hash(o: &ObjectIdentifier) -> Option<HashAlg> {
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

fn iso9796_hash_id(h: HashAlg) -> u8 {
    match h {
        HashAlg::Sha1 => 0x33,
        HashAlg::Sha256 => 0x34,
        HashAlg::Sha512 => 0x35,
        HashAlg::Sha384 => 0x36,
        HashAlg::Sha224 => 0x38,
    }
}

fn iso9796_2_verify(key: &rsa::PublicKey, m2: &[u8], sig: &[u8]) -> Result<(), AaError> {
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

#[cfg(test)]
mod tests;
