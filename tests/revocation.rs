//! Revocation and key validity windows in the trust store (issue 15 §3): a revoked key's archives
//! are refused (from `since` on, by the header's signed creation time), a key outside its
//! `not_before` / `not_after` window is refused, k-of-n counts only valid, unrevoked keys, and
//! `trust revoke` edits the policy atomically. Creation times are injected through the sealing
//! options; the verifying clock through `ReadOptions::now`.

mod cli_harness;
mod common;

use cli_harness::{ms, run, Out};
use common::*;
use modelseal::error::{TrustError, VerifyError};
use modelseal::keys::SecretKey;
use modelseal::open::{self, ReadOptions};
use modelseal::seal::Recipient;
use modelseal::trust::{Revocation, TrustStore, Validity};
use modelseal::Error;

const DAY: u64 = 86_400;

fn archive(w: &World, signer: &SecretKey, created: u64) -> Vec<u8> {
    let input = w.write(&format!("in-{created}.bin"), b"weights");
    let rp = w.reader.public();
    let mut opts = w.options(vec![Recipient::PublicKey(&rp)], Default::default());
    opts.signer = signer;
    opts.created = created;
    let inputs = modelseal::seal::collect_inputs(&[input], &Default::default()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    modelseal::seal::seal_to_writer(&inputs, &opts, &mut out).unwrap();
    out.into_inner()
}

fn verify(bytes: &[u8], trust: &TrustStore, now: u64) -> Result<open::Report, Error> {
    let opts = ReadOptions {
        now: Some(now),
        ..ReadOptions::new(trust)
    };
    open::verify_reader(bytes, &opts)
}

#[test]
fn a_revoked_key_is_refused_and_since_spares_older_archives() {
    let w = World::new();
    let leak = CREATED + 10 * DAY;
    let old = archive(&w, &w.author, CREATED);
    let new = archive(&w, &w.author, leak + 1);
    let at_leak = archive(&w, &w.author, leak);
    let now = leak + 30 * DAY;
    let id = w.author.public().key_id();

    let mut total = w.trust();
    total.revoke(
        id,
        Revocation {
            reason: "laptop stolen".into(),
            since: None,
        },
    );
    for a in [&old, &new] {
        let e = verify(a, &total, now).unwrap_err();
        assert!(
            matches!(&e, Error::Trust(TrustError::Revoked { key_id, reason, since: None })
                if *key_id == id.to_string() && reason == "laptop stolen"),
            "{e:?}"
        );
    }
    // The same through open: refused, nothing written.
    let file = w.path("old.mseal");
    std::fs::write(&file, &old).unwrap();
    let before = listing(w.dir.path());
    let e = open::open_file(
        &file,
        open::Decryption::Identity(&w.reader),
        &w.path("out"),
        &ReadOptions {
            now: Some(now),
            ..ReadOptions::new(&total)
        },
        Default::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Trust(TrustError::Revoked { .. })),
        "{e:?}"
    );
    assert_eq!(listing(w.dir.path()), before);

    let mut since = w.trust();
    since.revoke(
        id,
        Revocation {
            reason: "laptop stolen".into(),
            since: Some(leak),
        },
    );
    verify(&old, &since, now).expect("signed before the leak");
    for a in [&at_leak, &new] {
        let e = verify(a, &since, now).unwrap_err();
        assert!(
            matches!(&e, Error::Trust(TrustError::Revoked { since: Some(_), .. })),
            "{e:?}"
        );
    }
}

#[test]
fn a_key_outside_its_validity_window_is_refused() {
    let w = World::new();
    let id = w.author.public().key_id();
    let mut trust = w.trust();
    trust.set_validity(
        id,
        Validity {
            not_before: Some(CREATED),
            not_after: Some(CREATED + 100 * DAY),
        },
    );
    let now = CREATED + 200 * DAY;
    for created in [CREATED, CREATED + 50 * DAY, CREATED + 100 * DAY] {
        verify(&archive(&w, &w.author, created), &trust, now).unwrap();
    }
    for created in [CREATED - 1, CREATED + 100 * DAY + 1] {
        let e = verify(&archive(&w, &w.author, created), &trust, now).unwrap_err();
        assert!(
            matches!(&e, Error::Trust(TrustError::KeyNotValidAt { key_id, .. }) if *key_id == id.to_string()),
            "{created}: {e:?}"
        );
    }
}

#[test]
fn k_of_n_counts_only_valid_unrevoked_signers() {
    let w = World::new();
    let second = w.stranger.public().key_id();
    let file = w.path("k.mseal");
    std::fs::write(&file, archive(&w, &w.author, CREATED)).unwrap();
    modelseal::countersign::add_signature(&file, &w.stranger, &Default::default()).unwrap();
    let cosigned = std::fs::read(&file).unwrap();
    let now = CREATED + DAY;
    let base = || {
        let mut t = w.trust();
        t.add(w.stranger.public());
        t.require_signers(vec!["*".into()], 2);
        t
    };
    verify(&cosigned, &base(), now).expect("2 of 2");

    let mut revoked = base();
    revoked.revoke(
        second,
        Revocation {
            reason: "left the team".into(),
            since: None,
        },
    );
    let e = verify(&cosigned, &revoked, now).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Trust(TrustError::TooFewSignatures {
                required: 2,
                found: 1,
                ..
            })
        ),
        "{e:?}"
    );
    let mut expired = base();
    expired.set_validity(
        second,
        Validity {
            not_before: None,
            not_after: Some(CREATED - 1),
        },
    );
    let e = verify(&cosigned, &expired, now).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Trust(TrustError::TooFewSignatures { found: 1, .. })
        ),
        "{e:?}"
    );
    // A revoked co-signer's signature must still verify: a forged one is refused, not ignored.
    let mut forged = cosigned.clone();
    let n = modelseal::craft::layout(&forged).signatures.end;
    forged[n - 1] ^= 1;
    let e = verify(&forged, &revoked, now).unwrap_err();
    assert!(
        matches!(e, Error::Verify(VerifyError::BadSignature { .. })),
        "{e:?}"
    );
}

#[test]
fn trust_revoke_edits_the_policy_and_verify_refuses() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    for k in ["alice", "bob"] {
        assert_eq!(run(p, &["keygen", "-o", k]).code, 0);
    }
    std::fs::write(p.join("w.bin"), b"weights").unwrap();
    let seal = |version: &str, epoch: &str| {
        let o = ms(p)
            .env("SOURCE_DATE_EPOCH", epoch)
            .args([
                "seal",
                "-k",
                "alice.key",
                "-r",
                "bob.pub",
                "--name",
                "m",
                "--model-version",
                version,
                "-o",
                &format!("m-{version}.mseal"),
                "w.bin",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    seal("1.0.0", "1780000000"); // 2026-05-28
    seal("2.0.0", "1790000000"); // 2026-09-21
    let Out {
        code, stderr: err, ..
    } = run(p, &["trust", "--dir", "store", "add", "alice.pub"]);
    assert_eq!(code, 0, "{err}");
    let id = modelseal::keys::PublicKey::read(&p.join("alice.pub"))
        .unwrap()
        .key_id()
        .to_string();
    let policy = p.join("store/policy.toml");

    // Bad input changes nothing.
    for bad in [
        vec!["--reason", "x", "--since", "2026-07-01T00:00:00+02:00"],
        vec!["--reason", "x", "--since", "yesterday"],
    ] {
        let mut args = vec!["trust", "--dir", "store", "revoke", id.as_str()];
        args.extend(bad);
        let Out {
            code, stderr: err, ..
        } = run(p, &args);
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(!policy.exists());
    }
    let Out {
        code, stderr: err, ..
    } = run(
        p,
        &["trust", "--dir", "store", "revoke", "abc", "--reason", "x"],
    );
    assert_ne!(code, 0, "{err}");
    assert!(!policy.exists());

    let Out {
        code,
        stdout: out,
        stderr: err,
    } = run(
        p,
        &[
            "trust",
            "--dir",
            "store",
            "revoke",
            &id,
            "--reason",
            "laptop \"stolen\"",
            "--since",
            "2026-07-01T00:00:00Z",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    assert!(std::fs::read_to_string(&policy)
        .unwrap()
        .contains("[[revoked]]"));
    let Out { stdout: list, .. } = run(p, &["trust", "--dir", "store", "list"]);
    assert!(list.contains("since 2026-07-01T00:00:00Z"), "{list}");

    // The old release verifies; the one created after `since` is refused, exit 1, two lines.
    let Out {
        code, stderr: err, ..
    } = run(p, &["verify", "-t", "store", "--no-state", "m-1.0.0.mseal"]);
    assert_eq!(code, 0, "{err}");
    let Out {
        code, stderr: err, ..
    } = run(p, &["verify", "-t", "store", "--no-state", "m-2.0.0.mseal"]);
    assert_eq!(code, 1, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].contains("is revoked") && lines[0].contains("laptop \"stolen\""),
        "{err}"
    );
    assert!(
        lines[1].starts_with("hint: ") && lines[1].contains("revoked"),
        "{err}"
    );

    // Revoking twice is refused and leaves the policy as it was.
    let text = std::fs::read_to_string(&policy).unwrap();
    let Out {
        code, stderr: err, ..
    } = run(
        p,
        &[
            "trust", "--dir", "store", "revoke", &id, "--reason", "again",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), text);
}

#[test]
fn validity_windows_and_revocations_are_read_from_policy_toml() {
    let w = World::new();
    let store = w.path("store");
    std::fs::create_dir(&store).unwrap();
    let line = w.author.public().to_line();
    std::fs::write(store.join("alice.pub"), format!("{line}\n")).unwrap();
    let id = w.author.public().key_id();
    let write = |policy: &str| std::fs::write(store.join("policy.toml"), policy).unwrap();
    let load = || {
        let mut t = TrustStore::new();
        t.add_path(&store).map(|()| t)
    };
    let a = archive(&w, &w.author, CREATED); // 2026-05-28T20:26:40Z
    write("[[key]]\nfile = \"alice.pub\"\nnot_after = 2026-01-01T00:00:00Z\n");
    let e = verify(&a, &load().unwrap(), CREATED + 1).unwrap_err();
    assert!(
        matches!(e, Error::Trust(TrustError::KeyNotValidAt { .. })),
        "{e:?}"
    );
    write(&format!(
        "[[key]]\nid = \"{id}\"\nnot_before = 2026-01-01T00:00:00Z\nmodels = [\"iris-*\"]\n"
    ));
    verify(&a, &load().unwrap(), CREATED + 1).unwrap();
    write(&format!("[[revoked]]\nid = \"{id}\"\nreason = \"leak\"\n"));
    let e = verify(&a, &load().unwrap(), CREATED + 1).unwrap_err();
    assert!(
        matches!(e, Error::Trust(TrustError::Revoked { .. })),
        "{e:?}"
    );
    // Malformed rules are refused at load, naming the problem.
    for (policy, needle) in [
        ("[[revoked]]\nid = \"xyz\"\nreason = \"r\"\n", "not a key id"),
        (
            &*format!("[[revoked]]\nid = \"{id}\"\nreason = \"r\"\nsince = 2026-01-01\n"),
            "full date-time",
        ),
        (
            &*format!("[[key]]\nid = \"{id}\"\nnot_before = 2026-02-01T00:00:00Z\nnot_after = 2026-01-01T00:00:00Z\n"),
            "not_before is after not_after",
        ),
        (&*format!("[[key]]\nid = \"{id}\"\n"), "says nothing"),
        (
            &*format!("[[revoked]]\nid = \"{id}\"\nreason = \"a\"\n[[revoked]]\nid = \"{id}\"\nreason = \"b\"\n"),
            "revoked twice",
        ),
    ] {
        write(policy);
        let e = load().unwrap_err();
        assert!(
            matches!(&e, Error::Trust(TrustError::BadPolicy { detail, .. }) if detail.contains(needle)),
            "{policy}: {e:?}"
        );
    }
}
