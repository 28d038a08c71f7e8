//! THREATS.md checklist 1-5 and 8: every region of an archive altered, truncated, extended,
//! reordered or re-keyed is refused with its exact error, and nothing is left on disk.

mod common;

use common::*;
use modelseal::craft::{self, layout};
use modelseal::error::{DecryptError, FormatError, VerifyError};
use modelseal::Error;

/// An archive of 4 chunks (50 000 incompressible bytes plus tar framing), stored uncompressed.
fn sample(w: &World) -> Vec<u8> {
    let input = w.write("m.bin", &bytes(50_000, 9));
    std::fs::read(w.seal_for_reader(&[input], "m.mseal")).unwrap()
}

fn flip(mut a: Vec<u8>, at: usize) -> Vec<u8> {
    a[at] ^= 0x01;
    a
}

#[test]
fn the_sample_is_valid_and_has_several_chunks() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    assert!(l.parsed.chunk_count >= 4, "{}", l.parsed.chunk_count);
    w.open_bytes(&a).unwrap();
}

#[test]
fn bit_flip_in_magic() {
    let w = World::new();
    let a = sample(&w);
    for i in 0..8 {
        assert_refused!(
            w.open_bytes_to_dir_err(&flip(a.clone(), i)),
            Error::Format(FormatError::BadMagic { .. })
        );
    }
}

#[test]
fn bit_flip_in_version_and_header_length() {
    let w = World::new();
    let a = sample(&w);
    for i in 8..10 {
        assert_refused!(
            w.open_bytes_to_dir_err(&flip(a.clone(), i)),
            Error::Format(FormatError::UnsupportedVersion { .. })
        );
    }
    let mut big = a.clone();
    big[10] = 0x7f;
    assert_refused!(
        w.open_bytes_to_dir_err(&big),
        Error::Format(FormatError::HeaderTooLarge { .. })
    );
    // A shorter length cuts the header: the canonical decoder runs out of bytes, never accepts.
    for i in 12..14 {
        assert_refused!(
            w.open_bytes_to_dir_err(&flip(a.clone(), i)),
            Error::Format(FormatError::Decode { what: "header", .. })
        );
    }
}

#[test]
fn bit_flip_anywhere_in_the_header_is_refused_before_any_payload_is_read() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    // The suite (bytes 0..4 of the header) and the signer key id (4..20) have one refusal each;
    // every other byte is refused by the header's structural checks, or else by the signature.
    let suite = l.header.start..l.header.start + 4;
    let signer = suite.end..suite.end + 16;
    let mut by_signature = 0;
    for i in l.header.clone() {
        let flipped = flip(a.clone(), i);
        let e = w.verify_bytes(&flipped).unwrap_err();
        if i == suite.start {
            // Suite 0 → 1 (public): this header's recipients, salt and commitment break its rules.
            assert!(
                matches!(
                    &e,
                    Error::Format(FormatError::SuiteFields {
                        field: "no recipients",
                        ..
                    })
                ),
                "byte {i}: {e:?}"
            );
        } else if suite.contains(&i) {
            assert!(
                matches!(&e, Error::Format(FormatError::Decode { what: "header", detail }) if detail.contains("Suite")),
                "byte {i}: {e:?}"
            );
        } else if signer.contains(&i) {
            let id = hex::encode(&flipped[signer.clone()]);
            assert!(
                matches!(&e, Error::Verify(VerifyError::UntrustedSigner { key_id }) if *key_id == id),
                "byte {i}: {e:?}"
            );
        } else {
            assert!(
                matches!(
                    e,
                    Error::Format(
                        FormatError::Decode { what: "header", .. }
                            | FormatError::InconsistentSizes { .. }
                            | FormatError::InvalidModelName { .. }
                            | FormatError::InvalidModelVersion { .. }
                            | FormatError::TrailingBytes { .. }
                    ) | Error::Verify(VerifyError::BadSignature { .. })
                ),
                "byte {i}: {e:?}"
            );
            by_signature += usize::from(matches!(e, Error::Verify(_)));
        }
    }
    assert!(
        by_signature > 100,
        "most flips are caught by the signature: {by_signature}"
    );
    // The same through `open`, for a sample of positions, checking the disk.
    // `open` refuses with exactly what `verify` said: the header is checked first either way.
    for i in l.header.clone().step_by(17) {
        let flipped = flip(a.clone(), i);
        let e = w.open_bytes_to_dir_err(&flipped);
        let v = w.verify_bytes(&flipped).unwrap_err();
        assert_eq!(format!("{e:?}"), format!("{v:?}"), "byte {i}");
    }
}

#[test]
fn bit_flip_in_each_recipient_stanza() {
    let w = World::new();
    let rp = [w.reader.public(), w.stranger.public()];
    let input = w.write("m.bin", b"two recipients");
    let archive = w.seal_with(
        &[input],
        "m.mseal",
        w.options(
            rp.iter()
                .map(modelseal::seal::Recipient::PublicKey)
                .collect(),
            modelseal::seal::CompressionChoice::Auto,
        ),
    );
    let a = std::fs::read(archive).unwrap();
    let l = layout(&a);
    // Stanzas follow: suite (4), signer (16), recipient count (8); each is variant (4) + 32 + 48.
    let first = l.header.start + 4 + 16 + 8;
    for s in 0..2 {
        let base = first + s * 84;
        for off in [0, 4, 20, 35, 36, 60, 83] {
            // Each stanza field (even the variant: both variants are 80 bytes) is caught by the
            // signature over the header.
            assert_refused!(
                w.open_bytes_to_dir_err(&flip(a.clone(), base + off)),
                Error::Verify(VerifyError::BadSignature { .. })
            );
        }
    }
}

#[test]
fn bit_flip_in_the_signature_block() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    // The count byte: one signature flipped to none.
    assert_refused!(
        w.open_bytes_to_dir_err(&flip(a.clone(), l.signatures.start)),
        Error::Format(FormatError::SignatureCount { found: 0, .. })
    );
    // The key id of the entry: no signature by the signer remains.
    assert_refused!(
        w.open_bytes_to_dir_err(&flip(a.clone(), l.signatures.start + 1)),
        Error::Verify(VerifyError::MissingSignature { .. })
    );
    // Every byte of the signature itself.
    for i in l.signatures.start + 17..l.signatures.end {
        let e = w.verify_bytes(&flip(a.clone(), i)).unwrap_err();
        assert_refused!(e, Error::Verify(VerifyError::BadSignature { .. }));
    }
    assert_refused!(
        w.open_bytes_to_dir_err(&flip(a.clone(), l.signatures.end - 1)),
        Error::Verify(VerifyError::BadSignature { .. })
    );
}

#[test]
fn bit_flip_in_salt_commitment_each_chunk_and_each_tag() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    let p = l.payload.start;
    let mut positions = vec![p, p + 23, p + 24, p + 55];
    let chunks = l.parsed.chunk_count as usize;
    for c in 0..chunks {
        let start = p + 56 + c * 16400;
        let end = (start + 16400).min(l.payload.end);
        positions.extend([start, end - 17, end - 16, end - 1]);
    }
    for i in positions {
        assert_refused!(
            w.open_bytes_to_dir_err(&flip(a.clone(), i)),
            Error::Verify(VerifyError::PayloadDigestMismatch { .. })
        );
        assert_refused!(
            w.verify_bytes(&flip(a.clone(), i)).unwrap_err(),
            Error::Verify(VerifyError::PayloadDigestMismatch { .. })
        );
    }
}

#[test]
fn truncation_at_every_chunk_boundary_mid_tag_and_final_chunk_dropped() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    let p = l.payload.start;
    let mut cuts = vec![0, 13, l.header.end, l.signatures.end - 1, p, p + 30, p + 56];
    for c in 1..l.parsed.chunk_count as usize {
        cuts.push(p + 56 + c * 16400); // at a boundary: the final chunk(s) dropped
        cuts.push(p + 56 + c * 16400 - 8); // mid-tag
    }
    cuts.push(l.payload.end - 1);
    for cut in cuts {
        let e = w.open_bytes_to_dir_err(&a[..cut]);
        if cut < p {
            assert_refused!(e, Error::Format(FormatError::Truncated { .. }));
        } else {
            assert_refused!(e, Error::Verify(VerifyError::Truncated { .. }));
        }
    }
}

#[test]
fn extra_bytes_or_an_extra_valid_chunk_after_the_end() {
    let w = World::new();
    let a = sample(&w);
    let mut longer = a.clone();
    longer.push(0);
    assert_refused!(
        w.open_bytes_to_dir_err(&longer),
        Error::Verify(VerifyError::TrailingData)
    );
    assert_refused!(
        w.verify_bytes(&longer).unwrap_err(),
        Error::Verify(VerifyError::TrailingData)
    );
    // A copy of a genuine chunk appended.
    let l = layout(&a);
    let mut extended = a.clone();
    extended.extend_from_slice(&a[l.payload.start + 56..l.payload.start + 56 + 16400]);
    assert_refused!(
        w.open_bytes_to_dir_err(&extended),
        Error::Verify(VerifyError::TrailingData)
    );
}

#[test]
fn chunks_swapped_or_duplicated() {
    let w = World::new();
    let a = sample(&w);
    let l = layout(&a);
    let c = |i: usize| l.payload.start + 56 + i * 16400;
    let mut swapped = a.clone();
    let (c0, c1) = (a[c(0)..c(1)].to_vec(), a[c(1)..c(2)].to_vec());
    swapped[c(0)..c(1)].copy_from_slice(&c1);
    swapped[c(1)..c(2)].copy_from_slice(&c0);
    let mut duplicated = a.clone();
    duplicated[c(1)..c(2)].copy_from_slice(&c0);
    for bad in [&swapped, &duplicated] {
        // As is: not the signed payload.
        assert_refused!(
            w.open_bytes_to_dir_err(bad),
            Error::Verify(VerifyError::PayloadDigestMismatch { .. })
        );
        // Re-signed by the trusted signer with a matching digest: the per-chunk nonce still catches it.
        let resigned = craft::resign(bad, &w.author, |h| {
            h.payload_digest = *blake3::hash(&bad[l.payload.clone()]).as_bytes();
        });
        assert_refused!(
            w.open_bytes_to_dir_err(&resigned),
            Error::Decrypt(DecryptError::ChunkAuthentication { index: 0 | 1 })
        );
    }
}

#[test]
fn wrong_key_is_refused_at_the_commitment_before_any_chunk() {
    // A signer who wraps one key for the recipient and encrypts the payload under another: the
    // recipient unwraps a key, but it does not match the signed commitment.
    let w = World::new();
    let a = sample(&w);
    let input = w.write("other.bin", b"other");
    let b = std::fs::read(w.seal_for_reader(&[input], "other.mseal")).unwrap();
    let other_recipients = layout(&b).parsed.recipients;
    let mixed = craft::resign(&a, &w.author, |h| h.recipients = other_recipients);
    assert_refused!(
        w.open_bytes_to_dir_err(&mixed),
        Error::Decrypt(DecryptError::KeyCommitmentMismatch)
    );
}

#[test]
fn chunk_count_and_sizes_above_the_limits_are_refused_before_allocating() {
    let w = World::new();
    let a = sample(&w);
    let huge = craft::resign(&a, &w.author, |h| {
        h.plaintext_size = 1 << 50;
        h.chunk_count = modelseal::crypto::chunked::chunk_count(1 << 50);
        h.ciphertext_size = modelseal::crypto::chunked::ciphertext_len(1 << 50).unwrap();
    });
    assert_refused!(
        w.open_bytes_to_dir_err(&huge),
        Error::Format(FormatError::TooManyChunks { .. })
    );
    let inconsistent = craft::resign(&a, &w.author, |h| h.chunk_count += 1);
    assert_refused!(
        w.open_bytes_to_dir_err(&inconsistent),
        Error::Format(FormatError::InconsistentSizes { .. })
    );
    let overflow = craft::resign(&a, &w.author, |h| {
        h.plaintext_size = u64::MAX;
        h.chunk_count = modelseal::crypto::chunked::chunk_count(u64::MAX);
    });
    assert_refused!(w.open_bytes_to_dir_err(&overflow), Error::Format(_));
}
