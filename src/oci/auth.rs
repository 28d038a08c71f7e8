//! Registry credentials from the Docker config file, and the bearer-token challenge.
//!
//! The file is found as Docker, oras and skopeo find it: `$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`. From `auths.<registry>` it reads `auth` (base64 `user:password`),
//! or `username` and `password`, or `identitytoken` (an OAuth refresh token). `credHelpers`
//! and `credsStore` are not run: modelseal starts no helper programs. Secrets are held in
//! [`Zeroizing`] buffers and never printed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{OciError, Result};
use crate::limits::OCI_MAX_DOCKER_CONFIG_BYTES;

/// Credentials for one registry.
#[derive(Clone, Default)]
pub struct Credentials {
    /// User name and password for basic auth or a token request.
    pub(crate) basic: Option<(Zeroizing<String>, Zeroizing<String>)>,
    /// An OAuth2 refresh token (`identitytoken`).
    pub(crate) identity_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("basic", &self.basic.as_ref().map(|_| "<redacted>"))
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// No credentials: anonymous access.
    pub fn anonymous() -> Self {
        Credentials::default()
    }

    /// True when there is nothing to authenticate with.
    pub fn is_anonymous(&self) -> bool {
        self.basic.is_none() && self.identity_token.is_none()
    }

    /// The `Authorization: Basic` value.
    pub(crate) fn basic_header(&self) -> Option<Zeroizing<String>> {
        self.basic.as_ref().map(|(u, p)| {
            let raw = Zeroizing::new(format!("{}:{}", u.as_str(), p.as_str()));
            Zeroizing::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
            ))
        })
    }
}

#[derive(serde::Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

/// A secret string read from JSON: the parsed `String` moves into a [`Zeroizing`] buffer.
#[derive(Clone)]
struct Secret(Zeroizing<String>);

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(d).map(|s| Secret(Zeroizing::new(s)))
    }
}

impl std::ops::Deref for Secret {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    auth: Option<Secret>,
    username: Option<Secret>,
    password: Option<Secret>,
    identitytoken: Option<Secret>,
}

/// Where the Docker config file is: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d).join("config.json")),
        _ => dirs::home_dir().map(|h| h.join(".docker").join("config.json")),
    }
}

fn bad(path: &Path, detail: impl Into<String>) -> crate::Error {
    OciError::DockerConfig {
        path: path.display().to_string(),
        detail: detail.into(),
    }
    .into()
}

/// The credentials `path` holds for `registry` (`host[:port]`); a missing file means anonymous.
/// Keys are matched as written, then as `https://host[:port]` and `http://host[:port]` (with
/// any path after it), as docker login writes them; Docker Hub's legacy key is not special.
pub fn credentials_for(path: &Path, registry: &str) -> Result<Credentials> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::anonymous()),
        Err(e) => return Err(crate::Error::io(format!("opening {}", path.display()), e)),
    };
    let mut raw = Zeroizing::new(Vec::new());
    file.take(OCI_MAX_DOCKER_CONFIG_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| crate::Error::io(format!("reading {}", path.display()), e))?;
    if raw.len() as u64 > OCI_MAX_DOCKER_CONFIG_BYTES {
        return Err(bad(
            path,
            format!("larger than {OCI_MAX_DOCKER_CONFIG_BYTES} bytes"),
        ));
    }
    // serde_json's error names a position, never the text around it: no secret can leak here.
    let cfg: DockerConfig =
        serde_json::from_slice(&raw).map_err(|e| bad(path, format!("not JSON: {e}")))?;
    let entry = cfg.auths.iter().find(|(k, _)| {
        let k = k.as_str();
        let bare = k
            .strip_prefix("https://")
            .or_else(|| k.strip_prefix("http://"))
            .unwrap_or(k);
        let host = bare.split('/').next().unwrap_or(bare);
        host == registry
    });
    let Some((_, e)) = entry else {
        return Ok(Credentials::anonymous());
    };
    let mut creds = Credentials::anonymous();
    if let Some(auth) = &e.auth {
        if !auth.is_empty() {
            let decoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(auth.as_bytes())
                    .map_err(|_| bad(path, format!("auths.{registry}.auth is not base64")))?,
            );
            let text = std::str::from_utf8(&decoded)
                .map_err(|_| bad(path, format!("auths.{registry}.auth is not UTF-8")))?;
            let Some((u, p)) = text.split_once(':') else {
                return Err(bad(
                    path,
                    format!("auths.{registry}.auth is not user:password"),
                ));
            };
            creds.basic = Some((Zeroizing::new(u.to_owned()), Zeroizing::new(p.to_owned())));
        }
    }
    if creds.basic.is_none() {
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            creds.basic = Some((u.0.clone(), p.0.clone()));
        }
    }
    if let Some(t) = &e.identitytoken {
        if !t.is_empty() {
            creds.identity_token = Some(t.0.clone());
        }
    }
    Ok(creds)
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=..,service=..,scope=..`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (one challenge; quoted or bare parameter values).
pub(crate) fn parse_challenge(v: &str) -> Option<Challenge> {
    let v = v.trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_owned(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(key, value);
        s = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:models/iris:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:models/iris:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
    }

    #[test]
    fn docker_config_forms() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        assert!(credentials_for(&p, "r.example").unwrap().is_anonymous());
        std::fs::write(
            &p,
            r#"{"auths":{"https://r.example:5000/v1/":{"auth":"dXNlcjpwYXNz"},
                "other.example":{"username":"u","password":"p","identitytoken":"t"}},
                "credHelpers":{"x":"y"}}"#,
        )
        .unwrap();
        let c = credentials_for(&p, "r.example:5000").unwrap();
        let (u, pw) = c.basic.as_ref().unwrap();
        assert_eq!((u.as_str(), pw.as_str()), ("user", "pass"));
        assert!(!format!("{c:?}").contains("pass"));
        let c = credentials_for(&p, "other.example").unwrap();
        assert!(c.identity_token.is_some() && c.basic.is_some());
        assert!(credentials_for(&p, "third.example").unwrap().is_anonymous());
        std::fs::write(&p, r#"{"auths":{"r.example":{"auth":"!!"}}}"#).unwrap();
        let e = credentials_for(&p, "r.example").unwrap_err();
        assert!(!e.to_string().contains("!!"));
    }
}
