//! The `xlm` binary: parses arguments and runs a command from the library.
//!
//! Exit codes: 0 success, 1 the command failed, 2 bad arguments (clap).

use clap::Parser;
use xlm::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => args.run()?,
    }
    Ok(())
}
