//! Where the connector's `log.progress` calls go: nowhere, or a terminal
//! progress display that log lines print around.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Receives progress from the connector.
pub trait ProgressSink: Send + Sync {
    fn progress(&self, phase: &str, done: u64, total: Option<u64>);
    /// The run is over; clear any display.
    fn finish(&self) {}
}

/// Ignores progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn progress(&self, _phase: &str, _done: u64, _total: Option<u64>) {}
}

/// The bar that log lines must print around, if one is showing.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn active() -> Option<ProgressBar> {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A spinner, or a bar once the phase's total is known, on stderr.
pub struct TerminalProgress {
    bar: ProgressBar,
    phase: Mutex<String>,
}

impl TerminalProgress {
    /// A display when stderr is a terminal; otherwise nothing.
    pub fn for_stderr() -> Arc<dyn ProgressSink> {
        if std::io::stderr().is_terminal() {
            Arc::new(TerminalProgress::new())
        } else {
            Arc::new(NoProgress)
        }
    }

    fn new() -> TerminalProgress {
        let bar = ProgressBar::new_spinner();
        let progress = TerminalProgress {
            bar,
            phase: Mutex::new(String::new()),
        };
        progress.show();
        progress
    }

    /// Shows the display (again, after a finished run).
    fn show(&self) {
        self.bar.reset();
        self.bar.set_style(spinner_style());
        self.bar.set_message("starting");
        self.bar.enable_steady_tick(Duration::from_millis(120));
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.bar.clone());
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} {pos} [{elapsed}]")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} [{elapsed}, eta {eta}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl ProgressSink for TerminalProgress {
    fn progress(&self, phase: &str, done: u64, total: Option<u64>) {
        let mut current = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if self.bar.is_finished() {
            self.show();
            current.clear();
        }
        if *current != phase {
            *current = phase.to_string();
            let mut shown: String = phase.chars().filter(|c| !c.is_control()).collect();
            shown.truncate(60);
            self.bar.set_message(shown);
            self.bar.reset();
        }
        match total {
            Some(t) => {
                if self.bar.length() != Some(t) {
                    self.bar.set_style(bar_style());
                    self.bar.set_length(t);
                }
            }
            None => {
                if self.bar.length().is_some() {
                    self.bar.set_style(spinner_style());
                    self.bar.unset_length();
                }
            }
        }
        self.bar.set_position(done);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A bar counting the bytes of one download on stderr, shown only when
/// stderr is a terminal; log lines print around it.
pub struct ByteProgress {
    bar: ProgressBar,
}

impl ByteProgress {
    /// `total` is the expected size; `None` when stderr is not a terminal.
    pub fn for_stderr(label: &str, total: u64) -> Option<ByteProgress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let shown: String = label.chars().filter(|c| !c.is_control()).take(40).collect();
        bar.set_message(shown);
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
        Some(ByteProgress { bar })
    }

    /// A handle for another thread (the destination's callback).
    pub fn bar(&self) -> ProgressBar {
        self.bar.clone()
    }
}

impl Drop for ByteProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// A `tracing` writer for stderr that hides the progress display while a
/// line prints.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrAroundProgress;

impl Write for StderrAroundProgress {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match active() {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
