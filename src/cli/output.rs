//! What the commands print besides their results: errors with their causes, the closing
//! summary of a run over many inputs (with a progress bar on a terminal), and the quiet end
//! when the reader of stdout goes away (`| head`).
//!
//! Consumes errors and per-input outcomes; writes to stderr only (results go to stdout
//! through [`super::common::write_stdout`]). Never panics on a closed pipe: output to a
//! closed stdout ends the program with status 0, like other Unix filters, whichever code
//! printed it.

use std::io::IsTerminal as _;
use std::time::Duration;

/// Runs shorter than this many inputs get no progress bar (it would only flicker).
const PROGRESS_MIN_INPUTS: usize = 20;

/// An error and its causes as one line, `message: cause: cause`, each cause once
/// ([`crate::causes::line`]).
pub(crate) fn error_line(error: &anyhow::Error) -> String {
    crate::causes::line(&**error)
}

/// Makes `print!`/`println!` to a closed stdout end the program quietly (status 0) instead
/// of panicking with status 101. Other panics keep the standard report.
pub(crate) fn end_quietly_on_closed_stdout() {
    let standard = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_closed_stdout_panic(message) {
            std::process::exit(0);
        }
        standard(info);
    }));
}

/// The standard library's `print!` panics with `failed printing to stdout: <io error>`;
/// the io error of a closed pipe is EPIPE.
fn is_closed_stdout_panic(message: &str) -> bool {
    let broken_pipe = std::io::Error::from_raw_os_error(EPIPE).to_string();
    message.strip_prefix("failed printing to stdout: ").is_some_and(|rest| rest == broken_pipe)
}

/// EPIPE on Linux and the BSDs; Windows has no SIGPIPE and reports a closed pipe otherwise.
const EPIPE: i32 = 32;

/// The outcome of one input in a run over many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputOutcome {
    Written,
    Skipped,
    Failed,
}

/// Counts a run's outcomes, shows a progress bar on a terminal for long runs, and prints
/// the closing line (`render: 41 written, 3 skipped, 1 failed`).
pub(crate) struct RunSummary {
    command: &'static str,
    written: usize,
    skipped: usize,
    failed: usize,
    bar: Option<indicatif::ProgressBar>,
}

impl RunSummary {
    /// A summary for `total` inputs; the bar shows only when stderr is a terminal.
    pub fn new(command: &'static str, total: usize) -> RunSummary {
        let show = total >= PROGRESS_MIN_INPUTS && std::io::stderr().is_terminal();
        let bar = show.then(|| progress_bar(total as u64));
        RunSummary { command, written: 0, skipped: 0, failed: 0, bar }
    }

    /// Records one input's outcome.
    pub fn record(&mut self, outcome: InputOutcome) {
        match outcome {
            InputOutcome::Written => self.written += 1,
            InputOutcome::Skipped => self.skipped += 1,
            InputOutcome::Failed => self.failed += 1,
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Prints a line to stderr without tearing the progress bar.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// How many inputs failed so far.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// The closing line.
    pub fn line(&self) -> String {
        format!("{}: {} written, {} skipped, {} failed", self.command, self.written, self.skipped, self.failed)
    }

    /// Removes the bar and prints the closing line.
    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{}", self.line());
    }
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} ETA {eta}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_cause_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let repeated = anyhow::Error::new(io).context("I/O error: connection refused").context("ldap://dc1: cannot connect");
        assert_eq!(error_line(&repeated), "ldap://dc1: cannot connect: I/O error: connection refused");
        let distinct = anyhow::anyhow!("no such file").context("x.ldif: cannot read directory file");
        assert_eq!(error_line(&distinct), "x.ldif: cannot read directory file: no such file");
    }

    #[test]
    fn only_a_broken_pipe_on_stdout_is_quiet() {
        let epipe = std::io::Error::from_raw_os_error(EPIPE);
        assert!(is_closed_stdout_panic(&format!("failed printing to stdout: {epipe}")));
        let full = std::io::Error::from_raw_os_error(28);
        assert!(!is_closed_stdout_panic(&format!("failed printing to stdout: {full}")));
        assert!(!is_closed_stdout_panic("index out of bounds"));
    }

    #[test]
    fn the_summary_counts_each_outcome() {
        let mut summary = RunSummary::new("render", 3);
        for outcome in [InputOutcome::Written, InputOutcome::Skipped, InputOutcome::Written, InputOutcome::Failed] {
            summary.record(outcome);
        }
        assert_eq!(summary.line(), "render: 2 written, 1 skipped, 1 failed");
    }
}
