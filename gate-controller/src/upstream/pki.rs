//! A development PKI for the upstream link: one CA, a server certificate and one client
//! certificate per gate (plus `admin`, for the reference server's admin endpoints).
//!
//! Layout of the output directory: `ca.pem`, `ca.key`, `server.pem`, `server.key`,
//! `clients/<id>.pem`, `clients/<id>.key`. Not for production: keys are written unencrypted.

use super::tls::{valid_gate_id, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// The identity of the admin client certificate made by [`make_dev_pki`].
pub const ADMIN_ID: &str = "admin";

/// Why the PKI could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A gate id is not acceptable.
    #[error("gate id {0:?} is not valid: use 1-64 letters, digits, '-' or '.'")]
    BadGateId(String),
    /// Key or certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where [`make_dev_pki`] wrote its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevPki {
    /// The output directory.
    pub dir: PathBuf,
}

impl DevPki {
    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// TLS files of the server.
    pub fn server(&self) -> TlsFiles {
        TlsFiles {
            ca: self.ca(),
            cert: self.dir.join("server.pem"),
            key: self.dir.join("server.key"),
        }
    }
    /// TLS files of a client (a gate id or [`ADMIN_ID`]).
    pub fn gate(&self, id: &str) -> TlsFiles {
        TlsFiles {
            ca: self.ca(),
            cert: self.dir.join("clients").join(format!("{id}.pem")),
            key: self.dir.join("clients").join(format!("{id}.key")),
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), PkiError> {
    std::fs::write(path, text).map_err(|source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, "echannel development");
    d.push(DnType::CommonName, cn);
    d
}

/// Makes a development CA, a server certificate for `localhost`, `127.0.0.1`, `::1` and
/// `server_names`, and a client certificate for each gate id and for [`ADMIN_ID`].
pub fn make_dev_pki(
    out: &Path,
    gates: &[String],
    server_names: &[String],
) -> Result<DevPki, PkiError> {
    for g in gates {
        if !valid_gate_id(g) {
            return Err(PkiError::BadGateId(g.clone()));
        }
    }
    let clients_dir = out.join("clients");
    std::fs::create_dir_all(&clients_dir).map_err(|source| PkiError::Write {
        path: clients_dir.clone(),
        source,
    })?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = dn("echannel development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write(&out.join("ca.pem"), &ca_cert.pem())?;
    write(&out.join("ca.key"), &ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    names.extend(server_names.iter().cloned());
    let server_key = KeyPair::generate()?;
    let mut sp = CertificateParams::new(names)?;
    sp.distinguished_name = dn("echannel upstream");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = sp.signed_by(&server_key, &issuer)?;
    write(&out.join("server.pem"), &server_cert.pem())?;
    write(&out.join("server.key"), &server_key.serialize_pem())?;

    let mut ids: Vec<String> = gates.to_vec();
    ids.push(ADMIN_ID.into());
    for id in ids {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(vec![id.clone()])?;
        p.distinguished_name = dn(&id);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &issuer)?;
        write(&clients_dir.join(format!("{id}.pem")), &cert.pem())?;
        write(&clients_dir.join(format!("{id}.key")), &key.serialize_pem())?;
    }
    Ok(DevPki {
        dir: out.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_gate_ids_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let e = make_dev_pki(dir.path(), &["ok".into(), "no/slash".into()], &[]).unwrap_err();
        assert!(matches!(e, PkiError::BadGateId(ref g) if g == "no/slash"));
        assert!(!dir.path().join("ca.pem").exists());
    }

    #[test]
    fn writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let pki = make_dev_pki(
            dir.path(),
            &["g1".into(), "g2".into()],
            &["up.example".into()],
        )
        .unwrap();
        for f in [
            pki.server(),
            pki.gate("g1"),
            pki.gate("g2"),
            pki.gate(ADMIN_ID),
        ] {
            assert!(
                f.ca.is_file() && f.cert.is_file() && f.key.is_file(),
                "{f:?}"
            );
        }
        let server = std::fs::read(pki.server().cert).unwrap();
        let pem = String::from_utf8(server).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
