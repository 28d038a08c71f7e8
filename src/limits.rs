//! Every length an archive can claim is capped here before anything is allocated (FORMAT.md §8).
//!
//! Each limit has a default and a hard maximum. The hard maxima are compiled into the decoders (as
//! bincode byte limits) so that no caller setting can make a decoder allocate more than them; a
//! caller may lower a limit, and [`Limits::validate`] refuses a setting above its hard maximum.

use crate::error::UsageError;

/// Largest header the decoder will ever allocate for (FORMAT.md §8).
pub const HARD_MAX_HEADER_BYTES: u32 = 1 << 20;
/// Largest manifest the decoder will ever allocate for.
pub const HARD_MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// The chunked-encryption spec forbids more than 2^38 chunks (4 PiB).
pub const HARD_MAX_CHUNK_COUNT: u64 = 1 << 38;
/// The largest zstd window (2^27 = 128 MiB) a decoder may be allowed to use.
pub const HARD_MAX_ZSTD_WINDOW_LOG: u32 = 27;
/// Largest PAX extended header we accept; it holds one `path` record.
pub const HARD_MAX_PAX_BYTES: u64 = 64 << 10;
/// A key file is a comment and one line of base64.
pub const MAX_KEY_FILE_BYTES: u64 = 4 << 10;
/// Most recipients a header may list.
pub const HARD_MAX_RECIPIENTS: usize = 1024;
/// Most signature entries; the count is one byte on disk.
pub const HARD_MAX_SIGNATURES: usize = 255;
/// Most files in one archive.
pub const HARD_MAX_FILES: usize = 1_000_000;
/// Longest path of a model file inside an archive.
pub const HARD_MAX_PATH_BYTES: usize = 4096;
/// Largest decompressed tar stream.
pub const HARD_MAX_UNPACKED_BYTES: u64 = 1 << 62;
/// Largest OCI manifest, image index or error body read from a registry (FORMAT.md §12): read
/// into memory, so bounded before the first byte; registries themselves cap manifests at 4 MiB.
pub const OCI_MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Most referrers of the detached-signature type `pull` fetches for one archive (FORMAT.md
/// §12.5); more are counted as unusable, not fetched.
pub const OCI_MAX_REFERRED_SIGNATURES: usize = 64;
/// Largest bearer-token response read from a registry's token realm.
pub const OCI_MAX_TOKEN_BYTES: u64 = 1 << 20;
/// Largest Docker config file read for registry credentials.
pub const OCI_MAX_DOCKER_CONFIG_BYTES: u64 = 1 << 20;

/// The largest archive blob `pull` downloads under `limits`: the unpacked bound plus 1/256 of it
/// and 1 MiB for framing (chunk tags, header, signatures). The descriptor's size is checked
/// against this before any byte is downloaded; the download stops at the descriptor's size.
pub fn oci_max_blob_bytes(limits: &Limits) -> u64 {
    limits
        .max_unpacked_bytes
        .saturating_add(limits.max_unpacked_bytes / 256)
        .saturating_add(1 << 20)
}

/// The latest creation or expiry time an archive may carry: 9999-12-31T23:59:59Z, the last
/// second RFC 3339 can write (FORMAT.md §2). Later times are refused at seal and at parse.
pub const MAX_TIME: u64 = 253_402_300_799;

/// The bounds applied to every archive read (FORMAT.md §8).
///
/// ```
/// let limits = modelseal::Limits { max_files: 10, ..modelseal::Limits::default() };
/// assert!(limits.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded header, in bytes.
    pub max_header_bytes: u32,
    /// Most recipient stanzas in a header.
    pub max_recipients: usize,
    /// Most signature entries after the header.
    pub max_signatures: usize,
    /// Most chunks in the encrypted payload (each 16 KiB).
    pub max_chunk_count: u64,
    /// Largest manifest entry, in bytes.
    pub max_manifest_bytes: u64,
    /// Most model files in one archive.
    pub max_files: usize,
    /// Longest model file path, in bytes.
    pub max_path_bytes: usize,
    /// Largest decompressed tar stream; the effective cap is the smaller of this and the signed
    /// `tar_size`.
    pub max_unpacked_bytes: u64,
    /// Base-2 log of the largest zstd window the decoder accepts.
    pub zstd_window_log_max: u32,
    /// Largest PAX extended header entry, in bytes.
    pub max_pax_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 << 10,
            max_recipients: 64,
            max_signatures: 16,
            max_chunk_count: 1 << 32,
            max_manifest_bytes: 4 << 20,
            max_files: 10_000,
            max_path_bytes: 1024,
            max_unpacked_bytes: 1 << 40,
            zstd_window_log_max: 24,
            max_pax_bytes: 4 << 10,
        }
    }
}

impl Limits {
    /// Refuses any limit above its hard maximum.
    pub fn validate(&self) -> Result<(), UsageError> {
        let checks: [(&'static str, u64, u64); 10] = [
            (
                "max_header_bytes",
                self.max_header_bytes.into(),
                HARD_MAX_HEADER_BYTES.into(),
            ),
            (
                "max_recipients",
                self.max_recipients as u64,
                HARD_MAX_RECIPIENTS as u64,
            ),
            (
                "max_signatures",
                self.max_signatures as u64,
                HARD_MAX_SIGNATURES as u64,
            ),
            (
                "max_chunk_count",
                self.max_chunk_count,
                HARD_MAX_CHUNK_COUNT,
            ),
            (
                "max_manifest_bytes",
                self.max_manifest_bytes,
                HARD_MAX_MANIFEST_BYTES,
            ),
            ("max_files", self.max_files as u64, HARD_MAX_FILES as u64),
            (
                "max_path_bytes",
                self.max_path_bytes as u64,
                HARD_MAX_PATH_BYTES as u64,
            ),
            (
                "max_unpacked_bytes",
                self.max_unpacked_bytes,
                HARD_MAX_UNPACKED_BYTES,
            ),
            (
                "zstd_window_log_max",
                self.zstd_window_log_max.into(),
                HARD_MAX_ZSTD_WINDOW_LOG.into(),
            ),
            ("max_pax_bytes", self.max_pax_bytes, HARD_MAX_PAX_BYTES),
        ];
        for (name, value, max) in checks {
            if value > max {
                return Err(UsageError::LimitAboveHardMax { name, value, max });
            }
        }
        Ok(())
    }
}
