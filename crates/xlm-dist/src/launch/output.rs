//! Forwarding the ranks' output, each line prefixed `[rank r]`, on the
//! stream it came from, and a bounded wait for the last of it.
//!
//! A pipe stays open while any process holds it, including one a rank
//! left running in the background; so after the ranks exit the launcher
//! waits a short while for their output, then stops waiting and says so.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

/// The forwarder threads; each reports its rank when its pipe closes.
pub(super) struct Output {
    open: Vec<usize>,
    closed_tx: Sender<usize>,
    closed: Receiver<usize>,
}

impl Output {
    pub fn new() -> Self {
        let (closed_tx, closed) = channel();
        Self {
            open: Vec::new(),
            closed_tx,
            closed,
        }
    }

    /// Forwards `stream` of `rank` line by line until it closes.
    pub fn forward(&mut self, rank: usize, stream: impl Read + Send + 'static, to_stderr: bool) {
        let done = self.closed_tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("xlm-launch-out{rank}"))
            .spawn(move || {
                for line in BufReader::new(stream).split(b'\n') {
                    let Ok(line) = line else { break };
                    let text = String::from_utf8_lossy(&line);
                    let _ = if to_stderr {
                        writeln!(std::io::stderr().lock(), "[rank {rank}] {text}")
                    } else {
                        writeln!(std::io::stdout().lock(), "[rank {rank}] {text}")
                    };
                }
                let _ = done.send(rank);
            });
        // Without a thread the pipe is dropped: the rank gets SIGPIPE if it
        // writes, which the launcher reports like any other failure.
        if spawned.is_ok() {
            self.open.push(rank);
        }
    }

    /// Waits at most `limit` for every forwarded stream to close; returns
    /// the ranks (deduplicated, sorted) whose output is still held open.
    /// Their threads are left to finish on their own.
    pub fn drain(mut self, limit: Duration) -> Vec<usize> {
        let deadline = Instant::now() + limit;
        while !self.open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.closed.recv_timeout(left) {
                Ok(rank) => {
                    if let Some(i) = self.open.iter().position(|&r| r == rank) {
                        self.open.swap_remove(i);
                    }
                }
                Err(_) => break,
            }
        }
        self.open.sort_unstable();
        self.open.dedup();
        self.open
    }
}
