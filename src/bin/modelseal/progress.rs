//! A progress bar on stderr for long operations, only when stderr is a terminal and the work is
//! over 64 MiB. The library does not report progress; the bar follows the bytes this process has
//! read so far (`rchar` in /proc/self/io), which is what dominates sealing and opening.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const THRESHOLD: u64 = 64 << 20;

/// A running bar; stops and clears when dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn bytes_read() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
}

impl Progress {
    /// Starts a bar for `expected` bytes to read, unless quiet, small or not on a terminal.
    pub fn start(label: &'static str, expected: u64, quiet: bool) -> Option<Progress> {
        if quiet || expected < THRESHOLD || !std::io::stderr().is_terminal() {
            return None;
        }
        let base = bytes_read()?;
        let bar = indicatif::ProgressBar::new(expected);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(label);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Some(now) = bytes_read() {
                    bar.set_position(now.saturating_sub(base).min(expected));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Some(Progress {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
