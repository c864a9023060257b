//! The `xlm` command line as a library: the commands of the `xlm` binary
//! (demo, prepare, inspect, bench, launch, probe) over the `xlm` core and
//! the `xlm-dist` runtime. Only the binary and the test tiers use it.

pub mod bench;
pub mod cli;
pub mod demo;
pub mod inspect;
pub mod logging;
pub mod probe;
pub mod progress;
