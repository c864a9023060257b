//! Frames on the rendezvous connections: `[kind u8][seq u64][len u32][payload]`.

use std::io::{self, Read, Write};

pub(super) const HELLO: u8 = 1;
pub(super) const DATA: u8 = 2;
pub(super) const ERROR: u8 = 3;

/// Largest payload accepted (protects against reading garbage as a length).
const MAX_PAYLOAD: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Frame {
    pub kind: u8,
    pub seq: u64,
    pub payload: Vec<u8>,
}

pub(super) fn write_frame(
    w: &mut impl Write,
    kind: u8,
    seq: u64,
    payload: &[u8],
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(13 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    w.flush()
}

pub(super) fn read_frame(r: &mut impl Read) -> io::Result<Frame> {
    let mut head = [0u8; 13];
    r.read_exact(&mut head)?;
    let len = u32::from_le_bytes(head[9..13].try_into().expect("4 bytes")) as usize;
    if len > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Frame {
        kind: head[0],
        seq: u64::from_le_bytes(head[1..9].try_into().expect("8 bytes")),
        payload,
    })
}

/// Packs a list of byte strings: `[count u32]([len u32][bytes])*`.
pub(super) fn pack_list(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = (items.len() as u32).to_le_bytes().to_vec();
    for it in items {
        out.extend_from_slice(&(it.len() as u32).to_le_bytes());
        out.extend_from_slice(it);
    }
    out
}

pub(super) fn unpack_list(mut b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let take = |b: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        if b.len() < n {
            return None;
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Some(h.to_vec())
    };
    let count = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
        out.push(take(&mut b, len)?);
    }
    b.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_lists_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, DATA, 7, b"abc").unwrap();
        assert_eq!(
            read_frame(&mut buf.as_slice()).unwrap(),
            Frame {
                kind: DATA,
                seq: 7,
                payload: b"abc".to_vec()
            }
        );
        let items = vec![b"".to_vec(), b"xy".to_vec()];
        assert_eq!(unpack_list(&pack_list(&items)).unwrap(), items);
        assert!(unpack_list(&[1, 0]).is_none());
    }
}
