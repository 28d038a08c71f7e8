//! Shared helpers for the integration tests: real keys, real files, real archives.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use modelseal::format::manifest::ModelName;
use modelseal::keys::{PublicKey, SecretKey, SharedKey};
use modelseal::open::{self, Decryption, ReadOptions};
use modelseal::seal::{self, CompressionChoice, Recipient, SealOptions};
use modelseal::trust::TrustStore;
use modelseal::{Error, Limits};

/// A working directory with an author, a reader and a stranger.
pub struct World {
    pub dir: tempfile::TempDir,
    pub author: SecretKey,
    pub reader: SecretKey,
    pub stranger: SecretKey,
}

pub const CREATED: u64 = 1_780_000_000;

impl World {
    pub fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
            author: SecretKey::generate(),
            reader: SecretKey::generate(),
            stranger: SecretKey::generate(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }

    pub fn trust(&self) -> TrustStore {
        let mut t = TrustStore::new();
        t.add(self.author.public());
        t
    }

    pub fn options<'a>(
        &'a self,
        recipients: Vec<Recipient<'a>>,
        compression: CompressionChoice,
    ) -> SealOptions<'a> {
        SealOptions {
            signer: &self.author,
            recipients,
            name: ModelName::parse("iris-tree").unwrap(),
            version: semver::Version::new(1, 2, 3),
            description: "a test model".into(),
            metadata: [("cv_accuracy".to_string(), "0.95".to_string())].into(),
            created: CREATED,
            expires: None,
            compression,
            details: Default::default(),
            limits: Limits::default(),
            public: false,
            oms_key: None,
            also_reads: Vec::new(),
        }
    }

    /// Seals `inputs` for the reader into `out`.
    pub fn seal_for_reader(&self, inputs: &[PathBuf], out: &str) -> PathBuf {
        let reader_pub = self.reader.public();
        self.seal_with(
            inputs,
            out,
            self.options(
                vec![Recipient::PublicKey(&reader_pub)],
                CompressionChoice::Auto,
            ),
        )
    }

    pub fn seal_with(&self, inputs: &[PathBuf], out: &str, opts: SealOptions<'_>) -> PathBuf {
        let inputs = seal::collect_inputs(inputs, &Limits::default()).unwrap();
        let out = self.path(out);
        seal::seal_file(&inputs, &opts, &out, Default::default()).unwrap();
        out
    }

    /// Opens `archive` as the reader into `out`, trusting the author.
    pub fn open_as_reader(&self, archive: &Path, out: &str) -> Result<open::Opened, Error> {
        let trust = self.trust();
        let mut opts = ReadOptions::new(&trust);
        opts.now = Some(CREATED + 10);
        open::open_file(
            archive,
            Decryption::Identity(&self.reader),
            &self.path(out),
            &opts,
            Default::default(),
        )
    }

    /// Opens archive bytes as the reader into memory, trusting the author.
    pub fn open_bytes(&self, archive: &[u8]) -> Result<(open::Opened, open::OpenedFiles), Error> {
        let trust = self.trust();
        let mut opts = ReadOptions::new(&trust);
        opts.now = Some(CREATED + 10);
        open::open_reader_to_memory(
            archive,
            Decryption::Identity(&self.reader),
            &opts,
            1 << 30,
            &modelseal::open::ModelChecks::default(),
        )
    }

    /// Verifies archive bytes without a key, trusting the author.
    pub fn verify_bytes(&self, archive: &[u8]) -> Result<open::Report, Error> {
        let trust = self.trust();
        let mut opts = ReadOptions::new(&trust);
        opts.now = Some(CREATED + 10);
        open::verify_reader(archive, &opts)
    }

    /// Opens archive bytes, written to a file, into a directory; asserts that a failure leaves
    /// nothing new on disk, and returns the error.
    pub fn open_bytes_to_dir_err(&self, archive: &[u8]) -> Error {
        self.open_bytes_to_dir_err_with(archive, None)
    }

    /// [`World::open_bytes_to_dir_err`] with anti-rollback state.
    pub fn open_bytes_to_dir_err_with(
        &self,
        archive: &[u8],
        state: Option<&modelseal::state::RollbackState>,
    ) -> Error {
        self.open_bytes_to_dir_err_as(archive, state, Decryption::Identity(&self.reader))
    }

    /// Seals `inputs` as a public archive (no recipients, not encrypted) into `out`.
    pub fn seal_public(
        &self,
        inputs: &[PathBuf],
        out: &str,
        compression: CompressionChoice,
    ) -> PathBuf {
        self.seal_with(
            inputs,
            out,
            SealOptions {
                public: true,
                ..self.options(Vec::new(), compression)
            },
        )
    }

    /// [`World::open_bytes_to_dir_err_with`] opening with `key` (`Decryption::None` for a public
    /// archive).
    pub fn open_bytes_to_dir_err_as(
        &self,
        archive: &[u8],
        state: Option<&modelseal::state::RollbackState>,
        key: Decryption<'_>,
    ) -> Error {
        let file = self.path("under-test.mseal");
        std::fs::write(&file, archive).unwrap();
        let before = listing(self.dir.path());
        let trust = self.trust();
        let opts = ReadOptions {
            now: Some(CREATED + 10),
            state,
            ..ReadOptions::new(&trust)
        };
        let err = open::open_file(
            &file,
            key,
            &self.path("out-under-test"),
            &opts,
            Default::default(),
        )
        .expect_err("archive must be refused");
        assert_eq!(
            listing(self.dir.path()),
            before,
            "a refused open left files behind"
        );
        std::fs::remove_file(&file).unwrap();
        err
    }
}

impl World {
    /// A correctly encrypted archive for the reader, signed by the trusted author, whose tar
    /// stream is a `manifest` entry holding `manifest_bytes` followed by `body` (any bytes), zstd-
    /// compressed when asked. The signed `tar_size` is the real one unless given.
    pub fn trusted_archive(
        &self,
        manifest_bytes: &[u8],
        body: &[u8],
        compression: modelseal::format::Compression,
        tar_size: Option<u64>,
    ) -> Vec<u8> {
        use modelseal::craft;
        let mut tar = craft::tar_entry(b"manifest", b'0', manifest_bytes, None);
        tar.extend_from_slice(body);
        let size = tar_size.unwrap_or(tar.len() as u64);
        let message = match compression {
            modelseal::format::Compression::Zstd => craft::zstd(&tar),
            _ => tar,
        };
        craft::archive_from_message(
            &message,
            size,
            compression,
            manifest_bytes,
            "iris-tree",
            "1.0.0",
            CREATED,
            &self.author,
            &self.reader.public(),
        )
    }
}

impl World {
    /// [`World::trusted_archive`] as a public archive (suite 1), stored.
    pub fn trusted_public_archive(&self, manifest_bytes: &[u8], body: &[u8]) -> Vec<u8> {
        use modelseal::craft;
        let mut tar = craft::tar_entry(b"manifest", b'0', manifest_bytes, None);
        tar.extend_from_slice(body);
        craft::public_archive_from_message(
            &tar,
            tar.len() as u64,
            modelseal::format::Compression::None,
            manifest_bytes,
            CREATED,
            &self.author,
        )
    }
}

pub fn shared_key() -> SharedKey {
    SharedKey::generate()
}

pub fn public(k: &SecretKey) -> PublicKey {
    k.public()
}

/// Every path below `dir`, recursively, without following symlinks.
pub fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Asserts an expression matches a pattern, printing the value otherwise.
#[macro_export]
macro_rules! assert_refused {
    ($e:expr, $p:pat $(if $g:expr)?) => {{
        let e = &$e;
        assert!(matches!(e, $p $(if $g)?), "expected {}, got {:?}", stringify!($p), e);
    }};
}
