//! Progress of long jobs for the CLI: a bar with rate and ETA on a
//! terminal, the core's log lines otherwise (CI logs, SLURM job logs).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use xlm::progress::{Counter, LogProgress, ProgressReport, ProgressSink};

/// A bar on a terminal, [`LogProgress`] otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalProgress;

impl ProgressSink for TerminalProgress {
    fn begin(&self, label: &str, total: Option<u64>) -> Box<dyn ProgressReport> {
        if !std::io::stderr().is_terminal() {
            return LogProgress::default().begin(label, total);
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = if total.is_some() {
            "{msg} [{bar:30}] {pos}/{len} rows ({per_sec}, ETA {eta})"
        } else {
            "{msg} {spinner} {pos} rows ({per_sec})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        Box::new(BarReport {
            bar,
            counter: Counter::new(label, total),
        })
    }
}

struct BarReport {
    bar: ProgressBar,
    counter: Counter,
}

impl ProgressReport for BarReport {
    fn advance(&mut self, rows: u64, tokens: u64) {
        self.counter.add(rows, tokens);
        self.bar.inc(rows);
    }

    fn finish(self: Box<Self>) {
        self.bar.finish_and_clear();
        log::info!("{} (done)", self.counter.line());
    }
}
