//! OpenSSF Model Signing bundles (FORMAT.md §11): round trips, and each refusal as its variant.
//! Interoperability with the real model_signing is tested in python/tests/test_oms_interop.py.

use std::path::Path;

use base64::Engine as _;
use modelseal::error::OmsError;
use modelseal::oms::{
    self, EcSigningKey, EcVerifyingKey, FileDigest, GitPaths, Ignore, ResourceName,
};
use modelseal::Error;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn key(seed: u8) -> EcSigningKey {
    EcSigningKey::from_bytes(&[seed; 32]).unwrap()
}

/// A model directory with nested files, a top-level .gitignore and a .git directory.
fn model_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let m = d.path();
    std::fs::create_dir_all(m.join("sub/deep")).unwrap();
    std::fs::create_dir_all(m.join(".git/objects")).unwrap();
    std::fs::write(m.join("weights.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(m.join("config.json"), b"{}").unwrap();
    std::fs::write(m.join("sub/tok.txt"), b"tokens").unwrap();
    std::fs::write(m.join("sub/deep/x"), b"x").unwrap();
    std::fs::write(m.join("a.b"), b"dot").unwrap();
    std::fs::create_dir(m.join("a")).unwrap();
    std::fs::write(m.join("a/b"), b"slash").unwrap();
    std::fs::write(m.join(".gitignore"), b"*.tmp").unwrap();
    std::fs::write(m.join(".git/objects/o"), b"git").unwrap();
    d
}

fn oms_err(r: Result<impl std::fmt::Debug, Error>) -> OmsError {
    match r {
        Err(Error::Oms(e)) => e,
        other => panic!("expected an OMS refusal, got {other:?}"),
    }
}

fn payload(bundle: &[u8]) -> serde_json::Value {
    let b: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    let p = B64
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&p).unwrap()
}

/// The bundle with its statement replaced and signed again by `k`, as a signer would.
fn resign(bundle: &[u8], k: &EcSigningKey, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut st = payload(bundle);
    edit(&mut st);
    let body = serde_json::to_vec(&st).unwrap();
    let mut pae = format!(
        "DSSEv1 {} {} {} ",
        oms::PAYLOAD_TYPE.len(),
        oms::PAYLOAD_TYPE,
        body.len()
    )
    .into_bytes();
    pae.extend_from_slice(&body);
    let sig: p256::ecdsa::DerSignature = p256::ecdsa::signature::Signer::sign(
        &p256::ecdsa::SigningKey::from_slice(&[1u8; 32]).unwrap(),
        &pae,
    );
    // Only key(1) is used for re-signing.
    assert_eq!(k.verifying_key(), key(1).verifying_key());
    let mut b: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    b["dsseEnvelope"]["payload"] = B64.encode(&body).into();
    b["dsseEnvelope"]["signatures"][0]["sig"] = B64.encode(sig.as_bytes()).into();
    serde_json::to_vec(&b).unwrap()
}

fn edit_bundle(bundle: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut b: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    edit(&mut b);
    serde_json::to_vec(&b).unwrap()
}

fn verify(m: &Path, bundle: &[u8], k: &EcVerifyingKey) -> Result<oms::VerifiedOms, Error> {
    oms::verify(m, bundle, k, &Ignore::default())
}

#[test]
fn a_directory_round_trips_sorted_by_component_without_git_files() {
    let d = model_dir();
    let k = key(1);
    let bundle = oms::sign(d.path(), &k, &Ignore::default()).unwrap();
    let v = verify(d.path(), &bundle, &k.verifying_key()).unwrap();
    let names: Vec<&str> = v.files.iter().map(|f| f.name.as_str()).collect();
    // Component order: "a/b" before "a.b" (a plain string sort would swap them).
    assert_eq!(
        names,
        [
            "a/b",
            "a.b",
            "config.json",
            "sub/deep/x",
            "sub/tok.txt",
            "weights.bin"
        ]
    );
    let st = payload(&bundle);
    assert_eq!(st["predicateType"], oms::PREDICATE_TYPE);
    assert_eq!(st["predicate"]["serialization"]["method"], "files");
    let expected_weights =
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &[7u8; 300_000]));
    assert_eq!(
        st["predicate"]["resources"][5]["digest"].as_str().unwrap(),
        expected_weights
    );
    assert_eq!(v.key_hint, k.verifying_key().hint());
}

#[test]
fn a_single_file_is_the_resource_dot() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("model.safetensors");
    std::fs::write(&f, b"weights").unwrap();
    let k = key(1);
    let bundle = oms::sign(&f, &k, &Ignore::default()).unwrap();
    let v = verify(&f, &bundle, &k.verifying_key()).unwrap();
    assert_eq!(v.files.len(), 1);
    assert_eq!(v.files[0].name.as_str(), ".");
    assert_eq!(v.model_name, "model.safetensors");
    std::fs::write(&f, b"weightz").unwrap();
    assert!(matches!(
        oms_err(verify(&f, &bundle, &k.verifying_key())),
        OmsError::FileChanged { path, .. } if path == "."
    ));
}

#[test]
fn a_changed_file_is_named() {
    let d = model_dir();
    let k = key(1);
    let bundle = oms::sign(d.path(), &k, &Ignore::default()).unwrap();
    std::fs::write(d.path().join("sub/tok.txt"), b"tokenz").unwrap();
    let e = oms_err(verify(d.path(), &bundle, &k.verifying_key()));
    assert!(
        matches!(&e, OmsError::FileChanged { path, .. } if path == "sub/tok.txt"),
        "{e:?}"
    );
}

#[test]
fn an_extra_file_is_named_and_git_files_are_not_extra() {
    let d = model_dir();
    let k = key(1);
    let bundle = oms::sign(d.path(), &k, &Ignore::default()).unwrap();
    std::fs::write(d.path().join(".git/objects/new"), b"ignored").unwrap();
    verify(d.path(), &bundle, &k.verifying_key()).unwrap();
    std::fs::write(d.path().join("sub/deep/planted.py"), b"import os").unwrap();
    let e = oms_err(verify(d.path(), &bundle, &k.verifying_key()));
    assert!(
        matches!(&e, OmsError::FileExtra { path } if path == "sub/deep/planted.py"),
        "{e:?}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let d = model_dir();
    let k = key(1);
    let bundle = oms::sign(d.path(), &k, &Ignore::default()).unwrap();
    std::fs::remove_file(d.path().join("config.json")).unwrap();
    let e = oms_err(verify(d.path(), &bundle, &k.verifying_key()));
    assert!(
        matches!(&e, OmsError::FileMissing { path } if path == "config.json"),
        "{e:?}"
    );
}

#[test]
fn another_key_is_refused_with_or_without_the_hint() {
    let d = model_dir();
    let bundle = oms::sign(d.path(), &key(1), &Ignore::default()).unwrap();
    let other = key(2).verifying_key();
    assert!(matches!(
        oms_err(verify(d.path(), &bundle, &other)),
        OmsError::KeyMismatch { .. }
    ));
    let no_hint = edit_bundle(&bundle, |b| {
        b["verificationMaterial"]["publicKey"]
            .as_object_mut()
            .unwrap()
            .remove("hint");
    });
    verify(d.path(), &no_hint, &key(1).verifying_key()).unwrap();
    assert!(matches!(
        oms_err(verify(d.path(), &no_hint, &other)),
        OmsError::BadSignature { .. }
    ));
}

fn with_signature(bundle: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit_bundle(bundle, |b| {
        let s = &mut b["dsseEnvelope"]["signatures"][0]["sig"];
        let mut sig = B64.decode(s.as_str().unwrap()).unwrap();
        f(&mut sig);
        *s = B64.encode(sig).into();
    })
}

#[test]
fn a_flipped_signature_byte_is_refused() {
    let d = model_dir();
    let k = key(1);
    let bundle = oms::sign(d.path(), &k, &Ignore::default()).unwrap();
    let last = with_signature(&bundle, |s| *s.last_mut().unwrap() ^= 1);
    assert!(matches!(
        oms_err(verify(d.path(), &last, &k.verifying_key())),
        OmsError::BadSignature { .. }
    ));
    // A flip in the DER framing is an encoding refusal.
    let first = with_signature(&bundle, |s| s[0] ^= 1);
    assert!(matches!(
        oms_err(verify(d.path(), &first, &k.verifying_key())),
        OmsError::SignatureEncoding { .. }
    ));
}

#[test]
fn a_raw_r_s_signature_is_refused() {
    let d = model_dir();
    let k = key(1);
    let bundle = oms::sign(d.path(), &k, &Ignore::default()).unwrap();
    let raw = with_signature(&bundle, |s| {
        let der = p256::ecdsa::DerSignature::from_bytes(s).unwrap();
        let fixed: p256::ecdsa::Signature = der.try_into().unwrap();
        *s = fixed.to_bytes().to_vec();
    });
    assert!(matches!(
        oms_err(verify(d.path(), &raw, &k.verifying_key())),
        OmsError::SignatureEncoding { len: 64 }
    ));
}

#[test]
fn a_changed_payload_is_refused_by_the_signature() {
    let d = model_dir();
    let k = key(1);
    let bundle = oms::sign(d.path(), &k, &Ignore::default()).unwrap();
    let changed = edit_bundle(&bundle, |b| {
        let p = b["dsseEnvelope"]["payload"].as_str().unwrap();
        let mut body = B64.decode(p).unwrap();
        let i = body.len() / 2;
        body[i] ^= 0x20;
        b["dsseEnvelope"]["payload"] = B64.encode(body).into();
    });
    assert!(matches!(
        oms_err(verify(d.path(), &changed, &k.verifying_key())),
        OmsError::BadSignature { .. }
    ));
}

#[test]
fn an_oversized_bundle_is_refused_before_reading() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("big.sig");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(oms::MAX_BUNDLE_BYTES + 1).unwrap(); // sparse: nothing to read
    assert!(matches!(
        oms_err(oms::read_bundle(&p)),
        OmsError::BundleTooLarge { size, .. } if size == oms::MAX_BUNDLE_BYTES + 1
    ));
    let big = vec![b' '; oms::MAX_BUNDLE_BYTES as usize + 1];
    assert!(matches!(
        oms_err(verify(d.path(), &big, &key(1).verifying_key())),
        OmsError::BundleTooLarge { .. }
    ));
}

#[test]
fn signed_but_malformed_statements_are_refused_each_by_its_variant() {
    let d = model_dir();
    let k = key(1);
    let vk = k.verifying_key();
    let bundle = oms::sign(d.path(), &k, &Ignore::default()).unwrap();
    let case = |edit: &dyn Fn(&mut serde_json::Value)| {
        let b = resign(&bundle, &k, |s| edit(s));
        oms_err(verify(d.path(), &b, &vk))
    };
    let e = case(&|s| {
        let r = s["predicate"]["resources"][0].clone();
        s["predicate"]["resources"].as_array_mut().unwrap().push(r);
    });
    assert!(
        matches!(&e, OmsError::DuplicateResource { name } if name == "a/b"),
        "{e:?}"
    );
    for bad in ["../etc/passwd", "/etc/passwd", "a//b", "a\\b", "", "./a"] {
        let e = case(&|s| s["predicate"]["resources"][0]["name"] = bad.into());
        assert!(matches!(e, OmsError::UnsafeName { .. }), "{bad:?}: {e:?}");
    }
    let e = case(&|s| s["predicate"]["resources"][0]["name"] = ".".into());
    assert!(matches!(e, OmsError::UnsafeName { .. }), "{e:?}");
    for bad in ["zz", "ABCDEF", &"A".repeat(64), &"0".repeat(63)] {
        let e = case(&|s| s["predicate"]["resources"][0]["digest"] = bad.into());
        assert!(matches!(e, OmsError::Decode { .. }), "{bad:?}: {e:?}");
    }
    let e = case(&|s| s["predicate"]["resources"][0]["digest"] = "0".repeat(64).into());
    assert!(matches!(e, OmsError::SubjectDigestMismatch { .. }), "{e:?}");
    let e = case(&|s| s["predicateType"] = "https://model_signing/Digests/v0.1".into());
    assert!(
        matches!(
            e,
            OmsError::WrongType {
                field: "predicateType",
                ..
            }
        ),
        "{e:?}"
    );
    let e = case(&|s| s["predicate"]["serialization"]["method"] = "shards".into());
    assert!(
        matches!(
            e,
            OmsError::Unsupported {
                field: "serialization.method",
                ..
            }
        ),
        "{e:?}"
    );
    let e = case(&|s| s["predicate"]["serialization"]["hash_type"] = "blake3".into());
    assert!(
        matches!(
            e,
            OmsError::Unsupported {
                field: "serialization.hash_type",
                ..
            }
        ),
        "{e:?}"
    );
    let e = case(&|s| s["predicate"]["resources"][1]["algorithm"] = "blake2".into());
    assert!(matches!(e, OmsError::Unsupported { .. }), "{e:?}");
    let e = case(&|s| {
        let subj = s["subject"][0].clone();
        s["subject"].as_array_mut().unwrap().push(subj);
    });
    assert!(
        matches!(
            e,
            OmsError::Count {
                what: "subjects",
                found: 2,
                ..
            }
        ),
        "{e:?}"
    );
    let e = case(&|s| {
        let r = s["predicate"]["resources"][0].clone();
        s["predicate"]["resources"] = vec![r; oms::MAX_RESOURCES + 1].into();
    });
    assert!(
        matches!(
            e,
            OmsError::Count {
                what: "resources",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn envelope_types_and_signature_count_are_checked() {
    let d = model_dir();
    let k = key(1);
    let vk = k.verifying_key();
    let bundle = oms::sign(d.path(), &k, &Ignore::default()).unwrap();
    let e = oms_err(verify(
        d.path(),
        &edit_bundle(&bundle, |b| {
            b["dsseEnvelope"]["payloadType"] = "text/plain".into()
        }),
        &vk,
    ));
    assert!(
        matches!(
            e,
            OmsError::WrongType {
                field: "payloadType",
                ..
            }
        ),
        "{e:?}"
    );
    let e = oms_err(verify(
        d.path(),
        &edit_bundle(&bundle, |b| b["mediaType"] = "application/json".into()),
        &vk,
    ));
    assert!(
        matches!(
            e,
            OmsError::WrongType {
                field: "mediaType",
                ..
            }
        ),
        "{e:?}"
    );
    let e = oms_err(verify(
        d.path(),
        &edit_bundle(&bundle, |b| {
            let s = b["dsseEnvelope"]["signatures"][0].clone();
            b["dsseEnvelope"]["signatures"]
                .as_array_mut()
                .unwrap()
                .push(s);
        }),
        &vk,
    ));
    assert!(
        matches!(
            e,
            OmsError::Count {
                what: "signatures",
                ..
            }
        ),
        "{e:?}"
    );
    for junk in [&b"not json"[..], b"{}", b"[]", b"{\"mediaType\": 1}"] {
        let e = oms_err(verify(d.path(), junk, &vk));
        assert!(matches!(e, OmsError::Decode { .. }), "{e:?}");
    }
}

#[test]
fn links_and_fifos_in_the_model_are_refused() {
    let d = model_dir();
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("sub/link")).unwrap();
    let e = oms_err(oms::sign(d.path(), &key(1), &Ignore::default()));
    assert!(
        matches!(
            &e,
            OmsError::UnsupportedFile {
                kind: "a symbolic link",
                ..
            }
        ),
        "{e:?}"
    );
    std::fs::remove_file(d.path().join("sub/link")).unwrap();
    let fifo = d.path().join("sub/fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let e = oms_err(oms::sign(d.path(), &key(1), &Ignore::default()));
    assert!(
        matches!(&e, OmsError::UnsupportedFile { kind: "a FIFO", .. }),
        "{e:?}"
    );
    std::fs::remove_file(&fifo).unwrap();
    let l = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(d.path(), l.path().join("m")).unwrap();
    let e = oms_err(oms::sign(&l.path().join("m"), &key(1), &Ignore::default()));
    assert!(matches!(e, OmsError::UnsupportedFile { .. }), "{e:?}");
}

#[test]
fn ignored_paths_are_recorded_and_honoured_on_verify() {
    let d = model_dir();
    let k = key(1);
    let ignore = Ignore {
        paths: vec!["sub/deep".into()],
        git: GitPaths::Ignore,
    };
    let bundle = oms::sign(d.path(), &k, &ignore).unwrap();
    std::fs::write(d.path().join("sub/deep/x"), b"changed, but ignored").unwrap();
    // The statement records the path, so a verifier that was not told still ignores it.
    let v = verify(d.path(), &bundle, &k.verifying_key()).unwrap();
    assert!(v.ignore_paths.contains(&"sub/deep".to_string()));
    assert!(v
        .files
        .iter()
        .all(|f| !f.name.as_str().starts_with("sub/deep")));
    // With git paths included, .gitignore and .git are signed.
    let all = Ignore {
        paths: vec![],
        git: GitPaths::Include,
    };
    let bundle = oms::sign(d.path(), &k, &all).unwrap();
    let v = oms::verify(d.path(), &bundle, &k.verifying_key(), &all).unwrap();
    assert!(v.files.iter().any(|f| f.name.as_str() == ".git/objects/o"));
}

#[test]
fn digests_given_by_the_caller_sign_and_verify() {
    let d = model_dir();
    let k = key(1);
    let files = oms::hash_model(d.path(), &Ignore::default()).unwrap();
    let mut shuffled = files.clone();
    shuffled.reverse();
    let bundle = oms::sign_digests("m", shuffled, &[], &k).unwrap();
    // The same bytes as signing the directory, apart from the name and the recorded ignores.
    verify(d.path(), &bundle, &k.verifying_key()).unwrap();
    oms::verify_digests(&bundle, &files, &k.verifying_key()).unwrap();
    let mut changed = files.clone();
    changed[2].sha256[0] ^= 1;
    assert!(matches!(
        oms_err(oms::verify_digests(&bundle, &changed, &k.verifying_key())),
        OmsError::FileChanged { path, .. } if path == "config.json"
    ));
    let mut extra = files.clone();
    extra.push(FileDigest {
        name: ResourceName::parse("zz").unwrap(),
        sha256: [0; 32],
    });
    assert!(matches!(
        oms_err(oms::verify_digests(&bundle, &extra, &k.verifying_key())),
        OmsError::FileExtra { path } if path == "zz"
    ));
    assert!(matches!(
        oms_err(oms::verify_digests(&bundle, &files[1..], &k.verifying_key())),
        OmsError::FileMissing { path } if path == "a/b"
    ));
    let dup = vec![files[0].clone(), files[0].clone()];
    assert!(matches!(
        oms_err(oms::sign_digests("m", dup, &[], &k)),
        OmsError::DuplicateResource { .. }
    ));
}

#[test]
fn pem_keys_in_the_forms_openssl_writes() {
    // openssl ecparam -name prime256v1 -genkey (with its EC PARAMETERS block), its PKCS#8 form,
    // and its public key: one key, one hint.
    let sec1 = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFb9I/KIZW+VtUQUBPjZ1VEusv0gU4l6QvmktW2JaCIIoAoGCCqGSM49\n\
AwEHoUQDQgAEvNx05MjM3PK6cIEJMyvmCTOZyZRpaFiYRympmABb0W60O+u+POxS\na1uu5DNZI0ToQrlyS7SrjNq0Okv+gLqzZQ==\n\
-----END EC PRIVATE KEY-----\n";
    let pkcs8 = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVv0j8ohlb5W1RBQE\n\
+NnVUS6y/SBTiXpC+aS1bYloIgihRANCAAS83HTkyMzc8rpwgQkzK+YJM5nJlGlo\nWJhHKamYAFvRbrQ767487FJrW67kM1kjROhCuXJLtKuM2rQ6S/6AurNl\n\
-----END PRIVATE KEY-----\n";
    let public = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvNx05MjM3PK6cIEJMyvmCTOZyZRp\n\
aFiYRympmABb0W60O+u+POxSa1uu5DNZI0ToQrlyS7SrjNq0Okv+gLqzZQ==\n-----END PUBLIC KEY-----\n";
    let o = Path::new("k");
    let a = EcSigningKey::from_pem(sec1, o).unwrap().verifying_key();
    let b = EcSigningKey::from_pem(pkcs8, o).unwrap().verifying_key();
    let p = EcVerifyingKey::from_pem(public, o).unwrap();
    assert_eq!(a, p);
    assert_eq!(b, p);
    assert_eq!(p.to_pem(), public);
    // model_signing wrote this hint for this key (sha256sum of the PEM).
    assert_eq!(
        p.hint(),
        "32c7bb9836e68e23437bc8022b4392bd7685ef32b71ae9e687a986233f7bfad6"
    );
    assert!(format!("{:?}", EcSigningKey::from_pem(sec1, o).unwrap()).contains("redacted"));
    // Ed25519 (which model_signing refuses too) and junk are refused as keys.
    let ed = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        EcSigningKey::from_pem(ed, o),
        Err(OmsError::BadKey { .. })
    ));
    assert!(matches!(
        EcVerifyingKey::from_pem(sec1, o),
        Err(OmsError::BadKey { .. })
    ));
    assert!(matches!(
        EcSigningKey::from_pem("junk", o),
        Err(OmsError::BadKey { .. })
    ));
}

#[test]
fn a_model_signing_bundle_verifies() {
    // Made by model_signing 1.1.1 `sign key` over tests/data/oms/model with the key above.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/oms");
    let bundle = oms::read_bundle(&dir.join("model_signing.sig")).unwrap();
    let key = EcVerifyingKey::read(&dir.join("ec.pub")).unwrap();
    let v = verify(&dir.join("model"), &bundle, &key).unwrap();
    assert_eq!(v.files.len(), 3);
    assert_eq!(v.model_name, "model");
}

#[test]
fn a_private_key_others_can_read_is_refused_as_every_secret_key_is() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ec.pem");
    let sec1 = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFb9I/KIZW+VtUQUBPjZ1VEusv0gU4l6QvmktW2JaCIIoAoGCCqGSM49\n\
AwEHoUQDQgAEvNx05MjM3PK6cIEJMyvmCTOZyZRpaFiYRympmABb0W60O+u+POxS\na1uu5DNZI0ToQrlyS7SrjNq0Okv+gLqzZQ==\n\
-----END EC PRIVATE KEY-----\n";
    std::fs::write(&path, sec1).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = EcSigningKey::read(&path).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Key(modelseal::error::KeyError::InsecurePermissions { mode: 0o644, .. })
        ),
        "{e:?}"
    );
    // 0600, as openssl writes it: read.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    EcSigningKey::read(&path).unwrap();
    // A public key may be world-readable.
    let public = dir.path().join("ec.pub");
    std::fs::write(&public, "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvNx05MjM3PK6cIEJMyvmCTOZyZRp\n\
aFiYRympmABb0W60O+u+POxSa1uu5DNZI0ToQrlyS7SrjNq0Okv+gLqzZQ==\n-----END PUBLIC KEY-----\n").unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).unwrap();
    EcVerifyingKey::read(&public).unwrap();
}
