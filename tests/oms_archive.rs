//! An OMS bundle carried inside an archive (`seal --oms-key`, `open --oms-signature`, FORMAT.md
//! §9 and §11.5): written out it verifies the opened directory; the bundle never lands in the
//! output; the reserved `.modelseal/` names cannot be used for anything else; and a bundle that
//! disagrees with the files it travels with is refused before anything is released.

mod common;

use std::path::Path;

use common::*;
use modelseal::error::{FormatError, ManifestRule, OmsError, UsageError};
use modelseal::format::manifest::{
    FileEntry, FileKind, Manifest, ModelName, SafeRelPath, OMS_ENTRY, OMS_FORMAT,
};
use modelseal::format::Compression;
use modelseal::oms::{self, EcSigningKey, FileDigest, Ignore, ResourceName};
use modelseal::open::{self, Decryption, ModelChecks, OpenOutput, ReadOptions};
use modelseal::seal::{self, CompressionChoice, Recipient, SealOptions};
use modelseal::Error;

fn ec() -> EcSigningKey {
    EcSigningKey::from_bytes(&[42; 32]).unwrap()
}

fn seal_with_oms(
    w: &World,
    key: &EcSigningKey,
    compression: CompressionChoice,
    public: bool,
) -> Vec<u8> {
    w.write("model/weights.bin", &bytes(60_000, 1));
    w.write("model/sub/config.json", b"{\"depth\": 3}");
    w.write("model/.gitignore", b"*.tmp\n");
    let rp = w.reader.public();
    let recipients = if public {
        Vec::new()
    } else {
        vec![Recipient::PublicKey(&rp)]
    };
    let opts = SealOptions {
        public,
        oms_key: Some(key),
        ..w.options(recipients, compression)
    };
    let inputs = seal::collect_inputs(&[w.path("model")], &Default::default()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    seal::seal_to_writer(&inputs, &opts, &mut out).unwrap();
    out.into_inner()
}

fn open_to(
    w: &World,
    archive: &[u8],
    out: &str,
    sig: Option<&Path>,
    key: Decryption<'_>,
) -> Result<open::Opened, Error> {
    let trust = w.trust();
    let opts = ReadOptions {
        now: Some(CREATED + 10),
        ..ReadOptions::new(&trust)
    };
    open::Archive::read(archive, &opts.limits)?
        .verify(&opts)?
        .decrypt(key)
        .to_dir_with_oms(
            &w.path(out),
            OpenOutput::default(),
            &ModelChecks::default(),
            sig,
        )
}

#[test]
fn the_carried_bundle_verifies_the_opened_directory_for_every_suite_and_compression() {
    let key = ec();
    for (compression, public) in [
        (CompressionChoice::None, false),
        (CompressionChoice::Zstd, false),
        (CompressionChoice::None, true),
    ] {
        let w = World::new();
        let a = seal_with_oms(&w, &key, compression, public);
        let sig = w.path("model.sig");
        let opened = open_to(&w, &a, "out", Some(&sig), Decryption::Identity(&w.reader)).unwrap();
        let m = &opened.manifest;
        let entry = m.oms_bundle().expect("the manifest lists the bundle");
        assert_eq!(entry.path.as_str(), OMS_ENTRY);
        assert_eq!(entry.kind.format, OMS_FORMAT);
        assert_eq!(m.model_files().count(), 3);
        // The bundle is not in the output directory, and verifies it with the P-256 key.
        assert!(!w.path("out/.modelseal").exists());
        let bundle = std::fs::read(&sig).unwrap();
        assert_eq!(modelseal::crypto::sha256(&bundle), entry.sha256);
        let v = oms::verify(
            &w.path("out"),
            &bundle,
            &key.verifying_key(),
            &Ignore::default(),
        )
        .unwrap();
        let names: Vec<&str> = v.files.iter().map(|f| f.name.as_str()).collect();
        // model_signing's own default: git's files at the top are left out; nested ones are not.
        assert_eq!(
            names,
            [
                "model/.gitignore",
                "model/sub/config.json",
                "model/weights.bin"
            ]
        );
        // A changed opened file is caught by the bundle, as model_signing would catch it.
        std::fs::write(w.path("out/model/sub/config.json"), b"{\"depth\": 4}").unwrap();
        let e = oms::verify(
            &w.path("out"),
            &bundle,
            &key.verifying_key(),
            &Ignore::default(),
        )
        .unwrap_err();
        assert!(
            matches!(e, Error::Oms(OmsError::FileChanged { ref path, .. }) if path == "model/sub/config.json"),
            "{e:?}"
        );
    }
}

#[test]
fn an_archive_without_a_bundle_refuses_oms_signature_and_writes_nothing() {
    let w = World::new();
    let input = w.write("m.bin", b"no bundle");
    let a = std::fs::read(w.seal_for_reader(&[input], "m.mseal")).unwrap();
    let before = listing(w.dir.path());
    let e = open_to(
        &w,
        &a,
        "out",
        Some(&w.path("model.sig")),
        Decryption::Identity(&w.reader),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Oms(OmsError::NotCarried { .. })),
        "{e:?}"
    );
    assert_eq!(listing(w.dir.path()), before, "a refused open left files");
}

#[test]
fn an_existing_signature_file_is_not_replaced_without_force() {
    let w = World::new();
    let a = seal_with_oms(&w, &ec(), CompressionChoice::Auto, false);
    let sig = w.write("model.sig", b"previous");
    let before = listing(w.dir.path());
    let e = open_to(&w, &a, "out", Some(&sig), Decryption::Identity(&w.reader)).unwrap_err();
    assert!(
        matches!(e, Error::Usage(UsageError::OutputExists { .. })),
        "{e:?}"
    );
    assert_eq!(listing(w.dir.path()), before);
    assert_eq!(std::fs::read(&sig).unwrap(), b"previous");
}

#[test]
fn model_files_may_not_use_the_reserved_names() {
    let w = World::new();
    let rp = w.reader.public();
    let opts = w.options(vec![Recipient::PublicKey(&rp)], CompressionChoice::Auto);
    for path in [".modelseal/oms.sig", ".modelseal/other", ".modelseal"] {
        let inputs = seal::inputs_from_memory(
            vec![(path.to_string(), b"{}".to_vec())],
            &Default::default(),
        );
        let e = match inputs {
            Err(e) => e,
            Ok(inputs) => {
                let mut out = std::io::Cursor::new(Vec::new());
                seal::seal_to_writer(&inputs, &opts, &mut out).unwrap_err()
            }
        };
        assert!(
            matches!(&e, Error::Usage(UsageError::SealInput { detail, .. }) if detail.contains(".modelseal")),
            "{path}: {e:?}"
        );
    }
}

/// A manifest listing `files` (path, data, kind format), and the tar body holding them.
fn crafted(files: &[(&str, &[u8], &str)]) -> (Vec<u8>, Vec<u8>) {
    let mut m = Manifest::new(
        ModelName::parse("iris-tree").unwrap(),
        semver::Version::new(1, 0, 0),
        CREATED,
    );
    let mut body = Vec::new();
    for (p, d, format) in files {
        m.files.push(FileEntry {
            path: SafeRelPath::parse(p, 1024).unwrap(),
            size: d.len() as u64,
            sha256: modelseal::crypto::sha256(d),
            kind: FileKind {
                format: format.to_string(),
                ..Default::default()
            },
        });
        body.extend(modelseal::craft::tar_entry(p.as_bytes(), b'0', d, None));
    }
    body.extend(modelseal::craft::tar_end());
    (modelseal::craft::manifest_bytes_unchecked(&m), body)
}

#[test]
fn a_trusted_signer_whose_bundle_lies_about_the_files_is_refused_before_release() {
    let w = World::new();
    let key = ec();
    let weights = b"the real weights".as_slice();
    // The bundle signs other bytes for weights.bin than the archive carries.
    let lie = oms::sign_digests(
        "m",
        vec![FileDigest {
            name: ResourceName::parse("weights.bin").unwrap(),
            sha256: modelseal::crypto::sha256(b"other weights"),
        }],
        &[],
        &key,
    )
    .unwrap();
    let (mb, body) = crafted(&[
        (OMS_ENTRY, &lie, OMS_FORMAT),
        ("weights.bin", weights, "unknown"),
    ]);
    let a = w.trusted_archive(&mb, &body, Compression::None, None);
    let before = listing(w.dir.path());
    let e = open_to(&w, &a, "out", None, Decryption::Identity(&w.reader)).unwrap_err();
    assert!(
        matches!(e, Error::Oms(OmsError::FileChanged { ref path, .. }) if path == "weights.bin"),
        "{e:?}"
    );
    assert_eq!(listing(w.dir.path()), before, "a refused open left files");
    // Into memory too (the Python package's path).
    let e = w.open_bytes(&a).unwrap_err();
    assert!(
        matches!(e, Error::Oms(OmsError::FileChanged { .. })),
        "{e:?}"
    );
    // A bundle that lists a file the archive does not carry.
    let extra = oms::sign_digests(
        "m",
        vec![
            FileDigest {
                name: ResourceName::parse("weights.bin").unwrap(),
                sha256: modelseal::crypto::sha256(weights),
            },
            FileDigest {
                name: ResourceName::parse("ghost.bin").unwrap(),
                sha256: [0; 32],
            },
        ],
        &[],
        &key,
    )
    .unwrap();
    let (mb, body) = crafted(&[
        (OMS_ENTRY, &extra, OMS_FORMAT),
        ("weights.bin", weights, "unknown"),
    ]);
    let a = w.trusted_archive(&mb, &body, Compression::None, None);
    let e = open_to(&w, &a, "out", None, Decryption::Identity(&w.reader)).unwrap_err();
    assert!(
        matches!(e, Error::Oms(OmsError::FileMissing { ref path }) if path == "ghost.bin"),
        "{e:?}"
    );
    // Garbage at the bundle's place.
    let (mb, body) = crafted(&[
        (OMS_ENTRY, b"not json", OMS_FORMAT),
        ("weights.bin", weights, "unknown"),
    ]);
    let a = w.trusted_archive(&mb, &body, Compression::None, None);
    let e = open_to(&w, &a, "out", None, Decryption::Identity(&w.reader)).unwrap_err();
    assert!(matches!(e, Error::Oms(OmsError::Decode { .. })), "{e:?}");
    assert_eq!(listing(w.dir.path()), before);
}

#[test]
fn a_signed_manifest_misusing_the_reserved_names_is_refused() {
    let w = World::new();
    for files in [
        // A file under .modelseal/ that is not the bundle.
        vec![(".modelseal/run.sh", b"rm -rf ~".as_slice(), "unknown")],
        // The bundle's path with another kind.
        vec![(OMS_ENTRY, b"{}".as_slice(), "pickle")],
        // The bundle's kind at another path.
        vec![("model.sig", b"{}".as_slice(), OMS_FORMAT)],
    ] {
        let (mb, body) = crafted(&files);
        let a = w.trusted_archive(&mb, &body, Compression::None, None);
        let e = w.open_bytes_to_dir_err(&a);
        assert!(
            matches!(
                e,
                Error::Format(FormatError::InvalidManifest {
                    rule: ManifestRule::ReservedName,
                    ..
                })
            ),
            "{files:?}: {e:?}"
        );
    }
}

#[test]
fn an_archive_refused_for_its_bundle_is_never_recorded_as_accepted() {
    let w = World::new();
    let lie = oms::sign_digests(
        "m",
        vec![FileDigest {
            name: ResourceName::parse("weights.bin").unwrap(),
            sha256: modelseal::crypto::sha256(b"other weights"),
        }],
        &[],
        &ec(),
    )
    .unwrap();
    let (mb, body) = crafted(&[
        (OMS_ENTRY, &lie, OMS_FORMAT),
        ("weights.bin", b"real", "unknown"),
    ]);
    let a = w.trusted_archive(&mb, &body, Compression::None, None);
    let state = modelseal::state::RollbackState::at(w.path("state.json"));
    let e = w.open_bytes_to_dir_err_with(&a, Some(&state));
    assert!(
        matches!(e, Error::Oms(OmsError::FileChanged { .. })),
        "{e:?}"
    );
    // Nothing was recorded: the same name and version with other contents is not an
    // equivocation, it opens.
    let (mb, body) = crafted(&[("weights.bin", b"real", "unknown")]);
    let good = w.trusted_archive(&mb, &body, Compression::None, None);
    let file = w.path("good.mseal");
    std::fs::write(&file, &good).unwrap();
    let trust = w.trust();
    let opts = ReadOptions {
        now: Some(CREATED + 10),
        state: Some(&state),
        ..ReadOptions::new(&trust)
    };
    open::open_file(
        &file,
        Decryption::Identity(&w.reader),
        &w.path("out"),
        &opts,
        Default::default(),
    )
    .unwrap();
}

/// A bundle that signs other bytes for `weights.bin` than the archive carries.
fn lying_files() -> Vec<u8> {
    oms::sign_digests(
        "m",
        vec![FileDigest {
            name: ResourceName::parse("weights.bin").unwrap(),
            sha256: modelseal::crypto::sha256(b"other weights"),
        }],
        &[],
        &ec(),
    )
    .unwrap()
}

#[test]
fn verify_runs_the_carried_bundle_check_that_open_runs() {
    // A gate that releases nothing (verify with no key on a public archive, verify -i, verify
    // --allow-globals) must refuse what open refuses, or it passes and records an archive that
    // no one can open.
    let w = World::new();
    let lie = lying_files();
    let (mb, body) = crafted(&[
        (OMS_ENTRY, &lie, OMS_FORMAT),
        ("weights.bin", b"the real weights", "unknown"),
    ]);
    let trust = w.trust();
    let state = modelseal::state::RollbackState::at(w.path("state.json"));
    let opts = ReadOptions {
        now: Some(CREATED + 10),
        state: Some(&state),
        ..ReadOptions::new(&trust)
    };
    let changed = |e: Error| {
        assert!(
            matches!(e, Error::Oms(OmsError::FileChanged { ref path, .. }) if path == "weights.bin"),
            "{e:?}"
        )
    };
    let public = w.trusted_public_archive(&mb, &body);
    changed(open::verify_reader(public.as_slice(), &opts).unwrap_err());
    let encrypted = w.trusted_archive(&mb, &body, Compression::None, None);
    changed(
        open::verify_decrypted(encrypted.as_slice(), Decryption::Identity(&w.reader), &opts)
            .unwrap_err(),
    );
    let checks = ModelChecks {
        allow_globals: Some(vec!["@sklearn".into()]),
        ..Default::default()
    };
    changed(open::verify_checked(public.as_slice(), Decryption::None, &opts, &checks).unwrap_err());
    // Nothing was recorded by the refusals.
    assert!(!w.path("state.json").exists());
    // An honest carried bundle passes every one of them.
    let honest = seal_with_oms(&w, &ec(), CompressionChoice::Auto, true);
    let r = open::verify_reader(honest.as_slice(), &opts).unwrap();
    assert!(r
        .manifest
        .unwrap()
        .files
        .iter()
        .any(|f| f.path.as_str() == OMS_ENTRY));
    let honest = seal_with_oms(&w, &ec(), CompressionChoice::None, false);
    let opts = ReadOptions {
        state: None,
        ..opts
    };
    open::verify_decrypted(honest.as_slice(), Decryption::Identity(&w.reader), &opts).unwrap();
}

#[test]
fn a_signature_path_that_cannot_be_written_is_refused_before_anything_is_released() {
    let w = World::new();
    let a = seal_with_oms(&w, &ec(), CompressionChoice::Auto, false);
    let before = listing(w.dir.path());
    // A missing parent directory: refused before the payload is read.
    let e = open_to(
        &w,
        &a,
        "out",
        Some(&w.path("missing/model.sig")),
        Decryption::Identity(&w.reader),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_eq!(listing(w.dir.path()), before, "a refused open left files");
    // The output directory itself, or a path inside it.
    for sig in ["out", "out/model.sig", "./out/sub/../model.sig"] {
        let e = open_to(
            &w,
            &a,
            "out",
            Some(&w.path(sig)),
            Decryption::Identity(&w.reader),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Usage(UsageError::SignatureInsideOutput { .. }) | Error::Io { .. }
            ),
            "{sig}: {e:?}"
        );
        assert_eq!(
            listing(w.dir.path()),
            before,
            "{sig}: a refused open left files"
        );
    }
    let e = open_to(
        &w,
        &a,
        "out",
        Some(&w.path("out")),
        Decryption::Identity(&w.reader),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Usage(UsageError::SignatureInsideOutput { .. })),
        "{e:?}"
    );
    // Inside an existing output that --force would replace.
    std::fs::create_dir(w.path("prev")).unwrap();
    let before = listing(w.dir.path());
    let trust = w.trust();
    let opts = ReadOptions {
        now: Some(CREATED + 10),
        ..ReadOptions::new(&trust)
    };
    let e = open::Archive::read(a.as_slice(), &opts.limits)
        .unwrap()
        .verify(&opts)
        .unwrap()
        .decrypt(Decryption::Identity(&w.reader))
        .to_dir_with_oms(
            &w.path("prev"),
            OpenOutput { force: true },
            &ModelChecks::default(),
            Some(&w.path("prev/model.sig")),
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::Usage(UsageError::SignatureInsideOutput { .. })),
        "{e:?}"
    );
    assert_eq!(listing(w.dir.path()), before);
    // A good path still works, and the signature lands beside the directory.
    open_to(
        &w,
        &a,
        "out",
        Some(&w.path("model.sig")),
        Decryption::Identity(&w.reader),
    )
    .unwrap();
    assert!(w.path("model.sig").is_file() && w.path("out/model/weights.bin").is_file());
}

#[test]
fn a_carried_bundle_that_ignores_model_files_is_refused() {
    // model_signing accepts a bundle recording "." as ignored for any directory at all: it signs
    // nothing. A carried bundle may record only git's files.
    let w = World::new();
    let weights = b"the real weights".as_slice();
    for ignored in [".", "weights.bin", "./", "sub"] {
        let bundle = oms::sign_digests("m", Vec::new(), &[ignored.to_string()], &ec()).unwrap();
        let (mb, body) = crafted(&[
            (OMS_ENTRY, &bundle, OMS_FORMAT),
            ("weights.bin", weights, "unknown"),
        ]);
        let a = w.trusted_archive(&mb, &body, Compression::None, None);
        let e = w.open_bytes_to_dir_err(&a);
        assert!(
            matches!(e, Error::Oms(OmsError::IgnoresModelFiles { ref path }) if path == ignored),
            "{ignored}: {e:?}"
        );
        let public = w.trusted_public_archive(&mb, &body);
        let e = w.verify_bytes(&public).unwrap_err();
        assert!(
            matches!(e, Error::Oms(OmsError::IgnoresModelFiles { .. })),
            "{ignored}: {e:?}"
        );
    }
}
