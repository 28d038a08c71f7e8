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

/// Interrupts `args` with each signal at two moments; each time, the exit code is 128 + the signal,
/// `output` is absent and no temporary is left. At least one moment per signal must have come
/// before the command finished.
fn at_each_signal_and_moment(dir: &Path, args: &[&str], output: &str) {
    let mut tested = 0;
    for (signal, code) in [(SIGINT, 130), (SIGTERM, 143), (SIGHUP, 129)] {
        for ms in [30, 250] {
            let out = dir.join(output);
            match interrupt(dir, args, signal, Duration::from_millis(ms)) {
                Some(c) => {
                    assert_eq!(c, code, "signal {signal} at {ms} ms");
                    tested += 1;
                }
                None => {
                    println!(
                        "{} finished before {ms} ms: that moment is not tested",
                        args[0]
                    );
                    if out.is_dir() {
                        std::fs::remove_dir_all(&out).unwrap();
                    } else {
                        std::fs::remove_file(&out).unwrap();
                    }
                }
            }
            assert!(!out.exists(), "signal {signal} at {ms} ms");
            assert_eq!(
                temporaries(dir),
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

const SEAL: [&str; 12] = [
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

#[test]
fn an_interrupted_seal_leaves_no_archive_and_no_temporary() {
    let d = setup(600 * MB);
    at_each_signal_and_moment(d.path(), &SEAL, "t.mseal");
}

#[test]
fn an_interrupted_open_leaves_no_plaintext_and_no_output() {
    let d = setup(600 * MB);
    assert!(bin()
        .current_dir(d.path())
        .args(SEAL)
        .status()
        .unwrap()
        .success());
    let open = [
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
    at_each_signal_and_moment(d.path(), &open, "out");
}
