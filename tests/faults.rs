//! THREATS.md checklist 31: signals at several moments of seal and open, on the real binary. The
//! process must remove what it created (a partial archive, a directory of decrypted plaintext),
//! exit 128 + the signal, and leave the output path absent (or, when the signal came after the
//! output was renamed into place, whole).

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

fn remove(out: &Path) {
    if out.is_dir() {
        std::fs::remove_dir_all(out).unwrap();
    } else {
        std::fs::remove_file(out).unwrap();
    }
}

/// An output left by a run interrupted after its commit is whole: the opened file has every
/// byte, the sealed archive verifies.
fn assert_complete(dir: &Path, out: &Path) {
    let input = std::fs::metadata(dir.join("big.bin")).unwrap().len();
    if out.is_dir() {
        assert_eq!(std::fs::metadata(out.join("big.bin")).unwrap().len(), input);
    } else {
        let verified = bin()
            .current_dir(dir)
            .args(["verify", "--no-state", "-t", "alice.pub"])
            .arg(out)
            .status()
            .unwrap();
        assert!(verified.success(), "{} does not verify", out.display());
    }
}

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
                    if out.exists() {
                        // The signal came after the output was renamed into place (a busy machine
                        // can stretch that last moment): then the output must be complete.
                        assert_complete(dir, &out);
                        println!(
                            "{}: signal {signal} at {ms} ms came after the commit",
                            args[0]
                        );
                        remove(&out);
                    } else {
                        tested += 1;
                    }
                }
                None => {
                    println!(
                        "{} finished before {ms} ms: that moment is not tested",
                        args[0]
                    );
                    remove(&out);
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

const SIGKILL: i32 = 9;
const SIGSTOP: i32 = 19;

/// Starts `args` in `dir`, waits until a temporary of its making (not in `known`) exists, and
/// stops it there.
fn stopped_with_a_temporary(dir: &Path, args: &[&str], known: &[String]) -> std::process::Child {
    let mut child = bin()
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..2000 {
        if temporaries(dir).iter().any(|n| !known.contains(n)) {
            // SAFETY: kill(2) on our own child's pid with a valid signal number.
            unsafe { kill(child.id() as i32, SIGSTOP) };
            return child;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} finished first"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{args:?} created no temporary");
}

fn clean(dir: &Path, extra: &[&str]) -> String {
    let o = bin()
        .current_dir(dir)
        .arg("clean")
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn clean_removes_what_a_killed_run_left_and_never_what_a_running_one_holds() {
    let d = setup(600 * MB);
    let dir = d.path();
    assert!(bin()
        .current_dir(dir)
        .args(SEAL)
        .status()
        .unwrap()
        .success());
    // Look-alikes clean must leave: not our names, or the wrong kind of entry for the name.
    std::fs::create_dir(dir.join("keep")).unwrap();
    std::fs::write(dir.join("keep/precious"), b"x").unwrap();
    std::os::unix::fs::symlink("keep", dir.join(".x.modelseal-open-aaaaaa")).unwrap();
    std::fs::create_dir(dir.join(".x.modelseal-seal-bbbbbb.tmp")).unwrap();
    std::fs::write(dir.join(".x.modelseal-seal-short.tmp"), b"x").unwrap();
    std::fs::write(dir.join("x.modelseal-seal-cccccc.tmp"), b"x").unwrap();
    let mut decoys = temporaries(dir);
    decoys.sort();
    // What an open --force killed between its two renames leaves: the previous output moved
    // aside, with nothing at its path (put back), or with the new output there (removed).
    // The long one's backup name cuts its NAME at 200 bytes; the full name is the one inside.
    let long = "L".repeat(230);
    for (name, output_there) in [("prev", false), ("done", true), (long.as_str(), false)] {
        let cut = &name[..name.len().min(200)];
        let old = dir.join(format!(".{cut}.modelseal-old-QwErTy/{name}"));
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("weights.bin"), b"previous").unwrap();
        if output_there {
            std::fs::create_dir(dir.join(name)).unwrap();
        }
    }
    let long_backup = format!(".{}.modelseal-old-QwErTy", "L".repeat(200));
    let backups = [
        ".done.modelseal-old-QwErTy".to_string(),
        ".prev.modelseal-old-QwErTy".to_string(),
        long_backup.clone(),
    ];

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
    for (args, leaves) in [(&SEAL[..], "t2.mseal"), (&open[..], "out")] {
        let first = args[0] == "seal";
        let args: Vec<&str> = args
            .iter()
            .map(|a| {
                if *a == "t.mseal" && first {
                    "t2.mseal"
                } else {
                    a
                }
            })
            .collect();
        let mut known = decoys.clone();
        if first {
            known.extend(backups.iter().cloned());
        }
        let mut child = stopped_with_a_temporary(dir, &args, &known);
        let left: Vec<String> = temporaries(dir)
            .into_iter()
            .filter(|n| !known.contains(n))
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        let temp = dir.join(&left[0]);

        // While its process lives (stopped, holding the lock), it is not stale.
        let said = clean(dir, &[]);
        assert!(
            said.contains(&format!("kept ./{}", left[0]))
                && said.contains(": a running modelseal holds it"),
            "{said}"
        );
        assert!(temp.exists());

        // SAFETY: as above.
        unsafe { kill(child.id() as i32, SIGKILL) };
        child.wait().unwrap();
        assert!(
            temp.exists(),
            "SIGKILL cannot be caught: the temporary stays"
        );
        assert!(!dir.join(leaves).exists(), "no final path is ever partial");
        // Younger than the grace period, it is kept: it could be one not locked yet.
        std::thread::sleep(Duration::from_millis(5500));

        let said = clean(dir, &["--dry-run"]);
        assert!(
            said.contains(&format!("would remove ./{}", left[0])),
            "{said}"
        );
        if first {
            assert!(
                said.contains("would put back ./.prev.modelseal-old-QwErTy/ as ./prev"),
                "{said}"
            );
            assert!(
                said.contains("would remove ./.done.modelseal-old-QwErTy/ (8 bytes"),
                "{said}"
            );
        } else {
            assert!(said.contains("would remove 1 stale temporary ("), "{said}");
        }
        assert!(temp.exists(), "--dry-run removes nothing");

        let said = clean(dir, &[]);
        assert!(said.contains(&format!("removed ./{}", left[0])), "{said}");
        if first {
            assert!(
                said.contains("put back ./.prev.modelseal-old-QwErTy/ as ./prev"),
                "{said}"
            );
            assert!(said.contains("removed 2 stale temporaries ("), "{said}");
            assert_eq!(
                std::fs::read(dir.join("prev/weights.bin")).unwrap(),
                b"previous"
            );
            assert_eq!(
                std::fs::read(dir.join(&long).join("weights.bin")).unwrap(),
                b"previous",
                "a backup whose name was cut goes back under its full name"
            );
        } else {
            assert!(said.contains("removed 1 stale temporary ("), "{said}");
        }
        assert!(!temp.exists());
        let mut now = temporaries(dir);
        now.sort();
        assert_eq!(now, decoys, "look-alikes are left alone");
        assert_eq!(std::fs::read(dir.join("keep/precious")).unwrap(), b"x");
    }
}

/// The largest resident set `pid` reached so far, in bytes (VmHWM).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[test]
fn sealing_to_a_pipe_and_opening_from_one_keep_memory_bounded() {
    let d = setup(600 * MB);
    let dir = d.path();
    let mut args: Vec<&str> = SEAL.to_vec();
    let at = args.iter().position(|a| *a == "t.mseal").unwrap();
    args[at] = "-";
    // seal -o - | open -o out -, each watched for its peak memory.
    let mut seal = bin()
        .current_dir(dir)
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut open = bin()
        .current_dir(dir)
        .args([
            "open",
            "--no-state",
            "-t",
            "alice.pub",
            "-i",
            "bob.key",
            "-o",
            "out",
            "-",
        ])
        .stdin(seal.stdout.take().unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (mut seal_peak, mut open_peak) = (0, 0);
    loop {
        seal_peak = peak_rss(seal.id()).unwrap_or(0).max(seal_peak);
        open_peak = peak_rss(open.id()).unwrap_or(0).max(open_peak);
        if let Some(status) = open.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(seal.wait().unwrap().success());
    assert_eq!(
        std::fs::metadata(dir.join("out/big.bin")).unwrap().len(),
        600 * MB
    );
    println!(
        "peak memory for 600 MB: seal -o - {} MiB, open - {} MiB",
        seal_peak >> 20,
        open_peak >> 20
    );
    assert!(seal_peak > 0 && open_peak > 0, "both were measured");
    assert!(seal_peak < 128 * MB, "seal -o -: {} MiB", seal_peak >> 20);
    assert!(open_peak < 128 * MB, "open -: {} MiB", open_peak >> 20);
    assert_eq!(temporaries(dir), Vec::<String>::new());
}
