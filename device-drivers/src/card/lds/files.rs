//! The elementary files of the eMRTD application: identifiers, tags, data-group numbers.

use super::*;

/// Elementary files of the eMRTD application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LdsFile {
    /// EF.COM (FID 011E, tag 60).
    Com,
    /// EF.SOD (FID 011D, tag 77).
    Sod,
    /// EF.CardAccess (FID 011C, in the master file; untagged SET).
    CardAccess,
    /// Data group 1–16.
    Dg(u8),
}

impl LdsFile {
    /// The file identifier used by SELECT.
    pub fn fid(self) -> u16 {
        match self {
            LdsFile::Com => 0x011E,
            LdsFile::Sod => 0x011D,
            LdsFile::CardAccess => 0x011C,
            LdsFile::Dg(n) => 0x0100 + u16::from(n),
        }
    }

    /// The short file identifier used by READ BINARY with P1 = 0x80 | SFI.
    pub fn sfi(self) -> u8 {
        match self {
            LdsFile::Com => 0x1E,
            LdsFile::Sod => 0x1D,
            LdsFile::CardAccess => 0x1C,
            LdsFile::Dg(n) => n,
        }
    }

    /// The file from its FID, if it is one of the LDS files.
    pub fn from_fid(fid: u16) -> Option<LdsFile> {
        match fid {
            0x011E => Some(LdsFile::Com),
            0x011D => Some(LdsFile::Sod),
            0x011C => Some(LdsFile::CardAccess),
            0x0101..=0x0110 => Some(LdsFile::Dg((fid - 0x0100) as u8)),
            _ => None,
        }
    }

    /// The outer tag of the file's content (EF.CardAccess has none of its own: 0x31, a SET).
    pub fn tag(self) -> u8 {
        match self {
            LdsFile::Com => 0x60,
            LdsFile::Sod => 0x77,
            LdsFile::CardAccess => 0x31,
            LdsFile::Dg(n) => dg_tag(n).unwrap_or(0),
        }
    }
}

/// The outer tag of data group `n` (1–16).
pub fn dg_tag(n: u8) -> Option<u8> {
    const TAGS: [u8; 16] = [
        0x61, 0x75, 0x63, 0x76, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F,
        0x70,
    ];
    TAGS.get(usize::from(n).checked_sub(1)?).copied()
}

/// The data-group number for an outer tag.
pub fn dg_number(tag: u8) -> Option<u8> {
    (1..=16).find(|n| dg_tag(*n) == Some(tag))
}

/// The content of a chip's files, keyed by FID: what a reader got, or what a virtual chip serves.
pub type ChipFiles = BTreeMap<u16, Vec<u8>>;
