//! A test PKI for the simulator and tests: CSCA and Document Signer certificates (ECDSA P-256
//! and RSA), EF.SOD signing, and reading/writing the checked-in test PKI under `configs/pki/`.
//!
//! **Test only.** Keys made here protect nothing; the private keys are written in the clear.
//!
//! Layout written by [`generate_test_pki`] (and read by [`load_test_pki`]):
//!
//! ```text
//! DIR/csca/csca-p256.der    CSCA certificates: the trust-store directory (--csca DIR/csca)
//! DIR/csca/csca-rsa.der
//! DIR/ds/ds-p256.der        Document Signer certificates
//! DIR/ds/ds-rsa.der
//! DIR/test-only-keys/*.key.pem   PKCS#8 private keys of all four (TEST ONLY)
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use thiserror::Error;
use x509_cert::Certificate;

use super::{oids, HashAlg, PublicKey, SignatureScheme};
use crate::card::lds;
use crate::card::tlv;

/// How building or loading the test PKI failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {detail}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        detail: String,
    },
    /// A key or certificate could not be encoded, decoded or used.
    #[error("crypto: {0}")]
    Crypto(String),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PkiError + '_ {
    move |e| PkiError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn crypto(e: impl std::fmt::Display) -> PkiError {
    PkiError::Crypto(e.to_string())
}

/// A private signing key.
#[derive(Clone)]
pub enum SigningKey {
    /// ECDSA on P-256 (signs with SHA-256).
    P256(p256::ecdsa::SigningKey),
    /// ECDSA on P-384 (signs with SHA-384).
    P384(p384::ecdsa::SigningKey),
    /// RSA (signs PKCS#1 v1.5 with SHA-256).
    Rsa(rsa::PrivateKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigningKey::P256(_) => f.write_str("SigningKey::P256(..)"),
            SigningKey::P384(_) => f.write_str("SigningKey::P384(..)"),
            SigningKey::Rsa(_) => f.write_str("SigningKey::Rsa(..)"),
        }
    }
}

fn rng() -> rsa::rand_core::UnwrapErr<getrandom::SysRng> {
    rsa::rand_core::UnwrapErr(getrandom::SysRng)
}

impl SigningKey {
    /// A fresh P-256 key from the OS RNG.
    pub fn generate_p256() -> SigningKey {
        SigningKey::P256(rsa::Generate::generate_from_rng(&mut rng()))
    }

    /// A fresh P-384 key from the OS RNG.
    pub fn generate_p384() -> SigningKey {
        SigningKey::P384(rsa::Generate::generate_from_rng(&mut rng()))
    }

    /// A fresh RSA key (slow in debug builds; use the checked-in test PKI in tests).
    pub fn generate_rsa(bits: usize) -> Result<SigningKey, PkiError> {
        Ok(SigningKey::Rsa(
            rsa::PrivateKey::new(&mut rng(), bits).map_err(crypto)?,
        ))
    }

    /// A P-256 key from 32 secret bytes (deterministic test keys).
    pub fn p256_from_bytes(secret: &[u8]) -> Result<SigningKey, PkiError> {
        Ok(SigningKey::P256(
            p256::ecdsa::SigningKey::from_slice(secret).map_err(crypto)?,
        ))
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            SigningKey::P256(k) => PublicKey::Ec {
                curve: super::Curve::P256,
                point: k.verifying_key().to_sec1_bytes().to_vec(),
            },
            SigningKey::P384(k) => PublicKey::Ec {
                curve: super::Curve::P384,
                point: k.verifying_key().to_sec1_bytes().to_vec(),
            },
            SigningKey::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
        }
    }

    /// The scheme this key signs certificates and SODs with.
    pub fn scheme(&self) -> SignatureScheme {
        match self {
            SigningKey::P256(_) => SignatureScheme::Ecdsa(HashAlg::Sha256),
            SigningKey::P384(_) => SignatureScheme::Ecdsa(HashAlg::Sha384),
            SigningKey::Rsa(_) => SignatureScheme::RsaPkcs1(HashAlg::Sha256),
        }
    }

    /// Signs `message` with [`SigningKey::scheme`]; ECDSA signatures are DER.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        use ecdsa::signature::hazmat::PrehashSigner;
        let digest = self.scheme().hash().digest(message);
        match self {
            SigningKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign_prehash(&digest).map_err(crypto)?;
                Ok(s.to_der().as_bytes().to_vec())
            }
            SigningKey::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign_prehash(&digest).map_err(crypto)?;
                Ok(s.to_der().as_bytes().to_vec())
            }
            SigningKey::Rsa(k) => k
                .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
                .map_err(crypto),
        }
    }

    /// Plain (`r‖s`) ECDSA over `message` hashed with `hash` (Active Authentication on EC keys).
    pub fn sign_plain_ecdsa(&self, hash: HashAlg, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        use ecdsa::signature::hazmat::PrehashSigner;
        let digest = hash.digest(message);
        match self {
            SigningKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign_prehash(&digest).map_err(crypto)?;
                Ok(s.to_bytes().to_vec())
            }
            SigningKey::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign_prehash(&digest).map_err(crypto)?;
                Ok(s.to_bytes().to_vec())
            }
            SigningKey::Rsa(_) => Err(PkiError::Crypto("RSA key asked for ECDSA".into())),
        }
    }

    /// PKCS#8 PEM of the private key.
    pub fn to_pkcs8_pem(&self) -> Result<String, PkiError> {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let pem = match self {
            SigningKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            SigningKey::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
            SigningKey::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(crypto)?;
        Ok(pem.to_string())
    }

    /// Reads a PKCS#8 PEM private key (P-256, P-384 or RSA).
    pub fn from_pkcs8_pem(pem: &str) -> Result<SigningKey, PkiError> {
        use p256::pkcs8::DecodePrivateKey;
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P256(k));
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P384(k));
        }
        rsa::PrivateKey::from_pkcs8_pem(pem)
            .map(SigningKey::Rsa)
            .map_err(|e| PkiError::Crypto(format!("not a P-256, P-384 or RSA PKCS#8 key: {e}")))
    }
}

/// A certificate with its private key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key.
    pub key: SigningKey,
}

impl Issued {
    /// The decoded certificate.
    pub fn certificate(&self) -> Result<Certificate, PkiError> {
        Certificate::from_der(&self.cert_der).map_err(crypto)
    }
}

/// What to put in a new certificate.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// Subject as an RFC 4514 string, e.g. `CN=Utopia CSCA,O=Utopia,C=UT`.
    pub subject: String,
    /// Serial number.
    pub serial: u64,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// True for a CSCA (CA, keyCertSign), false for a Document Signer (digitalSignature).
    pub ca: bool,
}

fn encode_time(t: SystemTime) -> Result<Vec<u8>, PkiError> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).map_err(crypto)?;
    let dt = der::DateTime::from_unix_duration(d).map_err(crypto)?;
    let (tag, year) = if dt.year() < 2050 {
        (0x17, format!("{:02}", dt.year() % 100))
    } else {
        (0x18, format!("{:04}", dt.year()))
    };
    let s = format!(
        "{year}{:02}{:02}{:02}{:02}{:02}Z",
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minutes(),
        dt.seconds()
    );
    Ok(tlv::encode(tag, s.as_bytes()))
}

fn extension(oid: &str, critical: bool, value: Vec<u8>) -> Vec<u8> {
    let o = const_oid::ObjectIdentifier::new_unwrap(oid);
    let mut parts = vec![tlv::encode(0x06, o.as_bytes())];
    if critical {
        parts.push(tlv::encode(0x01, &[0xFF]));
    }
    parts.push(tlv::encode(0x04, &value));
    tlv::encode_constructed(0x30, &parts)
}

fn key_id(pk: &PublicKey) -> Vec<u8> {
    HashAlg::Sha1.digest(&pk.to_spki())
}

fn serial_bytes(serial: u64) -> Vec<u8> {
    super::der_uint_bytes(serial)
}

/// Issues a certificate for `subject_key`'s public key, signed by `issuer` (self-signed when
/// `None`).
pub fn issue(
    spec: &CertSpec,
    subject_key: &SigningKey,
    issuer: Option<&Issued>,
) -> Result<Vec<u8>, PkiError> {
    use std::str::FromStr;
    let subject = x509_cert::name::Name::from_str(&spec.subject)
        .map_err(crypto)?
        .to_der()
        .map_err(crypto)?;
    let pk = subject_key.public_key();
    let (issuer_name, signer, issuer_pk) = match issuer {
        Some(i) => (
            i.certificate()?
                .tbs_certificate()
                .subject()
                .to_der()
                .map_err(crypto)?,
            &i.key,
            i.key.public_key(),
        ),
        None => (subject.clone(), subject_key, pk.clone()),
    };
    let scheme = signer.scheme();
    let mut exts = vec![
        extension("2.5.29.14", false, tlv::encode(0x04, &key_id(&pk))),
        extension(
            "2.5.29.35",
            false,
            tlv::encode_constructed(0x30, &[tlv::encode(0x80, &key_id(&issuer_pk))]),
        ),
    ];
    if spec.ca {
        exts.push(extension(
            "2.5.29.19",
            true,
            tlv::encode_constructed(0x30, &[tlv::encode(0x01, &[0xFF]), tlv::encode(0x02, &[0])]),
        ));
        // keyCertSign (bit 5) + cRLSign (bit 6): 0000 0110, 1 unused bit.
        exts.push(extension(
            "2.5.29.15",
            true,
            tlv::encode(0x03, &[0x01, 0x06]),
        ));
    } else {
        // digitalSignature (bit 0): 1000 0000, 7 unused bits.
        exts.push(extension(
            "2.5.29.15",
            true,
            tlv::encode(0x03, &[0x07, 0x80]),
        ));
    }
    let tbs = tlv::encode_constructed(
        0x30,
        &[
            tlv::encode(0xA0, &tlv::encode(0x02, &[2])),
            tlv::encode(0x02, &serial_bytes(spec.serial)),
            scheme.algorithm_identifier(),
            issuer_name,
            tlv::encode_constructed(
                0x30,
                &[encode_time(spec.not_before)?, encode_time(spec.not_after)?],
            ),
            subject,
            pk.to_spki(),
            tlv::encode(0xA3, &tlv::encode_constructed(0x30, &exts)),
        ],
    );
    let sig = signer.sign(&tbs)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&sig);
    let cert = tlv::encode_constructed(
        0x30,
        &[tbs, scheme.algorithm_identifier(), tlv::encode(0x03, &bits)],
    );
    // Make sure what we produce is a certificate an independent decoder accepts.
    Certificate::from_der(&cert).map_err(crypto)?;
    Ok(cert)
}

/// CMS SignedData (ContentInfo DER) over `content` of `content_type`, signed by `signer`,
/// carrying the signer's certificate, with contentType and messageDigest signed attributes.
pub fn sign_cms(
    signer: &Issued,
    hash: HashAlg,
    content_type: const_oid::ObjectIdentifier,
    content: &[u8],
) -> Result<Vec<u8>, PkiError> {
    let cert = signer.certificate()?;
    let tbs = cert.tbs_certificate();
    let issuer = tbs.issuer().to_der().map_err(crypto)?;
    let serial = tbs.serial_number().as_bytes().to_vec();
    let digest_alg = tlv::encode_constructed(0x30, &[tlv::encode(0x06, hash.oid().as_bytes())]);
    let attr = |o: const_oid::ObjectIdentifier, value: Vec<u8>| {
        tlv::encode_constructed(
            0x30,
            &[tlv::encode(0x06, o.as_bytes()), tlv::encode(0x31, &value)],
        )
    };
    let mut attrs = [
        attr(
            oids::CONTENT_TYPE,
            tlv::encode(0x06, content_type.as_bytes()),
        ),
        attr(
            oids::MESSAGE_DIGEST,
            tlv::encode(0x04, &hash.digest(content)),
        ),
    ];
    attrs.sort();
    let attrs_body = attrs.concat();
    let signed_attrs = tlv::encode(0x31, &attrs_body);
    // The SOD signature uses the DS key's own hash when it is ECDSA/RSA with SHA-256.
    let signature = signer.key.sign(&signed_attrs)?;
    let signer_info = tlv::encode_constructed(
        0x30,
        &[
            tlv::encode(0x02, &[1]),
            tlv::encode_constructed(0x30, &[issuer, tlv::encode(0x02, &serial)]),
            digest_alg.clone(),
            tlv::encode(0xA0, &attrs_body),
            signer.key.scheme().algorithm_identifier(),
            tlv::encode(0x04, &signature),
        ],
    );
    let signed_data = tlv::encode_constructed(
        0x30,
        &[
            tlv::encode(0x02, &[3]),
            tlv::encode(0x31, &digest_alg),
            tlv::encode_constructed(
                0x30,
                &[
                    tlv::encode(0x06, content_type.as_bytes()),
                    tlv::encode(0xA0, &tlv::encode(0x04, content)),
                ],
            ),
            tlv::encode(0xA0, &signer.cert_der),
            tlv::encode(0x31, &signer_info),
        ],
    );
    Ok(tlv::encode_constructed(
        0x30,
        &[
            tlv::encode(0x06, oids::SIGNED_DATA.as_bytes()),
            tlv::encode(0xA0, &signed_data),
        ],
    ))
}

/// Builds and signs EF.SOD (tag 77) over the given data-group files.
pub fn sign_sod(
    ds: &Issued,
    hash: HashAlg,
    data_groups: &BTreeMap<u8, Vec<u8>>,
) -> Result<Vec<u8>, PkiError> {
    let lso = super::LdsSecurityObject {
        version: 0,
        hash_algorithm: hash,
        hashes: data_groups
            .iter()
            .map(|(n, bytes)| (*n, hash.digest(bytes)))
            .collect(),
    };
    let ci = sign_cms(ds, hash, oids::LDS_SECURITY_OBJECT, &lso.encode())?;
    Ok(lds::encode_sod(&ci))
}

/// The four credentials of the test PKI.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// Test CSCA, ECDSA P-256.
    pub csca_p256: Issued,
    /// Document Signer under `csca_p256`, ECDSA P-256.
    pub ds_p256: Issued,
    /// Test CSCA, RSA 2048.
    pub csca_rsa: Issued,
    /// Document Signer under `csca_rsa`, RSA 2048.
    pub ds_rsa: Issued,
}

/// Seconds since 1970 of midnight UTC on 1 January of `year` (1970..2100).
pub fn jan1(year: u64) -> SystemTime {
    let days: u64 = (1970..year)
        .map(|y| {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                366
            } else {
                365
            }
        })
        .sum();
    SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400)
}

/// The subject of the P-256 test CSCA.
pub const CSCA_P256_SUBJECT: &str = "CN=echannel TEST CSCA P-256,OU=TEST ONLY,O=echannel,C=UT";
/// The subject of the RSA test CSCA.
pub const CSCA_RSA_SUBJECT: &str = "CN=echannel TEST CSCA RSA,OU=TEST ONLY,O=echannel,C=UT";

/// Creates a fresh test PKI with `rsa_bits`-bit RSA keys (2048 for the checked-in one).
pub fn create_test_pki(rsa_bits: usize) -> Result<TestPki, PkiError> {
    let csca_spec = |subject: &str, serial| CertSpec {
        subject: subject.into(),
        serial,
        not_before: jan1(2025),
        not_after: jan1(2045),
        ca: true,
    };
    let ds_spec = |subject: &str, serial| CertSpec {
        subject: subject.into(),
        serial,
        not_before: jan1(2025),
        not_after: jan1(2040),
        ca: false,
    };
    let k = SigningKey::generate_p256();
    let csca_p256 = Issued {
        cert_der: issue(&csca_spec(CSCA_P256_SUBJECT, 1), &k, None)?,
        key: k,
    };
    let k = SigningKey::generate_p256();
    let ds_p256 = Issued {
        cert_der: issue(
            &ds_spec("CN=echannel TEST DS P-256,OU=TEST ONLY,O=echannel,C=UT", 2),
            &k,
            Some(&csca_p256),
        )?,
        key: k,
    };
    let k = SigningKey::generate_rsa(rsa_bits)?;
    let csca_rsa = Issued {
        cert_der: issue(&csca_spec(CSCA_RSA_SUBJECT, 3), &k, None)?,
        key: k,
    };
    let k = SigningKey::generate_rsa(rsa_bits)?;
    let ds_rsa = Issued {
        cert_der: issue(
            &ds_spec("CN=echannel TEST DS RSA,OU=TEST ONLY,O=echannel,C=UT", 4),
            &k,
            Some(&csca_rsa),
        )?,
        key: k,
    };
    Ok(TestPki {
        csca_p256,
        ds_p256,
        csca_rsa,
        ds_rsa,
    })
}

const README: &str = "# echannel TEST PKI — TEST ONLY\n\n\
These certificates and keys exist for the simulator and the tests. The private keys in\n\
`test-only-keys/` are public: never trust these CSCAs outside a test.\n\n\
- `csca/` — trust anchors (use as `--csca configs/pki/csca`)\n\
- `ds/` — Document Signer certificates\n\
- `test-only-keys/` — PKCS#8 private keys of all four\n\n\
Validity: CSCAs 2025-01-01 to 2045-01-01, DSs 2025-01-01 to 2040-01-01.\n\
Regenerate with `cargo run --release -p device-drivers --example gen_test_pki -- configs/pki`\n\
(this replaces every key: personas signed before no longer verify).\n";

fn write(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    std::fs::write(path, bytes).map_err(io_err(path))
}

/// Generates a test PKI (RSA 2048) and writes it under `dir` (layout in the module docs).
pub fn generate_test_pki(dir: &Path) -> Result<TestPki, PkiError> {
    let pki = create_test_pki(2048)?;
    save_test_pki(&pki, dir)?;
    Ok(pki)
}

/// Writes `pki` under `dir`.
pub fn save_test_pki(pki: &TestPki, dir: &Path) -> Result<(), PkiError> {
    for sub in ["csca", "ds", "test-only-keys"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(io_err(&p))?;
    }
    write(&dir.join("README.md"), README.as_bytes())?;
    for (name, sub, issued) in [
        ("csca-p256", "csca", &pki.csca_p256),
        ("csca-rsa", "csca", &pki.csca_rsa),
        ("ds-p256", "ds", &pki.ds_p256),
        ("ds-rsa", "ds", &pki.ds_rsa),
    ] {
        write(&dir.join(sub).join(format!("{name}.der")), &issued.cert_der)?;
        write(
            &dir.join("test-only-keys").join(format!("{name}.key.pem")),
            issued.key.to_pkcs8_pem()?.as_bytes(),
        )?;
    }
    Ok(())
}

/// Reads a test PKI written by [`generate_test_pki`].
pub fn load_test_pki(dir: &Path) -> Result<TestPki, PkiError> {
    let load = |name: &str, sub: &str| -> Result<Issued, PkiError> {
        let cp = dir.join(sub).join(format!("{name}.der"));
        let kp = dir.join("test-only-keys").join(format!("{name}.key.pem"));
        let cert_der = std::fs::read(&cp).map_err(io_err(&cp))?;
        let pem = std::fs::read_to_string(&kp).map_err(io_err(&kp))?;
        let issued = Issued {
            cert_der,
            key: SigningKey::from_pkcs8_pem(&pem)?,
        };
        // The key must belong to the certificate.
        let cert = issued.certificate()?;
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(crypto)?;
        if PublicKey::from_spki(name, &spki).map_err(crypto)? != issued.key.public_key() {
            return Err(PkiError::Crypto(format!(
                "{name}: key does not match certificate"
            )));
        }
        Ok(issued)
    };
    Ok(TestPki {
        csca_p256: load("csca-p256", "csca")?,
        ds_p256: load("ds-p256", "ds")?,
        csca_rsa: load("csca-rsa", "csca")?,
        ds_rsa: load("ds-rsa", "ds")?,
    })
}

/// The checked-in test PKI directory (`<workspace>/configs/pki`), for tests and the simulator.
pub fn repo_test_pki_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/pki")
}
