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

    /// Reaps every rank (after this their process-group ids may be reused).
    pub fn reap(&mut self) {
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}
