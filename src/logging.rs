//! Logs go to stderr through tracing, so stdout stays clean for data a pipeline consumes.
//!
//! While a progress line is drawn on stderr, each log line is written with the line cleared and
//! redrawn after it ([`ProgressBar::suspend`]), so neither overwrites the other.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::{ColorChoice, GlobalArgs};

/// The environment variable holding a tracing filter (e.g. `steadfast=debug,kube=info`).
pub const LOG_ENV: &str = "STEADFAST_LOG";

/// Whether to colour what goes to a stream that may or may not be a terminal.
pub fn use_color(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// The default filter for the `-v`/`-q` counts.
fn default_directive(verbose: u8, quiet: u8) -> &'static str {
    match (verbose, quiet) {
        (_, q) if q >= 2 => "off",
        (_, 1) => "error",
        (0, _) => "info",
        (1, _) => "steadfast=debug,info",
        _ => "steadfast=trace,debug",
    }
}

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(args: &GlobalArgs) {
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| EnvFilter::new(default_directive(args.verbose, args.quiet)));
    let ansi = use_color(args.color, std::io::stderr().is_terminal());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrBesideProgress)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// The progress line on stderr, if one is drawn.
static PROGRESS: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Registers the progress line drawn on stderr (None when it is gone), so logs go around it.
pub fn set_progress(bar: Option<ProgressBar>) {
    *PROGRESS.lock().unwrap_or_else(PoisonError::into_inner) = bar;
}

/// Writes to stderr, around the progress line when there is one.
#[derive(Debug, Clone, Copy)]
struct StderrBesideProgress;

impl<'a> MakeWriter<'a> for StderrBesideProgress {
    type Writer = StderrBesideProgress;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl Write for StderrBesideProgress {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_beside_progress(&mut std::io::stderr(), buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Writes `buf` to `sink`, with the registered progress line (if any) cleared meanwhile.
fn write_beside_progress(sink: &mut impl Write, buf: &[u8]) -> std::io::Result<usize> {
    // One formatted event arrives as one `write_all`; the clone keeps the lock short.
    let bar = PROGRESS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match bar {
        Some(bar) => bar.suspend(|| sink.write(buf)),
        None => sink.write(buf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_filters() {
        assert_eq!(default_directive(0, 0), "info");
        assert_eq!(default_directive(0, 1), "error");
        assert_eq!(default_directive(0, 2), "off");
        assert!(default_directive(1, 0).contains("debug"));
    }

    #[test]
    fn explicit_choices_ignore_the_terminal() {
        assert!(use_color(ColorChoice::Always, false));
        assert!(!use_color(ColorChoice::Never, true));
        assert!(!use_color(ColorChoice::Auto, false));
    }

    #[test]
    fn log_lines_arrive_whole_with_and_without_a_progress_line() {
        let mut sink = Vec::new();
        let line = b"2026-01-01T00:00:00Z  INFO a log line\n";
        assert_eq!(write_beside_progress(&mut sink, line).unwrap(), line.len());
        set_progress(Some(ProgressBar::hidden()));
        assert_eq!(write_beside_progress(&mut sink, line).unwrap(), line.len());
        set_progress(None);
        assert!(PROGRESS.lock().unwrap().is_none());
        assert_eq!(sink, [&line[..], &line[..]].concat());
    }
}
