//! THREATS.md checklist 20-26: hostile contents inside a payload that is validly encrypted and
//! signed by a *trusted* key (defence in depth). Each is refused with its exact error, without
//! unbounded allocation, and nothing is left on disk.

mod common;

use std::io::Write;

use common::*;
use modelseal::craft;
use modelseal::crypto::sha256;
use modelseal::error::{ContentError, FormatError};
use modelseal::format::manifest::{FileEntry, Manifest, ModelName, SafeRelPath};
use modelseal::format::Compression;
use modelseal::Error;

fn manifest(files: &[(&str, &[u8])]) -> Manifest {
    let mut m = Manifest::new(
        ModelName::parse("iris-tree").unwrap(),
        semver::Version::new(1, 0, 0),
        CREATED,
    );
    m.files = files
        .iter()
        .map(|(p, d)| FileEntry {
            path: SafeRelPath::parse(p, 1024).unwrap(),
            size: d.len() as u64,
            sha256: sha256(d),
            kind: Default::default(),
        })
        .collect();
    m
}

fn with_end(mut v: Vec<u8>) -> Vec<u8> {
    v.extend_from_slice(&craft::tar_end());
    v
}

fn refused(w: &World, m: &Manifest, body: Vec<u8>) -> Error {
    let a = w.trusted_archive(&craft::manifest_bytes(m), &body, Compression::None, None);
    // The same bytes through a zstd frame must be refused the same way.
    let z = w.trusted_archive(&craft::manifest_bytes(m), &body, Compression::Zstd, None);
    let e1 = w.open_bytes_to_dir_err(&a);
    let e2 = w.open_bytes_to_dir_err(&z);
    assert_eq!(
        format!("{e1:?}"),
        format!("{e2:?}"),
        "compressed and stored archives refused differently"
    );
    e1
}

#[test]
fn a_crafted_valid_archive_opens() {
    // The crafting helper itself produces archives that open, so every refusal below is caused by
    // the one defect each test adds.
    let w = World::new();
    let m = manifest(&[("a.bin", b"alpha"), ("b/c.bin", b"gamma")]);
    let body = with_end(
        [
            craft::tar_entry(b"a.bin", b'0', b"alpha", None),
            craft::tar_entry(b"b/c.bin", b'0', b"gamma", None),
        ]
        .concat(),
    );
    let a = w.trusted_archive(&craft::manifest_bytes(&m), &body, Compression::Zstd, None);
    let (_, files) = w.open_bytes(&a).unwrap();
    assert_eq!(files.len(), 2);
}

#[test]
fn unsafe_names_are_refused_never_skipped_or_rerooted() {
    let w = World::new();
    let m = manifest(&[("x", b"x")]);
    for name in [
        &b"../x"[..],
        b"/abs",
        b"a/../../b",
        b"C:\\x",
        b"a\\b",
        b"./x",
        b"x/",
        b"a//b",
    ] {
        let body = with_end(craft::tar_entry(name, b'0', b"x", None));
        let e = refused(&w, &m, body);
        assert_refused!(e, Error::Format(FormatError::UnsafePath { .. }));
    }
    // An empty name (the name field all zero in an otherwise valid header).
    let e = refused(&w, &m, with_end(craft::tar_entry(b"", b'0', b"x", None)));
    assert_refused!(
        e,
        Error::Format(FormatError::UnsafePath {
            reason: "empty path",
            ..
        })
    );
    // A NUL inside a PAX path.
    let pax = b"12 path=a\0b\n";
    let body = with_end(
        [
            craft::tar_entry(b"PaxHeader", b'x', pax, None),
            craft::tar_entry(b"a", b'0', b"x", None),
        ]
        .concat(),
    );
    assert_refused!(
        refused(&w, &m, body),
        Error::Format(FormatError::UnsafePath { .. })
    );
    assert!(!std::path::Path::new("/abs").exists());
}

#[test]
fn links_devices_fifos_sparse_and_unknown_types_are_refused() {
    let w = World::new();
    let m = manifest(&[("x", b"x")]);
    for kind in [
        b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'S', b'g', b'K', b'L', b'Z', b'\0',
    ] {
        let body = with_end(craft::tar_entry(b"x", kind, b"", None));
        assert_refused!(
            refused(&w, &m, body),
            Error::Content(ContentError::UnsupportedEntryType { .. })
        );
    }
}

#[test]
fn a_huge_gnu_long_name_is_refused_without_allocating_it() {
    // THREATS.md: tar-rs "will allocate a 1 GiB GNU long name from a 33 KB zstd file".
    let w = World::new();
    let m = manifest(&[("x", b"x")]);
    let body = craft::tar_entry(b"././@LongLink", b'L', b"", Some(1 << 30));
    let e = refused(&w, &m, body);
    assert_refused!(e, Error::Content(ContentError::UnsupportedEntryType { .. }));
}

#[test]
fn pax_headers_are_bounded_and_checked() {
    let w = World::new();
    let m = manifest(&[("x", b"x")]);
    // Larger than the limit: refused from its size field, before reading it.
    let body = craft::tar_entry(b"PaxHeader", b'x', b"", Some(1 << 30));
    assert_refused!(
        refused(&w, &m, body),
        Error::Content(ContentError::Pax { .. })
    );
    // A size record that disagrees with the header.
    let body = with_end(
        [
            craft::tar_entry(b"PaxHeader", b'x', b"11 size=9\n", None),
            craft::tar_entry(b"x", b'0', b"x", None),
        ]
        .concat(),
    );
    assert_refused!(
        refused(&w, &m, body),
        Error::Content(ContentError::Pax { .. })
    );
    // Keys other than path/size.
    let body = with_end(
        [
            craft::tar_entry(b"PaxHeader", b'x', b"18 linkpath=/etc\n", None),
            craft::tar_entry(b"x", b'0', b"x", None),
        ]
        .concat(),
    );
    assert_refused!(
        refused(&w, &m, body),
        Error::Content(ContentError::Pax { .. })
    );
    // A PAX header followed by nothing.
    let body = with_end(craft::tar_entry(b"PaxHeader", b'x', b"10 path=x\n", None));
    assert_refused!(
        refused(&w, &m, body),
        Error::Content(ContentError::Pax { .. })
    );
}

#[test]
fn duplicates_strangers_missing_entries_and_mismatches() {
    let w = World::new();
    let m = manifest(&[("a", b"alpha"), ("b", b"beta")]);
    let a = craft::tar_entry(b"a", b'0', b"alpha", None);
    let b = craft::tar_entry(b"b", b'0', b"beta", None);
    let e = refused(&w, &m, with_end([a.clone(), a.clone(), b.clone()].concat()));
    assert_refused!(e, Error::Content(ContentError::DuplicateEntry { .. }));
    let e = refused(
        &w,
        &m,
        with_end(
            [
                a.clone(),
                b.clone(),
                craft::tar_entry(b"c", b'0', b"extra", None),
            ]
            .concat(),
        ),
    );
    assert_refused!(e, Error::Content(ContentError::NotInManifest { .. }));
    let e = refused(&w, &m, with_end(a.clone()));
    assert_refused!(e, Error::Content(ContentError::MissingEntry { path }) if path == "b");
    let e = refused(&w, &m, with_end([b.clone(), a.clone()].concat()));
    assert_refused!(e, Error::Content(ContentError::MissingEntry { path }) if path == "a");
    let e = refused(
        &w,
        &m,
        with_end([a.clone(), craft::tar_entry(b"b", b'0', b"betA", None)].concat()),
    );
    assert_refused!(e, Error::Content(ContentError::HashMismatch { .. }));
    let e = refused(
        &w,
        &m,
        with_end([a.clone(), craft::tar_entry(b"b", b'0', b"bet", None)].concat()),
    );
    assert_refused!(
        e,
        Error::Content(ContentError::SizeMismatch {
            expected: 4,
            found: 3,
            ..
        })
    );
    // A second manifest entry.
    let e = refused(
        &w,
        &m,
        with_end([craft::tar_entry(b"manifest", b'0', b"", None), a, b].concat()),
    );
    assert_refused!(e, Error::Content(ContentError::DuplicateEntry { .. }));
}

#[test]
fn the_manifest_must_come_first_and_match_the_signed_header() {
    let w = World::new();
    let m = manifest(&[("a", b"alpha")]);
    let mb = craft::manifest_bytes(&m);
    // Model file first.
    let tar = with_end(
        [
            craft::tar_entry(b"a", b'0', b"alpha", None),
            craft::tar_entry(b"manifest", b'0', &mb, None),
        ]
        .concat(),
    );
    let a = craft::archive_from_message(
        &tar,
        tar.len() as u64,
        Compression::None,
        &mb,
        "iris-tree",
        "1.0.0",
        CREATED,
        &w.author,
        &w.reader.public(),
    );
    assert_refused!(
        w.open_bytes_to_dir_err(&a),
        Error::Content(ContentError::ManifestNotFirst { .. })
    );
    // A manifest whose name differs from the signed header's.
    let a = craft::archive_from_message(
        &with_end(
            [
                craft::tar_entry(b"manifest", b'0', &mb, None),
                craft::tar_entry(b"a", b'0', b"alpha", None),
            ]
            .concat(),
        ),
        (512 * 4 + 1024) as u64,
        Compression::None,
        &mb,
        "other-model",
        "1.0.0",
        CREATED,
        &w.author,
        &w.reader.public(),
    );
    assert_refused!(
        w.open_bytes_to_dir_err(&a),
        Error::Content(ContentError::ManifestMismatch { field: "name" })
    );
}

#[test]
fn manifests_with_trailing_bytes_noncanonical_encodings_or_huge_lengths() {
    let w = World::new();
    let m = manifest(&[("a", b"alpha")]);
    let good = craft::manifest_bytes(&m);
    let body = with_end(craft::tar_entry(b"a", b'0', b"alpha", None));
    let mut trailing = good.clone();
    trailing.push(0);
    let e = w.open_bytes_to_dir_err(&w.trusted_archive(&trailing, &body, Compression::None, None));
    assert_refused!(
        e,
        Error::Format(FormatError::TrailingBytes {
            what: "manifest",
            extra: 1
        })
    );
    // The name's length prefix (after the 4-byte schema) claims 2^40 bytes: a clean error, no abort.
    let mut huge = good.clone();
    huge[4..12].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = w.open_bytes_to_dir_err(&w.trusted_archive(&huge, &body, Compression::None, None));
    assert_refused!(
        e,
        Error::Format(FormatError::Decode {
            what: "manifest",
            ..
        })
    );
    // An unknown schema.
    let mut schema = good.clone();
    schema[0] = 9;
    let e = w.open_bytes_to_dir_err(&w.trusted_archive(&schema, &body, Compression::None, None));
    assert_refused!(
        e,
        Error::Format(FormatError::UnsupportedManifestSchema { found: 9, .. })
    );
    // Metadata keys out of order decode, but re-encode differently: not canonical.
    let mut m2 = m.clone();
    m2.metadata.insert("a".into(), "1".into());
    m2.metadata.insert("b".into(), "2".into());
    let mut swapped = craft::manifest_bytes(&m2);
    // The metadata map holds (u64 len, "a", u64 len, "1"), (u64 len, "b", u64 len, "2"): 18 bytes
    // each; swap them so the keys are out of order.
    let entry =
        |k: u8, v: u8| [&1u64.to_le_bytes()[..], &[k], &1u64.to_le_bytes()[..], &[v]].concat();
    let pair = [entry(b'a', b'1'), entry(b'b', b'2')].concat();
    let at = swapped
        .windows(pair.len())
        .position(|w| w == pair.as_slice())
        .expect("metadata entries");
    swapped[at..at + 36].copy_from_slice(&[entry(b'b', b'2'), entry(b'a', b'1')].concat());
    let e = w.open_bytes_to_dir_err(&w.trusted_archive(&swapped, &body, Compression::None, None));
    assert_refused!(
        e,
        Error::Format(FormatError::NonCanonical { what: "manifest" })
    );
}

#[test]
fn bad_tar_checksum_and_missing_or_extra_end_blocks() {
    let w = World::new();
    let m = manifest(&[("a", b"alpha")]);
    let mut entry = craft::tar_entry(b"a", b'0', b"alpha", None);
    entry[0] = b'b';
    assert_refused!(
        refused(&w, &m, with_end(entry)),
        Error::Content(ContentError::BadTarHeader { .. })
    );
    let entry = craft::tar_entry(b"a", b'0', b"alpha", None);
    assert_refused!(
        refused(&w, &m, entry.clone()),
        Error::Content(ContentError::TarStructure { .. })
    );
    let mut extra = with_end(entry.clone());
    extra.extend_from_slice(&[0u8; 512]);
    assert_refused!(
        refused(&w, &m, extra),
        Error::Content(ContentError::UnpackedSize { .. })
    );
    let mut half = entry;
    half.extend_from_slice(&[0u8; 512]);
    half.extend_from_slice(&craft::tar_entry(b"x", b'0', b"", None)[..512]);
    assert_refused!(
        refused(&w, &m, half),
        Error::Content(ContentError::TarStructure { .. })
    );
}

#[test]
fn zstd_window_above_the_limit_is_refused() {
    let w = World::new();
    let m = manifest(&[("a", b"alpha")]);
    let mb = craft::manifest_bytes(&m);
    let mut tar = craft::tar_entry(b"manifest", b'0', &mb, None);
    tar.extend(with_end(craft::tar_entry(b"a", b'0', b"alpha", None)));
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.window_log(27).unwrap();
    e.include_contentsize(false).unwrap();
    e.write_all(&tar).unwrap();
    let z = e.finish().unwrap();
    let a = craft::archive_from_message(
        &z,
        tar.len() as u64,
        Compression::Zstd,
        &mb,
        "iris-tree",
        "1.0.0",
        CREATED,
        &w.author,
        &w.reader.public(),
    );
    assert_refused!(
        w.open_bytes_to_dir_err(&a),
        Error::Content(ContentError::Decompression { .. })
    );
}

#[test]
fn a_ratio_bomb_stops_at_the_signed_size() {
    // 1 GiB of zeros compress to a few dozen KiB; the signed tar size is small, so decompression
    // stops after it, with bounded memory and time.
    let w = World::new();
    let m = manifest(&[("a", b"alpha")]);
    let mb = craft::manifest_bytes(&m);
    let mut tar = craft::tar_entry(b"manifest", b'0', &mb, None);
    tar.extend(craft::tar_entry(b"a", b'0', b"alpha", None));
    let signed_size = tar.len() as u64 + 1024;
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
    e.write_all(&tar).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        e.write_all(&zeros).unwrap();
    }
    let z = e.finish().unwrap();
    assert!(z.len() < 200_000, "{}", z.len());
    let a = craft::archive_from_message(
        &z,
        signed_size,
        Compression::Zstd,
        &mb,
        "iris-tree",
        "1.0.0",
        CREATED,
        &w.author,
        &w.reader.public(),
    );
    let t = std::time::Instant::now();
    assert_refused!(
        w.open_bytes_to_dir_err(&a),
        Error::Content(ContentError::UnpackedSize { .. })
    );
    // Not a timing assertion on speed, a sanity bound: decompressing the whole GiB would take far
    // longer than stopping after a few KiB.
    assert!(t.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn several_frames_or_data_after_the_frame_are_refused() {
    let w = World::new();
    let m = manifest(&[("a", b"alpha")]);
    let mb = craft::manifest_bytes(&m);
    let mut tar = craft::tar_entry(b"manifest", b'0', &mb, None);
    tar.extend(with_end(craft::tar_entry(b"a", b'0', b"alpha", None)));
    let mut two = craft::zstd(&tar);
    two.extend(craft::zstd(b"second frame"));
    let a = craft::archive_from_message(
        &two,
        tar.len() as u64,
        Compression::Zstd,
        &mb,
        "iris-tree",
        "1.0.0",
        CREATED,
        &w.author,
        &w.reader.public(),
    );
    assert_refused!(
        w.open_bytes_to_dir_err(&a),
        Error::Content(ContentError::Decompression { .. })
    );
    let mut garbage = craft::zstd(&tar);
    garbage.extend_from_slice(b"garbage");
    let a = craft::archive_from_message(
        &garbage,
        tar.len() as u64,
        Compression::Zstd,
        &mb,
        "iris-tree",
        "1.0.0",
        CREATED,
        &w.author,
        &w.reader.public(),
    );
    assert_refused!(
        w.open_bytes_to_dir_err(&a),
        Error::Content(ContentError::Decompression { .. })
    );
    let a = craft::archive_from_message(
        b"not zstd at all",
        tar.len() as u64,
        Compression::Zstd,
        &mb,
        "iris-tree",
        "1.0.0",
        CREATED,
        &w.author,
        &w.reader.public(),
    );
    assert_refused!(
        w.open_bytes_to_dir_err(&a),
        Error::Content(ContentError::Decompression { .. })
    );
}

#[test]
fn entry_count_and_path_length_above_the_limits() {
    let w = World::new();
    let long = "p".repeat(200);
    let m = manifest(&[(long.as_str(), b"x")]);
    let record = format!("{} path={long}\n", long.len() + 10);
    let body = with_end(
        [
            craft::tar_entry(b"PaxHeader", b'x', record.as_bytes(), None),
            craft::tar_entry(&long.as_bytes()[..100], b'0', b"x", None),
        ]
        .concat(),
    );
    let a = w.trusted_archive(&craft::manifest_bytes(&m), &body, Compression::None, None);
    w.open_bytes(&a).unwrap();
    // The same archive under a reader with a 100-byte path limit.
    let trust = w.trust();
    let mut opts = modelseal::open::ReadOptions::new(&trust);
    opts.now = Some(CREATED + 1);
    opts.limits.max_path_bytes = 100;
    let e = modelseal::open::open_reader_to_memory(
        &a[..],
        modelseal::open::Decryption::Identity(&w.reader),
        &opts,
        1 << 20,
        &modelseal::open::ModelChecks::default(),
    )
    .unwrap_err();
    assert_refused!(e, Error::Format(FormatError::UnsafePath { .. }));
    // More files than the limit.
    let files: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("f{i}"), vec![i as u8])).collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let m = manifest(&refs);
    let body = with_end(
        files
            .iter()
            .flat_map(|(p, d)| craft::tar_entry(p.as_bytes(), b'0', d, None))
            .collect(),
    );
    let a = w.trusted_archive(&craft::manifest_bytes(&m), &body, Compression::None, None);
    opts.limits = modelseal::Limits {
        max_files: 3,
        ..Default::default()
    };
    let e = modelseal::open::open_reader_to_memory(
        &a[..],
        modelseal::open::Decryption::Identity(&w.reader),
        &opts,
        1 << 20,
        &modelseal::open::ModelChecks::default(),
    )
    .unwrap_err();
    assert_refused!(e, Error::Format(FormatError::InvalidManifest { .. }));
    // Unpacked size above the configured limit: refused from the signed header, before decrypting.
    opts.limits = modelseal::Limits {
        max_unpacked_bytes: 1024,
        ..Default::default()
    };
    let e = modelseal::open::open_reader_to_memory(
        &a[..],
        modelseal::open::Decryption::Identity(&w.reader),
        &opts,
        1 << 20,
        &modelseal::open::ModelChecks::default(),
    )
    .unwrap_err();
    assert_refused!(e, Error::Content(ContentError::UnpackedTooLarge { .. }));
}
