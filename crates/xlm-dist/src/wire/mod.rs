//! Frames on the rendezvous connections.
//!
//! ```text
//! offset size  field
//!      0    4  magic  b"XLMW"
//!      4    1  version (1)
//!      5    1  kind    (1 hello, 2 welcome, 3 reject, 4 data, 5 error)
//!      6    1  op_len  length of the operation tag (0..=255)
//!      7    1  reserved, 0
//!      8    8  nonce   fingerprint of the job nonce (u64 LE)
//!     16    8  seq     operation number (u64 LE; 0 during the rendezvous)
//!     24    4  len     payload length (u32 LE, at most MAX_PAYLOAD)
//!     28    n  op      operation tag, UTF-8 (`barrier`, `broadcast`, ...)
//!   28+n  len  payload
//! ```
//!
//! The decoder checks the magic as soon as its 4 bytes arrive (a stranger
//! speaking another protocol is refused without waiting for a whole header)
//! and every length before reading what it announces; the payload is read
//! incrementally, so a peer announcing 64 MiB and sending nothing costs
//! nothing.

mod list;

#[cfg(test)]
mod fuzz;

pub(crate) use list::{pack_list, unpack_list};

use std::io::{self, Read, Write};
use thiserror::Error;

/// The first bytes of every frame.
pub(crate) const MAGIC: [u8; 4] = *b"XLMW";
/// The frame format version this build speaks.
pub(crate) const VERSION: u8 = 1;
/// Fixed part of a frame, before the operation tag.
pub(crate) const HEADER_LEN: usize = 28;
/// Largest payload accepted or sent (protects against reading garbage as a length).
pub(crate) const MAX_PAYLOAD: usize = 64 << 20;
/// Longest operation tag (its length is one byte).
pub(crate) const MAX_OP: usize = u8::MAX as usize;

/// What a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A rank announces itself to rank 0: payload `[rank u32][world u32]`.
    Hello = 1,
    /// Rank 0 accepted the hello.
    Welcome = 2,
    /// Rank 0 refused the hello: payload is the reason (UTF-8).
    Reject = 3,
    /// A collective's data (to rank 0) or its packed answer (from rank 0).
    Data = 4,
    /// Rank 0 failed the collective: payload is the error (UTF-8).
    Error = 5,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Welcome,
            3 => Kind::Reject,
            4 => Kind::Data,
            5 => Kind::Error,
            _ => return None,
        })
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub kind: Kind,
    pub nonce: u64,
    pub seq: u64,
    pub op: String,
    pub payload: Vec<u8>,
}

/// Why a frame could not be read or written.
#[derive(Debug, Error)]
pub(crate) enum WireError {
    /// The connection failed, closed, or timed out.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The bytes are not an xlm frame.
    #[error("not an xlm frame (it starts with {0:02x?})")]
    Magic([u8; 4]),
    /// An xlm frame of another format version.
    #[error("frame format version {0}, but this xlm speaks version {VERSION}")]
    Version(u8),
    /// An unknown frame kind.
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// The reserved header byte is not zero.
    #[error("reserved header byte is {0}, not 0")]
    Reserved(u8),
    /// A payload over [`MAX_PAYLOAD`].
    #[error("a frame payload of {len} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    TooLarge { len: usize },
    /// An operation tag over [`MAX_OP`] bytes (only when writing).
    #[error("operation tag of {0} bytes exceeds {MAX_OP} bytes")]
    OpTooLong(usize),
    /// The operation tag is not UTF-8.
    #[error("operation tag is not UTF-8")]
    OpNotUtf8,
}

impl WireError {
    /// The peer closed or reset the connection (it exited or crashed).
    pub(crate) fn is_disconnect(&self) -> bool {
        matches!(self, WireError::Io(e) if matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ))
    }

    /// A read or write timeout expired.
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, WireError::Io(e) if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ))
    }
}

/// Encodes a frame; fails on an oversized tag or payload instead of sending
/// what the other side would refuse.
pub(crate) fn encode(
    kind: Kind,
    nonce: u64,
    seq: u64,
    op: &str,
    payload: &[u8],
) -> Result<Vec<u8>, WireError> {
    let op_len = u8::try_from(op.len()).map_err(|_| WireError::OpTooLong(op.len()))?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= MAX_PAYLOAD)
        .ok_or(WireError::TooLarge { len: payload.len() })?;
    let mut buf = Vec::with_capacity(HEADER_LEN + op.len() + payload.len());
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&[VERSION, kind as u8, op_len, 0]);
    buf.extend_from_slice(&nonce.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(op.as_bytes());
    buf.extend_from_slice(payload);
    Ok(buf)
}

/// Writes one frame (in one `write_all`, so frames never interleave).
pub(crate) fn write_frame(
    w: &mut impl Write,
    kind: Kind,
    nonce: u64,
    seq: u64,
    op: &str,
    payload: &[u8],
) -> Result<(), WireError> {
    w.write_all(&encode(kind, nonce, seq, op, payload)?)?;
    w.flush()?;
    Ok(())
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Reads exactly `len` bytes without allocating them up front.
fn read_counted(r: &mut impl Read, len: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(len.min(64 << 10));
    r.take(len as u64).read_to_end(&mut out)?;
    if out.len() < len {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok(out)
}

/// Reads one frame, validating the header before reading what it announces.
pub(crate) fn read_frame(r: &mut impl Read) -> Result<Frame, WireError> {
    let mut head = [0u8; HEADER_LEN];
    r.read_exact(&mut head[..4])?;
    if head[..4] != MAGIC {
        return Err(WireError::Magic([head[0], head[1], head[2], head[3]]));
    }
    r.read_exact(&mut head[4..])?;
    if head[4] != VERSION {
        return Err(WireError::Version(head[4]));
    }
    let kind = Kind::from_byte(head[5]).ok_or(WireError::Kind(head[5]))?;
    let op_len = head[6] as usize;
    if head[7] != 0 {
        return Err(WireError::Reserved(head[7]));
    }
    let nonce = le_u64(&head[8..16]);
    let seq = le_u64(&head[16..24]);
    let len = u32::from_le_bytes([head[24], head[25], head[26], head[27]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(WireError::TooLarge { len });
    }
    let op = String::from_utf8(read_counted(r, op_len)?).map_err(|_| WireError::OpNotUtf8)?;
    let payload = read_counted(r, len)?;
    Ok(Frame {
        kind,
        nonce,
        seq,
        op,
        payload,
    })
}

/// The hello payload: `[rank u32][world u32]`.
pub(crate) fn hello_payload(rank: usize, world: usize) -> Vec<u8> {
    let mut p = (rank as u32).to_le_bytes().to_vec();
    p.extend_from_slice(&(world as u32).to_le_bytes());
    p
}

/// Reads a hello payload back: `(rank, world)`.
pub(crate) fn parse_hello(p: &[u8]) -> Option<(usize, usize)> {
    match p {
        [a, b, c, d, e, f, g, h] => Some((
            u32::from_le_bytes([*a, *b, *c, *d]) as usize,
            u32::from_le_bytes([*e, *f, *g, *h]) as usize,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, Kind::Data, 9, 7, "barrier", b"abc").unwrap();
        assert_eq!(buf.len(), HEADER_LEN + 7 + 3);
        assert_eq!(
            read_frame(&mut buf.as_slice()).unwrap(),
            Frame {
                kind: Kind::Data,
                nonce: 9,
                seq: 7,
                op: "barrier".into(),
                payload: b"abc".to_vec()
            }
        );
        assert_eq!(parse_hello(&hello_payload(3, 4)), Some((3, 4)));
        assert_eq!(parse_hello(&[1, 2, 3]), None);
    }

    #[test]
    fn bad_headers_are_refused_before_reading_on() {
        // A stranger's greeting fails on its first 4 bytes (nothing more is read).
        let e = read_frame(&mut &b"GET / HTTP/1.0\r\n"[..]).unwrap_err();
        assert!(matches!(e, WireError::Magic(_)), "{e}");
        let mut f = encode(Kind::Data, 1, 1, "op", b"").unwrap();
        f[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = read_frame(&mut f.as_slice()).unwrap_err();
        assert!(matches!(e, WireError::TooLarge { .. }), "{e}");
        let mut f = encode(Kind::Data, 1, 1, "op", b"").unwrap();
        f[4] = 2;
        assert!(matches!(
            read_frame(&mut f.as_slice()),
            Err(WireError::Version(2))
        ));
        assert!(matches!(
            encode(Kind::Data, 0, 0, &"x".repeat(256), b""),
            Err(WireError::OpTooLong(256))
        ));
        let e = read_frame(&mut &encode(Kind::Data, 1, 1, "op", b"abc").unwrap()[..30]);
        assert!(e.unwrap_err().is_disconnect());
    }
}
