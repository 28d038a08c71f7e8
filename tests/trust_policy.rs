//! Trust policy (issue "trust policy"): scoped keys, k-of-n signatures, anti-rollback state,
//! minimum versions, and THREATS.md checklist 16-18.

mod common;

use std::path::Path;

use common::*;
use modelseal::error::{TrustError, VerifyError};
use modelseal::keys::SecretKey;
use modelseal::open::{self, ReadOptions};
use modelseal::seal::Recipient;
use modelseal::state::RollbackState;
use modelseal::trust::TrustStore;
use modelseal::Error;

fn archive(w: &World, signer: &SecretKey, name: &str, version: &str, content: &[u8]) -> Vec<u8> {
    let input = w.write(
        &format!("in-{name}-{version}.bin").replace('/', "_"),
        content,
    );
    let rp = w.reader.public();
    let mut opts = w.options(vec![Recipient::PublicKey(&rp)], Default::default());
    opts.signer = signer;
    opts.name = modelseal::format::manifest::ModelName::parse(name).unwrap();
    opts.version = semver::Version::parse(version).unwrap();
    let inputs = modelseal::seal::collect_inputs(&[input], &Default::default()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    modelseal::seal::seal_to_writer(&inputs, &opts, &mut out).unwrap();
    out.into_inner()
}

fn verify(
    bytes: &[u8],
    trust: &TrustStore,
    state: Option<&RollbackState>,
) -> Result<open::Report, Error> {
    let opts = ReadOptions {
        now: Some(CREATED + 1),
        state,
        ..ReadOptions::new(trust)
    };
    open::verify_reader(bytes, &opts)
}

#[test]
fn a_key_scoped_to_iris_cannot_sign_fraud_models() {
    let w = World::new();
    let mut trust = TrustStore::new();
    trust.add_scoped(w.author.public(), vec!["iris-*".into()]);
    verify(
        &archive(&w, &w.author, "iris-tree", "1.0.0", b"x"),
        &trust,
        None,
    )
    .unwrap();
    let e = verify(
        &archive(&w, &w.author, "fraud-detector", "1.0.0", b"x"),
        &trust,
        None,
    )
    .unwrap_err();
    assert_refused!(e, Error::Trust(TrustError::UntrustedForModel { model, .. }) if model == "fraud-detector");
    // Through a trust directory with policy.toml, by file name and by id.
    let dir = w.path("trust");
    modelseal::trust::dir_add(
        &dir,
        &write_pub(&w, "author", &w.author),
        &["iris-*".to_string(), "fraud/*".to_string()],
    )
    .unwrap();
    let mut from_dir = TrustStore::new();
    from_dir.add_path(&dir).unwrap();
    verify(
        &archive(&w, &w.author, "fraud/eu", "1.0.0", b"x"),
        &from_dir,
        None,
    )
    .unwrap();
    let e = verify(
        &archive(&w, &w.author, "spam-filter", "1.0.0", b"x"),
        &from_dir,
        None,
    )
    .unwrap_err();
    assert_refused!(e, Error::Trust(TrustError::UntrustedForModel { .. }));
    std::fs::write(
        dir.join("policy.toml"),
        "[[key]]\nfile = \"nope.pub\"\nmodels = [\"*\"]\n",
    )
    .unwrap();
    assert_refused!(
        TrustStore::new().add_path(&dir).unwrap_err(),
        Error::Trust(TrustError::BadPolicy { .. })
    );
}

fn write_pub(w: &World, name: &str, k: &SecretKey) -> std::path::PathBuf {
    w.write(&format!("{name}.pub"), k.public().to_line().as_bytes())
}

#[test]
fn k_of_n_counts_distinct_trusted_signers_once() {
    let w = World::new();
    let second = SecretKey::generate();
    let mut trust = TrustStore::new();
    trust.add(w.author.public());
    trust.add(second.public());
    // The same key added again, as another "file", must not count twice.
    trust.add(second.public());
    trust.require_signers(vec!["fraud/*".into()], 2);
    let bytes = archive(&w, &w.author, "fraud/detector", "1.0.0", b"model");
    let path = w.write("fraud.mseal", &bytes);
    let e = verify(&bytes, &trust, None).unwrap_err();
    assert_refused!(
        e,
        Error::Trust(TrustError::TooFewSignatures {
            required: 2,
            found: 1,
            ..
        })
    );
    // The author signing again adds nothing.
    let e =
        modelseal::countersign::add_signature(&path, &w.author, &Default::default()).unwrap_err();
    assert_refused!(e, Error::Verify(VerifyError::DuplicateSignature { .. }));
    // An untrusted co-signer adds nothing either.
    modelseal::countersign::add_signature(&path, &w.stranger, &Default::default()).unwrap();
    let e = verify(&std::fs::read(&path).unwrap(), &trust, None).unwrap_err();
    assert_refused!(
        e,
        Error::Trust(TrustError::TooFewSignatures { found: 1, .. })
    );
    // A second trusted key does; the payload is untouched and still opens.
    modelseal::countersign::add_signature(&path, &second, &Default::default()).unwrap();
    let cosigned = std::fs::read(&path).unwrap();
    let report = verify(&cosigned, &trust, None).unwrap();
    assert_eq!(report.header.cosigners(), &[second.public().key_id()]);
    let l = (
        modelseal::craft::layout(&bytes),
        modelseal::craft::layout(&cosigned),
    );
    assert_eq!(bytes[l.0.payload.clone()], cosigned[l.1.payload.clone()]);
    // Models outside the threshold's patterns need one signer.
    verify(
        &archive(&w, &w.author, "iris-tree", "1.0.0", b"x"),
        &trust,
        None,
    )
    .unwrap();
}

#[test]
fn rollback_equivocation_and_minimum_version() {
    let w = World::new();
    let trust = w.trust();
    let state = RollbackState::at(w.path("state/state.json"));
    let v12 = archive(&w, &w.author, "iris-tree", "1.2.0", b"v1.2");
    let v11 = archive(&w, &w.author, "iris-tree", "1.1.0", b"v1.1");
    let v12_other = archive(&w, &w.author, "iris-tree", "1.2.0", b"a different 1.2");
    verify(&v11, &trust, Some(&state)).unwrap();
    verify(&v12, &trust, Some(&state)).unwrap();
    // The same archive again is fine.
    verify(&v12, &trust, Some(&state)).unwrap();
    let e = verify(&v11, &trust, Some(&state)).unwrap_err();
    assert_refused!(e, Error::Trust(TrustError::Rollback { found, accepted, .. }) if found == "1.1.0" && accepted == "1.2.0");
    let e = verify(&v12_other, &trust, Some(&state)).unwrap_err();
    assert_refused!(e, Error::Trust(TrustError::Equivocation { version, .. }) if version == "1.2.0");
    // Open is refused the same way, and leaves nothing.
    let e = w.open_bytes_to_dir_err_with(&v11, Some(&state));
    assert_refused!(e, Error::Trust(TrustError::Rollback { .. }));
    // Another signer's history is separate.
    let mut both = w.trust();
    both.add(w.stranger.public());
    verify(
        &archive(&w, &w.stranger, "iris-tree", "0.1.0", b"s"),
        &both,
        Some(&state),
    )
    .unwrap();
    // --min-version refuses older archives even without state.
    let opts = ReadOptions {
        now: Some(CREATED + 1),
        min_version: Some(semver::Version::new(1, 2, 0)),
        ..ReadOptions::new(&trust)
    };
    assert_refused!(
        open::verify_reader(&v11[..], &opts).unwrap_err(),
        Error::Trust(TrustError::BelowMinimumVersion { .. })
    );
    assert!(open::verify_reader(&v12[..], &opts).is_ok());
    // Versions at the extremes compare without overflow.
    let big = archive(
        &w,
        &w.author,
        "iris-tree",
        "18446744073709551615.0.0",
        b"big",
    );
    verify(&big, &trust, Some(&state)).unwrap();
    assert_refused!(
        verify(&v12, &trust, Some(&state)).unwrap_err(),
        Error::Trust(TrustError::Rollback { .. })
    );
}

#[test]
fn a_corrupted_state_file_is_an_error_not_a_silent_reset() {
    let w = World::new();
    let trust = w.trust();
    let path = w.path("state.json");
    let state = RollbackState::at(&path);
    let a = archive(&w, &w.author, "iris-tree", "1.0.0", b"x");
    for bad in [&b""[..], b"{", b"{\"format\":\"modelseal-state-v1\",\"entries\":[{\"model\":\"m\",\"signer\":\"s\",\"version\":\"x\",\"content_sha256\":\"00\"}]}", b"[1,2]"] {
        std::fs::write(&path, bad).unwrap();
        let e = verify(&a, &trust, Some(&state)).unwrap_err();
        assert_refused!(e, Error::Trust(TrustError::StateCorrupted { .. }));
        assert_eq!(std::fs::read(&path).unwrap(), bad, "the state file was changed");
    }
}

#[test]
fn concurrent_processes_keep_the_state_consistent() {
    let w = World::new();
    let bin = env!("CARGO_BIN_EXE_modelseal");
    let dir = w.dir.path();
    std::fs::write(dir.join("author.pub"), w.author.public().to_line()).unwrap();
    // 8 models, and 8 versions of one more model, all verified at once by separate processes.
    let mut files = Vec::new();
    for i in 0..8 {
        let a = archive(
            &w,
            &w.author,
            &format!("model-{i}"),
            "1.0.0",
            format!("m{i}").as_bytes(),
        );
        files.push(w.write(&format!("m{i}.mseal"), &a));
        let b = archive(
            &w,
            &w.author,
            "shared-model",
            &format!("1.{i}.0"),
            format!("v{i}").as_bytes(),
        );
        files.push(w.write(&format!("v{i}.mseal"), &b));
    }
    let state = dir.join("state.json");
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            std::process::Command::new(bin)
                .args(["verify", "-t", "author.pub", "--state"])
                .arg(&state)
                .arg(f)
                .current_dir(dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    // Every model-i verification succeeded; shared-model ones may be refused as rollbacks when a
    // newer one won the race, but only with the Rollback error.
    for (f, o) in files.iter().zip(&outcomes) {
        let err = String::from_utf8_lossy(&o.stderr);
        if f.file_name().unwrap().to_string_lossy().starts_with('m') {
            assert!(o.status.success(), "{err}");
        } else if !o.status.success() {
            assert!(err.starts_with("error: rollback:"), "{err}");
        }
    }
    let text = std::fs::read_to_string(&state).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 9, "{text}");
    let shared = entries
        .iter()
        .find(|e| e["model"] == "shared-model")
        .unwrap();
    // The recorded version is the highest one that was accepted.
    let accepted: Vec<String> = files
        .iter()
        .zip(&outcomes)
        .filter(|(f, o)| {
            o.status.success() && f.file_name().unwrap().to_string_lossy().starts_with('v')
        })
        .map(|(f, _)| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let max = accepted
        .iter()
        .map(|n| n[1..2].parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert_eq!(shared["version"], format!("1.{max}.0"));
}

#[test]
fn the_trust_cli_adds_lists_and_removes_scoped_keys() {
    let w = World::new();
    let dir = w.dir.path();
    let bin = env!("CARGO_BIN_EXE_modelseal");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin)
            .args(args)
            .current_dir(dir)
            .env("MODELSEAL_TRUST", dir.join("trust"))
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    write_pub(&w, "author", &w.author);
    let id = w.author.public().key_id().to_string();
    let (code, out, err) = run(&["trust", "add", "author.pub", "--models", "iris-*"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id) && out.contains("iris-*"), "{out}");
    let (_, out, _) = run(&["trust", "list"]);
    assert!(out.contains(&format!("{id}  models: iris-*")), "{out}");
    // verify without -t uses MODELSEAL_TRUST with its policy.
    w.write(
        "fraud.mseal",
        &archive(&w, &w.author, "fraud-detector", "1.0.0", b"x"),
    );
    let (code, _, err) = run(&["verify", "--no-state", "fraud.mseal"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("is trusted only for iris-*, not for model \"fraud-detector\""),
        "{err}"
    );
    let (code, _, _) = run(&["trust", "remove", &id]);
    assert_eq!(code, 0);
    let (code, _, err) = run(&["trust", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(!Path::new(&dir.join("trust").join(format!("{id}.pub"))).exists());
}
