//! The `xlm` binary: parses arguments and runs a command from the library.
//!
//! Exit codes: 0 success, 1 the command failed, 2 bad arguments (clap's
//! errors and every other usage error); `xlm launch` adds 3 (timeout) and
//! 130 (interrupted), see `xlm_dist::launch`.

use clap::{CommandFactory, Parser};
use xlm_cli::cli::{Cli, Command};

fn main() {
    xlm_cli::logging::init();
    // clap exits 2 on a usage error, 0 for --help and --version.
    let cli = Cli::parse();
    if let Err((sub, msg)) = cli.command.check_usage() {
        // Reported by the subcommand, so the usage line shown is its own.
        let mut root = Cli::command();
        root.build();
        let kind = clap::error::ErrorKind::ArgumentConflict;
        match root.find_subcommand_mut(sub) {
            Some(cmd) => cmd.error(kind, msg).exit(),
            None => root.error(kind, msg).exit(),
        }
    }
    let result = match cli.command {
        Command::Demo(args) => any(args.run()),
        Command::Prepare(args) => any(args.run()),
        Command::Inspect(args) => any(args.run()),
        Command::Bench(args) => any(args.run()),
        Command::Launch(args) => std::process::exit(args.run()),
        Command::Probe(args) => std::process::exit(args.run()),
    };
    if let Err(e) = result {
        // The error and its causes on one line; no backtrace (even with
        // RUST_BACKTRACE set, a bad config is not a crash).
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

/// The commands return their own error types; one `anyhow` to print them.
fn any<E: Into<anyhow::Error>>(r: Result<(), E>) -> anyhow::Result<()> {
    r.map_err(Into::into)
}
