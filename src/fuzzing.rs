//! Fuzzing harness bodies, one per deserializer (compiled only under `cfg(fuzzing)`, which
//! cargo-fuzz sets). Each asserts a parse → encode round trip where an encoder exists. The fuzz
//! targets in `fuzz/fuzz_targets/` are one-line calls into these.

use std::io::Read;
use std::path::Path;

use crate::archive::{self, EntrySink};
use crate::format::manifest::{Manifest, SafeRelPath};
use crate::format::{self, Compression, Header, Stanza, Suite};
use crate::keys::{PublicKey, SecretKey};
use crate::limits::Limits;
use crate::models;
use crate::open::{self, Decryption, ReadOptions};
use crate::scan;
use crate::trust::TrustStore;

/// A fixed author and reader, so the `open` target can reach everything behind the key unwrap.
pub fn keys() -> (SecretKey, SecretKey) {
    (
        SecretKey::from_seeds([1; 32], [2; 32]),
        SecretKey::from_seeds([3; 32], [4; 32]),
    )
}

/// Header: canonical decode; whatever decodes re-encodes to the same bytes.
pub fn header(data: &[u8]) {
    if let Ok(h) = Header::from_bytes(data, &Limits::default()) {
        assert_eq!(h.to_bytes(), data);
    }
}

/// One recipient stanza.
pub fn stanza(data: &[u8]) {
    if let Ok(s) = format::decode_canonical::<Stanza, 4096>(data, "stanza") {
        assert_eq!(format::encode(&s), data);
    }
}

/// Public and secret key lines (`modelseal-pub-v1`, `modelseal-sign-pub-v1`, secret lines),
/// RFC 7512 `pkcs11:` key URIs and detached co-signature files.
pub fn key_files(data: &[u8]) {
    // Detached co-signature files (binary, FORMAT.md §5.1) share the target: small files a
    // signer hands over.
    if let Ok(d) = crate::detached::DetachedSignature::parse(data) {
        assert_eq!(d.to_bytes().as_slice(), data);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = crate::keys::Pkcs11Uri::parse(text) {
        assert!(!u.token.is_empty() && !u.object.is_empty());
        assert!(!u.token.chars().any(char::is_control));
        assert!(u.pin_source.as_ref().is_none_or(|p| p.is_absolute()));
        assert!(u.module_path.as_ref().is_none_or(|p| p.is_absolute()));
    }
    let origin = Path::new("fuzz");
    if let Ok(k) = PublicKey::from_line(text, origin) {
        let again = PublicKey::from_line(&k.to_line(), origin).expect("re-parse");
        assert_eq!(again, k);
    }
    // Encrypted keys: structure, checksum and work factor only (scrypt itself is not fuzzed).
    let _ = SecretKey::check_encrypted_line(text, origin);
    if let Ok(k) = SecretKey::from_line(text, origin) {
        let again = SecretKey::from_line(&k.to_line(), origin).expect("re-parse");
        assert_eq!(again.public(), k.public());
    }
}

/// The manifest, any schema.
pub fn manifest(data: &[u8]) {
    let limits = Limits::default();
    if let Ok(m) = Manifest::from_bytes(data, &limits) {
        let schema = u32::from_le_bytes(data[..4].try_into().expect("decoded"));
        let again = if schema == 1 {
            m.to_bytes_schema1()
        } else {
            m.to_bytes(&limits).expect("valid")
        };
        assert_eq!(again, data);
    }
}

struct Discard;
impl EntrySink for Discard {
    fn file(&mut self, _: &SafeRelPath, _: u64, data: &mut dyn Read) -> crate::Result<()> {
        std::io::copy(data, &mut std::io::sink())
            .map(|_| ())
            .map_err(|e| crate::Error::io("fuzz", e))
    }
}

/// The tar walk under limits, as if the bytes were a decrypted payload.
pub fn tar_walk(data: &[u8]) {
    let header = sample_header(data.len() as u64);
    let _ = archive::walk(&mut &data[..], &header, &Limits::default(), &mut Discard);
}

/// The static pickle walker.
pub fn pickle(data: &[u8]) {
    let _ = scan::pickle::scan(data, &scan::pickle::PickleLimits::default());
    let _ = scan::describe(data);
    // The allow-globals check of one released file: walk, sniffers (.npy, safetensors, GGUF,
    // text, compressed wrappers) and the exact-name policy.
    static POLICY: std::sync::OnceLock<scan::GlobalPolicy> = std::sync::OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        scan::GlobalPolicy::resolve(&["@sklearn".into()], &Default::default())
            .expect("the shipped profile resolves")
    });
    let manifest = Manifest::new(
        crate::format::manifest::ModelName::parse("m").expect("valid name"),
        semver::Version::new(1, 0, 0),
        0,
    );
    let files = vec![(
        SafeRelPath::parse("f", 64).expect("valid path"),
        scan::FileBytes::from(data.to_vec()),
    )];
    let _ = scan::untrusted_in_memory(&manifest, &files, policy);
}

/// Typed model decoding under the signed-size limit.
pub fn model_decode(data: &[u8]) {
    if let Ok(tree) = models::decode_model::<models::tree::Tree>(data) {
        let (bytes, _) = models::encode_model(&tree, "m", &[]).expect("encode");
        assert_eq!(bytes, data);
    }
    let _ = models::decode_model::<Vec<(String, f64)>>(data);
}

/// Chunked decryption framing (the AEAD itself is a null cipher under fuzzing).
pub fn chunked(data: &[u8]) {
    let _ = crate::crypto::chunked::decrypt_to_vec(data, &[7; 32], b"fuzz", 1 << 20);
}

/// A whole `open`, from bytes to released files, with the fixed keys.
pub fn open(data: &[u8]) {
    let (author, reader) = keys();
    let mut trust = TrustStore::new();
    trust.add(author.public());
    let opts = ReadOptions {
        now: Some(1_800_000_000),
        ..ReadOptions::new(&trust)
    };
    let _ = open::open_reader_to_memory(
        data,
        Decryption::Identity(&reader),
        &opts,
        64 << 20,
        &open::ModelChecks::default(),
    );
}

fn sample_header(tar_size: u64) -> Header {
    Header {
        suite: Suite::Mseal1Ed25519X25519Cobblestone256Blake3,
        signer: [0; 16],
        recipients: vec![],
        salt: [0; 24],
        commitment: [0; 32],
        compression: Compression::None,
        tar_size,
        plaintext_size: tar_size,
        chunk_count: 1,
        ciphertext_size: 0,
        payload_digest: [0; 32],
        model_name: "fuzz".into(),
        model_version: "1.0.0".into(),
        created: 0,
        expires: None,
        manifest_size: 0,
        manifest_sha256: [0; 32],
    }
}

/// An OMS bundle: the envelope, and the statement (from the envelope's payload, and from the raw
/// bytes), each re-encoded and parsed back to the same value.
pub fn oms_bundle(data: &[u8]) {
    crate::oms::fuzz_bundle(data)
}
