//! Writes the committed seed corpora, fuzz/corpus/<target>/, from real archives, real keys, the
//! real scikit-learn fixtures and the adversarial files of the test suite. Run from fuzz/seedgen:
//! `RUSTFLAGS="--cfg fuzzing" cargo run --release`.

use std::path::{Path, PathBuf};

use modelseal::craft;
use modelseal::format::manifest::{FileEntry, Manifest, ModelName, SafeRelPath};
use modelseal::format::Compression;
use modelseal::models::{self, tree};
use modelseal::seal::{self, CompressionChoice, Details, Input, Recipient, SealOptions, Source};
use modelseal::Limits;

const CREATED: u64 = 1_780_000_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn put(target: &str, name: &str, data: &[u8]) {
    let dir = root().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

fn seal(
    inputs: Vec<(&str, Vec<u8>)>,
    compression: CompressionChoice,
    details: Details,
    shared: bool,
    expires: Option<u64>,
) -> Vec<u8> {
    seal_as(inputs, compression, details, shared, expires, false, false)
}

/// [`seal`], or a public archive (suite 1, no recipients) when `public`, carrying an OMS bundle
/// when `oms`.
fn seal_as(
    inputs: Vec<(&str, Vec<u8>)>,
    compression: CompressionChoice,
    details: Details,
    shared: bool,
    expires: Option<u64>,
    public: bool,
    oms: bool,
) -> Vec<u8> {
    let oms_key = modelseal::oms::EcSigningKey::from_bytes(&[42; 32]).unwrap();
    let (author, reader) = modelseal::fuzzing::keys();
    let rp = reader.public();
    let ci = modelseal::keys::SharedKey::generate();
    let mut recipients = vec![Recipient::PublicKey(&rp)];
    if shared {
        recipients.push(Recipient::SharedKey(&ci));
    }
    if public {
        recipients.clear();
    }
    let opts = SealOptions {
        signer: &author,
        recipients,
        name: ModelName::parse("iris-tree").unwrap(),
        version: semver::Version::new(1, 0, 0),
        description: "seed".into(),
        metadata: [("k".to_string(), "v".to_string())].into(),
        created: CREATED,
        expires,
        compression,
        details,
        limits: Limits::default(),
        public,
        oms_key: oms.then_some(&oms_key),
        also_reads: Vec::new(),
    };
    let inputs: Vec<Input> = inputs
        .into_iter()
        .map(|(p, b)| Input {
            archive_path: SafeRelPath::parse(p, 1024).unwrap(),
            source: Source::Bytes(b),
        })
        .collect();
    let mut out = std::io::Cursor::new(Vec::new());
    seal::seal_to_writer(&inputs, &opts, &mut out).unwrap();
    out.into_inner()
}

fn manifest(files: &[(&str, &[u8])]) -> Manifest {
    let mut m = Manifest::new(
        ModelName::parse("iris-tree").unwrap(),
        semver::Version::new(1, 0, 0),
        CREATED,
    );
    m.files = files
        .iter()
        .map(|(p, d)| FileEntry {
            path: SafeRelPath::parse(p, 1024).unwrap(),
            size: d.len() as u64,
            sha256: modelseal::crypto::sha256(d),
            kind: Default::default(),
        })
        .collect();
    m
}

fn hostile(m: &Manifest, body: Vec<u8>, compression: Compression) -> (Vec<u8>, Vec<u8>) {
    let (author, reader) = modelseal::fuzzing::keys();
    let mb = craft::manifest_bytes(m);
    let mut tar = craft::tar_entry(b"manifest", b'0', &mb, None);
    tar.extend(body);
    let message = if compression == Compression::Zstd {
        craft::zstd(&tar)
    } else {
        tar.clone()
    };
    let archive = craft::archive_from_message(
        &message,
        tar.len() as u64,
        compression,
        &mb,
        "iris-tree",
        "1.0.0",
        CREATED,
        &author,
        &reader.public(),
    );
    (archive, tar)
}

fn main() {
    let fixtures = root().join("../tests/fixtures/sklearn");
    let mut pickles = Vec::new();
    for e in std::fs::read_dir(&fixtures).unwrap() {
        let p = e.unwrap().path();
        if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("pkl" | "joblib")
        ) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&p).unwrap();
            put("pickle", &name, &data);
            pickles.push((name, data));
        }
    }
    let trained = tree::train_iris(Default::default()).unwrap();
    let (tree_bytes, typed) = models::encode_model(
        &trained.model,
        "model/tree.bincode",
        &[(models::LINFA_TREES, models::LINFA_TREES_VERSION)],
    )
    .unwrap();
    put("model_decode", "iris_tree.bincode", &tree_bytes);
    put(
        "model_decode",
        "vec.bincode",
        &models::encode_model(&vec![("w".to_string(), 0.5f64)], "m", &[])
            .unwrap()
            .0,
    );

    // Real archives (null AEAD under cfg(fuzzing)).
    let mut archives: Vec<(String, Vec<u8>)> = Vec::new();
    let big: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    archives.push((
        "small_zstd".into(),
        seal(
            vec![("weights.bin", b"tiny model".to_vec())],
            CompressionChoice::Zstd,
            Details::default(),
            false,
            None,
        ),
    ));
    archives.push((
        "multichunk_stored".into(),
        seal(
            vec![("weights.bin", big.clone())],
            CompressionChoice::None,
            Details::default(),
            true,
            Some(CREATED + 1000),
        ),
    ));
    let long = format!("dir/{}/w.bin", "d".repeat(120));
    archives.push((
        "long_path".into(),
        seal(
            vec![("a/b.json", b"{}".to_vec()), (long.as_str(), b"x".to_vec())],
            CompressionChoice::Zstd,
            Details::default(),
            false,
            None,
        ),
    ));
    let details = Details {
        typed_model: Some(typed),
        class_names: trained.class_names.clone(),
        feature_names: trained.feature_names.clone(),
        requires: [("linfa-trees".to_string(), "0.8.1".to_string())].into(),
        ..Default::default()
    };
    archives.push((
        "typed_tree".into(),
        seal(
            vec![("model/tree.bincode", tree_bytes.clone())],
            CompressionChoice::Auto,
            details,
            false,
            None,
        ),
    ));
    // Public archives (suite 1): the payload in the clear.
    for (name, compression) in [
        ("public_stored", CompressionChoice::None),
        ("public_zstd", CompressionChoice::Zstd),
    ] {
        archives.push((
            name.into(),
            seal_as(
                vec![
                    ("cfg/config.json", b"{}".to_vec()),
                    ("weights.bin", big.clone()),
                ],
                compression,
                Details::default(),
                false,
                Some(CREATED + 1000),
                true,
                false,
            ),
        ));
    }
    if let Some((name, data)) = pickles.first() {
        archives.push((
            format!("public_sklearn_{name}"),
            seal_as(
                vec![(name.as_str(), data.clone())],
                CompressionChoice::Auto,
                Details::default(),
                false,
                None,
                true,
                false,
            ),
        ));
    }
    // Archives carrying an OMS bundle (.modelseal/oms.sig), encrypted and public.
    for (name, public) in [("oms_encrypted", false), ("oms_public", true)] {
        archives.push((
            name.into(),
            seal_as(
                vec![
                    ("model/config.json", b"{}".to_vec()),
                    ("model/weights.bin", big.clone()),
                ],
                CompressionChoice::Auto,
                Details::default(),
                false,
                None,
                public,
                true,
            ),
        ));
    }
    for (name, data) in &pickles {
        archives.push((
            format!("sklearn_{name}"),
            seal(
                vec![(name.as_str(), data.clone())],
                CompressionChoice::Auto,
                Details::default(),
                false,
                None,
            ),
        ));
    }
    // The adversarial contents of tests/hostile_content.rs, validly signed and encrypted.
    let m = manifest(&[("x", b"x")]);
    let end = craft::tar_end();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            [craft::tar_entry(b"../x", b'0', b"x", None), end.clone()].concat(),
        ),
        (
            "absolute",
            [craft::tar_entry(b"/abs", b'0', b"x", None), end.clone()].concat(),
        ),
        (
            "symlink",
            [craft::tar_entry(b"x", b'2', b"", None), end.clone()].concat(),
        ),
        (
            "hardlink",
            [craft::tar_entry(b"x", b'1', b"", None), end.clone()].concat(),
        ),
        (
            "gnu_longname_1g",
            craft::tar_entry(b"././@LongLink", b'L', b"", Some(1 << 30)),
        ),
        (
            "pax_huge",
            craft::tar_entry(b"PaxHeader", b'x', b"", Some(1 << 30)),
        ),
        (
            "pax_size_mismatch",
            [
                craft::tar_entry(b"PaxHeader", b'x', b"11 size=9\n", None),
                craft::tar_entry(b"x", b'0', b"x", None),
                end.clone(),
            ]
            .concat(),
        ),
        (
            "duplicate",
            [
                craft::tar_entry(b"x", b'0', b"x", None),
                craft::tar_entry(b"x", b'0', b"x", None),
                end.clone(),
            ]
            .concat(),
        ),
        (
            "not_in_manifest",
            [
                craft::tar_entry(b"x", b'0', b"x", None),
                craft::tar_entry(b"y", b'0', b"y", None),
                end.clone(),
            ]
            .concat(),
        ),
        ("missing_end", craft::tar_entry(b"x", b'0', b"x", None)),
        (
            "valid",
            [craft::tar_entry(b"x", b'0', b"x", None), end.clone()].concat(),
        ),
    ];
    for (name, body) in cases {
        for c in [Compression::None, Compression::Zstd] {
            let (archive, tar) = hostile(&m, body.clone(), c);
            archives.push((format!("hostile_{name}_{c:?}"), archive));
            put("tar_walk", &format!("{name}.tar"), &tar);
        }
    }
    for (name, a) in &archives {
        put("open", &format!("{name}.mseal"), a);
        let l = craft::layout(a);
        put("header", &format!("{name}.header"), &a[l.header.clone()]);
        for (i, s) in l.parsed.recipients.iter().enumerate() {
            put(
                "stanza",
                &format!("{name}_{i}.stanza"),
                &craft::encode_header_part(s),
            );
        }
    }
    // Manifests of each schema.
    let mut full = manifest(&[("a.bin", b"alpha"), ("b/c.pkl", b"gamma")]);
    full.metrics.insert("acc".into(), 0.97);
    full.requires.insert("scikit-learn".into(), "1.9.1".into());
    full.class_names = vec!["setosa".into(), "versicolor".into()];
    full.files[1].kind = modelseal::format::manifest::FileKind {
        format: "pickle".into(),
        pickle_protocol: Some(5),
        pickle_globals: vec!["sklearn.tree._classes.DecisionTreeClassifier".into()],
        sklearn_version: Some("1.9.1".into()),
    };
    put("manifest", "schema2_full", &craft::manifest_bytes(&full));
    put(
        "manifest",
        "schema2_minimal",
        &craft::manifest_bytes(&manifest(&[])),
    );
    put("manifest", "schema1", &full.to_bytes_schema1());
    // Chunked ciphertexts at the chunk edges.
    for len in [0usize, 1, 16383, 16384, 16385, 40000] {
        let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
        put(
            "chunked",
            &format!("len_{len}"),
            &modelseal::crypto::chunked::encrypt_to_vec(&msg, &[7; 32], &[9; 24], b"fuzz"),
        );
    }
    // Key lines: the test-only keys of keys/, and fresh ones.
    for f in [
        "test-only-author.pub",
        "test-only-author.key",
        "test-only-reader.pub",
    ] {
        let text = std::fs::read_to_string(root().join("../keys").join(f)).unwrap();
        let line = text.lines().find(|l| !l.starts_with('#')).unwrap();
        put("key_files", f, line.as_bytes());
    }
    println!(
        "wrote {} archives and the other seeds under {}",
        archives.len(),
        root().join("corpus").display()
    );
}
