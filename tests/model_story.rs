//! The model story (issue "model story"): train → seal → verify → open → predict, typed loads and
//! their version gate, requirements, manifest metadata, and THREATS.md checklist 19.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::*;
use modelseal::error::ModelError;
use modelseal::models::{self, tree, VersionPolicy};
use modelseal::open::{Decryption, ReadOptions};
use modelseal::seal::{self, Details, Recipient, Source};
use modelseal::Error;

fn ms(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("modelseal").unwrap();
    c.current_dir(dir)
        .env_remove("MODELSEAL_TRUST")
        .env_remove("SOURCE_DATE_EPOCH")
        .env("XDG_STATE_HOME", dir.join(".state"))
        .env("XDG_CONFIG_HOME", dir.join(".config"));
    c
}

fn keys(dir: &Path) {
    for k in ["alice", "bob"] {
        ms(dir).args(["keygen", "-o", k]).assert().success();
    }
}

fn iris_csv(dir: &Path) -> std::path::PathBuf {
    let ds = linfa_datasets::iris();
    let mut s = String::from("sepal_length,sepal_width,petal_length,petal_width,species\n");
    for (row, t) in ds.records().outer_iter().zip(ds.targets().iter()) {
        let v: Vec<String> = row.iter().map(|x| x.to_string()).collect();
        s.push_str(&format!("{},{}\n", v.join(","), tree::IRIS_CLASSES[*t]));
    }
    let p = dir.join("iris.csv");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn the_demo_prints_setosa_and_three_refusals() {
    let d = tempfile::tempdir().unwrap();
    let out = ms(d.path()).arg("demo").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("-> class 0 (setosa)"), "{text}");
    assert_eq!(text.matches("error: ").count(), 3, "{text}");
    assert!(text.contains("payload digest mismatch"), "{text}");
    assert!(text.contains("is not in the trust store"), "{text}");
    assert!(
        text.contains("model built with linfa-trees 0.7.0, this build has linfa-trees 0.8.1"),
        "{text}"
    );
}

#[test]
fn train_and_predict_from_the_cli_on_iris_and_on_csv() {
    let d = tempfile::tempdir().unwrap();
    keys(d.path());
    let csv = iris_csv(d.path());
    std::fs::write(
        d.path().join("metrics.json"),
        r#"{"cv_accuracy": 0.95, "f1": 0.94}"#,
    )
    .unwrap();
    std::fs::write(d.path().join("train.py"), "print('training code')\n").unwrap();
    ms(d.path())
        .args([
            "train",
            "--dataset",
            "iris",
            "-k",
            "alice.key",
            "-r",
            "bob.pub",
            "--name",
            "iris-tree",
            "--model-version",
            "1.0.0",
            "-o",
            "iris.mseal",
        ])
        .assert()
        .success();
    ms(d.path())
        .args([
            "train",
            "--csv",
            "iris.csv",
            "--target",
            "species",
            "--max-depth",
            "3",
            "-k",
            "alice.key",
            "-r",
            "bob.pub",
            "--name",
            "iris-csv",
        ])
        .args([
            "--model-version",
            "2.0.0",
            "--metrics",
            "metrics.json",
            "--source",
            "train.py",
            "--meta",
            "team=ml",
            "-o",
            "csv.mseal",
        ])
        .assert()
        .success();
    for archive in ["iris.mseal", "csv.mseal"] {
        let out = ms(d.path())
            .args([
                "predict",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                "--input",
                "5.1,3.5,1.4,0.2",
                "--input",
                "6.7,3.0,5.2,2.3",
                archive,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("[5.1, 3.5, 1.4, 0.2] -> setosa (class 0)"),
            "{text}"
        );
        assert!(text.contains("-> virginica (class 2)"), "{text}");
    }
    // JSON, and CSV input.
    std::fs::write(d.path().join("rows.csv"), "a,b,c,d\n5.1,3.5,1.4,0.2\n").unwrap();
    let out = ms(d.path())
        .args([
            "predict",
            "--json",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "--csv",
            "rows.csv",
            "csv.mseal",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["class"], 0);
    assert_eq!(v[0]["class_name"], "setosa");
    // The manifest records it all, signed: shown readably and as JSON.
    let out = ms(d.path())
        .args([
            "inspect",
            "--json",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "csv.mseal",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["manifest"];
    assert_eq!(m["metrics"]["cv_accuracy"], 0.95);
    assert_eq!(m["metadata"]["team"], "ml");
    assert_eq!(m["requires"]["linfa-trees"], models::LINFA_TREES_VERSION);
    assert_eq!(
        m["class_names"],
        serde_json::json!(["setosa", "versicolor", "virginica"])
    );
    assert_eq!(m["feature_names"][0], "sepal_length");
    assert_eq!(m["train_data"]["name"], "iris.csv");
    assert_eq!(
        m["train_data"]["sha256"],
        hex::encode(modelseal::crypto::sha256(&std::fs::read(&csv).unwrap()))
    );
    assert_eq!(m["source"]["name"], "train.py");
    assert_eq!(
        m["typed_model"]["type"],
        std::any::type_name::<tree::Tree>()
    );
    let out = ms(d.path())
        .args(["verify", "-t", "alice.pub", "-i", "bob.key", "csv.mseal"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("metric:      f1 = 0.94")
            && text.contains("classes:     setosa, versicolor, virginica"),
        "{text}"
    );
}

#[test]
fn bad_prediction_input_names_the_row() {
    let d = tempfile::tempdir().unwrap();
    keys(d.path());
    ms(d.path())
        .args([
            "train",
            "--dataset",
            "iris",
            "-k",
            "alice.key",
            "-r",
            "bob.pub",
            "--name",
            "iris-tree",
            "--model-version",
            "1.0.0",
            "-o",
            "iris.mseal",
        ])
        .assert()
        .success();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--input", "5.1,3.5,1.4,0.2", "--input", "1,2,3"],
            "input row 2: 3 values, the model takes 4",
        ),
        (
            &["--input", "5.1,abc,1.4,0.2"],
            "input row 1: \"abc\" is not a number",
        ),
        (
            &["--input", "5.1,NaN,1.4,0.2"],
            "input row 1: \"NaN\" is not a finite number",
        ),
        (&["--csv", "bad.csv"], "input row 2"),
    ];
    std::fs::write(d.path().join("bad.csv"), "a,b,c,d\n1,2,3,4\n1,2,3\n").unwrap();
    for (args, needle) in cases {
        let out = ms(d.path())
            .args(["predict", "-t", "alice.pub", "-i", "bob.key"])
            .args(args)
            .arg("iris.mseal")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
        assert!(err.contains("\nhint: "), "{err}");
    }
}

/// Seals a trained tree with the given recorded library version and type.
fn sealed_tree<M: serde::Serialize>(
    w: &World,
    model: &M,
    linfa: &str,
    encoding: Option<&str>,
) -> Vec<u8> {
    let (bytes, mut typed) =
        models::encode_model(model, "model/tree.bincode", &[(models::LINFA_TREES, linfa)]).unwrap();
    if let Some(e) = encoding {
        typed.encoding = e.into();
    }
    let rp = w.reader.public();
    let mut opts = w.options(vec![Recipient::PublicKey(&rp)], Default::default());
    opts.details = Details {
        typed_model: Some(typed),
        requires: [("scikit-learn".to_string(), "1.5.0".to_string())].into(),
        ..Default::default()
    };
    let inputs = vec![seal::Input {
        archive_path: modelseal::format::manifest::SafeRelPath::parse("model/tree.bincode", 1024)
            .unwrap(),
        source: Source::Bytes(bytes),
    }];
    let mut out = std::io::Cursor::new(Vec::new());
    seal::seal_to_writer(&inputs, &opts, &mut out).unwrap();
    out.into_inner()
}

fn load<M: serde::de::DeserializeOwned>(
    w: &World,
    archive: &[u8],
    policy: VersionPolicy,
) -> Result<(M, modelseal::format::manifest::Manifest), Error> {
    let trust = w.trust();
    let mut opts = ReadOptions::new(&trust);
    opts.now = Some(CREATED + 1);
    models::open_model::<M, _>(
        archive,
        Decryption::Identity(&w.reader),
        &opts,
        &[(models::LINFA_TREES, models::LINFA_TREES_VERSION)],
        policy,
        1 << 30,
    )
}

#[test]
fn typed_loads_return_the_model_only_through_the_version_gate() {
    let w = World::new();
    let trained = tree::train_iris(Default::default()).unwrap();
    let good = sealed_tree(&w, &trained.model, models::LINFA_TREES_VERSION, None);
    let (model, _) = load::<tree::Tree>(&w, &good, VersionPolicy::Strict).unwrap();
    assert_eq!(
        tree::predict(&model, &[vec![5.1, 3.5, 1.4, 0.2]]).unwrap(),
        vec![0]
    );
    // Another linfa-trees major.minor: refused, naming both versions, unless relaxed knowingly.
    let old = sealed_tree(&w, &trained.model, "0.7.2", None);
    let e = load::<tree::Tree>(&w, &old, VersionPolicy::Strict).unwrap_err();
    assert_refused!(e, Error::Model(ModelError::LibraryVersionMismatch { recorded, running, .. }) if recorded == "0.7.2" && running == models::LINFA_TREES_VERSION);
    assert!(load::<tree::Tree>(&w, &old, VersionPolicy::AllowLibraryMismatch).is_ok());
    // A patch release of the same minor is the same model format.
    let patch = sealed_tree(&w, &trained.model, "0.8.9", None);
    assert!(load::<tree::Tree>(&w, &patch, VersionPolicy::Strict).is_ok());
    // Another encoding.
    let enc = sealed_tree(
        &w,
        &trained.model,
        models::LINFA_TREES_VERSION,
        Some("bincode-1+serde"),
    );
    assert_refused!(
        load::<tree::Tree>(&w, &enc, VersionPolicy::AllowLibraryMismatch).unwrap_err(),
        Error::Model(ModelError::EncodingMismatch { .. })
    );
    // Another type.
    assert_refused!(
        load::<Vec<u8>>(&w, &good, VersionPolicy::Strict).unwrap_err(),
        Error::Model(ModelError::TypeMismatch { .. })
    );
    // An archive with no typed model.
    let input = w.write("m.pkl", b"opaque");
    let opaque = std::fs::read(w.seal_for_reader(&[input], "o.mseal")).unwrap();
    assert_refused!(
        load::<tree::Tree>(&w, &opaque, VersionPolicy::Strict).unwrap_err(),
        Error::Model(ModelError::NotTyped { .. })
    );
    // Any serde type can be sealed and loaded this way.
    let v: Vec<(String, f64)> = vec![("w".into(), 0.5)];
    let generic = sealed_tree(&w, &v, models::LINFA_TREES_VERSION, None);
    assert_eq!(
        load::<Vec<(String, f64)>>(&w, &generic, VersionPolicy::Strict)
            .unwrap()
            .0,
        v
    );
}

#[test]
fn open_expect_refuses_a_model_made_for_another_runtime() {
    let w = World::new();
    let trained = tree::train_iris(Default::default()).unwrap();
    let a = sealed_tree(&w, &trained.model, models::LINFA_TREES_VERSION, None);
    let file = w.path("m.mseal");
    std::fs::write(&file, &a).unwrap();
    let trust = w.trust();
    let mut opts = ReadOptions::new(&trust);
    opts.now = Some(CREATED + 1);
    let open = |expect: Vec<(String, String)>| {
        let checks = modelseal::open::ModelChecks {
            allow_globals: None,
            expect,
        };
        modelseal::open::open_file_checked(
            &file,
            Decryption::Identity(&w.reader),
            &w.path("out"),
            &opts,
            Default::default(),
            &checks,
        )
    };
    let before = listing(w.dir.path());
    let e = open(vec![("scikit-learn".into(), "1.9.1".into())]).unwrap_err();
    assert_refused!(e, Error::Model(ModelError::RequirementMismatch { required, expected, .. }) if required == "1.5.0" && expected == "1.9.1");
    let e = open(vec![("torch".into(), "2.0".into())]).unwrap_err();
    assert_refused!(e, Error::Model(ModelError::RequirementMissing { .. }));
    assert_eq!(listing(w.dir.path()), before);
    open(vec![("scikit-learn".into(), "1.5.0".into())]).unwrap();
}

#[test]
fn schema_1_manifests_from_older_archives_still_open() {
    use modelseal::craft;
    let w = World::new();
    let mut m = modelseal::format::manifest::Manifest::new(
        modelseal::format::manifest::ModelName::parse("old").unwrap(),
        semver::Version::new(0, 1, 0),
        CREATED,
    );
    m.files = vec![modelseal::format::manifest::FileEntry {
        path: modelseal::format::manifest::SafeRelPath::parse("w.bin", 64).unwrap(),
        size: 3,
        sha256: modelseal::crypto::sha256(b"abc"),
        kind: Default::default(),
    }];
    let mb = m.to_bytes_schema1();
    let mut tar = craft::tar_entry(b"manifest", b'0', &mb, None);
    tar.extend(craft::tar_entry(b"w.bin", b'0', b"abc", None));
    tar.extend(craft::tar_end());
    let a = craft::archive_from_message(
        &tar,
        tar.len() as u64,
        modelseal::format::Compression::None,
        &mb,
        "old",
        "0.1.0",
        CREATED,
        &w.author,
        &w.reader.public(),
    );
    let (report, files) = w.open_bytes(&a).unwrap();
    assert_eq!(files[0].1.to_vec(), b"abc");
    assert_eq!(report.manifest.files[0].kind.format, "unknown");
}
