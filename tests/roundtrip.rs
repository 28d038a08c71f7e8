//! Round trips: what goes in comes out, for every shape of input and every kind of recipient.

mod common;

use common::*;
use modelseal::open::{self, Decryption, ReadOptions};
use modelseal::seal::{CompressionChoice, Recipient};

#[test]
fn one_file_round_trips() {
    let w = World::new();
    let data = bytes(100_000, 1);
    let input = w.write("in/model.bin", &data);
    let archive = w.seal_for_reader(&[input], "m.mseal");
    let report = w.open_as_reader(&archive, "out").unwrap();
    assert_eq!(std::fs::read(w.path("out/model.bin")).unwrap(), data);
    let m = report.manifest;
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.metadata["cv_accuracy"], "0.95");
    assert_eq!(report.header.signer(), w.author.public().key_id());
}

#[test]
fn many_files_and_a_directory_round_trip() {
    let w = World::new();
    let a = w.write("model/weights.bin", &bytes(40_000, 2));
    w.write("model/config/params.json", b"{\"depth\": 3}");
    w.write("model/empty.txt", b"");
    let long = format!("model/{}/deep.bin", "d".repeat(120));
    w.write(&long, b"long path");
    let extra = w.write("README.txt", b"readme");
    let archive = w.seal_for_reader(&[w.path("model"), extra], "m.mseal");
    w.open_as_reader(&archive, "out").unwrap();
    assert_eq!(
        std::fs::read(w.path("out/model/weights.bin")).unwrap(),
        std::fs::read(a).unwrap()
    );
    assert_eq!(
        std::fs::read(w.path("out/model/config/params.json")).unwrap(),
        b"{\"depth\": 3}"
    );
    assert_eq!(std::fs::read(w.path("out/model/empty.txt")).unwrap(), b"");
    assert_eq!(
        std::fs::read(w.path(&format!("out/{long}"))).unwrap(),
        b"long path"
    );
    assert_eq!(std::fs::read(w.path("out/README.txt")).unwrap(), b"readme");
}

#[test]
fn chunk_size_edges_round_trip_with_and_without_compression() {
    // Message lengths land on 0 bytes (impossible: a tar is at least 1 KiB), one chunk, and exactly
    // 16 KiB multiples; uncompressed, the message is the tar itself, whose size is a multiple of 512,
    // so 16 KiB-exact payloads occur: tar = 3 headers + manifest block + data + 2 end blocks = len + 2560.
    for (len, c) in [
        (0usize, CompressionChoice::None),
        (0, CompressionChoice::Zstd),
        (16384 - 2560, CompressionChoice::None),
        (16384 * 3 - 2560, CompressionChoice::None),
        (70_000, CompressionChoice::Zstd),
    ] {
        let w = World::new();
        let data = bytes(len, 3);
        let input = w.write("m.bin", &data);
        let rp = w.reader.public();
        let archive = w.seal_with(
            &[input],
            "m.mseal",
            w.options(vec![Recipient::PublicKey(&rp)], c),
        );
        let report = w.open_as_reader(&archive, "out").unwrap();
        let h = report.header.get();
        if c == CompressionChoice::None && (len + 2560) % 16384 == 0 {
            assert_eq!(
                h.plaintext_size % 16384,
                0,
                "expected a 16 KiB-exact payload"
            );
        }
        assert_eq!(
            std::fs::read(w.path("out/m.bin")).unwrap(),
            data,
            "len {len} {c:?}"
        );
    }
}

#[test]
fn several_recipients_each_open_and_others_cannot() {
    let w = World::new();
    let input = w.write("m.bin", b"shared model");
    let second = modelseal::keys::SecretKey::generate();
    let (p1, p2) = (w.reader.public(), second.public());
    let ci = shared_key();
    let archive = w.seal_with(
        &[input],
        "m.mseal",
        w.options(
            vec![
                Recipient::PublicKey(&p1),
                Recipient::PublicKey(&p2),
                Recipient::SharedKey(&ci),
            ],
            CompressionChoice::Auto,
        ),
    );
    let trust = w.trust();
    let mut opts = ReadOptions::new(&trust);
    opts.now = Some(CREATED + 1);
    for (i, key) in [
        Decryption::Identity(&w.reader),
        Decryption::Identity(&second),
        Decryption::Shared(&ci),
    ]
    .into_iter()
    .enumerate()
    {
        let out = w.path(&format!("out{i}"));
        open::open_file(&archive, key, &out, &opts, Default::default()).unwrap();
        assert_eq!(std::fs::read(out.join("m.bin")).unwrap(), b"shared model");
    }
    let err = open::open_file(
        &archive,
        Decryption::Identity(&w.stranger),
        &w.path("out-x"),
        &opts,
        Default::default(),
    )
    .unwrap_err();
    assert_refused!(
        err,
        modelseal::Error::Decrypt(modelseal::error::DecryptError::NoMatchingRecipient {
            stanzas: 2,
            ..
        })
    );
    let other_ci = shared_key();
    let err = open::open_file(
        &archive,
        Decryption::Shared(&other_ci),
        &w.path("out-y"),
        &opts,
        Default::default(),
    )
    .unwrap_err();
    assert_refused!(
        err,
        modelseal::Error::Decrypt(modelseal::error::DecryptError::NoMatchingRecipient {
            stanzas: 1,
            ..
        })
    );
    assert!(!w.path("out-x").exists() && !w.path("out-y").exists());
}

#[test]
fn verify_needs_no_key_and_checks_the_whole_payload() {
    let w = World::new();
    let input = w.write("m.bin", &bytes(50_000, 4));
    let archive = w.seal_for_reader(&[input], "m.mseal");
    let report = w.verify_bytes(&std::fs::read(&archive).unwrap()).unwrap();
    assert_eq!(report.header.get().model_name, "iris-tree");
    assert!(report.manifest.is_none());
}

#[test]
fn same_inputs_and_time_give_the_same_plaintext() {
    // Determinism of the tar stream: the manifest and every header are fixed by the inputs.
    let w = World::new();
    let input = w.write("m.bin", &bytes(30_000, 5));
    let a = w.seal_for_reader(std::slice::from_ref(&input), "a.mseal");
    let b = w.seal_for_reader(&[input], "b.mseal");
    let (ha, hb) = (
        modelseal::craft::layout(&std::fs::read(&a).unwrap()).parsed,
        modelseal::craft::layout(&std::fs::read(&b).unwrap()).parsed,
    );
    assert_eq!(ha.manifest_sha256, hb.manifest_sha256);
    assert_eq!(ha.tar_size, hb.tar_size);
    assert_eq!(ha.plaintext_size, hb.plaintext_size);
    // ... and fresh randomness in everything secret.
    assert_ne!(ha.salt, hb.salt);
    assert_ne!(ha.payload_digest, hb.payload_digest);
}

#[test]
fn incompressible_data_is_stored_and_compressible_data_compressed() {
    let w = World::new();
    let noise = w.write("noise.bin", &bytes(200_000, 6));
    let text = w.write(
        "text.txt",
        &b"the same line again and again\n".repeat(10_000),
    );
    let a = w.seal_for_reader(&[noise], "a.mseal");
    let b = w.seal_for_reader(&[text], "b.mseal");
    let la = modelseal::craft::layout(&std::fs::read(&a).unwrap()).parsed;
    let lb = modelseal::craft::layout(&std::fs::read(&b).unwrap()).parsed;
    assert_eq!(la.compression, modelseal::format::Compression::None);
    assert_eq!(lb.compression, modelseal::format::Compression::Zstd);
    assert!(lb.plaintext_size * 10 < lb.tar_size);
    w.open_as_reader(&b, "out").unwrap();
}

#[test]
fn sealing_is_bounded_in_recipients_and_refuses_bad_outputs() {
    let w = World::new();
    let input = w.write("m.bin", b"x");
    let inputs = modelseal::seal::collect_inputs(
        std::slice::from_ref(&input),
        &modelseal::Limits::default(),
    )
    .unwrap();
    let opts = w.options(vec![], CompressionChoice::Auto);
    let err = modelseal::seal::seal_file(&inputs, &opts, &w.path("o.mseal"), Default::default())
        .unwrap_err();
    assert_refused!(
        err,
        modelseal::Error::Usage(modelseal::error::UsageError::NoRecipients)
    );
    let rp = w.reader.public();
    let opts = w.options(vec![Recipient::PublicKey(&rp)], CompressionChoice::Auto);
    // An output that is one of the inputs, even with --force.
    let err = modelseal::seal::seal_file(
        &inputs,
        &opts,
        &input,
        modelseal::seal::OutputOptions {
            force: true,
            fsync: false,
        },
    )
    .unwrap_err();
    assert_refused!(
        err,
        modelseal::Error::Usage(modelseal::error::UsageError::OutputIsInput { .. })
    );
    assert_eq!(std::fs::read(&input).unwrap(), b"x");

    // Nor any other file the seal reads: its key files, the training data and code it records.
    let key = w.path("author.key");
    w.author.write_pair(&w.path("author")).unwrap();
    let data = w.write("train.csv", b"a,b\n1,2\n");
    let keys = modelseal::seal::SealKeys::read(&key, &[], None).unwrap();
    for read in [&key, &data] {
        let before = std::fs::read(read).unwrap();
        let to = vec![Recipient::PublicKey(&rp)];
        let opts = modelseal::seal::SealOptions::new(&*keys.signer, to, "m", "1.0.0")
            .unwrap()
            .with_also_reads(keys.paths.iter().cloned())
            .with_also_reads([data.clone()]);
        let err = modelseal::seal::seal_file(
            &inputs,
            &opts,
            read,
            modelseal::seal::OutputOptions {
                force: true,
                fsync: false,
            },
        )
        .unwrap_err();
        assert_refused!(
            err,
            modelseal::Error::Usage(modelseal::error::UsageError::OutputIsInput { .. })
        );
        assert_eq!(std::fs::read(read).unwrap(), before, "{}", read.display());
    }
}

mod stored_single_pass {
    use super::common::*;
    use modelseal::seal::{CompressionChoice, Recipient};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The single-pass stored writer (manifest chunks deferred, the rest streamed) round-trips
        /// any set of file sizes, long names included, across every chunk boundary.
        #[test]
        fn stored_payloads_round_trip(sizes in proptest::collection::vec(0usize..40_000, 1..5), long in any::<bool>(), manifest_pad in 0usize..20_000) {
            let w = World::new();
            let mut inputs = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                let name = if long && i == 0 { format!("d/{}/f{i}.bin", "n".repeat(150)) } else { format!("d/f{i}.bin") };
                w.write(&name, &bytes(*size, i as u8));
                inputs.push(name);
            }
            let rp = w.reader.public();
            let mut opts = w.options(vec![Recipient::PublicKey(&rp)], CompressionChoice::None);
            // A large description moves the end of the manifest across chunk boundaries.
            opts.description = "x".repeat(manifest_pad.min(4096));
            opts.metadata.insert("pad".into(), "y".repeat(manifest_pad.saturating_sub(4096).min(4096)));
            let archive = w.seal_with(&[w.path("d")], "m.mseal", opts);
            let (report, files) = w.open_bytes(&std::fs::read(&archive).unwrap()).unwrap();
            prop_assert_eq!(report.header.get().compression, modelseal::format::Compression::None);
            prop_assert_eq!(files.len(), sizes.len());
            for (path, data) in files {
                prop_assert_eq!(std::fs::read(w.path(path.as_str())).unwrap(), data.to_vec());
            }
        }
    }
}

#[test]
fn an_empty_directory_is_refused_not_sealed_as_an_empty_archive() {
    let w = World::new();
    std::fs::create_dir(w.path("empty")).unwrap();
    let e = modelseal::seal::collect_inputs(&[w.path("empty")], &Default::default()).unwrap_err();
    assert_refused!(
        e,
        modelseal::Error::Usage(modelseal::error::UsageError::NoInputs)
    );
}
