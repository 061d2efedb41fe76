//! EF.COM: the LDS and Unicode versions and the data groups present.

use super::*;

/// EF.COM: LDS version, Unicode version and the list of data groups present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfCom {
    /// LDS version as 4 digits, e.g. `0107` (tag 5F01).
    pub lds_version: String,
    /// Unicode version as 6 digits, e.g. `040000` (tag 5F36).
    pub unicode_version: String,
    /// Data-group numbers present (from the tag list, tag 5C).
    pub data_groups: Vec<u8>,
}

impl EfCom {
    /// Parses EF.COM.
    pub fn parse(data: &[u8]) -> Result<EfCom, LdsError> {
        const F: &str = "EF.COM";
        let top = Tlv::parse_exact(data, 0x60).map_err(tlv_err(F))?;
        let text = |tag: u32| -> Result<String, LdsError> {
            let t = top.require(tag, F).map_err(tlv_err(F))?;
            String::from_utf8(t.value.to_vec())
                .map_err(|_| structure(F, t.offset, format!("tag {tag:X} is not text")))
        };
        let list = top.require(0x5C, F).map_err(tlv_err(F))?;
        let data_groups = list
            .value
            .iter()
            .enumerate()
            .map(|(i, t)| {
                dg_number(*t).ok_or_else(|| {
                    structure(
                        F,
                        list.value_offset() + i,
                        format!("{t:02X} is not a data-group tag"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(EfCom {
            lds_version: text(0x5F01)?,
            unicode_version: text(0x5F36)?,
            data_groups,
        })
    }

    /// Encodes EF.COM.
    pub fn encode(&self) -> Vec<u8> {
        let tags: Vec<u8> = self.data_groups.iter().filter_map(|n| dg_tag(*n)).collect();
        tlv::encode_constructed(
            0x60,
            &[
                tlv::encode(0x5F01, self.lds_version.as_bytes()),
                tlv::encode(0x5F36, self.unicode_version.as_bytes()),
                tlv::encode(0x5C, &tags),
            ],
        )
    }
}
