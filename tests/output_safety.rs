//! THREATS.md checklist 27-30: the output location, races, write failures and existing outputs.

mod common;

use std::io::Read;

use common::*;
use modelseal::error::UsageError;
use modelseal::open::{self, Decryption, OpenOutput, ReadOptions};
use modelseal::Error;

#[test]
fn existing_outputs_are_refused_and_left_untouched() {
    let w = World::new();
    let input = w.write("m.bin", b"model");
    let archive = w.seal_for_reader(std::slice::from_ref(&input), "m.mseal");
    // seal onto an existing file.
    let inputs = modelseal::seal::collect_inputs(&[input], &Default::default()).unwrap();
    let rp = w.reader.public();
    let opts = w.options(
        vec![modelseal::seal::Recipient::PublicKey(&rp)],
        Default::default(),
    );
    let before = std::fs::read(&archive).unwrap();
    let e = modelseal::seal::seal_file(&inputs, &opts, &archive, Default::default()).unwrap_err();
    assert_refused!(e, Error::Usage(UsageError::OutputExists { .. }));
    assert_eq!(std::fs::read(&archive).unwrap(), before);
    // open onto an existing directory.
    std::fs::create_dir(w.path("out")).unwrap();
    w.write("out/keep.txt", b"keep");
    let snapshot = listing(w.dir.path());
    assert_refused!(
        w.open_as_reader(&archive, "out").unwrap_err(),
        Error::Usage(UsageError::OutputExists { .. })
    );
    assert_eq!(listing(w.dir.path()), snapshot);
    assert_eq!(std::fs::read(w.path("out/keep.txt")).unwrap(), b"keep");
}

#[cfg(unix)]
#[test]
fn a_symlink_planted_in_the_output_never_redirects_a_write() {
    let w = World::new();
    let input = w.write("m.bin", b"new model");
    let archive = w.seal_for_reader(&[input], "m.mseal");
    // The victim file outside the output, and an output directory whose m.bin points at it.
    let victim = w.write("victim.txt", b"precious");
    std::fs::create_dir(w.path("out")).unwrap();
    std::os::unix::fs::symlink(&victim, w.path("out/m.bin")).unwrap();
    // The output directory itself a symlink to a directory elsewhere.
    std::fs::create_dir(w.path("elsewhere")).unwrap();
    w.write("elsewhere/m.bin", b"other precious");
    std::os::unix::fs::symlink(w.path("elsewhere"), w.path("out2")).unwrap();
    let trust = w.trust();
    let mut opts = ReadOptions::new(&trust);
    opts.now = Some(CREATED + 1);
    open::open_file(
        &archive,
        Decryption::Identity(&w.reader),
        &w.path("out"),
        &opts,
        OpenOutput { force: true },
    )
    .unwrap();
    let m = w.path("out").join("m.bin");
    assert!(!std::fs::symlink_metadata(&m)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(m).unwrap(), b"new model");
    // --force replaces a directory, never a symlink to one (nor what it points at).
    let e = open::open_file(
        &archive,
        Decryption::Identity(&w.reader),
        &w.path("out2"),
        &opts,
        OpenOutput { force: true },
    )
    .unwrap_err();
    assert_refused!(e, Error::Usage(UsageError::OutputNotReplaceable { .. }));
    assert!(std::fs::symlink_metadata(w.path("out2"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(
        std::fs::read(w.path("elsewhere/m.bin")).unwrap(),
        b"other precious"
    );
}

/// A reader that counts how many bytes were read: `open` reads every archive byte exactly once,
/// through one handle, so the bytes it checks are the bytes it uses (no verify-then-reopen window).
struct Counting<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn open_reads_each_archive_byte_once_through_one_handle() {
    let w = World::new();
    let input = w.write("m.bin", &bytes(100_000, 12));
    let a = std::fs::read(w.seal_for_reader(&[input], "m.mseal")).unwrap();
    let trust = w.trust();
    let mut opts = ReadOptions::new(&trust);
    opts.now = Some(CREATED + 1);
    let mut r = Counting { data: &a, pos: 0 };
    open::open_reader_to_memory(
        &mut r,
        Decryption::Identity(&w.reader),
        &opts,
        1 << 20,
        &modelseal::open::ModelChecks::default(),
    )
    .unwrap();
    assert_eq!(r.pos, a.len());
}

/// Runs the real binary with a file size limit, as a full disk would fail writes (SIGXFSZ is
/// ignored so the write returns EFBIG instead of killing the process).
#[cfg(target_os = "linux")]
#[test]
fn a_write_failure_while_sealing_or_opening_leaves_nothing_behind() {
    let w = World::new();
    let bin = env!("CARGO_BIN_EXE_modelseal");
    let run = |args: &str| {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("trap '' XFSZ; ulimit -f 64; exec {bin} {args}"))
            .current_dir(w.dir.path())
            .output()
            .unwrap()
    };
    assert!(run("keygen -o alice").status.success());
    assert!(run("keygen -o bob").status.success());
    w.write("big.bin", &bytes(200_000, 13));
    let before = listing(w.dir.path());
    let out = run("seal -k alice.key -r bob.pub --name m --model-version 1.0.0 -o m.mseal big.bin");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    assert_eq!(listing(w.dir.path()), before, "seal left files behind");
    // Seal without the limit, then open with it.
    let ok = std::process::Command::new(bin)
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
            "m.mseal",
            "big.bin",
        ])
        .current_dir(w.dir.path())
        .output()
        .unwrap();
    assert!(ok.status.success());
    let before = listing(w.dir.path());
    let out = run("open -t alice.pub -i bob.key -o out m.mseal");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listing(w.dir.path()), before, "open left files behind");
}
