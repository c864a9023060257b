//! The harness shared by the multi-process and SLURM tiers: run ranks of
//! `xlm probe`, collect every `rank_<r>.json` into typed results, and fail
//! with everything needed to debug (command, exit status, both output
//! streams, each failed rank's error).
#![allow(dead_code)]

use serde_json::Value as Json;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use xlm_cli::probe::{read_result, result_path, RankResult};

/// The `xlm` binary under test.
pub fn xlm_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xlm"))
}

/// Variables that would make a child think it is part of another run.
fn scrub(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        let rank_var = [
            "RANK",
            "WORLD_SIZE",
            "LOCAL_RANK",
            "LOCAL_WORLD_SIZE",
            "GROUP_RANK",
            "MASTER_ADDR",
            "MASTER_PORT",
        ]
        .contains(&k.as_str());
        if rank_var || k.starts_with("SLURM_") {
            cmd.env_remove(&k);
        }
    }
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct Output {
    pub command: String,
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// From start to exit (or to the kill at the limit).
    pub elapsed: Duration,
}

/// Runs `cmd` with a wall-clock limit, capturing both streams.
pub fn run_command(mut cmd: Command, timeout: Duration) -> Output {
    scrub(&mut cmd);
    let command = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().expect("piped")));
    let err = pipe(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let deadline = start + timeout;
    let (status, timed_out) = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break (Some(s), false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break (child.wait().ok(), true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    Output {
        command,
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
        elapsed,
    }
}

/// Why a distributed run did not produce `world_size` ok results.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// Whatever results could be read.
    pub results: Vec<RankResult>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Reads `rank_0.json .. rank_<world-1>.json`; fails naming missing or not-ok ranks.
pub fn collect(
    world_size: usize,
    result_dir: &Path,
    output: &Output,
    context: &str,
) -> Result<Vec<RankResult>, Failure> {
    let mut problems = Vec::new();
    let mut results = Vec::new();
    if output.timed_out {
        problems.push("the command timed out and was killed".to_string());
    }
    if !output.status.is_some_and(|s| s.success()) {
        problems.push(format!("exit status: {:?}", output.status));
    }
    for r in 0..world_size {
        match read_result(&result_path(result_dir, r)) {
            Ok(res) => {
                if !res.ok {
                    problems.push(format!(
                        "rank {r} reported ok=false: {}",
                        res.error.as_deref().unwrap_or("(no error text)")
                    ));
                } else if res.rank != r || res.world_size != world_size {
                    problems.push(format!(
                        "rank_{r}.json says rank {} of {}",
                        res.rank, res.world_size
                    ));
                }
                results.push(res);
            }
            Err(e) => problems.push(format!("rank {r} wrote no usable result file ({e})")),
        }
    }
    if problems.is_empty() {
        return Ok(results);
    }
    let message = format!(
        "distributed run failed{context}\n  command: {}\n  result dir: {}\n  problems:\n    {}\n  --- stdout ---\n{}\n  --- stderr ---\n{}",
        output.command,
        result_dir.display(),
        problems.join("\n    "),
        output.stdout,
        output.stderr
    );
    Err(Failure { message, results })
}

/// Runs `world_size` ranks of `xlm probe` with `config` through `xlm launch`.
pub fn try_run_distributed(
    world_size: usize,
    result_dir: &Path,
    config: &Json,
    timeout: Duration,
) -> Result<Vec<RankResult>, Failure> {
    let config_arg = ["--config-json".into(), config.to_string().into()];
    try_run_probe(world_size, result_dir, &config_arg, timeout)
}

/// Runs `world_size` ranks of `xlm probe --config-file <file>` (JSON or
/// YAML, read as `xlm probe` reads it) through `xlm launch`.
pub fn try_run_distributed_file(
    world_size: usize,
    result_dir: &Path,
    config_file: &Path,
    timeout: Duration,
) -> Result<Vec<RankResult>, Failure> {
    let config_arg = ["--config-file".into(), config_file.as_os_str().to_owned()];
    try_run_probe(world_size, result_dir, &config_arg, timeout)
}

fn try_run_probe(
    world_size: usize,
    result_dir: &Path,
    config_arg: &[std::ffi::OsString],
    timeout: Duration,
) -> Result<Vec<RankResult>, Failure> {
    std::fs::create_dir_all(result_dir).expect("result dir");
    let mut cmd = Command::new(xlm_bin());
    cmd.arg("launch")
        .arg("--nproc-per-node")
        .arg(world_size.to_string())
        .arg("--timeout")
        .arg(timeout.as_secs_f64().to_string())
        .arg("--grace")
        .arg("2")
        .arg("--")
        .arg(xlm_bin())
        .arg("probe")
        .arg("--result-dir")
        .arg(result_dir)
        .args(config_arg);
    let output = run_command(cmd, timeout + Duration::from_secs(10));
    collect(world_size, result_dir, &output, "")
}

/// [`try_run_distributed`], panicking with the harness's message on failure.
pub fn run_distributed(
    world_size: usize,
    result_dir: &Path,
    config: &Json,
    timeout: Duration,
) -> Vec<RankResult> {
    try_run_distributed(world_size, result_dir, config, timeout).unwrap_or_else(|f| panic!("{f}"))
}
pub mod slurm;
