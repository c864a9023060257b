//! Progress of long jobs (prepare): a bar with rate and ETA on a terminal,
//! plain log lines every few seconds otherwise (CI logs, SLURM job logs).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const LOG_EVERY: Duration = Duration::from_secs(5);

/// Reports rows and tokens processed.
pub struct Progress {
    label: String,
    bar: Option<ProgressBar>,
    start: Instant,
    last_log: Instant,
    rows: u64,
    tokens: u64,
    total: Option<u64>,
}

impl Progress {
    /// A reporter for `total` rows (unknown: `None`), shown as a bar when
    /// stderr is a terminal and as log lines otherwise.
    pub fn new(label: &str, total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{msg} [{bar:30}] {pos}/{len} rows ({per_sec}, ETA {eta})"
            } else {
                "{msg} {spinner} {pos} rows ({per_sec})"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(label.to_string());
            bar
        });
        Self {
            label: label.to_string(),
            bar,
            start: Instant::now(),
            last_log: Instant::now(),
            rows: 0,
            tokens: 0,
            total,
        }
    }

    /// Adds processed rows and tokens.
    pub fn inc(&mut self, rows: u64, tokens: u64) {
        self.rows += rows;
        self.tokens += tokens;
        match &self.bar {
            Some(bar) => bar.inc(rows),
            None if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                eprintln!("{}", self.line());
            }
            None => {}
        }
    }

    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let of = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
        format!(
            "{}: {} rows{of}, {} tokens, {:.0} rows/s, {:.2} M tokens/s, {:.1} s",
            self.label,
            self.rows,
            self.tokens,
            self.rows as f64 / secs,
            self.tokens as f64 / secs / 1e6,
            secs
        )
    }

    /// Ends the report (a final line when anything was logged along the way).
    pub fn finish(self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None if self.start.elapsed() >= LOG_EVERY => eprintln!("{} (done)", self.line()),
            None => {}
        }
    }
}
