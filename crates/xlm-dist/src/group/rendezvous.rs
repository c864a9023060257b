//! The rendezvous: rank 0 listens at `MASTER_ADDR:MASTER_PORT` and admits
//! the other ranks; they connect, retrying until the timeout.
//!
//! Every accepted connection gets its handshake on its own thread, with a
//! short deadline for the whole hello (not per read, so a stranger sending
//! a byte now and then is dropped on time too), so a silent or slow
//! stranger never delays the real ranks; a hello without this job's nonce
//! is refused at once.

use crate::wire::{self, Frame, Kind, WireError};
use crate::{DistError, RankEnv};
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an accepted connection has to send its whole hello.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at once; further connections are closed at once
/// (a real rank sees the close and retries).
const MAX_HANDSHAKES: usize = 64;
/// One connection attempt of a joining rank before it retries.
const CONNECT_ATTEMPT: Duration = Duration::from_millis(500);
/// The operation tag of rendezvous frames.
pub(super) const OP: &str = "rendezvous";

/// Socket timeouts must not be zero (std refuses it).
pub(super) fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// Reads from a socket under one deadline for a whole exchange: before each
/// read the socket's read timeout is set to the time left, so a peer that
/// sends a byte now and then cannot stretch the exchange past the deadline
/// (a plain read timeout bounds each read only). Past the deadline a read
/// fails with [`io::ErrorKind::TimedOut`].
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the deadline passed",
            ));
        }
        self.stream.set_read_timeout(Some(at_least_1ms(left)))?;
        (&mut &*self.stream).read(buf)
    }
}

/// Every address `MASTER_ADDR:MASTER_PORT` resolves to.
fn resolve(env: &RankEnv) -> Result<Vec<SocketAddr>, DistError> {
    let fail = |reason: String| DistError::Resolve {
        addr: env.master_addr.clone(),
        port: env.master_port,
        reason,
    };
    let addrs: Vec<SocketAddr> = (env.master_addr.as_str(), env.master_port)
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(fail("no address".into()));
    }
    Ok(addrs)
}

/// Where rank 0 listens, in order of preference:
///
/// - a loopback address (`127.x`, `::1`, `localhost`): only that (a
///   one-machine run stays unreachable from elsewhere);
/// - another IP address: that address, else every interface (when it is
///   not this machine's own, e.g. behind NAT);
/// - a host name: every interface, of the family the name resolves to.
///   Not the address it resolves to here: Debian's `/etc/hosts` maps the
///   machine's own name to 127.0.1.1, which other machines cannot reach.
///
/// Listening on every interface is safe because strangers are refused by
/// the frame magic and the job nonce.
pub(crate) fn bind_candidates(addr: &str, port: u16) -> Vec<SocketAddr> {
    let any = |v6: bool| -> SocketAddr {
        if v6 {
            (Ipv6Addr::UNSPECIFIED, port).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, port).into()
        }
    };
    let bare = addr.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return if ip.is_loopback() {
            vec![(ip, port).into()]
        } else {
            vec![(ip, port).into(), any(ip.is_ipv6())]
        };
    }
    if addr.eq_ignore_ascii_case("localhost") {
        return vec![
            (Ipv4Addr::LOCALHOST, port).into(),
            (Ipv6Addr::LOCALHOST, port).into(),
        ];
    }
    let v6 = (addr, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| a.is_ipv6());
    vec![any(v6), any(!v6)]
}

fn failed(reason: String) -> DistError {
    DistError::Failed {
        rank: 0,
        op: OP.into(),
        reason,
    }
}

fn listen(env: &RankEnv) -> Result<TcpListener, DistError> {
    let mut errors = Vec::new();
    for a in bind_candidates(&env.master_addr, env.master_port) {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => errors.push(format!("{a}: {e}")),
        }
    }
    Err(failed(format!(
        "cannot listen for the other ranks at MASTER_ADDR {}:{} ({})",
        env.master_addr,
        env.master_port,
        errors.join("; ")
    )))
}

/// What a handshake thread found.
enum Handshake {
    /// A hello with this job's nonce (not yet checked against the group).
    Hello {
        rank: usize,
        world: usize,
        stream: TcpStream,
        peer: SocketAddr,
    },
    /// Not a rank of this job; the connection is closed.
    Refused { peer: SocketAddr, reason: String },
}

/// The connections refused so far: a count and the first few, for the
/// timeout's message (a port scanner must not grow it without bound).
#[derive(Default)]
struct Refused {
    count: usize,
    first: Vec<String>,
}

impl Refused {
    fn add(&mut self, what: String) {
        self.count += 1;
        if self.first.len() < 3 {
            self.first.push(what);
        }
    }
}

/// Tells a connection why it was refused (best effort) before it is closed.
fn refuse(stream: &TcpStream, nonce: u64, reason: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = wire::write_frame(&mut &*stream, Kind::Reject, nonce, 0, OP, reason.as_bytes());
}

/// Reads one connection's hello, which must arrive whole within `limit`.
fn handshake(stream: TcpStream, peer: SocketAddr, nonce: u64, limit: Duration) -> Handshake {
    let deadline = super::deadline_after(limit);
    let refused = |reason: String| Handshake::Refused { peer, reason };
    // An accepted socket may inherit the listener's non-blocking mode.
    if let Err(e) = stream
        .set_nonblocking(false)
        .and_then(|_| stream.set_write_timeout(Some(at_least_1ms(limit))))
    {
        return refused(e.to_string());
    }
    let _ = stream.set_nodelay(true);
    let mut reader = DeadlineReader {
        stream: &stream,
        deadline,
    };
    let hello = match wire::read_frame(&mut reader) {
        Ok(f) => f,
        Err(e) if e.is_timeout() => {
            return refused(format!("sent no complete hello within {limit:?}"))
        }
        Err(e) => return refused(format!("no hello: {e}")),
    };
    if hello.nonce != nonce {
        let reason = "its job nonce differs from rank 0's (a rank of another job or of an earlier run, or ranks started with different XLM_JOB_NONCE / torchrun run ids / SLURM job or step ids)";
        refuse(&stream, nonce, reason);
        return refused(reason.into());
    }
    match (hello.kind, wire::parse_hello(&hello.payload)) {
        (Kind::Hello, Some((rank, world))) => Handshake::Hello {
            rank,
            world,
            stream,
            peer,
        },
        _ => {
            let reason = format!("a {:?} frame instead of a hello", hello.kind);
            refuse(&stream, nonce, &reason);
            refused(reason)
        }
    }
}

/// Rank 0: admits `world_size - 1` ranks; returns their connections by rank.
pub(super) fn serve(
    env: &RankEnv,
    nonce: u64,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<Option<TcpStream>>, DistError> {
    let world_size = env.world_size;
    let listener = listen(env)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| failed(e.to_string()))?;
    let (tx, rx) = mpsc::channel();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut peers: Vec<Option<TcpStream>> = (0..world_size).map(|_| None).collect();
    let mut refused = Refused::default();
    loop {
        // Bounded, so a flood of connections cannot keep us from the deadline.
        for _ in 0..MAX_HANDSHAKES {
            match listener.accept() {
                Ok((stream, peer)) => {
                    if in_flight.load(Ordering::SeqCst) >= MAX_HANDSHAKES {
                        refused.add(format!("{peer}: too many connections at once"));
                        continue; // dropping it closes it
                    }
                    let limit = at_least_1ms(
                        HANDSHAKE_TIMEOUT.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    let (tx, count) = (tx.clone(), in_flight.clone());
                    count.fetch_add(1, Ordering::SeqCst);
                    let spawned = std::thread::Builder::new()
                        .name("xlm-pg-handshake".into())
                        .spawn(move || {
                            let h = handshake(stream, peer, nonce, limit);
                            count.fetch_sub(1, Ordering::SeqCst);
                            let _ = tx.send(h);
                        });
                    if let Err(e) = spawned {
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        refused.add(format!("{peer}: cannot start its handshake: {e}"));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A client that gave up before we accepted it.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(failed(format!("accepting connections: {e}"))),
            }
        }
        while let Ok(h) = rx.try_recv() {
            match h {
                Handshake::Refused { peer, reason } => refused.add(format!("{peer}: {reason}")),
                Handshake::Hello {
                    rank,
                    world,
                    stream,
                    peer,
                } => {
                    let problem = if world != world_size {
                        Some(format!(
                            "it announced rank {rank} of world size {world}, but this group has {world_size} ranks"
                        ))
                    } else if rank == 0 || rank >= world_size {
                        Some(format!(
                            "it announced rank {rank}, but only ranks 1..{world_size} join rank 0"
                        ))
                    } else if peers[rank].is_some() {
                        Some(format!(
                            "it announced rank {rank}, and that rank already joined"
                        ))
                    } else {
                        None
                    };
                    if let Some(p) = problem {
                        refuse(&stream, nonce, &p);
                        return Err(failed(format!("a process at {peer}: {p}")));
                    }
                    match wire::write_frame(&mut &stream, Kind::Welcome, nonce, 0, OP, &[]) {
                        Ok(()) => {
                            let _ = stream.set_read_timeout(None);
                            peers[rank] = Some(stream);
                        }
                        Err(e) => refused.add(format!("{peer} (rank {rank}): welcome failed: {e}")),
                    }
                }
            }
        }
        let missing: Vec<usize> = (1..world_size).filter(|&r| peers[r].is_none()).collect();
        if missing.is_empty() {
            return Ok(peers);
        }
        if Instant::now() >= deadline {
            let op = match refused.count {
                0 => OP.to_string(),
                n => format!(
                    "{OP} (refused {n} connection(s): {})",
                    refused.first.join("; ")
                ),
            };
            return Err(DistError::Timeout {
                rank: 0,
                op,
                timeout,
                missing,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Why one greeting of rank 0 did not succeed.
enum Greet {
    /// Try again (rank 0 not up yet, or it shed the connection).
    Retry(String),
    /// Give up with this error.
    Fatal(DistError),
}

fn greet(
    stream: &TcpStream,
    env: &RankEnv,
    nonce: u64,
    addr: SocketAddr,
    deadline: Instant,
) -> Result<(), Greet> {
    let limit = at_least_1ms(deadline.saturating_duration_since(Instant::now()));
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(limit))
        .map_err(|e| Greet::Retry(format!("{addr}: {e}")))?;
    let hello = wire::hello_payload(env.rank, env.world_size);
    wire::write_frame(&mut &*stream, Kind::Hello, nonce, 0, OP, &hello)
        .map_err(|e| Greet::Retry(format!("{addr}: sending the hello: {e}")))?;
    let protocol = |reason: String| {
        Greet::Fatal(DistError::Protocol {
            rank: env.rank,
            op: OP.into(),
            peer: format!("rank 0 at {addr}"),
            reason,
        })
    };
    // Rank 0's whole answer by the rendezvous deadline, however it trickles in.
    let mut reader = DeadlineReader { stream, deadline };
    match wire::read_frame(&mut reader) {
        Ok(Frame {
            kind: Kind::Welcome,
            nonce: n,
            ..
        }) if n == nonce => Ok(()),
        Ok(Frame {
            kind: Kind::Reject,
            payload,
            ..
        }) => Err(Greet::Fatal(DistError::Rejected {
            rank: env.rank,
            addr: addr.to_string(),
            reason: String::from_utf8_lossy(&payload).into_owned(),
            nonce: env.job_nonce.clone(),
        })),
        Ok(f) => Err(protocol(format!(
            "it answered the hello with a {:?} frame{}",
            f.kind,
            if f.nonce != nonce {
                " of another job's nonce"
            } else {
                ""
            }
        ))),
        Err(e) if e.is_disconnect() || e.is_timeout() => {
            Err(Greet::Retry(format!("{addr}: no answer to the hello: {e}")))
        }
        Err(e @ WireError::Io(_)) => Err(Greet::Retry(format!("{addr}: {e}"))),
        Err(e) => Err(protocol(format!(
            "it is not an xlm rank 0 of this version: {e}"
        ))),
    }
}

/// A rank > 0: connects to rank 0 and is admitted; returns the connection.
pub(super) fn join(
    env: &RankEnv,
    nonce: u64,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, DistError> {
    let addrs = resolve(env)?;
    let mut last = String::from("not tried");
    loop {
        for &addr in &addrs {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(&addr, at_least_1ms(CONNECT_ATTEMPT.min(remaining))) {
                Err(e) => last = format!("{addr}: {e}"),
                Ok(stream) => match greet(&stream, env, nonce, addr, deadline) {
                    Ok(()) => return Ok(stream),
                    Err(Greet::Retry(why)) => last = why,
                    Err(Greet::Fatal(e)) => return Err(e),
                },
            }
        }
        if Instant::now() >= deadline {
            return Err(DistError::Timeout {
                rank: env.rank,
                op: format!("{OP} with rank 0 ({last})"),
                timeout,
                missing: vec![0],
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_stranger_dribbling_a_hello_is_dropped_at_the_handshake_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let nonce = 7;
        // A valid hello of this job, one byte every 300 ms: ~14 s in all,
        // and never 300 ms without a byte, so no single read times out.
        let hello = wire::encode(Kind::Hello, nonce, 0, OP, &wire::hello_payload(1, 2)).unwrap();
        let len = hello.len();
        let start = Instant::now();
        let dribbler = std::thread::spawn(move || {
            let s = TcpStream::connect(addr).unwrap();
            for (sent, b) in hello.iter().enumerate() {
                if (&s).write_all(&[*b]).is_err() {
                    return (sent, start.elapsed());
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            (hello.len(), start.elapsed())
        });
        let (stream, peer) = listener.accept().unwrap();
        let limit = Duration::from_millis(1500);
        let h = handshake(stream, peer, nonce, limit);
        let took = start.elapsed();
        match h {
            Handshake::Refused { reason, .. } => {
                assert!(reason.contains("sent no complete hello within"), "{reason}")
            }
            Handshake::Hello { .. } => panic!("the dribbled hello was admitted after {took:?}"),
        }
        assert!(
            took >= limit && took < limit + Duration::from_secs(2),
            "dropped after {took:?}, the deadline is {limit:?}"
        );
        // The connection is closed then: the stranger's next writes fail.
        let (sent, closed) = dribbler.join().unwrap();
        assert!(sent < len, "the stranger sent its whole hello");
        assert!(
            closed < limit + Duration::from_secs(4),
            "the stranger's connection was closed after {closed:?}"
        );
    }
}
