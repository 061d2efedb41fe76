//! Bounds-checked big-endian reading and writing used by the record codecs.

use super::error::FormatError;

/// A cursor over a byte slice whose every read is bounds-checked and
/// reports the offset and field name of a short read.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FormatError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|e| self.data.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(FormatError::Truncated {
                offset: self.pos,
                field,
                needed: n,
                available: self.remaining(),
            }),
        }
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, FormatError> {
        let b = self.bytes(1, field)?;
        Ok(b.first().copied().unwrap_or(0))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, FormatError> {
        let b = self.bytes(2, field)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        Ok(u16::from_be_bytes(a))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, FormatError> {
        let b = self.bytes(4, field)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    /// A sub-reader over the next `n` bytes; offsets in its errors are
    /// absolute because it keeps the whole slice.
    pub(crate) fn sub(&mut self, n: usize, field: &'static str) -> Result<Reader<'a>, FormatError> {
        let start = self.pos;
        self.bytes(n, field)?;
        Ok(Reader {
            data: self.data.get(..start + n).unwrap_or(self.data),
            pos: start,
        })
    }
}

/// Big-endian writer with checked narrowing.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
    /// Overwrites a big-endian u32 placeholder at `at`.
    pub(crate) fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(s) = self.buf.get_mut(at..at + 4) {
            s.copy_from_slice(&v.to_be_bytes());
        }
    }
}

/// Narrows a count or length for encoding, naming the field on overflow.
pub(crate) fn fit<T: TryFrom<usize>>(v: usize, field: &'static str) -> Result<T, FormatError> {
    T::try_from(v).map_err(|_| FormatError::Unencodable {
        field,
        value: v as u64,
    })
}
