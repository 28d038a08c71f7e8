//! The payload's size arithmetic (FORMAT.md §6): c2sp.org/chunked-encryption's fixed chunking,
//! so that the header's sizes can be checked without any cryptography.

/// Plaintext bytes per full chunk: "The message is split into chunks of 16 KiB".
pub const CHUNK_SIZE: usize = 16 * 1024;
/// AES-GCM tag length.
pub const TAG_SIZE: usize = 16;
/// Ciphertext bytes per full chunk.
pub const ENCRYPTED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// "*salt* is a sequence of 24 bytes".
pub const SALT_SIZE: usize = 24;
/// "*commitment* MUST be of 32 bytes".
pub const COMMITMENT_SIZE: usize = 32;
/// Salt and commitment precede the chunks: the spec's "fixed overhead of 56 bytes" minus a tag.
pub const PREFIX_SIZE: usize = SALT_SIZE + COMMITMENT_SIZE;

/// Number of chunks for a message of `len` bytes: "there is only one correct chunking for each
/// message length".
pub fn chunk_count(len: u64) -> u64 {
    len / CHUNK_SIZE as u64 + 1
}

/// Ciphertext length for a message of `len` bytes, or `None` on overflow.
pub fn ciphertext_len(len: u64) -> Option<u64> {
    chunk_count(len)
        .checked_mul(TAG_SIZE as u64)?
        .checked_add(len)?
        .checked_add(PREFIX_SIZE as u64)
}
