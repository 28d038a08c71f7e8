//! OCI references: `[oci://]HOST[:PORT]/REPO[:TAG|@sha256:HEX]`, parsed strictly.

use std::fmt;

use crate::error::{OciError, Result};

/// A parsed reference to an artifact in a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, as written.
    pub registry: String,
    /// The repository, lowercase path components (`models/iris`).
    pub repository: String,
    /// The tag, when given.
    pub tag: Option<String>,
    /// The digest (`sha256:` and 64 lowercase hex digits), when given.
    pub digest: Option<String>,
}

fn invalid(reference: &str, detail: impl Into<String>) -> crate::Error {
    OciError::InvalidReference {
        reference: reference.chars().take(300).collect(),
        detail: detail.into(),
    }
    .into()
}

/// One repository path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` (distribution grammar).
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// A sha256 digest: `sha256:` and 64 lowercase hex digits.
pub(crate) fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(&x))
    })
}

fn valid_host(h: &str) -> bool {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        // [IPv6]:port
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(p) => return valid_port(p),
                None => return false,
            },
        }
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (h, None),
        }
    };
    if let Some(p) = port {
        if !valid_port(p) {
            return false;
        }
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|x| x.is_ascii_digit())
        && p.parse::<u16>().is_ok_and(|n| n > 0)
}

impl Reference {
    /// Parses `[oci://]HOST[:PORT]/REPO[:TAG][@sha256:HEX]`; a reference with neither tag nor
    /// digest is refused (no implicit `latest`: a model version is always named).
    pub fn parse(s: &str) -> Result<Reference> {
        if s.len() > 1024 {
            return Err(invalid(s, "longer than 1024 bytes"));
        }
        if !s.is_ascii() || s.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(invalid(s, "only printable ASCII without spaces"));
        }
        let rest = s.strip_prefix("oci://").unwrap_or(s);
        let (name, digest) = match rest.split_once('@') {
            Some((n, d)) => {
                if !valid_digest(d) {
                    return Err(invalid(
                        s,
                        "a digest is sha256: and 64 lowercase hex digits",
                    ));
                }
                (n, Some(d.to_owned()))
            }
            None => (rest, None),
        };
        let Some((registry, path)) = name.split_once('/') else {
            return Err(invalid(s, "no registry host: write HOST[:PORT]/REPO:TAG"));
        };
        if !valid_host(registry) {
            return Err(invalid(s, "the registry is HOST or HOST:PORT"));
        }
        // The tag is after the last ':' of the path (the registry's port is before the first '/').
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) => {
                if !valid_tag(t) {
                    return Err(invalid(
                        s,
                        "a tag is 1-128 of A-Z a-z 0-9 _ . - not starting with . or -",
                    ));
                }
                (r, Some(t.to_owned()))
            }
            None => (path, None),
        };
        if repository.len() > 255 || !repository.split('/').all(valid_component) {
            return Err(invalid(
                s,
                "a repository is lowercase components of a-z 0-9 separated by '/', '.', '_', '__' or '-'",
            ));
        }
        if tag.is_none() && digest.is_none() {
            return Err(invalid(
                s,
                "no tag or digest: write REPO:TAG or REPO@sha256:HEX",
            ));
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// The digest if given, else the tag: what `manifests/<reference>` asks for.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .expect("parse requires a tag or a digest")
    }

    /// The host without the port, brackets removed.
    pub fn host(&self) -> &str {
        if let Some(rest) = self.registry.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        self.registry.split(':').next().unwrap_or(&self.registry)
    }

    /// True for `localhost`, `127.0.0.0/8` and `::1`: plain HTTP is used there without asking.
    pub fn is_loopback(&self) -> bool {
        let h = self.host();
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The same repository at another tag.
    #[allow(dead_code)]
    pub(crate) fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let r = Reference::parse("registry.example:5000/models/iris:1.0.0").unwrap();
        assert_eq!(r.registry, "registry.example:5000");
        assert_eq!(r.repository, "models/iris");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert!(!r.is_loopback());
        let r = Reference::parse("oci://127.0.0.1:5000/iris:v1").unwrap();
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "127.0.0.1:5000/iris:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("[::1]:5000/a/b@{d}")).unwrap();
        assert!(r.is_loopback());
        assert_eq!(r.manifest_ref(), d);
        assert!(Reference::parse("localhost/x:y").unwrap().is_loopback());
    }

    #[test]
    fn refuses_hostile_forms() {
        for bad in [
            "",
            "iris:1.0.0",
            "registry.example/Models/iris:1",
            "registry.example/models/iris",
            "registry.example/models//iris:1",
            "registry.example/models/iris:.hidden",
            "registry.example/models/iris:-x",
            "registry.example/models/iris:a/b",
            "registry.example/../etc:1",
            "registry.example/a..b:1",
            "registry.example/a___b:1",
            "registry.example/-a:1",
            "registry.example/a-:1",
            "registry.example:0/a:1",
            "registry.example:99999/a:1",
            "registry.example:/a:1",
            "reg istry/a:1",
            "registry.example/a:1\n",
            "registry.example/a:t\u{e9}",
            "registry.example/a@sha256:ABC",
            "registry.example/a@sha512:00",
            "user@registry.example/a:1",
            "-bad.example/a:1",
            "[zz]:5000/a:1",
            "http://registry.example/a:1",
        ] {
            assert!(Reference::parse(bad).is_err(), "accepted {bad:?}");
        }
        let long = format!("r.example/a:{}", "t".repeat(129));
        assert!(Reference::parse(&long).is_err());
        assert!(Reference::parse(&format!("r.example/a:{}", "t".repeat(128))).is_ok());
    }
}
