use super::wire::{pack_list, read_frame, unpack_list, write_frame, Frame, DATA, ERROR, HELLO};
use crate::{DistError, RankEnv};
use std::collections::BTreeSet;
use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{channel as unbounded, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Extra time non-zero ranks wait for rank 0's answer, so that rank 0's own
/// timeout (which names the missing ranks) reaches them first.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

enum Role {
    /// World size 1: every operation is local.
    Alone,
    /// Rank 0: one connection per peer, read by a thread each.
    Root {
        peers: Vec<Option<TcpStream>>,
        inbox: Receiver<(usize, std::io::Result<Frame>)>,
        lost: BTreeSet<usize>,
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
/// collective library); each has a timeout whose error names the ranks that
/// did not arrive.
pub struct ProcessGroup {
    rank: usize,
    world_size: usize,
    seq: u64,
    role: Role,
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProcessGroup(rank {} of {})", self.rank, self.world_size)
    }
}

fn resolve(env: &RankEnv) -> Result<SocketAddr, DistError> {
    (env.master_addr.as_str(), env.master_port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut a| a.next().ok_or_else(|| "no address".to_string()))
        .map_err(|reason| DistError::Resolve {
            addr: env.master_addr.clone(),
            port: env.master_port,
            reason,
        })
}

impl ProcessGroup {
    /// Joins the group described by `env`, waiting at most `timeout` for
    /// every rank to connect.
    pub fn connect(env: &RankEnv, timeout: Duration) -> Result<Self, DistError> {
        let deadline = Instant::now() + timeout;
        let role = if env.world_size == 1 {
            Role::Alone
        } else if env.rank == 0 {
            Self::serve(env, deadline, timeout)?
        } else {
            Self::join(env, deadline, timeout)?
        };
        Ok(Self {
            rank: env.rank,
            world_size: env.world_size,
            seq: 0,
            role,
        })
    }

    fn serve(env: &RankEnv, deadline: Instant, timeout: Duration) -> Result<Role, DistError> {
        let fail = |reason: String| DistError::Failed {
            rank: 0,
            op: "rendezvous".into(),
            reason,
        };
        let addr = resolve(env)?;
        let listener = TcpListener::bind(addr)
            .or_else(|_| TcpListener::bind(("0.0.0.0", env.master_port)))
            .map_err(|e| fail(format!("cannot listen on {addr}: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| fail(e.to_string()))?;
        let mut peers: Vec<Option<TcpStream>> = (0..env.world_size).map(|_| None).collect();
        let mut connected = 1;
        while connected < env.world_size {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream
                        .set_nonblocking(false)
                        .map_err(|e| fail(e.to_string()))?;
                    stream.set_nodelay(true).ok();
                    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                    let mut s = &stream;
                    let hello = match read_frame(&mut s) {
                        Ok(f) if f.kind == HELLO && f.payload.len() == 8 => f,
                        _ => continue, // not one of ours (e.g. a port scanner): ignore it
                    };
                    let rank =
                        u32::from_le_bytes(hello.payload[..4].try_into().expect("4")) as usize;
                    let world =
                        u32::from_le_bytes(hello.payload[4..].try_into().expect("4")) as usize;
                    if world != env.world_size
                        || rank == 0
                        || rank >= env.world_size
                        || peers[rank].is_some()
                    {
                        return Err(fail(format!(
                            "a process announced rank {rank} of world size {world}, but this group is {} ranks{}",
                            env.world_size,
                            if peers.get(rank).is_some_and(|p| p.is_some()) { " and that rank already joined" } else { "" }
                        )));
                    }
                    stream.set_read_timeout(None).ok();
                    peers[rank] = Some(stream);
                    connected += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let missing = (1..env.world_size)
                            .filter(|&r| peers[r].is_none())
                            .collect();
                        return Err(DistError::Timeout {
                            rank: 0,
                            op: "rendezvous".into(),
                            timeout,
                            missing,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        let (tx, inbox) = unbounded();
        for (rank, p) in peers.iter().enumerate() {
            let Some(stream) = p else { continue };
            let mut reader = BufReader::new(stream.try_clone().map_err(|e| fail(e.to_string()))?);
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("xlm-pg-rank{rank}"))
                .spawn(move || loop {
                    let frame = read_frame(&mut reader);
                    let end = frame.is_err();
                    if tx.send((rank, frame)).is_err() || end {
                        break;
                    }
                })
                .map_err(|e| fail(e.to_string()))?;
        }
        Ok(Role::Root {
            peers,
            inbox,
            lost: BTreeSet::new(),
        })
    }

    fn join(env: &RankEnv, deadline: Instant, timeout: Duration) -> Result<Role, DistError> {
        let addr = resolve(env)?;
        let stream = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => {
                    return Err(DistError::Timeout {
                        rank: env.rank,
                        op: format!("rendezvous with rank 0 at {addr} ({e})"),
                        timeout,
                        missing: vec![0],
                    })
                }
            }
        };
        stream.set_nodelay(true).ok();
        let mut payload = (env.rank as u32).to_le_bytes().to_vec();
        payload.extend_from_slice(&(env.world_size as u32).to_le_bytes());
        let mut w = &stream;
        write_frame(&mut w, HELLO, 0, &payload).map_err(|e| DistError::Failed {
            rank: env.rank,
            op: "rendezvous".into(),
            reason: e.to_string(),
        })?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| DistError::Failed {
            rank: env.rank,
            op: "rendezvous".into(),
            reason: e.to_string(),
        })?);
        Ok(Role::Peer { stream, reader })
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Every rank's `data`, in rank order, on every rank.
    pub fn all_gather(
        &mut self,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, DistError> {
        self.collective("all_gather", data, timeout)
    }

    /// [`all_gather`](Self::all_gather) with a name for the operation in errors
    /// (e.g. `barrier after prepare_data`).
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
        Ok(std::mem::take(&mut all[0]))
    }

    fn collective(
        &mut self,
        op: &str,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, DistError> {
        self.seq += 1;
        let seq = self.seq;
        let rank = self.rank;
        let failed = |reason: String| DistError::Failed {
            rank,
            op: op.to_string(),
            reason,
        };
        match &mut self.role {
            Role::Alone => Ok(vec![data.to_vec()]),
            Role::Root { peers, inbox, lost } => {
                let deadline = Instant::now() + timeout;
                let mut got: Vec<Option<Vec<u8>>> = (0..peers.len()).map(|_| None).collect();
                got[0] = Some(data.to_vec());
                let result = loop {
                    let missing: Vec<usize> =
                        (1..got.len()).filter(|&r| got[r].is_none()).collect();
                    if missing.is_empty() {
                        break Ok(());
                    }
                    let gone: Vec<usize> = missing
                        .iter()
                        .copied()
                        .filter(|r| lost.contains(r))
                        .collect();
                    if !gone.is_empty() {
                        break Err(DistError::Lost {
                            rank,
                            op: op.into(),
                            lost: gone,
                        });
                    }
                    match inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok((r, Ok(f))) if f.kind == DATA && f.seq == seq => {
                            got[r] = Some(f.payload)
                        }
                        Ok((_, Ok(_))) => {} // a late answer to an earlier, failed operation
                        Ok((r, Err(_))) => {
                            lost.insert(r);
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            break Err(DistError::Timeout {
                                rank,
                                op: op.into(),
                                timeout,
                                missing,
                            });
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            break Err(failed("all peer connections closed".into()))
                        }
                    }
                };
                match result {
                    Ok(()) => {
                        let all: Vec<Vec<u8>> =
                            got.into_iter().map(|g| g.expect("all arrived")).collect();
                        let packed = pack_list(&all);
                        for (r, p) in peers.iter().enumerate() {
                            if let Some(mut s) = p.as_ref() {
                                write_frame(&mut s, DATA, seq, &packed)
                                    .map_err(|e| failed(format!("sending to rank {r}: {e}")))?;
                            }
                        }
                        Ok(all)
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        for mut s in peers.iter().flatten() {
                            let _ = write_frame(&mut s, ERROR, seq, msg.as_bytes());
                        }
                        Err(e)
                    }
                }
            }
            Role::Peer { stream, reader } => {
                let mut w = &*stream;
                write_frame(&mut w, DATA, seq, data).map_err(|e| DistError::Lost {
                    rank,
                    op: format!("{op} (sending to rank 0: {e})"),
                    lost: vec![0],
                })?;
                stream.set_read_timeout(Some(timeout + ANSWER_GRACE)).ok();
                loop {
                    match read_frame(reader) {
                        Ok(f) if f.seq < seq => continue,
                        Ok(f) if f.kind == DATA => {
                            return unpack_list(&f.payload)
                                .ok_or_else(|| failed("malformed answer from rank 0".into()))
                        }
                        Ok(f) if f.kind == ERROR => {
                            return Err(failed(format!(
                                "rank 0 reports: {}",
                                String::from_utf8_lossy(&f.payload)
                            )))
                        }
                        Ok(f) => {
                            return Err(failed(format!(
                                "unexpected frame kind {} from rank 0",
                                f.kind
                            )))
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            return Err(DistError::Timeout {
                                rank,
                                op: op.into(),
                                timeout: timeout + ANSWER_GRACE,
                                missing: vec![0],
                            })
                        }
                        Err(_) => {
                            return Err(DistError::Lost {
                                rank,
                                op: op.into(),
                                lost: vec![0],
                            })
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EnvSource;

    fn env(rank: usize, world: usize, port: u16) -> RankEnv {
        RankEnv {
            rank,
            world_size: world,
            local_rank: rank,
            local_world_size: world,
            master_addr: "127.0.0.1".into(),
            master_port: port,
            source: EnvSource::Torchrun,
        }
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn collectives_across_threads() {
        let port = free_port();
        let t = Duration::from_secs(10);
        let handles: Vec<_> = (0..4)
            .map(|r| {
                std::thread::spawn(move || {
                    let mut g = ProcessGroup::connect(&env(r, 4, port), t).unwrap();
                    g.barrier(t).unwrap();
                    let all = g.all_gather(&[r as u8; 3], t).unwrap();
                    let b = g.broadcast(format!("from {r}").as_bytes(), t).unwrap();
                    (all, b)
                })
            })
            .collect();
        for h in handles {
            let (all, b) = h.join().unwrap();
            assert_eq!(all, (0..4u8).map(|r| vec![r; 3]).collect::<Vec<_>>());
            assert_eq!(b, b"from 0");
        }
    }

    #[test]
    fn a_missing_rank_is_named() {
        let port = free_port();
        let t = Duration::from_millis(1000);
        let peer = std::thread::spawn(move || {
            let mut g = ProcessGroup::connect(&env(1, 3, port), Duration::from_secs(5)).unwrap();
            g.barrier(t).unwrap_err().to_string()
        });
        let err = ProcessGroup::connect(&env(0, 3, port), t).unwrap_err();
        assert!(
            matches!(&err, DistError::Timeout { missing, .. } if missing == &vec![2]),
            "{err}"
        );
        // Rank 1 loses its connection when rank 0 gives up.
        let e = peer.join().unwrap();
        assert!(e.contains("rank 1"), "{e}");
    }

    #[test]
    fn a_late_rank_times_out_the_barrier_with_its_name() {
        let port = free_port();
        let slow = std::thread::spawn(move || {
            let mut g = ProcessGroup::connect(&env(1, 2, port), Duration::from_secs(5)).unwrap();
            std::thread::sleep(Duration::from_millis(600));
            g.barrier(Duration::from_secs(5)).unwrap_err().to_string()
        });
        let mut g = ProcessGroup::connect(&env(0, 2, port), Duration::from_secs(5)).unwrap();
        let e = g.barrier(Duration::from_millis(200)).unwrap_err();
        assert!(
            matches!(&e, DistError::Timeout { missing, .. } if missing == &vec![1]),
            "{e}"
        );
        let peer_err = slow.join().unwrap();
        assert!(
            peer_err.contains("rank 0 reports") && peer_err.contains("[1]"),
            "{peer_err}"
        );
    }
}
