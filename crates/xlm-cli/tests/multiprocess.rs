//! Tier 3, CPU multi-process: N real processes through `xlm launch`, each
//! running one rank of `xlm probe` and writing `rank_<RANK>.json`; every
//! assertion is made here, in the parent, on the typed per-rank results.
//!
//! Run: `cargo nextest run --test multiprocess`

mod harness;

use harness::*;
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;
use xlm_cli::probe::RankResult;

const T: Duration = Duration::from_secs(60);

/// `xlm ARGS...` as a command.
fn xlm(args: &[&str]) -> Command {
    let mut c = Command::new(xlm_bin());
    c.args(args);
    c
}

fn cfg(dsm: Json, run: Json) -> Json {
    let mut dsm_full = json!({"collate_fn": "id_tracking"});
    for (k, v) in dsm.as_object().unwrap() {
        dsm_full[k] = v.clone();
    }
    json!({"dsm_kwargs": dsm_full, "setup_kwargs": {"block_size": 8}, "run": run})
}

fn epoch_ids(results: &[RankResult], epoch: usize) -> Vec<Vec<i64>> {
    results
        .iter()
        .map(|r| r.epochs[epoch].ids.clone())
        .collect()
}

fn assert_disjoint_cover(per_rank: &[Vec<i64>], expected: impl IntoIterator<Item = i64>) {
    let mut all: Vec<i64> = per_rank.concat();
    all.sort();
    assert_eq!(
        all,
        expected.into_iter().collect::<Vec<_>>(),
        "ranks must be disjoint and cover every id"
    );
}

fn equal_counts(results: &[RankResult]) -> Vec<u64> {
    let counts: Vec<u64> = results.iter().map(|r| r.epochs[0].num_batches).collect();
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "unequal batch counts {counts:?}"
    );
    counts
}

#[test]
fn iterable_four_shards_split_over_two_and_four_ranks() {
    for world in [2, 4] {
        let d = tempfile::tempdir().unwrap();
        let c = cfg(
            json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4,
                           "dataloader_kwargs": {"batch_size": 4, "num_workers": 1}}),
            json!({}),
        );
        let r = run_distributed(world, d.path(), &c, T);
        assert!(r.iter().all(|r| r.is_iterable_dataset == Some(true)));
        assert_disjoint_cover(&epoch_ids(&r, 0), 1000..1060);
        equal_counts(&r);
    }
}

#[test]
fn shuffle_buffer_epochs_cover_everything_and_change_order() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(
        json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "shuffle_buffer_size": 16,
                       "dataloader_kwargs": {"batch_size": 4}}),
        json!({"num_epochs": 2, "set_epoch_each_epoch": true, "seed": 7}),
    );
    let r = run_distributed(2, d.path(), &c, T);
    for e in 0..2 {
        assert_disjoint_cover(&epoch_ids(&r, e), 1000..1060);
    }
    assert!(
        r.iter().any(|r| r.epochs[0].ids != r.epochs[1].ids),
        "set_epoch must change some rank's order"
    );
}

#[test]
fn make_infinite_gives_every_rank_the_batches_it_asks_for() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(
        json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "make_infinite": true,
                       "dataloader_kwargs": {"batch_size": 4}}),
        json!({"max_batches_per_epoch": 12}),
    );
    let r = run_distributed(2, d.path(), &c, T);
    for rank in &r {
        assert_eq!(rank.epochs[0].ids.len(), 48);
        assert_eq!(rank.planned_batches_per_epoch, None);
    }
}

#[test]
fn map_style_distributed_sampler() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(
        json!({"full_name": "mem/raw/train", "dataloader_kwargs": {"batch_size": 3}}),
        json!({"num_epochs": 2}),
    );
    let r = run_distributed(2, d.path(), &c, T);
    assert_eq!(equal_counts(&r), [3, 3]);
    for e in 0..2 {
        let ids = epoch_ids(&r, e);
        let uniq: BTreeSet<i64> = ids.concat().into_iter().collect();
        assert_eq!(
            uniq,
            (0..17).collect(),
            "epoch {e}: every id (one padded repeat)"
        );
    }
    assert!(r.iter().all(|r| r.is_iterable_dataset == Some(false)));
    assert_ne!(epoch_ids(&r, 0), epoch_ids(&r, 1), "set_epoch reshuffles");
}

#[test]
fn packed_varlen_gives_both_ranks_the_same_number_of_batches() {
    // xlm-core's open bug: this configuration gives rank 0 seven batches and rank 1 nine.
    let d = tempfile::tempdir().unwrap();
    let c = cfg(
        json!({"full_name": "mem/raw_varlen/train", "iterable_dataset_shards": 4, "collate_fn": "default",
                       "on_the_fly_group_processor": "pack_sequences",
                       "on_the_fly_group_processor_kwargs": {"block_size": 8, "drop_last": true, "use_bos": true},
                       "shuffle_buffer_size": 4, "shuffle_seed": 17,
                       "dataloader_kwargs": {"batch_size": 1, "num_workers": 2}}),
        json!({}),
    );
    let r = run_distributed(2, d.path(), &c, T);
    assert_eq!(equal_counts(&r), [8, 8]);
    for rank in &r {
        assert!(
            rank.epochs[0].batch_shapes.iter().all(|s| *s == [1, 8]),
            "{:?}",
            rank.epochs[0].batch_shapes
        );
        assert_eq!(rank.num_samples, Some(16));
    }
    let mut blocks: Vec<u64> = r.iter().flat_map(|r| r.epochs[0].samples.clone()).collect();
    blocks.sort();
    assert_eq!(
        blocks,
        (0..16).collect::<Vec<_>>(),
        "no block lost or duplicated"
    );
}

#[test]
fn eight_shards_two_ranks_batch_two() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(
        json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 8,
                       "dataloader_kwargs": {"batch_size": 2, "num_workers": 1}}),
        json!({}),
    );
    let r = run_distributed(2, d.path(), &c, T);
    assert_eq!(equal_counts(&r), [15, 15]);
    assert_disjoint_cover(&epoch_ids(&r, 0), 1000..1060);
}

#[test]
fn batch_shapes_follow_the_data() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(
        json!({"full_name": "mem/raw/train", "dataloader_kwargs": {"batch_size": 4}}),
        json!({}),
    );
    let r = run_distributed(2, d.path(), &c, T);
    for rank in &r {
        assert!(!rank.epochs[0].batch_shapes.is_empty());
        for s in &rank.epochs[0].batch_shapes {
            assert_eq!(s[1], 6);
            assert!((1..=4).contains(&s[0]), "{s:?}");
        }
    }
}

#[test]
fn user_config_over_local_jsonl_on_three_ranks() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("train.jsonl");
    std::fs::write(
        &data,
        (0..23)
            .map(|i| format!("{{\"id\": {i}, \"text\": \"w{} w1 w2\"}}\n", i % 50))
            .collect::<String>(),
    )
    .unwrap();
    let c = json!({
        "dsm_kwargs": {"full_name": "local/toy/train", "ds_type": "jsonl", "data_files": data,
                       "preprocess_function": "tokenize", "columns_to_remove": ["text"],
                       "collate_fn": "id_tracking", "dataloader_kwargs": {"batch_size": 2}},
        "run": {"num_epochs": 1}
    });
    let r = run_distributed(3, &d.path().join("out"), &c, T);
    equal_counts(&r);
    let uniq: BTreeSet<i64> = epoch_ids(&r, 0).concat().into_iter().collect();
    assert_eq!(uniq, (0..23).collect());
}

#[test]
fn grid_sweep_over_processes() {
    let d = tempfile::tempdir().unwrap();
    let n = 23;
    let data = d.path().join("grid.jsonl");
    std::fs::write(
        &data,
        (0..n)
            .map(|i| format!("{{\"id\": {i}, \"token_ids\": [7, 8, {}]}}\n", 7 + i % 50))
            .collect::<String>(),
    )
    .unwrap();
    for world in 1..=4usize {
        for shards in 1..=5usize {
            for workers in 1..=2usize {
                let c = json!({
                    "dsm_kwargs": {"full_name": "local/grid/train", "ds_type": "jsonl", "data_files": data,
                                   "iterable_dataset_shards": shards, "collate_fn": "id_tracking",
                                   "dataloader_kwargs": {"batch_size": 2, "num_workers": workers}},
                    "setup_kwargs": {"manual_cache_dir": d.path().join("cache")}
                });
                let out = d.path().join(format!("w{world}-s{shards}-k{workers}"));
                let r = run_distributed(world, &out, &c, T);
                equal_counts(&r);
                let all: Vec<i64> = epoch_ids(&r, 0).concat();
                let uniq: BTreeSet<i64> = all.iter().copied().collect();
                assert_eq!(
                    uniq,
                    (0..n).collect(),
                    "world {world} shards {shards} workers {workers}"
                );
                assert_eq!(
                    all.len(),
                    (n as usize).div_ceil(world) * world,
                    "pad only to equalise"
                );
            }
        }
    }
}

// ---------------------------------------------------------------- failures

#[test]
fn an_invalid_config_surfaces_in_the_harness_message() {
    let d = tempfile::tempdir().unwrap();
    let c = json!({"dsm_kwargs": {"full_name": "mem/raw/train", "shufle_seed": 3}});
    let f = try_run_distributed(2, d.path(), &c, T).unwrap_err();
    assert!(
        f.message.contains("rank 0 reported ok=false") && f.message.contains("shufle_seed"),
        "{f}"
    );
    assert!(f.results.iter().all(|r| !r.ok));
    let f = try_run_distributed(2, &d.path().join("b"), &json!("not an object"), T).unwrap_err();
    assert!(f.message.contains("--config-json"), "{f}");
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs fault injection: cargo test --workspace --features xlm-cli/fault-injection"
)]
fn a_panicking_rank_is_named() {
    let d = tempfile::tempdir().unwrap();
    let c = json!({"dsm_kwargs": {"full_name": "mem/raw/train"}, "run": {"timeout_s": 5, "fault": {"rank": 1, "kind": "panic"}}});
    let f = try_run_distributed(2, d.path(), &c, T).unwrap_err();
    assert!(
        f.message
            .contains("rank 1 reported ok=false: panic: fault injected on rank 1"),
        "{f}"
    );
    assert!(
        f.message.contains("xlm launch: rank 1 exited with code 1")
            || f.message.contains("xlm launch: rank 0"),
        "{f}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs fault injection: cargo test --workspace --features xlm-cli/fault-injection"
)]
fn a_killed_rank_is_named_by_launcher_and_harness() {
    let d = tempfile::tempdir().unwrap();
    let c = json!({"dsm_kwargs": {"full_name": "mem/raw/train"}, "run": {"timeout_s": 5, "fault": {"rank": 1, "kind": "sigkill"}}});
    let f = try_run_distributed(3, d.path(), &c, T).unwrap_err();
    assert!(
        f.message
            .contains("xlm launch: rank 1 was killed by signal 9 (SIGKILL)"),
        "{f}"
    );
    assert!(
        f.message.contains("rank 1 wrote no usable result file"),
        "{f}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs fault injection: cargo test --workspace --features xlm-cli/fault-injection"
)]
fn a_missing_rank_times_out_the_barrier_by_name() {
    let d = tempfile::tempdir().unwrap();
    let c = json!({"dsm_kwargs": {"full_name": "mem/raw/train"},
                   "run": {"timeout_s": 0.5, "prepare_timeout_s": 0.5,
                           "fault": {"rank": 2, "kind": "stall_before_barrier", "stall_s": 5}}});
    let f = try_run_distributed(3, d.path(), &c, T).unwrap_err();
    assert!(
        f.message.contains("barrier after prepare_data timed out")
            && f.message.contains("missing rank(s): [2]"),
        "{f}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs fault injection: cargo test --workspace --features xlm-cli/fault-injection"
)]
fn a_prepare_longer_than_the_collective_timeout_succeeds_under_the_prepare_timeout() {
    // The stall outlasts the collective timeout plus the 2 s the other
    // ranks add to it (0.5 + 2 s): under that timeout rank 1 would give up.
    let d = tempfile::tempdir().unwrap();
    let c = json!({"dsm_kwargs": {"full_name": "mem/raw/train"},
                   "run": {"timeout_s": 0.5, "prepare_timeout_s": 20,
                           "fault": {"rank": 0, "kind": "stall_in_prepare", "stall_s": 4}}});
    let r = run_distributed(2, d.path(), &c, T);
    assert!(
        r[1].elapsed_s >= 4.0,
        "rank 1 waited {} s for rank 0's prepare",
        r[1].elapsed_s
    );
}

#[test]
fn a_process_left_holding_a_ranks_output_does_not_hang_the_launcher() {
    // A rank that exits 0 but leaves a background process holding its
    // stdout: the launcher waits briefly for the output, then says so.
    let limit = Duration::from_secs(20); // a hang fails here instead of blocking
    let out = run_command(
        xlm(&[
            "launch",
            "--nproc-per-node",
            "1",
            "--",
            "sh",
            "-c",
            "echo started; sleep 15 & exit 0",
        ]),
        limit,
    );
    assert!(!out.timed_out, "xlm launch hung: {out:?}");
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(10), "{out:?}");
    assert!(out.stdout.contains("[rank 0] started"), "{out:?}");
    assert!(
        out.stderr.contains("rank(s) [0] ended") && out.stderr.contains("holds their output open"),
        "{out:?}"
    );
    // A failing rank's background process is stopped with it (its process
    // group gets SIGTERM), and so is a rank's child when the launch times out.
    for (cmd, code) in [
        ("sleep 15 & exit 3", xlm_dist::launch::EXIT_RANK_FAILED),
        ("sleep 15 & wait", xlm_dist::launch::EXIT_TIMEOUT),
    ] {
        let out = run_command(
            xlm(&[
                "launch",
                "--nproc-per-node",
                "2",
                "--timeout",
                "1",
                "--grace",
                "1",
                "--",
                "sh",
                "-c",
                cmd,
            ]),
            limit,
        );
        assert!(!out.timed_out, "xlm launch hung: {out:?}");
        assert_eq!(out.status.and_then(|s| s.code()), Some(code), "{out:?}");
        assert!(out.elapsed < Duration::from_secs(10), "{out:?}");
        assert!(!out.stderr.contains("holds their output open"), "{out:?}");
    }
}

#[test]
fn usage_errors_exit_2_naming_the_flag() {
    for (args, flag) in [
        (
            &[
                "launch",
                "--nproc-per-node",
                "1",
                "--timeout",
                "-1",
                "--",
                "true",
            ][..],
            "--timeout",
        ),
        (
            &[
                "launch",
                "--nproc-per-node",
                "1",
                "--timeout=-1",
                "--",
                "true",
            ],
            "--timeout",
        ),
        (
            &[
                "launch",
                "--nproc-per-node",
                "1",
                "--timeout",
                "nan",
                "--",
                "true",
            ],
            "--timeout",
        ),
        (
            &[
                "launch",
                "--nproc-per-node",
                "1",
                "--timeout",
                "inf",
                "--",
                "true",
            ],
            "--timeout",
        ),
        (
            &[
                "launch",
                "--nproc-per-node",
                "1",
                "--timeout",
                "1e300",
                "--",
                "true",
            ],
            "--timeout",
        ),
        (
            &[
                "launch",
                "--nproc-per-node",
                "1",
                "--grace",
                "-1",
                "--",
                "true",
            ],
            "--grace",
        ),
        (
            &[
                "launch",
                "--nproc-per-node",
                "1",
                "--grace",
                "NaN",
                "--",
                "true",
            ],
            "--grace",
        ),
        (
            &["launch", "--nproc-per-node", "0", "--", "true"],
            "--nproc-per-node",
        ),
        (&["launch", "--nproc-per-node", "2"], "<COMMAND>"),
        (&["bench", "--loader-only"], "--cache-dir"),
        (&["probe"], "--result-dir"),
        (&["no-such-command"], "no-such-command"),
        (&[], "Usage"),
    ] {
        let out = run_command(xlm(args), T);
        assert_eq!(
            out.status.and_then(|s| s.code()),
            Some(xlm_dist::launch::EXIT_USAGE),
            "xlm {args:?}: {out:?}"
        );
        assert!(out.stderr.contains(flag), "xlm {args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "xlm {args:?}: {out:?}");
    }
}

#[test]
fn launcher_reports_usage_and_timeouts() {
    let out = run_command(
        xlm(&[
            "launch",
            "--nproc-per-node",
            "2",
            "--timeout",
            "0.5",
            "--grace",
            "0.2",
            "--",
            "sleep",
            "30",
        ]),
        T,
    );
    assert_eq!(
        out.status.and_then(|s| s.code()),
        Some(xlm_dist::launch::EXIT_TIMEOUT),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("rank(s) [0, 1] were still running"),
        "{out:?}"
    );
    let out = run_command(
        xlm(&[
            "launch",
            "--nproc-per-node",
            "2",
            "--",
            "sh",
            "-c",
            "echo hello from $RANK of $WORLD_SIZE at $MASTER_ADDR",
        ]),
        T,
    );
    assert!(out.status.unwrap().success(), "{out:?}");
    assert!(
        out.stdout
            .contains("[rank 0] hello from 0 of 2 at 127.0.0.1"),
        "{out:?}"
    );
    assert!(out.stdout.contains("[rank 1] hello from 1 of 2"), "{out:?}");
    let out = run_command(
        xlm(&[
            "launch",
            "--nproc-per-node",
            "2",
            "--",
            "/nonexistent/program",
        ]),
        T,
    );
    assert!(
        out.stderr
            .contains("cannot start `/nonexistent/program` for rank 0"),
        "{out:?}"
    );
}

// ---------------------------------------------------------------- resume across processes

fn resume_cfg(batch: usize, run: Json) -> Json {
    cfg(
        json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "shuffle_buffer_size": 16,
               "dataloader_kwargs": {"batch_size": batch, "num_workers": 1}}),
        run,
    )
}

fn samples_of(results: &[RankResult]) -> Vec<Vec<(u64, Vec<u64>)>> {
    results
        .iter()
        .map(|r| {
            r.epochs
                .iter()
                .flat_map(|e| e.samples.iter().map(move |&s| (e.epoch, vec![s])))
                .collect()
        })
        .collect()
}

#[test]
fn stop_and_resume_on_the_same_world_size_is_exact() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state.json");
    let full = run_distributed(
        2,
        &d.path().join("full"),
        &resume_cfg(6, json!({"num_epochs": 2})),
        T,
    );
    let head = run_distributed(
        2,
        &d.path().join("head"),
        &resume_cfg(
            6,
            json!({"num_epochs": 2, "stop_after_batches": 3, "state_out": state}),
        ),
        T,
    );
    let tail = run_distributed(
        2,
        &d.path().join("tail"),
        &resume_cfg(6, json!({"num_epochs": 2, "resume_from": state})),
        T,
    );
    let (full, head, tail) = (samples_of(&full), samples_of(&head), samples_of(&tail));
    for r in 0..2 {
        assert_eq!(
            [head[r].clone(), tail[r].clone()].concat(),
            full[r],
            "rank {r}"
        );
    }
    assert_eq!(head[0].len(), 18);
}

#[test]
fn stop_on_two_ranks_and_resume_on_three_or_four_loses_nothing() {
    for (world, batch) in [(3, 4), (4, 3)] {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state.json");
        let head = run_distributed(
            2,
            &d.path().join("head"),
            &resume_cfg(6, json!({"stop_after_batches": 3, "state_out": state})),
            T,
        );
        let saved =
            xlm::loader::LoaderState::from_json(&std::fs::read_to_string(&state).unwrap()).unwrap();
        assert_eq!(
            (saved.epoch, saved.consumed, saved.samples_per_step),
            (0, 36, 12)
        );
        let tail = run_distributed(
            world,
            &d.path().join("tail"),
            &resume_cfg(batch, json!({"resume_from": state})),
            T,
        );
        equal_counts(&tail);
        let mut ids: Vec<i64> = head
            .iter()
            .chain(tail.iter())
            .flat_map(|r| r.epochs[0].ids.clone())
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            (1000..1060).collect::<Vec<_>>(),
            "{world} ranks: no id lost or duplicated"
        );
    }
    // A batch size that changes the samples per step is refused, naming the fix.
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state.json");
    run_distributed(
        2,
        &d.path().join("head"),
        &resume_cfg(6, json!({"stop_after_batches": 1, "state_out": state})),
        T,
    );
    let f = try_run_distributed(
        3,
        &d.path().join("bad"),
        &resume_cfg(5, json!({"resume_from": state})),
        T,
    )
    .unwrap_err();
    assert!(
        f.message
            .contains("samples per step (batch_size x world_size) would change from 12"),
        "{f}"
    );
}

#[test]
fn a_datamodule_on_two_ranks_gives_equal_batches_for_every_loader() {
    // The probe over a whole data module (its node at the top, as
    // xlm-core's datamodule/*.yaml): every split's loaders per rank.
    let d = tempfile::tempdir().unwrap();
    let c = json!({
        "_target_": "xlm.datamodule.TextDataModule",
        "manual_cache_dir": d.path().join("cache"),
        "block_size": 8,
        "global_batch_size": 16,
        "dataset_managers": {
            "train": {"large": {"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4,
                                 "shuffle_buffer_size": 8, "collate_fn": "id_tracking",
                                 "dataloader_kwargs": {"batch_size": 4, "num_workers": 1}}},
            "val": {
                "raw": {"full_name": "mem/raw/val", "collate_fn": "id_tracking",
                         "dataloader_kwargs": {"batch_size": 2}},
                "varlen": {"full_name": "mem/raw_varlen/train", "collate_fn": "dynamic_padding",
                            "dataloader_kwargs": {"batch_size": 3}}
            }
        }
    });
    let r = run_distributed(2, &d.path().join("out"), &c, T);
    assert!(
        r.iter().all(|r| r.accumulation_steps == Some(2)),
        "16 / (4 x 2)"
    );
    for (split, name) in [("train", "large"), ("val", "raw"), ("val", "varlen")] {
        let counts: Vec<u64> = r
            .iter()
            .map(|r| r.loader(split, name).unwrap().epochs[0].num_batches)
            .collect();
        assert!(
            counts[0] > 0 && counts[0] == counts[1],
            "{split}/{name}: {counts:?}"
        );
    }
    let train: Vec<Vec<i64>> = r
        .iter()
        .map(|r| r.loader("train", "large").unwrap().epochs[0].ids.clone())
        .collect();
    assert_disjoint_cover(&train, 1000..1060);
    let names: Vec<(String, String)> = r[0]
        .loaders
        .iter()
        .map(|l| (l.split.clone(), l.name.clone()))
        .collect();
    assert_eq!(
        names,
        [("train", "large"), ("val", "raw"), ("val", "varlen")]
            .map(|(s, n)| (s.to_string(), n.to_string()))
    );
}

/// The xlm-core-shaped datamodule fixture with its placeholders filled in,
/// over 50 rows of toy text (ids 0..50), plus the result directory.
fn xlm_core_datamodule(d: &std::path::Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let data = d.join("data");
    std::fs::create_dir_all(data.join("toy")).unwrap();
    let words = ["the", "cat", "dog", "sat", "on", "a", "mat"];
    let mut csv = String::from("id,text\n");
    for i in 0..50usize {
        let n = 2 + i % 5;
        let text: Vec<&str> = (0..n).map(|j| words[(i + j * 3) % words.len()]).collect();
        csv.push_str(&format!("{i},{}\n", text.join(" ")));
    }
    std::fs::write(data.join("toy/train.csv"), csv).unwrap();
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/xlm_core_datamodule.yaml"),
    )
    .unwrap()
    .replace("@DATA@", &data.display().to_string())
    .replace("@CACHE@", &d.join("cache").display().to_string());
    let path = d.join("datamodule.yaml");
    std::fs::write(&path, edit(yaml)).unwrap();
    path
}

#[test]
fn an_xlm_core_datamodule_yaml_runs_unchanged_on_two_ranks() {
    let d = tempfile::tempdir().unwrap();
    let file = xlm_core_datamodule(d.path(), |y| y);
    // `xlm prepare --config` takes the same file.
    let out = run_command(
        {
            let mut c = xlm(&["prepare", "--config"]);
            c.arg(&file);
            c
        },
        T,
    );
    assert!(out.status.is_some_and(|s| s.success()), "{out:?}");
    assert!(
        out.stdout.contains("train/toy") && out.stdout.contains("train[:-10]"),
        "{out:?}"
    );
    let r = try_run_distributed_file(2, &d.path().join("out"), &file, T)
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(
        r.iter().all(|r| r.accumulation_steps == Some(2)),
        "16 / (4 x 2)"
    );
    for (split, name) in [("train", "toy"), ("val", "toy")] {
        let counts: Vec<u64> = r
            .iter()
            .map(|r| r.loader(split, name).unwrap().epochs[0].num_batches)
            .collect();
        assert!(
            counts[0] > 0 && counts[0] == counts[1],
            "{split}/{name}: {counts:?}"
        );
    }
    let ids = |split: &str| -> Vec<Vec<i64>> {
        r.iter()
            .map(|r| r.loader(split, "toy").unwrap().epochs[0].ids.clone())
            .collect()
    };
    assert_disjoint_cover(&ids("train"), 0..40);
    assert_disjoint_cover(&ids("val"), 40..50);
    // DefaultCollatorWithPadding pads to block_size.
    let shapes = &r[0].loader("train", "toy").unwrap().epochs[0].batch_shapes;
    assert!(shapes.iter().all(|s| s[1] == 8), "{shapes:?}");
    // xlm-core's job-config shape: the data module nested under
    // `datamodule`, `global_components` beside it (other root keys of a
    // job config, e.g. `trainer`, are not the data layer's).
    let mut v: Json = serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let gc = v
        .as_object_mut()
        .unwrap()
        .remove("global_components")
        .unwrap();
    let nested = json!({"global_components": gc, "datamodule": v});
    let nested_file = d.path().join("job.json");
    std::fs::write(&nested_file, nested.to_string()).unwrap();
    let r2 = try_run_distributed_file(2, &d.path().join("out2"), &nested_file, T)
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(
        r2.iter().map(|r| r.loaders.clone()).collect::<Vec<_>>(),
        r.iter().map(|r| r.loaders.clone()).collect::<Vec<_>>(),
        "the nested shape probes the same loaders"
    );
    let out = run_command(
        {
            let mut c = xlm(&["prepare", "--config"]);
            c.arg(&nested_file);
            c
        },
        T,
    );
    assert!(out.status.is_some_and(|s| s.success()), "{out:?}");
}

#[test]
fn an_xlm_core_datamodule_with_hydra_leftovers_fails_naming_the_key() {
    for (from, to, key) in [
        ("block_size: 8", "block_size: ???", "block_size"),
        (
            "full_name: @DATA@/toy/train[-10:]",
            "full_name: ${oc.env:DATA_DIR}/toy/train[-10:]",
            "dataset_managers.val.toy.full_name",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let file = xlm_core_datamodule(d.path(), |y| {
            let data = d.path().join("data").display().to_string();
            y.replace(&from.replace("@DATA@", &data), to)
        });
        let f = try_run_distributed_file(2, &d.path().join("out"), &file, T).unwrap_err();
        assert!(f.message.contains(key), "{key}: {}", f.message);
    }
}
