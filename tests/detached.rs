//! Detached co-signatures (FORMAT.md §5.1) without a registry: what `select` adds and skips, and
//! that the rewritten archive verifies on its own under a k-of-n policy.

mod common;

use common::*;
use modelseal::detached::{self, Skipped};
use modelseal::error::{TrustError, VerifyError};
use modelseal::keys::SecretKey;
use modelseal::open::{self, ReadOptions};
use modelseal::verify::read_header;
use modelseal::{Error, Limits};

fn verify(bytes: &[u8], trust: &modelseal::trust::TrustStore) -> Result<open::Report, Error> {
    let opts = ReadOptions {
        now: Some(CREATED + 10),
        ..ReadOptions::new(trust)
    };
    open::verify_reader(bytes, &opts)
}

#[test]
fn select_adds_only_new_trusted_valid_signatures_over_this_header_and_rewrite_verifies() {
    let w = World::new();
    let input = w.write("m.bin", b"weights");
    let archive = w.seal_for_reader(&[input], "m.mseal");
    let bytes = std::fs::read(&archive).unwrap();
    let (bob, carol) = (SecretKey::generate(), SecretKey::generate());
    let limits = Limits::default();
    let sign = |k: &SecretKey| detached::sign_file(&archive, k, &limits).unwrap().1;
    let (b, c, a) = (sign(&bob), sign(&carol), sign(&w.author));
    let mut forged = c.clone();
    forged.entry.signature[0] ^= 0x80;
    let mut trust = w.trust();
    trust.add(bob.public());
    trust.add(carol.public());
    trust.require_signers(vec!["*".into()], 3);
    assert!(matches!(
        verify(&bytes, &trust).unwrap_err(),
        Error::Trust(TrustError::TooFewSignatures { found: 1, .. })
    ));

    let mut input = bytes.as_slice();
    let h = read_header(&mut input, &limits).unwrap();
    let s = detached::select(
        &h,
        &[b.clone(), a, b.clone(), forged, c.clone()],
        &trust,
        &limits,
    );
    assert_eq!(s.added.len(), 2);
    let why: Vec<Skipped> = s.skipped.iter().map(|(_, w)| *w).collect();
    assert_eq!(
        why,
        [
            Skipped::AlreadyPresent, // the author's own, already in the block
            Skipped::AlreadyPresent, // bob twice
            Skipped::BadSignature,
        ]
    );
    let mut merged = Vec::new();
    detached::rewrite(&h, &s.added, &mut input, &mut merged).unwrap();
    let r = verify(&merged, &trust).unwrap();
    assert_eq!(r.header.cosigners().len(), 2);

    // A full signature block: the rest are skipped, not an error.
    let one = Limits {
        max_signatures: 2,
        ..Limits::default()
    };
    let s = detached::select(&h, &[b, c], &trust, &one);
    assert_eq!(s.added.len(), 1);
    assert_eq!(s.skipped[0].1, Skipped::TooMany);

    // A signature whose payload check fails is never made.
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 1);
    let damaged = w.path("cut.mseal");
    std::fs::write(&damaged, &cut).unwrap();
    let e = detached::sign_file(&damaged, &bob, &limits).unwrap_err();
    assert!(
        matches!(e, Error::Verify(VerifyError::Truncated { .. })),
        "{e:?}"
    );
}
