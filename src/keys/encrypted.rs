//! Passphrase-encrypted secret keys (keys/README.md, FORMAT.md §10): the 64-byte secret of a
//! `MODELSEAL-SECRET-V1` key sealed with AES-256-GCM under a key derived by scrypt from a
//! passphrase, on one `MODELSEAL-SECRET-SCRYPT-V1` line.
//!
//! ```text
//! payload = log_n (1) || salt (16) || AES-256-GCM(key, nonce = 12 zero bytes,
//!                                                 aad = TYPE || log_n, secret (64)) (80)
//! key     = scrypt(passphrase, salt, N = 2^log_n, r = 8, p = 1)[0..32]
//! ```
//!
//! The salt is fresh for every encryption, so the derived key is never used twice and the nonce
//! may be constant (as in FORMAT.md §4.2). `log_n` is 18 when written (age's default) and accepted
//! in 10..=22 when read (age accepts up to 22), checked before any scrypt work.

use std::io::BufRead;
use std::path::Path;

use zeroize::Zeroizing;

use super::{decode_line, encode_line, SecretKey};
use crate::error::{IoContext, KeyError, Result, UsageError};

/// Type tag of a passphrase-encrypted secret key line.
pub const ENCRYPTED_SECRET_KEY_TYPE: &str = "MODELSEAL-SECRET-SCRYPT-V1";
/// The scrypt work factor written: N = 2^18, r = 8 (256 MiB, about a second).
pub const DEFAULT_LOG_N: u8 = 18;
/// The smallest work factor read or written.
pub const MIN_LOG_N: u8 = 10;
/// The largest work factor read (N = 2^22, r = 8: 4 GiB of memory; age's limit too).
pub const MAX_LOG_N: u8 = 22;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_LEN: usize = 16;
const PAYLOAD_LEN: usize = 1 + SALT_LEN + 80;
/// The environment variable naming a file whose first line is the passphrase.
pub const PASSPHRASE_FILE_ENV: &str = "MODELSEAL_PASSPHRASE_FILE";
/// The same, for the new passphrase of `key passwd`.
pub const NEW_PASSPHRASE_FILE_ENV: &str = "MODELSEAL_NEW_PASSPHRASE_FILE";
/// The environment variable setting the work factor written (tests; 10..=22).
pub const LOG_N_ENV: &str = "MODELSEAL_SCRYPT_LOG_N";
/// Longest passphrase read.
const MAX_PASSPHRASE_BYTES: u64 = 1024;

/// An encrypted key line, parsed and its work factor checked, not yet decrypted.
pub(crate) struct EncryptedLine {
    log_n: u8,
    salt: [u8; SALT_LEN],
    sealed: [u8; 80],
}

impl EncryptedLine {
    /// Parses a line: type, base64url, length, checksum, then the work factor's bounds.
    pub(crate) fn parse(line: &str, origin: &Path) -> Result<EncryptedLine, KeyError> {
        let payload = decode_line(line, ENCRYPTED_SECRET_KEY_TYPE, PAYLOAD_LEN, origin)?;
        let log_n = payload[0];
        if !(MIN_LOG_N..=MAX_LOG_N).contains(&log_n) {
            return Err(KeyError::WorkFactor {
                path: origin.into(),
                log_n,
                min: MIN_LOG_N,
                max: MAX_LOG_N,
            });
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&payload[1..1 + SALT_LEN]);
        let mut sealed = [0u8; 80];
        sealed.copy_from_slice(&payload[1 + SALT_LEN..]);
        Ok(EncryptedLine {
            log_n,
            salt,
            sealed,
        })
    }

    /// Decrypts with `passphrase`. The whole scrypt runs whatever the passphrase, and the tag is
    /// compared in constant time: a wrong passphrase costs the same as a right one.
    pub(crate) fn decrypt(&self, passphrase: &[u8], origin: &Path) -> Result<SecretKey, KeyError> {
        let key = derive(passphrase, &self.salt, self.log_n);
        let secret = crate::crypto::aes_gcm_open_secret(&key, &aad(self.log_n), &self.sealed)
            .ok_or_else(|| KeyError::WrongPassphrase {
                path: origin.into(),
            })?;
        let mut ed = Zeroizing::new([0u8; 32]);
        ed.copy_from_slice(&secret[..32]);
        let mut x = Zeroizing::new([0u8; 32]);
        x.copy_from_slice(&secret[32..]);
        Ok(SecretKey {
            ed25519: ed25519_dalek::SigningKey::from_bytes(&ed),
            x25519: x25519_dalek::StaticSecret::from(*x),
        })
    }
}

fn aad(log_n: u8) -> Vec<u8> {
    let mut a = ENCRYPTED_SECRET_KEY_TYPE.as_bytes().to_vec();
    a.push(log_n);
    a
}

fn derive(passphrase: &[u8], salt: &[u8; SALT_LEN], log_n: u8) -> Zeroizing<[u8; 32]> {
    let params = scrypt::Params::new(log_n, SCRYPT_R, SCRYPT_P).expect("bounded parameters");
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase, salt, &params, key.as_mut()).expect("32-byte output");
    key
}

/// The work factor to write: [`LOG_N_ENV`] when set (10..=22), else [`DEFAULT_LOG_N`].
pub(crate) fn log_n_to_write() -> Result<u8> {
    match std::env::var(LOG_N_ENV) {
        Ok(v) => match v.trim().parse::<u8>() {
            Ok(n) if (MIN_LOG_N..=MAX_LOG_N).contains(&n) => Ok(n),
            _ => Err(UsageError::InvalidMetadata {
                value: format!("{LOG_N_ENV}={v}"),
                detail: format!("expected a log2(N) in {MIN_LOG_N}..={MAX_LOG_N}"),
            }
            .into()),
        },
        Err(_) => Ok(DEFAULT_LOG_N),
    }
}

/// The encrypted line of `key` under `passphrase`, with a fresh salt.
pub(crate) fn encrypt_line(key: &SecretKey, passphrase: &[u8], log_n: u8) -> Zeroizing<String> {
    let mut salt = [0u8; SALT_LEN];
    crate::crypto::fill_random(&mut salt);
    let derived = derive(passphrase, &salt, log_n);
    let secret = key.secret_bytes();
    let sealed = crate::crypto::aes_gcm_seal_secret(&derived, &aad(log_n), &secret);
    let mut payload = Zeroizing::new(Vec::with_capacity(PAYLOAD_LEN));
    payload.push(log_n);
    payload.extend_from_slice(&salt);
    payload.extend_from_slice(&sealed);
    Zeroizing::new(encode_line(ENCRYPTED_SECRET_KEY_TYPE, &payload).to_string())
}

/// Where a passphrase comes from: the file named by an environment variable, else the terminal.
#[derive(Clone, Copy, Debug)]
pub enum PassphraseSource {
    /// An existing key's passphrase: [`PASSPHRASE_FILE_ENV`], else asked once.
    Current,
    /// A new passphrase (keygen, `key passwd`): the file named by `env`, else asked twice.
    New {
        /// The environment variable naming the passphrase file.
        env: &'static str,
    },
}

/// Reads a passphrase for the key at `path`, as `source` says. A passphrase file is held to the
/// rules of a secret key file (mode 0600); its first line is the passphrase (a trailing newline
/// is not part of it). The terminal is asked with echo off.
pub fn read_passphrase(path: &Path, source: PassphraseSource) -> Result<Zeroizing<String>> {
    let (env, confirm) = match source {
        PassphraseSource::Current => (PASSPHRASE_FILE_ENV, false),
        PassphraseSource::New { env } => (env, true),
    };
    let pass = match std::env::var_os(env).filter(|v| !v.is_empty()) {
        Some(file) => from_file(Path::new(&file))?,
        None => {
            let prompt = if confirm {
                format!("New passphrase for {}: ", path.display())
            } else {
                format!("Passphrase for {}: ", path.display())
            };
            let no_tty = |e: std::io::Error| UsageError::NoPassphrase {
                path: path.into(),
                detail: format!("{env} is not set and no terminal could be asked ({e})"),
            };
            let first = Zeroizing::new(rpassword::prompt_password(prompt).map_err(no_tty)?);
            if confirm {
                let again = Zeroizing::new(rpassword::prompt_password("Again: ").map_err(no_tty)?);
                if *again != *first {
                    return Err(UsageError::PassphraseMismatch.into());
                }
            }
            first
        }
    };
    if confirm && pass.is_empty() {
        return Err(UsageError::EmptyPassphrase.into());
    }
    Ok(pass)
}

fn from_file(file: &Path) -> Result<Zeroizing<String>> {
    use std::io::Read;
    let f = std::fs::File::open(file).context(|| format!("opening {}", file.display()))?;
    crate::fs::refuse_shared_secret(file, &f)?;
    let mut reader = std::io::BufReader::new(f.take(MAX_PASSPHRASE_BYTES));
    let mut line = Zeroizing::new(String::new());
    reader
        .read_line(&mut line)
        .context(|| format!("reading {}", file.display()))?;
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(line)
}
