//! `xlm launch`: the torchrun analogue for one machine.
//!
//! Starts N copies of a command with a per-rank environment (RANK,
//! WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, and
//! OMP/MKL threads = 1), prefixes every output line with its rank, and
//! watches the ranks: when one exits non-zero or dies from a signal, the
//! others get SIGTERM, then SIGKILL after a grace period, and the launch
//! fails naming the rank and how it ended. SIGINT/SIGTERM to the launcher
//! are forwarded the same way.

mod signals;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
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
pub enum LaunchError {
    #[error("xlm launch: rank {rank} {end}; stopped the other ranks ({summary})")]
    RankFailed {
        rank: usize,
        end: RankEnd,
        summary: String,
    },
    #[error("xlm launch: timed out after {timeout:?}; rank(s) {running:?} were still running and were stopped")]
    Timeout {
        timeout: Duration,
        running: Vec<usize>,
    },
    #[error("xlm launch: interrupted by signal {0}; stopped every rank")]
    Interrupted(i32),
    #[error("xlm launch: cannot start `{command}` for rank {rank}: {source}")]
    Spawn {
        command: String,
        rank: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("xlm launch: {0}")]
    Setup(String),
}

impl LaunchError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            LaunchError::Timeout { .. } => EXIT_TIMEOUT,
            LaunchError::Interrupted(_) => EXIT_INTERRUPTED,
            _ => EXIT_RANK_FAILED,
        }
    }
}

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Ranks to start.
    pub nproc_per_node: usize,
    /// Rendezvous address given to the ranks.
    pub master_addr: String,
    /// Rendezvous port (`None`: a free one).
    pub master_port: Option<u16>,
    /// Stop everything after this long.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when stopping ranks.
    pub grace: Duration,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// A free TCP port on `addr` (bind port 0, read it, release it).
pub fn free_port(addr: &str) -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((addr, 0))?.local_addr()?.port())
}

fn forward(
    rank: usize,
    stream: impl std::io::Read + Send + 'static,
    to_stderr: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line);
            if to_stderr {
                let _ = writeln!(std::io::stderr().lock(), "[rank {rank}] {text}");
            } else {
                let _ = writeln!(std::io::stdout().lock(), "[rank {rank}] {text}");
            }
        }
    })
}

fn end_of(status: ExitStatus) -> RankEnd {
    match (status.code(), status.signal()) {
        (Some(c), _) => RankEnd::Exited(c),
        (None, Some(s)) => RankEnd::Signaled(s),
        _ => RankEnd::Exited(-1),
    }
}

/// Stops every running child: SIGTERM, then SIGKILL after `grace`.
fn stop_all(children: &mut [Child], ends: &mut [Option<RankEnd>], grace: Duration) {
    for (c, e) in children.iter().zip(ends.iter()) {
        if e.is_none() {
            signals::terminate(c.id());
        }
    }
    let deadline = Instant::now() + grace;
    loop {
        let mut running = false;
        for (c, e) in children.iter_mut().zip(ends.iter_mut()) {
            if e.is_none() {
                match c.try_wait() {
                    Ok(Some(_)) => *e = Some(RankEnd::Stopped),
                    _ => running = true,
                }
            }
        }
        if !running {
            return;
        }
        if Instant::now() >= deadline {
            for (c, e) in children.iter_mut().zip(ends.iter_mut()) {
                if e.is_none() {
                    let _ = c.kill();
                    let _ = c.wait();
                    *e = Some(RankEnd::Stopped);
                }
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the ranks to completion. Returns the port used on success.
pub fn launch(opts: &LaunchOptions) -> Result<u16, LaunchError> {
    if opts.nproc_per_node == 0 {
        return Err(LaunchError::Setup(
            "--nproc-per-node must be at least 1".into(),
        ));
    }
    let Some((program, args)) = opts.command.split_first() else {
        return Err(LaunchError::Setup(
            "no command given; usage: xlm launch --nproc-per-node N -- CMD ARGS...".into(),
        ));
    };
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
    let n = opts.nproc_per_node;
    let mut children = Vec::with_capacity(n);
    let mut forwarders = Vec::new();
    for rank in 0..n {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("GROUP_RANK", "0")
            .env("MASTER_ADDR", &opts.master_addr)
            .env("MASTER_PORT", port.to_string())
            .env("OMP_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match cmd.spawn() {
            Ok(mut child) => {
                forwarders.push(forward(rank, child.stdout.take().expect("piped"), false));
                forwarders.push(forward(rank, child.stderr.take().expect("piped"), true));
                children.push(child);
            }
            Err(source) => {
                let mut ends: Vec<Option<RankEnd>> = vec![None; children.len()];
                stop_all(&mut children, &mut ends, opts.grace);
                return Err(LaunchError::Spawn {
                    command: program.clone(),
                    rank,
                    source,
                });
            }
        }
    }
    let start = Instant::now();
    let mut ends: Vec<Option<RankEnd>> = vec![None; n];
    let outcome = loop {
        let mut failures = Vec::new();
        for (rank, (c, e)) in children.iter_mut().zip(ends.iter_mut()).enumerate() {
            if e.is_none() {
                if let Ok(Some(status)) = c.try_wait() {
                    let end = end_of(status);
                    if end != RankEnd::Exited(0) {
                        failures.push((rank, end.clone()));
                    }
                    *e = Some(end);
                }
            }
        }
        // Ranks that fail in the same poll are usually one cause and its
        // echoes (a killed rank, then the peers that lost it): blame a
        // signal death first.
        let first_failure = failures
            .iter()
            .find(|(_, e)| matches!(e, RankEnd::Signaled(_)))
            .or(failures.first())
            .cloned();
        if let Some((rank, end)) = first_failure {
            stop_all(&mut children, &mut ends, opts.grace);
            let summary = ends
                .iter()
                .enumerate()
                .filter(|(r, _)| *r != rank)
                .map(|(r, e)| format!("rank {r} {}", e.as_ref().expect("all ended")))
                .collect::<Vec<_>>()
                .join(", ");
            break Err(LaunchError::RankFailed { rank, end, summary });
        }
        if ends.iter().all(|e| e.is_some()) {
            break Ok(port);
        }
        if let Some(sig) = signals::received() {
            stop_all(&mut children, &mut ends, opts.grace);
            break Err(LaunchError::Interrupted(sig));
        }
        if let Some(t) = opts.timeout {
            if start.elapsed() >= t {
                let running = (0..n).filter(|&r| ends[r].is_none()).collect();
                stop_all(&mut children, &mut ends, opts.grace);
                break Err(LaunchError::Timeout {
                    timeout: t,
                    running,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    for f in forwarders {
        let _ = f.join();
    }
    outcome
}
