//! `modelseal demo`: the data scientist's story, every step signed, encrypted and checked, in a
//! fresh temporary directory, with no arguments and no network.

use std::collections::BTreeMap;

use modelseal::keys::SecretKey;
use modelseal::models::{self, tree, VersionPolicy};
use modelseal::open::{self, Decryption, ReadOptions};
use modelseal::seal::{self, Details, Recipient, SealOptions};
use modelseal::trust::TrustStore;
use modelseal::Error;

const SAMPLE: [f64; 4] = [5.1, 3.5, 1.4, 0.2];

fn seal_tree(
    dir: &std::path::Path,
    file: &str,
    author: &SecretKey,
    recipient: &SecretKey,
    trained: &tree::Trained,
    linfa_version: &str,
) -> Result<std::path::PathBuf, Error> {
    let mut details = Details::default();
    let inputs = tree::sealable(trained, linfa_version, &mut details)?;
    let public = recipient.public();
    let opts = SealOptions::new(
        author,
        vec![Recipient::PublicKey(&public)],
        "iris-tree",
        "1.0.0",
    )?
    .with_description("DecisionTree on Iris, trained by modelseal demo")
    .with_metadata(BTreeMap::from([
        (
            "dataset".to_string(),
            "iris (linfa-datasets, 150 rows)".to_string(),
        ),
        (
            "algorithm".to_string(),
            "linfa-trees DecisionTree, default parameters".to_string(),
        ),
    ]))
    .with_details(details)
    .with_expiry(Some(modelseal::time::Expiry::After(
        std::time::Duration::from_secs(90 * 24 * 3600),
    )))?;
    let out = dir.join(file);
    seal::seal_file(&inputs, &opts, &out, Default::default())?;
    Ok(out)
}

fn load(
    archive: &std::path::Path,
    trust: &TrustStore,
    key: &SecretKey,
) -> Result<(tree::Tree, modelseal::format::manifest::Manifest), Error> {
    let file = std::fs::File::open(archive).map_err(|e| Error::Io {
        context: format!("opening {}", archive.display()),
        source: e,
    })?;
    models::open_model::<tree::Tree, _>(
        std::io::BufReader::new(file),
        Decryption::Identity(key),
        &ReadOptions::new(trust),
        &[(models::LINFA_TREES, models::LINFA_TREES_VERSION)],
        VersionPolicy::Strict,
        1 << 30,
    )
}

fn refusal(what: &str, result: Result<impl Sized, Error>) -> Result<(), Error> {
    match result {
        Ok(_) => Err(Error::Io {
            context: format!("demo: {what} was accepted"),
            source: std::io::Error::other("a check did not refuse"),
        }),
        Err(e) => {
            outln!("   {what}:");
            outln!("     error: {e}");
            Ok(())
        }
    }
}

/// Runs the demo.
pub fn run() -> Result<(), Error> {
    let tmp = tempfile::tempdir().map_err(|e| Error::Io {
        context: "creating a temporary directory".into(),
        source: e,
    })?;
    let dir = tmp.path();
    outln!("modelseal demo: train, seal, verify, open and predict, then refuse what fails a check");
    outln!("(working in {}, removed afterwards)\n", dir.display());

    let trained = tree::train_iris(tree::TreeParams::default())?;
    outln!(
        "1. trained a linfa-trees DecisionTree on Iris ({} rows, {} features): training accuracy {:.1}%",
        trained.rows,
        trained.feature_names.len(),
        trained.train_accuracy * 100.0
    );

    let author = SecretKey::generate();
    let reader = SecretKey::generate();
    let (author_key, author_pub) = author.write_pair(&dir.join("author"))?;
    reader.write_pair(&dir.join("reader"))?;
    outln!(
        "2. generated the author's key {} and the recipient's key {} ({} is mode 0600)",
        author.public().key_id(),
        reader.public().key_id(),
        author_key.file_name().unwrap_or_default().to_string_lossy()
    );

    let archive = seal_tree(
        dir,
        "iris.mseal",
        &author,
        &reader,
        &trained,
        models::LINFA_TREES_VERSION,
    )?;
    let size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    outln!(
        "3. sealed iris-tree 1.0.0 for the recipient, signed by the author: iris.mseal, {size} bytes\n   manifest: classes, features, train_accuracy, requires linfa-trees=={}, expires in 90 days",
        models::LINFA_TREES_VERSION
    );

    let mut trust = TrustStore::new();
    trust.add_path(&author_pub)?;
    let report = open::verify_file(&archive, &ReadOptions::new(&trust))?;
    outln!("4. verified as a CI gate would, with no decryption key: signature by {} and payload digest OK", report.header.signer());

    let (model, manifest) = load(&archive, &trust, &reader)?;
    let class = tree::predict(&model, &[SAMPLE.to_vec()])?[0];
    let name = manifest.class_names.get(class).cloned().unwrap_or_default();
    outln!("5. opened as the recipient and loaded the tree after every check: {SAMPLE:?} -> class {class} ({name})");

    outln!("6. and what it refuses:");
    let mut bytes = std::fs::read(&archive).map_err(|e| Error::Io {
        context: "reading the archive".into(),
        source: e,
    })?;
    let at = bytes.len() - 100;
    bytes[at] ^= 0x01;
    let flipped = dir.join("flipped.mseal");
    std::fs::write(&flipped, &bytes).map_err(|e| Error::Io {
        context: "writing".into(),
        source: e,
    })?;
    refusal(
        &format!("one bit flipped at byte {at}"),
        load(&flipped, &trust, &reader),
    )?;

    let mallory = SecretKey::generate();
    let forged = seal_tree(
        dir,
        "forged.mseal",
        &mallory,
        &reader,
        &trained,
        models::LINFA_TREES_VERSION,
    )?;
    refusal(
        "the same model signed by an untrusted key",
        load(&forged, &trust, &reader),
    )?;

    let old = seal_tree(dir, "old.mseal", &author, &reader, &trained, "0.7.0")?;
    refusal(
        "a model recorded as built with linfa-trees 0.7.0",
        load(&old, &trust, &reader),
    )?;

    outln!("\nall checks behaved as expected");
    Ok(())
}
