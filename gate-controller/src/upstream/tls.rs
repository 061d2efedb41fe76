//! rustls configurations for the upstream link (mutual TLS, ring crypto provider) and the
//! gate identity carried in a client certificate.
//!
//! A gate's client certificate names the gate id in its subject common name and/or as a
//! DNS subject alternative name; the upstream accepts rows of a gate only over a connection
//! whose client certificate names that gate.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot load {what} from {path}: {detail}")]
    Load {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// rustls refused the material.
    #[error("TLS configuration rejected: {0}")]
    Config(String),
}

/// The crypto provider used on both ends (ring: no C toolchain beyond `cc`).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file, in order.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |detail: String| TlsError::Load {
        what: "certificates",
        path: path.to_path_buf(),
        detail,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Load {
        what: "a private key",
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in load_certs(ca)? {
        store
            .add(c)
            .map_err(|e| TlsError::Config(format!("CA certificate in {}: {e}", ca.display())))?;
    }
    Ok(store)
}

/// Paths of the TLS material of one end.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate(s) that sign the peer's certificate (PEM).
    pub ca: PathBuf,
    /// Own certificate chain (PEM).
    pub cert: PathBuf,
    /// Own private key (PEM).
    pub key: PathBuf,
}

/// Client configuration of a gate: trusts `files.ca` for the server and authenticates with
/// `files.cert` / `files.key`.
pub fn client_config(files: &TlsFiles) -> Result<ClientConfig, TlsError> {
    let roots = roots(&files.ca)?;
    let chain = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// Client configuration for a plain-HTTP upstream (a local demo server): no trusted roots
/// and no client certificate, so an `https://` URL fails its handshake cleanly instead of
/// trusting anything.
pub fn plain_client_config() -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// Server configuration of the upstream: requires a client certificate signed by
/// `files.ca`, presents `files.cert` / `files.key`.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let roots = Arc::new(roots(&files.ca)?);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let chain = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The identities a certificate names: subject common names, then DNS subject alternative
/// names. Empty for a certificate that cannot be parsed.
pub fn cert_identities(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut out: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = name {
                out.push((*d).to_owned());
            }
        }
    }
    out
}

/// Whether a gate id is acceptable: 1..=64 ASCII letters, digits, `-` or `.`.
pub fn valid_gate_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_come_from_cn_and_san() {
        let dir = tempfile::tempdir().unwrap();
        let files = crate::upstream::pki::make_dev_pki(dir.path(), &["g7".into()], &[]).unwrap();
        let certs = load_certs(&files.gate("g7").cert).unwrap();
        let ids = cert_identities(certs[0].as_ref());
        assert_eq!(ids, vec!["g7".to_string(), "g7".to_string()]);
        assert!(cert_identities(b"not a certificate").is_empty());
        client_config(&files.gate("g7")).unwrap();
        server_config(&files.server()).unwrap();
    }

    #[test]
    fn gate_ids_are_restricted() {
        assert!(valid_gate_id("g1"));
        assert!(valid_gate_id("AIRPORT-T1.lane-03"));
        assert!(!valid_gate_id(""));
        assert!(!valid_gate_id("a/b"));
        assert!(!valid_gate_id("a b"));
        assert!(!valid_gate_id(&"x".repeat(65)));
    }
}
