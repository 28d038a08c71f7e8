//! THREATS.md checklist 20-22 in a child process: archives built to make a reader allocate
//! gigabytes or abort (a 2^40-byte length prefix, a 1 GiB GNU long name, a zstd ratio bomb, a huge
//! PAX header, a 2^50-byte payload claim), signed by a trusted key, are opened by the real binary
//! under a 512 MiB address-space limit. Each must end in a clean refusal: exit code 1, an `error:`
//! line, no signal, no abort, nothing on disk.

mod common;

use std::io::Write;

use common::*;
use modelseal::craft;
use modelseal::format::manifest::{FileEntry, Manifest, ModelName, SafeRelPath};
use modelseal::format::Compression;

fn manifest() -> Manifest {
    let mut m = Manifest::new(
        ModelName::parse("iris-tree").unwrap(),
        semver::Version::new(1, 0, 0),
        CREATED,
    );
    m.files = vec![FileEntry {
        path: SafeRelPath::parse("x", 64).unwrap(),
        size: 1,
        sha256: modelseal::crypto::sha256(b"x"),
        kind: Default::default(),
    }];
    m
}

#[cfg(target_os = "linux")]
#[test]
fn allocation_bombs_end_in_a_clean_refusal_under_a_memory_limit() {
    let w = World::new();
    let mb = craft::manifest_bytes(&manifest());
    let mut huge_len = mb.clone();
    huge_len[4..12].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let mut bomb = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let mut tar = craft::tar_entry(b"manifest", b'0', &mb, None);
    tar.extend(craft::tar_entry(b"x", b'0', b"x", None));
    bomb.write_all(&tar).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "manifest length 2^40",
            w.trusted_archive(&huge_len, &craft::tar_end(), Compression::None, None),
        ),
        (
            "GNU long name of 1 GiB",
            w.trusted_archive(
                &mb,
                &craft::tar_entry(b"././@LongLink", b'L', b"", Some(1 << 30)),
                Compression::Zstd,
                None,
            ),
        ),
        (
            "PAX header of 1 GiB",
            w.trusted_archive(
                &mb,
                &craft::tar_entry(b"PaxHeader", b'x', b"", Some(1 << 30)),
                Compression::None,
                None,
            ),
        ),
        (
            "1 GiB zstd ratio bomb",
            craft::archive_from_message(
                &bomb,
                tar.len() as u64 + 1024,
                Compression::Zstd,
                &mb,
                "iris-tree",
                "1.0.0",
                CREATED,
                &w.author,
                &w.reader.public(),
            ),
        ),
        (
            "payload claiming 2^50 bytes",
            craft::resign(
                &w.trusted_archive(&mb, &craft::tar_end(), Compression::None, None),
                &w.author,
                |h| {
                    h.plaintext_size = 1 << 50;
                    h.tar_size = 1 << 50;
                    h.chunk_count = modelseal::crypto::chunked::chunk_count(1 << 50);
                    h.ciphertext_size =
                        modelseal::crypto::chunked::ciphertext_len(1 << 50).unwrap();
                },
            ),
        ),
    ];
    std::fs::write(w.path("author.pub"), w.author.public().to_line()).unwrap();
    let reader = w.path("reader");
    w.reader.write_pair(&reader).unwrap();
    let bin = env!("CARGO_BIN_EXE_modelseal");
    for (name, bytes) in cases {
        std::fs::write(w.path("bomb.mseal"), &bytes).unwrap();
        let before = listing(w.dir.path());
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("ulimit -v 524288; exec {bin} open --no-state -t author.pub -i reader.key -o out bomb.mseal"))
            .current_dir(w.dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: not a clean refusal: {:?} {stderr}",
            out.status
        );
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        let says = match name {
            "manifest length 2^40" => "cannot decode the manifest: LimitExceeded",
            "GNU long name of 1 GiB" => "has unsupported type GNU long name",
            "PAX header of 1 GiB" => "PAX header refused: 1073741824 bytes, limit 4096",
            // Decompression stops one byte past the signed tar size, long before 1 GiB.
            "1 GiB zstd ratio bomb" => "differs from the signed",
            "payload claiming 2^50 bytes" => "chunks exceeds the limit of 4294967296",
            other => panic!("no expected reason for {other}"),
        };
        assert!(
            stderr.lines().next().unwrap().contains(says),
            "{name}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 2, "{name}: {stderr}");
        assert!(
            stderr.lines().nth(1).unwrap().starts_with("hint: "),
            "{name}: {stderr}"
        );
        assert_eq!(listing(w.dir.path()), before, "{name}: left files behind");
    }
}
