//! The input: a buffered, offset- and frame-aware byte source, with the bounded readers every
//! length read from the pickle goes through.

use std::io::Read;
use std::rc::Rc;

use super::*;

pub(super) const CHUNK: usize = 64 * 1024;

pub(super) struct CountingReader<R> {
    pub(super) inner: R,
    pub(super) count: Rc<Cell<u64>>,
    pub(super) max: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.count.get() > self.max {
            return Err(io::Error::other("compressed input byte limit reached"));
        }
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

pub(super) struct Input<R> {
    pub(super) inner: R,
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
    pub(super) end: usize,
    pub(super) eof: bool,
    /// Stream offset of `buf[pos]`.
    pub(super) offset: u64,
    pub(super) max: u64,
    /// Bytes left in the current protocol-4 frame, if inside one.
    pub(super) frame: Option<u64>,
}

impl<R: Read> Input<R> {
    pub(super) fn new(inner: R, max: u64) -> Self {
        Input {
            inner,
            buf: vec![0; CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
            max,
            frame: None,
        }
    }

    pub(super) fn into_inner(self) -> R {
        self.inner
    }

    pub(super) fn limit_err(&self) -> PickleError {
        PickleError::Limit {
            what: "input bytes",
            limit: self.max,
        }
    }

    pub(super) fn truncated(&self) -> PickleError {
        PickleError::Truncated {
            offset: self.offset,
        }
    }

    pub(super) fn malformed(&self, detail: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            offset: self.offset,
            detail: detail.into(),
        }
    }

    /// Makes bytes available; false at end of input.
    pub(super) fn fill(&mut self) -> Result<bool, PickleError> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.pos = 0;
                    self.end = n.min(self.buf.len());
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub(super) fn available(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    pub(super) fn advance(&mut self, n: usize) -> Result<(), PickleError> {
        self.pos = self.pos.saturating_add(n).min(self.end);
        self.offset = self.offset.saturating_add(n as u64);
        if self.offset > self.max {
            return Err(self.limit_err());
        }
        Ok(())
    }

    pub(super) fn check_room(&self, n: u64) -> Result<(), PickleError> {
        match self.offset.checked_add(n) {
            Some(end) if end <= self.max => Ok(()),
            _ => Err(self.limit_err()),
        }
    }

    pub(super) fn frame_left(&self) -> u64 {
        self.frame.unwrap_or(0)
    }

    /// Accounts for an `n`-byte read that is part of an opcode. A read that starts exactly at
    /// the end of a frame leaves the frame (pickle's `_Unframer` then reads from the file). A
    /// read that starts inside a frame and runs past its end is refused.
    pub(super) fn frame_take(&mut self, n: u64) -> Result<(), PickleError> {
        match self.frame {
            Some(0) => self.frame = None,
            Some(left) if n > left => {
                return Err(self.malformed(format!(
                    "a {n}-byte read runs past the end of the current FRAME ({left} bytes left)"
                )))
            }
            Some(left) => self.frame = Some(left - n),
            None => {}
        }
        Ok(())
    }

    pub(super) fn byte(&mut self) -> Result<u8, PickleError> {
        if !self.fill()? {
            return Err(self.truncated());
        }
        let b = *self.available().first().ok_or_else(|| self.truncated())?;
        self.advance(1)?;
        Ok(b)
    }

    pub(super) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        self.frame_take(N as u64)?;
        let mut out = [0u8; N];
        let mut got = 0usize;
        while got < N {
            if !self.fill()? {
                return Err(self.truncated());
            }
            let avail = self.available();
            let k = avail.len().min(N - got);
            if let (Some(dst), Some(src)) = (out.get_mut(got..got + k), avail.get(..k)) {
                dst.copy_from_slice(src);
            }
            got += k;
            self.advance(k)?;
        }
        Ok(out)
    }

    /// Reads `n` bytes (n already checked against a small cap) into a vector.
    pub(super) fn take(&mut self, n: usize) -> Result<Vec<u8>, PickleError> {
        self.check_room(n as u64)?;
        let mut out = Vec::new();
        while out.len() < n {
            if !self.fill()? {
                return Err(self.truncated());
            }
            let avail = self.available();
            let k = avail.len().min(n - out.len());
            out.extend_from_slice(avail.get(..k).unwrap_or(&[]));
            self.advance(k)?;
        }
        Ok(out)
    }

    /// Reads and drops `n` bytes in chunks, showing each chunk to `see`.
    pub(super) fn skip_with(
        &mut self,
        n: u64,
        mut see: impl FnMut(&[u8]),
    ) -> Result<(), PickleError> {
        self.check_room(n)?;
        let mut left = n;
        while left > 0 {
            if !self.fill()? {
                return Err(self.truncated());
            }
            let avail = self.available();
            let k = usize::try_from(left).unwrap_or(usize::MAX).min(avail.len());
            see(avail.get(..k).unwrap_or(&[]));
            left -= k as u64;
            self.advance(k)?;
        }
        Ok(())
    }

    /// Reads one `\n`-terminated line. Returns its content without the newline, or `None` when
    /// it is longer than `cap` (the rest is read and dropped).
    pub(super) fn line(&mut self, cap: usize) -> Result<Option<Vec<u8>>, PickleError> {
        if self.frame == Some(0) {
            self.frame = None;
        }
        let mut out = Vec::new();
        let mut too_long = false;
        loop {
            if !self.fill()? {
                return Err(self.truncated());
            }
            let avail = self.available();
            let newline = avail.iter().position(|&b| b == b'\n');
            let (used, content) = match newline {
                Some(i) => (i + 1, i),
                None => (avail.len(), avail.len()),
            };
            if !too_long {
                if out.len().saturating_add(content) <= cap {
                    out.extend_from_slice(avail.get(..content).unwrap_or(&[]));
                } else {
                    too_long = true;
                    out = Vec::new();
                }
            }
            if let Some(left) = self.frame {
                if used as u64 > left {
                    return Err(
                        self.malformed("a text argument runs past the end of the current FRAME")
                    );
                }
                self.frame = Some(left - used as u64);
            }
            self.advance(used)?;
            if newline.is_some() {
                return Ok(if too_long { None } else { Some(out) });
            }
        }
    }

    /// After the final `STOP`: nothing may follow, inside the last frame or after it.
    pub(super) fn expect_end(&mut self) -> Result<(), PickleError> {
        if self.frame_left() > 0 || self.fill()? {
            return Err(self.malformed("trailing bytes after the final STOP"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
