use std::time::Duration;
use xlm_dist::launch::{launch, parse_seconds, LaunchOptions, EXIT_OK, MAX_GRACE_S, MAX_TIMEOUT_S};

/// `--nproc-per-node`: a whole number, at least 1.
fn nproc_arg(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "--nproc-per-node takes a whole number of ranks, at least 1, not {s:?}"
        )),
    }
}

fn timeout_arg(s: &str) -> Result<Duration, String> {
    parse_seconds("--timeout", s, MAX_TIMEOUT_S, false)
}

fn grace_arg(s: &str) -> Result<Duration, String> {
    parse_seconds("--grace", s, MAX_GRACE_S, true)
}

/// Arguments of `xlm launch`.
#[derive(Debug, clap::Args)]
pub struct LaunchArgs {
    /// Number of ranks to start on this machine (at least 1).
    #[arg(long, value_parser = nproc_arg)]
    pub nproc_per_node: usize,
    /// Rendezvous address given to the ranks.
    #[arg(long, default_value = "127.0.0.1")]
    pub master_addr: String,
    /// Rendezvous port (default: a free port).
    #[arg(long)]
    pub master_port: Option<u16>,
    /// Stop every rank after this many seconds (more than 0, at most 365 days).
    // Negative numbers reach the parser, which names the flag in its error.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, value_parser = timeout_arg)]
    pub timeout: Option<Duration>,
    /// Seconds between SIGTERM and SIGKILL when stopping ranks (0 to 3600).
    #[arg(long, value_name = "SECONDS", default_value = "5", allow_negative_numbers = true, value_parser = grace_arg)]
    pub grace: Duration,
    /// The command each rank runs, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

impl LaunchArgs {
    /// Runs the ranks; returns the process exit code (see `xlm_dist::launch`:
    /// 0 ok, 1 a rank failed, 2 usage, 3 timeout, 130 interrupted).
    pub fn run(&self) -> i32 {
        let opts = LaunchOptions {
            nproc_per_node: self.nproc_per_node,
            master_addr: self.master_addr.clone(),
            master_port: self.master_port,
            timeout: self.timeout,
            grace: self.grace,
            command: self.command.clone(),
        };
        match launch(&opts) {
            Ok(_) => EXIT_OK,
            Err(e) => {
                eprintln!("{e}");
                e.exit_code()
            }
        }
    }
}
