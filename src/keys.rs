//! Key files, key ids and secret key handling (FORMAT.md §4.1, §10).
//!
//! Secrets live in zeroize-on-drop types, print as `[redacted]`, are written with `O_EXCL` and mode
//! 0600, and are refused when a secret file is readable by group or others.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

mod encrypted;
mod pkcs11;
mod uri;

pub use pkcs11::{Pkcs11Signer, PKCS11_MODULE_ENV, PKCS11_PIN_FILE_ENV};
pub use uri::Pkcs11Uri;

pub use encrypted::{
    read_passphrase, PassphraseSource, DEFAULT_LOG_N, ENCRYPTED_SECRET_KEY_TYPE, LOG_N_ENV,
    MAX_LOG_N, MIN_LOG_N, NEW_PASSPHRASE_FILE_ENV, PASSPHRASE_FILE_ENV,
};

use crate::crypto::{self, sign, wrap};
use crate::error::{Error, IoContext, KeyError, Result};
use crate::limits::MAX_KEY_FILE_BYTES;

/// Type tag of a public key line.
pub const PUBLIC_KEY_TYPE: &str = "modelseal-pub-v1";
/// Type tag of a signing-only public key line (a token key's: no X25519 half).
pub const SIGNING_PUBLIC_KEY_TYPE: &str = "modelseal-sign-pub-v1";
/// Type tag of a secret key line.
pub const SECRET_KEY_TYPE: &str = "MODELSEAL-SECRET-V1";
/// Type tag of a shared (symmetric) key line.
pub const SHARED_KEY_TYPE: &str = "MODELSEAL-SHARED-V1";
const CHECKSUM_LEN: usize = 4;
use crate::format::domain::KEY_ID_CONTEXT;

/// The 16-byte id of a signing key (FORMAT.md §4.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// The id of an Ed25519 public key.
    pub fn of(ed25519_public: &[u8; 32]) -> KeyId {
        let mut data = Vec::with_capacity(KEY_ID_CONTEXT.len() + 32);
        data.extend_from_slice(KEY_ID_CONTEXT);
        data.extend_from_slice(ed25519_public);
        let mut id = [0u8; 16];
        id.copy_from_slice(&crypto::sha256(&data)[..16]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A public key: the Ed25519 half verifies signatures (a trust anchor), the X25519 half receives
/// archives (a recipient). A signing-only key (a token key's) has no X25519 half.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    ed25519: VerifyingKey,
    x25519: Option<x25519_dalek::PublicKey>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    /// The signing key's id.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(self.ed25519.as_bytes())
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.ed25519
    }

    /// The X25519 half, `None` for a signing-only key.
    pub(crate) fn x25519(&self) -> Option<&x25519_dalek::PublicKey> {
        self.x25519.as_ref()
    }

    pub(crate) fn signing_only(ed25519: VerifyingKey) -> PublicKey {
        PublicKey {
            ed25519,
            x25519: None,
        }
    }

    /// Whether this key only verifies (a token key's) and cannot be a recipient.
    pub fn is_signing_only(&self) -> bool {
        self.x25519.is_none()
    }

    /// Refuses a signing-only key as a recipient (`origin` names it).
    pub fn require_recipient(&self, origin: &Path) -> Result<(), KeyError> {
        match self.x25519 {
            Some(_) => Ok(()),
            None => Err(KeyError::SigningOnly {
                path: origin.into(),
            }),
        }
    }

    /// The one-line text form.
    pub fn to_line(&self) -> String {
        match &self.x25519 {
            Some(x) => {
                let mut payload = [0u8; 64];
                payload[..32].copy_from_slice(self.ed25519.as_bytes());
                payload[32..].copy_from_slice(x.as_bytes());
                encode_line(PUBLIC_KEY_TYPE, &payload)
            }
            None => encode_line(SIGNING_PUBLIC_KEY_TYPE, self.ed25519.as_bytes()),
        }
    }

    /// The contents of a `.pub` file: a comment naming the key id, then the line.
    pub fn file_body(&self) -> String {
        let what = if self.is_signing_only() {
            "signing-only public key (a token key)"
        } else {
            "public key"
        };
        format!("# modelseal {what} {}\n{}\n", self.key_id(), self.to_line())
    }

    /// Writes this key to a new `.pub` file (mode 0644, never overwriting).
    pub fn write_new(&self, path: &Path) -> Result<()> {
        write_new_file(path, self.file_body().as_bytes(), 0o644)
    }

    /// Parses the one-line text form; `origin` names the source in errors.
    pub fn from_line(line: &str, origin: &Path) -> Result<PublicKey, KeyError> {
        if line.starts_with(SIGNING_PUBLIC_KEY_TYPE)
            && line.as_bytes().get(SIGNING_PUBLIC_KEY_TYPE.len()) == Some(&b':')
        {
            let payload = decode_line(line, SIGNING_PUBLIC_KEY_TYPE, 32, origin)?;
            let ed: [u8; 32] = payload[..].try_into().expect("32-byte payload");
            let ed25519 = sign::parse_verifying_key(&ed).ok_or_else(|| KeyError::WeakKey {
                path: origin.into(),
                kind: "ed25519",
            })?;
            return Ok(PublicKey::signing_only(ed25519));
        }
        let payload = decode_line(line, PUBLIC_KEY_TYPE, 64, origin)?;
        let ed: [u8; 32] = payload[..32].try_into().expect("64-byte payload");
        let x: [u8; 32] = payload[32..].try_into().expect("64-byte payload");
        let ed25519 = sign::parse_verifying_key(&ed).ok_or_else(|| KeyError::WeakKey {
            path: origin.into(),
            kind: "ed25519",
        })?;
        if wrap::is_weak_x25519(&x) {
            return Err(KeyError::WeakKey {
                path: origin.into(),
                kind: "x25519",
            });
        }
        Ok(PublicKey {
            ed25519,
            x25519: Some(x.into()),
        })
    }

    /// Reads a `.pub` file.
    pub fn read(path: &Path) -> Result<PublicKey> {
        let file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
        PublicKey::read_from(file, path)
    }

    /// Reads a `.pub` file from an open handle (`path` names it in errors).
    pub fn read_from(file: std::fs::File, path: &Path) -> Result<PublicKey> {
        let text = read_bounded_from(file, path)?;
        let line = single_key_line(&text, path)?;
        Ok(PublicKey::from_line(line, path)?)
    }
}

/// A secret key: Ed25519 signing seed and X25519 identity, both zeroized on drop.
pub struct SecretKey {
    ed25519: SigningKey,
    x25519: x25519_dalek::StaticSecret,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> SecretKey {
        SecretKey {
            ed25519: SigningKey::from_bytes(&crypto::random32()),
            x25519: x25519_dalek::StaticSecret::from(*crypto::random32()),
        }
    }

    /// A key from fixed seeds, for fuzzing harnesses only.
    #[cfg(fuzzing)]
    pub fn from_seeds(ed25519: [u8; 32], x25519: [u8; 32]) -> SecretKey {
        SecretKey {
            ed25519: SigningKey::from_bytes(&ed25519),
            x25519: x25519_dalek::StaticSecret::from(x25519),
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            ed25519: self.ed25519.verifying_key(),
            x25519: Some(x25519_dalek::PublicKey::from(&self.x25519)),
        }
    }

    pub(crate) fn x25519(&self) -> &x25519_dalek::StaticSecret {
        &self.x25519
    }

    /// Ed25519 seed || X25519 secret, the payload of a secret key line.
    fn secret_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut payload = Zeroizing::new([0u8; 64]);
        payload[..32].copy_from_slice(self.ed25519.as_bytes());
        payload[32..].copy_from_slice(self.x25519.as_bytes());
        payload
    }

    pub(crate) fn to_line(&self) -> Zeroizing<String> {
        Zeroizing::new(encode_line(SECRET_KEY_TYPE, self.secret_bytes().as_ref()))
    }

    pub(crate) fn from_line(line: &str, origin: &Path) -> Result<SecretKey, KeyError> {
        let payload = decode_line(line, SECRET_KEY_TYPE, 64, origin)?;
        let mut ed = Zeroizing::new([0u8; 32]);
        ed.copy_from_slice(&payload[..32]);
        let mut x = Zeroizing::new([0u8; 32]);
        x.copy_from_slice(&payload[32..]);
        Ok(SecretKey {
            ed25519: SigningKey::from_bytes(&ed),
            x25519: x25519_dalek::StaticSecret::from(*x),
        })
    }

    /// Reads a secret key file, refusing one readable by group or others. A passphrase-encrypted
    /// one asks for its passphrase ([`read_passphrase`]: `MODELSEAL_PASSPHRASE_FILE`, else the
    /// terminal); its work factor is checked before anything is asked or derived.
    pub fn read(path: &Path) -> Result<SecretKey> {
        let text = read_secret(path, &[SECRET_KEY_TYPE, ENCRYPTED_SECRET_KEY_TYPE])?;
        let line = single_key_line(&text, path)?;
        if line.starts_with(ENCRYPTED_SECRET_KEY_TYPE) {
            let sealed = encrypted::EncryptedLine::parse(line, path)?;
            let passphrase = read_passphrase(path, PassphraseSource::Current)?;
            return Ok(sealed.decrypt(passphrase.as_bytes(), path)?);
        }
        Ok(SecretKey::from_line(line, path)?)
    }

    /// Parses an encrypted key line and decrypts it with `passphrase` (the library's way in,
    /// with no terminal or environment involved).
    pub fn from_encrypted_line(line: &str, passphrase: &[u8], origin: &Path) -> Result<SecretKey> {
        Ok(encrypted::EncryptedLine::parse(line, origin)?.decrypt(passphrase, origin)?)
    }

    /// Checks an encrypted key line's structure, checksum and work factor without deriving
    /// anything (what is refused before any scrypt work; the fuzz target's entry).
    pub fn check_encrypted_line(line: &str, origin: &Path) -> Result<()> {
        encrypted::EncryptedLine::parse(line, origin)?;
        Ok(())
    }

    /// This key as an encrypted key line under `passphrase` (scrypt 2^`log_n`, 10..=22).
    pub fn to_encrypted_line(&self, passphrase: &[u8], log_n: u8) -> Result<Zeroizing<String>> {
        if !(MIN_LOG_N..=MAX_LOG_N).contains(&log_n) {
            return Err(KeyError::WorkFactor {
                path: PathBuf::from("(new key)"),
                log_n,
                min: MIN_LOG_N,
                max: MAX_LOG_N,
            }
            .into());
        }
        Ok(encrypted::encrypt_line(self, passphrase, log_n))
    }

    /// The body of a secret key file: a comment and the key line, encrypted under `passphrase`
    /// when one is given.
    fn file_body(&self, passphrase: Option<&[u8]>) -> Result<Zeroizing<String>> {
        let id = self.public().key_id();
        Ok(Zeroizing::new(match passphrase {
            Some(p) => format!(
                "# modelseal secret key {id}, encrypted with a passphrase (scrypt, AES-256-GCM)\n{}\n",
                self.to_encrypted_line(p, encrypted::log_n_to_write()?)?.as_str()
            ),
            None => format!(
                "# modelseal secret key {id}; keep it private\n{}\n",
                self.to_line().as_str()
            ),
        }))
    }

    /// Changes, adds or (with `new` `None`) removes the passphrase of the key file at `path`, in
    /// place: the new file is written beside it (mode 0600) and renamed over it, so the key is
    /// never half-written. The current passphrase is asked for when the key is encrypted.
    pub fn change_passphrase(path: &Path, new: Option<&[u8]>) -> Result<SecretKey> {
        let key = SecretKey::read(path)?;
        let body = key.file_body(new)?;
        crate::fs::write_atomic(path, body.as_bytes())?;
        Ok(key)
    }

    /// Whether the key file at `path` is passphrase-encrypted (read bounded, not decrypted).
    pub fn is_encrypted_file(path: &Path) -> Result<bool> {
        let text = read_secret(path, &[SECRET_KEY_TYPE, ENCRYPTED_SECRET_KEY_TYPE])?;
        Ok(single_key_line(&text, path)?.starts_with(ENCRYPTED_SECRET_KEY_TYPE))
    }

    /// Writes `PREFIX.key` (mode 0600, never overwriting) and `PREFIX.pub`.
    pub fn write_pair(&self, prefix: &Path) -> Result<(PathBuf, PathBuf)> {
        self.write_pair_with(prefix, None)
    }

    /// [`Self::write_pair`], the secret key encrypted under `passphrase` when one is given.
    pub fn write_pair_with(
        &self,
        prefix: &Path,
        passphrase: Option<&[u8]>,
    ) -> Result<(PathBuf, PathBuf)> {
        let key_path = with_suffix(prefix, "key");
        let pub_path = with_suffix(prefix, "pub");
        for p in [&key_path, &pub_path] {
            if p.symlink_metadata().is_ok() {
                return Err(KeyError::Exists { path: p.clone() }.into());
            }
        }
        let id = self.public().key_id();
        let body = self.file_body(passphrase)?;
        write_secret_file(&key_path, body.as_bytes())?;
        let public = format!("# modelseal public key {id}\n{}\n", self.public().to_line());
        if let Err(e) = write_new_file(&pub_path, public.as_bytes(), 0o644) {
            let _ = std::fs::remove_file(&key_path);
            return Err(e);
        }
        Ok((key_path, pub_path))
    }
}

/// What signs an archive's header: a secret key file, a token key, later a KMS key. Sealing,
/// `sign --add` and training take any signer; verifying never needs one.
pub trait Signer: fmt::Debug {
    /// The public key (signing-only for a token key).
    fn public(&self) -> PublicKey;
    /// The Ed25519 signature over `signed_bytes` (the archive's first `14 + header_len` bytes,
    /// under the header signature context of FORMAT.md §5).
    fn sign_header(&self, signed_bytes: &[u8]) -> Result<[u8; 64]>;
    /// The signing key's id.
    fn key_id(&self) -> KeyId {
        self.public().key_id()
    }
}

impl Signer for SecretKey {
    fn public(&self) -> PublicKey {
        SecretKey::public(self)
    }

    fn sign_header(&self, signed_bytes: &[u8]) -> Result<[u8; 64]> {
        Ok(sign::sign_header(&self.ed25519, signed_bytes))
    }
}

/// Reads the signing key `spec` names: a `pkcs11:` URI (a token key) or a secret key file.
pub fn read_signer(spec: &Path) -> Result<Box<dyn Signer>> {
    match spec.to_str() {
        Some(s) if Pkcs11Uri::is_uri(s) => Ok(Box::new(Pkcs11Signer::open(s)?)),
        _ => Ok(Box::new(SecretKey::read(spec)?)),
    }
}

/// Whether `spec` is a token key URI rather than a file.
pub fn is_token_key(spec: &Path) -> bool {
    spec.to_str().is_some_and(Pkcs11Uri::is_uri)
}

/// A 32-byte symmetric key shared by a sealer and its CI opener.
pub struct SharedKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKey([redacted])")
    }
}

impl SharedKey {
    /// A fresh random key.
    pub fn generate() -> SharedKey {
        SharedKey(crypto::random32())
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a shared key file, refusing one readable by group or others.
    pub fn read(path: &Path) -> Result<SharedKey> {
        let text = read_secret(path, &[SHARED_KEY_TYPE])?;
        let line = single_key_line(&text, path)?;
        let payload = decode_line(line, SHARED_KEY_TYPE, 32, path)?;
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&payload);
        Ok(SharedKey(k))
    }

    /// Writes `PREFIX.key` with mode 0600, never overwriting.
    pub fn write(&self, prefix: &Path) -> Result<PathBuf> {
        let path = with_suffix(prefix, "key");
        if path.symlink_metadata().is_ok() {
            return Err(KeyError::Exists { path }.into());
        }
        let body = Zeroizing::new(format!(
            "# modelseal shared key for CI recipients; keep it private\n{}\n",
            encode_line(SHARED_KEY_TYPE, self.0.as_ref()).as_str()
        ));
        write_secret_file(&path, body.as_bytes())?;
        Ok(path)
    }
}

fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn checksum(kind: &str, payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut data = Zeroizing::new(Vec::with_capacity(kind.len() + 1 + payload.len()));
    data.extend_from_slice(kind.as_bytes());
    data.push(b':');
    data.extend_from_slice(payload);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&crypto::sha256(&data)[..CHECKSUM_LEN]);
    out
}

/// `TYPE:BASE64URL(payload || check)` (FORMAT.md §10).
fn encode_line(kind: &str, payload: &[u8]) -> String {
    let mut body = Zeroizing::new(payload.to_vec());
    body.extend_from_slice(&checksum(kind, payload));
    format!("{kind}:{}", URL_SAFE_NO_PAD.encode(body.as_slice()))
}

fn decode_line(
    line: &str,
    expected: &'static str,
    len: usize,
    origin: &Path,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let (kind, b64) = line.split_once(':').ok_or_else(|| KeyError::Malformed {
        path: origin.into(),
        detail: "no TYPE: prefix".into(),
    })?;
    if kind != expected {
        return Err(KeyError::WrongType {
            path: origin.into(),
            expected,
            found: kind.chars().take(40).collect(),
        });
    }
    let raw =
        Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(b64.trim())
                .map_err(|e| KeyError::Malformed {
                    path: origin.into(),
                    detail: format!("base64url: {e}"),
                })?,
        );
    if raw.len() != len + CHECKSUM_LEN {
        return Err(KeyError::Malformed {
            path: origin.into(),
            detail: format!("{} bytes, expected {}", raw.len(), len + CHECKSUM_LEN),
        });
    }
    let (payload, check) = raw.split_at(len);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &checksum(kind, payload)[..],
        check,
    )) {
        return Err(KeyError::BadChecksum {
            path: origin.into(),
        });
    }
    Ok(Zeroizing::new(payload.to_vec()))
}

fn single_key_line<'a>(text: &'a str, origin: &Path) -> Result<&'a str, KeyError> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    match lines.as_slice() {
        [one] => Ok(one),
        _ => Err(KeyError::KeyLineCount {
            path: origin.into(),
            found: lines.len(),
        }),
    }
}

fn read_bounded_from(file: std::fs::File, path: &Path) -> Result<Zeroizing<String>> {
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .context(|| format!("reading {}", path.display()))?;
    if buf.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge {
            path: path.into(),
            max: MAX_KEY_FILE_BYTES,
        }
        .into());
    }
    let text = String::from_utf8(std::mem::take(&mut *buf)).map_err(|_| KeyError::Malformed {
        path: path.into(),
        detail: "not UTF-8 text".into(),
    })?;
    Ok(Zeroizing::new(text))
}

/// Reads a secret key file. A file holding another type of key is refused as such first (the
/// more useful message when a `.pub` is passed by mistake); then one readable by group or others.
fn read_secret(path: &Path, expected: &[&'static str]) -> Result<Zeroizing<String>> {
    let file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    // The mode is read from the handle that is then read; its refusal waits for the type check.
    let shared = crate::fs::refuse_shared_secret(path, &file);
    let text = read_bounded_from(file, path)?;
    let line = single_key_line(&text, path)?;
    let kind = line.split_once(':').map_or("", |(k, _)| k);
    if !expected.contains(&kind) {
        return Err(KeyError::WrongType {
            path: path.into(),
            expected: expected[0],
            found: kind.chars().take(40).collect(),
        }
        .into());
    }
    shared?;
    Ok(text)
}

fn write_secret_file(path: &Path, body: &[u8]) -> Result<()> {
    write_new_file(path, body, 0o600)
}

fn write_new_file(path: &Path, body: &[u8], mode: u32) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::from(KeyError::Exists { path: path.into() })
        } else {
            Error::io(format!("creating {}", path.display()), e)
        }
    })?;
    let res = f.write_all(body).and_then(|_| f.sync_all());
    if let Err(e) = res {
        let _ = std::fs::remove_file(path);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(())
}

/// The key that opens an archive: an identity (the recipient's secret key) or a shared key.
pub enum OpeningKey {
    /// A recipient's secret key (`-i`, `identity=`).
    Identity(Box<SecretKey>),
    /// A shared key (`--shared-key`, `shared_key=`).
    Shared(SharedKey),
}

impl OpeningKey {
    /// Reads the one key given: none is `Ok(None)` (verifying needs no key), both is
    /// [`UsageError::TwoOpeningKeys`](crate::error::UsageError::TwoOpeningKeys).
    pub fn read(identity: Option<&Path>, shared: Option<&Path>) -> Result<Option<OpeningKey>> {
        Ok(match (identity, shared) {
            (Some(_), Some(_)) => return Err(crate::error::UsageError::TwoOpeningKeys.into()),
            (Some(i), None) => Some(OpeningKey::Identity(Box::new(SecretKey::read(i)?))),
            (None, Some(s)) => Some(OpeningKey::Shared(SharedKey::read(s)?)),
            (None, None) => None,
        })
    }

    /// [`OpeningKey::read`] where a key is needed (opening, loading):
    /// [`UsageError::NoOpeningKey`](crate::error::UsageError::NoOpeningKey) without one.
    pub fn require(identity: Option<&Path>, shared: Option<&Path>) -> Result<OpeningKey> {
        OpeningKey::read(identity, shared)?
            .ok_or_else(|| crate::error::UsageError::NoOpeningKey.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_line_round_trips_and_checksum_catches_typos() {
        let sk = SecretKey::generate();
        let line = sk.public().to_line();
        let origin = Path::new("t.pub");
        assert_eq!(PublicKey::from_line(&line, origin).unwrap(), sk.public());
        let mut bad = line.clone().into_bytes();
        let last = bad.len() - 10;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let err = PublicKey::from_line(std::str::from_utf8(&bad).unwrap(), origin).unwrap_err();
        assert!(matches!(err, KeyError::BadChecksum { .. }), "{err:?}");
    }

    #[test]
    fn signing_only_line_round_trips_and_is_no_recipient() {
        let sk = SecretKey::generate();
        let only = PublicKey::signing_only(sk.public().ed25519);
        let line = only.to_line();
        assert!(line.starts_with("modelseal-sign-pub-v1:"));
        let origin = Path::new("t.pub");
        let back = PublicKey::from_line(&line, origin).unwrap();
        assert_eq!(back, only);
        assert_eq!(back.key_id(), sk.public().key_id());
        assert!(matches!(
            back.require_recipient(origin),
            Err(KeyError::SigningOnly { .. })
        ));
        assert!(sk.public().require_recipient(origin).is_ok());
        // The checksum covers the type: the same bytes under the other public type are refused.
        let swapped = line.replacen("modelseal-sign-pub-v1", "modelseal-pub-v1", 1);
        assert!(PublicKey::from_line(&swapped, origin).is_err());
        let mut bad = line.into_bytes();
        let last = bad.len() - 10;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let err = PublicKey::from_line(std::str::from_utf8(&bad).unwrap(), origin).unwrap_err();
        assert!(matches!(err, KeyError::BadChecksum { .. }), "{err:?}");
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", SecretKey::generate()),
            "SecretKey([redacted])"
        );
        assert_eq!(
            format!("{:?}", SharedKey::generate()),
            "SharedKey([redacted])"
        );
    }
}
