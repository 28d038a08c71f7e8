//! Real scikit-learn pickle and joblib files (tests/fixtures/sklearn, made by scikit-learn 1.9.1):
//! sealed and opened byte-identical; the static walk records every imported global and the
//! scikit-learn version; `--allow-globals` refuses a pickle importing anything else, re-walking the
//! extracted bytes rather than trusting the manifest.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::*;
use modelseal::error::ModelError;
use modelseal::open::{Decryption, ModelChecks, ReadOptions};
use modelseal::Error;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sklearn")
}

fn expected() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("expected_globals.json")).unwrap(),
    )
    .unwrap()
}

fn ms(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("modelseal").unwrap();
    c.current_dir(dir)
        .env_remove("MODELSEAL_TRUST")
        .env("XDG_STATE_HOME", dir.join(".state"))
        .env("XDG_CONFIG_HOME", dir.join(".config"));
    c
}

#[test]
fn every_fixture_seals_opens_byte_identical_and_lists_its_globals() {
    let d = tempfile::tempdir().unwrap();
    for k in ["alice", "bob"] {
        ms(d.path()).args(["keygen", "-o", k]).assert().success();
    }
    let expected = expected();
    for (name, want) in expected.as_object().unwrap() {
        let src = fixtures().join(name);
        let archive = format!("{name}.mseal");
        ms(d.path())
            .args([
                "seal",
                "-k",
                "alice.key",
                "-r",
                "bob.pub",
                "--name",
                "iris-tree",
                "--model-version",
                "1.0.0",
                "--requires",
                "scikit-learn==1.9.1",
                "-o",
                &archive,
            ])
            .arg(&src)
            .assert()
            .success();
        let out = format!("out-{name}");
        ms(d.path())
            .args([
                "open",
                "--no-state",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                "-o",
                &out,
                &archive,
            ])
            .assert()
            .success();
        assert_eq!(
            std::fs::read(d.path().join(&out).join(name)).unwrap(),
            std::fs::read(&src).unwrap(),
            "{name}"
        );
        let o = ms(d.path())
            .args([
                "inspect",
                "--json",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                &archive,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let f = &v["manifest"]["files"][0];
        assert_eq!(f["pickle_globals"], want["globals"], "{name}");
        assert_eq!(f["sklearn_version"], want["sklearn_version"], "{name}");
        assert_eq!(f["pickle_protocol"], want["protocol"], "{name}");
        let format = f["format"].as_str().unwrap();
        let joblib = name.ends_with(".joblib");
        assert!(
            if joblib {
                format.starts_with("joblib")
            } else {
                format == "pickle"
            },
            "{name}: {format}"
        );
    }
    // The readable form names what the pickle imports.
    let o = ms(d.path())
        .args([
            "inspect",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "iris_tree.joblib.mseal",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("sklearn.tree._classes.DecisionTreeClassifier")
            && text.contains("scikit-learn version in the pickle: 1.9.1"),
        "{text}"
    );
}

const SKLEARN_ALLOW: &str = "@sklearn";

/// Opens, under `allow` and into a fresh directory, an archive holding one file `name`.
fn open_one_file(
    w: &World,
    opts: &ReadOptions<'_>,
    name: &str,
    data: &[u8],
    allow: Vec<String>,
) -> (Result<modelseal::open::Opened, Error>, std::path::PathBuf) {
    use modelseal::craft;
    use modelseal::format::manifest::{FileEntry, Manifest, ModelName, SafeRelPath};
    let mut m = Manifest::new(
        ModelName::parse("iris-tree").unwrap(),
        semver::Version::new(1, 0, 0),
        CREATED,
    );
    m.files = vec![FileEntry {
        path: SafeRelPath::parse(name, 64).unwrap(),
        size: data.len() as u64,
        sha256: modelseal::crypto::sha256(data),
        kind: Default::default(),
    }];
    let mb = craft::manifest_bytes(&m);
    let mut body = craft::tar_entry(name.as_bytes(), b'0', data, None);
    body.extend(craft::tar_end());
    let a = w.trusted_archive(&mb, &body, modelseal::format::Compression::None, None);
    let file = w.write(&format!("{name}.mseal"), &a);
    let checks = ModelChecks {
        allow_globals: Some(allow),
        expect: vec![],
    };
    let out = w.path(&format!("out-{name}"));
    let r = modelseal::open::open_file_checked(
        &file,
        Decryption::Identity(&w.reader),
        &out,
        opts,
        Default::default(),
        &checks,
    );
    (r, out)
}

#[test]
fn allow_globals_refuses_a_booby_trapped_pickle_and_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    for k in ["alice", "bob"] {
        ms(d.path()).args(["keygen", "-o", k]).assert().success();
    }
    for name in ["evil_reduce.pkl", "iris_tree.joblib"] {
        ms(d.path())
            .args([
                "seal",
                "-k",
                "alice.key",
                "-r",
                "bob.pub",
                "--name",
                "m",
                "--model-version",
                "1.0.0",
                "-o",
                &format!("{name}.mseal"),
            ])
            .arg(fixtures().join(name))
            .assert()
            .success();
    }
    ms(d.path())
        .args([
            "open",
            "--no-state",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "--allow-globals",
            SKLEARN_ALLOW,
            "-o",
            "ok",
            "iris_tree.joblib.mseal",
        ])
        .assert()
        .success();
    let o = ms(d.path())
        .args([
            "open",
            "--no-state",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "--allow-globals",
            SKLEARN_ALLOW,
            "-o",
            "evil",
            "evil_reduce.pkl.mseal",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("error: evil_reduce.pkl imports posix.system, outside the allowed globals"),
        "{err}"
    );
    assert!(!d.path().join("evil").exists());
    assert!(!Path::new("/tmp/modelseal-pwned").exists());
}

#[test]
fn a_manifest_that_lies_about_globals_is_caught_by_the_re_walk() {
    use modelseal::craft;
    use modelseal::format::manifest::{FileEntry, FileKind, Manifest, ModelName, SafeRelPath};
    let w = World::new();
    let evil = std::fs::read(fixtures().join("evil_reduce.pkl")).unwrap();
    // A signer's tool that recorded harmless globals for a pickle that calls posix.system.
    let mut m = Manifest::new(
        ModelName::parse("m").unwrap(),
        semver::Version::new(1, 0, 0),
        CREATED,
    );
    m.files = vec![FileEntry {
        path: SafeRelPath::parse("model.pkl", 64).unwrap(),
        size: evil.len() as u64,
        sha256: modelseal::crypto::sha256(&evil),
        kind: FileKind {
            format: "pickle".into(),
            pickle_protocol: Some(4),
            pickle_globals: vec!["sklearn.tree._classes.DecisionTreeClassifier".into()],
            sklearn_version: None,
        },
    }];
    let mb = craft::manifest_bytes(&m);
    let mut tar = craft::tar_entry(b"manifest", b'0', &mb, None);
    tar.extend(craft::tar_entry(b"model.pkl", b'0', &evil, None));
    tar.extend(craft::tar_end());
    let a = craft::archive_from_message(
        &tar,
        tar.len() as u64,
        modelseal::format::Compression::None,
        &mb,
        "m",
        "1.0.0",
        CREATED,
        &w.author,
        &w.reader.public(),
    );
    let file = w.write("lie.mseal", &a);
    let trust = w.trust();
    let opts = ReadOptions {
        now: Some(CREATED + 1),
        ..ReadOptions::new(&trust)
    };
    let before = listing(w.dir.path());
    let checks = ModelChecks {
        allow_globals: Some(vec!["sklearn.*".into(), "posix.*".into()]),
        expect: vec![],
    };
    let e = modelseal::open::open_file_checked(
        &file,
        Decryption::Identity(&w.reader),
        &w.path("out"),
        &opts,
        Default::default(),
        &checks,
    )
    .unwrap_err();
    assert_refused!(e, Error::Model(ModelError::GlobalsMismatch { .. }));
    assert_eq!(listing(w.dir.path()), before);
}

#[test]
fn allow_globals_walks_protocol_0_and_1_pickles_and_unknown_files_too() {
    let w = World::new();
    // Hand-written protocol 0 and 1 pickles of os.system("touch ..."): no PROTO opcode, so they do
    // not sniff as pickles, yet pickle.load runs them.
    let p0 = b"cposix\nsystem\n(S'touch /tmp/modelseal-pwned'\ntR.".to_vec();
    let p1 = b"cposix\nsystem\nq\x00(X\x1a\x00\x00\x00touch /tmp/modelseal-pwnedtR.".to_vec();
    // A text file whose first bytes are valid opcodes but which is not a pickle.
    let text = b"Model card: iris tree".to_vec();
    let json = b"{\"depth\": 3}".to_vec();
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("p0.pkl", p0, Some("posix.system")),
        ("p1.pkl", p1, Some("posix.system")),
        ("card.txt", text, Some("<unparseable")),
        ("config.json", json, None),
    ];
    let trust = w.trust();
    let opts = ReadOptions {
        now: Some(CREATED + 1),
        ..ReadOptions::new(&trust)
    };
    for (name, data, refused) in cases {
        let (r, out) = open_one_file(&w, &opts, name, &data, vec!["@sklearn".into()]);
        match refused {
            Some(g) => {
                let e = r.unwrap_err();
                assert_refused!(e, Error::Model(ModelError::DisallowedGlobal { globals, .. }) if globals.iter().any(|x| x.starts_with(g)));
                assert!(!out.exists());
            }
            None => {
                r.unwrap();
            }
        }
    }
}

#[test]
fn allow_globals_refuses_wrapped_pickles_and_object_npy_and_releases_safe_formats() {
    use std::io::Write;
    let w = World::new();
    let evil = std::fs::read(fixtures().join("evil_reduce.pkl")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&evil).unwrap();
    let gz = gz.finish().unwrap();
    let mut zf = b"ZF0x40\n".to_vec();
    zf.extend(
        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default())
            .finish()
            .unwrap(),
    );
    let npy = |descr: &str| {
        let h = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}\n");
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(h.len() as u16).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(&[0u8; 8]);
        v
    };
    let mut st = 2u64.to_le_bytes().to_vec();
    st.extend_from_slice(b"{}");
    // (file, bytes, refused as unchecked?)
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("model.joblib.gz", gz, true),
        (
            "model.joblib.xz",
            b"\xfd7zXZ\x00\x00\x04evil".to_vec(),
            true,
        ),
        ("model.joblib.bz2", b"BZh91AY&SYevil".to_vec(), true),
        (
            "model.joblib.lzma",
            b"\x5d\x00\x00\x80\x00evil".to_vec(),
            true,
        ),
        ("model.joblib.lz4", b"\x04\x22\x4d\x18evil".to_vec(), true),
        ("model.joblib.zf", zf, true),
        ("objects.npy", npy("'|O'"), true),
        ("weights.npy", npy("'<f8'"), false),
        ("weights.safetensors", st, false),
        ("blob.bin", vec![0xde, 0xad, 0xbe, 0xef, 0, 1, 2], true),
    ];
    let trust = w.trust();
    let opts = ReadOptions {
        now: Some(CREATED + 1),
        ..ReadOptions::new(&trust)
    };
    for (name, data, refused) in cases {
        let (r, out) = open_one_file(&w, &opts, name, &data, vec!["@sklearn".into()]);
        if refused {
            let e = r.unwrap_err();
            assert_refused!(e, Error::Model(ModelError::UncheckedFile { ref path, .. }) if path == name);
            assert!(!out.exists(), "{name}");
        } else {
            r.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(out.join(name).exists());
        }
    }
    assert!(!Path::new("/tmp/modelseal-pwned").exists());
}

#[test]
fn cli_allow_globals_takes_profiles_names_and_prefixes_and_refuses_bad_entries() {
    let d = tempfile::tempdir().unwrap();
    for k in ["alice", "bob"] {
        ms(d.path()).args(["keygen", "-o", k]).assert().success();
    }
    ms(d.path())
        .args([
            "seal",
            "-k",
            "alice.key",
            "-r",
            "bob.pub",
            "--name",
            "m",
            "--model-version",
            "1.0.0",
            "-o",
            "t.mseal",
        ])
        .arg(fixtures().join("iris_tree.joblib"))
        .assert()
        .success();
    let open = |allow: &str, out: &str| {
        ms(d.path())
            .args([
                "open",
                "--no-state",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                "--allow-globals",
                allow,
                "-o",
                out,
                "t.mseal",
            ])
            .output()
            .unwrap()
    };
    // A bare package name is an exact name, so the tree's classes are outside it.
    let o = open("sklearn,numpy", "a");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("sklearn.tree._classes.DecisionTreeClassifier"),
        "{err}"
    );
    assert!(
        err.lines()
            .nth(1)
            .unwrap()
            .starts_with("hint: do not load it; list those exact names in --allow-globals"),
        "{err}"
    );
    assert!(!d.path().join("a").exists());
    // An explicit prefix works and is warned about.
    let o = open("sklearn.*,numpy.*,joblib.*,builtins.slice", "b");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8(o.stderr)
        .unwrap()
        .contains("warning: --allow-globals sklearn.*"));
    // A list file.
    std::fs::write(d.path().join("list.txt"), "# mine\n@sklearn\n").unwrap();
    assert_eq!(open("@list.txt", "c").status.code(), Some(0));
    std::fs::write(d.path().join("list.txt"), "mypkg.Model\n@other.txt\n").unwrap();
    assert_eq!(
        open("@sklearn,@list.txt", "e").status.code(),
        Some(2),
        "lists do not nest"
    );
    assert!(!d.path().join("e").exists());
    // Deadly names and malformed entries: exit 2, nothing opened.
    for bad in ["builtins.eval", "a..b", "@nosuchprofile"] {
        let o = open(bad, "d");
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(!d.path().join("d").exists());
    }
}

#[test]
fn inspect_untrusted_lists_every_outside_global_before_anything_is_released() {
    let d = tempfile::tempdir().unwrap();
    for k in ["alice", "bob"] {
        ms(d.path()).args(["keygen", "-o", k]).assert().success();
    }
    for name in ["evil_reduce.pkl", "iris_tree.joblib"] {
        ms(d.path())
            .args([
                "seal",
                "-k",
                "alice.key",
                "-r",
                "bob.pub",
                "--name",
                "m",
                "--model-version",
                "1.0.0",
                "-o",
            ])
            .arg(format!("{name}.mseal"))
            .arg(fixtures().join(name))
            .assert()
            .success();
    }
    let inspect = |archive: &str, extra: &[&str]| {
        let before = listing(d.path());
        let o = ms(d.path())
            .args([
                "inspect",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                "--untrusted",
                "@sklearn",
            ])
            .args(extra)
            .arg(archive)
            .output()
            .unwrap();
        assert_eq!(listing(d.path()), before, "inspect writes nothing");
        o
    };
    let o = inspect("evil_reduce.pkl.mseal", &[]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "evil_reduce.pkl: 1 outside the allowed globals\n  posix.system\n"
    );
    let o = inspect("iris_tree.joblib.mseal", &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"untrusted": {"iris_tree.joblib": []}})
    );
    // Without a key it cannot look inside: a usage error, not a silent pass.
    let o = ms(d.path())
        .args([
            "inspect",
            "-t",
            "alice.pub",
            "--untrusted",
            "@sklearn",
            "iris_tree.joblib.mseal",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
