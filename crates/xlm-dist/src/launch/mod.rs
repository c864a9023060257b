//! `xlm launch`: the torchrun analogue for one machine.
//!
//! Starts N copies of a command, each in its own process group, with a
//! per-rank environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
//! MASTER_ADDR, MASTER_PORT, a fresh `XLM_JOB_NONCE`, and OMP/MKL threads
//! = 1), prefixes every output line with its rank, and watches the ranks:
//! when one exits non-zero or dies from a signal, the others' process
//! groups get SIGTERM, then SIGKILL after a grace period, and the launch
//! fails naming the rank and how it ended. SIGINT/SIGTERM to the launcher
//! are forwarded the same way.

mod options;
mod output;
mod ranks;
mod signals;

pub use options::{parse_seconds, LaunchOptions, MAX_GRACE_S, MAX_TIMEOUT_S};

use output::Output;
use ranks::Ranks;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Exit code: every rank succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: a rank failed (non-zero exit or signal).
pub const EXIT_RANK_FAILED: i32 = 1;
/// Exit code: bad arguments (clap's code).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the launch timed out and the ranks were stopped.
pub const EXIT_TIMEOUT: i32 = 3;
/// Exit code: the launcher was interrupted (SIGINT/SIGTERM) and stopped the ranks.
pub const EXIT_INTERRUPTED: i32 = 130;

/// How long the launcher waits for the ranks' output after they ended
/// (a process a rank left running may hold the pipe open indefinitely).
pub const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// How one rank ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RankEnd {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal (not by the launcher).
    Signaled(i32),
    /// Stopped by the launcher after another rank failed, a timeout or an interrupt.
    Stopped,
}

impl RankEnd {
    fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(c), _) => RankEnd::Exited(c),
            (None, Some(s)) => RankEnd::Signaled(s),
            _ => RankEnd::Exited(-1),
        }
    }
}

impl std::fmt::Display for RankEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RankEnd::Exited(c) => write!(f, "exited with code {c}"),
            RankEnd::Signaled(s) => write!(f, "was killed by signal {s} ({})", signals::name(*s)),
            RankEnd::Stopped => write!(f, "was stopped by the launcher"),
        }
    }
}

/// Why a launch failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// A rank failed; the others were stopped.
    #[error("xlm launch: rank {rank} {end}; stopped the other ranks ({summary})")]
    RankFailed {
        /// The rank blamed.
        rank: usize,
        /// How it ended.
        end: RankEnd,
        /// How the others ended.
        summary: String,
    },
    /// `--timeout` was reached.
    #[error("xlm launch: timed out after {timeout:?}; rank(s) {running:?} were still running and were stopped")]
    Timeout {
        /// The timeout.
        timeout: Duration,
        /// The ranks that were still running.
        running: Vec<usize>,
    },
    /// The launcher got SIGINT or SIGTERM.
    #[error("xlm launch: interrupted by signal {0}; stopped every rank")]
    Interrupted(i32),
    /// A rank's command could not be started.
    #[error("xlm launch: cannot start `{command}` for rank {rank}: {source}")]
    Spawn {
        /// The program.
        command: String,
        /// The rank.
        rank: usize,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Bad options (exit code 2).
    #[error("xlm launch: {0}")]
    Usage(String),
    /// Something around the ranks failed (e.g. no free port).
    #[error("xlm launch: {0}")]
    Setup(String),
}

impl LaunchError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            LaunchError::Timeout { .. } => EXIT_TIMEOUT,
            LaunchError::Interrupted(_) => EXIT_INTERRUPTED,
            LaunchError::Usage(_) => EXIT_USAGE,
            _ => EXIT_RANK_FAILED,
        }
    }
}

/// A free TCP port on `addr` (bind port 0, read it, release it).
pub fn free_port(addr: &str) -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((addr, 0))?.local_addr()?.port())
}

/// Runs the ranks to completion. Returns the port used on success.
pub fn launch(opts: &LaunchOptions) -> Result<u16, LaunchError> {
    opts.validate()?;
    let port = match opts.master_port {
        Some(p) => p,
        None => free_port(&opts.master_addr).map_err(|e| {
            LaunchError::Setup(format!(
                "cannot find a free port on {}: {e}",
                opts.master_addr
            ))
        })?,
    };
    signals::install();
    let mut output = Output::new();
    let mut ranks = Ranks::spawn(opts, port, &crate::fresh_nonce(), &mut output)?;
    let start = Instant::now();
    let outcome = loop {
        let failures = ranks.poll();
        // Ranks that fail in the same poll are usually one cause and its
        // echoes (a killed rank, then the peers that lost it): blame a
        // signal death first.
        let first_failure = failures
            .iter()
            .find(|(_, e)| matches!(e, RankEnd::Signaled(_)))
            .or(failures.first())
            .cloned();
        if let Some((rank, end)) = first_failure {
            ranks.stop(opts.grace);
            let summary = ranks.summary(rank);
            break Err(LaunchError::RankFailed { rank, end, summary });
        }
        if ranks.running().is_empty() {
            break Ok(port);
        }
        if let Some(sig) = signals::received() {
            ranks.stop(opts.grace);
            break Err(LaunchError::Interrupted(sig));
        }
        if let Some(t) = opts.timeout {
            if start.elapsed() >= t {
                let running = ranks.running();
                ranks.stop(opts.grace);
                break Err(LaunchError::Timeout {
                    timeout: t,
                    running,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let held = output.drain(OUTPUT_DRAIN);
    if !held.is_empty() {
        eprintln!(
            "xlm launch: rank(s) {held:?} ended, but a process they started still holds their output open; stopped waiting for it after {OUTPUT_DRAIN:?}"
        );
    }
    ranks.reap();
    outcome
}
