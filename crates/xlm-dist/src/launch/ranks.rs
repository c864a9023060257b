//! The rank processes: each in its own process group, watched without
//! being reaped until the launch is over, and stopped group by group.

use super::output::Output;
use super::{signals, LaunchError, LaunchOptions, RankEnd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The started ranks and how each ended (`None`: still running).
pub(super) struct Ranks {
    children: Vec<Child>,
    ends: Vec<Option<RankEnd>>,
}

impl Ranks {
    /// Starts every rank, its output forwarded through `output`. On a
    /// failure the ranks already started are stopped.
    pub fn spawn(
        opts: &LaunchOptions,
        port: u16,
        nonce: &str,
        output: &mut Output,
    ) -> Result<Self, LaunchError> {
        let n = opts.nproc_per_node;
        let mut ranks = Ranks {
            children: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
        };
        let (program, args) = opts
            .command
            .split_first()
            .ok_or_else(|| LaunchError::Usage("no command given".into()))?;
        for rank in 0..n {
            let mut cmd = Command::new(program);
            cmd.args(args)
                .env("RANK", rank.to_string())
                .env("WORLD_SIZE", n.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("LOCAL_WORLD_SIZE", n.to_string())
                .env("GROUP_RANK", "0")
                .env("MASTER_ADDR", &opts.master_addr)
                .env("MASTER_PORT", port.to_string())
                .env(crate::NONCE_VAR, nonce)
                .env("OMP_NUM_THREADS", "1")
                .env("MKL_NUM_THREADS", "1")
                // Its own process group: the launcher can stop the rank with
                // everything it started, and a Ctrl-C at the terminal reaches
                // the launcher only, which then stops the ranks in order.
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            match cmd.spawn() {
                Ok(mut child) => {
                    if let Some(out) = child.stdout.take() {
                        output.forward(rank, out, false);
                    }
                    if let Some(err) = child.stderr.take() {
                        output.forward(rank, err, true);
                    }
                    ranks.children.push(child);
                    ranks.ends.push(None);
                }
                Err(source) => {
                    ranks.stop(opts.grace);
                    ranks.reap();
                    return Err(LaunchError::Spawn {
                        command: program.clone(),
                        rank,
                        source,
                    });
                }
            }
        }
        Ok(ranks)
    }

    /// Records the ranks that ended since the last poll; returns those that
    /// failed (non-zero exit or a signal), in rank order.
    pub fn poll(&mut self) -> Vec<(usize, RankEnd)> {
        let mut failed = Vec::new();
        for (rank, (c, e)) in self
            .children
            .iter_mut()
            .zip(self.ends.iter_mut())
            .enumerate()
        {
            if e.is_some() {
                continue;
            }
            let end = match signals::peek_end(c.id()) {
                Ok(end) => end,
                // Cannot peek (should not happen): reap it to learn its status.
                Err(_) => c.try_wait().ok().flatten().map(RankEnd::from_status),
            };
            if let Some(end) = end {
                if end != RankEnd::Exited(0) {
                    failed.push((rank, end.clone()));
                }
                *e = Some(end);
            }
        }
        failed
    }

    /// The ranks still running.
    pub fn running(&self) -> Vec<usize> {
        (0..self.ends.len())
            .filter(|&r| self.ends[r].is_none())
            .collect()
    }

    /// How each rank ended, except `rank`: `rank 0 exited with code 0, ...`.
    pub fn summary(&self, except: usize) -> String {
        self.ends
            .iter()
            .enumerate()
            .filter(|(r, _)| *r != except)
            .map(|(r, e)| match e {
                Some(e) => format!("rank {r} {e}"),
                None => format!("rank {r} is still running"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn signal_all(&self, sig: i32) {
        // Every group, also of ranks that ended: what they left running is
        // stopped too. Safe because no rank is reaped before `reap`, so no
        // group id can have been reused.
        for c in &self.children {
            signals::signal_group(c.id(), sig);
            // A rank that moved to a group of its own still gets it.
            signals::signal_process(c.id(), sig);
        }
    }

    /// Stops every rank: SIGTERM to each rank's process group, then SIGKILL
    /// after `grace` to those whose rank is still running. Ranks that end
    /// here are recorded as [`RankEnd::Stopped`].
    pub fn stop(&mut self, grace: Duration) {
        self.signal_all(libc::SIGTERM);
        let deadline = Instant::now().checked_add(grace);
        loop {
            self.poll_stopped();
            if self.running().is_empty() {
                return;
            }
            if deadline.is_none_or(|d| Instant::now() >= d) {
                self.signal_all(libc::SIGKILL);
                for (c, e) in self.children.iter_mut().zip(self.ends.iter_mut()) {
                    if e.is_none() {
                        let _ = c.kill();
                        *e = Some(RankEnd::Stopped);
                    }
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn poll_stopped(&mut self) {
        for (c, e) in self.children.iter().zip(self.ends.iter_mut()) {
            if e.is_none() && !matches!(signals::peek_end(c.id()), Ok(None)) {
                *e = Some(RankEnd::Stopped);
            }
        }
    }

    /// Reaps every rank (after this their process-group ids may be reused),
    /// waiting at most [`REAP_WAIT`] for all of them together: a rank stuck
    /// in uninterruptible I/O (D state, e.g. on NFS or Lustre) does not die
    /// from SIGKILL until that I/O ends, and must not hold up the launch,
    /// whose outcome is already decided. Such a rank is reported on stderr
    /// and left unreaped.
    pub fn reap(&mut self) {
        self.reap_within(REAP_WAIT);
    }

    /// [`reap`](Self::reap) with at most `wait` for all the ranks together;
    /// returns the ranks it stopped waiting for.
    fn reap_within(&mut self, wait: Duration) -> Vec<usize> {
        let deadline = Instant::now().checked_add(wait);
        let mut left = Vec::new();
        for (rank, c) in self.children.iter_mut().enumerate() {
            if !wait_until(c, deadline) {
                eprintln!(
                    "xlm launch: rank {rank} (pid {}) did not exit after SIGKILL; not waiting for it",
                    c.id()
                );
                left.push(rank);
            }
        }
        left
    }
}

/// How long [`Ranks::reap`] waits for the ranks (all together) after they
/// were stopped or ended.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// Reaps `child` if it exits before `deadline` (`None`: no limit). Returns
/// false if it is still running at the deadline; true once it is reaped, or
/// if it cannot be waited for at all (nothing more to wait for then).
fn wait_until(child: &mut Child, deadline: Option<Instant>) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that outlives the test unless killed: it stands for a rank
    /// stuck in uninterruptible I/O, which SIGKILL does not end at once.
    fn stuck_child() -> Child {
        Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("start `sleep 30`")
    }

    fn cleanup(mut c: Child) {
        let _ = c.kill();
        let _ = c.wait();
    }

    #[test]
    fn the_bounded_wait_gives_up_on_a_child_that_does_not_exit() {
        let mut child = stuck_child();
        let start = Instant::now();
        let reaped = wait_until(&mut child, Some(start + Duration::from_millis(300)));
        let took = start.elapsed();
        cleanup(child);
        assert!(!reaped, "a running child is not reaped");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "gave up after {took:?}"
        );
    }

    #[test]
    fn the_bounded_wait_reaps_a_child_that_exits() {
        let mut child = Command::new("true").spawn().expect("start `true`");
        let start = Instant::now();
        assert!(wait_until(
            &mut child,
            Some(start + Duration::from_secs(10))
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(child
            .try_wait()
            .is_ok_and(|s| s.is_some_and(|s| s.success())));
    }

    #[test]
    fn reap_leaves_a_rank_that_does_not_exit_and_reaps_the_others() {
        let done = Command::new("true").spawn().expect("start `true`");
        let mut ranks = Ranks {
            children: vec![done, stuck_child()],
            ends: vec![None, None],
        };
        let start = Instant::now();
        let left = ranks.reap_within(Duration::from_millis(300));
        let took = start.elapsed();
        let stuck = ranks.children.pop();
        let first = ranks.children[0].try_wait();
        if let Some(c) = stuck {
            cleanup(c);
        }
        assert_eq!(left, vec![1]);
        assert!(took < Duration::from_secs(3), "reaping took {took:?}");
        assert!(first.is_ok_and(|s| s.is_some()), "rank 0 was reaped");
    }
}
