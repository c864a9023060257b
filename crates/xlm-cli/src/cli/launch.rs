use std::time::Duration;
use xlm_dist::launch::{launch, LaunchOptions, EXIT_OK};

/// Arguments of `xlm launch`.
#[derive(Debug, clap::Args)]
pub struct LaunchArgs {
    /// Number of ranks to start on this machine.
    #[arg(long)]
    pub nproc_per_node: usize,
    /// Rendezvous address given to the ranks.
    #[arg(long, default_value = "127.0.0.1")]
    pub master_addr: String,
    /// Rendezvous port (default: a free port).
    #[arg(long)]
    pub master_port: Option<u16>,
    /// Stop every rank after this many seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Seconds between SIGTERM and SIGKILL when stopping ranks.
    #[arg(long, default_value_t = 5.0)]
    pub grace: f64,
    /// The command each rank runs, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

impl LaunchArgs {
    /// Runs the ranks; returns the process exit code.
    pub fn run(&self) -> i32 {
        let opts = LaunchOptions {
            nproc_per_node: self.nproc_per_node,
            master_addr: self.master_addr.clone(),
            master_port: self.master_port,
            timeout: self.timeout.map(Duration::from_secs_f64),
            grace: Duration::from_secs_f64(self.grace.max(0.0)),
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
