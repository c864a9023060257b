//! The payload of rank 0's answers: a list of byte strings,
//! `[count u32]([len u32][bytes])*`.

/// Packs a list of byte strings.
pub(crate) fn pack_list(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + items.iter().map(|i| 4 + i.len()).sum::<usize>());
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for it in items {
        out.extend_from_slice(&(it.len() as u32).to_le_bytes());
        out.extend_from_slice(it);
    }
    out
}

/// Unpacks a list; `None` when the bytes are not exactly one packed list.
pub(crate) fn unpack_list(mut b: &[u8]) -> Option<Vec<Vec<u8>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Some(h)
    }
    fn take_u32(b: &mut &[u8]) -> Option<usize> {
        let h = take(b, 4)?;
        Some(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize)
    }
    let count = take_u32(&mut b)?;
    // Each item needs at least its 4-byte length: a count the bytes cannot
    // hold is refused before anything is allocated for it.
    if count > b.len() / 4 {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = take_u32(&mut b)?;
        out.push(take(&mut b, len)?.to_vec());
    }
    b.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_and_refuse_leftovers() {
        let items = vec![b"".to_vec(), b"xy".to_vec()];
        assert_eq!(unpack_list(&pack_list(&items)).unwrap(), items);
        assert!(unpack_list(&[1, 0]).is_none());
        let mut extra = pack_list(&items);
        extra.push(0);
        assert!(unpack_list(&extra).is_none());
        // A huge count over a few bytes is refused, not preallocated.
        assert!(unpack_list(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).is_none());
    }
}
