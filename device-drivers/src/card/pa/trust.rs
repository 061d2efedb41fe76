//! The CSCA trust store and the certificate checks of the Document Signer chain.

use super::*;

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
    pub(super) fn find_issuer(
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

pub(super) fn parse_cert(which: &str, der: &[u8]) -> Result<Certificate, PaError> {
    Certificate::from_der(der).map_err(|e| PaError::BadCertificate {
        which: which.to_string(),
        detail: e.to_string(),
    })
}

pub(super) fn cert_public_key(which: &str, cert: &Certificate) -> Result<PublicKey, PaError> {
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
pub(super) fn split_certificate<'a>(
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

pub(super) fn fmt_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    match der::DateTime::from_unix_duration(secs) {
        Ok(dt) => dt.to_string(),
        Err(_) => format!("{}s", secs.as_secs()),
    }
}

pub(super) fn check_validity(
    which: &str,
    cert: &Certificate,
    at: SystemTime,
) -> Result<(), PaError> {
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
