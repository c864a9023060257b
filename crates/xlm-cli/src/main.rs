//! The `xlm` binary: parses arguments and runs a command from the library.
//!
//! Exit codes: 0 success, 1 the command failed, 2 bad arguments (clap);
//! `xlm launch` adds 3 (timeout) and 130 (interrupted), see `xlm_dist::launch`.

use clap::Parser;
use xlm_cli::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    xlm_cli::logging::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => args.run()?,
        Command::Prepare(args) => args.run()?,
        Command::Inspect(args) => args.run()?,
        Command::Bench(args) => args.run()?,
        Command::Launch(args) => std::process::exit(args.run()),
        Command::Probe(args) => std::process::exit(args.run()),
    }
    Ok(())
}
