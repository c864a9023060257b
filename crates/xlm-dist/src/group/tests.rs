use super::rendezvous::{bind_candidates, HANDSHAKE_TIMEOUT};
use super::*;
use crate::wire::{encode, read_frame, write_frame};
use crate::EnvSource;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::channel;

fn env(rank: usize, world: usize, port: u16) -> RankEnv {
    RankEnv {
        rank,
        world_size: world,
        local_rank: rank,
        local_world_size: world,
        master_addr: "127.0.0.1".into(),
        master_port: port,
        source: EnvSource::Torchrun,
        job_nonce: format!("xlm:test-{port}"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects to rank 0 once it listens.
fn connect_when_up(port: u16) -> TcpStream {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() > until => panic!("rank 0 never listened: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
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
                let named = g.all_gather_named("after prepare", &[], t).unwrap();
                (all, b, named.len())
            })
        })
        .collect();
    for h in handles {
        let (all, b, named) = h.join().unwrap();
        assert_eq!(all, (0..4u8).map(|r| vec![r; 3]).collect::<Vec<_>>());
        assert_eq!(b, b"from 0");
        assert_eq!(named, 4);
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
fn a_late_rank_times_out_the_barrier_with_its_name_and_breaks_the_group() {
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
    // Rank 1's late frame is still queued: the group must not read it as
    // the next operation's data.
    let again = g.barrier(Duration::from_secs(5)).unwrap_err();
    assert!(
        matches!(&again, DistError::Broken { op, cause, .. }
            if op == "barrier" && matches!(**cause, DistError::Timeout { .. })),
        "{again}"
    );
    assert!(matches!(g.broken(), Some(DistError::Timeout { .. })));
}

#[test]
fn strangers_are_refused_at_once_while_the_ranks_form_the_group() {
    let port = free_port();
    let t = Duration::from_secs(20);
    let ranks: Vec<_> = [0usize, 1, 2]
        .into_iter()
        .map(|r| {
            std::thread::spawn(move || {
                if r > 0 {
                    // Let the strangers reach rank 0 first.
                    std::thread::sleep(Duration::from_millis(300));
                }
                let mut g = ProcessGroup::connect(&env(r, 3, port), t)?;
                g.all_gather(&[r as u8], t)
            })
        })
        .collect();
    // A hello for rank 1 with another job's nonce: refused, with a reason.
    let start = Instant::now();
    let wrong = connect_when_up(port);
    wrong.set_read_timeout(Some(HANDSHAKE_TIMEOUT * 2)).unwrap();
    write_frame(
        &mut &wrong,
        Kind::Hello,
        fingerprint("xlm:another-job"),
        0,
        "rendezvous",
        &wire::hello_payload(1, 3),
    )
    .unwrap();
    let answer = read_frame(&mut &wrong).unwrap();
    assert_eq!(answer.kind, Kind::Reject);
    assert!(
        String::from_utf8_lossy(&answer.payload).contains("job nonce differs"),
        "{answer:?}"
    );
    // Bytes of another protocol (no nonce at all): closed on the first 4 bytes.
    let garbage = connect_when_up(port);
    garbage
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT * 2))
        .unwrap();
    (&garbage).write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut buf = [0u8; 16];
    let n = (&garbage).read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a stranger must get nothing back");
    // Both well before the handshake timeout: refused on what they sent.
    assert!(
        start.elapsed() < HANDSHAKE_TIMEOUT / 2,
        "refusing took {:?}",
        start.elapsed()
    );
    for h in ranks {
        assert_eq!(h.join().unwrap().unwrap(), vec![vec![0], vec![1], vec![2]]);
    }
}

#[test]
fn a_rank_of_another_job_is_refused_naming_its_nonce() {
    let port = free_port();
    let root = std::thread::spawn(move || {
        ProcessGroup::connect(&env(0, 2, port), Duration::from_secs(3)).unwrap_err()
    });
    let mut other = env(1, 2, port);
    other.job_nonce = "xlm:other-run".into();
    let start = Instant::now();
    let e = ProcessGroup::connect(&other, Duration::from_secs(20)).unwrap_err();
    assert!(
        matches!(&e, DistError::Rejected { rank: 1, .. })
            && e.to_string().contains("xlm:other-run"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let root_err = root.join().unwrap().to_string();
    assert!(
        root_err.contains("missing rank(s): [1]") && root_err.contains("job nonce differs"),
        "{root_err}"
    );
}

#[test]
fn a_read_timing_out_mid_frame_breaks_the_group() {
    // A hand-driven rank 0 that stops in the middle of an answer.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let e = env(1, 2, port);
    let nonce = fingerprint(&e.job_nonce);
    let (timed_out_tx, timed_out) = channel();
    let (go, go_rx) = channel::<()>();
    let peer = std::thread::spawn(move || {
        let mut g = ProcessGroup::connect(&e, Duration::from_secs(10)).unwrap();
        let first = g.barrier(Duration::from_millis(100)).unwrap_err();
        timed_out_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        let start = Instant::now();
        let second = g.barrier(Duration::from_secs(5));
        (first, second, start.elapsed())
    });
    let (s, _) = listener.accept().unwrap();
    assert_eq!(read_frame(&mut &s).unwrap().kind, Kind::Hello);
    write_frame(&mut &s, Kind::Welcome, nonce, 0, "rendezvous", &[]).unwrap();
    let data = read_frame(&mut &s).unwrap();
    assert_eq!((data.op.as_str(), data.seq), ("barrier", 1));
    let answer = |seq| {
        encode(
            Kind::Data,
            nonce,
            seq,
            "barrier",
            &pack_list(&[vec![], vec![]]),
        )
    };
    let first = answer(1).unwrap();
    (&s).write_all(&first[..10]).unwrap();
    timed_out
        .recv_timeout(Duration::from_secs(20))
        .expect("rank 1 times out");
    // The rest of that frame, then a valid answer to the next barrier: a
    // reader out of step would take these for the next answer.
    (&s).write_all(&first[10..]).unwrap();
    (&s).write_all(&answer(2).unwrap()).unwrap();
    go.send(()).unwrap();
    let (first, second, took) = peer.join().unwrap();
    assert!(
        matches!(&first, DistError::Timeout { missing, .. } if missing == &vec![0]),
        "{first}"
    );
    let second = second.unwrap_err();
    assert!(
        matches!(&second, DistError::Broken { cause, .. } if matches!(**cause, DistError::Timeout { .. })),
        "{second}"
    );
    assert!(
        took < Duration::from_secs(1),
        "failed at once, not after {took:?}"
    );
}

#[test]
fn a_rank_0_dribbling_its_welcome_is_given_up_at_the_rendezvous_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let e = env(1, 2, port);
    let nonce = fingerprint(&e.job_nonce);
    let t = Duration::from_millis(1500);
    let start = Instant::now();
    let joiner = std::thread::spawn(move || {
        let r = ProcessGroup::connect(&e, t);
        (r, start.elapsed())
    });
    let (s, _) = listener.accept().unwrap();
    assert_eq!(read_frame(&mut &s).unwrap().kind, Kind::Hello);
    // A valid welcome, one byte every 300 ms (~11 s in all): no single
    // read times out, only the rendezvous deadline can end it.
    let welcome = encode(Kind::Welcome, nonce, 0, "rendezvous", &[]).unwrap();
    for b in &welcome {
        if joiner.is_finished() || (&s).write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let (r, took) = joiner.join().unwrap();
    let err = r.unwrap_err();
    assert!(
        matches!(&err, DistError::Timeout { rank: 1, missing, .. } if missing == &vec![0]),
        "{err}"
    );
    assert!(
        took >= t && took < t + Duration::from_secs(2),
        "gave up after {took:?}, the timeout is {t:?}"
    );
}

#[test]
fn rank_0_listens_where_other_machines_can_reach_it() {
    let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(bind_candidates("127.0.0.1", 5), vec![v4("127.0.0.1:5")]);
    assert_eq!(bind_candidates("127.0.1.1", 5), vec![v4("127.0.1.1:5")]);
    assert_eq!(
        bind_candidates("10.1.2.3", 5),
        vec![v4("10.1.2.3:5"), v4("0.0.0.0:5")]
    );
    assert_eq!(bind_candidates("localhost", 5)[0], v4("127.0.0.1:5"));
    // A host name: every interface, never what the name means locally
    // (Debian maps the machine's own name to 127.0.1.1).
    let host = bind_candidates("some-node.invalid", 5);
    assert!(host.iter().all(|a| a.ip().is_unspecified()), "{host:?}");
}
