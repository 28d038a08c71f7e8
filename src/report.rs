//! The one shape of what a command established, for machines: `--json` prints these values and
//! the Python package returns them as dicts, so the two cannot drift. Archive-derived strings are
//! kept exact here; escaping them for a terminal is the printer's job.

use serde_json::{json, Value};

use crate::format::manifest::{Manifest, Reference};
use crate::format::{Header, Stanza};
use crate::open::Report;
use crate::seal::SealSummary;
use crate::time::rfc3339;

/// The header's fields.
pub fn header(h: &Header) -> Value {
    let x25519 = h
        .recipients
        .iter()
        .filter(|s| matches!(s, Stanza::X25519 { .. }))
        .count();
    json!({
        "signer": hex::encode(h.signer),
        "suite": h.suite.name(),
        "public": h.suite.is_public(),
        "model_name": h.model_name,
        "model_version": h.model_version,
        "created": rfc3339(h.created),
        "expires": h.expires.map(rfc3339),
        "recipients": { "x25519": x25519, "shared_key": h.recipients.len() - x25519 },
        "compression": format!("{:?}", h.compression).to_lowercase(),
        "tar_size": h.tar_size,
        "plaintext_size": h.plaintext_size,
        "ciphertext_size": h.ciphertext_size,
        "chunk_count": h.chunk_count,
        "payload_blake3": hex::encode(h.payload_digest),
        "manifest_sha256": hex::encode(h.manifest_sha256),
    })
}

fn reference(r: &Option<Reference>) -> Value {
    r.as_ref().map_or(
        Value::Null,
        |r| json!({"name": r.name, "size": r.size, "sha256": hex::encode(r.sha256)}),
    )
}

/// The manifest's fields.
pub fn manifest(m: &Manifest) -> Value {
    json!({
        "name": m.name.as_str(),
        "version": m.version.to_string(),
        "description": m.description,
        "created": rfc3339(m.created),
        "modelseal_version": m.modelseal_version,
        "files": m.files.iter().map(|f| json!({
            "path": f.path.as_str(),
            "size": f.size,
            "sha256": hex::encode(f.sha256),
            "format": f.kind.format,
            "pickle_protocol": f.kind.pickle_protocol,
            "pickle_globals": f.kind.pickle_globals,
            "sklearn_version": f.kind.sklearn_version,
        })).collect::<Vec<_>>(),
        "metadata": m.metadata,
        "metrics": m.metrics,
        "train_data": reference(&m.train_data),
        "source": reference(&m.source),
        "requires": m.requires,
        "class_names": m.class_names,
        "feature_names": m.feature_names,
        "oms_bundle": m.oms_bundle().map(|f| f.path.as_str()),
        "typed_model": m.typed_model.as_ref().map(|t| json!({
            "path": t.path, "type": t.type_name, "encoding": t.encoding, "libraries": t.libraries,
        })),
    })
}

/// A verified archive (`verify`, `inspect -t`, `open`, `modelseal.verify`, `load(with_info=True)`):
/// the header, `verified: true`, the verified signer and co-signers, and the manifest (null when
/// nothing was decrypted).
pub fn verified(r: &Report) -> Value {
    let mut v = header(r.header.get());
    v["verified"] = json!(true);
    v["verified_signer"] = json!(r.header.signer().to_string());
    v["cosigners"] = json!(r
        .header
        .cosigners()
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>());
    v["manifest"] = r.manifest.as_ref().map_or(Value::Null, manifest);
    v
}

/// A header read without verification (`inspect` without `-t`): `verified: false`, nothing else.
pub fn unverified(h: &Header) -> Value {
    let mut v = header(h);
    v["verified"] = json!(false);
    v
}

/// What sealing produced (`modelseal.dump`): the header and the manifest.
pub fn sealed(s: &SealSummary) -> Value {
    let mut v = header(&s.header);
    v["manifest"] = manifest(&s.manifest);
    v
}
