//! The manager kinds other than `DatasetManager` (issue #10, item 2), with
//! xlm-core's keys and behaviour: `EvalDatasetManager` (map-style, never
//! shuffled, stages validate + test, split by rank like Lightning's
//! `DistributedSampler(shuffle=False)`), `UnconditionalGenerationDatasetManager`
//! (`num_examples` empty examples on *every* rank, no data, every stage),
//! and `replicate_examples` as a group processor.
//!
//! Run: `cargo test -p xlm --test manager_kinds`

mod common;

use common::*;
use serde_json::{json, Value as Json};
use std::path::Path;
use std::sync::Arc;
use xlm::manager::{
    DatasetManager, DatasetManagerConfig, EmptyDatasetSpec, LoaderType, ManagerKind, SetupArgs,
    Stage,
};
use xlm::source::MemoryRegistry;

const EVAL: &str = "xlm.datamodule.EvalDatasetManager";
const UNCONDITIONAL: &str = "xlm.datamodule.UnconditionalGenerationDatasetManager";

fn build(v: Json) -> Result<DatasetManager, String> {
    DatasetManagerConfig::from_json(&v.to_string())
        .and_then(DatasetManager::new)
        .map_err(|e| e.to_string())
}

/// An eval manager over `full_name` (id_tracking, batch 2) with `extra` keys.
fn eval(full_name: &str, extra: Json) -> Json {
    let mut v = json!({
        "_target_": EVAL,
        "full_name": full_name,
        "collate_fn": "id_tracking",
        "dataloader_kwargs": {"batch_size": 2},
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// An unconditional-generation manager with `extra` keys.
fn unconditional(num_examples: usize, batch_size: usize, drop_last: bool, extra: Json) -> Json {
    let mut v = json!({
        "_target_": UNCONDITIONAL,
        "collator": "xlm.datamodule.DefaultCollator",
        "num_examples": num_examples,
        "dataset_constructor_str": "xlm.datamodule.DefaultEmptyDataset",
        "dataloader_kwargs": {"batch_size": batch_size, "drop_last": drop_last},
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// torch's `DistributedSampler(shuffle=False, drop_last=False)`, literally:
/// pad the index list by repeating it, then take `rank::world`.
fn distributed_sampler(n: usize, world: usize, rank: usize) -> Vec<usize> {
    let num_samples = n.div_ceil(world);
    let total = num_samples * world;
    let mut indices: Vec<usize> = (0..n).collect();
    let padding = total - n;
    if padding <= n {
        indices.extend_from_within(..padding);
    } else if n > 0 {
        let reps = padding.div_ceil(n);
        let extra: Vec<usize> = indices.iter().copied().cycle().take(n * reps).collect();
        indices.extend_from_slice(&extra[..padding]);
    }
    indices
        .into_iter()
        .skip(rank)
        .step_by(world)
        .take(num_samples)
        .collect()
}

/// The `kind` loader of `rank` of `world` for a freshly set-up manager.
fn rank_loader_for(
    v: &Json,
    dir: &Path,
    stage: Stage,
    kind: LoaderType,
    rank: usize,
    world: usize,
) -> xlm::loader::DataLoader {
    let mut dm = build(v.clone()).unwrap();
    dm.prepare_data(&prepare_args(dir, false)).unwrap();
    assert!(dm
        .setup(stage, &setup_args(dir, 8, world > 1, rank, world))
        .unwrap());
    dm.dataloader(kind).unwrap()
}

// ---------------------------------------------------------------- eval

#[test]
fn eval_default_stages_are_validate_and_test() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = build(eval("mem/raw/val", json!({}))).unwrap();
    assert_eq!(dm.kind(), ManagerKind::Eval);
    assert_eq!(dm.stages(), [Stage::Validate, Stage::Test]);
    assert_eq!(dm.config().stages, None, "the default is not written in");
    dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
    for stage in [Stage::Fit, Stage::Predict] {
        assert!(!dm
            .setup(stage, &setup_args(d.path(), 8, false, 0, 1))
            .unwrap());
        assert!(!dm.is_set_up(), "{stage:?} sets up nothing");
    }
    let e = dm.dataloader(LoaderType::Val).unwrap_err().to_string();
    assert!(e.contains("[Validate, Test]"), "{e}");
    assert!(dm
        .setup(Stage::Validate, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap());
    assert!(!dm
        .setup(Stage::Test, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap());
    assert_eq!(
        ids(&dm.dataloader(LoaderType::Test).unwrap()),
        (100..107).collect::<Vec<_>>()
    );

    // A fresh manager sets up for test too.
    let mut dm = build(eval("mem/raw/val", json!({}))).unwrap();
    assert!(dm
        .setup(Stage::Test, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap());

    // Explicit stages win; `null` is the default; `[]` never sets up.
    let dm = build(eval("mem/raw/val", json!({"stages": ["test"]}))).unwrap();
    assert_eq!(dm.stages(), [Stage::Test]);
    let dm = build(eval("mem/raw/val", json!({"stages": null}))).unwrap();
    assert_eq!(dm.stages(), [Stage::Validate, Stage::Test]);
    let mut dm = build(eval("mem/raw/val", json!({"stages": []}))).unwrap();
    for stage in Stage::ALL {
        assert!(!dm
            .setup(stage, &setup_args(d.path(), 8, false, 0, 1))
            .unwrap());
    }
    // The default manager's default is unchanged.
    let dm = build(json!({"full_name": "mem/raw/val"})).unwrap();
    assert_eq!(dm.stages(), [Stage::Fit, Stage::Validate]);
}

#[test]
fn stages_round_trip_losslessly() {
    for stages in [
        None,
        Some(json!([])),
        Some(json!(["test"])),
        Some(json!(["fit", "validate"])),
    ] {
        let mut v = eval("mem/raw/val", json!({}));
        if let Some(s) = &stages {
            v["stages"] = s.clone();
        }
        let c = DatasetManagerConfig::from_json(&v.to_string()).unwrap();
        let text = serde_json::to_string(&c).unwrap();
        let back = DatasetManagerConfig::from_json(&text).unwrap();
        assert_eq!(back, c);
        let written: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(written.get("stages"), stages.as_ref(), "{text}");
        assert_eq!(
            c.effective_stages(ManagerKind::Eval),
            stages.map_or(vec![Stage::Validate, Stage::Test], |s| {
                serde_json::from_value(s).unwrap()
            })
        );
    }
}

#[test]
fn eval_is_never_shuffled_and_has_no_train_loader() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = build(eval(
        "mem/raw/val",
        json!({"dataloader_kwargs": {"batch_size": 2, "shuffle": true}}),
    ))
    .unwrap();
    dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
    dm.setup(Stage::Validate, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap();
    for kind in [LoaderType::Val, LoaderType::Test, LoaderType::Predict] {
        let loader = dm.dataloader(kind).unwrap();
        for epoch in 0..3 {
            dm.set_epoch(epoch);
            assert_eq!(
                ids(&loader),
                (100..107).collect::<Vec<_>>(),
                "{kind:?} epoch {epoch}"
            );
        }
    }
    assert!(dm.warnings().iter().any(|w| w.contains("forced off")));
    let e = dm.dataloader(LoaderType::Train).unwrap_err().to_string();
    assert!(e.contains("EvalDatasetManager has no train loader"), "{e}");
    let e = dm
        .get_dataloader("train", false, 0, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no train loader"), "{e}");
}

#[test]
fn eval_ddp_split_is_distributed_sampler_with_padding() {
    let d = tempfile::tempdir().unwrap();
    // 7 rows (ids 100..=106) on 2 and 3 ranks, literal expectations first.
    let v = eval("mem/raw/val", json!({}));
    let expect: [(usize, Vec<Vec<i64>>); 2] = [
        (2, vec![vec![100, 102, 104, 106], vec![101, 103, 105, 100]]),
        (
            3,
            vec![
                vec![100, 103, 106],
                vec![101, 104, 100],
                vec![102, 105, 101],
            ],
        ),
    ];
    for (world, per_rank) in expect {
        let mut batches = Vec::new();
        for (rank, want) in per_rank.iter().enumerate() {
            for kind in [LoaderType::Val, LoaderType::Test, LoaderType::Predict] {
                let loader = rank_loader_for(&v, d.path(), Stage::Validate, kind, rank, world);
                assert_eq!(&ids(&loader), want, "world {world} rank {rank} {kind:?}");
                batches.push(loader.num_batches());
            }
        }
        assert!(
            batches.windows(2).all(|w| w[0] == w[1]),
            "equal batch counts: {batches:?}"
        );
    }
    // Against torch's algorithm, for fewer rows than ranks too (5 rows on 8).
    for (name, first, n) in [
        ("mem/raw/val", 100, 7),
        ("mem/raw/test", 200, 5),
        ("mem/raw/train", 0, 17),
    ] {
        for world in 1..=8 {
            let v = eval(name, json!({}));
            let mut counts = Vec::new();
            for rank in 0..world {
                let loader =
                    rank_loader_for(&v, d.path(), Stage::Test, LoaderType::Test, rank, world);
                let got = ids(&loader);
                let want: Vec<i64> = distributed_sampler(n, world, rank)
                    .into_iter()
                    .map(|i| first + i as i64)
                    .collect();
                assert_eq!(got, want, "{name} world {world} rank {rank}");
                counts.push((got.len(), loader.num_batches()));
            }
            assert!(
                counts.windows(2).all(|w| w[0] == w[1]),
                "{name} world {world}: {counts:?}"
            );
        }
    }
}

#[test]
fn eval_refuses_iterable_and_other_keys_xlm_core_does_not_take() {
    for (extra, key, says) in [
        (
            json!({"iterable_dataset_shards": 2}),
            "iterable_dataset_shards",
            "map-style",
        ),
        (
            json!({"shuffle_buffer_size": 8}),
            "shuffle_buffer_size",
            "map-style",
        ),
        (json!({"make_infinite": true}), "make_infinite", "map-style"),
        (
            json!({"ddp_remainder": "drop"}),
            "ddp_remainder",
            "DistributedSampler(shuffle=False)",
        ),
        (
            json!({"on_the_fly_processor": "identity"}),
            "on_the_fly_processor",
            "preprocess_function",
        ),
        (json!({"shuffle_seed": 7}), "shuffle_seed", "never shuffles"),
        (json!({"num_examples": 4}), "num_examples", "takes: "),
        (json!({"model_name": "mdlm"}), "model_name", "takes: "),
    ] {
        let e = build(eval("mem/raw/val", extra.clone())).unwrap_err();
        assert!(
            e.starts_with(&format!("{key}: EvalDatasetManager does not take it"))
                && e.contains(says),
            "{extra}: {e}"
        );
    }
    // Defaults written out, xlm-core's own keys and the cache switches are fine.
    build(eval(
        "mem/raw/val",
        json!({"ddp_remainder": "pad", "shuffle_seed": 42, "load_from_cache_file": false,
               "filter_fn": null, "columns_to_keep": null, "use_manual_cache": false,
               "rewrite_manual_cache": true, "preprocess_function": "identity"}),
    ))
    .unwrap();
}

#[test]
fn eval_without_manual_cache_writes_nothing_and_with_it_uses_the_cache() {
    let d = tempfile::tempdir().unwrap();
    let no_cache = d.path().join("none");
    let mut dm = build(eval("mem/raw/val", json!({"use_manual_cache": false}))).unwrap();
    dm.prepare_data(&prepare_args(&no_cache, false)).unwrap();
    dm.setup(Stage::Validate, &setup_args(&no_cache, 8, false, 0, 1))
        .unwrap();
    assert_eq!(ids(&dm.dataloader(LoaderType::Val).unwrap()).len(), 7);
    assert!(!no_cache.exists(), "xlm-core's behaviour: no manual cache");
    let cached = d.path().join("cache");
    let dm = build(eval("mem/raw/val", json!({}))).unwrap();
    dm.prepare_data(&prepare_args(&cached, false)).unwrap();
    assert!(xlm::cache::is_cache(&dm.cache_dir(&cached)));
}

#[test]
fn eval_fixture_builds_with_its_stages() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xlm_core/gsm8k_test_eval.yaml"),
    )
    .unwrap();
    let c = DatasetManagerConfig::from_yaml(&text).unwrap();
    let dm = DatasetManager::builder(c)
        .source(Arc::new(MemoryRegistry::new()))
        .build()
        .unwrap();
    assert_eq!(dm.kind(), ManagerKind::Eval);
    assert_eq!(dm.stages(), [Stage::Validate, Stage::Test]);
}

// ---------------------------------------------------------------- unconditional generation

#[test]
fn unconditional_every_rank_gets_all_examples() {
    let d = tempfile::tempdir().unwrap();
    for (n, batch, drop_last, batches) in [
        (16, 16, true, 1),
        (10, 4, true, 2),
        (10, 4, false, 3),
        (3, 4, true, 0),
        (0, 2, false, 0),
    ] {
        let v = unconditional(n, batch, drop_last, json!({}));
        for world in 1..=4 {
            for rank in 0..world {
                for kind in [LoaderType::Val, LoaderType::Test, LoaderType::Predict] {
                    let loader = rank_loader_for(&v, d.path(), Stage::Validate, kind, rank, world);
                    assert_eq!(
                        loader.num_batches(),
                        Some(batches),
                        "n {n} world {world} rank {rank}"
                    );
                    let got: Vec<_> = loader.iter().map(|b| b.unwrap()).collect();
                    assert_eq!(got.len() as u64, batches);
                    let samples: Vec<u64> = got.iter().flat_map(|b| b.samples.clone()).collect();
                    let full = (batches as usize) * batch;
                    let want: Vec<u64> = (0..n as u64)
                        .take(if drop_last { full } else { n })
                        .collect();
                    assert_eq!(samples, want, "every rank, in order, not split");
                    for b in &got {
                        assert!(b.ids.is_empty(), "DefaultEmptyDataset yields no ids");
                        for col in ["input_ids", "attention_mask", "token_type_ids"] {
                            assert_eq!(b.get(col).unwrap().shape, [b.len(), 0], "{col}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn unconditional_sets_up_for_every_stage_without_data_or_cache() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let v = unconditional(4, 2, true, json!({}));
    for stage in Stage::ALL {
        let mut dm = build(v.clone()).unwrap();
        assert_eq!(dm.kind(), ManagerKind::UnconditionalGeneration);
        assert_eq!(dm.stages(), Stage::ALL);
        assert!(dm
            .prepare_data(&prepare_args(&cache, true))
            .unwrap()
            .is_none());
        // No tokenizer needed for the empty text.
        assert!(
            dm.setup(stage, &SetupArgs::single(&cache)).unwrap(),
            "{stage:?}"
        );
        assert!(
            !dm.setup(stage, &SetupArgs::single(&cache)).unwrap(),
            "idempotent"
        );
        assert_eq!(dm.pipeline().unwrap().num_samples(), 4);
        let e = dm.dataloader(LoaderType::Train).unwrap_err().to_string();
        assert!(
            e.contains("UnconditionalGenerationDatasetManager has no train loader"),
            "{e}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn unconditional_config_errors_name_the_key() {
    let ilm = "xlm.lm.ilm.datamodule_ilm.ILMEmptyDataset";
    let e = build(unconditional(
        4,
        2,
        true,
        json!({"dataset_constructor_str": ilm}),
    ))
    .unwrap_err();
    assert!(
        e.contains("dataset_constructor_str")
            && e.contains(&format!("`{ilm}`"))
            && e.contains("xlm.datamodule.DefaultEmptyDataset"),
        "{e}"
    );
    let mut v = unconditional(4, 2, true, json!({}));
    v.as_object_mut().unwrap().remove("num_examples");
    let e = build(v).unwrap_err();
    assert!(e.starts_with("num_examples:"), "{e}");
    // An unset constructor is the default one.
    let mut v = unconditional(4, 2, true, json!({}));
    v.as_object_mut().unwrap().remove("dataset_constructor_str");
    build(v).unwrap();
    for (extra, key, says) in [
        (json!({"stages": ["validate"]}), "stages", "every stage"),
        (json!({"stages": []}), "stages", "every stage"),
        (
            json!({"full_name": "mem/raw/val"}),
            "full_name",
            "reads no data",
        ),
        (
            json!({"preprocess_function": "identity"}),
            "preprocess_function",
            "reads no data",
        ),
        (
            json!({"iterable_dataset_shards": 2}),
            "iterable_dataset_shards",
            "takes: ",
        ),
        (
            json!({"ddp_remainder": "drop"}),
            "ddp_remainder",
            "every rank",
        ),
    ] {
        let e = build(unconditional(4, 2, true, extra.clone())).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "{key}: UnconditionalGenerationDatasetManager does not take it"
            )) && e.contains(says),
            "{extra}: {e}"
        );
    }
    for (kwargs, key) in [
        (json!({"emptytext": ""}), "dataset_kwargs.emptytext"),
        (json!({"empty_text": 3}), "dataset_kwargs.empty_text"),
        (
            json!({"tokenizer_kwargs": {"add_special_tokens": true}}),
            "dataset_kwargs.tokenizer_kwargs.add_special_tokens",
        ),
        (
            json!({"tokenizer_kwargs": {"return_tensors": "pt"}}),
            "dataset_kwargs.tokenizer_kwargs.return_tensors",
        ),
        (
            json!({"tokenizer_kwargs": {"padding": "max_length"}}),
            "dataset_kwargs.tokenizer_kwargs.max_length",
        ),
    ] {
        let e = build(unconditional(4, 2, true, json!({"dataset_kwargs": kwargs}))).unwrap_err();
        assert!(e.starts_with(&format!("{key}:")), "{kwargs}: {e}");
    }
    // xlm-core's accepted-and-unused split_by_node, and the data module's
    // rewrite_manual_cache, are fine.
    build(unconditional(
        4,
        2,
        true,
        json!({"split_by_node": false, "rewrite_manual_cache": true}),
    ))
    .unwrap();
    // The unconditional keys belong to that kind only.
    let e = build(json!({"full_name": "mem/raw/val", "num_examples": 4})).unwrap_err();
    assert!(
        e.starts_with("num_examples: DatasetManager does not take it"),
        "{e}"
    );
}

#[test]
fn default_empty_dataset_encodes_empty_text_with_tokenizer_kwargs() {
    let tok = tokenizer();
    let pad = i64::from(tok.specials().pad.unwrap());
    let spec = |kw: Json| {
        let Json::Object(kw) = kw else { unreachable!() };
        EmptyDatasetSpec::from_kwargs(&kw).unwrap()
    };
    let e = spec(json!({})).example(None).unwrap();
    assert_eq!(
        e.names().collect::<Vec<_>>(),
        ["input_ids", "token_type_ids", "attention_mask"]
    );
    assert!(e.list("input_ids").unwrap().is_empty());
    let e = spec(json!({"empty_text": "w1 w2 w3", "tokenizer_kwargs": {"max_length": 5, "padding": "max_length"}}))
        .example(Some(tok.as_ref()))
        .unwrap();
    assert_eq!(e.list("input_ids").unwrap(), [8, 9, 10, pad, pad]);
    assert_eq!(e.list("attention_mask").unwrap(), [1, 1, 1, 0, 0]);
    assert_eq!(e.list("token_type_ids").unwrap(), [0; 5]);
    // max_length alone truncates (Hugging Face's default strategy).
    let e = spec(json!({"empty_text": "w1 w2 w3", "tokenizer_kwargs": {"max_length": 2}}))
        .example(Some(tok.as_ref()))
        .unwrap();
    assert_eq!(e.list("input_ids").unwrap(), [8, 9]);
    let e = spec(json!({"empty_text": "w1", "tokenizer_kwargs": {"return_token_type_ids": false, "return_attention_mask": false}}))
        .example(Some(tok.as_ref()))
        .unwrap();
    assert_eq!(e.names().collect::<Vec<_>>(), ["input_ids"]);
    let e = spec(json!({"empty_text": "w1"}))
        .example(None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty_text `w1` needs a tokenizer"), "{e}");

    // Through a manager: setup needs the tokenizer for a non-empty text.
    let d = tempfile::tempdir().unwrap();
    let v = unconditional(
        3,
        3,
        true,
        json!({"dataset_kwargs": {"empty_text": "w1 w2"}}),
    );
    let mut dm = build(v.clone()).unwrap();
    let e = dm
        .setup(Stage::Predict, &SetupArgs::single(d.path()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty_text `w1 w2`"), "{e}");
    let loader = rank_loader_for(&v, d.path(), Stage::Predict, LoaderType::Predict, 1, 2);
    let b = loader.iter().next().unwrap().unwrap();
    assert_eq!(b.get("input_ids").unwrap().data, [8, 9, 8, 9, 8, 9]);
}

#[test]
fn unconditional_fixture_yields_one_full_batch_on_every_rank() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/xlm_core/text_unconditional_prediction.yaml"),
    )
    .unwrap();
    let c = DatasetManagerConfig::from_yaml(&text).unwrap();
    let v = serde_json::to_value(&c).unwrap();
    let d = tempfile::tempdir().unwrap();
    for world in 1..=4 {
        for rank in 0..world {
            let loader =
                rank_loader_for(&v, d.path(), Stage::Validate, LoaderType::Val, rank, world);
            let batches: Vec<_> = loader.iter().map(|b| b.unwrap()).collect();
            assert_eq!(
                batches.len(),
                1,
                "num_examples = batch_size, drop_last: one batch"
            );
            assert_eq!(batches[0].len(), 16);
            assert_eq!(batches[0].get("input_ids").unwrap().shape, [16, 0]);
        }
    }
}

// ---------------------------------------------------------------- replicate_examples

fn replicated(copies: usize, extra: Json) -> Json {
    let mut v = json!({
        "full_name": "mem/raw/train",
        "collate_fn": "id_tracking",
        "dataloader_kwargs": {"batch_size": 4},
        "iterable_dataset_shards": 3,
        "on_the_fly_group_processor": "xlm.datamodule.replicate_examples",
        "on_the_fly_group_processor_kwargs": {"num_samples": copies},
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn replicate_examples_yields_each_row_n_times_in_place() {
    let d = tempfile::tempdir().unwrap();
    for copies in [1, 2, 3] {
        let want: Vec<i64> = (0..17)
            .flat_map(|i| std::iter::repeat_n(i, copies))
            .collect();
        let v = replicated(copies, json!({}));
        for kind in [LoaderType::Train, LoaderType::Val] {
            let loader = rank_loader_for(&v, d.path(), Stage::Fit, kind, 0, 1);
            assert_eq!(ids(&loader), want, "copies {copies} {kind:?}");
        }
        // Under DDP: equal batches per rank, and the ranks interleaved give
        // the replicated stream (the pad rule wraps the shortfall around).
        for world in 2..=4 {
            let per_rank: Vec<Vec<i64>> = (0..world)
                .map(|rank| {
                    ids(&rank_loader_for(
                        &v,
                        d.path(),
                        Stage::Fit,
                        LoaderType::Train,
                        rank,
                        world,
                    ))
                })
                .collect();
            let len = per_rank[0].len();
            assert!(
                per_rank.iter().all(|r| r.len() == len),
                "world {world}: {per_rank:?}"
            );
            assert_eq!(len, want.len().div_ceil(world));
            let interleaved: Vec<i64> = (0..len * world)
                .map(|p| per_rank[p % world][p / world])
                .collect();
            assert_eq!(interleaved[..want.len()], want[..], "world {world}");
        }
    }
    // After an on-the-fly filter: the kept rows, each repeated.
    let v = replicated(2, json!({"on_the_fly_filter_fn": "drop_first_example"}));
    let loader = rank_loader_for(&v, d.path(), Stage::Fit, LoaderType::Train, 0, 1);
    let want: Vec<i64> = (1..17).flat_map(|i| [i, i]).collect();
    assert_eq!(ids(&loader), want, "id 0 filtered out, the rest twice");
}

#[test]
fn replication_is_in_the_pipeline_fingerprint() {
    let d = tempfile::tempdir().unwrap();
    let fp = |v: Json| {
        rank_loader_for(&v, d.path(), Stage::Fit, LoaderType::Train, 0, 1)
            .state()
            .pipeline_fingerprint
    };
    let two = fp(replicated(2, json!({})));
    assert_eq!(two, fp(replicated(2, json!({}))));
    assert_ne!(two, fp(replicated(3, json!({}))));
    let mut plain = replicated(2, json!({}));
    plain
        .as_object_mut()
        .unwrap()
        .remove("on_the_fly_group_processor");
    plain
        .as_object_mut()
        .unwrap()
        .remove("on_the_fly_group_processor_kwargs");
    assert_ne!(two, fp(plain));
    // The kind is in it too: the same rows through an eval manager differ.
    let e = fp_eval(d.path());
    let mut default = eval("mem/raw/val", json!({}));
    default.as_object_mut().unwrap().remove("_target_");
    default["stages"] = json!(["validate"]);
    let dflt = rank_loader_for(&default, d.path(), Stage::Validate, LoaderType::Val, 0, 1)
        .state()
        .pipeline_fingerprint;
    assert_ne!(e, dflt);
}

fn fp_eval(dir: &Path) -> String {
    rank_loader_for(
        &eval("mem/raw/val", json!({})),
        dir,
        Stage::Validate,
        LoaderType::Val,
        0,
        1,
    )
    .state()
    .pipeline_fingerprint
}

#[test]
fn replicator_kwargs_are_checked_at_construction() {
    let e = build(replicated(0, json!({}))).unwrap_err();
    assert!(e.contains("num_samples"), "{e}");
    let mut v = replicated(2, json!({}));
    v["on_the_fly_group_processor_kwargs"] = json!({"num_sample": 2});
    let e = build(v).unwrap_err();
    assert!(e.contains("`num_sample`"), "{e}");
}

// ---------------------------------------------------------------- in a data module

#[test]
fn data_module_val_split_with_eval_and_unconditional_managers() {
    use xlm::datamodule::{Split, TextDataModule, TextDataModuleConfig};
    let d = tempfile::tempdir().unwrap();
    let config = json!({
        "_target_": "xlm.datamodule.TextDataModule",
        "manual_cache_dir": d.path(),
        "tokenizer": {"kind": "simple_space"},
        "block_size": 8,
        "dataset_managers": {
            "val": {
                "lm": eval("mem/raw/val", json!({})),
                "unconditional_prediction": unconditional(4, 4, true, json!({})),
            },
            "predict": {"unconditional_prediction": unconditional(4, 4, true, json!({}))},
        },
    });
    let config = TextDataModuleConfig::from_json(&config.to_string()).unwrap();
    for world in 1..=3 {
        let mut seen = Vec::new();
        for rank in 0..world {
            let mut dm = TextDataModule::new(config.clone()).unwrap();
            dm.prepare_data().unwrap();
            dm.setup(Stage::Validate, rank, world).unwrap();
            let val = dm.dataloaders(Split::Val).unwrap();
            let lm = ids(&val[0]);
            assert_eq!(lm.len(), 7usize.div_ceil(world), "world {world}");
            seen.extend(lm);
            let samples: Vec<u64> = batch_samples(&val[1]).concat();
            assert_eq!(samples, [0, 1, 2, 3], "every rank: all of them");
            // predict was never asked for, but unconditional managers set up anyway.
            assert_eq!(
                batch_samples(&dm.dataloaders(Split::Predict).unwrap()[0]).concat(),
                [0, 1, 2, 3]
            );
        }
        assert_eq!(
            seen.len(),
            7usize.div_ceil(world) * world,
            "padded to equal counts"
        );
        let mut distinct = sorted(&seen);
        distinct.dedup();
        assert_eq!(distinct, (100..107).collect::<Vec<_>>(), "world {world}");
    }
}

#[test]
fn huge_counts_are_errors_naming_the_key_and_memory_does_not_grow_with_num_examples() {
    let d = tempfile::tempdir().unwrap();
    let setup_err = |v: Json| {
        let mut dm = build(v).unwrap();
        dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
        dm.setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
            .unwrap_err()
            .to_string()
    };
    let e = setup_err(unconditional(1 << 41, 2, true, json!({})));
    assert!(
        e.contains("num_examples") && e.contains("out of range"),
        "{e}"
    );
    let e = setup_err(replicated(1 << 21, json!({})));
    assert!(e.contains("copies") && e.contains("out of range"), "{e}");
    // A million generated examples are one row repeated: set up at once.
    let mut dm = build(unconditional(1_000_000, 100_000, true, json!({}))).unwrap();
    dm.setup(Stage::Predict, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap();
    assert_eq!(dm.pipeline().unwrap().num_samples(), 1_000_000);
    let loader = dm.dataloader(LoaderType::Predict).unwrap();
    assert_eq!(loader.num_batches(), Some(10));
    let mut zero = build(unconditional(0, 2, false, json!({}))).unwrap();
    zero.setup(Stage::Predict, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap();
    assert_eq!(zero.pipeline().unwrap().num_samples(), 0);
}

#[test]
fn an_eval_filter_without_suffix_is_fine_when_nothing_is_cached() {
    let v = eval(
        "mem/raw/val",
        json!({"filter_fn": "drop_first_example", "use_manual_cache": false}),
    );
    build(v).unwrap();
    let v = eval("mem/raw/val", json!({"filter_fn": "drop_first_example"}));
    assert!(build(v).unwrap_err().contains("filter_suffix"));
}
