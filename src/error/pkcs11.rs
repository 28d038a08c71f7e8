//! PKCS#11 token keys (RFC 7512 URIs, the module, the token, its PIN and objects).

use std::path::PathBuf;

/// A token key could not be used. None of these carries a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The key URI does not follow RFC 7512 as modelseal reads it (keys/README.md).
    #[error("invalid pkcs11 key URI: {detail}")]
    InvalidUri {
        /// What is wrong (never the URI's PIN).
        detail: String,
    },
    /// The URI carries its PIN (`pin-value`), which would leak into shell history and logs.
    #[error("the pkcs11 key URI carries a pin-value; modelseal reads the PIN only from a file")]
    PinValueInUri,
    /// Neither the URI's `module-path` nor `MODELSEAL_PKCS11_MODULE` names the module.
    #[error("no PKCS#11 module for token {token:?}: the URI has no module-path and MODELSEAL_PKCS11_MODULE is unset")]
    NoModule {
        /// The token label.
        token: String,
    },
    /// Neither the URI's `pin-source` nor `MODELSEAL_PKCS11_PIN_FILE` names a PIN file.
    #[error("no PIN for token {token:?}: the URI has no pin-source and MODELSEAL_PKCS11_PIN_FILE is unset")]
    NoPinSource {
        /// The token label.
        token: String,
    },
    /// The PIN file is empty.
    #[error("{path}: the PIN file is empty")]
    EmptyPin {
        /// The PIN file.
        path: PathBuf,
    },
    /// The module could not be loaded or initialised.
    #[error("cannot load the PKCS#11 module {module}: {detail}")]
    ModuleNotLoadable {
        /// The module path.
        module: PathBuf,
        /// The loader's or module's words.
        detail: String,
    },
    /// No slot of the module holds a token with this label.
    #[error("no token labelled {token:?} in the PKCS#11 module {module}")]
    TokenAbsent {
        /// The token label.
        token: String,
        /// The module path.
        module: PathBuf,
    },
    /// The token refused the PIN.
    #[error("token {token:?} refused the PIN")]
    WrongPin {
        /// The token label.
        token: String,
    },
    /// The token has no key object with this label.
    #[error("token {token:?} has no {class} key labelled {object:?}")]
    ObjectNotFound {
        /// The token label.
        token: String,
        /// The object label.
        object: String,
        /// `public` or `private`.
        class: &'static str,
    },
    /// More than one key object has this label.
    #[error("token {token:?} has {found} {class} keys labelled {object:?}")]
    AmbiguousObject {
        /// The token label.
        token: String,
        /// The object label.
        object: String,
        /// `public` or `private`.
        class: &'static str,
        /// How many.
        found: usize,
    },
    /// `keygen --pkcs11` would create a second object with this label.
    #[error("token {token:?} already holds an object labelled {object:?}")]
    ObjectExists {
        /// The token label.
        token: String,
        /// The object label.
        object: String,
    },
    /// The token does not offer a mechanism modelseal needs.
    #[error("token {token:?} does not support {mechanism}")]
    MechanismUnsupported {
        /// The token label.
        token: String,
        /// The mechanism.
        mechanism: &'static str,
    },
    /// The token's public key is not an Ed25519 point in the form PKCS#11 3.0 gives it.
    #[error("token {token:?}: the key {object:?} is not an Ed25519 key: {detail}")]
    NotEd25519 {
        /// The token label.
        token: String,
        /// The object label.
        object: String,
        /// Why.
        detail: String,
    },
    /// The token's signature does not verify under the key's own public key.
    #[error("token {token:?}: the signature by {object:?} does not verify under its public key")]
    BadSignature {
        /// The token label.
        token: String,
        /// The object label.
        object: String,
    },
    /// Any other failure of the module.
    #[error("token {token:?}: {operation} failed: {detail}")]
    Token {
        /// The token label.
        token: String,
        /// What was being done.
        operation: &'static str,
        /// The module's words.
        detail: String,
    },
}
