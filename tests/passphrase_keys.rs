//! Passphrase-encrypted secret keys (issue 15 §2, keys/README.md): keygen and every use through
//! `MODELSEAL_PASSPHRASE_FILE` or a terminal, a wrong passphrase, a truncated or altered key, an
//! excessive work factor refused before any work, and `key passwd` in place.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use modelseal::error::KeyError;
use modelseal::keys::{SecretKey, ENCRYPTED_SECRET_KEY_TYPE};
use modelseal::Error;

mod cli_harness;
use cli_harness::{run_env as run, LOG_N};

fn secret_file(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// An encrypted line with its payload changed by `edit` and its checksum recomputed, as a
/// careful attacker would (FORMAT.md §10: check = SHA-256(TYPE ":" payload)[0..4]).
fn reencode(line: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let (kind, b64) = line.split_once(':').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(b64).unwrap();
    let mut payload = raw[..raw.len() - 4].to_vec();
    edit(&mut payload);
    let mut data = format!("{kind}:").into_bytes();
    data.extend_from_slice(&payload);
    let check = modelseal::crypto::sha256(&data);
    payload.extend_from_slice(&check[..4]);
    format!("{kind}:{}", URL_SAFE_NO_PAD.encode(payload))
}

#[test]
fn the_library_round_trips_and_refuses_a_wrong_passphrase_or_an_altered_key() {
    let key = SecretKey::generate();
    let line = key.to_encrypted_line(b"correct horse", 10).unwrap();
    assert!(line.starts_with(ENCRYPTED_SECRET_KEY_TYPE));
    let o = Path::new("k");
    let back = SecretKey::from_encrypted_line(&line, b"correct horse", o).unwrap();
    assert_eq!(back.public(), key.public());
    // Fresh salt every time: the same key and passphrase never give the same line.
    assert_ne!(*key.to_encrypted_line(b"correct horse", 10).unwrap(), *line);
    let e = SecretKey::from_encrypted_line(&line, b"correct horsf", o).unwrap_err();
    assert!(
        matches!(e, Error::Key(KeyError::WrongPassphrase { .. })),
        "{e:?}"
    );
    // An altered ciphertext, tag or salt with a valid checksum: the AEAD refuses it.
    for at in [1, 16, 17, 50, 96] {
        let bad = reencode(&line, |p| p[at] ^= 1);
        let e = SecretKey::from_encrypted_line(&bad, b"correct horse", o).unwrap_err();
        assert!(
            matches!(e, Error::Key(KeyError::WrongPassphrase { .. })),
            "{at}: {e:?}"
        );
    }
    // The work factor is authenticated too (it is in the AAD): lowered by one, refused.
    let weaker = reencode(&line, |p| p[0] = 11);
    let e = SecretKey::from_encrypted_line(&weaker, b"correct horse", o).unwrap_err();
    assert!(
        matches!(e, Error::Key(KeyError::WrongPassphrase { .. })),
        "{e:?}"
    );
    // A typo or a truncation: the checksum or the length, before any scrypt work.
    let (kind, b64) = line.split_once(':').unwrap();
    let typo = format!("{kind}:{}A{}", &b64[..10], &b64[11..]);
    let e = SecretKey::from_encrypted_line(&typo, b"correct horse", o).unwrap_err();
    assert!(
        matches!(e, Error::Key(KeyError::BadChecksum { .. })),
        "{e:?}"
    );
    let short = &line[..line.len() - 6];
    let e = SecretKey::from_encrypted_line(short, b"correct horse", o).unwrap_err();
    assert!(matches!(e, Error::Key(KeyError::Malformed { .. })), "{e:?}");
}

#[test]
fn excessive_or_weak_work_factors_are_refused_before_any_work() {
    let line = SecretKey::generate().to_encrypted_line(b"p", 10).unwrap();
    for log_n in [0u8, 9, 23, 30, 63, 255] {
        let hostile = reencode(&line, |p| p[0] = log_n);
        let e = SecretKey::from_encrypted_line(&hostile, b"p", Path::new("k")).unwrap_err();
        assert!(
            matches!(e, Error::Key(KeyError::WorkFactor { log_n: n, min: 10, max: 22, .. }) if n == log_n),
            "{log_n}: {e:?}"
        );
    }
    assert!(matches!(
        SecretKey::generate().to_encrypted_line(b"p", 23),
        Err(Error::Key(KeyError::WorkFactor { .. }))
    ));
}

#[test]
fn keygen_seal_and_open_with_a_passphrase_file_and_refusals() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    secret_file(p, "pass", "correct horse battery\n");
    secret_file(p, "wrong", "correct horse battery staple\n");
    let with = [("MODELSEAL_PASSPHRASE_FILE", "pass")];
    let o = run(p, &with, &["keygen", "--passphrase", "-o", "alice"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("passphrase-encrypted"), "{}", o.stdout);
    assert_eq!(mode(&p.join("alice.key")), 0o600);
    let text = std::fs::read_to_string(p.join("alice.key")).unwrap();
    assert!(text.contains(ENCRYPTED_SECRET_KEY_TYPE), "{text}");
    assert!(!text.contains("correct horse"));
    // An encrypted identity too: opened the same way.
    let o = run(p, &with, &["keygen", "--passphrase", "-o", "bob"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    std::fs::write(p.join("w.bin"), b"weights").unwrap();
    let seal = |env: &[(&str, &str)], out: &str| {
        run(
            p,
            env,
            &[
                "seal",
                "-k",
                "alice.key",
                "-r",
                "bob.pub",
                "--name",
                "m",
                "--model-version",
                "1.0.0",
                "-o",
                out,
                "w.bin",
            ],
        )
    };
    let o = seal(&with, "m.mseal");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(
        p,
        &with,
        &[
            "open",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "--no-state",
            "-o",
            "out",
            "m.mseal",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);

    // A wrong passphrase: exit 1, one error and one hint line, nothing written.
    let o = seal(&[("MODELSEAL_PASSPHRASE_FILE", "wrong")], "x.mseal");
    assert_eq!(o.code, 1, "{}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", o.stderr);
    assert!(lines[0].contains("wrong passphrase"), "{}", o.stderr);
    assert!(lines[1].starts_with("hint: "), "{}", o.stderr);
    assert!(!p.join("x.mseal").exists());
    // No passphrase source and no terminal: a usage error naming the variable.
    let o = seal(&[], "x.mseal");
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("MODELSEAL_PASSPHRASE_FILE"),
        "{}",
        o.stderr
    );
    assert!(!p.join("x.mseal").exists());
    // A passphrase file others can read is refused like a key file.
    std::fs::write(p.join("open.txt"), "correct horse battery\n").unwrap();
    let o = seal(&[("MODELSEAL_PASSPHRASE_FILE", "open.txt")], "x.mseal");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("chmod 600"), "{}", o.stderr);
    // A truncated key file.
    let key = std::fs::read_to_string(p.join("alice.key")).unwrap();
    secret_file(p, "cut.key", &key[..key.len() - 10]);
    let o = run(
        p,
        &with,
        &[
            "seal",
            "-k",
            "cut.key",
            "-r",
            "bob.pub",
            "--name",
            "m",
            "--model-version",
            "1.0.0",
            "-o",
            "x.mseal",
            "w.bin",
        ],
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(!p.join("x.mseal").exists());
}

#[test]
fn key_passwd_changes_adds_and_removes_the_passphrase_in_place() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    secret_file(p, "old", "old phrase\n");
    secret_file(p, "new", "new phrase\n");
    assert_eq!(run(p, &[], &["keygen", "-o", "alice"]).code, 0);
    let id = modelseal::keys::PublicKey::read(&p.join("alice.pub"))
        .unwrap()
        .key_id();
    let key = p.join("alice.key");
    // The library's own entry, so that no test sets this process's environment.
    let read_with = |file: &str| {
        let text = std::fs::read_to_string(&key).unwrap();
        let line = text
            .lines()
            .find(|l| !l.starts_with('#'))
            .unwrap()
            .to_owned();
        let pass = std::fs::read_to_string(p.join(file)).unwrap();
        SecretKey::from_encrypted_line(&line, pass.trim_end().as_bytes(), &key)
    };
    // Add a passphrase to a plain key.
    let o = run(
        p,
        &[("MODELSEAL_NEW_PASSPHRASE_FILE", "old")],
        &["key", "passwd", "-k", "alice.key"],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(SecretKey::is_encrypted_file(&key).unwrap());
    assert_eq!(mode(&key), 0o600);
    assert_eq!(read_with("old").unwrap().public().key_id(), id);
    // Change it: the old one no longer opens the key.
    let o = run(
        p,
        &[
            ("MODELSEAL_PASSPHRASE_FILE", "old"),
            ("MODELSEAL_NEW_PASSPHRASE_FILE", "new"),
        ],
        &["key", "passwd", "-k", "alice.key"],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(mode(&key), 0o600);
    assert!(matches!(
        read_with("old"),
        Err(Error::Key(KeyError::WrongPassphrase { .. }))
    ));
    assert_eq!(read_with("new").unwrap().public().key_id(), id);
    // A wrong current passphrase changes nothing.
    let before = std::fs::read(&key).unwrap();
    let o = run(
        p,
        &[
            ("MODELSEAL_PASSPHRASE_FILE", "old"),
            ("MODELSEAL_NEW_PASSPHRASE_FILE", "old"),
        ],
        &["key", "passwd", "-k", "alice.key"],
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // An empty new passphrase is refused.
    secret_file(p, "empty", "\n");
    let o = run(
        p,
        &[
            ("MODELSEAL_PASSPHRASE_FILE", "new"),
            ("MODELSEAL_NEW_PASSPHRASE_FILE", "empty"),
        ],
        &["key", "passwd", "-k", "alice.key"],
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // Remove it.
    let o = run(
        p,
        &[("MODELSEAL_PASSPHRASE_FILE", "new")],
        &["key", "passwd", "-k", "alice.key", "--remove"],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!SecretKey::is_encrypted_file(&key).unwrap());
    assert_eq!(mode(&key), 0o600);
    assert_eq!(SecretKey::read(&key).unwrap().public().key_id(), id);
    // No temporaries left beside it.
    let names: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("modelseal-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn the_terminal_is_asked_twice_on_keygen_once_on_use_and_never_echoes() {
    // Through a real pseudo-terminal: util-linux `script` runs the command on one.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "util-linux `script` is needed for the terminal test under CI"
        );
        eprintln!("skipped: no `script` to run a pseudo-terminal");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let bin = assert_cmd::cargo::cargo_bin("modelseal");
    let through_pty = |cmd: &str, answers: &[&str]| {
        use std::io::Write;
        let mut child = std::process::Command::new("script")
            .args(["-qec", cmd, "/dev/null"])
            .current_dir(p)
            .env("MODELSEAL_SCRYPT_LOG_N", LOG_N)
            .env_remove("MODELSEAL_PASSPHRASE_FILE")
            .env_remove("MODELSEAL_NEW_PASSPHRASE_FILE")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for a in answers {
            std::thread::sleep(std::time::Duration::from_millis(700));
            writeln!(stdin, "{a}").unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(700));
        drop(stdin);
        let o = child.wait_with_output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = through_pty(
        &format!("{} keygen --passphrase -o alice", bin.display()),
        &["tty phrase 1", "tty phrase 1"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("New passphrase for alice.key") && out.contains("Again"),
        "{out}"
    );
    assert!(
        !out.contains("tty phrase 1"),
        "the passphrase was echoed: {out}"
    );
    // Two different answers: refused, no key written.
    let (code, out) = through_pty(
        &format!("{} keygen --passphrase -o bob", bin.display()),
        &["one", "two"],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("differ"), "{out}");
    assert!(!p.join("bob.key").exists());
    // Used: asked once.
    std::fs::write(p.join("w.bin"), b"w").unwrap();
    let (code, out) = through_pty(
        &format!(
            "{} seal -q -k alice.key -r alice.pub --name m --model-version 1.0.0 -o m.mseal w.bin",
            bin.display()
        ),
        &["tty phrase 1"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Passphrase for alice.key"), "{out}");
    assert!(p.join("m.mseal").exists());
}
