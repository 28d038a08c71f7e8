//! Ed25519 keys on a PKCS#11 token (`CKM_EDDSA`), addressed by RFC 7512 URIs ([`super::uri`]).
//!
//! One module context per module path per process (PKCS#11 allows one `C_Initialize` per
//! process); every signing operation opens its own session, logs in, signs, logs out and closes
//! the session, under one process-wide lock, so two keys on one token never see each other's
//! login. The PIN is read from a file that others may not read and is zeroized after use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ed25519_dalek::VerifyingKey;
use zeroize::Zeroizing;

use super::uri::Pkcs11Uri;
use super::{KeyId, PublicKey, Signer};
use crate::crypto::sign;
use crate::error::{IoContext, Pkcs11Error, Result};

/// The module used when the URI has no `module-path`.
pub const PKCS11_MODULE_ENV: &str = "MODELSEAL_PKCS11_MODULE";
/// The PIN file used when the URI has no `pin-source`.
pub const PKCS11_PIN_FILE_ENV: &str = "MODELSEAL_PKCS11_PIN_FILE";
/// CKA_EC_PARAMS of Ed25519: the printable string "edwards25519" (PKCS#11 3.0 §2.3.10).
const EDWARDS25519_PARAMS: &[u8] = b"\x13\x0cedwards25519";
/// The same curve named by its OID 1.3.101.112 (RFC 8410), which some tokens report.
const ED25519_OID_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const MAX_PIN_BYTES: u64 = 256;

fn contexts() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Held for every session that logs in: a login is per token and per process in PKCS#11.
fn login_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn token_error(token: &str, operation: &'static str, e: CkError) -> Pkcs11Error {
    Pkcs11Error::Token {
        token: token.into(),
        operation,
        detail: e.to_string().chars().take(300).collect(),
    }
}

/// A resolved token key reference: the URI with its module chosen.
struct Token {
    uri: Pkcs11Uri,
    module: PathBuf,
    ctx: Pkcs11,
    slot: Slot,
}

impl Token {
    fn open(uri: Pkcs11Uri) -> Result<Token> {
        let module = match (&uri.module_path, std::env::var_os(PKCS11_MODULE_ENV)) {
            (Some(m), _) => m.clone(),
            (None, Some(m)) if !m.is_empty() => PathBuf::from(m),
            _ => {
                return Err(Pkcs11Error::NoModule {
                    token: uri.token.clone(),
                }
                .into())
            }
        };
        let ctx = load(&module)?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| token_error(&uri.token, "listing slots", e))?;
        let mut found = None;
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| token_error(&uri.token, "reading token info", e))?;
            if info.label().trim_end() == uri.token {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| Pkcs11Error::TokenAbsent {
            token: uri.token.clone(),
            module: module.clone(),
        })?;
        Ok(Token {
            uri,
            module,
            ctx,
            slot,
        })
    }

    fn label(&self) -> &str {
        &self.uri.token
    }

    fn session(&self, rw: bool) -> Result<Session> {
        let s = if rw {
            self.ctx.open_rw_session(self.slot)
        } else {
            self.ctx.open_ro_session(self.slot)
        };
        Ok(s.map_err(|e| token_error(self.label(), "opening a session", e))?)
    }

    fn pin(&self) -> Result<AuthPin> {
        let path = match (&self.uri.pin_source, std::env::var_os(PKCS11_PIN_FILE_ENV)) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
            _ => {
                return Err(Pkcs11Error::NoPinSource {
                    token: self.uri.token.clone(),
                }
                .into())
            }
        };
        read_pin(&path)
    }

    /// Logs `session` in as the user; the caller holds [`login_lock`] and logs out.
    fn login(&self, session: &Session) -> Result<()> {
        let pin = self.pin()?;
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                Err(Pkcs11Error::WrongPin {
                    token: self.uri.token.clone(),
                }
                .into())
            }
            Err(e) => Err(token_error(self.label(), "logging in", e).into()),
        }
    }

    fn find(&self, session: &Session, class: ObjectClass) -> Result<Vec<ObjectHandle>> {
        let template = [
            Attribute::Class(class),
            Attribute::Label(self.uri.object.as_bytes().to_vec()),
        ];
        Ok(session
            .find_objects(&template)
            .map_err(|e| token_error(self.label(), "finding objects", e))?)
    }

    fn find_one(&self, session: &Session, class: ObjectClass) -> Result<ObjectHandle> {
        let name = if class == ObjectClass::PRIVATE_KEY {
            "private"
        } else {
            "public"
        };
        let found = self.find(session, class)?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(Pkcs11Error::ObjectNotFound {
                token: self.uri.token.clone(),
                object: self.uri.object.clone(),
                class: name,
            }
            .into()),
            many => Err(Pkcs11Error::AmbiguousObject {
                token: self.uri.token.clone(),
                object: self.uri.object.clone(),
                class: name,
                found: many.len(),
            }
            .into()),
        }
    }

    /// The public key object's Ed25519 key, read without logging in when it is not private.
    fn public_key(&self) -> Result<VerifyingKey> {
        let session = self.session(false)?;
        let handle = match self.find_one(&session, ObjectClass::PUBLIC_KEY) {
            Ok(h) => h,
            Err(crate::error::Error::Pkcs11(Pkcs11Error::ObjectNotFound { .. })) => {
                // A token may keep its public keys private: look again logged in.
                let _guard = login_lock();
                self.login(&session)?;
                let h = self.find_one(&session, ObjectClass::PUBLIC_KEY);
                let _ = session.logout();
                h?
            }
            Err(e) => return Err(e),
        };
        let attrs = session
            .get_attributes(
                handle,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
            .map_err(|e| token_error(self.label(), "reading the public key", e))?;
        let not_ed = |detail: &str| Pkcs11Error::NotEd25519 {
            token: self.uri.token.clone(),
            object: self.uri.object.clone(),
            detail: detail.into(),
        };
        let (mut kt, mut params, mut point) = (None, None, None);
        for a in attrs {
            match a {
                Attribute::KeyType(k) => kt = Some(k),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        if kt != Some(KeyType::EC_EDWARDS) {
            return Err(not_ed("key type is not CKK_EC_EDWARDS").into());
        }
        match params.as_deref() {
            Some(EDWARDS25519_PARAMS) | Some(ED25519_OID_PARAMS) => {}
            _ => return Err(not_ed("curve is not edwards25519").into()),
        }
        let raw = parse_ec_point(point.as_deref().unwrap_or_default()).ok_or_else(|| {
            not_ed("CKA_EC_POINT is not a DER OCTET STRING of 32 bytes (04 20 ...)")
        })?;
        Ok(sign::parse_verifying_key(&raw).ok_or_else(|| not_ed("weak or non-canonical point"))?)
    }
}

/// Strictly `04 20 || 32 bytes`: a DER OCTET STRING holding the key (PKCS#11 3.0).
pub(crate) fn parse_ec_point(der: &[u8]) -> Option<[u8; 32]> {
    match der {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        _ => None,
    }
}

fn load(module: &Path) -> Result<Pkcs11> {
    let mut map = contexts().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = map.get(module) {
        return Ok(c.clone());
    }
    let not_loadable = |detail: String| Pkcs11Error::ModuleNotLoadable {
        module: module.into(),
        detail: detail.chars().take(300).collect(),
    };
    if !module.is_file() {
        return Err(not_loadable("no such file".into()).into());
    }
    let ctx = Pkcs11::new(module).map_err(|e| not_loadable(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(not_loadable(e.to_string()).into()),
    }
    map.insert(module.into(), ctx.clone());
    Ok(ctx)
}

/// Reads a PIN file: refused when group or others may read it, bounded, one line, zeroized.
fn read_pin(path: &Path) -> Result<AuthPin> {
    use std::io::Read;
    let file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    crate::fs::refuse_shared_secret(path, &file)?;
    let mut buf = Zeroizing::new(Vec::new());
    (&file)
        .take(MAX_PIN_BYTES)
        .read_to_end(&mut buf)
        .context(|| format!("reading {}", path.display()))?;
    let text =
        std::str::from_utf8(&buf).map_err(|_| Pkcs11Error::EmptyPin { path: path.into() })?;
    let pin = text.trim_end_matches(['\n', '\r']);
    if pin.is_empty() {
        return Err(Pkcs11Error::EmptyPin { path: path.into() }.into());
    }
    // AuthPin (secrecy's SecretString) zeroizes its copy on drop; `buf` zeroizes ours.
    Ok(AuthPin::from(pin))
}

/// An Ed25519 key on a PKCS#11 token: signs with `CKM_EDDSA` and never leaves the token.
pub struct Pkcs11Signer {
    token: Token,
    public: PublicKey,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pkcs11Signer(token={:?}, object={:?}, {})",
            self.token.uri.token,
            self.token.uri.object,
            self.public.key_id()
        )
    }
}

impl Pkcs11Signer {
    /// Opens the key `uri` names: loads the module, finds the token and reads the public key
    /// (no PIN is needed until [`Signer::sign_header`]).
    pub fn open(uri: &str) -> Result<Pkcs11Signer> {
        let token = Token::open(Pkcs11Uri::parse(uri)?)?;
        let public = PublicKey::signing_only(token.public_key()?);
        Ok(Pkcs11Signer { token, public })
    }

    /// Creates a non-extractable Ed25519 key pair on the token, labelled with the URI's object
    /// and identified (CKA_ID) by its modelseal key id; refused when the label is taken.
    pub fn generate(uri: &str) -> Result<Pkcs11Signer> {
        let token = Token::open(Pkcs11Uri::parse(uri)?)?;
        let mechs = token
            .ctx
            .get_mechanism_list(token.slot)
            .map_err(|e| token_error(token.label(), "listing mechanisms", e))?;
        for (m, name) in [
            (
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                "CKM_EC_EDWARDS_KEY_PAIR_GEN",
            ),
            (MechanismType::EDDSA, "CKM_EDDSA"),
        ] {
            if !mechs.contains(&m) {
                return Err(Pkcs11Error::MechanismUnsupported {
                    token: token.uri.token.clone(),
                    mechanism: name,
                }
                .into());
            }
        }
        let session = token.session(true)?;
        let _guard = login_lock();
        token.login(&session)?;
        let result = (|| -> Result<()> {
            let taken = !token.find(&session, ObjectClass::PUBLIC_KEY)?.is_empty()
                || !token.find(&session, ObjectClass::PRIVATE_KEY)?.is_empty();
            if taken {
                return Err(Pkcs11Error::ObjectExists {
                    token: token.uri.token.clone(),
                    object: token.uri.object.clone(),
                }
                .into());
            }
            let label = token.uri.object.as_bytes().to_vec();
            let public_template = [
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::EcParams(EDWARDS25519_PARAMS.to_vec()),
                Attribute::Label(label.clone()),
            ];
            let private_template = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Label(label),
            ];
            let (pub_h, priv_h) = session
                .generate_key_pair(
                    &Mechanism::EccEdwardsKeyPairGen,
                    &public_template,
                    &private_template,
                )
                .map_err(|e| token_error(token.label(), "generating the key pair", e))?;
            let point = session
                .get_attributes(pub_h, &[AttributeType::EcPoint])
                .map_err(|e| token_error(token.label(), "reading the public key", e))?;
            if let Some(Attribute::EcPoint(p)) = point.first() {
                if let Some(raw) = parse_ec_point(p) {
                    let id = KeyId::of(&raw).0.to_vec();
                    for h in [pub_h, priv_h] {
                        session
                            .update_attributes(h, &[Attribute::Id(id.clone())])
                            .map_err(|e| token_error(token.label(), "setting CKA_ID", e))?;
                    }
                }
            }
            Ok(())
        })();
        let _ = session.logout();
        drop(session);
        result?;
        drop(_guard);
        let public = PublicKey::signing_only(token.public_key()?);
        Ok(Pkcs11Signer { token, public })
    }

    /// The token's module path.
    pub fn module(&self) -> &Path {
        &self.token.module
    }
}

impl Signer for Pkcs11Signer {
    fn public(&self) -> PublicKey {
        self.public.clone()
    }

    fn sign_header(&self, signed_bytes: &[u8]) -> Result<[u8; 64]> {
        let message = sign::header_message(signed_bytes);
        let session = self.token.session(false)?;
        let _guard = login_lock();
        self.token.login(&session)?;
        let result = (|| -> Result<Vec<u8>> {
            let key = self.token.find_one(&session, ObjectClass::PRIVATE_KEY)?;
            let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            session
                .sign(&mechanism, key, &message)
                .map_err(|e| match e {
                    CkError::Pkcs11(
                        RvError::MechanismInvalid | RvError::KeyTypeInconsistent,
                        _,
                    ) => Pkcs11Error::MechanismUnsupported {
                        token: self.token.uri.token.clone(),
                        mechanism: "CKM_EDDSA",
                    }
                    .into(),
                    e => token_error(self.token.label(), "signing", e).into(),
                })
        })();
        let _ = session.logout();
        drop(session);
        let sig = result?;
        let bad = || Pkcs11Error::BadSignature {
            token: self.token.uri.token.clone(),
            object: self.token.uri.object.clone(),
        };
        let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| bad())?;
        if !sign::verify_header(self.public.verifying_key(), signed_bytes, &sig) {
            return Err(bad().into());
        }
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_is_parsed_strictly() {
        let mut good = vec![0x04, 0x20];
        good.extend_from_slice(&[7; 32]);
        assert_eq!(parse_ec_point(&good), Some([7; 32]));
        assert_eq!(parse_ec_point(&good[..33]), None);
        let mut long = good.clone();
        long.push(0);
        assert_eq!(parse_ec_point(&long), None);
        assert_eq!(parse_ec_point(&good[2..]), None);
        let mut wrong_tag = good.clone();
        wrong_tag[0] = 0x03;
        assert_eq!(parse_ec_point(&wrong_tag), None);
        assert_eq!(parse_ec_point(&[0x04, 0x81, 0x20]), None);
    }
}
