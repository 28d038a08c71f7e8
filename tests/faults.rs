//! THREATS.md checklist 31: signals at several moments of seal and open, on the real binary. The
//! process must remove what it created (a partial archive, a directory of decrypted plaintext),
//! exit 128 + the signal, and leave the output path absent.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const MB: u64 = 1 << 20;

fn bin() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("modelseal"));
    c.env_remove("MODELSEAL_TRUST")
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Everything in `dir` whose name says modelseal made it as a temporary.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".modelseal-"))
        .collect()
}

fn setup(size: u64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for k in ["alice", "bob"] {
        assert!(bin()
            .current_dir(d.path())
            .args(["keygen", "-o", k])
            .status()
            .unwrap()
            .success());
    }
    // Incompressible, so that sealing and opening take long enough to be interrupted.
    let mut src = std::fs::File::open("/dev/urandom").unwrap().take(size);
    let mut dst = std::fs::File::create(d.path().join("big.bin")).unwrap();
    std::io::copy(&mut src, &mut dst).unwrap();
    d
}

/// Runs `args` in `dir`, sends `signal` after `after`, and returns the exit code (None when the
/// command had already finished, which the caller treats as "too fast to test at that moment").
fn interrupt(dir: &Path, args: &[&str], signal: i32, after: Duration) -> Option<i32> {
    let mut child = bin()
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    if child.try_wait().unwrap().is_some() {
        return None;
    }
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    unsafe { kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.starts_with("error: interrupted by signal"), "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
    out.status.code()
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

#[test]
fn an_interrupted_seal_leaves_no_archive_and_no_temporary() {
    let d = setup(600 * MB);
    let mut tested = 0;
    for (signal, code) in [(SIGINT, 130), (SIGTERM, 143), (SIGHUP, 129)] {
        for ms in [30, 250] {
            let args = [
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
                "t.mseal",
                "big.bin",
            ];
            match interrupt(d.path(), &args, signal, Duration::from_millis(ms)) {
                Some(c) => {
                    assert_eq!(c, code, "signal {signal} at {ms} ms");
                    tested += 1;
                }
                None => {
                    println!("seal finished before {ms} ms: that moment is not tested");
                    std::fs::remove_file(d.path().join("t.mseal")).unwrap();
                }
            }
            assert!(
                !d.path().join("t.mseal").exists(),
                "signal {signal} at {ms} ms"
            );
            assert_eq!(
                temporaries(d.path()),
                Vec::<String>::new(),
                "signal {signal} at {ms} ms"
            );
        }
    }
    assert!(
        tested >= 3,
        "at least one moment per signal was interrupted"
    );
}

#[test]
fn an_interrupted_open_leaves_no_plaintext_and_no_output() {
    let d = setup(600 * MB);
    let sealed = bin()
        .current_dir(d.path())
        .args([
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
            "t.mseal",
            "big.bin",
        ])
        .status()
        .unwrap();
    assert!(sealed.success());
    let mut tested = 0;
    for (signal, code) in [(SIGINT, 130), (SIGTERM, 143), (SIGHUP, 129)] {
        for ms in [30, 250] {
            let args = [
                "open",
                "--no-state",
                "-t",
                "alice.pub",
                "-i",
                "bob.key",
                "-o",
                "out",
                "t.mseal",
            ];
            match interrupt(d.path(), &args, signal, Duration::from_millis(ms)) {
                Some(c) => {
                    assert_eq!(c, code, "signal {signal} at {ms} ms");
                    tested += 1;
                }
                None => {
                    println!("open finished before {ms} ms: that moment is not tested");
                    std::fs::remove_dir_all(d.path().join("out")).unwrap();
                }
            }
            assert!(!d.path().join("out").exists(), "signal {signal} at {ms} ms");
            assert_eq!(
                temporaries(d.path()),
                Vec::<String>::new(),
                "signal {signal} at {ms} ms"
            );
        }
    }
    assert!(
        tested >= 3,
        "at least one moment per signal was interrupted"
    );
}
