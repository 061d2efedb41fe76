//! CMS SignedData as EF.SOD and master lists carry it, parsed with the project's BER-TLV
//! reader so that the signed bytes are kept exactly as encoded.

use super::*;

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

pub(super) fn subject_key_id(cert: &Certificate) -> Option<Vec<u8>> {
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    cert.tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .ok()
        .flatten()
        .map(|(_, ski)| ski.0.as_bytes().to_vec())
}

pub(super) fn authority_key_id(cert: &Certificate) -> Option<Vec<u8>> {
    use x509_cert::ext::pkix::AuthorityKeyIdentifier;
    cert.tbs_certificate()
        .get_extension::<AuthorityKeyIdentifier>()
        .ok()
        .flatten()
        .and_then(|(_, aki)| aki.key_identifier.map(|k| k.as_bytes().to_vec()))
}
