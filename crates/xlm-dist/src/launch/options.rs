//! What to launch, and the checks that make a bad value a usage error
//! (exit 2) naming its flag instead of a panic or a surprise.

use super::LaunchError;
use std::time::Duration;

/// Longest `--timeout`: 365 days.
pub const MAX_TIMEOUT_S: f64 = 365.0 * 24.0 * 3600.0;
/// Longest `--grace`: one hour.
pub const MAX_GRACE_S: f64 = 3600.0;

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Ranks to start (at least 1).
    pub nproc_per_node: usize,
    /// Rendezvous address given to the ranks.
    pub master_addr: String,
    /// Rendezvous port (`None`: a free one).
    pub master_port: Option<u16>,
    /// Stop everything after this long (more than 0, at most [`MAX_TIMEOUT_S`]).
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when stopping ranks (at most [`MAX_GRACE_S`]).
    pub grace: Duration,
    /// The command and its arguments.
    pub command: Vec<String>,
}

impl LaunchOptions {
    /// Checks the options; a bad one is [`LaunchError::Usage`] naming its flag.
    pub fn validate(&self) -> Result<(), LaunchError> {
        if self.nproc_per_node == 0 {
            return Err(LaunchError::Usage(
                "--nproc-per-node must be at least 1".into(),
            ));
        }
        if self.command.is_empty() {
            return Err(LaunchError::Usage(
                "no command given; usage: xlm launch --nproc-per-node N -- CMD ARGS...".into(),
            ));
        }
        if let Some(t) = self.timeout {
            check_seconds("--timeout", t.as_secs_f64(), MAX_TIMEOUT_S, false)
                .map_err(LaunchError::Usage)?;
        }
        check_seconds("--grace", self.grace.as_secs_f64(), MAX_GRACE_S, true)
            .map_err(LaunchError::Usage)?;
        Ok(())
    }
}

fn check_seconds(flag: &str, v: f64, max: f64, zero_ok: bool) -> Result<(), String> {
    let low_ok = if zero_ok { v >= 0.0 } else { v > 0.0 };
    if v.is_finite() && low_ok && v <= max {
        Ok(())
    } else {
        Err(format!(
            "{flag} must be a number of seconds {} {max}, not {v}",
            if zero_ok {
                "from 0 to"
            } else {
                "more than 0 and at most"
            }
        ))
    }
}

/// Parses seconds for `flag` (`--timeout`, `--grace`): a finite number, not
/// negative (and more than 0 unless `zero_ok`), at most `max`.
pub fn parse_seconds(flag: &str, text: &str, max: f64, zero_ok: bool) -> Result<Duration, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{flag} takes a number of seconds, not {text:?}"))?;
    check_seconds(flag, v, max, zero_ok)?;
    Duration::try_from_secs_f64(v).map_err(|e| format!("{flag} {text}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_checked_naming_the_flag() {
        assert_eq!(
            parse_seconds("--timeout", "1.5", MAX_TIMEOUT_S, false),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_seconds("--grace", "0", MAX_GRACE_S, true),
            Ok(Duration::ZERO)
        );
        for bad in ["-1", "nan", "NaN", "inf", "-inf", "1e300", "0", "x", ""] {
            let e = parse_seconds("--timeout", bad, MAX_TIMEOUT_S, false).unwrap_err();
            assert!(e.contains("--timeout"), "{bad}: {e}");
        }
        assert!(parse_seconds("--grace", "-0.5", MAX_GRACE_S, true)
            .unwrap_err()
            .contains("--grace"));
    }
}
