//! `submit_sbatch_and_wait`: the SLURM side of the harness.

use super::{collect, run_command, xlm_bin, Failure};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use xlm_cli::probe::RankResult;

/// `tests/slurm/<scenario>/script.sh`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/slurm")
        .join(name)
        .join("script.sh")
}

/// Extra sbatch arguments from `XLM_INTEGRATION_SBATCH_ARGS` (comma-separated, verbatim).
pub fn env_sbatch_args() -> Vec<String> {
    std::env::var("XLM_INTEGRATION_SBATCH_ARGS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Submits `script` with `sbatch --wait --parsable` (script arguments:
/// `<result_dir> <config_json>`), waits for the job, and collects the
/// per-rank results like `run_distributed`. Failures name the job id and
/// point at its log, `<result_dir>/slurm-<jobid>.out`.
pub fn submit_sbatch_and_wait(
    script: &Path,
    result_dir: &Path,
    config: &Json,
    expected_world_size: usize,
    timeout: Duration,
    extra_sbatch_args: &[String],
) -> Result<Vec<RankResult>, Failure> {
    std::fs::create_dir_all(result_dir).expect("result dir");
    let log = result_dir.join("slurm-%j.out");
    let mut cmd = Command::new("sbatch");
    cmd.arg("--wait")
        .arg("--parsable")
        .arg(format!("--output={}", log.display()))
        .arg(format!("--error={}", log.display()))
        .arg(format!("--chdir={}", result_dir.display()))
        .args(env_sbatch_args())
        .args(extra_sbatch_args)
        .arg(script)
        .arg(result_dir)
        .arg(config.to_string())
        .env("XLM_BIN", xlm_bin())
        .env(
            "XLM_SLURM_COMMON",
            script
                .parent()
                .and_then(Path::parent)
                .expect("tests/slurm")
                .join("common.sh"),
        );
    let start = Instant::now();
    let output = run_command(cmd, timeout);
    let job = output
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let job_log = result_dir.join(format!("slurm-{job}.out"));
    eprintln!(
        "SLURM job {} ({}) ended after {:.1} s with {:?}",
        if job.is_empty() {
            "not submitted"
        } else {
            &job
        },
        script
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        start.elapsed().as_secs_f64(),
        output.status
    );
    let context = if job.is_empty() {
        " (sbatch did not accept the job)".to_string()
    } else {
        let tail =
            std::fs::read_to_string(&job_log).unwrap_or_else(|e| format!("<cannot read: {e}>"));
        format!(
            " (SLURM job {job}; log {}):\n  --- job log ---\n{tail}",
            job_log.display()
        )
    };
    collect(expected_world_size, result_dir, &output, &context)
}
