//! Fault injection for the failure tests (`run.fault` in a probe config).
//!
//! Compiled in only with the `fault-injection` feature, which the test
//! command enables (`--features xlm-cli/fault-injection`) and release builds
//! never do; without it a configured fault is an error, so a production
//! `xlm probe` can never be asked to kill itself.

use super::{Fault, FaultKind};

/// Runs `fault` right after the rank joined the process group.
pub(super) fn inject_after_join(fault: &Fault, rank: usize) -> Result<(), String> {
    enabled(fault)?;
    #[cfg(feature = "fault-injection")]
    match fault.kind {
        FaultKind::Panic => panic!("fault injected on rank {rank}"),
        FaultKind::Sigkill => {
            // SAFETY: kill(2) on our own pid.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
        FaultKind::StallBeforeBarrier | FaultKind::StallInPrepare => {}
    }
    let _ = rank;
    Ok(())
}

/// Runs `fault` on the rank that prepares, before `prepare_data`.
pub(super) fn inject_in_prepare(fault: &Fault) -> Result<(), String> {
    enabled(fault)?;
    if fault.kind == FaultKind::StallInPrepare {
        stall(fault);
    }
    Ok(())
}

/// Runs `fault` after `prepare_data`, before the barrier that follows it.
pub(super) fn inject_before_barrier(fault: &Fault) -> Result<(), String> {
    enabled(fault)?;
    if fault.kind == FaultKind::StallBeforeBarrier {
        stall(fault);
    }
    Ok(())
}

fn stall(fault: &Fault) {
    let s = fault.stall_s.unwrap_or(5.0);
    // NaN (from YAML) would panic in from_secs_f64: treat it as no stall.
    let s = if s.is_nan() {
        0.0
    } else {
        s.clamp(0.0, 3600.0)
    };
    std::thread::sleep(std::time::Duration::from_secs_f64(s));
}

fn enabled(fault: &Fault) -> Result<(), String> {
    if cfg!(feature = "fault-injection") {
        Ok(())
    } else {
        Err(format!(
            "run.fault ({:?} on rank {}) needs an xlm built with the `fault-injection` feature (test builds only); remove `run.fault` from the config",
            fault.kind, fault.rank
        ))
    }
}
