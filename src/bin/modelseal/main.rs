//! The `modelseal` command: a thin shell over the library. It parses flags, calls the library,
//! prints `error:` and `hint:` lines, and maps refusals to exit code 1 and usage or I/O errors to 2.

#[cfg(fuzzing)]
compile_error!("the modelseal binary must never be built with cfg(fuzzing): it disables signature and AEAD checks");

/// `println!` that does not panic when stdout is closed (`modelseal verify | head -1`): a write
/// error on stdout ends the process quietly with exit code 2, an I/O error.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            crate::stdout_failed(e);
        }
    }};
}

/// Standard output cannot be written (closed pipe, full disk): the two lines every failure prints,
/// then exit 2, an I/O error.
fn stdout_failed(e: std::io::Error) -> ! {
    let e = modelseal::Error::io("writing to standard output", e);
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    let _ = writeln!(err, "hint: {}", hints::hint(&e));
    std::process::exit(2);
}

mod cli;
mod commands;
mod demo;
mod hints;
mod oms;
mod progress;
mod registry;
mod render;
mod usage;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// On SIGINT, SIGTERM or SIGHUP: remove what this process created and has not renamed into place
/// (a partial archive, a directory of decrypted plaintext), then exit 128 + the signal's number
/// (130, 143, 129), as shells report a process a signal ended.
fn handle_interrupts() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return; // without handlers the default action (termination) still applies
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            modelseal::fs::remove_all();
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "error: interrupted by signal {sig}; removed what this run had written"
            );
            let _ = writeln!(
                err,
                "hint: run the command again; the output path was left as it was"
            );
            std::process::exit(128 + sig);
        }
    });
}

fn main() -> ExitCode {
    handle_interrupts();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage::usage_error(&e),
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Never panic, even with stderr closed.
            let mut err = std::io::stderr().lock();
            // Escaped: an error can quote a file name or an archive's text.
            let _ = writeln!(err, "error: {}", render::esc(&e.to_string()));
            let _ = writeln!(err, "hint: {}", render::esc(&hints::hint(&e)));
            ExitCode::from(if e.is_refusal() { 1 } else { 2 })
        }
    }
}
