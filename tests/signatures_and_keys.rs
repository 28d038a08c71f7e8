//! THREATS.md checklist 10-14: signatures, trust and key files.

mod common;

use common::*;
use modelseal::craft::{self, layout};
use modelseal::error::{FormatError, KeyError, VerifyError};
use modelseal::keys::{PublicKey, SecretKey, SharedKey};
use modelseal::trust::TrustStore;
use modelseal::Error;

fn sample(w: &World) -> Vec<u8> {
    let input = w.write("m.bin", &bytes(20_000, 11));
    std::fs::read(w.seal_for_reader(&[input], "m.mseal")).unwrap()
}

#[test]
fn a_signer_outside_the_trust_store_is_refused_even_when_it_signed_correctly() {
    let w = World::new();
    let a = sample(&w);
    // Re-signed by the stranger, naming the stranger as signer: a perfectly valid signature by a
    // key the reader does not trust.
    let by_stranger = craft::resign(&a, &w.stranger, |h| {
        h.signer = w.stranger.public().key_id().0
    });
    assert_refused!(
        w.open_bytes_to_dir_err(&by_stranger),
        Error::Verify(VerifyError::UntrustedSigner { .. })
    );
    assert_refused!(
        w.verify_bytes(&by_stranger).unwrap_err(),
        Error::Verify(VerifyError::UntrustedSigner { .. })
    );
    // Naming the trusted author as signer but signed by the stranger: the author's signature is
    // missing.
    let forged = craft::resign(&a, &w.stranger, |_| {});
    assert_refused!(
        w.open_bytes_to_dir_err(&forged),
        Error::Verify(VerifyError::MissingSignature { .. })
    );
    // An empty trust store trusts nobody.
    let empty = TrustStore::new();
    let opts = modelseal::open::ReadOptions::new(&empty);
    assert_refused!(
        modelseal::open::verify_reader(&a[..], &opts).unwrap_err(),
        Error::Verify(VerifyError::UntrustedSigner { .. })
    );
}

#[test]
fn signature_block_count_duplicates_and_cosigners() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    // A count of 2 makes the reader take 80 payload bytes as a second entry; the payload is then
    // short: refused, never misread.
    let mut two = a.clone();
    two[l.signatures.start] = 2;
    assert_refused!(
        w.open_bytes_to_dir_err(&two),
        Error::Verify(VerifyError::Truncated { .. })
    );
    // Zero signatures.
    let mut zero = a.clone();
    zero[l.signatures.start] = 0;
    assert_refused!(
        w.open_bytes_to_dir_err(&zero),
        Error::Format(FormatError::SignatureCount { found: 0, .. })
    );
    // The same entry twice.
    let entry = a[l.signatures.start + 1..l.signatures.end].to_vec();
    let mut dup = a[..l.signatures.start].to_vec();
    dup.push(2);
    dup.extend_from_slice(&entry);
    dup.extend_from_slice(&entry);
    dup.extend_from_slice(&a[l.payload.clone()]);
    assert_refused!(
        w.open_bytes_to_dir_err(&dup),
        Error::Verify(VerifyError::DuplicateSignature { .. })
    );
    // A second, bad signature by another trusted key is refused, not ignored.
    let cosigner = SecretKey::generate();
    let mut bad_co = a[..l.signatures.start].to_vec();
    bad_co.push(2);
    bad_co.extend_from_slice(&entry);
    bad_co.extend_from_slice(&cosigner.public().key_id().0);
    bad_co.extend_from_slice(&[0x55; 64]);
    bad_co.extend_from_slice(&a[l.payload.clone()]);
    let mut trust = w.trust();
    trust.add(cosigner.public());
    let mut opts = modelseal::open::ReadOptions::new(&trust);
    opts.now = Some(CREATED + 1);
    assert_refused!(
        modelseal::open::verify_reader(&bad_co[..], &opts).unwrap_err(),
        Error::Verify(VerifyError::BadSignature { .. })
    );
    // ... while an entry by an untrusted key is ignored.
    let stranger_only = modelseal::open::verify_reader(
        &bad_co[..],
        &modelseal::open::ReadOptions {
            trust: &w.trust(),
            ..opts.clone()
        },
    );
    assert!(stranger_only.is_ok(), "{stranger_only:?}");
}

#[test]
fn unknown_suite_and_stanza_identifiers_are_refused_even_when_signed() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    let mut header = a[l.header.clone()].to_vec();
    header[0] = 2; // suite 2 does not exist
    let re = craft::assemble(&header, &w.author, &a[l.payload.clone()]);
    assert_refused!(
        w.open_bytes_to_dir_err(&re),
        Error::Format(FormatError::Decode { what: "header", .. })
    );
    // Suite 1 (public) over an encrypted archive's fields, even signed by the trusted author:
    // a public header may carry no recipient.
    let mut header = a[l.header.clone()].to_vec();
    header[0] = 1;
    let re = craft::assemble(&header, &w.author, &a[l.payload.clone()]);
    assert_refused!(
        w.open_bytes_to_dir_err(&re),
        Error::Format(FormatError::SuiteFields {
            field: "no recipients",
            ..
        })
    );
    let mut header = a[l.header.clone()].to_vec();
    header[4 + 16 + 8] = 7; // stanza variant 7
    let re = craft::assemble(&header, &w.author, &a[l.payload.clone()]);
    assert_refused!(
        w.open_bytes_to_dir_err(&re),
        Error::Format(FormatError::Decode { what: "header", .. })
    );
}

#[test]
fn a_header_with_trailing_bytes_is_refused_even_when_signed() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    let mut header = a[l.header.clone()].to_vec();
    header.push(0);
    let re = craft::assemble(&header, &w.author, &a[l.payload.clone()]);
    assert_refused!(
        w.open_bytes_to_dir_err(&re),
        Error::Format(FormatError::TrailingBytes {
            what: "header",
            extra: 1
        })
    );
}

#[cfg(unix)]
fn chmod(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn key_files_wrong_type_bad_checksum_truncated_and_world_readable() {
    let w = World::new();
    let key = SecretKey::generate();
    let (k, p) = key.write_pair(&w.path("alice")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(PublicKey::read(&p).unwrap(), key.public());
    // Overwriting is refused.
    assert_refused!(
        key.write_pair(&w.path("alice")).unwrap_err(),
        Error::Key(KeyError::Exists { .. })
    );
    // A public key where a secret key is expected, and the other way round.
    assert_refused!(
        SecretKey::read(&p).unwrap_err(),
        Error::Key(KeyError::WrongType { .. })
    );
    assert_refused!(
        PublicKey::read(&k).unwrap_err(),
        Error::Key(KeyError::WrongType { .. })
    );
    let shared = SharedKey::generate().write(&w.path("ci")).unwrap();
    assert_refused!(
        SecretKey::read(&shared).unwrap_err(),
        Error::Key(KeyError::WrongType { .. })
    );
    // One character changed: the checksum catches it.
    let text = std::fs::read_to_string(&p).unwrap();
    let line = text.lines().find(|l| !l.starts_with('#')).unwrap();
    let pos = line.len() - 3;
    let mut changed = line.to_string();
    changed.replace_range(
        pos..pos + 1,
        if &line[pos..pos + 1] == "A" { "B" } else { "A" },
    );
    let bad = w.write("bad.pub", changed.as_bytes());
    assert_refused!(
        PublicKey::read(&bad).unwrap_err(),
        Error::Key(KeyError::BadChecksum { .. } | KeyError::Malformed { .. })
    );
    // Truncated.
    let short = w.write("short.pub", &line.as_bytes()[..line.len() - 10]);
    assert_refused!(
        PublicKey::read(&short).unwrap_err(),
        Error::Key(KeyError::Malformed { .. })
    );
    // Two keys in one file.
    let two = w.write("two.pub", format!("{line}\n{line}\n").as_bytes());
    assert_refused!(
        PublicKey::read(&two).unwrap_err(),
        Error::Key(KeyError::KeyLineCount { found: 2, .. })
    );
    // Oversize.
    let big = w.write("big.pub", &vec![b'#'; 5000]);
    assert_refused!(
        PublicKey::read(&big).unwrap_err(),
        Error::Key(KeyError::TooLarge { .. })
    );
    // A secret key readable by others.
    #[cfg(unix)]
    {
        chmod(&k, 0o644);
        assert_refused!(
            SecretKey::read(&k).unwrap_err(),
            Error::Key(KeyError::InsecurePermissions { mode: 0o644, .. })
        );
        chmod(&shared, 0o640);
        assert_refused!(
            SharedKey::read(&shared).unwrap_err(),
            Error::Key(KeyError::InsecurePermissions { .. })
        );
    }
}

#[test]
fn weak_public_keys_are_refused_at_import() {
    use base64::Engine;
    let w = World::new();
    let good = SecretKey::generate().public();
    let line = good.to_line();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(line.split_once(':').unwrap().1)
        .unwrap();
    let encode = |ed: [u8; 32], x: [u8; 32]| {
        let mut payload = ed.to_vec();
        payload.extend_from_slice(&x);
        let mut check_input = b"modelseal-pub-v1:".to_vec();
        check_input.extend_from_slice(&payload);
        payload.extend_from_slice(&modelseal::crypto::sha256(&check_input)[..4]);
        format!(
            "modelseal-pub-v1:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload)
        )
    };
    let ed: [u8; 32] = raw[..32].try_into().unwrap();
    let x: [u8; 32] = raw[32..64].try_into().unwrap();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    // The Ed25519 identity (small order), and the X25519 zero point and a low-order point.
    let cases = [
        (identity, x, "ed25519"),
        (ed, [0u8; 32], "x25519"),
        (
            ed,
            {
                let mut p = [0u8; 32];
                p[0] = 1;
                p
            },
            "x25519",
        ),
    ];
    for (e, xx, kind) in cases {
        let f = w.write("weak.pub", encode(e, xx).as_bytes());
        let err = PublicKey::read(&f).unwrap_err();
        assert_refused!(err, Error::Key(KeyError::WeakKey { kind: k, .. }) if *k == kind);
    }
    // Sanity: the encoder above produces keys that do parse.
    let f = w.write("ok.pub", encode(ed, x).as_bytes());
    assert_eq!(PublicKey::read(&f).unwrap(), good);
}
