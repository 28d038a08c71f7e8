//! modelseal seals a trained model and its manifest into one archive that is encrypted to its
//! recipients and signed by its author, and refuses to open anything whose signature, hash or
//! version check fails.
//!
//! ```
//! use modelseal::{keys::SecretKey, open, seal, trust::TrustStore, Limits};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("model.bin"), b"weights")?;
//! let author = SecretKey::generate();
//! let reader = SecretKey::generate();
//! let reader_pub = reader.public();
//!
//! let inputs = seal::collect_inputs(&[dir.path().join("model.bin")], &Limits::default())?;
//! let to = vec![seal::Recipient::PublicKey(&reader_pub)];
//! let opts = seal::SealOptions::new(&author, to, "iris-tree", "1.0.0")?;
//! let archive = dir.path().join("iris.mseal");
//! seal::seal_file(&inputs, &opts, &archive, seal::OutputOptions::default())?;
//!
//! let mut trust = TrustStore::new();
//! trust.add(author.public());
//! let out = dir.path().join("opened");
//! open::open_file(&archive, open::Decryption::Identity(&reader), &out, &open::ReadOptions::new(&trust), Default::default())?;
//! assert_eq!(std::fs::read(out.join("model.bin"))?, b"weights");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod archive;
pub mod countersign;
pub mod crypto;
pub mod detached;
pub mod error;
pub mod format;
pub mod fs;
pub mod keys;
pub mod limits;
pub mod models;
pub mod oci;
pub mod oms;
pub mod open;
pub mod report;
pub mod scan;
pub mod seal;
pub mod state;
pub mod time;
pub mod trust;
pub mod verify;

#[cfg(any(feature = "craft", fuzzing))]
pub mod craft;

pub use error::{Error, Result};
pub use limits::Limits;
pub use verify::Verified;

#[cfg(fuzzing)]
pub mod fuzzing;

/// True only in cargo-fuzz builds (`--cfg fuzzing`), where signatures, AEAD tags, the key
/// commitment and the payload and manifest digests are not enforced so that the fuzzer reaches the
/// parsers behind them. A normal build cannot enable it: no feature or flag sets `cfg(fuzzing)`,
/// and the `modelseal` binary refuses to compile with it.
pub(crate) const FUZZING: bool = cfg!(fuzzing);

/// This build's version, recorded in every manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
