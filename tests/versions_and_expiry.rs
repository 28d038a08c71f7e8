//! THREATS.md checklist 15 and 18: format versions, expiry against an injectable clock, and values
//! at the extremes.

mod common;

use common::*;
use modelseal::craft::{self, layout};
use modelseal::error::{FormatError, UsageError, VerifyError};
use modelseal::open::{self, ReadOptions};
use modelseal::seal::{CompressionChoice, Recipient};
use modelseal::Error;

fn sample(w: &World) -> Vec<u8> {
    let input = w.write("m.bin", b"model");
    std::fs::read(w.seal_for_reader(&[input], "m.mseal")).unwrap()
}

#[test]
fn unknown_and_newer_format_versions_name_found_and_supported() {
    let w = World::new();
    let a = sample(&w);
    for v in [0u16, 2, 3, 0xffff] {
        let mut b = a.clone();
        b[8..10].copy_from_slice(&v.to_be_bytes());
        let e = w.open_bytes_to_dir_err(&b);
        assert_refused!(e, Error::Format(FormatError::UnsupportedVersion { found, supported: 1 }) if *found == v);
        assert!(
            e.to_string()
                .contains(&format!("unsupported format version {v}")),
            "{e}"
        );
    }
}

#[test]
fn oversize_header_is_refused_before_it_is_read() {
    let w = World::new();
    let a = sample(&w);
    let mut b = a.clone();
    b[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_refused!(
        w.open_bytes_to_dir_err(&b),
        Error::Format(FormatError::HeaderTooLarge {
            found: 4294967295,
            ..
        })
    );
    b[10..14].copy_from_slice(&0u32.to_be_bytes());
    assert_refused!(
        w.open_bytes_to_dir_err(&b),
        Error::Format(FormatError::HeaderTooLarge { found: 0, .. })
    );
}

#[test]
fn expiry_is_checked_against_the_callers_clock() {
    let w = World::new();
    let input = w.write("m.bin", b"model");
    let rp = w.reader.public();
    let mut opts = w.options(vec![Recipient::PublicKey(&rp)], CompressionChoice::Auto);
    opts.expires = Some(CREATED + 100);
    let archive = w.seal_with(&[input], "m.mseal", opts);
    let bytes = std::fs::read(&archive).unwrap();
    let trust = w.trust();
    let at = |now| ReadOptions {
        now: Some(now),
        ..ReadOptions::new(&trust)
    };
    assert!(open::verify_reader(&bytes[..], &at(CREATED + 99)).is_ok());
    for now in [CREATED + 100, CREATED + 101, u64::MAX] {
        let e = open::verify_reader(&bytes[..], &at(now)).unwrap_err();
        assert_refused!(e, Error::Verify(VerifyError::Expired { .. }));
    }
    let before = listing(w.dir.path());
    let e = open::open_file(
        &archive,
        open::Decryption::Identity(&w.reader),
        &w.path("out"),
        &at(CREATED + 100),
        Default::default(),
    )
    .unwrap_err();
    assert_refused!(e, Error::Verify(VerifyError::Expired { .. }));
    assert_eq!(listing(w.dir.path()), before);
}

#[test]
fn expiry_before_creation_is_refused_when_sealing_and_when_reading() {
    let w = World::new();
    let input = w.write("m.bin", b"model");
    let rp = w.reader.public();
    let mut opts = w.options(vec![Recipient::PublicKey(&rp)], CompressionChoice::Auto);
    opts.expires = Some(CREATED);
    let inputs = modelseal::seal::collect_inputs(&[input], &Default::default()).unwrap();
    let e = modelseal::seal::seal_file(&inputs, &opts, &w.path("x.mseal"), Default::default())
        .unwrap_err();
    assert_refused!(e, Error::Usage(UsageError::InvalidTime { .. }));
    assert!(!w.path("x.mseal").exists());
    let a = sample(&w);
    let re = craft::resign(&a, &w.author, |h| h.expires = Some(h.created));
    assert_refused!(
        w.open_bytes_to_dir_err(&re),
        Error::Format(FormatError::InconsistentSizes { .. })
    );
}

#[test]
fn extreme_values_do_not_overflow_or_panic() {
    let w = World::new();
    let a = sample(&w);
    for (created, expires) in [
        (u64::MAX - 1, Some(u64::MAX)),
        (0, Some(1)),
        (u64::MAX, None),
    ] {
        let re = craft::resign(&a, &w.author, |h| {
            h.created = created;
            h.expires = expires;
        });
        let e = w.open_bytes_to_dir_err(&re);
        if created > modelseal::limits::MAX_TIME {
            // Past 9999-12-31T23:59:59Z: a malformed header, refused before the signature.
            assert_refused!(e, Error::Format(FormatError::InconsistentSizes { .. }));
            assert_refused!(
                w.verify_bytes(&re).unwrap_err(),
                Error::Format(FormatError::InconsistentSizes { .. })
            );
        } else {
            // The manifest's creation time no longer matches the header's, which open refuses.
            let _ = w.verify_bytes(&re);
            assert!(matches!(e, Error::Verify(_) | Error::Content(_)), "{e:?}");
        }
    }
    let huge_version = craft::resign(&a, &w.author, |h| {
        h.model_version = "18446744073709551615.18446744073709551615.18446744073709551615".into()
    });
    let e = w.open_bytes_to_dir_err(&huge_version);
    assert!(matches!(e, Error::Content(_) | Error::Format(_)), "{e:?}");
    let bad_version = craft::resign(&a, &w.author, |h| h.model_version = "1.0".into());
    assert_refused!(
        w.open_bytes_to_dir_err(&bad_version),
        Error::Format(FormatError::InvalidModelVersion { .. })
    );
    let l = layout(&a);
    assert_eq!(l.parsed.created, CREATED);
}
