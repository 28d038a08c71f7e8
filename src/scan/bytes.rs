//! The bytes of a checked file held in memory, in segments: a reader that consumes them front to
//! back (the Python package's unpickler) can release each segment once past it, so that a model
//! and the bytes it was read from are never both held whole.

use std::io::{self, Read};

/// Bytes per segment: large enough that per-segment costs vanish, small enough that what a
/// consuming reader holds beyond what it still needs stays a few MiB.
pub const SEGMENT_BYTES: usize = 4 << 20;

/// A file's bytes, in segments of [`SEGMENT_BYTES`] (the last may be shorter).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileBytes {
    segments: Vec<Vec<u8>>,
    len: u64,
}

impl FileBytes {
    /// Reads exactly `size` bytes from `r`, allocating each segment only as its bytes arrive (a
    /// size claimed but not delivered costs no memory). A short read is an `UnexpectedEof` error.
    pub fn read_from(r: &mut dyn Read, size: u64) -> io::Result<FileBytes> {
        let mut out = FileBytes::default();
        while out.len < size {
            let want = (size - out.len).min(SEGMENT_BYTES as u64);
            let mut seg = Vec::new();
            seg.try_reserve_exact(want as usize)
                .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
            r.take(want).read_to_end(&mut seg)?;
            if seg.len() as u64 != want {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            out.len += want;
            out.segments.push(seg);
        }
        Ok(out)
    }

    /// Bytes in all.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader over the bytes, front to back.
    pub fn reader(&self) -> impl Read + '_ {
        SegmentReader {
            segments: &self.segments,
            at: 0,
            off: 0,
        }
    }

    /// The bytes as one contiguous copy.
    pub fn to_vec(&self) -> Vec<u8> {
        self.segments.concat()
    }

    /// The segments, to hand over without a copy.
    pub fn into_segments(self) -> Vec<Vec<u8>> {
        self.segments
    }
}

impl From<Vec<u8>> for FileBytes {
    fn from(v: Vec<u8>) -> Self {
        let len = v.len() as u64;
        FileBytes {
            segments: if v.is_empty() { Vec::new() } else { vec![v] },
            len,
        }
    }
}

struct SegmentReader<'a> {
    segments: &'a [Vec<u8>],
    at: usize,
    off: usize,
}

impl Read for SegmentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(seg) = self.segments.get(self.at) {
            if self.off < seg.len() {
                let n = buf.len().min(seg.len() - self.off);
                buf[..n].copy_from_slice(&seg[self.off..self.off + n]);
                self.off += n;
                return Ok(n);
            }
            self.at += 1;
            self.off = 0;
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_hold_exactly_the_bytes_read() {
        let data: Vec<u8> = (0..(SEGMENT_BYTES * 2 + 7)).map(|i| i as u8).collect();
        let b = FileBytes::read_from(&mut &data[..], data.len() as u64).unwrap();
        assert_eq!(b.len(), data.len() as u64);
        assert_eq!(b.segments.len(), 3);
        assert_eq!(b.to_vec(), data);
        let mut back = Vec::new();
        b.reader().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let e = FileBytes::read_from(&mut &data[..10], 11).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(FileBytes::read_from(&mut &data[..0], 0).unwrap().is_empty());
    }
}
