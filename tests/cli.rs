//! The CLI contract: exact commands, stdout, stderr and exit codes of the real binary.

use std::path::Path;

mod cli_harness;
use cli_harness::{assert_refusal, ms, run, Out};

fn setup() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for k in ["alice", "bob", "eve"] {
        let o = run(d.path(), &["keygen", "-o", k]);
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    std::fs::create_dir(d.path().join("model")).unwrap();
    std::fs::write(d.path().join("model/weights.bin"), vec![7u8; 40_000]).unwrap();
    std::fs::write(d.path().join("model/config.json"), b"{}").unwrap();
    d
}

fn seal(d: &Path) {
    let o = run(
        d,
        &[
            "seal",
            "-k",
            "alice.key",
            "-r",
            "bob.pub",
            "--name",
            "iris-tree",
            "--model-version",
            "1.0.0",
            "--meta",
            "owner=ml-team",
            "-o",
            "m.mseal",
            "model",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("sealed iris-tree 1.0.0 (2 file(s), 40002 bytes) to m.mseal"),
        "{}",
        o.stdout
    );
}

#[test]
fn keygen_writes_a_private_key_and_never_overwrites() {
    let d = setup();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(d.path().join("alice.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let key_before = std::fs::read(d.path().join("alice.key")).unwrap();
    let o = run(d.path(), &["keygen", "-o", "alice"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.starts_with("error: ") && o.stderr.contains("already exists"),
        "{}",
        o.stderr
    );
    assert_eq!(
        std::fs::read(d.path().join("alice.key")).unwrap(),
        key_before
    );
    let o = run(d.path(), &["keygen", "--shared", "-o", "ci"]);
    assert_eq!(o.code, 0);
    assert!(std::fs::read_to_string(d.path().join("ci.key"))
        .unwrap()
        .contains("MODELSEAL-SHARED-V1:"));
}

#[test]
fn seal_verify_open_and_inspect() {
    let d = setup();
    seal(d.path());
    let o = run(d.path(), &["verify", "-t", "alice.pub", "m.mseal"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("VERIFIED"), "{}", o.stdout);
    let o = run(
        d.path(),
        &["verify", "--json", "-t", "alice.pub", "m.mseal"],
    );
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["model_name"], "iris-tree");
    let o = run(d.path(), &["inspect", "m.mseal"]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.starts_with("UNVERIFIED"), "{}", o.stdout);
    let o = run(
        d.path(),
        &[
            "open",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "-o",
            "out",
            "m.mseal",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        std::fs::read(d.path().join("out/model/weights.bin")).unwrap(),
        vec![7u8; 40_000]
    );
    // A trust directory and MODELSEAL_TRUST.
    std::fs::create_dir(d.path().join("trusted")).unwrap();
    std::fs::copy(
        d.path().join("alice.pub"),
        d.path().join("trusted/alice.pub"),
    )
    .unwrap();
    let o = ms(d.path())
        .env("MODELSEAL_TRUST", "trusted")
        .args(["verify", "m.mseal"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn refusals_exit_1_with_error_and_hint_and_leave_nothing() {
    let d = setup();
    seal(d.path());
    let snapshot = || {
        let mut v: Vec<_> = walk(d.path());
        v.sort();
        v
    };
    let before = snapshot();
    assert_refusal(
        &run(
            d.path(),
            &[
                "open", "-t", "eve.pub", "-i", "bob.key", "-o", "out", "m.mseal",
            ],
        ),
        "not in the trust store",
    );
    assert_refusal(
        &run(
            d.path(),
            &[
                "open",
                "-t",
                "alice.pub",
                "-i",
                "eve.key",
                "-o",
                "out",
                "m.mseal",
            ],
        ),
        "no recipient stanza",
    );
    assert_refusal(
        &run(d.path(), &["verify", "-t", "eve.pub", "m.mseal"]),
        "not in the trust store",
    );
    let mut bytes = std::fs::read(d.path().join("m.mseal")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(d.path().join("flipped.mseal"), &bytes).unwrap();
    let before_flipped = {
        let mut v = walk(d.path());
        v.sort();
        v
    };
    assert_refusal(
        &run(
            d.path(),
            &[
                "open",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                "-o",
                "out",
                "flipped.mseal",
            ],
        ),
        "payload digest mismatch",
    );
    assert_refusal(
        &run(d.path(), &["verify", "-t", "alice.pub", "flipped.mseal"]),
        "payload digest mismatch",
    );
    bytes[8] = 0;
    bytes[9] = 9;
    std::fs::write(d.path().join("v9.mseal"), &bytes).unwrap();
    assert_refusal(
        &run(d.path(), &["verify", "-t", "alice.pub", "v9.mseal"]),
        "unsupported format version 9 (this build supports version 1)",
    );
    std::fs::remove_file(d.path().join("v9.mseal")).unwrap();
    assert_eq!(snapshot(), before_flipped);
    std::fs::remove_file(d.path().join("flipped.mseal")).unwrap();
    assert_eq!(snapshot(), before);
    // Existing output.
    assert_refusal(
        &run(
            d.path(),
            &[
                "seal",
                "-k",
                "alice.key",
                "-r",
                "bob.pub",
                "--name",
                "x",
                "--model-version",
                "1.0.0",
                "-o",
                "m.mseal",
                "model",
            ],
        ),
        "already exists",
    );
    std::fs::create_dir(d.path().join("out")).unwrap();
    assert_refusal(
        &run(
            d.path(),
            &[
                "open",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                "-o",
                "out",
                "m.mseal",
            ],
        ),
        "already exists",
    );
    // A world-readable secret key.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            d.path().join("bob.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_refusal(
            &run(
                d.path(),
                &[
                    "open",
                    "-t",
                    "alice.pub",
                    "-i",
                    "bob.key",
                    "-o",
                    "out2",
                    "m.mseal",
                ],
            ),
            "readable by others",
        );
    }
}

#[test]
fn usage_and_io_errors_exit_2() {
    let d = setup();
    let o = run(d.path(), &["seal", "-k", "alice.key"]);
    assert_eq!(o.code, 2);
    let o = run(d.path(), &["verify", "-t", "alice.pub", "missing.mseal"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.starts_with("error: opening missing.mseal"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("\nhint: "), "{}", o.stderr);
    let o = run(
        d.path(),
        &[
            "seal",
            "-k",
            "alice.key",
            "-r",
            "bob.pub",
            "--name",
            "../bad",
            "--model-version",
            "1.0.0",
            "-o",
            "x.mseal",
            "model",
        ],
    );
    // The caller's own name: an input error (exit 2), with the naming rule as the hint.
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("hint: model names are"), "{}", o.stderr);
    assert!(!d.path().join("x.mseal").exists());
}

#[test]
fn secrets_are_never_printed() {
    let d = setup();
    seal(d.path());
    let secret_line = |f: &str| {
        std::fs::read_to_string(d.path().join(f))
            .unwrap()
            .lines()
            .find(|l| !l.starts_with('#'))
            .unwrap()
            .to_string()
    };
    let (alice, bob) = (secret_line("alice.key"), secret_line("bob.key"));
    let payload = |l: &str| l.split_once(':').unwrap().1.to_string();
    let mut all = String::new();
    for args in [
        vec![
            "open",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "-o",
            "out",
            "m.mseal",
        ],
        vec!["inspect", "--json", "m.mseal"],
        vec!["verify", "-t", "alice.pub", "m.mseal"],
        vec![
            "open",
            "-t",
            "alice.pub",
            "-i",
            "alice.key",
            "-o",
            "out3",
            "m.mseal",
        ],
        vec![
            "seal",
            "-k",
            "bob.key",
            "-r",
            "alice.key",
            "--name",
            "x",
            "--model-version",
            "1.0.0",
            "-o",
            "y.mseal",
            "model",
        ],
    ] {
        let o = run(d.path(), &args);
        all.push_str(&o.stdout);
        all.push_str(&o.stderr);
    }
    for secret in [payload(&alice), payload(&bob)] {
        assert!(
            !all.contains(&secret[..20]),
            "a secret key appeared in the output"
        );
    }
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
        out.push(e.path());
    }
    out
}

#[test]
fn times_after_year_9999_are_refused_at_seal_and_at_parse_and_never_panic_a_printer() {
    let d = keys_dir();
    let seal = |env: Option<&str>, expires: Option<&str>| {
        let mut c = ms(d.path());
        c.args(SEAL_M_FOR_BOB).args(["-o", "t.mseal"]);
        if let Some(e) = env {
            c.env("SOURCE_DATE_EPOCH", e);
        }
        if let Some(x) = expires {
            c.args(["--expires", x]);
        }
        c.arg("m.bin").output().unwrap()
    };
    for (env, exp) in [(Some("253402300800"), None), (None, Some("99999999d"))] {
        let o = seal(env, exp);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.contains("9999-12-31T23:59:59Z"), "{err}");
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(!d.path().join("t.mseal").exists());
    }
    // The last representable second still seals, and every printer renders it.
    let o = seal(Some("253402300700"), None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for args in [
        &["inspect"][..],
        &["inspect", "--json"],
        &["verify", "-t", "alice.pub"],
        &["verify", "--json", "-t", "alice.pub"],
    ] {
        let o = ms(d.path()).args(args).arg("t.mseal").output().unwrap();
        assert!(
            o.status.code() == Some(0) || o.status.code() == Some(1),
            "{args:?}: {:?}",
            o.status
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("9999-12-31T23:58:20Z"),
            "{args:?}"
        );
    }
    // A header claiming a later time (anyone can write one: inspect checks no signature) is
    // refused as malformed, exit 1, by every reader.
    let mut a = std::fs::read(d.path().join("t.mseal")).unwrap();
    let t = 253402300700u64.to_le_bytes();
    let at = a
        .windows(8)
        .position(|w| w == t)
        .expect("created is in the header");
    a[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(d.path().join("late.mseal"), &a).unwrap();
    for args in [
        &["inspect"][..],
        &["verify", "-t", "alice.pub"],
        &["verify", "--json", "-t", "alice.pub"],
    ] {
        let o = ms(d.path()).args(args).arg("late.mseal").output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(
            err.starts_with("error: ") && err.contains("9999-12-31T23:59:59Z"),
            "{err}"
        );
    }
}

#[test]
fn archive_text_with_terminal_escapes_is_printed_escaped_and_kept_exact_in_json() {
    let d = keys_dir();
    let evil = "\u{1b}[2J\u{1b}]0;pwned\u{7}";
    ms(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["-o", "t.mseal"])
        .arg("--meta")
        .arg(format!("owner={evil}"))
        .arg("--description")
        .arg(format!("desc {evil}"))
        .arg("m.bin")
        .assert()
        .success();
    for args in [
        &["inspect", "-t", "alice.pub", "-i", "bob.key"][..],
        &["verify", "-t", "alice.pub", "-i", "bob.key"],
    ] {
        let o = ms(d.path()).args(args).arg("t.mseal").output().unwrap();
        assert!(o.status.success(), "{args:?}");
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "{args:?}: raw escape printed"
        );
        assert!(out.contains("owner = \\u{1b}[2J"), "{out}");
        assert!(out.contains("desc \\u{1b}[2J"), "{out}");
    }
    let o = ms(d.path())
        .args([
            "inspect",
            "--json",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "t.mseal",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["manifest"]["metadata"]["owner"], evil);
}

#[test]
fn a_trust_store_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let d = sealed_dir();
    let trust = d.path().join("trust");
    std::fs::create_dir(&trust).unwrap();
    std::fs::copy(d.path().join("alice.pub"), trust.join("alice.pub")).unwrap();
    std::fs::write(
        trust.join("policy.toml"),
        "[[key]]\nfile = \"alice.pub\"\nmodels = [\"m\"]\n",
    )
    .unwrap();
    let set = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set(&trust, 0o755);
    set(&trust.join("alice.pub"), 0o644);
    set(&trust.join("policy.toml"), 0o644);
    let verify = |t: &str| {
        ms(d.path())
            .args(["verify", "-t", t, "t.mseal"])
            .output()
            .unwrap()
    };
    assert!(verify("trust").status.success());
    for (path, mode) in [
        (trust.clone(), 0o777),
        (trust.join("alice.pub"), 0o666),
        (trust.join("policy.toml"), 0o620),
    ] {
        let before = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        set(&path, mode);
        let o = verify("trust");
        assert_eq!(o.status.code(), Some(1), "{}", path.display());
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.contains("is writable by group or others"), "{err}");
        assert!(
            err.lines()
                .nth(1)
                .unwrap()
                .starts_with("hint: run `chmod go-w`"),
            "{err}"
        );
        set(&path, before);
    }
    // A single .pub given directly is held to the same rule.
    set(&d.path().join("alice.pub"), 0o646);
    assert_eq!(verify("alice.pub").status.code(), Some(1));
    set(&d.path().join("alice.pub"), 0o644);

    // So is every directory above it (a link to it is resolved first): one others may write, not
    // sticky, lets them swap the store. A sticky one (as /tmp) does not.
    let shared = d.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::copy(d.path().join("alice.pub"), shared.join("alice.pub")).unwrap();
    std::os::unix::fs::symlink(shared.join("alice.pub"), d.path().join("via-link.pub")).unwrap();
    set(&shared, 0o1777);
    assert!(verify("shared/alice.pub").status.success());
    set(&shared, 0o777);
    // A link that lives in a directory others may write (they could repoint it) is refused too,
    // though what it points to is safe.
    let good = d.path().join("good");
    std::fs::create_dir(&good).unwrap();
    std::fs::copy(d.path().join("alice.pub"), good.join("alice.pub")).unwrap();
    std::os::unix::fs::symlink(&good, shared.join("link-to-good")).unwrap();
    for t in ["shared/alice.pub", "via-link.pub", "shared/link-to-good"] {
        let o = verify(t);
        assert_eq!(o.status.code(), Some(1), "{t}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(
            err.contains("(above the trust store") && err.contains("mode 777"),
            "{err}"
        );
        assert!(err.contains("hint: run `chmod go-w`"), "{err}");
    }
    // `trust add` does not write into a store `verify` would refuse.
    let o = ms(d.path())
        .args(["trust", "--dir", "shared/store", "add", "alice.pub"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("(above the trust store"));
    assert!(!shared.join("store").exists(), "nothing left behind");
    set(&shared, 0o755);

    // A store owned by another user (who could rewrite it whatever its mode) is refused.
    if !is_root() {
        println!("not root: cannot chown the trust store to another user; that case is not tested");
        return;
    }
    std::os::unix::fs::chown(&trust, Some(65534), None).unwrap();
    let o = verify("trust");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("is owned by user 65534, not by you (user 0) or root"),
        "{err}"
    );
    assert!(
        err.contains("hint: keep the trust store in files you own"),
        "{err}"
    );
    std::os::unix::fs::chown(&trust, Some(0), None).unwrap();
    std::os::unix::fs::chown(trust.join("alice.pub"), Some(65534), None).unwrap();
    assert_eq!(verify("trust").status.code(), Some(1));
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().unwrap();
    std::fs::metadata(probe.path()).unwrap().uid() == 0
}

#[test]
fn force_replaces_only_what_the_command_writes() {
    let d = keys_dir();
    let fifo = d.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir(d.path().join("dir")).unwrap();
    std::os::unix::fs::symlink("m.bin", d.path().join("link")).unwrap();
    let seal = |out: &str, force: bool| {
        let mut c = ms(d.path());
        c.args(SEAL_M_FOR_BOB).args(["-o", out]);
        if force {
            c.arg("--force");
        }
        c.arg("m.bin").output().unwrap()
    };
    use std::os::unix::fs::FileTypeExt;
    for (out, found) in [
        ("fifo", "a FIFO"),
        ("dir", "a directory"),
        ("link", "a symbolic link"),
    ] {
        for force in [false, true] {
            let o = seal(out, force);
            assert_eq!(o.status.code(), Some(1), "{out} {force}");
            let err = String::from_utf8(o.stderr).unwrap();
            assert!(
                err.contains(&format!(
                    "is {found}; modelseal replaces only a regular file"
                )),
                "{err}"
            );
            assert!(!err.contains("--force to replace"), "{err}");
        }
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(d.path().join("dir").is_dir());
    assert_eq!(std::fs::read(d.path().join("m.bin")).unwrap(), b"model");
    // A regular file is replaced with --force.
    std::fs::write(d.path().join("old.mseal"), b"old").unwrap();
    assert!(seal("old.mseal", true).status.success());
    assert!(seal("t.mseal", false).status.success());
    // open --force replaces a directory, never a regular file or a FIFO.
    let open = |out: &str| {
        ms(d.path())
            .args([
                "open",
                "--no-state",
                "--force",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                "-o",
                out,
                "t.mseal",
            ])
            .output()
            .unwrap()
    };
    std::fs::write(d.path().join("plain"), b"keep").unwrap();
    for (out, found) in [("plain", "a regular file"), ("fifo", "a FIFO")] {
        let o = open(out);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(String::from_utf8(o.stderr)
            .unwrap()
            .contains(&format!("is {found}; modelseal replaces only a directory")));
    }
    assert_eq!(std::fs::read(d.path().join("plain")).unwrap(), b"keep");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(open("dir").status.success());
    assert!(d.path().join("dir/m.bin").exists());
}

#[test]
fn command_line_mistakes_print_exactly_an_error_and_a_hint_line() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        &["--bogus"][..],
        &["seal"],
        &["open", "-o", "x"],
        &[
            "seal",
            "--compression",
            "zzz",
            "-k",
            "a",
            "-r",
            "b",
            "--name",
            "m",
            "--model-version",
            "1.0.0",
            "-o",
            "x",
            "y",
        ],
        &["nosuchcommand"],
        &[],
    ] {
        let o = ms(d.path()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert!(
            lines[0].starts_with("error: ") && lines[1].starts_with("hint: "),
            "{err}"
        );
    }
    let o = ms(d.path()).args(["seal"]).output().unwrap();
    assert!(String::from_utf8(o.stderr)
        .unwrap()
        .contains("--name <NAME>"));
    // Help and version still print in full, exit 0.
    for args in [&["--help"][..], &["--version"], &["seal", "--help"]] {
        let o = ms(d.path()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(!o.stdout.is_empty());
    }
}

#[test]
fn a_malformed_policy_is_one_error_line_naming_the_line() {
    let d = sealed_dir();
    std::fs::create_dir(d.path().join("trust")).unwrap();
    std::fs::copy(d.path().join("alice.pub"), d.path().join("trust/alice.pub")).unwrap();
    std::fs::write(
        d.path().join("trust/policy.toml"),
        "[[key]]\nfile = \"alice.pub\"\nmodels = [unquoted]\n",
    )
    .unwrap();
    let o = ms(d.path())
        .args(["verify", "-t", "trust", "t.mseal"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.contains("invalid trust policy") && err.contains("(line 3)"),
        "{err}"
    );
}

/// A 64 KiB tmpfs, unmounted on drop; None (with the reason printed) when this is not root or
/// mounting is not allowed here.
struct TinyFs(std::path::PathBuf);

impl TinyFs {
    fn mount(at: &Path) -> Option<TinyFs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            println!("skipped: mounting a tmpfs needs root (the disk-full case is not run)");
            return None;
        }
        Some(TinyFs(at.to_path_buf()))
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_an_io_error_whose_hint_says_so_and_nothing_partial_is_left() {
    let d = tempfile::tempdir().unwrap();
    let Some(fs) = TinyFs::mount(&d.path().join("full")) else {
        return;
    };
    for k in ["alice", "bob"] {
        ms(d.path()).args(["keygen", "-o", k]).assert().success();
    }
    let big: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(d.path().join("m.bin"), big).unwrap();
    let o = ms(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["-o", "full/t.mseal", "m.bin"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.lines()
            .nth(1)
            .unwrap()
            .starts_with("hint: free some space"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&fs.0).unwrap().count(),
        0,
        "nothing left on the full disk"
    );
}

#[test]
fn a_file_rewritten_in_place_at_the_same_size_while_it_is_sealed_is_refused() {
    use std::io::{Seek, SeekFrom, Write};
    let d = tempfile::tempdir().unwrap();
    for k in ["alice", "bob"] {
        ms(d.path()).args(["keygen", "-o", k]).assert().success();
    }
    // Incompressible, so the default choice seals it in stored mode (the single-pass path).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..192 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let input = d.path().join("weights.bin");
    std::fs::write(&input, &data).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (input, stop) = (input.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&input)
                .unwrap();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.seek(SeekFrom::Start((i * 7919 * 4096) % (190 << 20)))
                    .unwrap();
                f.write_all(&[i as u8; 4096]).unwrap();
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let o = ms(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["-o", "t.mseal"])
        .arg(&input)
        .output()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("weights.bin"), "{err}");
    assert!(
        err.lines()
            .nth(1)
            .unwrap()
            .contains("stop whatever is writing the input"),
        "{err}"
    );
    assert!(!d.path().join("t.mseal").exists());
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".modelseal"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left");
}

#[test]
fn an_unreadable_state_is_refused_without_leaving_a_lock_and_a_directory_is_an_io_error() {
    let d = sealed_dir();
    std::fs::write(d.path().join("corrupt.json"), b"{not json").unwrap();
    std::fs::write(d.path().join("empty.json"), b"").unwrap();
    std::fs::create_dir(d.path().join("dir.json")).unwrap();
    for (state, code) in [("corrupt.json", 1), ("empty.json", 1), ("dir.json", 2)] {
        for cmd in [&["verify"][..], &["open", "-i", "bob.key", "-o", "out"]] {
            let o = ms(d.path())
                .args(cmd)
                .args(["-t", "alice.pub", "--state", state, "t.mseal"])
                .output()
                .unwrap();
            assert_eq!(
                o.status.code(),
                Some(code),
                "{state} {cmd:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                !d.path().join(format!("{state}.lock")).exists(),
                "{state}: a lock was left"
            );
            assert!(!d.path().join("out").exists());
        }
    }
}

#[test]
fn seal_side_limit_errors_are_input_errors_exit_2_with_a_short_line() {
    let d = keys_dir();
    std::fs::create_dir(d.path().join("many")).unwrap();
    for i in 0..10_001 {
        std::fs::write(d.path().join(format!("many/f{i}")), b"").unwrap();
    }
    std::fs::create_dir(d.path().join("ctl")).unwrap();
    std::fs::write(d.path().join("ctl/a\u{1}b"), b"x").unwrap();
    let long_meta = format!("k={}", "a".repeat(70_000));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["many"], "more than 10000 files"),
        (vec!["ctl"], "control character"),
        (
            vec!["--meta", &long_meta, "m.bin"],
            "longer than 4096 bytes",
        ),
        (vec!["--name", "bad name", "m.bin"], "invalid model name"),
    ];
    for (extra, says) in cases {
        let mut c = ms(d.path());
        c.args([
            "seal",
            "-k",
            "alice.key",
            "-r",
            "bob.pub",
            "--model-version",
            "1.0.0",
            "-o",
            "t.mseal",
        ]);
        if !extra.contains(&"--name") {
            c.args(["--name", "m"]);
        }
        let o = c.args(&extra).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{says}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(
            err.lines().next().unwrap().len() < 400,
            "a short error line: {err}"
        );
        assert!(err.contains(says), "{err}");
        let hint = err.lines().nth(1).unwrap();
        assert!(
            !hint.contains("signer") && !hint.contains("fresh copy"),
            "{hint}"
        );
        assert!(!d.path().join("t.mseal").exists());
    }
}

/// `seal` of a model named m, version 1.0.0, signed by alice for bob (the output and inputs follow).
const SEAL_M_FOR_BOB: [&str; 9] = [
    "seal",
    "-k",
    "alice.key",
    "-r",
    "bob.pub",
    "--name",
    "m",
    "--model-version",
    "1.0.0",
];

/// A directory with key pairs alice and bob and a small input m.bin.
fn keys_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for k in ["alice", "bob"] {
        ms(d.path()).args(["keygen", "-o", k]).assert().success();
    }
    std::fs::write(d.path().join("m.bin"), b"model").unwrap();
    d
}

/// [`keys_dir`] with m.bin sealed by alice for bob as t.mseal.
fn sealed_dir() -> tempfile::TempDir {
    let d = keys_dir();
    ms(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["-o", "t.mseal", "m.bin"])
        .assert()
        .success();
    d
}

fn run_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Out {
    let o = ms(dir).args(args).write_stdin(input).output().unwrap();
    Out {
        code: o.status.code().unwrap(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

/// The names in `dir`, sorted (hidden ones too).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn dash_is_standard_output_for_seal_and_standard_input_for_verify_open_and_inspect() {
    let d = keys_dir();
    let before = names(d.path());
    let sealed = ms(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["-o", "-", "m.bin"])
        .output()
        .unwrap();
    assert_eq!(sealed.status.code(), Some(0));
    let err = String::from_utf8(sealed.stderr).unwrap();
    assert!(
        err.starts_with("sealed m 1.0.0 (1 file(s), 5 bytes) to standard output\n"),
        "the summary goes to stderr when stdout carries the archive: {err}"
    );
    let archive = sealed.stdout;
    assert!(archive.starts_with(b"MSEAL"), "an archive on stdout");
    assert_eq!(names(d.path()), before, "no file named - and no temporary");

    let verified = ms(d.path())
        .args(["verify", "--no-state", "-t", "alice.pub", "-"])
        .write_stdin(archive.clone())
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(0));
    assert!(String::from_utf8(verified.stdout)
        .unwrap()
        .starts_with("VERIFIED: signature by trusted key"));

    let o = run_with_stdin(
        d.path(),
        &[
            "open",
            "--no-state",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "-o",
            "out",
            "-",
        ],
        &archive,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("1 file(s) checked and written to out"));
    assert_eq!(std::fs::read(d.path().join("out/m.bin")).unwrap(), b"model");

    let o = run_with_stdin(d.path(), &["inspect", "-"], &archive);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("model:       m 1.0.0"), "{}", o.stdout);
    let o = run_with_stdin(
        d.path(),
        &["inspect", "-t", "alice.pub", "-i", "bob.key", "-"],
        &archive,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("m.bin  5 bytes"), "{}", o.stdout);

    // `./-` is still a file named -.
    std::fs::write(d.path().join("-"), &archive).unwrap();
    ms(d.path())
        .args(["verify", "--no-state", "-t", "alice.pub", "./-"])
        .write_stdin(Vec::new())
        .assert()
        .success();
}

#[test]
fn a_damaged_or_short_archive_on_standard_input_is_refused_and_leaves_nothing() {
    let d = keys_dir();
    let archive = ms(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["-o", "-", "m.bin"])
        .output()
        .unwrap()
        .stdout;
    let before = names(d.path());
    let mut flipped = archive.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    for (input, says) in [
        (archive[..archive.len() - 1].to_vec(), "truncated"),
        (flipped, "payload digest mismatch"),
        (Vec::new(), "truncated inside the prefix"),
    ] {
        let o = run_with_stdin(
            d.path(),
            &[
                "open",
                "--no-state",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                "-o",
                "out",
                "-",
            ],
            &input,
        );
        assert_refusal(&o, says);
        assert_eq!(names(d.path()), before, "{says}: nothing left");
    }
}

#[test]
fn a_seal_to_standard_output_that_fails_writes_nothing_there() {
    let d = keys_dir();
    let o = ms(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["--meta", &format!("k={}", "v".repeat(70_000))])
        .args(["-o", "-", "m.bin"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "not one byte of a partial archive");
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 2, "{err}");
}

#[test]
fn a_reader_that_stops_early_is_an_io_error_that_says_so() {
    let d = keys_dir();
    std::fs::write(d.path().join("big.bin"), common_bytes(8 << 20)).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("modelseal"))
        .current_dir(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["-o", "-", "big.bin"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.contains("Broken pipe"), "{err}");
    assert!(
        err.contains("hint: the program reading the output stopped early"),
        "{err}"
    );
}

#[test]
fn open_to_standard_output_is_refused_as_usage() {
    let d = sealed_dir();
    let before = names(d.path());
    let o = run(
        d.path(),
        &[
            "open",
            "--no-state",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "-o",
            "-",
            "t.mseal",
        ],
    );
    assert_eq!(o.code, 2);
    assert_eq!(
        o.stderr,
        "error: this command writes a directory, which standard output cannot hold\n\
         hint: give -o DIR (./- for a directory named -)\n"
    );
    assert_eq!(names(d.path()), before);
}

/// Incompressible bytes (so that the archive is as large as the input).
fn common_bytes(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_duration_expiry_counts_from_the_creation_time() {
    // The same instant as `expires=timedelta(days=90)` in Python (python/tests/test_modelseal.py).
    let d = keys_dir();
    ms(d.path())
        .env("SOURCE_DATE_EPOCH", "1800000000")
        .args(SEAL_M_FOR_BOB)
        .args(["--expires", "90d", "-o", "t.mseal", "m.bin"])
        .assert()
        .success();
    let o = run(d.path(), &["inspect", "--json", "t.mseal"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["created"], "2027-01-15T08:00:00Z", "{v}");
    assert_eq!(v["expires"], "2027-04-15T08:00:00Z", "{v}");
}

/// The binary as a plain `std::process::Command` (for redirections assert_cmd does not offer).
fn std_cmd(dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("modelseal"));
    c.current_dir(dir)
        .env_remove("MODELSEAL_TRUST")
        .env_remove("SOURCE_DATE_EPOCH")
        .env("XDG_STATE_HOME", dir.join(".state"))
        .env("XDG_CONFIG_HOME", dir.join(".config"));
    c
}

#[test]
fn a_stdout_that_cannot_be_written_is_two_lines_and_a_lost_stderr_is_no_panic() {
    let d = sealed_dir();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = std_cmd(d.path())
        .args(["verify", "--no-state", "-t", "alice.pub", "t.mseal"])
        .stdout(full.try_clone().unwrap())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.starts_with("error: writing to standard output: "),
        "{err}"
    );
    assert!(err.contains("hint: free some space"), "{err}");

    // seal -o - prints its summary to stderr: a stderr nobody can write changes nothing.
    let o = std_cmd(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["-o", "-", "m.bin"])
        .stdout(std::process::Stdio::piped())
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.starts_with(b"MSEAL"));
}

#[test]
fn an_output_name_near_the_file_name_limit_is_sealed_and_opened() {
    let d = keys_dir();
    let long = format!("{}.mseal", "a".repeat(240));
    ms(d.path())
        .args(SEAL_M_FOR_BOB)
        .args(["-o", &long, "m.bin"])
        .assert()
        .success();
    let out = "b".repeat(250);
    ms(d.path())
        .args([
            "open",
            "--no-state",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "-o",
            &out,
            &long,
        ])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(d.path().join(&out).join("m.bin")).unwrap(),
        b"model"
    );
}

#[test]
fn error_lines_escape_control_characters_of_the_names_they_quote() {
    let d = keys_dir();
    let o = run(d.path(), &["inspect", "no\x1b[2Jsuch\nfile"]);
    assert_eq!(o.code, 2);
    assert_eq!(o.stderr.lines().count(), 2, "{}", o.stderr);
    assert!(!o.stderr.contains('\x1b'), "{:?}", o.stderr);
    assert!(o.stderr.contains("no\\u{1b}[2Jsuch\\nfile"), "{}", o.stderr);
}

#[test]
fn public_archives_need_no_key_and_say_public_everywhere() {
    let d = setup();
    let p = d.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sklearn");
    std::fs::create_dir(p.join("pubmodel")).unwrap();
    std::fs::copy(
        fixtures.join("iris_tree_p5.pkl"),
        p.join("pubmodel/tree.pkl"),
    )
    .unwrap();
    std::fs::write(p.join("pubmodel/config.json"), b"{\"depth\": 3}").unwrap();
    let o = run(
        p,
        &[
            "seal",
            "--public",
            "-k",
            "alice.key",
            "--name",
            "iris-tree",
            "--model-version",
            "1.0.0",
            "-o",
            "pub.mseal",
            "pubmodel",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("PUBLIC: stored in the clear"),
        "{}",
        o.stdout
    );

    // inspect without trust labels it, unverified.
    let o = run(p, &["inspect", "pub.mseal"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("UNVERIFIED"), "{}", o.stdout);
    assert!(
        o.stdout.contains("recipients:  none: PUBLIC"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("MSEAL1-ED25519-PUBLIC-BLAKE3"),
        "{}",
        o.stdout
    );

    // verify with no key checks and shows the manifest, with the pickle's globals.
    let o = run(p, &["verify", "-t", "alice.pub", "--no-state", "pub.mseal"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("VERIFIED"), "{}", o.stdout);
    assert!(o.stdout.contains("pubmodel/tree.pkl"), "{}", o.stdout);
    assert!(
        o.stdout
            .contains("sklearn.tree._classes.DecisionTreeClassifier"),
        "{}",
        o.stdout
    );
    let o = run(
        p,
        &[
            "verify",
            "-t",
            "alice.pub",
            "--no-state",
            "--json",
            "pub.mseal",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["public"], true);
    assert_eq!(v["manifest"]["files"].as_array().unwrap().len(), 2);

    // The CI gate: the shipped scikit-learn list, no key at all.
    let o = run(
        p,
        &[
            "verify",
            "-t",
            "alice.pub",
            "--no-state",
            "--allow-globals",
            "@sklearn",
            "pub.mseal",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);

    // open with no -i.
    let o = run(
        p,
        &[
            "open",
            "-t",
            "alice.pub",
            "--no-state",
            "-o",
            "out",
            "pub.mseal",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        std::fs::read(p.join("out/pubmodel/config.json")).unwrap(),
        b"{\"depth\": 3}"
    );
}

#[test]
fn public_refusals_are_one_error_and_one_hint_and_leave_nothing() {
    let d = setup();
    let p = d.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sklearn");
    std::fs::copy(fixtures.join("evil_reduce.pkl"), p.join("model/evil.pkl")).unwrap();
    assert_eq!(run(p, &["keygen", "--shared", "-o", "ci"]).code, 0);
    let before = names(p);
    // Mixing --public with recipients: a usage error (exit 2), nothing written.
    for extra in [&["-r", "bob.pub"][..], &["--shared-key", "ci.key"][..]] {
        let mut args = vec![
            "seal",
            "--public",
            "-k",
            "alice.key",
            "--name",
            "m",
            "--model-version",
            "1.0.0",
            "-o",
            "x.mseal",
        ];
        args.extend_from_slice(extra);
        args.push("model");
        let o = run(p, &args);
        assert_eq!(o.code, 2, "{}", o.stderr);
        let lines: Vec<&str> = o.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{}", o.stderr);
        assert!(lines[1].contains("--public"), "{}", o.stderr);
        assert_eq!(names(p), before);
    }
    // A public model whose pickle runs a command: the no-key gate refuses it, exit 1.
    let o = run(
        p,
        &[
            "seal",
            "--public",
            "-k",
            "alice.key",
            "--name",
            "m",
            "--model-version",
            "1.0.0",
            "-o",
            "evil.mseal",
            "model",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(
        p,
        &[
            "verify",
            "-t",
            "alice.pub",
            "--no-state",
            "--allow-globals",
            "@sklearn",
            "evil.mseal",
        ],
    );
    assert_refusal(&o, "outside the allowed globals");
    // An encrypted archive checked without a key: usage (exit 2), hint names -i.
    std::fs::remove_file(p.join("model/evil.pkl")).unwrap();
    seal(p);
    let o = run(
        p,
        &[
            "verify",
            "-t",
            "alice.pub",
            "--no-state",
            "--allow-globals",
            "@sklearn",
            "m.mseal",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("-i IDENTITY.key"), "{}", o.stderr);
    let o = run(
        p,
        &[
            "open",
            "-t",
            "alice.pub",
            "--no-state",
            "-o",
            "out",
            "m.mseal",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(!p.join("out").exists());
    // A public archive with a flipped payload byte: refused by the digest, nothing opened.
    let mut a = std::fs::read(p.join("evil.mseal")).unwrap();
    let n = a.len();
    a[n - 20] ^= 1;
    std::fs::write(p.join("bad.mseal"), &a).unwrap();
    let o = run(
        p,
        &[
            "open",
            "-t",
            "alice.pub",
            "--no-state",
            "-o",
            "out",
            "bad.mseal",
        ],
    );
    assert_refusal(&o, "payload digest mismatch");
    assert!(!p.join("out").exists());
}

#[test]
fn oms_signature_from_an_archive_without_a_bundle_is_one_error_and_one_hint() {
    let d = setup();
    let p = d.path();
    seal(p);
    let before = names(p);
    let o = run(
        p,
        &[
            "open",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "--no-state",
            "--oms-signature",
            "m.sig",
            "-o",
            "out",
            "m.mseal",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", o.stderr);
    assert!(lines[0].contains("carries no OMS bundle"), "{}", o.stderr);
    assert!(lines[1].contains("--oms-key"), "{}", o.stderr);
    assert_eq!(names(p), before);
}
