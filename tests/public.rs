//! Public (sign-only) archives, suite 1 (FORMAT.md §4.5): round trips with no key, every tamper
//! class of the encrypted suite, suite confusion both ways, and the CI gate that checks a public
//! model's pickles with no key at all. Every refusal asserts its exact variant and that nothing
//! was left on disk.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use modelseal::craft::{self, layout};
use modelseal::error::{
    ContentError, FormatError, ModelError, TrustError, UsageError, VerifyError,
};
use modelseal::format::{Header, Stanza, Suite, MAGIC};
use modelseal::open::{self, Decryption, ModelChecks, ReadOptions};
use modelseal::seal::{self, CompressionChoice, Recipient, SealOptions};
use modelseal::state::RollbackState;
use modelseal::trust::TrustStore;
use modelseal::Error;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sklearn")
        .join(name)
}

/// A public archive of 70 000 incompressible bytes and a nested text file, stored: several
/// 16 KiB spans of payload, the tar readable at known offsets.
fn sample(w: &World) -> Vec<u8> {
    let a = w.write("weights.bin", &bytes(70_000, 3));
    let b = w.write("cfg/nested/config.txt", b"depth = 3\n");
    std::fs::read(w.seal_public(&[a, b], "p.mseal", CompressionChoice::None)).unwrap()
}

fn flip(mut a: Vec<u8>, at: usize) -> Vec<u8> {
    a[at] ^= 0x01;
    a
}

fn opts(trust: &TrustStore) -> ReadOptions<'_> {
    ReadOptions {
        now: Some(CREATED + 10),
        ..ReadOptions::new(trust)
    }
}

/// `prefix || header_bytes || the signature block of `a` || payload`: a header re-encoded
/// without re-signing it.
fn with_header_unsigned(a: &[u8], header: &Header, payload: &[u8]) -> Vec<u8> {
    let l = layout(a);
    let h = craft::encode_header(header);
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&a[l.signatures.clone()]);
    out.extend_from_slice(payload);
    out
}

#[test]
fn public_archives_round_trip_with_no_key_stored_and_compressed() {
    for compression in [CompressionChoice::None, CompressionChoice::Zstd] {
        let w = World::new();
        let a = w.write("model/weights.bin", &bytes(70_000, 3));
        w.write("model/cfg/nested/config.txt", b"depth = 3\n");
        let archive = w.seal_public(&[w.path("model")], "p.mseal", compression);
        let l = layout(&std::fs::read(&archive).unwrap());
        assert_eq!(l.parsed.suite, Suite::Mseal1Ed25519PublicBlake3);
        assert!(l.parsed.recipients.is_empty());
        assert_eq!(l.parsed.chunk_count, 0);
        assert_eq!(l.parsed.ciphertext_size, l.parsed.plaintext_size);

        // verify with no key checks every file and returns the manifest.
        let trust = w.trust();
        let report = open::verify_file(&archive, &opts(&trust)).unwrap();
        let m = report
            .manifest
            .expect("a public archive's manifest is shown");
        let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["model/cfg/nested/config.txt", "model/weights.bin"]);

        // open with no key, and with a key given (not used).
        for (out, key) in [
            ("out-none", Decryption::None),
            ("out-key", Decryption::Identity(&w.reader)),
        ] {
            let opened = open::open_file(
                &archive,
                key,
                &w.path(out),
                &opts(&trust),
                Default::default(),
            )
            .unwrap();
            assert_eq!(opened.manifest.files.len(), 2);
            assert_eq!(
                std::fs::read(w.path(out).join("model/weights.bin")).unwrap(),
                std::fs::read(&a).unwrap()
            );
            assert_eq!(
                std::fs::read(w.path(out).join("model/cfg/nested/config.txt")).unwrap(),
                b"depth = 3\n"
            );
        }
        // The files are in the clear in the archive: public means readable by anyone.
        let raw = std::fs::read(&archive).unwrap();
        if compression == CompressionChoice::None {
            assert!(raw.windows(10).any(|x| x == b"depth = 3\n"));
        }
    }
}

#[test]
fn sealing_refuses_to_mix_public_and_recipients_and_leaves_nothing() {
    let w = World::new();
    let input = w.write("m.bin", b"x");
    let inputs = seal::collect_inputs(&[input], &Default::default()).unwrap();
    let rp = w.reader.public();
    let shared = shared_key();
    let before = listing(w.dir.path());
    for recipients in [
        vec![Recipient::PublicKey(&rp)],
        vec![Recipient::SharedKey(&shared)],
        vec![Recipient::PublicKey(&rp), Recipient::SharedKey(&shared)],
    ] {
        let n = recipients.len();
        let opts = SealOptions {
            public: true,
            ..w.options(recipients, CompressionChoice::Auto)
        };
        let e =
            seal::seal_file(&inputs, &opts, &w.path("out.mseal"), Default::default()).unwrap_err();
        assert_refused!(
            e,
            Error::Usage(UsageError::PublicWithRecipients { recipients }) if *recipients == n
        );
    }
    let e = seal::seal_file(
        &inputs,
        &w.options(Vec::new(), CompressionChoice::Auto),
        &w.path("out.mseal"),
        Default::default(),
    )
    .unwrap_err();
    assert_refused!(e, Error::Usage(UsageError::NoRecipients));
    assert_eq!(listing(w.dir.path()), before, "a refused seal left files");
}

#[test]
fn an_encrypted_archive_is_never_opened_without_a_key() {
    let w = World::new();
    let input = w.write("m.bin", b"secret weights");
    let a = std::fs::read(w.seal_for_reader(&[input], "e.mseal")).unwrap();
    assert_refused!(
        w.open_bytes_to_dir_err_as(&a, None, Decryption::None),
        Error::Usage(UsageError::NoOpeningKey)
    );
    // verify without a key still checks structure and digest, and shows no manifest.
    assert!(w.verify_bytes(&a).unwrap().manifest.is_none());
}

#[test]
fn every_header_byte_flipped_is_refused_before_the_payload() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    let suite = l.header.start..l.header.start + 4;
    let signer = suite.end..suite.end + 16;
    let mut by_signature = 0;
    for i in l.header.clone() {
        let flipped = flip(a.clone(), i);
        let e = w.verify_bytes(&flipped).unwrap_err();
        if i == suite.start {
            // Suite 1 → 0 (encrypted): a header with no recipient breaks suite 0's rules.
            assert_refused!(
                e,
                Error::Format(FormatError::RecipientCount { found: 0, .. })
            );
        } else if suite.contains(&i) {
            assert_refused!(e, Error::Format(FormatError::Decode { what: "header", .. }));
        } else if signer.contains(&i) {
            assert_refused!(e, Error::Verify(VerifyError::UntrustedSigner { .. }));
        } else {
            assert_refused!(
                e,
                Error::Format(
                    FormatError::Decode { what: "header", .. }
                        | FormatError::SuiteFields { .. }
                        | FormatError::InconsistentSizes { .. }
                        | FormatError::InvalidModelName { .. }
                        | FormatError::InvalidModelVersion { .. }
                        | FormatError::TrailingBytes { .. }
                ) | Error::Verify(VerifyError::BadSignature { .. })
            );
            by_signature += usize::from(matches!(e, Error::Verify(_)));
        }
    }
    assert!(by_signature > 60, "{by_signature}");
    // A flipped salt or commitment byte (all zero in suite 1): SuiteFields, even re-signed.
    for edit in [
        (|h: &mut Header| h.salt[5] = 1) as fn(&mut Header),
        |h: &mut Header| h.commitment[31] = 1,
    ] {
        let resigned = craft::resign(&a, &w.author, edit);
        assert_refused!(
            w.open_bytes_to_dir_err_as(&resigned, None, Decryption::None),
            Error::Format(FormatError::SuiteFields { .. })
        );
    }
    // open says exactly what verify says.
    for i in l.header.clone().step_by(13) {
        let flipped = flip(a.clone(), i);
        let e = w.open_bytes_to_dir_err_as(&flipped, None, Decryption::None);
        let v = w.verify_bytes(&flipped).unwrap_err();
        assert_eq!(format!("{e:?}"), format!("{v:?}"), "byte {i}");
    }
}

#[test]
fn the_signature_block_flipped_is_refused() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    assert_refused!(
        w.open_bytes_to_dir_err_as(&flip(a.clone(), l.signatures.start), None, Decryption::None),
        Error::Format(FormatError::SignatureCount { found: 0, .. })
    );
    assert_refused!(
        w.open_bytes_to_dir_err_as(
            &flip(a.clone(), l.signatures.start + 1),
            None,
            Decryption::None
        ),
        Error::Verify(VerifyError::MissingSignature { .. })
    );
    for i in l.signatures.start + 17..l.signatures.end {
        assert_refused!(
            w.verify_bytes(&flip(a.clone(), i)).unwrap_err(),
            Error::Verify(VerifyError::BadSignature { .. })
        );
    }
}

#[test]
fn every_payload_byte_altered_is_refused_by_the_digest_by_verify_and_open() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    // The tar headers, the manifest, file data and the end blocks: all in the clear, all under
    // the signed BLAKE3 digest. Every 97th byte and the first and last.
    let mut positions: Vec<usize> = l.payload.clone().step_by(97).collect();
    positions.extend([l.payload.start, l.payload.end - 1]);
    for i in positions {
        let flipped = flip(a.clone(), i);
        assert_refused!(
            w.verify_bytes(&flipped).unwrap_err(),
            Error::Verify(VerifyError::PayloadDigestMismatch { .. })
        );
        if i % 7 == 0 || i == l.payload.start || i == l.payload.end - 1 {
            assert_refused!(
                w.open_bytes_to_dir_err_as(&flipped, None, Decryption::None),
                Error::Verify(VerifyError::PayloadDigestMismatch { .. })
            );
        }
    }
}

#[test]
fn truncated_or_extended_public_archives_are_refused() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    let p = l.payload.start;
    for cut in [0, 13, l.header.end, l.signatures.end - 1] {
        assert_refused!(
            w.open_bytes_to_dir_err_as(&a[..cut], None, Decryption::None),
            Error::Format(FormatError::Truncated { .. })
        );
    }
    for cut in [
        p,
        p + 1,
        p + 512,
        p + 16_384,
        l.payload.end - 1024,
        l.payload.end - 1,
    ] {
        assert_refused!(
            w.open_bytes_to_dir_err_as(&a[..cut], None, Decryption::None),
            Error::Verify(VerifyError::Truncated { .. })
        );
        assert_refused!(
            w.verify_bytes(&a[..cut]).unwrap_err(),
            Error::Verify(VerifyError::Truncated { .. })
        );
    }
    let mut longer = a.clone();
    longer.extend_from_slice(&[0; 1024]);
    assert_refused!(
        w.open_bytes_to_dir_err_as(&longer, None, Decryption::None),
        Error::Verify(VerifyError::TrailingData)
    );
    assert_refused!(
        w.verify_bytes(&longer).unwrap_err(),
        Error::Verify(VerifyError::TrailingData)
    );
}

#[test]
fn a_trusted_signer_who_lies_about_the_files_is_caught_by_the_manifest_hashes() {
    // The signer re-signs a payload whose file bytes differ from the manifest, with a matching
    // payload digest: the per-file SHA-256 refuses it (defence in depth past the signature).
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    let mut altered = a.clone();
    // A byte well inside weights.bin's data (after the manifest and config entries).
    let at = l.payload.end - 3000;
    altered[at] ^= 0x40;
    let resigned = craft::resign(&altered, &w.author, |h| {
        h.payload_digest = *blake3::hash(&altered[l.payload.clone()]).as_bytes();
    });
    assert_refused!(
        w.open_bytes_to_dir_err_as(&resigned, None, Decryption::None),
        Error::Content(ContentError::HashMismatch { .. })
    );
    assert_refused!(
        w.verify_bytes(&resigned).unwrap_err(),
        Error::Content(ContentError::HashMismatch { .. })
    );
    // The manifest entry altered: refused against the signed manifest_sha256 before decoding.
    let mut altered = a.clone();
    altered[l.payload.start + 512 + 20] ^= 0x01;
    let resigned = craft::resign(&altered, &w.author, |h| {
        h.payload_digest = *blake3::hash(&altered[l.payload.clone()]).as_bytes();
    });
    assert_refused!(
        w.open_bytes_to_dir_err_as(&resigned, None, Decryption::None),
        Error::Content(ContentError::ManifestMismatch { .. })
    );
}

#[test]
fn suite_confusion_is_refused_both_ways() {
    let w = World::new();
    let public = sample(&w);
    let input = w.write("e.bin", &bytes(70_000, 3));
    let encrypted = std::fs::read(w.seal_for_reader(&[input], "e.mseal")).unwrap();

    // An encrypted archive re-encoded into a well-formed public header (recipients dropped,
    // salt and commitment zeroed, sizes of the clear suite), its signature kept: the signature
    // covers the suite, so it fails.
    let l = layout(&encrypted);
    let mut h = l.parsed.clone();
    h.suite = Suite::Mseal1Ed25519PublicBlake3;
    h.recipients.clear();
    h.salt = [0; 24];
    h.commitment = [0; 32];
    h.chunk_count = 0;
    h.ciphertext_size = h.plaintext_size;
    h.check(&Default::default())
        .expect("a well-formed public header");
    let payload = &encrypted[l.payload.start..l.payload.start + h.plaintext_size as usize];
    let forged = with_header_unsigned(&encrypted, &h, payload);
    assert_refused!(
        w.open_bytes_to_dir_err_as(&forged, None, Decryption::None),
        Error::Verify(VerifyError::BadSignature { .. })
    );

    // A public archive re-encoded into a well-formed encrypted header with a stanza for the
    // reader, its signature kept: refused by the signature as well.
    let l = layout(&public);
    let mut h = l.parsed.clone();
    let donor = layout(&encrypted).parsed;
    h.suite = Suite::Mseal1Ed25519X25519Cobblestone256Blake3;
    h.recipients = donor.recipients.clone();
    h.salt = donor.salt;
    h.commitment = donor.commitment;
    h.chunk_count = modelseal::crypto::chunked::chunk_count(h.plaintext_size);
    h.ciphertext_size = modelseal::crypto::chunked::ciphertext_len(h.plaintext_size).unwrap();
    h.check(&Default::default())
        .expect("a well-formed encrypted header");
    let forged = with_header_unsigned(&public, &h, &public[l.payload.clone()]);
    assert_refused!(
        w.open_bytes_to_dir_err(&forged),
        Error::Verify(VerifyError::BadSignature { .. })
    );

    // Re-signed by anyone outside the trust store: untrusted.
    let mut h = layout(&encrypted).parsed;
    h.suite = Suite::Mseal1Ed25519PublicBlake3;
    h.recipients.clear();
    h.salt = [0; 24];
    h.commitment = [0; 32];
    h.chunk_count = 0;
    h.ciphertext_size = h.plaintext_size;
    h.signer = w.stranger.public().key_id().0;
    let resigned = craft::assemble(&craft::encode_header(&h), &w.stranger, payload);
    assert_refused!(
        w.open_bytes_to_dir_err_as(&resigned, None, Decryption::None),
        Error::Verify(VerifyError::UntrustedSigner { .. })
    );
    // A public archive whose header still carries a stanza, signed by the trusted author: §3.
    let resigned = craft::resign(&public, &w.author, |h| {
        h.recipients = vec![Stanza::SharedKey {
            salt: [1; 32],
            wrapped_key: [2; 48],
        }];
    });
    assert_refused!(
        w.open_bytes_to_dir_err_as(&resigned, None, Decryption::None),
        Error::Format(FormatError::SuiteFields {
            field: "no recipients",
            ..
        })
    );
}

#[test]
fn expiry_rollback_and_k_of_n_hold_for_public_archives() {
    let w = World::new();
    let seal = |version: &str, expires: Option<u64>, file: &str| {
        let input = w.write(file, version.as_bytes());
        let mut opts = SealOptions {
            public: true,
            ..w.options(Vec::new(), CompressionChoice::Auto)
        };
        opts.version = semver::Version::parse(version).unwrap();
        opts.expires = expires;
        let inputs = seal::collect_inputs(&[input], &Default::default()).unwrap();
        let mut out = std::io::Cursor::new(Vec::new());
        seal::seal_to_writer(&inputs, &opts, &mut out).unwrap();
        out.into_inner()
    };
    let expiring = seal("1.0.0", Some(CREATED + 5), "a.bin");
    assert_refused!(
        w.open_bytes_to_dir_err_as(&expiring, None, Decryption::None),
        Error::Verify(VerifyError::Expired { .. })
    );

    let state = RollbackState::at(w.path("state.json"));
    let v2 = seal("2.0.0", None, "b.bin");
    let v1 = seal("1.5.0", None, "c.bin");
    let trust = w.trust();
    let o = ReadOptions {
        state: Some(&state),
        ..opts(&trust)
    };
    open::verify_reader(&v2[..], &o).unwrap();
    assert_refused!(
        w.open_bytes_to_dir_err_as(&v1, Some(&state), Decryption::None),
        Error::Trust(TrustError::Rollback { .. })
    );

    // 2-of-2: the author's signature alone is too few; `sign --add` by a second trusted key
    // makes it enough, and the payload is untouched.
    let mut trust = w.trust();
    trust.add(w.stranger.public());
    trust.require_signers(vec!["*".into()], 2);
    let file = w.path("k.mseal");
    std::fs::write(&file, &v2).unwrap();
    assert_refused!(
        open::verify_file(&file, &opts(&trust)).unwrap_err(),
        Error::Trust(TrustError::TooFewSignatures { .. })
    );
    modelseal::countersign::add_signature(&file, &w.stranger, &Default::default()).unwrap();
    let cosigned = std::fs::read(&file).unwrap();
    assert_eq!(
        cosigned[layout(&cosigned).payload.clone()],
        v2[layout(&v2).payload.clone()]
    );
    let report = open::verify_file(&file, &opts(&trust)).unwrap();
    assert!(report.manifest.is_some());
}

#[test]
fn the_ci_gate_checks_a_public_models_pickles_with_no_key() {
    let w = World::new();
    let trust = w.trust();
    let tmp = std::env::temp_dir();
    let leftovers = || -> Vec<String> {
        std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".modelseal-verify-"))
            .collect()
    };
    let before = leftovers();
    let allow = ModelChecks {
        allow_globals: Some(vec!["@sklearn".into()]),
        expect: Vec::new(),
    };

    // A real scikit-learn model: passes, with its manifest.
    let good = w.seal_public(
        &[fixture("iris_tree_p5.pkl")],
        "good.mseal",
        CompressionChoice::Auto,
    );
    let opened = open::verify_checked(
        std::fs::File::open(&good).unwrap(),
        Decryption::None,
        &opts(&trust),
        &allow,
    )
    .unwrap();
    assert_eq!(opened.manifest.files.len(), 1);

    // A pickle that runs a command on load: refused, naming the global.
    let evil = w.seal_public(
        &[fixture("evil_reduce.pkl")],
        "evil.mseal",
        CompressionChoice::Auto,
    );
    let e = open::verify_checked(
        std::fs::File::open(&evil).unwrap(),
        Decryption::None,
        &opts(&trust),
        &allow,
    )
    .unwrap_err();
    assert_refused!(e, Error::Model(ModelError::DisallowedGlobal { .. }));

    // An encrypted archive cannot be checked without its key.
    let enc = w.seal_for_reader(&[fixture("iris_tree_p5.pkl")], "enc.mseal");
    let e = open::verify_checked(
        std::fs::File::open(&enc).unwrap(),
        Decryption::None,
        &opts(&trust),
        &allow,
    )
    .unwrap_err();
    assert_refused!(e, Error::Usage(UsageError::NoOpeningKey));
    open::verify_checked(
        std::fs::File::open(&enc).unwrap(),
        Decryption::Identity(&w.reader),
        &opts(&trust),
        &allow,
    )
    .unwrap();
    assert_eq!(leftovers(), before, "the gate's temporary files were left");
}
