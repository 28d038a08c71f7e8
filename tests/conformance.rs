//! THREATS.md checklist 6 and 9: the real Wycheproof vectors (AES-GCM, Ed25519, X25519 and the
//! c2sp chunked-encryption "Cobblestone" vectors) through our own code paths, and a differential
//! test of ring's AES-256-GCM against the independent aes-gcm crate.

use std::io::Read;

use modelseal::crypto::{self, chunked, sign, wrap};
use modelseal::error::DecryptError;
use modelseal::Error;
use proptest::prelude::*;
use wycheproof::TestResult;

fn unzlib(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn sha512(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA512, data)
        .as_ref()
        .to_vec()
}

#[test]
fn c2sp_chunked_encryption_vectors_all_pass() {
    use wycheproof::chunked_encryption::{TestName, TestSet};
    let set = TestSet::load(TestName::Cobblestone256).unwrap();
    let mut run = 0;
    for group in &set.test_groups {
        assert_eq!(
            format!("{:?}", group.hash),
            "Sha2_512",
            "Cobblestone-256 uses HKDF-SHA-512"
        );
        for t in &group.tests {
            run += 1;
            let ct = unzlib(&t.ct);
            let result = chunked::decrypt_to_vec(&ct, &t.key, &t.ctx, 1 << 32);
            match t.result {
                TestResult::Valid => {
                    let msg =
                        result.unwrap_or_else(|e| panic!("tc {} ({}): {e}", t.tc_id, t.comment));
                    assert_eq!(Some(msg.len()), t.msg_length, "tc {}", t.tc_id);
                    assert_eq!(
                        sha512(&msg),
                        t.msg_sha512.as_ref().unwrap().to_vec(),
                        "tc {}",
                        t.tc_id
                    );
                    // Encryption: with the vector's salt we reproduce the ciphertext byte for byte,
                    // and raw mode with the vector's derived key and base nonce too.
                    let key: &[u8; 32] = (&t.key[..]).try_into().unwrap();
                    let salt: &[u8; 24] = ct[..24].try_into().unwrap();
                    assert_eq!(
                        chunked::encrypt_to_vec(&msg, key, salt, &t.ctx),
                        ct,
                        "tc {} re-encryption",
                        t.tc_id
                    );
                    let aead_key: &[u8; 32] =
                        (&t.aead_key.as_ref().unwrap()[..]).try_into().unwrap();
                    let nonce: &[u8; 12] =
                        (&t.base_nonce.as_ref().unwrap()[..]).try_into().unwrap();
                    assert_eq!(
                        chunked::raw_encrypt_for_tests(&msg, aead_key, nonce),
                        ct[56..],
                        "tc {} raw mode",
                        t.tc_id
                    );
                }
                _ => {
                    let err =
                        result.expect_err(&format!("tc {} ({}) must fail", t.tc_id, t.comment));
                    let flags = format!("{:?}", t.flags);
                    if flags.contains("HeaderFailure") {
                        // Rejected while processing the header, before any chunk is decrypted.
                        assert!(
                            matches!(
                                err,
                                Error::Decrypt(
                                    DecryptError::KeyCommitmentMismatch
                                        | DecryptError::InvalidKeySize { .. }
                                        | DecryptError::Truncated { .. }
                                )
                            ),
                            "tc {}: {err:?}",
                            t.tc_id
                        );
                    }
                    // Streaming: at most the valid prefix comes out, then errors, and keep coming.
                    if let (Ok(key), Some(len)) = (<&[u8; 32]>::try_from(&t.key[..]), t.msg_length)
                    {
                        let mut d = chunked::Decryptor::new(&ct[..], key, &t.ctx, 1 << 32).unwrap();
                        let mut out = Vec::new();
                        let mut buf = [0u8; 4096];
                        let failure = loop {
                            match d.read(&mut buf) {
                                Ok(0) => panic!("tc {}: invalid ciphertext ended cleanly", t.tc_id),
                                Ok(n) => out.extend_from_slice(&buf[..n]),
                                Err(e) => break e,
                            }
                        };
                        let _ = failure;
                        assert!(out.len() <= len, "tc {}", t.tc_id);
                        assert_eq!(
                            sha512(&out),
                            t.msg_sha512.as_ref().unwrap().to_vec(),
                            "tc {}",
                            t.tc_id
                        );
                        assert!(
                            d.read(&mut buf).is_err(),
                            "tc {}: must keep failing",
                            t.tc_id
                        );
                    }
                }
            }
        }
    }
    assert_eq!(run, 35);
}

#[test]
fn wycheproof_aes_256_gcm_through_ring() {
    use wycheproof::aead::{TestName, TestSet};
    let set = TestSet::load(TestName::AesGcm).unwrap();
    let (mut run, mut skipped) = (0, 0);
    for group in &set.test_groups {
        // ring, like our format, takes 256-bit keys here with 96-bit nonces and 128-bit tags only.
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            skipped += group.tests.len();
            continue;
        }
        for t in &group.tests {
            run += 1;
            let key: &[u8; 32] = (&t.key[..]).try_into().unwrap();
            let nonce: &[u8; 12] = (&t.nonce[..]).try_into().unwrap();
            let mut ct_tag = t.ct.to_vec();
            ct_tag.extend_from_slice(&t.tag);
            let opened = crypto::aes256gcm_open_raw(key, nonce, &t.aad, &ct_tag);
            match t.result {
                TestResult::Invalid => assert!(opened.is_none(), "tc {} must fail", t.tc_id),
                _ => {
                    assert_eq!(opened.as_deref(), Some(&t.pt[..]), "tc {}", t.tc_id);
                    assert_eq!(
                        crypto::aes256gcm_seal_raw(key, nonce, &t.aad, &t.pt),
                        ct_tag,
                        "tc {}",
                        t.tc_id
                    );
                }
            }
        }
    }
    assert!(
        run > 50,
        "only {run} AES-256-GCM vectors ran ({skipped} of other sizes skipped)"
    );
}

#[test]
fn wycheproof_ed25519_through_strict_verification() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut run = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            run += 1;
            let ok = sign::verify_strict_raw(&group.key.pk, &t.msg, &t.sig);
            match t.result {
                TestResult::Valid => assert!(ok, "tc {} ({}) must verify", t.tc_id, t.comment),
                TestResult::Invalid => {
                    assert!(!ok, "tc {} ({}) must be refused", t.tc_id, t.comment)
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(run > 100, "{run}");
}

#[test]
fn identity_key_and_the_s_plus_l_malleability_pair_are_refused() {
    // THREATS.md: verify() "accepts the identity key with (R = identity, S = 0) for any message".
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[0] = 1;
    assert!(!sign::verify_strict_raw(&identity, b"any message", &sig));
    // BoringSSL's S+L pair: a valid signature and the same with L added to S.
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let good = ed25519_dalek::Signer::sign(&key, b"msg").to_bytes();
    assert!(sign::verify_strict_raw(
        key.verifying_key().as_bytes(),
        b"msg",
        &good
    ));
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut malleated = good;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(malleated[32 + i]) + u16::from(L[i]) + carry;
        malleated[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert!(!sign::verify_strict_raw(
        key.verifying_key().as_bytes(),
        b"msg",
        &malleated
    ));
    // Signatures of the wrong length never verify.
    assert!(!sign::verify_strict_raw(
        key.verifying_key().as_bytes(),
        b"msg",
        &good[..63]
    ));
    let mut long = good.to_vec();
    long.push(0);
    assert!(!sign::verify_strict_raw(
        key.verifying_key().as_bytes(),
        b"msg",
        &long
    ));
}

#[test]
fn wycheproof_x25519_through_our_exchange() {
    use wycheproof::xdh::{TestName, TestSet};
    let set = TestSet::load(TestName::X25519).unwrap();
    let mut run = 0;
    let mut zero_refused = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            let (Ok(sk), Ok(pk)) = (
                <[u8; 32]>::try_from(&t.private_key[..]),
                <[u8; 32]>::try_from(&t.public_key[..]),
            ) else {
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                continue;
            };
            run += 1;
            let shared = wrap::x25519_raw(&sk, &pk);
            if t.result != TestResult::Invalid {
                assert_eq!(
                    shared[..],
                    t.shared_secret[..],
                    "tc {} ({})",
                    t.tc_id,
                    t.comment
                );
            }
            // Our key import and wrap refuse every public key that yields the all-zero secret.
            if shared == [0u8; 32] {
                assert!(wrap::is_weak_x25519(&pk), "tc {}", t.tc_id);
                zero_refused += 1;
            }
        }
    }
    assert!(run > 100 && zero_refused > 0, "{run} {zero_refused}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// ring (what we ship) and the aes-gcm crate agree on every chunk, both ways.
    #[test]
    fn ring_and_aes_gcm_agree(key in any::<[u8; 32]>(), nonce in any::<[u8; 12]>(), msg in proptest::collection::vec(any::<u8>(), 0..40_000)) {
        use aes_gcm::aead::{Aead, KeyInit};
        let ours = chunked::raw_encrypt_for_tests(&msg, &key, &nonce);
        let theirs = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
        let mut expected = Vec::new();
        let mut chunks: Vec<&[u8]> = msg.chunks(chunked::CHUNK_SIZE).collect();
        if msg.len() % chunked::CHUNK_SIZE == 0 { chunks.push(&[]); }
        for (i, c) in chunks.iter().enumerate() {
            let mut n = nonce;
            for (b, x) in n[4..].iter_mut().zip((i as u64).to_be_bytes()) { *b ^= x; }
            let ct = theirs.encrypt(aes_gcm::Nonce::from_slice(&n), *c).unwrap();
            prop_assert_eq!(theirs.decrypt(aes_gcm::Nonce::from_slice(&n), &ct[..]).unwrap(), c.to_vec());
            prop_assert_eq!(crypto::aes256gcm_open_raw(&key, &n, &[], &ct), Some(c.to_vec()));
            expected.extend_from_slice(&ct);
        }
        prop_assert_eq!(ours, expected);
    }

    /// Round trip of the chunked encryption for any length, key, salt and context.
    #[test]
    fn chunked_round_trip(key in any::<[u8; 32]>(), salt in any::<[u8; 24]>(), ctx in proptest::collection::vec(any::<u8>(), 0..32), msg in proptest::collection::vec(any::<u8>(), 0..50_000)) {
        let ct = chunked::encrypt_to_vec(&msg, &key, &salt, &ctx);
        prop_assert_eq!(ct.len() as u64, chunked::ciphertext_len(msg.len() as u64).unwrap());
        prop_assert_eq!(chunked::decrypt_to_vec(&ct, &key, &ctx, 1 << 32).unwrap(), msg);
    }
}
