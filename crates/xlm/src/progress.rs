//! Progress reporting for long jobs (prepare), as a callback the caller
//! chooses: the core never draws bars. [`LogProgress`] writes a `log` line
//! every few seconds; the `xlm` CLI shows a bar on a terminal.

use std::time::{Duration, Instant};

/// Starts a report for one long job.
pub trait ProgressSink: Send + Sync {
    /// A report for a job called `label` over `total` rows (`None`: unknown).
    fn begin(&self, label: &str, total: Option<u64>) -> Box<dyn ProgressReport>;
}

/// The report of one running job.
pub trait ProgressReport: Send {
    /// Adds processed rows and tokens.
    fn advance(&mut self, rows: u64, tokens: u64);
    /// Ends the report.
    fn finish(self: Box<Self>);
}

/// Counts rows and tokens since a start, and formats a status line.
#[derive(Debug, Clone)]
pub struct Counter {
    label: String,
    start: Instant,
    rows: u64,
    tokens: u64,
    total: Option<u64>,
}

impl Counter {
    /// A counter started now.
    pub fn new(label: &str, total: Option<u64>) -> Self {
        Self {
            label: label.to_string(),
            start: Instant::now(),
            rows: 0,
            tokens: 0,
            total,
        }
    }

    /// Adds processed rows and tokens.
    pub fn add(&mut self, rows: u64, tokens: u64) {
        self.rows += rows;
        self.tokens += tokens;
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// `label: R rows of T, K tokens, rows/s, M tokens/s, seconds`.
    pub fn line(&self) -> String {
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
}

/// Reports through the `log` facade (`info`), at most one line per
/// `every`, plus a final line for jobs that logged along the way.
#[derive(Debug, Clone, Copy)]
pub struct LogProgress {
    /// Minimum time between two lines.
    pub every: Duration,
}

impl Default for LogProgress {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(5),
        }
    }
}

impl ProgressSink for LogProgress {
    fn begin(&self, label: &str, total: Option<u64>) -> Box<dyn ProgressReport> {
        Box::new(LogReport {
            counter: Counter::new(label, total),
            every: self.every,
            last: Instant::now(),
        })
    }
}

struct LogReport {
    counter: Counter,
    every: Duration,
    last: Instant,
}

impl ProgressReport for LogReport {
    fn advance(&mut self, rows: u64, tokens: u64) {
        self.counter.add(rows, tokens);
        if self.last.elapsed() >= self.every {
            self.last = Instant::now();
            log::info!("{}", self.counter.line());
        }
    }

    fn finish(self: Box<Self>) {
        if self.counter.elapsed() >= self.every {
            log::info!("{} (done)", self.counter.line());
        }
    }
}
