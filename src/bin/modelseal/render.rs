//! What the CLI prints: readable text, or one JSON object for machines.

use std::path::Path;

use modelseal::format::manifest::Manifest;
use modelseal::format::{Header, Stanza};
use modelseal::fs::{Cleaned, Temporary};
use modelseal::keys::Signer;
use modelseal::open::Report;
use modelseal::seal::SealSummary;
use modelseal::time::rfc3339;
use serde_json::{json, Value};

fn header_text(h: &Header) {
    let x25519 = h
        .recipients
        .iter()
        .filter(|s| matches!(s, Stanza::X25519 { .. }))
        .count();
    outln!("model:       {} {}", h.model_name, h.model_version);
    outln!("signer:      {}", hex::encode(h.signer));
    outln!("created:     {}", rfc3339(h.created));
    outln!(
        "expires:     {}",
        h.expires.map(rfc3339).unwrap_or_else(|| "never".into())
    );
    if h.suite.is_public() {
        outln!("recipients:  none: PUBLIC, signed but not encrypted");
    } else {
        outln!(
            "recipients:  {x25519} public key, {} shared key",
            h.recipients.len() - x25519
        );
    }
    outln!("suite:       {}", h.suite.name());
    outln!(
        "payload:     {} bytes ({} chunks), tar {} bytes, compression {:?}",
        h.ciphertext_size,
        h.chunk_count,
        h.tar_size,
        h.compression
    );
    outln!("blake3:      {}", hex::encode(h.payload_digest));
    outln!(
        "manifest:    {} bytes, sha256 {}",
        h.manifest_size,
        hex::encode(h.manifest_sha256)
    );
}

/// An archive-derived string for a terminal: control characters (ESC, BEL, newlines...) are
/// escaped, so a signer's metadata cannot move the cursor, recolour or rewrite what was printed
/// before. JSON output keeps the exact value.
pub fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

fn manifest_text(m: &Manifest) {
    if !m.description.is_empty() {
        outln!("description: {}", esc(&m.description));
    }
    outln!("sealed with: modelseal {}", esc(&m.modelseal_version));
    outln!("files:");
    for f in &m.files {
        outln!(
            "  {}  {} bytes  {}  sha256 {}",
            f.path,
            f.size,
            esc(&f.kind.format),
            hex::encode(f.sha256)
        );
        if let Some(p) = f.kind.pickle_protocol {
            outln!("    pickle protocol {p}; imports (code that runs when unpickled):");
        }
        for g in &f.kind.pickle_globals {
            outln!("      {}", esc(g));
        }
        if let Some(v) = &f.kind.sklearn_version {
            outln!("    scikit-learn version in the pickle: {}", esc(v));
        }
    }
    if let Some(f) = m.oms_bundle() {
        outln!(
            "oms bundle:  {} (OpenSSF Model Signing, written out by open --oms-signature FILE)",
            f.path
        );
    }
    for (k, v) in &m.metadata {
        outln!("meta:        {} = {}", esc(k), esc(v));
    }
    for (k, v) in &m.metrics {
        outln!("metric:      {} = {v}", esc(k));
    }
    for (k, v) in &m.requires {
        outln!("requires:    {}=={}", esc(k), esc(v));
    }
    if let Some(r) = &m.train_data {
        outln!(
            "train data:  {} ({} bytes, sha256 {})",
            esc(&r.name),
            r.size,
            hex::encode(r.sha256)
        );
    }
    if let Some(r) = &m.source {
        outln!(
            "source:      {} ({} bytes, sha256 {})",
            esc(&r.name),
            r.size,
            hex::encode(r.sha256)
        );
    }
    if !m.class_names.is_empty() {
        outln!("classes:     {}", esc(&m.class_names.join(", ")));
    }
    if !m.feature_names.is_empty() {
        outln!("features:    {}", esc(&m.feature_names.join(", ")));
    }
    if let Some(t) = &m.typed_model {
        let libs: Vec<String> = t
            .libraries
            .iter()
            .map(|(k, v)| format!("{k}=={v}"))
            .collect();
        outln!(
            "typed model: {} ({}; {}; {})",
            esc(&t.path),
            esc(&t.type_name),
            esc(&t.encoding),
            esc(&libs.join(", "))
        );
    }
}

/// `inspect --untrusted`: each file and the globals outside the policy. Global names come from the
/// pickle's bytes, so the text form escapes control characters.
pub fn untrusted(files: &[(String, Vec<String>)], json: bool) {
    if json {
        let map: std::collections::BTreeMap<&str, &Vec<String>> =
            files.iter().map(|(p, g)| (p.as_str(), g)).collect();
        outln!("{}", json!({ "untrusted": map }));
        return;
    }
    for (path, globals) in files {
        if globals.is_empty() {
            outln!("{path}: no global outside the allowed globals");
        } else {
            outln!("{path}: {} outside the allowed globals", globals.len());
            for g in globals {
                outln!("  {}", esc(g));
            }
        }
    }
}

/// A verified archive, with its manifest when it was decrypted.
pub fn report(r: &Report, json: bool) {
    let h = r.header.get();
    if json {
        outln!("{}", modelseal::report::verified(r));
        return;
    }
    outln!(
        "VERIFIED: signature by trusted key {}, payload digest matches",
        r.header.signer()
    );
    header_text(h);
    match &r.manifest {
        Some(m) => manifest_text(m),
        None => {
            outln!("manifest:    encrypted (give -i or --shared-key to decrypt, check and show it)")
        }
    }
}

/// A header read without verification.
pub fn unverified(h: &Header, json: bool) {
    if json {
        outln!("{}", modelseal::report::unverified(h));
        return;
    }
    outln!("UNVERIFIED: nothing below is authenticated (pass -t TRUST to verify)");
    header_text(h);
}

/// What `seal` and `train` print.
pub fn sealed(s: &SealSummary, out: &Path, signer: &dyn Signer) {
    let h = &s.header;
    // With `-o -` the archive is on stdout: the summary goes to stderr.
    let to_stderr = out == Path::new("-");
    let to = if to_stderr {
        "standard output".into()
    } else {
        out.display().to_string()
    };
    say(
        to_stderr,
        &format!(
            "sealed {} {} ({} file(s), {} bytes) to {to}",
            h.model_name,
            h.model_version,
            s.manifest.model_files().count(),
            s.manifest.model_files().map(|f| f.size).sum::<u64>(),
        ),
    );
    if let Some(b) = s.manifest.oms_bundle() {
        say(
            to_stderr,
            &format!(
                "with an OpenSSF Model Signing bundle of those files ({}, {} bytes)",
                b.path, b.size
            ),
        );
    }
    say(
        to_stderr,
        &if h.suite.is_public() {
            format!(
                "signed by {}, PUBLIC: stored in the clear, for anyone to verify and open",
                signer.key_id()
            )
        } else {
            format!(
                "signed by {}, for {} recipient(s)",
                signer.key_id(),
                h.recipients.len()
            )
        },
    );
    for f in &s.manifest.files {
        if !f.kind.pickle_globals.is_empty() {
            say(
                to_stderr,
                &format!(
                    "{}: {} importing {}",
                    f.path,
                    f.kind.format,
                    f.kind.pickle_globals.join(", ")
                ),
            );
        }
    }
}

/// One line of a command's report, on stdout, or on stderr when stdout carries the archive.
pub fn say(to_stderr: bool, line: &str) {
    if to_stderr {
        use std::io::Write as _;
        // Never panics: the archive is already out, and a summary nobody can read changes nothing.
        let _ = writeln!(std::io::stderr(), "{line}");
    } else {
        outln!("{line}");
    }
}

/// What `clean` removed (or would), put back and kept; failures come after, as the error.
pub fn cleaned(c: &Cleaned, dry_run: bool) {
    let (remove, restore) = if dry_run {
        ("would remove", "would put back")
    } else {
        ("removed", "put back")
    };
    let shown = |t: &Temporary| {
        format!(
            "{}{}",
            esc(&t.path.to_string_lossy()),
            if t.is_dir { "/" } else { "" }
        )
    };
    for t in &c.removed {
        outln!("{remove} {} ({} bytes: {})", shown(t), t.bytes, t.holds);
    }
    for (t, to) in &c.restored {
        outln!(
            "{restore} {} as {} (the previous output of an interrupted open --force)",
            shown(t),
            esc(&to.to_string_lossy())
        );
    }
    for t in &c.in_use {
        outln!(
            "kept {}: a running modelseal holds it, or made it less than {} s ago",
            shown(t),
            modelseal::fs::CLEAN_GRACE.as_secs()
        );
    }
    let bytes: u64 = c.removed.iter().map(|t| t.bytes).sum();
    let n = c.removed.len();
    outln!(
        "{remove} {n} stale temporar{} ({bytes} bytes)",
        if n == 1 { "y" } else { "ies" }
    );
}

/// Prediction output.
pub fn predictions(rows: &[Vec<f64>], classes: &[usize], names: &[String], json: bool) {
    let name = |c: usize| names.get(c).cloned();
    if json {
        let v: Vec<Value> = rows
            .iter()
            .zip(classes)
            .map(|(r, &c)| json!({"input": r, "class": c, "class_name": name(c)}))
            .collect();
        outln!("{}", Value::Array(v));
        return;
    }
    for (r, &c) in rows.iter().zip(classes) {
        let input: Vec<String> = r.iter().map(|x| x.to_string()).collect();
        match name(c) {
            Some(n) => outln!("[{}] -> {n} (class {c})", input.join(", ")),
            None => outln!("[{}] -> class {c}", input.join(", ")),
        }
    }
}
