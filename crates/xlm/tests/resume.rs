//! Resume: exact (same world size) and elastic (another world size or
//! worker count) over grids of modes, sizes, ranks, workers and stop points;
//! and the safety checks that refuse a state from other data or another
//! pipeline.
//!
//! Run: `cargo nextest run --test resume`

mod common;

use common::*;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use xlm::loader::{DataLoader, LoaderState, ResumeError};
use xlm::manager::{DatasetManager, Stage};
use xlm::source::{synthetic_table, MemoryRegistry};

const EPOCHS: u64 = 2;
/// Batches per "epoch" the trainer takes from an infinite loader.
const INF_BATCHES: u64 = 5;

fn registry(n: usize) -> Arc<MemoryRegistry> {
    let r = MemoryRegistry::new();
    r.insert(
        "mem/grid/train",
        synthetic_table((0..n).map(|i| (i as i64, 1 + (i * 5) % 7))),
    );
    Arc::new(r)
}

fn modes() -> Vec<(&'static str, Json)> {
    vec![
        ("map", json!({"collate_fn": "dynamic_padding"})),
        (
            "map_drop",
            json!({"collate_fn": "dynamic_padding", "ddp_remainder": "drop"}),
        ),
        (
            "iterable",
            json!({"collate_fn": "dynamic_padding", "iterable_dataset_shards": 3, "shuffle_buffer_size": 5}),
        ),
        (
            "packed",
            json!({"collate_fn": "default", "iterable_dataset_shards": 2, "shuffle_buffer_size": 3,
                          "on_the_fly_group_processor": "pack_sequences",
                          "on_the_fly_group_processor_kwargs": {"block_size": 8, "use_bos": true, "drop_last": false}}),
        ),
        (
            "infinite",
            json!({"collate_fn": "dynamic_padding", "iterable_dataset_shards": 3, "shuffle_buffer_size": 4, "make_infinite": true}),
        ),
    ]
}

/// One rank per manager, as separate processes would have.
fn loaders(
    reg: &Arc<MemoryRegistry>,
    dir: &Path,
    mode: &Json,
    world: usize,
    batch: usize,
    workers: usize,
) -> (Vec<DatasetManager>, Vec<DataLoader>) {
    let mut cfg = mode.clone();
    cfg["full_name"] = json!("mem/grid/train");
    cfg["dataloader_kwargs"] =
        json!({"batch_size": batch, "num_workers": workers, "prefetch_factor": 1});
    let mut dms = Vec::new();
    let mut ls = Vec::new();
    for r in 0..world {
        let mut dm = manager(cfg.clone(), Some(reg.clone()));
        dm.setup(Stage::Fit, &setup_args(dir, 8, world > 1, r, world))
            .unwrap();
        ls.push(dm.get_dataloader("train", world > 1, r, world).unwrap());
        dms.push(dm);
    }
    (dms, ls)
}

type Stream = Vec<Vec<(u64, Vec<u64>)>>;

/// Runs the training loop's data side on every rank: epochs from the
/// restored epoch (or 0), `set_epoch` each, stopping every rank after
/// `stop` batches in all. Returns each rank's (epoch, samples) per batch and
/// rank 0's state at the stop.
fn train(
    dms: &[DatasetManager],
    ls: &[DataLoader],
    resume: Option<&LoaderState>,
    stop: Option<u64>,
) -> (Stream, LoaderState) {
    let infinite = ls[0].num_batches().is_none();
    let first = match resume {
        Some(s) => {
            for l in ls {
                l.restore(s).unwrap();
            }
            s.epoch
        }
        None => 0,
    };
    let mut out: Stream = vec![Vec::new(); ls.len()];
    let mut taken = 0;
    let mut state = ls[0].state();
    'epochs: for e in first..EPOCHS {
        for dm in dms {
            dm.set_epoch(e);
        }
        let mut limit = if infinite { INF_BATCHES } else { u64::MAX };
        if let (Some(s), true) = (resume, infinite && e == first) {
            limit -= s.consumed / s.samples_per_step;
        }
        let mut iters: Vec<_> = ls.iter().map(|l| l.iter().take(limit as usize)).collect();
        loop {
            let batches: Vec<_> = iters
                .iter_mut()
                .map(|it| it.next().map(|b| b.unwrap()))
                .collect();
            if batches[0].is_none() {
                assert!(
                    batches.iter().all(|b| b.is_none()),
                    "ranks ended at different batches"
                );
                break;
            }
            for (r, b) in batches.into_iter().enumerate() {
                out[r].push((e, b.expect("every rank has the batch").samples));
            }
            taken += 1;
            if Some(taken) == stop {
                state = ls[0].state();
                for l in &ls[1..] {
                    assert_eq!(l.state(), state, "the state is the same on every rank");
                }
                break 'epochs;
            }
        }
    }
    (out, state)
}

#[test]
fn exact_resume_grid() {
    let mut cases = 0;
    for n in [1usize, 7, 23, 40] {
        let d = tempfile::tempdir().unwrap();
        let reg = registry(n);
        manager(json!({"full_name": "mem/grid/train"}), Some(reg.clone()))
            .prepare_data(&prepare_args(d.path(), false))
            .unwrap();
        for (name, mode) in modes() {
            for world in 1..=3usize {
                for workers in [0usize, 2] {
                    for batch in [1usize, 3] {
                        let (dms, ls) = loaders(&reg, d.path(), &mode, world, batch, workers);
                        let (full, _) = train(&dms, &ls, None, None);
                        let total = full[0].len() as u64;
                        let stops: Vec<u64> = if total <= 6 {
                            (1..total).collect()
                        } else {
                            vec![1, 2, total / 2, total / 2 + 1, total - 2, total - 1]
                        };
                        for k in stops {
                            let (dms, ls) = loaders(&reg, d.path(), &mode, world, batch, workers);
                            let (head, state) = train(&dms, &ls, None, Some(k));
                            // Resume in fresh "processes", with another worker count.
                            let (dms, ls) =
                                loaders(&reg, d.path(), &mode, world, batch, 2 - workers);
                            let (tail, _) = train(&dms, &ls, Some(&state), None);
                            for r in 0..world {
                                let what = format!("{name} n={n} world={world} workers={workers} batch={batch} stop={k} rank={r}");
                                assert_eq!(head[r], full[r][..k as usize], "{what}: head");
                                assert_eq!(
                                    tail[r],
                                    full[r][k as usize..],
                                    "{what}: resumed stream differs from the uninterrupted one"
                                );
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(cases >= 1000, "{cases} cases");
}

#[test]
fn elastic_resume_grid() {
    let mut cases = 0;
    const GLOBAL: usize = 12;
    for n in [5usize, 23, 61] {
        let d = tempfile::tempdir().unwrap();
        let reg = registry(n);
        manager(json!({"full_name": "mem/grid/train"}), Some(reg.clone()))
            .prepare_data(&prepare_args(d.path(), false))
            .unwrap();
        for (name, mode) in modes().into_iter().filter(|(m, _)| *m != "infinite") {
            for w in 1..=4usize {
                for w2 in 1..=4usize {
                    for workers in [0usize, 3] {
                        let (dms, ls) = loaders(&reg, d.path(), &mode, w, GLOBAL / w, workers);
                        let per_epoch = ls[0].num_batches().unwrap();
                        let samples = dms[0].pipeline().unwrap().num_samples();
                        for k in [1, per_epoch / 2, per_epoch.saturating_sub(1)] {
                            if k == 0 || k >= per_epoch {
                                continue;
                            }
                            let (dms, ls) = loaders(&reg, d.path(), &mode, w, GLOBAL / w, workers);
                            let (head, state) = train(&dms, &ls, None, Some(k));
                            assert_eq!(state.consumed, k * GLOBAL as u64);
                            let (dms2, ls2) =
                                loaders(&reg, d.path(), &mode, w2, GLOBAL / w2, 3 - workers);
                            let (tail, _) = train(&dms2, &ls2, Some(&state), None);
                            // Epoch 0 as consumed by both runs together.
                            let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
                            let mut positions = 0u64;
                            for rank in head.iter().chain(tail.iter()) {
                                for (e, s) in rank {
                                    if *e == 0 {
                                        positions += s.len() as u64;
                                        for &x in s {
                                            *seen.entry(x).or_default() += 1;
                                        }
                                    }
                                }
                            }
                            let what = format!("{name} n={n} {w}->{w2} ranks, stop={k}");
                            let dups: u64 = seen.values().map(|c| c - 1).sum();
                            if name == "map_drop" {
                                assert_eq!(dups, 0, "{what}: duplicated");
                                assert!(
                                    samples - (seen.len() as u64) < w2 as u64,
                                    "{what}: lost more than the remainder"
                                );
                            } else {
                                assert_eq!(seen.len() as u64, samples, "{what}: lost samples");
                                assert_eq!(dups, positions - samples, "{what}");
                                assert!(
                                    dups < w2 as u64,
                                    "{what}: {dups} repeats, more than the padding of {w2} ranks"
                                );
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(cases >= 300, "{cases} cases");
}

#[test]
fn elastic_resume_of_an_infinite_stream_continues_it() {
    let d = tempfile::tempdir().unwrap();
    let reg = registry(17);
    let mode = json!({"collate_fn": "dynamic_padding", "iterable_dataset_shards": 3, "shuffle_buffer_size": 4, "make_infinite": true});
    manager(json!({"full_name": "mem/grid/train"}), Some(reg.clone()))
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap();
    // World 1 with batch 6 is the global stream itself.
    let (_, reference) = loaders(&reg, d.path(), &mode, 1, 6, 0);
    let global: Vec<u64> = reference[0]
        .iter()
        .take(12)
        .flat_map(|b| b.unwrap().samples)
        .collect();
    let (_, ls) = loaders(&reg, d.path(), &mode, 2, 3, 1);
    let mut first: Vec<Vec<u64>> = vec![Vec::new(); 2];
    let mut its: Vec<_> = ls.iter().map(|l| l.iter()).collect();
    for _ in 0..5 {
        for (r, it) in its.iter_mut().enumerate() {
            first[r].extend(it.next().unwrap().unwrap().samples);
        }
    }
    let state = ls[0].state();
    drop(its);
    let (_, ls3) = loaders(&reg, d.path(), &mode, 3, 2, 2);
    let mut rest: Vec<Vec<u64>> = vec![Vec::new(); 3];
    for (r, l) in ls3.iter().enumerate() {
        l.restore(&state).unwrap();
        rest[r] = l.iter().take(7).flat_map(|b| b.unwrap().samples).collect();
    }
    // Interleave back into global positions and compare.
    let mut rebuilt = vec![0u64; 72];
    for (r, s) in first.iter().enumerate() {
        for (j, &x) in s.iter().enumerate() {
            rebuilt[r + j * 2] = x;
        }
    }
    for (r, s) in rest.iter().enumerate() {
        for (j, &x) in s.iter().enumerate() {
            rebuilt[30 + r + j * 3] = x;
        }
    }
    assert_eq!(rebuilt, global);
}

// ---------------------------------------------------------------- safety

fn trained_state(d: &Path, cfg: Json) -> LoaderState {
    let mut dm = manager(cfg, None);
    ready(&mut dm, d);
    let l = dm.get_dataloader("train", false, 0, 1).unwrap();
    let mut it = l.iter();
    it.next().unwrap().unwrap();
    it.next().unwrap().unwrap();
    l.state()
}

fn restore_into(d: &Path, cfg: Json, state: &LoaderState) -> Result<(), ResumeError> {
    let mut dm = manager(cfg, None);
    ready(&mut dm, d);
    dm.get_dataloader("train", false, 0, 1)
        .unwrap()
        .restore(state)
}

#[test]
fn state_is_small_json_that_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let s = trained_state(d.path(), json!({"dataloader_kwargs": {"batch_size": 4}}));
    assert_eq!(
        (s.epoch, s.consumed, s.samples_per_step, s.world_size),
        (0, 8, 4, 1)
    );
    let text = s.to_json();
    assert!(text.len() < 1024, "{} bytes", text.len());
    assert_eq!(LoaderState::from_json(&text).unwrap(), s);
    restore_into(
        d.path(),
        json!({"dataloader_kwargs": {"batch_size": 4}}),
        &s,
    )
    .unwrap();
}

#[test]
fn restoring_against_other_data_or_pipeline_names_the_fingerprint() {
    let d = tempfile::tempdir().unwrap();
    let base = json!({"iterable_dataset_shards": 2, "shuffle_buffer_size": 4});
    let s = trained_state(d.path(), base.clone());
    let mut other = base.clone();
    other["shuffle_buffer_size"] = json!(8);
    let e = restore_into(d.path(), other, &s).unwrap_err();
    assert!(matches!(e, ResumeError::Pipeline { .. }), "{e}");
    assert!(e.to_string().contains("pipeline fingerprint"), "{e}");
    let mut seeded = base.clone();
    seeded["shuffle_seed"] = json!(1);
    assert!(matches!(
        restore_into(d.path(), seeded, &s).unwrap_err(),
        ResumeError::Seed {
            saved: 42,
            current: 1
        }
    ));
    // The same config over changed data.
    let d2 = tempfile::tempdir().unwrap();
    let reg = Arc::new(MemoryRegistry::builtin());
    reg.insert("mem/raw/train", synthetic_table((0..17).map(|i| (i, 5))));
    let mut dm = DatasetManager::builder(config(base.clone()))
        .source(reg)
        .build()
        .unwrap();
    ready(&mut dm, d2.path());
    let e = dm
        .get_dataloader("train", false, 0, 1)
        .unwrap()
        .restore(&s)
        .unwrap_err();
    assert!(matches!(e, ResumeError::Dataset { .. }), "{e}");
    assert!(e.to_string().contains("dataset fingerprint"), "{e}");
}

#[test]
fn corrupted_future_and_mismatched_batch_states_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let s = trained_state(d.path(), json!({}));
    assert!(matches!(
        LoaderState::from_json("{not json"),
        Err(ResumeError::Corrupt(_))
    ));
    assert!(matches!(
        LoaderState::from_json(r#"{"format": "other", "version": 1}"#),
        Err(ResumeError::Corrupt(_))
    ));
    for other in [0u64, 1, 7, (1 << 32) + 2] {
        let mut v: Json = serde_json::from_str(&s.to_json()).unwrap();
        v["version"] = json!(other);
        let e = LoaderState::from_json(&v.to_string()).unwrap_err();
        assert!(
            matches!(e, ResumeError::Version { found, supported: 2 } if found == other),
            "{other}: {e:?}"
        );
        assert!(
            e.to_string().contains(&format!(
                "version {other} is not the version this xlm reads (2)"
            )),
            "{e}"
        );
    }
    // A version-1 state (saved before the order algorithms were named in
    // the fingerprint) is refused by restore too, not only by from_json.
    let mut old = s.clone();
    old.version = 1;
    assert!(matches!(
        restore_into(d.path(), json!({}), &old),
        Err(ResumeError::Version {
            found: 1,
            supported: 2
        })
    ));
    let mut v: Json = serde_json::from_str(&s.to_json()).unwrap();
    v.as_object_mut().unwrap().remove("consumed");
    assert!(matches!(
        LoaderState::from_json(&v.to_string()),
        Err(ResumeError::Corrupt(_))
    ));
    let e = restore_into(
        d.path(),
        json!({"dataloader_kwargs": {"batch_size": 3}}),
        &s,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("samples per step (batch_size x world_size) would change from 4"),
        "{e}"
    );
    let mut past = s.clone();
    past.consumed = 1000;
    assert!(matches!(
        restore_into(d.path(), json!({}), &past),
        Err(ResumeError::PastEnd { .. })
    ));
}

#[test]
fn a_state_saved_at_an_epoch_end_continues_with_the_next_epoch() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({}), None);
    ready(&mut dm, d.path());
    let l = dm.get_dataloader("train", false, 0, 1).unwrap();
    assert_eq!(l.iter().count(), 5);
    let s = l.state();
    assert_eq!((s.epoch, s.consumed), (0, 17));
    let mut dm2 = manager(json!({}), None);
    ready(&mut dm2, d.path());
    let l2 = dm2.get_dataloader("train", false, 0, 1).unwrap();
    l2.restore(&s).unwrap();
    assert_eq!(l2.iter().count(), 0, "epoch 0 is finished");
    dm2.set_epoch(1);
    dm.set_epoch(1);
    assert_eq!(batch_ids(&l2), batch_ids(&l));
}

#[test]
fn a_restored_position_waits_for_its_epoch() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({"dataloader_kwargs": {"batch_size": 4}}), None);
    ready(&mut dm, d.path());
    let l = dm.get_dataloader("train", false, 0, 1).unwrap();
    dm.set_epoch(1);
    let full = batch_ids(&l);
    let mut it = l.iter();
    it.next().unwrap().unwrap();
    drop(it);
    let s = l.state();
    assert_eq!((s.epoch, s.consumed), (1, 4));
    let mut dm2 = manager(json!({"dataloader_kwargs": {"batch_size": 4}}), None);
    ready(&mut dm2, d.path());
    let l2 = dm2.get_dataloader("train", false, 0, 1).unwrap();
    l2.restore(&s).unwrap();
    // Iterating an earlier epoch first keeps the restored position for epoch 1.
    dm2.set_epoch(0);
    assert_eq!(l2.iter().count(), 5);
    dm2.set_epoch(1);
    assert_eq!(batch_ids(&l2), full[1..]);
    // Once a later epoch is iterated, the position is gone.
    let mut dm3 = manager(json!({"dataloader_kwargs": {"batch_size": 4}}), None);
    ready(&mut dm3, d.path());
    let l3 = dm3.get_dataloader("train", false, 0, 1).unwrap();
    l3.restore(&s).unwrap();
    dm3.set_epoch(2);
    assert_eq!(l3.iter().count(), 5);
    dm3.set_epoch(1);
    assert_eq!(batch_ids(&l3), full);
}

#[test]
fn states_with_overflowing_numbers_are_refused_not_wrapped() {
    let d = tempfile::tempdir().unwrap();
    let s = trained_state(d.path(), json!({}));
    for (field, value) in [
        ("world_size", u64::MAX),
        ("world_size", 0),
        ("world_size", 3),
        ("epoch", u64::MAX),
        ("consumed", u64::MAX),
    ] {
        let mut v: Json = serde_json::from_str(&s.to_json()).unwrap();
        v[field] = json!(value);
        let state = LoaderState::from_json(&v.to_string()).unwrap();
        let e = restore_into(d.path(), json!({}), &state).unwrap_err();
        assert!(
            matches!(e, ResumeError::Corrupt(_) | ResumeError::PastEnd { .. }),
            "{field}={value}: {e:?}"
        );
    }
    let inf = json!({"iterable_dataset_shards": 2, "make_infinite": true});
    let s = trained_state(d.path(), inf.clone());
    let mut v: Json = serde_json::from_str(&s.to_json()).unwrap();
    v["consumed"] = json!(u64::MAX - 1);
    let state = LoaderState::from_json(&v.to_string()).unwrap();
    let e = restore_into(d.path(), inf, &state).unwrap_err();
    assert!(e.to_string().contains("`consumed`"), "{e}");
}
