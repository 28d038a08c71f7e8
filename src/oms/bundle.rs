//! The Sigstore bundle, its DSSE envelope and the in-toto statement inside: JSON <-> types, and
//! the signature over DSSE's pre-authentication encoding (FORMAT.md §11.1-§11.3).

use std::collections::HashSet;
use std::marker::PhantomData;

use base64::Engine as _;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::key::{EcSigningKey, EcVerifyingKey};
use super::{FileDigest, ResourceName, MAX_BUNDLE_BYTES, MAX_IGNORE_PATHS, MAX_RESOURCES};
use crate::error::OmsError;
use crate::limits::HARD_MAX_PATH_BYTES;

/// `mediaType` of a Sigstore bundle v0.3.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// DSSE `payloadType` of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of an OMS model signature v1.0.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The only serialization method verified: one resource per file.
pub const METHOD_FILES: &str = "files";
/// The only hash: SHA-256 of each whole file.
pub const HASH_SHA256: &str = "sha256";
/// Most subjects or signatures read before the rest is only counted (exactly one is valid).
const MAX_SMALL_LIST: usize = 16;
/// Lowercase hex of a SHA-256 digest.
const DIGEST_HEX_LEN: usize = 64;

/// A JSON array read under a cap: the first `MAX + 1` items are kept, the rest only counted, so
/// that a hostile list costs time proportional to its bytes but no memory beyond the cap.
struct Capped<T, const MAX: usize> {
    items: Vec<T>,
    total: usize,
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Capped<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for V<T, MAX> {
            type Value = Capped<T, MAX>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                let mut total = 0;
                while total <= MAX {
                    match seq.next_element()? {
                        Some(x) => items.push(x),
                        None => return Ok(Capped { items, total }),
                    }
                    total += 1;
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(Capped { items, total })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

impl<T, const MAX: usize> Default for Capped<T, MAX> {
    fn default() -> Self {
        Capped {
            items: Vec::new(),
            total: 0,
        }
    }
}

impl<T, const MAX: usize> Capped<T, MAX> {
    fn check(self, what: &'static str, min: usize) -> Result<Vec<T>, OmsError> {
        if self.total < min || self.total > MAX {
            return Err(OmsError::Count {
                what,
                found: self.total,
                allowed: format!("{min}..={MAX}"),
            });
        }
        Ok(self.items)
    }
}

// The JSON shapes. Unknown fields are ignored, as model_signing and the bundle spec ignore them;
// a field given twice is refused (serde's derive does that).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleJson {
    media_type: String,
    verification_material: MaterialJson,
    dsse_envelope: EnvelopeJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MaterialJson {
    #[serde(default)]
    public_key: Option<PublicKeyJson>,
}

#[derive(Deserialize)]
struct PublicKeyJson {
    #[serde(default)]
    hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeJson {
    payload: String,
    payload_type: String,
    signatures: Capped<SignatureJson, MAX_SMALL_LIST>,
}

#[derive(Deserialize)]
struct SignatureJson {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatementJson {
    #[serde(rename = "_type")]
    type_: String,
    subject: Capped<SubjectJson, MAX_SMALL_LIST>,
    predicate_type: String,
    predicate: PredicateJson,
}

#[derive(Deserialize)]
struct SubjectJson {
    name: String,
    digest: SubjectDigestJson,
}

#[derive(Deserialize)]
struct SubjectDigestJson {
    sha256: String,
}

#[derive(Deserialize)]
struct PredicateJson {
    serialization: SerializationJson,
    resources: Capped<ResourceJson, MAX_RESOURCES>,
}

#[derive(Deserialize)]
struct SerializationJson {
    method: String,
    hash_type: String,
    allow_symlinks: bool,
    #[serde(default)]
    ignore_paths: Capped<String, MAX_IGNORE_PATHS>,
}

#[derive(Deserialize)]
struct ResourceJson {
    name: String,
    algorithm: String,
    digest: String,
}

/// The envelope of a bundle, parsed but not yet verified: the payload is opaque bytes.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// `verificationMaterial.publicKey.hint`, when present and not empty.
    pub(crate) key_hint: Option<String>,
    /// The DSSE payload, decoded from base64.
    pub(crate) payload: Vec<u8>,
    /// The one signature, decoded from base64.
    pub(crate) signature: Vec<u8>,
}

/// A signed OMS statement, after every rule of FORMAT.md §11.3 held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) subject_name: String,
    pub(crate) subject_digest: [u8; 32],
    pub(crate) allow_symlinks: bool,
    pub(crate) ignore_paths: Vec<String>,
    pub(crate) resources: Vec<FileDigest>,
}

fn decode(what: &'static str) -> impl Fn(String) -> OmsError {
    move |detail| OmsError::Decode { what, detail }
}

fn expect_type(field: &'static str, expected: &'static str, found: String) -> Result<(), OmsError> {
    if found == expected {
        Ok(())
    } else {
        Err(OmsError::WrongType {
            field,
            expected,
            found: found.chars().take(256).collect(),
        })
    }
}

fn expect_supported(
    field: &'static str,
    supported: &'static str,
    found: String,
) -> Result<(), OmsError> {
    if found == supported {
        Ok(())
    } else {
        Err(OmsError::Unsupported {
            field,
            supported,
            found: found.chars().take(256).collect(),
        })
    }
}

/// A SHA-256 digest in lowercase hex, as model_signing writes it.
pub(crate) fn parse_digest(what: &'static str, s: &str) -> Result<[u8; 32], OmsError> {
    let hex_lower = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    if s.len() != DIGEST_HEX_LEN || !s.bytes().all(hex_lower) {
        return Err(decode(what)(format!(
            "{:?} is not {DIGEST_HEX_LEN} lowercase hex digits",
            s.chars().take(80).collect::<String>()
        )));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| decode(what)(e.to_string()))?;
    Ok(out)
}

fn base64(what: &'static str, s: &str) -> Result<Vec<u8>, OmsError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| decode(what)(e.to_string()))
}

/// DSSE v1 pre-authentication encoding: `DSSEv1 SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths in ASCII decimal (github.com/secure-systems-lab/dsse protocol.md).
pub(crate) fn pae(payload: &[u8]) -> Vec<u8> {
    let head = format!(
        "DSSEv1 {} {PAYLOAD_TYPE} {} ",
        PAYLOAD_TYPE.len(),
        payload.len()
    );
    let mut out = Vec::with_capacity(head.len() + payload.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// SHA-256 over the raw digests, in the order listed: the subject digest (FORMAT.md §11.3).
pub(crate) fn subject_digest(files: &[FileDigest]) -> [u8; 32] {
    let mut h = crate::crypto::Sha256::default();
    for f in files {
        h.update(&f.sha256);
    }
    h.finish()
}

impl Envelope {
    /// Steps 1-3 of FORMAT.md §11.4: the size, the JSON, the media and payload types, one
    /// signature, the base64. Nothing here is trusted yet.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Envelope, OmsError> {
        // 1. The size, before any parsing.
        if bytes.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(OmsError::BundleTooLarge {
                size: bytes.len() as u64,
                max: MAX_BUNDLE_BYTES,
            });
        }
        // 2. The bundle's JSON and its types.
        let b: BundleJson =
            serde_json::from_slice(bytes).map_err(|e| decode("bundle")(e.to_string()))?;
        expect_type("mediaType", BUNDLE_MEDIA_TYPE, b.media_type)?;
        let env = b.dsse_envelope;
        expect_type("payloadType", PAYLOAD_TYPE, env.payload_type)?;
        // 3. Exactly one signature, and the base64.
        let mut sigs = env.signatures.check("signatures", 1)?;
        let sig = sigs.pop().expect("checked: exactly one");
        if !sigs.is_empty() {
            return Err(OmsError::Count {
                what: "signatures",
                found: sigs.len() + 1,
                allowed: "1".into(),
            });
        }
        Ok(Envelope {
            key_hint: b
                .verification_material
                .public_key
                .and_then(|k| k.hint)
                .filter(|h| !h.is_empty()),
            payload: base64("payload", &env.payload)?,
            signature: base64("signature", &sig.sig)?,
        })
    }

    /// Steps 4-5: the key hint, then the signature over PAE(payload). Only a payload that passed
    /// is parsed as a statement.
    pub(crate) fn verify(self, key: &EcVerifyingKey) -> Result<Statement, OmsError> {
        // 4. The key the bundle names, when it names one.
        if let Some(found) = self.key_hint {
            if found != key.hint() {
                return Err(OmsError::KeyMismatch {
                    expected: key.hint().to_owned(),
                    found: found.chars().take(80).collect(),
                });
            }
        }
        // 5. The signature.
        key.verify_der(&pae(&self.payload), &self.signature)?;
        Statement::parse(&self.payload)
    }
}

impl Statement {
    /// Step 6 of FORMAT.md §11.4: the statement's types, its one subject, the serialization, and
    /// each resource; then the subject digest over the resources.
    pub(crate) fn parse(payload: &[u8]) -> Result<Statement, OmsError> {
        let s: StatementJson =
            serde_json::from_slice(payload).map_err(|e| decode("statement")(e.to_string()))?;
        expect_type("statement _type", STATEMENT_TYPE, s.type_)?;
        expect_type("predicateType", PREDICATE_TYPE, s.predicate_type)?;
        let subject = s.subject.check("subjects", 1)?;
        if subject.len() != 1 {
            return Err(OmsError::Count {
                what: "subjects",
                found: subject.len(),
                allowed: "1".into(),
            });
        }
        let subject = subject.into_iter().next().expect("checked: exactly one");
        let ser = s.predicate.serialization;
        expect_supported("serialization.method", METHOD_FILES, ser.method)?;
        expect_supported("serialization.hash_type", HASH_SHA256, ser.hash_type)?;
        let ignore_paths = ser.ignore_paths.check("ignore_paths", 0)?;
        if let Some(p) = ignore_paths.iter().find(|p| p.len() > HARD_MAX_PATH_BYTES) {
            return Err(OmsError::UnsafeName {
                name: p.chars().take(256).collect(),
                reason: "ignore path longer than the path limit",
            });
        }
        let raw = s.predicate.resources.check("resources", 0)?;
        let count = raw.len();
        let mut seen = HashSet::with_capacity(count);
        let mut resources = Vec::with_capacity(count);
        for r in raw {
            expect_supported("resource algorithm", HASH_SHA256, r.algorithm)?;
            let name = ResourceName::parse(&r.name)?;
            if name.is_whole_file() && count != 1 {
                return Err(OmsError::UnsafeName {
                    name: r.name,
                    reason: "'.' names a one-file model and must be the only resource",
                });
            }
            let sha256 = parse_digest("resource digest", &r.digest)?;
            if !seen.insert(r.name) {
                return Err(OmsError::DuplicateResource {
                    name: name.as_str().to_owned(),
                });
            }
            resources.push(FileDigest { name, sha256 });
        }
        let expected = parse_digest("subject digest", &subject.digest.sha256)?;
        let found = subject_digest(&resources);
        if found != expected {
            return Err(OmsError::SubjectDigestMismatch {
                expected: hex::encode(expected),
                found: hex::encode(found),
            });
        }
        Ok(Statement {
            subject_name: subject.name,
            subject_digest: expected,
            allow_symlinks: ser.allow_symlinks,
            ignore_paths,
            resources,
        })
    }

    /// The statement's JSON, in model_signing's field names, two-space indented.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(rename = "_type")]
            type_: &'a str,
            subject: [OutSubject<'a>; 1],
            #[serde(rename = "predicateType")]
            predicate_type: &'a str,
            predicate: OutPredicate<'a>,
        }
        #[derive(Serialize)]
        struct OutSubject<'a> {
            name: &'a str,
            digest: OutDigest,
        }
        #[derive(Serialize)]
        struct OutDigest {
            sha256: String,
        }
        #[derive(Serialize)]
        struct OutPredicate<'a> {
            serialization: OutSerialization<'a>,
            resources: Vec<OutResource<'a>>,
        }
        #[derive(Serialize)]
        struct OutSerialization<'a> {
            method: &'a str,
            hash_type: &'a str,
            allow_symlinks: bool,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            ignore_paths: &'a [String],
        }
        #[derive(Serialize)]
        struct OutResource<'a> {
            name: &'a str,
            algorithm: &'a str,
            digest: String,
        }
        let out = Out {
            type_: STATEMENT_TYPE,
            subject: [OutSubject {
                name: &self.subject_name,
                digest: OutDigest {
                    sha256: hex::encode(self.subject_digest),
                },
            }],
            predicate_type: PREDICATE_TYPE,
            predicate: OutPredicate {
                serialization: OutSerialization {
                    method: METHOD_FILES,
                    hash_type: HASH_SHA256,
                    allow_symlinks: self.allow_symlinks,
                    ignore_paths: &self.ignore_paths,
                },
                resources: self
                    .resources
                    .iter()
                    .map(|f| OutResource {
                        name: f.name.as_str(),
                        algorithm: HASH_SHA256,
                        digest: hex::encode(f.sha256),
                    })
                    .collect(),
            },
        };
        serde_json::to_vec_pretty(&out).expect("plain strings and numbers serialize")
    }
}

/// Signs `statement` into a bundle: DSSE over its JSON, the key hint, no transparency log entry.
pub(crate) fn sign(statement: &Statement, key: &EcSigningKey) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = statement.to_json();
    let sig = key.sign_der(&pae(&payload));
    let bundle = serde_json::json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": { "hint": key.verifying_key().hint() },
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": b64.encode(&payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{ "sig": b64.encode(&sig), "keyid": "" }],
        },
    });
    serde_json::to_vec(&bundle).expect("plain strings serialize")
}
