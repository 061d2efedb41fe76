//! EF.SOD: the signed LDS security object with the data-group hashes.

use super::*;

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
