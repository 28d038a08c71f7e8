//! Test-only: builds archives from arbitrary parts, signed with a given key, so that the checks
//! past the signature (defence in depth) can be exercised with hostile contents. Compiled only with
//! the `craft` feature (integration tests) or under `cfg(fuzzing)`.

use std::io::Write;

use crate::crypto::{self, chunked, wrap};
use crate::format::domain::PAYLOAD_CONTEXT;
use crate::format::manifest::Manifest;
use crate::format::{
    self, Compression, Header, SignatureEntry, Stanza, Suite, PREFIX_LEN, SIGNATURE_ENTRY_LEN,
};
use crate::keys::{PublicKey, SecretKey};

/// Where the parts of an archive lie.
#[derive(Clone, Debug)]
pub struct Layout {
    /// `[0, 14)`.
    pub prefix: std::ops::Range<usize>,
    /// The header bytes.
    pub header: std::ops::Range<usize>,
    /// The count byte and signature entries.
    pub signatures: std::ops::Range<usize>,
    /// The payload (salt, commitment, chunks).
    pub payload: std::ops::Range<usize>,
    /// The decoded header.
    pub parsed: Header,
}

/// Splits a well-formed archive into its parts.
pub fn layout(archive: &[u8]) -> Layout {
    let len = u32::from_be_bytes(archive[10..14].try_into().expect("prefix")) as usize;
    let header = PREFIX_LEN..PREFIX_LEN + len;
    let count = archive[header.end] as usize;
    let signatures = header.end..header.end + 1 + count * SIGNATURE_ENTRY_LEN;
    let parsed = Header::from_bytes(&archive[header.clone()], &crate::Limits::default())
        .expect("well-formed header");
    let payload = signatures.end..signatures.end + parsed.ciphertext_size as usize;
    Layout {
        prefix: 0..PREFIX_LEN,
        header,
        signatures,
        payload,
        parsed,
    }
}

/// The canonical encoding of any header part (a stanza, for example).
pub fn encode_header_part<T: bincode::Encode>(value: &T) -> Vec<u8> {
    format::encode(value)
}

/// The canonical encoding of any header.
pub fn encode_header(h: &Header) -> Vec<u8> {
    format::encode(h)
}

/// `prefix || header_bytes || count || entries || payload`, with a fresh signature by `signer`
/// over whatever header bytes are given.
pub fn assemble(header_bytes: &[u8], signer: &SecretKey, payload: &[u8]) -> Vec<u8> {
    let mut signed = format::encode_prefix(header_bytes.len() as u32).to_vec();
    signed.extend_from_slice(header_bytes);
    let signature = crate::keys::Signer::sign_header(signer, &signed).expect("a file key signs");
    let mut out = signed;
    out.push(1);
    out.extend_from_slice(
        &SignatureEntry {
            key_id: signer.public().key_id().0,
            signature,
        }
        .to_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

/// Re-signs an archive after `edit` changed its header.
pub fn resign(archive: &[u8], signer: &SecretKey, edit: impl FnOnce(&mut Header)) -> Vec<u8> {
    let l = layout(archive);
    let mut h = l.parsed.clone();
    edit(&mut h);
    assemble(&format::encode(&h), signer, &archive[l.payload.start..])
}

/// The canonical encoding of a manifest, unchecked.
pub fn manifest_bytes(m: &Manifest) -> Vec<u8> {
    m.to_bytes(&crate::Limits::default())
        .expect("valid manifest")
}

/// The canonical encoding of a manifest that may break the rules of FORMAT.md §9.
pub fn manifest_bytes_unchecked(m: &Manifest) -> Vec<u8> {
    m.to_bytes_unchecked()
}

/// A complete archive around an arbitrary encrypted message (`message` is the tar stream, already
/// zstd-compressed when `compression` says so), for `recipient`, signed by `signer`.
#[allow(clippy::too_many_arguments)]
pub fn archive_from_message(
    message: &[u8],
    tar_size: u64,
    compression: Compression,
    manifest_bytes: &[u8],
    name: &str,
    version: &str,
    created: u64,
    signer: &SecretKey,
    recipient: &PublicKey,
) -> Vec<u8> {
    let file_key = crypto::random32();
    let (ephemeral, wrapped_key) =
        wrap::x25519_wrap(&file_key, recipient.x25519().expect("a recipient key"))
            .expect("valid recipient");
    let mut salt = [0u8; 24];
    crypto::fill_random(&mut salt);
    let payload = chunked::encrypt_to_vec(message, &file_key, &salt, PAYLOAD_CONTEXT);
    let header = Header {
        suite: Suite::Mseal1Ed25519X25519Cobblestone256Blake3,
        signer: signer.public().key_id().0,
        recipients: vec![Stanza::X25519 {
            ephemeral,
            wrapped_key,
        }],
        salt,
        commitment: payload[24..56].try_into().expect("32 bytes"),
        compression,
        tar_size,
        plaintext_size: message.len() as u64,
        chunk_count: chunked::chunk_count(message.len() as u64),
        ciphertext_size: payload.len() as u64,
        payload_digest: *blake3::hash(&payload).as_bytes(),
        model_name: name.into(),
        model_version: version.into(),
        created,
        expires: None,
        manifest_size: manifest_bytes.len() as u64,
        manifest_sha256: crypto::sha256(manifest_bytes),
    };
    assemble(&format::encode(&header), signer, &payload)
}

/// A complete public archive (suite 1, FORMAT.md §4.5) around an arbitrary message, signed by
/// `signer`.
pub fn public_archive_from_message(
    message: &[u8],
    tar_size: u64,
    compression: Compression,
    manifest_bytes: &[u8],
    created: u64,
    signer: &SecretKey,
) -> Vec<u8> {
    let header = Header {
        suite: Suite::Mseal1Ed25519PublicBlake3,
        signer: signer.public().key_id().0,
        recipients: Vec::new(),
        salt: [0; 24],
        commitment: [0; 32],
        compression,
        tar_size,
        plaintext_size: message.len() as u64,
        chunk_count: 0,
        ciphertext_size: message.len() as u64,
        payload_digest: *blake3::hash(message).as_bytes(),
        model_name: "iris-tree".into(),
        model_version: "1.0.0".into(),
        created,
        expires: None,
        manifest_size: manifest_bytes.len() as u64,
        manifest_sha256: crypto::sha256(manifest_bytes),
    };
    assemble(&format::encode(&header), signer, message)
}

/// One raw tar header block with any name bytes and type, checksum recomputed, followed by `data`
/// padded to a block. `size` overrides the size field when given.
pub fn tar_entry(name: &[u8], kind: u8, data: &[u8], size: Option<u64>) -> Vec<u8> {
    let mut block = [0u8; 512];
    block[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    block[100..108].copy_from_slice(b"0000644\0");
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    let size_field = format!("{:011o}\0", size.unwrap_or(data.len() as u64));
    block[124..136].copy_from_slice(size_field.as_bytes());
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = kind;
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = block.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Two zero blocks.
pub fn tar_end() -> Vec<u8> {
    vec![0u8; 1024]
}

/// zstd-compresses `data` into one frame.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd");
    e.write_all(data).expect("vec");
    e.finish().expect("vec")
}
