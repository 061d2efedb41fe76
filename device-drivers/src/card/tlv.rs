//! BER-TLV (ISO/IEC 7816-4 / ITU-T X.690 subset) as used by ICAO 9303 data groups and APDUs.
//!
//! Parsing never panics: every malformed input is answered with a [`TlvError`] that says what
//! was wrong and at which byte offset (relative to the start of the buffer that was parsed).
//! Supported: multi-byte tags (up to 4 bytes), short and long-form definite lengths (up to 4
//! length bytes). Indefinite lengths are rejected, as ICAO 9303 forbids them.

use thiserror::Error;

/// Largest value length accepted (16 MiB): far above any eMRTD file, it stops absurd headers early.
pub const MAX_LENGTH: usize = 16 * 1024 * 1024;
/// Deepest nesting [`Node::parse`] follows, so crafted input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 16;

/// How a BER-TLV encoding misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ended inside a tag, a length or a value.
    #[error("TLV truncated at offset {offset}: {what} needs {needed} more byte(s)")]
    Truncated {
        /// Offset where the incomplete element starts.
        offset: usize,
        /// Which part was cut short ("tag", "length", "value").
        what: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// A tag longer than 4 bytes.
    #[error("TLV tag at offset {offset} is longer than 4 bytes")]
    TagTooLong {
        /// Offset of the tag.
        offset: usize,
    },
    /// The indefinite length form (0x80), which ICAO 9303 does not allow.
    #[error("TLV at offset {offset} uses the indefinite length form")]
    IndefiniteLength {
        /// Offset of the length byte.
        offset: usize,
    },
    /// A length field with more than 4 length bytes or above [`MAX_LENGTH`].
    #[error("TLV length at offset {offset} is too large ({detail})")]
    LengthTooLarge {
        /// Offset of the length field.
        offset: usize,
        /// What was too large.
        detail: String,
    },
    /// A tag other than the one the structure requires.
    #[error("expected tag {expected:#X} at offset {offset}, found {found:#X}")]
    UnexpectedTag {
        /// Offset of the element.
        offset: usize,
        /// The required tag.
        expected: u32,
        /// The tag present.
        found: u32,
    },
    /// A required element is absent.
    #[error("required element with tag {tag:#X} is missing inside {context}")]
    Missing {
        /// The missing tag.
        tag: u32,
        /// The enclosing structure.
        context: &'static str,
    },
    /// Bytes left over after the expected element(s).
    #[error("{count} unexpected trailing byte(s) at offset {offset}")]
    TrailingData {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many bytes remain.
        count: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("TLV nesting deeper than {MAX_DEPTH} at offset {offset}")]
    TooDeep {
        /// Offset of the element that was too deep.
        offset: usize,
    },
    /// A primitive value was asked for its children.
    #[error("TLV with tag {tag:#X} at offset {offset} is primitive, not constructed")]
    NotConstructed {
        /// The tag.
        tag: u32,
        /// Offset of the element.
        offset: usize,
    },
}

/// A BER tag, held as its encoded bytes packed big-endian into a `u32` (e.g. `0x5F1F`, `0x7F61`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// The first (leading) tag byte.
    fn first_byte(self) -> u8 {
        let bytes = self.0.to_be_bytes();
        bytes.iter().copied().find(|b| *b != 0).unwrap_or(0)
    }

    /// True if the constructed bit (0x20 of the first byte) is set.
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// The class bits (0x00 universal, 0x40 application, 0x80 context, 0xC0 private).
    pub fn class(self) -> u8 {
        self.first_byte() & 0xC0
    }

    /// The encoded tag bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        let bytes = self.0.to_be_bytes();
        let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
        bytes.get(skip..).unwrap_or_default().to_vec()
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

/// One TLV element borrowed from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag.
    pub tag: Tag,
    /// The value bytes.
    pub value: &'a [u8],
    /// The whole element (tag, length and value) as encoded.
    pub raw: &'a [u8],
    /// Offset of the element in the buffer that was parsed (for error messages).
    pub offset: usize,
}

impl<'a> Tlv<'a> {
    /// Parses one element at the start of `input`; returns it and the remaining bytes.
    pub fn parse(input: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), TlvError> {
        Self::parse_at(input, 0)
    }

    /// Like [`Tlv::parse`], reporting offsets relative to `base`.
    pub fn parse_at(input: &'a [u8], base: usize) -> Result<(Tlv<'a>, &'a [u8]), TlvError> {
        let (tag, tag_len) = read_tag(input, base)?;
        let rest = input.get(tag_len..).unwrap_or_default();
        let (len, len_len) = read_length(rest, base + tag_len)?;
        let header = tag_len + len_len;
        let total = header.checked_add(len).ok_or(TlvError::LengthTooLarge {
            offset: base + tag_len,
            detail: "overflow".into(),
        })?;
        if input.len() < total {
            return Err(TlvError::Truncated {
                offset: base,
                what: "value",
                needed: total - input.len(),
            });
        }
        let (raw, remaining) = input.split_at(total);
        let value = raw.get(header..).unwrap_or_default();
        Ok((
            Tlv {
                tag,
                value,
                raw,
                offset: base,
            },
            remaining,
        ))
    }

    /// Parses exactly one element spanning all of `input`, with the given tag.
    pub fn parse_exact(input: &'a [u8], tag: u32) -> Result<Tlv<'a>, TlvError> {
        let (tlv, rest) = Self::parse(input)?;
        if tlv.tag.0 != tag {
            return Err(TlvError::UnexpectedTag {
                offset: 0,
                expected: tag,
                found: tlv.tag.0,
            });
        }
        if !rest.is_empty() {
            return Err(TlvError::TrailingData {
                offset: input.len() - rest.len(),
                count: rest.len(),
            });
        }
        Ok(tlv)
    }

    /// Offset of the value in the parsed buffer.
    pub fn value_offset(&self) -> usize {
        self.offset + self.raw.len() - self.value.len()
    }

    /// The child elements of a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, TlvError> {
        if !self.tag.is_constructed() {
            return Err(TlvError::NotConstructed {
                tag: self.tag.0,
                offset: self.offset,
            });
        }
        parse_all_at(self.value, self.value_offset())
    }

    /// The first child with `tag`, if any.
    pub fn find(&self, tag: u32) -> Result<Option<Tlv<'a>>, TlvError> {
        Ok(self.children()?.into_iter().find(|c| c.tag.0 == tag))
    }

    /// The first child with `tag`, or [`TlvError::Missing`].
    pub fn require(&self, tag: u32, context: &'static str) -> Result<Tlv<'a>, TlvError> {
        self.find(tag)?.ok_or(TlvError::Missing { tag, context })
    }
}

/// Parses a sequence of elements that fills all of `input`.
pub fn parse_all(input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    parse_all_at(input, 0)
}

/// Like [`parse_all`], reporting offsets relative to `base`.
pub fn parse_all_at(input: &[u8], base: usize) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let offset = base + input.len() - rest.len();
        let (tlv, next) = Tlv::parse_at(rest, offset)?;
        out.push(tlv);
        rest = next;
    }
    Ok(out)
}

fn read_tag(input: &[u8], base: usize) -> Result<(Tag, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated {
        offset: base,
        what: "tag",
        needed: 1,
    })?;
    let mut tag = u32::from(first);
    let mut len = 1usize;
    if first & 0x1F == 0x1F {
        loop {
            let b = *input.get(len).ok_or(TlvError::Truncated {
                offset: base,
                what: "tag",
                needed: 1,
            })?;
            len += 1;
            if len > 4 {
                return Err(TlvError::TagTooLong { offset: base });
            }
            tag = (tag << 8) | u32::from(b);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    Ok((Tag(tag), len))
}

fn read_length(input: &[u8], offset: usize) -> Result<(usize, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated {
        offset,
        what: "length",
        needed: 1,
    })?;
    if first < 0x80 {
        return Ok((usize::from(first), 1));
    }
    if first == 0x80 {
        return Err(TlvError::IndefiniteLength { offset });
    }
    let n = usize::from(first & 0x7F);
    if n > 4 {
        return Err(TlvError::LengthTooLarge {
            offset,
            detail: format!("{n} length bytes"),
        });
    }
    let bytes = input.get(1..1 + n).ok_or(TlvError::Truncated {
        offset,
        what: "length",
        needed: (1 + n).saturating_sub(input.len()),
    })?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    if len > MAX_LENGTH {
        return Err(TlvError::LengthTooLarge {
            offset,
            detail: format!("{len} bytes"),
        });
    }
    Ok((len, 1 + n))
}

/// Encodes a definite length in the shortest form.
pub fn encode_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let sig = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | sig.len() as u8);
        out.extend_from_slice(sig);
    }
}

/// Encodes one element: tag, shortest length, value.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Tag(tag).to_bytes();
    out.reserve(value.len() + 5);
    encode_length(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

/// Encodes a constructed element from already-encoded children.
pub fn encode_constructed(tag: u32, children: &[Vec<u8>]) -> Vec<u8> {
    encode(tag, &children.concat())
}

/// An owned TLV tree, for building and for whole-structure round trips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A primitive element.
    Primitive {
        /// The tag.
        tag: Tag,
        /// The value bytes.
        value: Vec<u8>,
    },
    /// A constructed element with children.
    Constructed {
        /// The tag.
        tag: Tag,
        /// The children in order.
        children: Vec<Node>,
    },
}

impl Node {
    /// Parses a sequence of elements, descending into constructed ones (up to [`MAX_DEPTH`]).
    pub fn parse(input: &[u8]) -> Result<Vec<Node>, TlvError> {
        Self::parse_depth(input, 0, 0)
    }

    fn parse_depth(input: &[u8], base: usize, depth: usize) -> Result<Vec<Node>, TlvError> {
        if depth > MAX_DEPTH {
            return Err(TlvError::TooDeep { offset: base });
        }
        parse_all_at(input, base)?
            .into_iter()
            .map(|t| {
                if t.tag.is_constructed() {
                    Ok(Node::Constructed {
                        tag: t.tag,
                        children: Self::parse_depth(t.value, t.value_offset(), depth + 1)?,
                    })
                } else {
                    Ok(Node::Primitive {
                        tag: t.tag,
                        value: t.value.to_vec(),
                    })
                }
            })
            .collect()
    }

    /// The tag of this node.
    pub fn tag(&self) -> Tag {
        match self {
            Node::Primitive { tag, .. } | Node::Constructed { tag, .. } => *tag,
        }
    }

    /// Encodes this node (and its children) in DER-style shortest-length form.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Node::Primitive { tag, value } => encode(tag.0, value),
            Node::Constructed { tag, children } => {
                let inner: Vec<u8> = children.iter().flat_map(|c| c.encode()).collect();
                encode(tag.0, &inner)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn parses_multi_byte_tag_and_long_length() {
        let mut data = vec![0x5F, 0x2E, 0x82, 0x01, 0x00];
        data.extend(std::iter::repeat_n(0xAB, 256));
        let (tlv, rest) = Tlv::parse(&data).unwrap();
        assert_eq!(tlv.tag, Tag(0x5F2E));
        assert_eq!(tlv.value.len(), 256);
        assert_eq!(tlv.value_offset(), 5);
        assert!(rest.is_empty());
        assert!(!tlv.tag.is_constructed());
        assert_eq!(tlv.tag.class(), 0x40);
    }

    #[test]
    fn three_byte_tag() {
        let data = hex!("5F8101 01 AA");
        let (tlv, _) = Tlv::parse(&data).unwrap();
        assert_eq!(tlv.tag, Tag(0x5F8101));
        assert_eq!(tlv.value, &[0xAA]);
    }

    #[test]
    fn nested_constructed() {
        // EF.COM of the ICAO specimen: LDS 0107, Unicode 040000, tags 61 75.
        let data = hex!("60 14 5F01 04 30313037 5F36 06 303430303030 5C 02 6175");
        let top = Tlv::parse_exact(&data, 0x60).unwrap();
        let kids = top.children().unwrap();
        assert_eq!(kids.len(), 3);
        assert_eq!(kids[0].tag, Tag(0x5F01));
        assert_eq!(kids[0].value, b"0107");
        assert_eq!(top.require(0x5C, "EF.COM").unwrap().value, &[0x61, 0x75]);
        assert_eq!(kids[2].offset, 18);
        let nodes = Node::parse(&data).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].encode(), data.to_vec());
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(
            Tlv::parse(&hex!("5F")),
            Err(TlvError::Truncated {
                offset: 0,
                what: "tag",
                needed: 1
            })
        );
        assert!(matches!(
            Tlv::parse(&hex!("30 80 00 00")),
            Err(TlvError::IndefiniteLength { offset: 1 })
        ));
        assert!(matches!(
            Tlv::parse(&hex!("30 85 0000000001 00")),
            Err(TlvError::LengthTooLarge { .. })
        ));
        assert!(matches!(
            Tlv::parse(&hex!("1F FF FF FF 01 00")),
            Err(TlvError::TagTooLong { .. })
        ));
        assert!(matches!(
            Tlv::parse(&hex!("04 05 0102")),
            Err(TlvError::Truncated {
                what: "value",
                needed: 3,
                ..
            })
        ));
        assert!(matches!(
            Tlv::parse_exact(&hex!("04 01 00 00"), 0x04),
            Err(TlvError::TrailingData {
                offset: 3,
                count: 1
            })
        ));
        assert!(matches!(
            Tlv::parse_exact(&hex!("04 01 00"), 0x05),
            Err(TlvError::UnexpectedTag { .. })
        ));
        let prim = Tlv::parse_exact(&hex!("04 01 00"), 0x04).unwrap();
        assert!(matches!(
            prim.children(),
            Err(TlvError::NotConstructed { .. })
        ));
    }

    #[test]
    fn error_offsets_point_into_nested_data() {
        // Inner element claims 5 bytes but only 1 is there: offset is relative to the outer buffer.
        let data = hex!("61 03 5F1F 05");
        let top = Tlv::parse(&data).unwrap().0;
        match top.children() {
            Err(TlvError::Truncated { offset, .. }) => assert_eq!(offset, 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut data = vec![0x04, 0x00];
        for _ in 0..40 {
            data = encode(0x30, &data);
        }
        assert!(matches!(Node::parse(&data), Err(TlvError::TooDeep { .. })));
    }

    #[test]
    fn encode_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536] {
            let value = vec![7u8; len];
            let enc = encode(0x7F61, &value);
            let (tlv, rest) = Tlv::parse(&enc).unwrap();
            assert!(rest.is_empty());
            assert_eq!(tlv.tag, Tag(0x7F61));
            assert_eq!(tlv.value.len(), len);
        }
        let mut out = Vec::new();
        encode_length(128, &mut out);
        assert_eq!(out, vec![0x81, 0x80]);
        out.clear();
        encode_length(0x1234, &mut out);
        assert_eq!(out, vec![0x82, 0x12, 0x34]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let data = hex!("77 0C 61 0A 5F1F 07 50 3C 55 54 4F 3C 3C");
        assert!(Node::parse(&data).is_ok());
        for cut in 0..data.len() {
            let r = Node::parse(&data[..cut]);
            if cut == 0 {
                assert_eq!(r, Ok(vec![]));
            } else {
                assert!(r.is_err(), "cut {cut} parsed");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = Node::parse(&data);
            let _ = parse_all(&data);
        }

        #[test]
        fn round_trip(tag_choice in 0usize..5, value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let tag = [0x04u32, 0x5F1F, 0x5F2E, 0x9F8101, 0x80][tag_choice];
            let enc = encode(tag, &value);
            let t = Tlv::parse_exact(&enc, tag).unwrap();
            proptest::prop_assert_eq!(t.value, &value[..]);
        }
    }
}
