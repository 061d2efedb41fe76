//! SecurityInfos: the one parser and encoder of EF.CardAccess and DG14 (PACE, Chip
//! Authentication, Terminal Authentication and Active Authentication infos).

use super::*;

/// One SecurityInfo of EF.CardAccess, EF.CardSecurity or DG14.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityInfo {
    /// PACEInfo.
    Pace(PaceInfo),
    /// ActiveAuthenticationInfo: the signature algorithm AA uses with an EC key.
    ActiveAuthentication {
        /// Version (1).
        version: u32,
        /// Signature algorithm OID (e.g. ecdsa-plain-SHA256).
        signature_algorithm: ObjectIdentifier,
    },
    /// ChipAuthenticationInfo.
    ChipAuthentication {
        /// The protocol OID (id-CA-...).
        protocol: ObjectIdentifier,
        /// Version.
        version: u32,
        /// Key id.
        key_id: Option<u32>,
    },
    /// ChipAuthenticationPublicKeyInfo.
    ChipAuthenticationPublicKey {
        /// The protocol OID (id-PK-DH / id-PK-ECDH).
        protocol: ObjectIdentifier,
        /// SubjectPublicKeyInfo, DER.
        public_key: Vec<u8>,
        /// Key id.
        key_id: Option<u32>,
    },
    /// TerminalAuthenticationInfo.
    TerminalAuthentication {
        /// Version.
        version: u32,
    },
    /// A SecurityInfo this code does not interpret, kept whole.
    Other {
        /// The protocol OID.
        protocol: ObjectIdentifier,
        /// The whole encoded SecurityInfo.
        raw: Vec<u8>,
    },
}

pub(super) fn der_uint(file: &'static str, t: &Tlv<'_>) -> Result<u32, LdsError> {
    if t.tag.0 != 0x02 {
        return Err(structure(
            file,
            t.offset,
            format!("expected INTEGER, found {}", t.tag),
        ));
    }
    let v = t.value;
    if v.is_empty() || v.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(structure(file, t.offset, "INTEGER is empty or negative"));
    }
    let trimmed: &[u8] = match v {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => v,
    };
    if trimmed.len() > 4 {
        return Err(structure(file, t.offset, "INTEGER too large"));
    }
    Ok(trimmed.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)))
}

pub(super) fn encode_uint(v: u32) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    let mut body = bytes.get(skip..).unwrap_or_default().to_vec();
    if body.first().is_some_and(|b| b & 0x80 != 0) {
        body.insert(0, 0);
    }
    tlv::encode(0x02, &body)
}

pub(super) fn encode_oid(o: &ObjectIdentifier) -> Vec<u8> {
    tlv::encode(0x06, o.as_bytes())
}

pub(super) fn is_under(o: &ObjectIdentifier, prefix: &ObjectIdentifier, extra: usize) -> bool {
    let a: Vec<u32> = o.arcs().collect();
    let p: Vec<u32> = prefix.arcs().collect();
    a.len() == p.len() + extra && a.starts_with(&p)
}

impl SecurityInfo {
    fn parse_one(file: &'static str, t: &Tlv<'_>) -> Result<SecurityInfo, LdsError> {
        let e = tlv_err(file);
        if t.tag.0 != 0x30 {
            return Err(structure(file, t.offset, "SecurityInfo is not a SEQUENCE"));
        }
        let kids = t.children().map_err(&e)?;
        let (first, rest) = kids
            .split_first()
            .ok_or_else(|| structure(file, t.offset, "empty SecurityInfo"))?;
        if first.tag.0 != 0x06 {
            return Err(structure(
                file,
                first.offset,
                "SecurityInfo has no protocol OID",
            ));
        }
        let protocol = ObjectIdentifier::from_bytes(first.value)
            .map_err(|err| structure(file, first.offset, format!("bad OID: {err}")))?;
        let int_at = |i: usize| -> Result<Option<u32>, LdsError> {
            rest.get(i).map(|x| der_uint(file, x)).transpose()
        };
        let need_int = |i: usize, what: &str| -> Result<u32, LdsError> {
            int_at(i)?.ok_or_else(|| structure(file, t.offset, format!("missing {what}")))
        };
        if let Some(p) = PaceProtocol::from_oid(&protocol) {
            return Ok(SecurityInfo::Pace(PaceInfo {
                protocol: p,
                version: need_int(0, "PACE version")?,
                parameter_id: int_at(1)?,
            }));
        }
        if protocol == oid::AA {
            let alg = rest.get(1).filter(|x| x.tag.0 == 0x06).ok_or_else(|| {
                structure(
                    file,
                    t.offset,
                    "ActiveAuthenticationInfo lacks its algorithm",
                )
            })?;
            return Ok(SecurityInfo::ActiveAuthentication {
                version: need_int(0, "AA version")?,
                signature_algorithm: ObjectIdentifier::from_bytes(alg.value)
                    .map_err(|err| structure(file, alg.offset, format!("bad OID: {err}")))?,
            });
        }
        if is_under(&protocol, &oid::CA, 2) {
            return Ok(SecurityInfo::ChipAuthentication {
                protocol,
                version: need_int(0, "CA version")?,
                key_id: int_at(1)?,
            });
        }
        if is_under(&protocol, &oid::PK, 1) {
            let key = rest
                .first()
                .filter(|x| x.tag.0 == 0x30)
                .ok_or_else(|| structure(file, t.offset, "CA public key info lacks its key"))?;
            return Ok(SecurityInfo::ChipAuthenticationPublicKey {
                protocol,
                public_key: key.raw.to_vec(),
                key_id: int_at(1)?,
            });
        }
        if protocol == oid::TA {
            return Ok(SecurityInfo::TerminalAuthentication {
                version: need_int(0, "TA version")?,
            });
        }
        Ok(SecurityInfo::Other {
            protocol,
            raw: t.raw.to_vec(),
        })
    }

    /// Encodes this SecurityInfo (DER).
    pub fn encode(&self) -> Vec<u8> {
        let parts = match self {
            SecurityInfo::Pace(p) => {
                let mut v = vec![encode_oid(&p.protocol.oid()), encode_uint(p.version)];
                if let Some(id) = p.parameter_id {
                    v.push(encode_uint(id));
                }
                v
            }
            SecurityInfo::ActiveAuthentication {
                version,
                signature_algorithm,
            } => vec![
                encode_oid(&oid::AA),
                encode_uint(*version),
                encode_oid(signature_algorithm),
            ],
            SecurityInfo::ChipAuthentication {
                protocol,
                version,
                key_id,
            } => {
                let mut v = vec![encode_oid(protocol), encode_uint(*version)];
                if let Some(k) = key_id {
                    v.push(encode_uint(*k));
                }
                v
            }
            SecurityInfo::ChipAuthenticationPublicKey {
                protocol,
                public_key,
                key_id,
            } => {
                let mut v = vec![encode_oid(protocol), public_key.clone()];
                if let Some(k) = key_id {
                    v.push(encode_uint(*k));
                }
                v
            }
            SecurityInfo::TerminalAuthentication { version } => {
                vec![encode_oid(&oid::TA), encode_uint(*version)]
            }
            SecurityInfo::Other { raw, .. } => return raw.clone(),
        };
        tlv::encode_constructed(0x30, &parts)
    }
}

/// A SET OF SecurityInfo (EF.CardAccess, EF.CardSecurity content, DG14 content).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityInfos {
    /// The infos in file order.
    pub infos: Vec<SecurityInfo>,
}

impl SecurityInfos {
    fn parse_set(file: &'static str, data: &[u8]) -> Result<SecurityInfos, LdsError> {
        let set = Tlv::parse_exact(data, 0x31).map_err(tlv_err(file))?;
        let infos = set
            .children()
            .map_err(tlv_err(file))?
            .iter()
            .map(|t| SecurityInfo::parse_one(file, t))
            .collect::<Result<_, _>>()?;
        Ok(SecurityInfos { infos })
    }

    /// Parses EF.CardAccess.
    pub fn parse_card_access(data: &[u8]) -> Result<SecurityInfos, LdsError> {
        Self::parse_set("EF.CardAccess", data)
    }

    /// Parses DG14 (tag 6E around the SET).
    pub fn parse_dg14(data: &[u8]) -> Result<SecurityInfos, LdsError> {
        let top = Tlv::parse_exact(data, 0x6E).map_err(tlv_err("DG14"))?;
        Self::parse_set("DG14", top.value)
    }

    /// Encodes the SET (EF.CardAccess content). DER requires SET OF elements sorted by encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = self.infos.iter().map(|i| i.encode()).collect();
        parts.sort();
        tlv::encode_constructed(0x31, &parts)
    }

    /// Encodes as DG14.
    pub fn encode_dg14(&self) -> Vec<u8> {
        tlv::encode(0x6E, &self.encode())
    }

    /// The PACEInfos, in file order.
    pub fn pace(&self) -> Vec<&PaceInfo> {
        self.infos
            .iter()
            .filter_map(|i| match i {
                SecurityInfo::Pace(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// The AA signature algorithm from ActiveAuthenticationInfo, if present.
    pub fn active_authentication_algorithm(&self) -> Option<ObjectIdentifier> {
        self.infos.iter().find_map(|i| match i {
            SecurityInfo::ActiveAuthentication {
                signature_algorithm,
                ..
            } => Some(*signature_algorithm),
            _ => None,
        })
    }
}
