//! The few POSIX signal and process operations the launcher needs (via `libc`).

use super::RankEnd;
use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    RECEIVED.store(sig, Ordering::SeqCst);
}

/// Catches SIGINT and SIGTERM so the launcher can stop its ranks first.
pub fn install() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// The signal received since [`install`], if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Sends `sig` to every process of process group `pgid` (a rank and what
/// it started). A group that no longer exists is not an error.
pub fn signal_group(pgid: u32, sig: i32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // killpg(1) would signal init's group, and 0 our own: never either.
    if pgid > 1 {
        // SAFETY: killpg(2) has no memory-safety preconditions.
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
}

/// Sends `sig` to process `pid` (a rank's leader: alive, or a zombie that
/// ignores it, since ranks are reaped only at the end).
pub fn signal_process(pid: u32, sig: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 1 {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}

/// How child `pid` ended, if it has, *without reaping it*: until it is
/// reaped its pid cannot be reused, so neither can its process-group id,
/// and the launcher can still signal what it left running.
pub fn peek_end(pid: u32) -> std::io::Result<Option<RankEnd>> {
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes only into `info`, which outlives the call.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: waitid filled a SIGCHLD siginfo (or left it zeroed: no
    // child changed state), for which si_pid and si_status are defined.
    let (child, status) = unsafe { (info.si_pid(), info.si_status()) };
    let end = if info.si_code == libc::CLD_EXITED {
        RankEnd::Exited(status)
    } else {
        RankEnd::Signaled(status)
    };
    Ok((child != 0).then_some(end))
}

/// A signal's name.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
