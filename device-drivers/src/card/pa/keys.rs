//! Verification public keys (RSA, ECDSA) and signature schemes: decoding
//! SubjectPublicKeyInfo and AlgorithmIdentifier, and verifying a signature.

use super::*;

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

pub(super) fn der_uint_bytes(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|b| **b == 0).count();
    let mut out = bytes.get(skip..).unwrap_or_default().to_vec();
    if out.first().is_some_and(|b| b & 0x80 != 0) {
        out.insert(0, 0);
    }
    out
}

pub(super) fn small_uint(what: &'static str, t: &Tlv<'_>) -> Result<u64, PaError> {
    if t.tag.0 != 0x02 || t.value.is_empty() || t.value.len() > 8 {
        return Err(bad(what, t.offset, "expected a small non-negative INTEGER"));
    }
    if t.value.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(bad(what, t.offset, "negative INTEGER"));
    }
    Ok(t.value.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
}

pub(super) fn parse_oid(what: &'static str, t: &Tlv<'_>) -> Result<ObjectIdentifier, PaError> {
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
pub(super) fn parse_algorithm_identifier<'a>(
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

pub(super) fn parse_pss_params(params: Option<Tlv<'_>>) -> Result<SignatureScheme, PaError> {
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

pub(super) fn bit_string_bytes<'a>(what: &'static str, t: &Tlv<'a>) -> Result<&'a [u8], PaError> {
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

pub(super) fn ecdsa_verify(
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

pub(super) fn validate_point(curve: Curve, point: &[u8]) -> Result<(), String> {
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
pub(super) fn explicit_curve(params: &Tlv<'_>) -> Result<Curve, PaError> {
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
