//! The TCP process group: a star around rank 0, which gathers every
//! collective's data and sends back the answer (or its error).

mod rendezvous;
#[cfg(test)]
mod tests;

use crate::nonce::fingerprint;
use crate::wire::{self, pack_list, unpack_list, Frame, Kind, WireError};
use crate::{DistError, RankEnv};
use rendezvous::at_least_1ms;
use std::collections::BTreeSet;
use std::io::BufReader;
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Extra time non-zero ranks wait for rank 0's answer, so that rank 0's own
/// timeout (which names the missing ranks) reaches them first.
const ANSWER_GRACE: Duration = Duration::from_secs(2);
/// Write timeout of rank 0's error reports: best effort, and a peer that
/// does not read must not hold up the report to the others.
const REPORT_TIMEOUT: Duration = Duration::from_secs(1);

/// What a reader thread of rank 0 passes on: a peer's rank and its frame.
type Inbox = Receiver<(usize, Result<Frame, WireError>)>;

enum Role {
    /// World size 1: every operation is local.
    Alone,
    /// Rank 0: one connection per peer, read by a thread each.
    Root {
        peers: Vec<Option<TcpStream>>,
        inbox: Inbox,
    },
    /// Rank > 0: one connection to rank 0.
    Peer {
        stream: TcpStream,
        reader: BufReader<TcpStream>,
    },
}

/// A TCP process group: rank 0 serves at `MASTER_ADDR:MASTER_PORT`, the
/// others connect (retrying until the timeout). Collectives go through rank 0.
///
/// Operations must be called by every rank in the same order (as with any
/// collective library); a rank calling a different one is an error naming
/// both operations. Each operation has a timeout whose error names the
/// ranks that did not arrive. After any error the group is broken: later
/// operations fail at once with [`DistError::Broken`] carrying the original
/// error (a connection may have stopped mid-frame, so it is never read again).
pub struct ProcessGroup {
    rank: usize,
    world_size: usize,
    nonce: u64,
    seq: u64,
    role: Role,
    broken: Option<DistError>,
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProcessGroup(rank {} of {})", self.rank, self.world_size)
    }
}

/// `now + d`, or a far future when that overflows `Instant`.
fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

impl ProcessGroup {
    /// Joins the group described by `env`, waiting at most `timeout` for
    /// every rank to connect. Connections without `env.job_nonce` are refused.
    pub fn connect(env: &RankEnv, timeout: Duration) -> Result<Self, DistError> {
        let deadline = deadline_after(timeout);
        let nonce = fingerprint(&env.job_nonce);
        let role = if env.world_size == 1 {
            Role::Alone
        } else if env.rank == 0 {
            let peers = rendezvous::serve(env, nonce, deadline, timeout)?;
            Self::start_readers(peers)?
        } else {
            let stream = rendezvous::join(env, nonce, deadline, timeout)?;
            let reader = stream
                .try_clone()
                .map(BufReader::new)
                .map_err(|e| DistError::Failed {
                    rank: env.rank,
                    op: rendezvous::OP.into(),
                    reason: e.to_string(),
                })?;
            Role::Peer { stream, reader }
        };
        Ok(Self {
            rank: env.rank,
            world_size: env.world_size,
            nonce,
            seq: 0,
            role,
            broken: None,
        })
    }

    /// Rank 0: one reader thread per peer, all feeding one inbox.
    fn start_readers(peers: Vec<Option<TcpStream>>) -> Result<Role, DistError> {
        let fail = |e: std::io::Error| DistError::Failed {
            rank: 0,
            op: rendezvous::OP.into(),
            reason: e.to_string(),
        };
        let (tx, inbox) = channel();
        for (rank, p) in peers.iter().enumerate() {
            let Some(stream) = p else { continue };
            let mut reader = BufReader::new(stream.try_clone().map_err(fail)?);
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("xlm-pg-rank{rank}"))
                .spawn(move || loop {
                    let frame = wire::read_frame(&mut reader);
                    let end = frame.is_err();
                    if tx.send((rank, frame)).is_err() || end {
                        break;
                    }
                })
                .map_err(fail)?;
        }
        Ok(Role::Root { peers, inbox })
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// The error that broke the group, if one did.
    pub fn broken(&self) -> Option<&DistError> {
        self.broken.as_ref()
    }

    /// Every rank's `data`, in rank order, on every rank.
    pub fn all_gather(
        &mut self,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, DistError> {
        self.collective("all_gather", data, timeout)
    }

    /// [`all_gather`](Self::all_gather) under its own operation name (e.g.
    /// `barrier after prepare_data`): errors name it, and every rank must
    /// call it under the same name.
    pub fn all_gather_named(
        &mut self,
        op: &str,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, DistError> {
        self.collective(op, data, timeout)
    }

    /// Waits until every rank has arrived.
    pub fn barrier(&mut self, timeout: Duration) -> Result<(), DistError> {
        self.collective("barrier", &[], timeout).map(|_| ())
    }

    /// Rank 0's `data` on every rank (other ranks' `data` is ignored).
    pub fn broadcast(&mut self, data: &[u8], timeout: Duration) -> Result<Vec<u8>, DistError> {
        let mine = if self.rank == 0 { data } else { &[] };
        let mut all = self.collective("broadcast", mine, timeout)?;
        Ok(all.swap_remove(0))
    }

    fn collective(
        &mut self,
        op: &str,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, DistError> {
        if let Some(cause) = &self.broken {
            return Err(DistError::Broken {
                rank: self.rank,
                op: op.into(),
                cause: Box::new(cause.clone()),
            });
        }
        self.seq += 1;
        let result = match &mut self.role {
            Role::Alone => Ok(vec![data.to_vec()]),
            Role::Root { peers, inbox } => {
                Self::root(peers, inbox, self.nonce, self.seq, op, data, timeout)
            }
            Role::Peer { stream, reader } => Self::peer(
                stream,
                reader,
                (self.rank, self.world_size),
                self.nonce,
                self.seq,
                op,
                data,
                timeout,
            ),
        };
        if let Err(e) = &result {
            self.broken = Some(e.clone());
        }
        result
    }

    /// Rank 0: gathers every peer's frame for operation `seq`, checks that
    /// each peer is in the same operation, and answers (or reports the error).
    fn root(
        peers: &[Option<TcpStream>],
        inbox: &Inbox,
        nonce: u64,
        seq: u64,
        op: &str,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, DistError> {
        let deadline = deadline_after(timeout);
        let result = Self::gather(peers.len(), inbox, nonce, seq, op, data, deadline, timeout)
            .and_then(|all| {
                let packed = pack_list(&all);
                for (r, p) in peers.iter().enumerate() {
                    let Some(s) = p else { continue };
                    let _ = s.set_write_timeout(Some(at_least_1ms(timeout)));
                    wire::write_frame(&mut &*s, Kind::Data, nonce, seq, op, &packed).map_err(
                        |e| DistError::Failed {
                            rank: 0,
                            op: op.into(),
                            reason: format!("sending the answer to rank {r}: {e}"),
                        },
                    )?;
                }
                Ok(all)
            });
        if let Err(e) = &result {
            // Every rank fails with rank 0's diagnosis.
            let msg = e.to_string();
            for s in peers.iter().flatten() {
                let _ = s.set_write_timeout(Some(REPORT_TIMEOUT));
                let _ = wire::write_frame(&mut &*s, Kind::Error, nonce, seq, op, msg.as_bytes());
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn gather(
        world: usize,
        inbox: &Inbox,
        nonce: u64,
        seq: u64,
        op: &str,
        data: &[u8],
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, DistError> {
        let protocol = |r: usize, reason: String| DistError::Protocol {
            rank: 0,
            op: op.into(),
            peer: format!("rank {r}"),
            reason,
        };
        let mut got: Vec<Option<Vec<u8>>> = (0..world).map(|_| None).collect();
        got[0] = Some(data.to_vec());
        let mut lost = BTreeSet::new();
        loop {
            let missing: Vec<usize> = (1..world).filter(|&r| got[r].is_none()).collect();
            if missing.is_empty() {
                return Ok(got.into_iter().flatten().collect());
            }
            let gone: Vec<usize> = missing
                .iter()
                .copied()
                .filter(|r| lost.contains(r))
                .collect();
            if !gone.is_empty() {
                return Err(DistError::Lost {
                    rank: 0,
                    op: op.into(),
                    lost: gone,
                });
            }
            match inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((r, Ok(f))) => {
                    if f.nonce != nonce {
                        return Err(protocol(r, "a frame with another job's nonce".into()));
                    }
                    if f.kind != Kind::Data {
                        return Err(protocol(r, format!("a {:?} frame in a collective", f.kind)));
                    }
                    if f.op != op {
                        return Err(DistError::Mismatch {
                            rank: 0,
                            op: op.into(),
                            peer: r,
                            peer_op: f.op,
                        });
                    }
                    if f.seq != seq || got[r].is_some() {
                        return Err(protocol(
                            r,
                            format!("its operation #{} while rank 0 is at #{seq}", f.seq),
                        ));
                    }
                    got[r] = Some(f.payload);
                }
                Ok((r, Err(e))) if e.is_disconnect() => {
                    lost.insert(r);
                }
                Ok((r, Err(e))) => return Err(protocol(r, e.to_string())),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(DistError::Timeout {
                        rank: 0,
                        op: op.into(),
                        timeout,
                        missing,
                    })
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(DistError::Failed {
                        rank: 0,
                        op: op.into(),
                        reason: "every peer connection closed".into(),
                    })
                }
            }
        }
    }

    /// A rank > 0: sends its data to rank 0 and reads the answer.
    #[allow(clippy::too_many_arguments)]
    fn peer(
        stream: &TcpStream,
        reader: &mut BufReader<TcpStream>,
        (rank, world): (usize, usize),
        nonce: u64,
        seq: u64,
        op: &str,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, DistError> {
        let protocol = |reason: String| DistError::Protocol {
            rank,
            op: op.into(),
            peer: "rank 0".into(),
            reason,
        };
        let lost = || DistError::Lost {
            rank,
            op: op.into(),
            lost: vec![0],
        };
        let _ = stream.set_write_timeout(Some(at_least_1ms(timeout)));
        match wire::write_frame(&mut &*stream, Kind::Data, nonce, seq, op, data) {
            Ok(()) => {}
            Err(e) if e.is_timeout() => {
                return Err(DistError::Failed {
                    rank,
                    op: op.into(),
                    reason: format!("sending to rank 0 timed out after {timeout:?}"),
                })
            }
            Err(WireError::Io(_)) => return Err(lost()),
            Err(e) => {
                return Err(DistError::Failed {
                    rank,
                    op: op.into(),
                    reason: e.to_string(),
                })
            }
        }
        let wait = timeout.saturating_add(ANSWER_GRACE);
        let _ = stream.set_read_timeout(Some(at_least_1ms(wait)));
        match wire::read_frame(reader) {
            Ok(f) if f.nonce != nonce => Err(protocol("a frame with another job's nonce".into())),
            Ok(f) if f.kind == Kind::Error => Err(DistError::Failed {
                rank,
                op: op.into(),
                reason: format!("rank 0 reports: {}", String::from_utf8_lossy(&f.payload)),
            }),
            Ok(f) if f.kind == Kind::Data && f.op == op && f.seq == seq => {
                match unpack_list(&f.payload) {
                    Some(all) if all.len() == world => Ok(all),
                    _ => Err(protocol("a malformed answer".into())),
                }
            }
            Ok(f) if f.kind == Kind::Data => Err(protocol(format!(
                "the answer to {} #{} while this rank is in {op} #{seq}",
                f.op, f.seq
            ))),
            Ok(f) => Err(protocol(format!("a {:?} frame in a collective", f.kind))),
            Err(e) if e.is_timeout() => Err(DistError::Timeout {
                rank,
                op: op.into(),
                timeout: wait,
                missing: vec![0],
            }),
            Err(e) if e.is_disconnect() => Err(lost()),
            Err(e) => Err(protocol(e.to_string())),
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // Rank 0's reader threads hold clones of the connections: shutting
        // them down ends those threads (and tells the peers at once).
        if let Role::Root { peers, .. } = &self.role {
            for s in peers.iter().flatten() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}
