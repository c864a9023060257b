//! The `xlm` command line: argument types and the commands they run.

mod demo;

pub use demo::DemoArgs;

use clap::{Parser, Subcommand};

/// xlm: the data layer for language-model training.
#[derive(Debug, Parser)]
#[command(name = "xlm", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare a built-in dataset into a cache, set it up, iterate an epoch and print throughput.
    Demo(DemoArgs),
}
