//! Building blocks shared by the ISO/IEC 19794-2 and ANSI INCITS 378 record
//! formats: minutiae, finger positions and extended data blocks.

use super::bytes::{fit, Reader, Writer};
use super::error::FormatError;
use serde::Serialize;

/// Kind of a minutia as coded in the two top bits of its X coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MinutiaKind {
    /// Code 00: other / unspecified ("either" in ANSI 378-2009).
    Other,
    /// Code 01: ridge ending.
    Ending,
    /// Code 10: ridge bifurcation.
    Bifurcation,
}

impl MinutiaKind {
    /// Decodes the 2-bit type code; code 11 is reserved and rejected.
    pub fn from_code(code: u8, offset: usize) -> Result<Self, FormatError> {
        match code {
            0 => Ok(MinutiaKind::Other),
            1 => Ok(MinutiaKind::Ending),
            2 => Ok(MinutiaKind::Bifurcation),
            v => Err(FormatError::InvalidValue {
                offset,
                field: "minutia type",
                value: u64::from(v),
            }),
        }
    }

    /// The 2-bit type code.
    pub fn code(self) -> u8 {
        match self {
            MinutiaKind::Other => 0,
            MinutiaKind::Ending => 1,
            MinutiaKind::Bifurcation => 2,
        }
    }
}

/// One minutia exactly as a record stores it (angle in the record's own
/// unit: 360/256 degrees for ISO, 2 degrees for ANSI 378).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecordMinutia {
    /// Ending, bifurcation or other.
    pub kind: MinutiaKind,
    /// X in pixels from the left edge (14 bits).
    pub x: u16,
    /// Y in pixels from the top edge (14 bits).
    pub y: u16,
    /// Direction in the record's angle unit, counter-clockwise from the X axis.
    pub angle: u8,
    /// Minutia quality (0 = not reported in 2005; 0..=100, 254, 255 in 2011).
    pub quality: u8,
}

pub(crate) fn read_minutia(
    r: &mut Reader<'_>,
    with_quality: bool,
) -> Result<RecordMinutia, FormatError> {
    let off = r.pos();
    let xw = r.u16("minutia x")?;
    let yw = r.u16("minutia y")?;
    let angle = r.u8("minutia angle")?;
    let quality = if with_quality {
        r.u8("minutia quality")?
    } else {
        0
    };
    Ok(RecordMinutia {
        kind: MinutiaKind::from_code((xw >> 14) as u8, off)?,
        x: xw & 0x3fff,
        y: yw & 0x3fff,
        angle,
        quality,
    })
}

pub(crate) fn write_minutia(
    w: &mut Writer,
    m: &RecordMinutia,
    with_quality: bool,
) -> Result<(), FormatError> {
    if m.x > 0x3fff {
        return Err(FormatError::Unencodable {
            field: "minutia x",
            value: u64::from(m.x),
        });
    }
    if m.y > 0x3fff {
        return Err(FormatError::Unencodable {
            field: "minutia y",
            value: u64::from(m.y),
        });
    }
    w.u16((u16::from(m.kind.code()) << 14) | m.x);
    w.u16(m.y);
    w.u8(m.angle);
    if with_quality {
        w.u8(m.quality);
    }
    Ok(())
}

/// One ridge count between two minutiae (indices into the view's minutiae).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RidgeCountEdge {
    /// Index of the centre minutia.
    pub from: u8,
    /// Index of the neighbouring minutia.
    pub to: u8,
    /// Number of ridges crossed between them.
    pub count: u8,
}

/// Ridge count extended data (type 0x0001).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RidgeCounts {
    /// Extraction method: 0 non-specific, 1 four-neighbour (quadrants), 2 eight-neighbour (octants).
    pub method: u8,
    /// The counted edges.
    pub edges: Vec<RidgeCountEdge>,
    /// Bytes after the last whole edge (some writers leave a partial triple).
    pub trailing: Vec<u8>,
}

/// A core point of the core/delta extended data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Core {
    /// X in pixels.
    pub x: u16,
    /// Y in pixels.
    pub y: u16,
    /// Direction, when the writer recorded one.
    pub angle: Option<u8>,
}

/// A delta point of the core/delta extended data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// X in pixels.
    pub x: u16,
    /// Y in pixels.
    pub y: u16,
    /// The three delta directions, when the writer recorded them.
    pub angles: Option<[u8; 3]>,
}

/// Core and delta extended data (type 0x0002).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoreDelta {
    /// Core points.
    pub cores: Vec<Core>,
    /// Delta points.
    pub deltas: Vec<Delta>,
}

/// One extended data block of a finger view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExtendedBlock {
    /// Ridge count data (type 0x0001).
    RidgeCounts(RidgeCounts),
    /// Core and delta data (type 0x0002).
    CoreDelta(CoreDelta),
    /// Any other block (reserved or vendor-defined), kept verbatim.
    Other {
        /// Block type identifier.
        type_id: u16,
        /// Block body.
        data: Vec<u8>,
    },
}

/// Whether an extended block's length field counts its 4-byte header
/// (ANSI 378, ISO 19794-2:2011) or only its body (ISO 19794-2:2005).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockLength {
    BodyOnly,
    WithHeader,
}

const RIDGE_COUNT: u16 = 1;
const CORE_DELTA: u16 = 2;

/// Reads the extended data area (2-byte total length, then blocks).
pub(crate) fn read_extended(
    r: &mut Reader<'_>,
    conv: BlockLength,
) -> Result<Vec<ExtendedBlock>, FormatError> {
    let len_off = r.pos();
    let total = usize::from(r.u16("extended data length")?);
    if total > r.remaining() {
        return Err(FormatError::BadLength {
            offset: len_off,
            field: "extended data length",
            declared: total as u64,
            detail: "more than the bytes left in the record",
        });
    }
    let mut area = r.sub(total, "extended data")?;
    let mut blocks = Vec::new();
    while area.remaining() > 0 {
        let type_id = area.u16("extended block type")?;
        let blen_off = area.pos();
        let blen = usize::from(area.u16("extended block length")?);
        let body_len = match conv {
            BlockLength::BodyOnly => blen,
            BlockLength::WithHeader => blen.checked_sub(4).ok_or(FormatError::BadLength {
                offset: blen_off,
                field: "extended block length",
                declared: blen as u64,
                detail: "less than its own 4-byte header",
            })?,
        };
        if body_len > area.remaining() {
            return Err(FormatError::BadLength {
                offset: blen_off,
                field: "extended block length",
                declared: blen as u64,
                detail: "overruns the extended data area",
            });
        }
        let mut body = area.sub(body_len, "extended block body")?;
        blocks.push(match type_id {
            RIDGE_COUNT => ExtendedBlock::RidgeCounts(read_ridge_counts(&mut body)?),
            CORE_DELTA => ExtendedBlock::CoreDelta(read_core_delta(&mut body)?),
            _ => ExtendedBlock::Other {
                type_id,
                data: body.bytes(body_len, "extended block body")?.to_vec(),
            },
        });
    }
    Ok(blocks)
}

fn read_ridge_counts(r: &mut Reader<'_>) -> Result<RidgeCounts, FormatError> {
    let method = r.u8("ridge count method")?;
    let mut edges = Vec::new();
    while r.remaining() >= 3 {
        edges.push(RidgeCountEdge {
            from: r.u8("ridge count index")?,
            to: r.u8("ridge count index")?,
            count: r.u8("ridge count")?,
        });
    }
    let trailing = r.bytes(r.remaining(), "ridge count trailing")?.to_vec();
    Ok(RidgeCounts {
        method,
        edges,
        trailing,
    })
}

fn read_core_delta(r: &mut Reader<'_>) -> Result<CoreDelta, FormatError> {
    let ncores = r.u8("core count")? & 0x0f;
    let mut cores = Vec::with_capacity(usize::from(ncores));
    for _ in 0..ncores {
        let xw = r.u16("core x")?;
        let y = r.u16("core y")? & 0x3fff;
        let angle = if xw & 0x4000 != 0 {
            Some(r.u8("core angle")?)
        } else {
            None
        };
        cores.push(Core {
            x: xw & 0x3fff,
            y,
            angle,
        });
    }
    let ndeltas = r.u8("delta count")? & 0x0f;
    let mut deltas = Vec::with_capacity(usize::from(ndeltas));
    for _ in 0..ndeltas {
        let xw = r.u16("delta x")?;
        let y = r.u16("delta y")? & 0x3fff;
        let angles = if xw & 0x4000 != 0 {
            Some([
                r.u8("delta angle")?,
                r.u8("delta angle")?,
                r.u8("delta angle")?,
            ])
        } else {
            None
        };
        deltas.push(Delta {
            x: xw & 0x3fff,
            y,
            angles,
        });
    }
    if r.remaining() > 0 {
        return Err(FormatError::TrailingBytes {
            offset: r.pos(),
            count: r.remaining(),
        });
    }
    Ok(CoreDelta { cores, deltas })
}

/// Writes the extended data area including its 2-byte total length.
pub(crate) fn write_extended(
    w: &mut Writer,
    blocks: &[ExtendedBlock],
    conv: BlockLength,
) -> Result<(), FormatError> {
    let mut area = Writer::default();
    for b in blocks {
        let mut body = Writer::default();
        let type_id = match b {
            ExtendedBlock::RidgeCounts(rc) => {
                body.u8(rc.method);
                for e in &rc.edges {
                    body.u8(e.from);
                    body.u8(e.to);
                    body.u8(e.count);
                }
                body.bytes(&rc.trailing);
                RIDGE_COUNT
            }
            ExtendedBlock::CoreDelta(cd) => {
                body.u8(fit::<u8>(cd.cores.len(), "core count")
                    .and_then(|n| check4(n, "core count"))?);
                for c in &cd.cores {
                    body.u16(if c.angle.is_some() { 0x4000 } else { 0 } | check14(c.x, "core x")?);
                    body.u16(check14(c.y, "core y")?);
                    if let Some(a) = c.angle {
                        body.u8(a);
                    }
                }
                body.u8(fit::<u8>(cd.deltas.len(), "delta count")
                    .and_then(|n| check4(n, "delta count"))?);
                for d in &cd.deltas {
                    body.u16(
                        if d.angles.is_some() { 0x4000 } else { 0 } | check14(d.x, "delta x")?,
                    );
                    body.u16(check14(d.y, "delta y")?);
                    if let Some(a) = d.angles {
                        body.bytes(&a);
                    }
                }
                CORE_DELTA
            }
            ExtendedBlock::Other { type_id, data } => {
                body.bytes(data);
                *type_id
            }
        };
        area.u16(type_id);
        let blen = match conv {
            BlockLength::BodyOnly => body.len(),
            BlockLength::WithHeader => body.len() + 4,
        };
        area.u16(fit(blen, "extended block length")?);
        area.bytes(&body.buf);
    }
    w.u16(fit(area.len(), "extended data length")?);
    w.bytes(&area.buf);
    Ok(())
}

fn check14(v: u16, field: &'static str) -> Result<u16, FormatError> {
    if v > 0x3fff {
        Err(FormatError::Unencodable {
            field,
            value: u64::from(v),
        })
    } else {
        Ok(v)
    }
}

fn check4(v: u8, field: &'static str) -> Result<u8, FormatError> {
    if v > 15 {
        Err(FormatError::Unencodable {
            field,
            value: u64::from(v),
        })
    } else {
        Ok(v)
    }
}
