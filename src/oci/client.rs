//! The few calls of the OCI distribution spec modelseal makes, over a blocking HTTP client that
//! streams bodies both ways (ureq, rustls with ring).
//!
//! Every body read into memory is bounded first ([`OCI_MAX_MANIFEST_BYTES`]); blobs are
//! streamed from and to files. Bearer tokens are fetched on a 401 challenge and kept for the
//! client's life; they and the basic credentials are zeroized on drop and never printed.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::time::Duration;

use ureq::http::{Response, StatusCode};
use ureq::{Agent, Body};
use zeroize::Zeroizing;

use crate::error::{OciError, Result};
use crate::limits::{OCI_MAX_MANIFEST_BYTES, OCI_MAX_TOKEN_BYTES};
use crate::oci::auth::{parse_challenge, Challenge, Credentials};
use crate::oci::reference::Reference;

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Speak plain HTTP even to a host off the loopback interface.
    pub plain_http: bool,
    /// Credentials; [`Credentials::anonymous`] for none.
    pub credentials: Credentials,
}

/// A client for one registry.
pub struct Client {
    agent: Agent,
    base: String,
    registry: String,
    credentials: Credentials,
    auth: RefCell<Option<Zeroizing<String>>>,
}

/// A request body that can be sent again after an authentication challenge.
pub(crate) enum Payload<'a> {
    None,
    Bytes(&'a [u8], &'a str),
}

fn hex_sha256(d: &[u8]) -> String {
    format!("sha256:{}", hex::encode(d))
}

/// SHA-256 of `bytes`, as `sha256:HEX`.
pub fn digest_of(bytes: &[u8]) -> String {
    hex_sha256(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

impl Client {
    /// A client for `reference`'s registry: HTTPS, or plain HTTP for a loopback host or when
    /// `opts.plain_http` asks for it.
    pub fn new(reference: &Reference, opts: &ClientOptions) -> Client {
        let scheme = if opts.plain_http || reference.is_loopback() {
            "http"
        } else {
            "https"
        };
        // A proxy from the environment (HTTPS_PROXY, honouring NO_PROXY) for remote registries;
        // never for a loopback one.
        let proxy = if reference.is_loopback() {
            None
        } else {
            ureq::Proxy::try_from_env()
        };
        let agent: Agent = Agent::config_builder()
            .proxy(proxy)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .timeout_recv_body(None)
            .max_redirects(5)
            .user_agent(format!("modelseal/{}", crate::VERSION))
            .build()
            .into();
        Client {
            agent,
            base: format!("{scheme}://{}", reference.registry),
            registry: reference.registry.clone(),
            credentials: opts.credentials.clone(),
            auth: RefCell::new(None),
        }
    }

    /// The Authorization value for `url`: only for this registry's own origin, never for
    /// another host an upload Location or a link points to.
    fn auth_for(&self, url: &str) -> Option<Zeroizing<String>> {
        let own = url
            .strip_prefix(self.base.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if own {
            self.auth.borrow().clone()
        } else {
            None
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An absolute URL for a `Location` header (absolute, or a path on this registry).
    pub(crate) fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else if location.starts_with('/') {
            self.url(location)
        } else {
            self.url(&format!("/{location}"))
        }
    }

    fn transport(&self, e: ureq::Error) -> crate::Error {
        OciError::Unreachable {
            registry: self.registry.clone(),
            detail: e.to_string(),
        }
        .into()
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Payload<'_>,
    ) -> Result<Response<Body>> {
        let auth = self.auth_for(url);
        let with = |mut r: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            if let Some(a) = &auth {
                r = r.header("Authorization", a.as_str());
            }
            r
        };
        let withb = |mut r: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            if let Some(a) = &auth {
                r = r.header("Authorization", a.as_str());
            }
            r
        };
        let res = match (method, body) {
            ("GET", _) => with(self.agent.get(url)).call(),
            ("HEAD", _) => with(self.agent.head(url)).call(),
            ("DELETE", _) => with(self.agent.delete(url)).call(),
            ("POST", Payload::None) => withb(self.agent.post(url)).send_empty(),
            ("PUT", Payload::None) => withb(self.agent.put(url)).send_empty(),
            ("POST", Payload::Bytes(b, ct)) => {
                withb(self.agent.post(url)).content_type(*ct).send(*b)
            }
            ("PUT", Payload::Bytes(b, ct)) => withb(self.agent.put(url)).content_type(*ct).send(*b),
            _ => unreachable!("only the distribution spec's methods are used"),
        };
        res.map_err(|e| self.transport(e))
    }

    /// Sends a request; on a 401 challenge, authenticates (basic, or a bearer token from the
    /// realm) and sends it once more. `scope` is the token scope asked when the challenge names
    /// none (`repository:NAME:pull[,push]`).
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Payload<'_>,
        scope: &str,
    ) -> Result<Response<Body>> {
        let resp = self.send_once(method, url, headers, &body)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let had_auth = self.auth.borrow().is_some();
        match challenge {
            Some(Challenge::Basic) if !had_auth => match self.credentials.basic_header() {
                Some(h) => *self.auth.borrow_mut() = Some(h),
                None => return Ok(resp),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                let token = self.token(
                    &realm,
                    service.as_deref(),
                    asked.as_deref().unwrap_or(scope),
                )?;
                *self.auth.borrow_mut() =
                    Some(Zeroizing::new(format!("Bearer {}", token.as_str())));
            }
            _ => return Ok(resp),
        }
        self.send_once(method, url, headers, &body)
    }

    /// A bearer token from `realm` (the distribution token spec; GET with basic credentials if
    /// any, or the OAuth2 refresh-token POST for an identity token).
    fn token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<Zeroizing<String>> {
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(OciError::Registry {
                registry: self.registry.clone(),
                status: 401,
                what: "a token realm that is not an http(s) URL".into(),
            }
            .into());
        }
        let resp = if let Some(t) = &self.credentials.identity_token {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", t.as_str()),
                ("scope", scope),
                ("client_id", "modelseal"),
            ];
            if let Some(s) = service {
                form.push(("service", s));
            }
            self.agent.post(realm).send_form(form)
        } else {
            let mut r = self.agent.get(realm).query("scope", scope);
            if let Some(s) = service {
                r = r.query("service", s);
            }
            if let Some(h) = self.credentials.basic_header() {
                r = r.header("Authorization", h.as_str());
            }
            r.call()
        }
        .map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(OciError::Unauthorized {
                registry: self.registry.clone(),
                status,
                what: "a token".into(),
            }
            .into());
        }
        if status != 200 {
            return Err(OciError::Registry {
                registry: self.registry.clone(),
                status,
                what: "a token request".into(),
            }
            .into());
        }
        let body = Zeroizing::new(read_bounded(resp, OCI_MAX_TOKEN_BYTES, "token response")?);
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body).map_err(|_| OciError::Registry {
            registry: self.registry.clone(),
            status,
            what: "a token request (the answer is not a token)".into(),
        })?;
        let tok = t
            .token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OciError::Registry {
                registry: self.registry.clone(),
                status,
                what: "a token request (no token in the answer)".into(),
            })?;
        if tok.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(OciError::Registry {
                registry: self.registry.clone(),
                status,
                what: "a token request (the token is not a header value)".into(),
            }
            .into());
        }
        Ok(Zeroizing::new(tok))
    }

    /// Maps a status that is not the one expected to a typed error.
    pub(crate) fn status_error(
        &self,
        status: u16,
        what: &str,
        reference: &Reference,
    ) -> crate::Error {
        match status {
            401 | 403 => OciError::Unauthorized {
                registry: self.registry.clone(),
                status,
                what: what.to_owned(),
            }
            .into(),
            404 => OciError::NotFound {
                reference: reference.to_string(),
            }
            .into(),
            _ => OciError::Registry {
                registry: self.registry.clone(),
                status,
                what: what.to_owned(),
            }
            .into(),
        }
    }

    /// Streams `file` (`size` bytes, digest `digest`) to `url` as the PUT of a monolithic
    /// upload, with its Content-Length: the file is never read into memory.
    pub(crate) fn put_file(&self, url: &str, file: std::fs::File) -> Result<Response<Body>> {
        let auth = self.auth_for(url);
        let mut r = self
            .agent
            .put(url)
            .header("Content-Type", "application/octet-stream");
        if let Some(a) = &auth {
            r = r.header("Authorization", a.as_str());
        }
        r.send(file).map_err(|e| self.transport(e))
    }
}

/// Reads a whole body of at most `max` bytes; a longer body, or one whose Content-Length says
/// it is longer, is refused before it is read.
pub(crate) fn read_bounded(resp: Response<Body>, max: u64, what: &'static str) -> Result<Vec<u8>> {
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared {
        if n > max {
            return Err(OciError::TooLarge { what, size: n, max }.into());
        }
    }
    let mut out = Vec::new();
    resp.into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader()
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| crate::Error::io(format!("reading the {what}"), e))?;
    if out.len() as u64 > max {
        return Err(OciError::TooLarge {
            what,
            size: out.len() as u64,
            max,
        }
        .into());
    }
    Ok(out)
}

/// Reads a manifest or index body (bounded by [`OCI_MAX_MANIFEST_BYTES`]).
pub(crate) fn read_manifest(resp: Response<Body>) -> Result<Vec<u8>> {
    read_bounded(resp, OCI_MAX_MANIFEST_BYTES, "manifest")
}

/// Streams a blob body of exactly `size` bytes into `out`, hashing it; refuses a
/// Content-Length that differs, a body that is shorter or longer, and a digest that differs.
pub(crate) fn stream_blob(
    resp: Response<Body>,
    size: u64,
    digest: &str,
    out: &mut dyn Write,
) -> Result<()> {
    const WHAT: &str = "archive blob";
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared {
        if n != size {
            return Err(OciError::SizeMismatch {
                what: WHAT,
                expected: size,
                found: n,
            }
            .into());
        }
    }
    let mut reader = resp
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader()
        .take(size + 1);
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(crate::Error::io("downloading the archive blob", e)),
        };
        total += n as u64;
        if total > size {
            return Err(OciError::SizeMismatch {
                what: WHAT,
                expected: size,
                found: total,
            }
            .into());
        }
        ctx.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| crate::Error::io("writing the downloaded archive", e))?;
    }
    if total != size {
        return Err(OciError::SizeMismatch {
            what: WHAT,
            expected: size,
            found: total,
        }
        .into());
    }
    let found = hex_sha256(ctx.finish().as_ref());
    if found != digest {
        return Err(OciError::DigestMismatch {
            what: WHAT,
            expected: digest.to_owned(),
            found,
        }
        .into());
    }
    Ok(())
}
