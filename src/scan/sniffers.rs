//! Positive recognition of the non-pickle files that `--allow-globals` releases: compressed
//! wrappers (refused: joblib unpickles what they hold), `.npy` arrays (refused when they hold
//! Python objects), safetensors and GGUF headers, and UTF-8 text. Every read is bounded.

use std::io::Read;

/// Largest `.npy` header read (numpy itself caps headers at 10,000 bytes by default).
const MAX_NPY_HEADER: usize = 1 << 16;
/// Largest safetensors JSON header parsed.
const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;
/// How much of a file is read to decide whether it is text.
const MAX_TEXT_BYTES: u64 = 1 << 30;

/// The compression wrapper a head starts with, among those `joblib.load` unwraps.
pub(crate) fn compressed(head: &[u8]) -> Option<&'static str> {
    Some(match head {
        [0x1f, 0x8b, ..] => "gzip",
        [b'B', b'Z', b'h', ..] => "bz2",
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => "xz",
        [0x5d, 0x00, 0x00, ..] => "lzma",
        [0x04, 0x22, 0x4d, 0x18, ..] => "lz4",
        [b'Z', b'F', ..] => "joblib ZF (zlib)",
        [0x78, flg, ..] if (0x7800u16 | u16::from(*flg)).is_multiple_of(31) => "zlib",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        _ => return None,
    })
}

/// Whether a `.npy` file holds Python objects (its `descr` names an `O` type anywhere, structured
/// fields included): `Some(true)` / `Some(false)`, or None when the header is malformed.
pub(crate) fn npy_holds_objects<R: Read>(mut r: R) -> std::io::Result<Option<bool>> {
    let mut pre = [0u8; 8];
    if r.read_exact(&mut pre).is_err() || &pre[..6] != b"\x93NUMPY" {
        return Ok(None);
    }
    let len = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            usize::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            u32::from_le_bytes(b) as usize
        }
        _ => return Ok(None),
    };
    if len > MAX_NPY_HEADER {
        return Ok(None);
    }
    let mut header = vec![0u8; len];
    if r.read_exact(&mut header).is_err() {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(&header) else {
        return Ok(None);
    };
    let Some(at) = text.find("'descr':") else {
        return Ok(None);
    };
    let descr = &text[at + "'descr':".len()..];
    let end = ["'fortran_order'", "'shape'"]
        .iter()
        .filter_map(|k| descr.find(k))
        .min()
        .unwrap_or(descr.len());
    // Conservative: any `O` in the description (a type code or a field name) is refused.
    Ok(Some(descr[..end].contains('O')))
}

/// A safetensors file: an 8-byte little-endian length and that many bytes of a JSON object.
pub(crate) fn safetensors_header_ok<R: Read>(mut r: R) -> std::io::Result<bool> {
    let mut n = [0u8; 8];
    if r.read_exact(&mut n).is_err() {
        return Ok(false);
    }
    let len = u64::from_le_bytes(n);
    if len > MAX_SAFETENSORS_HEADER {
        return Ok(false);
    }
    let mut header = Vec::new();
    r.take(len).read_to_end(&mut header)?;
    if header.len() as u64 != len {
        return Ok(false);
    }
    Ok(matches!(
        serde_json::from_slice::<serde_json::Value>(&header),
        Ok(serde_json::Value::Object(_))
    ))
}

/// A GGUF file: the magic and a known version (1 to 3).
pub(crate) fn gguf_header_ok(head: &[u8]) -> bool {
    match head {
        [b'G', b'G', b'U', b'F', v0, v1, v2, v3, ..] => {
            matches!(u32::from_le_bytes([*v0, *v1, *v2, *v3]), 1..=3)
        }
        _ => false,
    }
}

/// UTF-8 text without control characters other than tab, newline and carriage return (the first
/// GiB is read; a longer file is not taken for text).
pub(crate) fn is_text<R: Read>(r: R) -> std::io::Result<bool> {
    let mut r = r.take(MAX_TEXT_BYTES + 1);
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(carry.is_empty());
        }
        total += n as u64;
        if total > MAX_TEXT_BYTES {
            return Ok(false);
        }
        carry.extend_from_slice(&buf[..n]);
        let valid = match std::str::from_utf8(&carry) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => return Ok(false),
        };
        let text = std::str::from_utf8(&carry[..valid]).expect("checked above");
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Ok(false);
        }
        carry.drain(..valid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_wrappers_are_named() {
        assert_eq!(compressed(&[0x1f, 0x8b, 8]), Some("gzip"));
        assert_eq!(compressed(b"BZh91AY"), Some("bz2"));
        assert_eq!(compressed(b"\xfd7zXZ\x00\x00"), Some("xz"));
        assert_eq!(compressed(b"ZF0x00000"), Some("joblib ZF (zlib)"));
        assert_eq!(compressed(b"hello"), None);
    }

    #[test]
    fn npy_object_arrays_are_told_apart() {
        let npy = |descr: &str| {
            let h = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (2,), }}\n");
            let mut v = b"\x93NUMPY\x01\x00".to_vec();
            v.extend_from_slice(&(h.len() as u16).to_le_bytes());
            v.extend_from_slice(h.as_bytes());
            v
        };
        assert_eq!(npy_holds_objects(&npy("'<f8'")[..]).unwrap(), Some(false));
        assert_eq!(npy_holds_objects(&npy("'|O'")[..]).unwrap(), Some(true));
        assert_eq!(
            npy_holds_objects(&npy("[('a', '<f8'), ('b', '|O')]")[..]).unwrap(),
            Some(true)
        );
        assert_eq!(npy_holds_objects(&b"\x93NUMPY\x09\x00"[..]).unwrap(), None);
    }

    #[test]
    fn text_and_headers() {
        assert!(is_text(&b"a: 1\n\tb\r\n"[..]).unwrap());
        assert!(is_text("é€".as_bytes()).unwrap());
        assert!(!is_text(&b"a\x00b"[..]).unwrap());
        assert!(!is_text(&b"a\x1b[31m"[..]).unwrap());
        assert!(!is_text(&b"\xff\xfe"[..]).unwrap());
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        assert!(safetensors_header_ok(&st[..]).unwrap());
        assert!(!safetensors_header_ok(&st[..9]).unwrap());
        assert!(gguf_header_ok(b"GGUF\x03\x00\x00\x00"));
        assert!(!gguf_header_ok(b"GGUF\x09\x00\x00\x00"));
    }
}
