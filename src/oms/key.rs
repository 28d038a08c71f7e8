//! P-256 keys in PEM, as `openssl` and python-cryptography write them (FORMAT.md §11.2).
//!
//! OMS with a key means ECDSA: `model_signing` refuses Ed25519, so these are not modelseal's own
//! key files. RustCrypto's `p256` parses the three PEM forms (SEC1, PKCS#8, SPKI) with a strict
//! DER decoder and checks the curve; its signing key zeroizes its scalar on drop.

use std::io::Read;
use std::path::Path;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use zeroize::Zeroizing;

use crate::error::{IoContext, OmsError};
use crate::Result;

/// Largest PEM key file read. A P-256 key in PEM is under 300 bytes; `openssl ecparam -genkey`
/// adds an `EC PARAMETERS` block, and some tools a comment.
pub const MAX_KEY_PEM_BYTES: u64 = 16 << 10;

/// An ECDSA P-256 signing key, from a PEM file (SEC1 `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
pub struct EcSigningKey(SigningKey);

impl std::fmt::Debug for EcSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EcSigningKey([redacted])")
    }
}

/// An ECDSA P-256 public key, from a PEM `PUBLIC KEY` (SPKI) file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcVerifyingKey {
    key: VerifyingKey,
    hint: String,
}

/// Reads a PEM file of at most [`MAX_KEY_PEM_BYTES`], into memory that is wiped when dropped.
fn read_pem(path: &Path, expected: &'static str) -> Result<Zeroizing<String>> {
    let file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    if expected == "private key" {
        // As every secret key modelseal reads (openssl writes its private keys 0600).
        crate::fs::refuse_shared_secret(path, &file)?;
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .context(|| format!("reading {}", path.display()))?;
    let bad = |detail: String| OmsError::BadKey {
        path: path.to_path_buf(),
        expected,
        detail,
    };
    if bytes.len() as u64 > MAX_KEY_PEM_BYTES {
        return Err(bad(format!("larger than {MAX_KEY_PEM_BYTES} bytes")).into());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// The first PEM block labelled `label`, from its BEGIN line to the end of its END line: other
/// blocks (`EC PARAMETERS`) and text around it are left out, as OpenSSL does.
fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = start + text[start..].find(&end)? + end.len();
    Some(&text[start..stop])
}

impl EcSigningKey {
    /// Reads a PEM private key file.
    pub fn read(path: &Path) -> Result<EcSigningKey> {
        let text = read_pem(path, "private key")?;
        Ok(EcSigningKey::from_pem(&text, path)?)
    }

    /// Parses a PEM private key; `origin` names it in errors.
    pub fn from_pem(text: &str, origin: &Path) -> Result<EcSigningKey, OmsError> {
        let bad = |detail: String| OmsError::BadKey {
            path: origin.to_path_buf(),
            expected: "private key",
            detail,
        };
        if let Some(block) = pem_block(text, "EC PRIVATE KEY") {
            let secret = p256::SecretKey::from_sec1_pem(block)
                .map_err(|e| bad(format!("SEC1 key refused: {e}")))?;
            return Ok(EcSigningKey(SigningKey::from(&secret)));
        }
        if let Some(block) = pem_block(text, "PRIVATE KEY") {
            let key = SigningKey::from_pkcs8_pem(block)
                .map_err(|e| bad(format!("PKCS#8 key refused: {e}")))?;
            return Ok(EcSigningKey(key));
        }
        if pem_block(text, "ENCRYPTED PRIVATE KEY").is_some() {
            return Err(bad("the key is encrypted; give it unencrypted".into()));
        }
        Err(bad("no EC PRIVATE KEY or PRIVATE KEY block".into()))
    }

    /// Makes a key from 32 bytes (tests and fuzzing); `None` if they are not a valid scalar.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<EcSigningKey> {
        SigningKey::from_slice(bytes).ok().map(EcSigningKey)
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> EcVerifyingKey {
        EcVerifyingKey::new(*self.0.verifying_key())
    }

    /// ECDSA P-256 with SHA-256 over `message` (RFC 6979 nonces), DER-encoded.
    pub(crate) fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        let sig: DerSignature = self.0.sign(message);
        sig.as_bytes().to_vec()
    }
}

impl EcVerifyingKey {
    fn new(key: VerifyingKey) -> EcVerifyingKey {
        let pem = key
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 point always encodes as SPKI");
        let hint = hex::encode(crate::crypto::sha256(pem.as_bytes()));
        EcVerifyingKey { key, hint }
    }

    /// Reads a PEM public key file.
    pub fn read(path: &Path) -> Result<EcVerifyingKey> {
        let text = read_pem(path, "public key")?;
        Ok(EcVerifyingKey::from_pem(&text, path)?)
    }

    /// Parses a PEM `PUBLIC KEY` (SPKI); `origin` names it in errors.
    pub fn from_pem(text: &str, origin: &Path) -> Result<EcVerifyingKey, OmsError> {
        let bad = |detail: String| OmsError::BadKey {
            path: origin.to_path_buf(),
            expected: "public key",
            detail,
        };
        let block =
            pem_block(text, "PUBLIC KEY").ok_or_else(|| bad("no PUBLIC KEY block".into()))?;
        let key = VerifyingKey::from_public_key_pem(block)
            .map_err(|e| bad(format!("SPKI key refused: {e}")))?;
        Ok(EcVerifyingKey::new(key))
    }

    /// The key as python-cryptography writes it: SPKI PEM, 64-character lines, LF.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 point always encodes as SPKI")
    }

    /// `verificationMaterial.publicKey.hint`: hex SHA-256 of [`EcVerifyingKey::to_pem`]
    /// (FORMAT.md §11.2).
    pub fn hint(&self) -> &str {
        &self.hint
    }

    /// Checks a DER signature over `message`.
    pub(crate) fn verify_der(&self, message: &[u8], der: &[u8]) -> Result<(), OmsError> {
        let sig = DerSignature::from_bytes(der)
            .map_err(|_| OmsError::SignatureEncoding { len: der.len() })?;
        self.key
            .verify(message, &sig)
            .map_err(|_| OmsError::BadSignature {
                key: self.hint.clone(),
            })
    }
}
