//! Criterion benches for the primitives and stages on the hot path. Whole-process comparisons with
//! the peer tools live in bench/compare.sh; these show where the time goes.

use std::io::Write;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use modelseal::crypto::{self, chunked};
use modelseal::keys::SecretKey;
use modelseal::open::{Decryption, ReadOptions};
use modelseal::seal::{self, CompressionChoice, Input, Recipient, SealOptions, Source};
use modelseal::trust::TrustStore;

const MIB: usize = 1 << 20;

fn weights(len: usize) -> Vec<u8> {
    // float32 N(0,1)-like bytes: incompressible, like real weights.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn primitives(c: &mut Criterion) {
    let data = weights(16 * MIB);
    let mut g = c.benchmark_group("primitives_16MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("sha256_ring", |b| b.iter(|| crypto::sha256(&data)));
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(&data)));
    g.bench_function("chunked_encrypt_ring_aes256gcm", |b| {
        b.iter(|| chunked::encrypt_to_vec(&data, &[1; 32], &[2; 24], b"bench"))
    });
    let ct = chunked::encrypt_to_vec(&data, &[1; 32], &[2; 24], b"bench");
    g.bench_function("chunked_decrypt_ring_aes256gcm", |b| {
        b.iter(|| chunked::decrypt_to_vec(&ct, &[1; 32], b"bench", 1 << 32).unwrap())
    });
    g.bench_function("zstd_level1_weights", |b| {
        b.iter(|| zstd::bulk::compress(&data[..4 * MIB], 1).unwrap())
    });
    g.finish();
}

fn stages(c: &mut Criterion) {
    let author = SecretKey::generate();
    let reader = SecretKey::generate();
    let rp = reader.public();
    let mut trust = TrustStore::new();
    trust.add(author.public());
    let mut g = c.benchmark_group("seal_open_64MiB");
    g.sample_size(10);
    let data = weights(64 * MIB);
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, compression) in [
        ("stored", CompressionChoice::None),
        ("zstd", CompressionChoice::Zstd),
    ] {
        let opts = SealOptions {
            signer: &author,
            recipients: vec![Recipient::PublicKey(&rp)],
            name: modelseal::format::manifest::ModelName::parse("bench").unwrap(),
            version: semver::Version::new(1, 0, 0),
            description: String::new(),
            metadata: Default::default(),
            created: modelseal::time::now().expect("a clock after 1970"),
            expires: None,
            compression,
            details: Default::default(),
            limits: Default::default(),
            public: false,
            oms_key: None,
            also_reads: Vec::new(),
        };
        let inputs = vec![Input {
            archive_path: modelseal::format::manifest::SafeRelPath::parse("w.bin", 64).unwrap(),
            source: Source::Bytes(data.clone()),
        }];
        let seal_once = || {
            let mut out = std::io::Cursor::new(Vec::with_capacity(data.len() + MIB));
            seal::seal_to_writer(&inputs, &opts, &mut out).unwrap();
            out.into_inner()
        };
        g.bench_function(BenchmarkId::new("seal", name), |b| b.iter(seal_once));
        let archive = seal_once();
        g.bench_function(BenchmarkId::new("verify", name), |b| {
            b.iter(|| {
                modelseal::open::verify_reader(&archive[..], &ReadOptions::new(&trust)).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("open_to_memory", name), |b| {
            b.iter(|| {
                modelseal::open::open_reader_to_memory(
                    &archive[..],
                    Decryption::Identity(&reader),
                    &ReadOptions::new(&trust),
                    1 << 30,
                    &modelseal::open::ModelChecks::default(),
                )
                .unwrap()
            })
        });
    }
    g.finish();
    let _ = std::io::sink().flush();
}

criterion_group!(benches, primitives, stages);
criterion_main!(benches);
