//! Every domain-separation string of format version 1, in one place, as FORMAT.md spells them.

/// The chunked-encryption context of the payload (FORMAT.md §6).
pub const PAYLOAD_CONTEXT: &[u8] = b"modelseal/v1/payload";
/// Prefixed to the signed bytes of the header (FORMAT.md §5).
pub const HEADER_SIGNATURE_CONTEXT: &[u8] = b"modelseal/v1/header-signature\0";
/// HKDF info of the X25519 key wrap (FORMAT.md §4.2).
pub const X25519_WRAP_INFO: &[u8] = b"modelseal/v1/x25519-wrap";
/// HKDF info of the shared-key wrap (FORMAT.md §4.3).
pub const SHARED_WRAP_INFO: &[u8] = b"modelseal/v1/shared-wrap";
/// Hashed before an Ed25519 public key to make its key id (FORMAT.md §4.1).
pub const KEY_ID_CONTEXT: &[u8] = b"modelseal/v1/key-id\0";
