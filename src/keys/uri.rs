//! A strict reader of RFC 7512 `pkcs11:` URIs, as modelseal uses them (keys/README.md).
//!
//! Path attributes (before `?`, separated by `;`): `token` and `object` (both required), and
//! `type` (`private` or `public`, accepted and not needed: modelseal uses both halves of the
//! pair). Query attributes (after `?`, separated by `&`): `module-path` and `pin-source`
//! (`file:/abs/path` or `file:///abs/path`). `pin-value` is refused with its own error. Every
//! other attribute, standard or vendor (`x-`), is refused rather than ignored: RFC 7512 lets a
//! consumer refuse a URI it cannot honour, and ignoring an attribute (`id`, `serial`, `slot-id`)
//! would select a key the URI's writer did not mean. Values are percent-decoded (`%XX`, two hex
//! digits), must be UTF-8 with no control characters, may not be empty or repeated. The URI is
//! at most 4096 bytes.

use std::path::PathBuf;

use crate::error::Pkcs11Error;

/// The scheme prefix.
pub const SCHEME: &str = "pkcs11:";
const MAX_URI_LEN: usize = 4096;

/// A parsed token key URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The token label (`token=`).
    pub token: String,
    /// The key objects' label (`object=`, CKA_LABEL).
    pub object: String,
    /// The module (`module-path=`), when the URI names one.
    pub module_path: Option<PathBuf>,
    /// The PIN file (`pin-source=file:`), when the URI names one.
    pub pin_source: Option<PathBuf>,
}

fn invalid(detail: impl Into<String>) -> Pkcs11Error {
    Pkcs11Error::InvalidUri {
        detail: detail.into(),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one value, refusing bad escapes, non-UTF-8 and control characters.
fn decode(raw: &str, name: &str) -> Result<String, Pkcs11Error> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex_val),
                bytes.get(i + 2).copied().and_then(hex_val),
            ) else {
                return Err(invalid(format!(
                    "{name}: '%' not followed by two hex digits"
                )));
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| invalid(format!("{name}: not UTF-8")))?;
    if s.is_empty() {
        return Err(invalid(format!("{name}: empty value")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(format!("{name}: control character")));
    }
    Ok(s)
}

impl Pkcs11Uri {
    /// Whether `s` is meant as a token key URI (starts with `pkcs11:`).
    pub fn is_uri(s: &str) -> bool {
        s.starts_with(SCHEME)
    }

    /// Parses `uri` strictly (see the module documentation).
    pub fn parse(uri: &str) -> Result<Pkcs11Uri, Pkcs11Error> {
        if uri.len() > MAX_URI_LEN {
            return Err(invalid(format!("longer than {MAX_URI_LEN} bytes")));
        }
        let rest = uri
            .strip_prefix(SCHEME)
            .ok_or_else(|| invalid("does not start with pkcs11:"))?;
        if rest.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b'#') {
            return Err(invalid(
                "raw space, control, non-ASCII or '#' character (percent-encode it)",
            ));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut token = None;
        let mut object = None;
        let mut kind = None;
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| invalid("a path attribute without '='"))?;
            let slot = match name {
                "token" => &mut token,
                "object" => &mut object,
                "type" => &mut kind,
                "pin-value" | "pin-source" | "module-path" | "module-name" => {
                    return Err(invalid(format!("{name} belongs in the query, after '?'")))
                }
                other => return Err(unknown(other)),
            };
            set_once(slot, decode(value, name)?, name)?;
        }
        let mut module_path = None;
        let mut pin_source = None;
        if let Some(query) = query {
            for attr in query.split('&') {
                let (name, value) = attr
                    .split_once('=')
                    .ok_or_else(|| invalid("a query attribute without '='"))?;
                let slot = match name {
                    "pin-value" => return Err(Pkcs11Error::PinValueInUri),
                    "module-path" => &mut module_path,
                    "pin-source" => &mut pin_source,
                    other => return Err(unknown(other)),
                };
                set_once(slot, decode(value, name)?, name)?;
            }
        }
        if let Some(k) = &kind {
            if k != "private" && k != "public" {
                return Err(invalid(format!("type {k:?}: only private or public")));
            }
        }
        let module_path = module_path
            .map(|m| {
                let p = PathBuf::from(m);
                if p.is_absolute() {
                    Ok(p)
                } else {
                    Err(invalid("module-path must be an absolute path"))
                }
            })
            .transpose()?;
        let pin_source = pin_source.map(|s| pin_file(&s)).transpose()?;
        Ok(Pkcs11Uri {
            token: token.ok_or_else(|| invalid("no token attribute"))?,
            object: object.ok_or_else(|| invalid("no object attribute"))?,
            module_path,
            pin_source,
        })
    }
}

fn unknown(name: &str) -> Pkcs11Error {
    let shown: String = name.chars().take(40).collect();
    invalid(format!("attribute {shown:?} is not one modelseal reads"))
}

fn set_once(slot: &mut Option<String>, value: String, name: &str) -> Result<(), Pkcs11Error> {
    if slot.replace(value).is_some() {
        return Err(invalid(format!("{name} given twice")));
    }
    Ok(())
}

/// `file:/abs` or `file:///abs`; nothing else (no `|command`, no relative paths).
fn pin_file(source: &str) -> Result<PathBuf, Pkcs11Error> {
    let path = source
        .strip_prefix("file://")
        .or_else(|| source.strip_prefix("file:"))
        .ok_or_else(|| invalid("pin-source must be a file: URI"))?;
    if !path.starts_with('/') {
        return Err(invalid("pin-source must name an absolute path"));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(uri: &str) -> String {
        match Pkcs11Uri::parse(uri) {
            Err(Pkcs11Error::InvalidUri { detail }) => detail,
            other => panic!("{uri}: {other:?}"),
        }
    }

    #[test]
    fn reads_the_documented_form() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=ci;object=model%20signer;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
        )
        .unwrap();
        assert_eq!(u.token, "ci");
        assert_eq!(u.object, "model signer");
        assert_eq!(
            u.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert_eq!(
            u.pin_source.as_deref(),
            Some(std::path::Path::new("/run/pin"))
        );
        let u = Pkcs11Uri::parse("pkcs11:object=a;token=b?pin-source=file:///p").unwrap();
        assert_eq!(u.pin_source.unwrap(), PathBuf::from("/p"));
        assert!(u.module_path.is_none());
    }

    #[test]
    fn pin_value_has_its_own_error() {
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:token=a;object=b?pin-value=1234"),
            Err(Pkcs11Error::PinValueInUri)
        ));
        assert!(err("pkcs11:token=a;object=b;pin-value=1234").contains("query"));
    }

    #[test]
    fn hostile_uris_are_refused() {
        for (uri, why) in [
            ("pkcs11:token=a", "no object"),
            ("pkcs11:object=a", "no token"),
            ("pkcs:token=a;object=b", "pkcs11:"),
            ("pkcs11:token=a;object=b;token=c", "twice"),
            ("pkcs11:token=a;object=b;id=%01", "not one"),
            ("pkcs11:token=a;object=b;x-vendor=1", "not one"),
            ("pkcs11:token=a;object=b?module-name=softhsm2", "not one"),
            ("pkcs11:token=a;object=%zz", "hex"),
            ("pkcs11:token=a;object=%4", "hex"),
            ("pkcs11:token=a;object=%", "hex"),
            ("pkcs11:token=a;object=%ff%fe", "UTF-8"),
            ("pkcs11:token=a;object=%00", "control"),
            ("pkcs11:token=a;object=%0a", "control"),
            ("pkcs11:token=;object=b", "empty"),
            ("pkcs11:token=a;object=b c", "raw space"),
            ("pkcs11:token=a;object=b#frag", "raw space"),
            ("pkcs11:token=a;objectb", "without '='"),
            ("pkcs11:token=a;object=b;type=secret-key", "only private"),
            ("pkcs11:token=a;object=b?module-path=lib.so", "absolute"),
            ("pkcs11:token=a;object=b?pin-source=/run/pin", "file:"),
            ("pkcs11:token=a;object=b?pin-source=file:pin", "absolute"),
            ("pkcs11:token=a;object=b?pin-source=|cat", "file:"),
            ("pkcs11:token=a;object=b?", "without '='"),
        ] {
            let d = err(uri);
            assert!(d.contains(why), "{uri}: {d}");
        }
        assert!(err(&format!("pkcs11:token=a;object={}", "a".repeat(5000))).contains("longer"));
    }

    #[test]
    fn errors_never_echo_a_pin() {
        let e = Pkcs11Uri::parse("pkcs11:token=a;object=b?pin-value=s3cret").unwrap_err();
        assert!(!e.to_string().contains("s3cret"));
    }
}
