//! Passive authentication as a whole: [`verify`] and its [`PaReport`].

use super::*;

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

pub(super) fn run(
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
