//! Golden vectors: the exact outputs of every order algorithm for a few
//! fixed inputs, written out in this file.
//!
//! A saved loader state is a position in these orders, so an order that
//! changes silently would resume a run onto different samples. If one of
//! these tests fails because you changed an algorithm on purpose: bump
//! `ORDER_ALGORITHM_VERSION` (and `STATE_VERSION`, so old states are
//! refused), then update the vectors here — never the other way round.

use std::sync::Arc;
use xlm::loader::STATE_VERSION;
use xlm::plan::{
    epoch_order, shard_ranges, OrderKind, PackIndex, PackSpec, Piece, PlanSpec, Remainder, Rng,
    ORDER_ALGORITHM_VERSION, PACK_ALGORITHM, SPLIT_ALGORITHM,
};

#[test]
fn versions_match_these_vectors() {
    assert_eq!(ORDER_ALGORITHM_VERSION, 2);
    assert_eq!(STATE_VERSION, 2);
    assert_eq!(SPLIT_ALGORITHM, "interleave(start + rank + k*world)-v1");
    assert_eq!(PACK_ALGORITHM, "shard-rows-in-order-cut-into-blocks-v1");
}

#[test]
fn seeded_rng() {
    let mut r = Rng::new(&[42]);
    let words: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
    assert_eq!(
        words,
        [
            3054702607039697793,
            12084286388744492047,
            11591838577675584383,
            1653886029391426839
        ]
    );
    let mut r = Rng::new(&[42, 7]);
    let below: Vec<u64> = (0..8).map(|_| r.below(10)).collect();
    assert_eq!(below, [4, 3, 4, 7, 9, 8, 7, 9]);
    let mut xs: Vec<u32> = (0..12).collect();
    Rng::new(&[3]).shuffle(&mut xs);
    assert_eq!(xs, [7, 3, 9, 4, 10, 0, 2, 11, 5, 6, 8, 1]);
}

#[test]
fn feistel_permutation() {
    let order = |n, seed, epoch| epoch_order(&OrderKind::Permuted, n, seed, epoch).to_vec();
    assert_eq!(
        order(20, 7, 0),
        [0, 18, 2, 14, 12, 13, 17, 6, 16, 9, 4, 1, 11, 15, 3, 7, 10, 8, 19, 5]
    );
    assert_eq!(
        order(20, 7, 1),
        [5, 3, 17, 19, 6, 15, 13, 14, 7, 9, 8, 0, 10, 1, 2, 12, 4, 11, 16, 18]
    );
    assert_eq!(
        order(1000, 1, 0)[..20],
        [
            780, 878, 240, 990, 313, 828, 491, 415, 98, 12, 917, 33, 890, 331, 502, 645, 130, 967,
            811, 746
        ]
    );
}

#[test]
fn shard_stream_with_shuffle_buffer() {
    let kind = OrderKind::Stream {
        shard_sizes: Arc::new(vec![5, 5, 4, 4]),
        shuffle_buffer: Some(4),
    };
    assert_eq!(
        epoch_order(&kind, 18, 7, 0).to_vec(),
        [5, 7, 9, 1, 2, 6, 8, 10, 3, 12, 13, 0, 11, 16, 4, 17, 15, 14]
    );
    assert_eq!(
        epoch_order(&kind, 18, 7, 1).to_vec(),
        [0, 4, 1, 3, 12, 11, 5, 13, 10, 7, 9, 14, 2, 6, 8, 16, 17, 15]
    );
    let unshuffled = OrderKind::Stream {
        shard_sizes: Arc::new(vec![5, 5, 4, 4]),
        shuffle_buffer: None,
    };
    assert_eq!(
        epoch_order(&unshuffled, 18, 7, 0).to_vec(),
        (0..18).collect::<Vec<u64>>()
    );
}

#[test]
fn contiguous_shards() {
    assert_eq!(shard_ranges(10, 3), [0..4, 4..7, 7..10]);
    assert_eq!(shard_ranges(3, 4), [0..1, 1..2, 2..3, 3..3]);
}

#[test]
fn split_by_rank() {
    let rank = |remainder, rank| {
        let plan = PlanSpec {
            num_samples: 10,
            order: OrderKind::Permuted,
            seed: 5,
            world_size: 3,
            rank,
            remainder,
            infinite: false,
            start: 0,
        };
        let s = plan.stream(2).unwrap();
        (0..s.len().unwrap())
            .map(|j| s.get(j).unwrap())
            .collect::<Vec<u64>>()
    };
    assert_eq!(rank(Remainder::Pad, 0), [6, 3, 2, 8]);
    assert_eq!(rank(Remainder::Pad, 1), [7, 4, 1, 6]);
    assert_eq!(rank(Remainder::Pad, 2), [0, 9, 5, 7]);
    assert_eq!(rank(Remainder::Drop, 0), [6, 3, 2]);
    assert_eq!(rank(Remainder::Drop, 1), [7, 4, 1]);
    assert_eq!(rank(Remainder::Drop, 2), [0, 9, 5]);
}

#[test]
fn packing_layout() {
    let spec = PackSpec {
        function: "pack_sequences".into(),
        column: None,
        block_size: 4,
        bos: Some(1),
        eos: Some(2),
        drop_last: false,
        pad_id: 0,
        source_ids: false,
    };
    // Two shards: rows of 3, 1 and 5 tokens, then rows of 2 and 2.
    let index = PackIndex::build(spec, vec![(0, vec![3, 1, 5]), (3, vec![2, 2])]);
    use Piece::*;
    let want = vec![
        vec![Bos(0), Tokens(0, 0..3)],
        vec![Eos(0), Bos(1), Tokens(1, 0..1), Eos(1)],
        vec![Bos(2), Tokens(2, 0..3)],
        vec![Tokens(2, 3..5), Eos(2), Pad(1)],
        vec![Bos(3), Tokens(3, 0..2), Eos(3)],
        vec![Bos(4), Tokens(4, 0..2), Eos(4)],
    ];
    assert_eq!(index.num_blocks(), want.len() as u64);
    for (b, pieces) in want.into_iter().enumerate() {
        assert_eq!(index.pieces(b as u64).unwrap(), pieces, "block {b}");
    }
}
