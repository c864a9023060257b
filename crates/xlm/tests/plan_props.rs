//! Property tests of the plan: exhaustive grids over dataset size, shards,
//! world size, shuffle buffer, remainder rule, batch size and drop_last (pure
//! plan), then over workers and packing through real loaders.
//!
//! Run: `cargo nextest run --test plan_props`

mod common;

use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use xlm::manager::Stage;
use xlm::plan::{shard_ranges, OrderKind, PlanSpec, Remainder};
use xlm::source::{synthetic_table, MemoryRegistry};

fn rank_streams(spec: &PlanSpec, epoch: u64) -> Vec<Vec<u64>> {
    (0..spec.world_size)
        .map(|r| {
            let s = PlanSpec {
                rank: r,
                ..spec.clone()
            };
            let stream = s.stream(epoch).unwrap();
            let n = s.rank_len().unwrap();
            let v: Vec<u64> = (0..n)
                .map(|j| stream.get(j).expect("within rank_len"))
                .collect();
            assert_eq!(stream.get(n), None);
            v
        })
        .collect()
}

fn check_split(n: u64, w: u64, rem: Remainder, streams: &[Vec<u64>], what: &str) {
    let per = streams[0].len() as u64;
    assert!(
        streams.iter().all(|s| s.len() as u64 == per),
        "{what}: unequal rank lengths"
    );
    let mut count: BTreeMap<u64, u64> = BTreeMap::new();
    for s in streams {
        for &x in s {
            assert!(x < n, "{what}: sample {x} out of range");
            *count.entry(x).or_default() += 1;
        }
    }
    match rem {
        Remainder::Pad => {
            assert_eq!(per, n.div_ceil(w), "{what}");
            assert_eq!(count.len() as u64, n, "{what}: every sample seen");
            let dups: u64 = count.values().map(|c| c - 1).sum();
            assert_eq!(dups, per * w - n, "{what}: repeats only to pad");
        }
        Remainder::Drop => {
            assert_eq!(per, n / w, "{what}");
            assert!(count.values().all(|&c| c == 1), "{what}: no repeats");
            assert_eq!(count.len() as u64, per * w, "{what}: at most W-1 dropped");
        }
    }
}

#[test]
fn pure_plan_grid() {
    let mut cases = 0u64;
    for n in 0..=200u64 {
        for shards in 1..=9usize {
            let sizes: Vec<u64> = shard_ranges(n as usize, shards)
                .iter()
                .map(|r| r.len() as u64)
                .collect();
            for buffer in [None, Some(5)] {
                let mut kinds = vec![OrderKind::Stream {
                    shard_sizes: Arc::new(sizes.clone()),
                    shuffle_buffer: buffer,
                }];
                if shards == 1 {
                    kinds.push(if buffer.is_some() {
                        OrderKind::Permuted
                    } else {
                        OrderKind::Sequential
                    });
                }
                for kind in kinds {
                    for w in 1..=8u64 {
                        for rem in [Remainder::Pad, Remainder::Drop] {
                            let spec = PlanSpec {
                                num_samples: n,
                                order: kind.clone(),
                                seed: 42,
                                world_size: w,
                                rank: 0,
                                remainder: rem,
                                infinite: false,
                                start: 0,
                            };
                            let what = format!("n={n} shards={shards} {kind:?} w={w} {rem:?}");
                            let e0 = rank_streams(&spec, 0);
                            check_split(n, w, rem, &e0, &what);
                            assert_eq!(rank_streams(&spec, 0), e0, "{what}: deterministic");
                            let shuffled = !matches!(
                                kind,
                                OrderKind::Sequential
                                    | OrderKind::Stream {
                                        shuffle_buffer: None,
                                        ..
                                    }
                            );
                            if shuffled && n >= 10 {
                                assert_ne!(
                                    rank_streams(&spec, 1),
                                    e0,
                                    "{what}: set_epoch changes the order"
                                );
                            }
                            for batch in 1..=7u64 {
                                for drop_last in [false, true] {
                                    let counts: Vec<u64> = e0
                                        .iter()
                                        .map(|s| {
                                            s.chunks(batch as usize)
                                                .filter(|c| !drop_last || c.len() as u64 == batch)
                                                .count()
                                                as u64
                                        })
                                        .collect();
                                    assert!(counts.iter().all(|&c| Some(c) == spec.num_batches(batch, drop_last)), "{what} batch={batch}: {counts:?}");
                                    cases += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(cases > 300_000, "{cases}");
}

#[test]
fn infinite_streams_cover_each_pass_and_never_end() {
    for n in [1u64, 7, 60] {
        for w in 1..=4u64 {
            let spec = PlanSpec {
                num_samples: n,
                order: OrderKind::Permuted,
                seed: 1,
                world_size: w,
                rank: 0,
                remainder: Remainder::Pad,
                infinite: true,
                start: 0,
            };
            // Positions 0..n*w*3 of the interleaved global stream = 3*w passes.
            let mut global = vec![0u64; (n * w * 3) as usize];
            for r in 0..w {
                let s = PlanSpec {
                    rank: r,
                    ..spec.clone()
                }
                .stream(0)
                .unwrap();
                for j in 0..n * 3 {
                    global[(r + j * w) as usize] = s.get(j).unwrap();
                }
            }
            for pass in global.chunks(n as usize) {
                assert_eq!(sorted(pass), (0..n).collect::<Vec<_>>());
            }
        }
    }
}

/// A registry with `mem/grid/train` of `n` rows, ids 0..n, lengths 1..=9.
fn grid_registry(n: usize) -> Arc<MemoryRegistry> {
    let r = MemoryRegistry::new();
    r.insert(
        "mem/grid/train",
        synthetic_table((0..n).map(|i| (i as i64, 1 + (i * 7) % 9))),
    );
    Arc::new(r)
}

#[test]
fn loader_grid_with_workers_and_packing() {
    let mut cases = 0;
    for n in [0usize, 1, 13, 57] {
        let d = tempfile::tempdir().unwrap();
        let reg = grid_registry(n);
        manager(json!({"full_name": "mem/grid/train"}), Some(reg.clone()))
            .prepare_data(&prepare_args(d.path(), false))
            .unwrap();
        for packing in [false, true] {
            for shards in [1usize, 2, 5, 9] {
                for buffer in [None, Some(4)] {
                    for w in [1usize, 2, 3, 8] {
                        for batch in [1usize, 3, 7] {
                            let mut cfg = json!({"full_name": "mem/grid/train", "iterable_dataset_shards": shards,
                                                 "shuffle_buffer_size": buffer, "collate_fn": "dynamic_padding",
                                                 "dataloader_kwargs": {"batch_size": batch, "drop_last": false}});
                            if packing {
                                cfg["on_the_fly_group_processor"] = json!("pack_sequences");
                                cfg["on_the_fly_group_processor_kwargs"] =
                                    json!({"block_size": 8, "use_bos": true, "drop_last": false});
                            }
                            let mut reference: Option<Vec<Vec<Vec<u64>>>> = None;
                            for workers in 0..=4usize {
                                let mut c = cfg.clone();
                                c["dataloader_kwargs"]["num_workers"] = json!(workers);
                                let mut dm = manager(c, Some(reg.clone()));
                                dm.setup(Stage::Fit, &setup_args(d.path(), 8, w > 1, 0, w))
                                    .unwrap();
                                let s_total = dm.pipeline().unwrap().num_samples();
                                let per_rank: Vec<Vec<Vec<u64>>> = (0..w)
                                    .map(|r| {
                                        let loader = rank_loader(&mut dm, d.path(), "train", r, w);
                                        let b: Vec<_> = loader.iter().map(|b| b.unwrap()).collect();
                                        assert_eq!(Some(b.len() as u64), loader.num_batches());
                                        if packing {
                                            assert!(b.iter().all(|b| b
                                                .get("input_ids")
                                                .unwrap()
                                                .shape[1]
                                                == 8));
                                        }
                                        b.into_iter().map(|b| b.samples).collect()
                                    })
                                    .collect();
                                let what = format!("n={n} packing={packing} shards={shards} buffer={buffer:?} w={w} batch={batch} workers={workers}");
                                let counts: Vec<usize> = per_rank.iter().map(|r| r.len()).collect();
                                assert!(
                                    counts.windows(2).all(|c| c[0] == c[1]),
                                    "{what}: batch counts {counts:?}"
                                );
                                let flat: Vec<Vec<u64>> =
                                    per_rank.iter().map(|r| r.concat()).collect();
                                check_split(s_total, w as u64, Remainder::Pad, &flat, &what);
                                match &reference {
                                    None => reference = Some(per_rank),
                                    Some(r) => {
                                        assert_eq!(r, &per_rank, "{what}: workers change nothing")
                                    }
                                }
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(cases >= 3000, "{cases}");
}

#[test]
fn packed_blocks_hold_every_token_once() {
    // Without drop_last, the packed stream of each shard is exactly its rows'
    // [BOS] tokens [EOS] in order, then padding.
    let n = 23;
    let d = tempfile::tempdir().unwrap();
    let reg = grid_registry(n);
    let table = xlm::source::Source::load(
        reg.as_ref(),
        &xlm::source::FullName::parse("mem/grid/train").unwrap(),
    )
    .unwrap();
    let mut dm = manager(
        json!({"full_name": "mem/grid/train", "iterable_dataset_shards": 3, "collate_fn": "default",
               "on_the_fly_group_processor": "pack_sequences",
               "on_the_fly_group_processor_kwargs": {"block_size": 8, "use_bos": true, "drop_last": false},
               "dataloader_kwargs": {"batch_size": 1}}),
        Some(reg),
    );
    ready(&mut dm, d.path());
    let blocks: Vec<Vec<i64>> = dm
        .get_dataloader("train", false, 0, 1)
        .unwrap()
        .iter()
        .map(|b| b.unwrap().get("input_ids").unwrap().data.clone())
        .collect();
    let mut expected = Vec::new();
    for r in shard_ranges(n, 3) {
        let mut stream: Vec<i64> = Vec::new();
        for i in r {
            stream.push(4);
            stream.extend(table.row(i).unwrap().list("token_ids").unwrap());
            stream.push(3);
        }
        stream.resize(stream.len().div_ceil(8) * 8, 0);
        expected.extend(stream);
    }
    assert_eq!(blocks.concat(), expected);
}
