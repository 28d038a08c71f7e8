//! The conformance vectors in `tests/vectors/` as data: two archives sealed once with the keys
//! beside them, and for each case a change to the bytes (anchored at the parts FORMAT.md §1 lays
//! out) and the exact refusal it must give. A new rule or a new refusal is a new line in
//! `cases.json`, and another implementation of the format can run the same file.

use std::path::{Path, PathBuf};

use modelseal::keys::{PublicKey, SecretKey};
use modelseal::open::{self, Decryption, ReadOptions};
use modelseal::trust::TrustStore;
use modelseal::Error;
use serde_json::Value;

const CREATED: u64 = 1_780_000_000;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// `Area::Variant` of an error, from its `Debug` form (`Format(BadMagic { .. })`).
fn variant(e: &Error) -> String {
    let debug = format!("{e:?}");
    let (area, rest) = debug.split_once('(').unwrap_or((&debug, ""));
    let name: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
    format!("{area}::{name}")
}

/// The offset of `anchor` in `archive` (FORMAT.md §1).
fn anchor(archive: &[u8], anchor: &str) -> usize {
    let header_len = u32::from_be_bytes(archive[10..14].try_into().unwrap()) as usize;
    match anchor {
        "start" => 0,
        "header" => 14,
        "sig_count" => 14 + header_len,
        "signatures" => 15 + header_len,
        "payload" => 15 + header_len + 80 * archive[14 + header_len] as usize,
        "end" => archive.len(),
        other => panic!("unknown anchor {other}"),
    }
}

fn at(archive: &[u8], spec: &Value) -> (usize, u8) {
    let a = anchor(archive, spec[0].as_str().unwrap());
    let off = spec[1].as_i64().unwrap();
    let pos = usize::try_from(a as i64 + off).unwrap();
    (pos, spec[2].as_u64().unwrap() as u8)
}

fn apply(mut archive: Vec<u8>, change: &Value) -> Vec<u8> {
    if change.is_null() {
        return archive;
    }
    for spec in change["xor"].as_array().into_iter().flatten() {
        let (pos, x) = at(&archive, spec);
        archive[pos] ^= x;
    }
    for spec in change["set"].as_array().into_iter().flatten() {
        let (pos, x) = at(&archive, spec);
        archive[pos] = x;
    }
    if let Some(text) = change["xor_text"].as_str() {
        let pos = archive
            .windows(text.len())
            .position(|w| w == text.as_bytes())
            .expect("the text is in the archive");
        archive[pos] ^= 1;
    }
    if let Some(n) = change["truncate"].as_u64() {
        archive.truncate(archive.len() - n as usize);
    }
    if let Some(n) = change["keep"].as_u64() {
        archive.truncate(n as usize);
    }
    for b in change["append"].as_array().into_iter().flatten() {
        archive.push(b.as_u64().unwrap() as u8);
    }
    archive
}

/// The secret key files, copied to mode 0600 (git keeps no file modes but the executable bit).
fn secret(tmp: &Path, who: &str) -> SecretKey {
    use std::os::unix::fs::PermissionsExt;
    let to = tmp.join(format!("{who}.key"));
    std::fs::copy(dir().join("keys").join(format!("{who}.key")), &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    SecretKey::read(&to).unwrap()
}

#[test]
fn every_conformance_case_gives_its_exact_result() {
    let cases: Value =
        serde_json::from_slice(&std::fs::read(dir().join("cases.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let reader = secret(tmp.path(), "reader");
    let stranger = secret(tmp.path(), "stranger");
    let mut run = 0;
    let mut wrong = Vec::new();
    for (file, about) in cases["archives"].as_object().unwrap() {
        let original = std::fs::read(dir().join(file)).unwrap();
        for case in cases["cases"].as_array().unwrap() {
            if case["archive"] != "*" && case["archive"] != file.as_str() {
                continue;
            }
            let name = format!("{file}: {}", case["name"].as_str().unwrap());
            let bytes = apply(original.clone(), &case["change"]);
            let mut trust = TrustStore::new();
            let signer = case["trust"].as_str().unwrap_or("author");
            trust.add(PublicKey::read(&dir().join("keys").join(format!("{signer}.pub"))).unwrap());
            let mut opts = ReadOptions::new(&trust);
            opts.now = Some(CREATED + 10);
            let key = match case["key"].as_str().unwrap_or("reader") {
                "none" => None,
                "stranger" => Some(&stranger),
                _ => Some(&reader),
            };
            let result = match key {
                None => open::verify_reader(&bytes[..], &opts).map(|r: open::Report| (r, None)),
                Some(k) => open::open_reader_to_memory(
                    &bytes[..],
                    Decryption::Identity(k),
                    &opts,
                    1 << 20,
                    &open::ModelChecks::default(),
                )
                .map(|(opened, files)| (opened.into(), Some(files))),
            };
            match (case["expect"].as_str().unwrap(), result) {
                ("ok", Ok((report, files))) => {
                    assert_eq!(report.header.get().model_name, about["model"], "{name}");
                    assert_eq!(
                        report.header.get().model_version,
                        about["version"],
                        "{name}"
                    );
                    assert_eq!(
                        format!("{:?}", report.header.get().compression).to_lowercase(),
                        about["compression"],
                        "{name}"
                    );
                    if let Some(files) = files {
                        assert_eq!(files.len(), 1, "{name}");
                        assert_eq!(files[0].0.as_str(), about["file"], "{name}");
                        let content = about["content"].as_str().unwrap().as_bytes();
                        assert_eq!(files[0].1.to_vec(), content, "{name}");
                    }
                }
                ("ok", Err(e)) => wrong.push(format!("{name}: expected to open, refused: {e:?}")),
                (expected, Ok(_)) => wrong.push(format!("{name}: expected {expected}, accepted")),
                (expected, Err(e)) if variant(&e) != expected => {
                    wrong.push(format!("{name}: expected {expected}, got {e:?}"))
                }
                _ => {}
            }
            run += 1;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(run, 2 * cases["cases"].as_array().unwrap().len());
}
