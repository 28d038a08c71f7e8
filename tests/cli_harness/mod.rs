//! The CLI test harness: the real binary, run in a directory of its own with no trust store,
//! state or passphrase from the environment that runs the tests.
#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

/// The smallest scrypt work factor, so that passphrase keys stay fast in tests (the CLI writes
/// 2^18 by default).
pub const LOG_N: &str = "10";

/// `modelseal` in `dir`, its state and configuration under `dir`.
pub fn ms(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("modelseal").unwrap();
    c.current_dir(dir)
        .env_remove("MODELSEAL_TRUST")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("MODELSEAL_PASSPHRASE_FILE")
        .env_remove("MODELSEAL_NEW_PASSPHRASE_FILE")
        .env("MODELSEAL_SCRYPT_LOG_N", LOG_N)
        .env("XDG_STATE_HOME", dir.join(".state"))
        .env("XDG_CONFIG_HOME", dir.join(".config"));
    c
}

/// What a run printed and its exit code.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Out {
    fn from(o: std::process::Output) -> Out {
        Out {
            code: o.status.code().unwrap(),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        }
    }
}

/// Runs `modelseal ARGS` in `dir`.
pub fn run(dir: &Path, args: &[&str]) -> Out {
    ms(dir).args(args).output().unwrap().into()
}

/// [`run`] with `env` set and an empty standard input.
pub fn run_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut c = ms(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args)
        .write_stdin(Vec::new())
        .output()
        .unwrap()
        .into()
}

/// A refusal prints exactly one `error:` line (holding `needle`) and one `hint:` line, and exits
/// 1.
pub fn assert_refusal(o: &Out, needle: &str) {
    assert_two_lines(o, 1, needle);
}

/// Exit `code` with exactly one `error:` line holding `needle` and one `hint:` line.
pub fn assert_two_lines(o: &Out, code: i32, needle: &str) {
    assert_eq!(o.code, code, "stdout: {}\nstderr: {}", o.stdout, o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", o.stderr);
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{}",
        o.stderr
    );
    assert!(lines[1].starts_with("hint: "), "{}", o.stderr);
}
