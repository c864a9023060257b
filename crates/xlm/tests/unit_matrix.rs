//! Tier 1, the single-method matrix: every branch of DatasetManager
//! construction, prepare_data, setup and get_dataloader, in one process.
//!
//! Run: `cargo nextest run --test unit_matrix`

mod common;

use common::*;
use serde_json::json;
use std::sync::Arc;
use xlm::data::{Example, Value};
use xlm::manager::{ConfigError, DatasetManager, DatasetManagerConfig, LoaderType, Stage};
use xlm::registry::{ProcessError, Registry};
use xlm::source::{synthetic_table, MemoryRegistry};

fn build_err(overrides: serde_json::Value) -> String {
    DatasetManager::new(config(overrides))
        .unwrap_err()
        .to_string()
}

// ---------------------------------------------------------------- construction

#[test]
fn filter_fn_without_suffix_is_rejected() {
    let e = DatasetManager::new(config(json!({"filter_fn": "drop_first_example"}))).unwrap_err();
    assert!(matches!(e, ConfigError::FilterWithoutSuffix(_)), "{e}");
    assert!(e.to_string().contains("filter_suffix"));
}

#[test]
fn group_processor_without_shards_is_rejected() {
    let e = DatasetManager::new(config(
        json!({"on_the_fly_group_processor": "pack_sequences"}),
    ))
    .unwrap_err();
    assert!(matches!(e, ConfigError::GroupWithoutShards(_)), "{e}");
}

#[test]
fn processor_and_group_processor_together_are_rejected() {
    let e = DatasetManager::new(config(json!({
        "on_the_fly_processor": "identity",
        "on_the_fly_group_processor": "pack_sequences",
        "iterable_dataset_shards": 2
    })))
    .unwrap_err();
    assert!(matches!(e, ConfigError::ProcessorAndGroup(..)), "{e}");
}

#[test]
fn make_infinite_without_shards_is_rejected() {
    let e = DatasetManager::new(config(json!({"make_infinite": true}))).unwrap_err();
    assert!(matches!(e, ConfigError::InfiniteWithoutShards), "{e}");
}

#[test]
fn unknown_keys_functions_and_kwargs_are_named() {
    let e = DatasetManagerConfig::from_json(r#"{"full_name": "mem/raw/train", "shufle_seed": 3}"#)
        .unwrap_err();
    assert!(e.to_string().contains("shufle_seed"), "{e}");
    let e = DatasetManagerConfig::from_json(
        r#"{"full_name": "mem/raw/train", "dataloader_kwargs": {"batchsize": 3}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("batchsize"), "{e}");
    let e = build_err(json!({"on_the_fly_processor": "nope"}));
    assert!(
        e.contains("on_the_fly_processor")
            && e.contains("`nope`")
            && e.contains("example_to_input_ids"),
        "{e}"
    );
    let e = build_err(
        json!({"on_the_fly_processor": "example_to_input_ids", "on_the_fly_processor_kwargs": {"blok": 3}}),
    );
    assert!(e.contains("`blok`") && e.contains("block_size"), "{e}");
    let e = build_err(json!({"collate_fn": "stack"}));
    assert!(e.contains("collate_fn") && e.contains("id_tracking"), "{e}");
}

#[test]
fn bad_full_name_and_debug_overfit_without_debug_name_are_rejected() {
    let e = build_err(json!({"full_name": "mem/raw"}));
    assert!(e.contains("2 path segment"), "{e}");
    let e = build_err(json!({"debug_overfit": true}));
    assert!(e.contains("full_name_debug"), "{e}");
    let e = build_err(json!({"dataloader_kwargs": {"batch_size": 0}}));
    assert!(e.contains("batch_size"), "{e}");
}

#[test]
fn config_round_trips_through_json() {
    let c = config(json!({
        "iterable_dataset_shards": 4, "shuffle_buffer_size": 8, "stages": ["fit", "test"],
        "train_test_split": {"size": 0.25, "split": "test"}, "ddp_remainder": "drop",
        "on_the_fly_group_processor": "pack_sequences",
        "on_the_fly_group_processor_kwargs": {"block_size": 8, "use_bos": true}
    }));
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(DatasetManagerConfig::from_json(&text).unwrap(), c);
}

// ---------------------------------------------------------------- prepare_data

#[test]
fn prepare_without_cache_writes_and_returns_it() {
    let d = tempfile::tempdir().unwrap();
    let dm = manager(json!({}), None);
    let t = dm
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap()
        .expect("returned");
    assert_eq!(t.len(), 17);
    let dir = d.path().join("mem/raw/train");
    assert_eq!(dm.cache_dir(d.path()), dir);
    assert!(xlm::cache::is_cache(&dir));
    xlm::cache::verify(&dir).unwrap();
}

#[test]
fn prepare_with_cache_returns_it_only_when_load() {
    let d = tempfile::tempdir().unwrap();
    let dm = manager(json!({}), None);
    dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
    assert!(dm
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap()
        .is_none());
    let t = dm
        .prepare_data(&prepare_args(d.path(), true))
        .unwrap()
        .unwrap();
    assert_eq!(
        t.rows()
            .map(|e| e.unwrap().int("id").unwrap())
            .collect::<Vec<_>>(),
        (0..17).collect::<Vec<_>>()
    );
}

#[test]
fn rewrite_picks_up_a_changed_registry_entry() {
    let d = tempfile::tempdir().unwrap();
    let reg = Arc::new(MemoryRegistry::builtin());
    manager(json!({}), Some(reg.clone()))
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap();
    reg.insert("mem/raw/train", synthetic_table((500..503).map(|i| (i, 6))));
    let kept = manager(json!({}), Some(reg.clone()))
        .prepare_data(&prepare_args(d.path(), true))
        .unwrap()
        .unwrap();
    assert_eq!(kept.len(), 17, "without rewrite the old cache stays");
    let fresh = manager(json!({"rewrite_manual_cache": true}), Some(reg))
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap()
        .unwrap();
    assert_eq!(
        fresh
            .rows()
            .map(|e| e.unwrap().int("id").unwrap())
            .collect::<Vec<_>>(),
        [500, 501, 502]
    );
    assert_eq!(
        xlm::cache::open(&d.path().join("mem/raw/train"))
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn no_manual_cache_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let dm = manager(json!({"use_manual_cache": false}), None);
    let t = dm
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap()
        .unwrap();
    assert_eq!(t.len(), 17);
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    // setup still works, straight from the source.
    let mut dm = dm;
    assert!(dm
        .setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap());
    assert_eq!(
        sorted(&ids(&dm.get_dataloader("train", false, 0, 1).unwrap())),
        (0..17).collect::<Vec<_>>()
    );
}

#[test]
fn filter_drops_rows_and_uses_the_suffixed_cache_dir() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"filter_fn": "drop_first_example", "filter_suffix": "no0"}),
        None,
    );
    assert_eq!(dm.cache_dir(d.path()), d.path().join("mem/raw_no0/train"));
    ready(&mut dm, d.path());
    assert!(xlm::cache::is_cache(&d.path().join("mem/raw_no0/train")));
    let got = sorted(&ids(&dm.get_dataloader("val", false, 0, 1).unwrap()));
    assert_eq!(got, (1..17).collect::<Vec<_>>());
    let reg = Arc::new(MemoryRegistry::new());
    reg.insert("org/ds/cfg/train", synthetic_table((0..3).map(|i| (i, 2))));
    let dm = manager(
        json!({"full_name": "org/ds/cfg/train", "filter_fn": "drop_first_example", "filter_suffix": "f"}),
        Some(reg),
    );
    assert_eq!(dm.cache_dir(d.path()), d.path().join("org/ds_cfg_f/train"));
}

#[test]
fn train_test_split_sides_are_disjoint_complements_and_deterministic() {
    let d = tempfile::tempdir().unwrap();
    let side = |split: &str, name: &str, seed: u64| {
        let dm = manager(
            json!({"full_name": name, "train_test_split": {"size": 0.2, "seed": seed, "split": split}}),
            None,
        );
        let t = dm
            .prepare_data(&prepare_args(d.path(), true))
            .unwrap()
            .unwrap();
        t.rows()
            .map(|e| e.unwrap().int("id").unwrap())
            .collect::<Vec<_>>()
    };
    let train = side("train", "mem/raw_large/train", 1);
    let test = side("test", "mem/raw_large/test", 1);
    assert_eq!(test.len(), 12);
    assert_eq!(train.len(), 48);
    let mut all = [train.clone(), test.clone()].concat();
    all.sort();
    assert_eq!(all, (1000..1060).collect::<Vec<_>>());
    let d2 = tempfile::tempdir().unwrap();
    let again = manager(json!({"full_name": "mem/raw_large/test", "train_test_split": {"size": 0.2, "seed": 1, "split": "test"}}), None)
        .prepare_data(&prepare_args(d2.path(), true))
        .unwrap()
        .unwrap();
    assert_eq!(
        again
            .rows()
            .map(|e| e.unwrap().int("id").unwrap())
            .collect::<Vec<_>>(),
        test
    );
    let other_seed = manager(json!({"full_name": "mem/raw_large/test", "use_manual_cache": false, "train_test_split": {"size": 12, "seed": 2, "split": "test"}}), None)
        .prepare_data(&prepare_args(d2.path(), true))
        .unwrap()
        .unwrap();
    assert_ne!(
        sorted(
            &other_seed
                .rows()
                .map(|e| e.unwrap().int("id").unwrap())
                .collect::<Vec<_>>()
        ),
        sorted(&test)
    );
}

#[test]
fn debug_overfit_holdout_loads_from_the_train_partition_cache() {
    let d = tempfile::tempdir().unwrap();
    let split = |s: &str| json!({"size": 0.2, "seed": 3, "split": s});
    let mut train = manager(
        json!({"full_name": "mem/raw_large/train", "train_test_split": split("train")}),
        None,
    );
    ready(&mut train, d.path());
    let mut holdout = manager(
        json!({"full_name": "mem/raw_large/test", "full_name_debug": "mem/raw_large/train",
               "debug_overfit": true, "train_test_split": split("test"), "stages": ["validate"]}),
        None,
    );
    assert_eq!(holdout.cache_dir(d.path()), train.cache_dir(d.path()));
    holdout
        .setup(Stage::Validate, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap();
    let got = sorted(&ids(&holdout.get_dataloader("val", false, 0, 1).unwrap()));
    let want = sorted(&ids(&train.get_dataloader("val", false, 0, 1).unwrap()));
    assert_eq!(got, want);
    assert_eq!(got.len(), 48);
    // Debug-overfit train loaders are sequential.
    let mut dbg = manager(
        json!({"full_name": "mem/raw/val", "full_name_debug": "mem/raw/train", "debug_overfit": true}),
        None,
    );
    ready(&mut dbg, d.path());
    assert_eq!(
        ids(&dbg.get_dataloader("train", false, 0, 1).unwrap()),
        (0..17).collect::<Vec<_>>()
    );
}

// ------------------------------------------------- column rules (xlm-core's remove_columns)
//
// xlm-core runs `ds.map(preprocess_function, remove_columns=R)`: the output row
// is the input row minus R, updated with the function's returned columns. R is
// "input columns not in columns_to_keep" plus columns_to_remove; without a
// preprocess function neither list applies. On-the-fly processors merge too.

fn column_names(t: &xlm::data::Table) -> Vec<String> {
    t.schema().into_iter().map(|s| s.name).collect()
}

fn prepared_columns(overrides: serde_json::Value) -> Vec<String> {
    let d = tempfile::tempdir().unwrap();
    let t = manager(overrides, None)
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap()
        .unwrap();
    column_names(&t)
}

#[test]
fn canonical_config_keeps_the_preprocess_outputs_and_the_ids() {
    // The seed's canonical config: example_to_input_ids + columns_to_keep: ["id"],
    // id_tracking collator, batch 4 (the `config` defaults).
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"preprocess_function": "example_to_input_ids", "columns_to_keep": ["id"]}),
        None,
    );
    let t = dm
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap()
        .unwrap();
    assert_eq!(
        column_names(&t),
        ["id", "input_ids", "attention_mask", "token_type_ids"]
    );
    dm.setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap();
    for kind in ["train", "val"] {
        let batches: Vec<_> = dm
            .get_dataloader(kind, false, 0, 1)
            .unwrap()
            .iter()
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(batches.len(), 5, "17 rows in batches of 4");
        for b in &batches {
            let rows = b.ids.len();
            assert!(rows == 4 || (rows == 1 && b == batches.last().unwrap()));
            for col in ["input_ids", "attention_mask", "token_type_ids"] {
                assert_eq!(b.get(col).unwrap().shape, [rows, 6], "{kind}: {col}");
            }
            assert!(b
                .get("attention_mask")
                .unwrap()
                .data
                .iter()
                .all(|&x| x == 1));
            assert!(b.get("token_ids").is_none() && b.get("text").is_none());
        }
        let all: Vec<i64> = batches.iter().flat_map(|b| b.ids.clone()).collect();
        assert_eq!(sorted(&all), (0..17).collect::<Vec<_>>());
    }
}

#[test]
fn columns_to_remove_drops_only_those_inputs_and_a_missing_one_is_named() {
    assert_eq!(
        prepared_columns(
            json!({"preprocess_function": "example_to_input_ids", "columns_to_remove": ["text"]})
        ),
        [
            "id",
            "token_ids",
            "input_ids",
            "attention_mask",
            "token_type_ids"
        ]
    );
    assert_eq!(
        prepared_columns(json!({"preprocess_function": "example_to_input_ids",
                                "columns_to_remove": ["text", "token_ids"]})),
        ["id", "input_ids", "attention_mask", "token_type_ids"]
    );
    // Both lists: the union of what each drops.
    assert_eq!(
        prepared_columns(json!({"preprocess_function": "example_to_input_ids",
                                "columns_to_keep": ["id", "token_ids"], "columns_to_remove": ["id"]})),
        ["token_ids", "input_ids", "attention_mask", "token_type_ids"]
    );
    let d = tempfile::tempdir().unwrap();
    let e = manager(
        json!({"preprocess_function": "example_to_input_ids", "columns_to_remove": ["token_ids", "nope"]}),
        None,
    )
    .prepare_data(&prepare_args(d.path(), false))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("columns_to_remove") && e.contains("`nope`"),
        "{e}"
    );
}

#[test]
fn columns_to_keep_may_name_a_missing_column() {
    assert_eq!(
        prepared_columns(json!({"preprocess_function": "example_to_input_ids",
                                "columns_to_keep": ["id", "nope"]})),
        ["id", "input_ids", "attention_mask", "token_type_ids"]
    );
    // An empty list keeps everything (xlm-core tests `if columns_to_keep:`).
    assert_eq!(
        prepared_columns(json!({"preprocess_function": "identity", "columns_to_keep": []})),
        ["id", "token_ids", "text"]
    );
}

#[test]
fn column_lists_without_a_preprocess_function_are_ignored_with_a_warning() {
    for lists in [
        json!({"columns_to_keep": ["id"]}),
        json!({"columns_to_remove": ["nope"]}),
        json!({"columns_to_keep": ["id"], "columns_to_remove": ["text"]}),
    ] {
        let d = tempfile::tempdir().unwrap();
        let mut dm = manager(lists.clone(), None);
        let warned: Vec<_> = dm
            .warnings()
            .iter()
            .filter(|w| w.contains("preprocess_function") && w.contains("ignored"))
            .collect();
        assert_eq!(warned.len(), 1, "{lists}: {:?}", dm.warnings());
        for key in lists.as_object().unwrap().keys() {
            assert!(warned[0].contains(key.as_str()), "{}", warned[0]);
        }
        let t = dm
            .prepare_data(&prepare_args(d.path(), false))
            .unwrap()
            .unwrap();
        assert_eq!(column_names(&t), ["id", "token_ids", "text"], "{lists}");
        dm.setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
            .unwrap();
        let b = dm
            .get_dataloader("val", false, 0, 1)
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(b.get("token_ids").unwrap().shape, [4, 6]);
        assert_eq!(dm.warnings().len(), 1, "warned once: {:?}", dm.warnings());
    }
    assert!(manager(
        json!({"preprocess_function": "identity", "columns_to_keep": ["id"]}),
        None
    )
    .warnings()
    .is_empty());
}

#[test]
fn on_the_fly_processors_merge_their_outputs_into_the_example() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"on_the_fly_processor": "token_ids_to_input_ids", "dataloader_kwargs": {"batch_size": 4}}),
        None,
    );
    ready(&mut dm, d.path());
    let batches: Vec<_> = dm
        .get_dataloader("val", false, 0, 1)
        .unwrap()
        .iter()
        .map(|b| b.unwrap())
        .collect();
    for b in &batches {
        let toks = b.get("token_ids").expect("token_ids stays in place");
        assert_eq!(b.get("input_ids").unwrap(), toks);
        assert_eq!(toks.shape[1], 6);
    }
    assert_eq!(
        batches
            .iter()
            .flat_map(|b| b.ids.clone())
            .collect::<Vec<_>>(),
        (0..17).collect::<Vec<_>>()
    );
    // A user processor returns only its new column; the rest (ids too) stays.
    let mut reg = Registry::builtin();
    reg.register_processor(
        "doubled",
        Arc::new(
            |e: &Example, _: &xlm::registry::Ctx, _: &xlm::registry::Kwargs| {
                let toks = e
                    .list("token_ids")
                    .map_err(|x| ProcessError::failed("doubled", x))?;
                Ok(Example::new()
                    .with("doubled", Value::List(toks.iter().map(|t| 2 * t).collect())))
            },
        ),
        Some(vec![]),
    );
    let mut dm = DatasetManager::builder(config(json!({"on_the_fly_processor": "doubled"})))
        .registry(Arc::new(reg))
        .build()
        .unwrap();
    ready(&mut dm, d.path());
    let b = dm
        .get_dataloader("val", false, 0, 1)
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(b.ids, [0, 1, 2, 3]);
    let toks = b.get("token_ids").unwrap();
    let doubled = b.get("doubled").unwrap();
    assert_eq!(doubled.shape, toks.shape);
    assert!(doubled
        .data
        .iter()
        .zip(&toks.data)
        .all(|(d, t)| *d == 2 * t));
}

// ---------------------------------------------------------------- setup

#[test]
fn setup_map_style_yields_every_row_once_shuffled() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({}), None);
    ready(&mut dm, d.path());
    assert!(!dm.is_iterable());
    let got = ids(&dm.get_dataloader("train", false, 0, 1).unwrap());
    assert_eq!(sorted(&got), (0..17).collect::<Vec<_>>());
    assert_ne!(got, (0..17).collect::<Vec<_>>(), "random sampler shuffles");
}

#[test]
fn setup_iterable_uses_contiguous_balanced_shards() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({"iterable_dataset_shards": 4}), None);
    ready(&mut dm, d.path());
    assert!(dm.is_iterable());
    assert_eq!(
        dm.pipeline().unwrap().shard_sizes().unwrap().as_slice(),
        [5, 4, 4, 4]
    );
    assert_eq!(
        ids(&dm.get_dataloader("train", false, 0, 1).unwrap()),
        (0..17).collect::<Vec<_>>()
    );
}

#[test]
fn shuffle_buffer_and_seed_shuffle_the_stream() {
    let d = tempfile::tempdir().unwrap();
    let run = |seed: u64| {
        let mut dm = manager(
            json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "shuffle_buffer_size": 16, "shuffle_seed": seed}),
            None,
        );
        ready(&mut dm, d.path());
        ids(&dm.get_dataloader("train", false, 0, 1).unwrap())
    };
    let a = run(7);
    assert_eq!(sorted(&a), (1000..1060).collect::<Vec<_>>());
    assert_ne!(a, (1000..1060).collect::<Vec<_>>());
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
}

#[test]
fn on_the_fly_filter_and_processor_apply_at_setup() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"on_the_fly_filter_fn": "drop_first_example", "on_the_fly_processor": "example_to_input_ids",
               "on_the_fly_processor_kwargs": {"block_size": 4}}),
        None,
    );
    ready(&mut dm, d.path());
    let loader = dm.get_dataloader("val", false, 0, 1).unwrap();
    let batches: Vec<_> = loader.iter().map(|b| b.unwrap()).collect();
    assert_eq!(
        sorted(
            &batches
                .iter()
                .flat_map(|b| b.ids.clone())
                .collect::<Vec<_>>()
        ),
        (1..17).collect::<Vec<_>>()
    );
    for b in &batches {
        assert_eq!(b.get("input_ids").unwrap().shape[1], 4);
        assert!(b
            .get("attention_mask")
            .unwrap()
            .data
            .iter()
            .all(|&x| x == 1));
        // The processor's outputs are merged into the example: `token_ids` stays.
        assert_eq!(b.get("token_ids").unwrap().shape[1], 6);
    }
}

#[test]
fn group_processor_packs_blocks() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"full_name": "mem/raw_varlen/train", "iterable_dataset_shards": 4, "collate_fn": "default",
               "on_the_fly_group_processor": "pack_sequences",
               "on_the_fly_group_processor_kwargs": {"drop_last": true, "use_bos": true},
               "on_the_fly_group_processor_remove_columns": ["token_ids", "text"],
               "dataloader_kwargs": {"batch_size": 1}}),
        None,
    );
    ready(&mut dm, d.path());
    let loader = dm.get_dataloader("train", false, 0, 1).unwrap();
    let batches: Vec<_> = loader.iter().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 16);
    for b in &batches {
        assert_eq!(b.get("input_ids").unwrap().shape, [1, 8]);
    }
    // Every shard's stream is a multiple of 8 here, so no marker is dropped.
    let all: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.get("input_ids").unwrap().data.clone())
        .collect();
    assert_eq!(all.iter().filter(|&&t| t == 3).count(), 16);
    assert_eq!(all.iter().filter(|&&t| t == 4).count(), 16);
    // Block 0 of shard 0: [BOS] row0 (4 tokens) [EOS] [BOS] first token of row 1.
    let first = &batches[0].get("input_ids").unwrap().data;
    assert_eq!((first[0], first[5], first[6]), (4, 3, 4));
}

#[test]
fn pack_with_id_records_source_ids() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"iterable_dataset_shards": 1, "collate_fn": "default",
               "on_the_fly_group_processor": "pack_with_id",
               "on_the_fly_group_processor_kwargs": {"block_size": 12}}),
        None,
    );
    ready(&mut dm, d.path());
    let b: Vec<_> = dm
        .get_dataloader("train", false, 0, 1)
        .unwrap()
        .iter()
        .map(|b| b.unwrap())
        .collect();
    let src: Vec<i64> = b
        .iter()
        .flat_map(|b| b.get("source_ids").unwrap().data.clone())
        .collect();
    // 17 rows x 6 tokens = 102 = 8 blocks of 12 + 6 dropped: rows 0..=15, each 6 times.
    assert_eq!(src.len(), 96);
    assert_eq!(src, (0..16).flat_map(|i| [i; 6]).collect::<Vec<_>>());
}

#[test]
fn world_size_one_ddp_is_not_split() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({"iterable_dataset_shards": 3}), None);
    ready(&mut dm, d.path());
    assert_eq!(
        ids(&dm.get_dataloader("train", true, 0, 1).unwrap()).len(),
        17
    );
}

#[test]
fn setup_skips_other_stages_and_is_idempotent() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({"stages": ["fit"]}), None);
    dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
    assert!(!dm
        .setup(Stage::Test, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap());
    assert!(!dm.is_set_up());
    let e = dm
        .get_dataloader("train", false, 0, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("before setup"), "{e}");
    assert!(dm
        .setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap());
    let p = dm.pipeline().unwrap().clone();
    assert!(!dm
        .setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap());
    assert!(Arc::ptr_eq(&p, dm.pipeline().unwrap()));
}

#[test]
fn setup_without_a_cache_says_to_prepare() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({}), None);
    let e = dm
        .setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not an xlm cache") && e.contains("prepare_data"),
        "{e}"
    );
}

// ---------------------------------------------------------------- get_dataloader

#[test]
fn train_ddp_iterable_drops_shuffle_with_a_warning_and_splits() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "dataloader_kwargs": {"batch_size": 4, "shuffle": true}}),
        None,
    );
    ready(&mut dm, d.path());
    let r0 = ids(&rank_loader(&mut dm, d.path(), "train", 0, 2));
    assert!(
        dm.warnings()
            .iter()
            .any(|w| w.contains("shuffle is ignored")),
        "{:?}",
        dm.warnings()
    );
    let r1 = ids(&rank_loader(&mut dm, d.path(), "train", 1, 2));
    assert_eq!(r0.len(), 30);
    assert_eq!(r1.len(), 30);
    assert_eq!(sorted(&[r0, r1].concat()), (1000..1060).collect::<Vec<_>>());
}

#[test]
fn train_ddp_map_style_is_a_distributed_sampler() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({"dataloader_kwargs": {"batch_size": 3}}), None);
    ready(&mut dm, d.path());
    let per: Vec<Vec<i64>> = (0..2)
        .map(|r| ids(&rank_loader(&mut dm, d.path(), "train", r, 2)))
        .collect();
    assert_eq!(per[0].len(), 9);
    assert_eq!(per[1].len(), 9);
    let all = [per[0].clone(), per[1].clone()].concat();
    let mut uniq = sorted(&all);
    uniq.dedup();
    assert_eq!(
        uniq,
        (0..17).collect::<Vec<_>>(),
        "pad by wrap-around: every id, one repeated"
    );
    let mut dm = manager(json!({"ddp_remainder": "drop"}), None);
    ready(&mut dm, d.path());
    let n: Vec<usize> = (0..2)
        .map(|r| ids(&rank_loader(&mut dm, d.path(), "train", r, 2)).len())
        .collect();
    assert_eq!(n, [8, 8]);
}

#[test]
fn train_single_process_map_style_sampler_modes() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"dataloader_kwargs": {"batch_size": 4, "shuffle": false}}),
        None,
    );
    ready(&mut dm, d.path());
    assert_eq!(
        ids(&dm.get_dataloader("train", false, 0, 1).unwrap()),
        (0..17).collect::<Vec<_>>()
    );
}

#[test]
fn eval_loaders_are_never_shuffled() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"full_name": "mem/raw/val", "dataloader_kwargs": {"batch_size": 2, "shuffle": true}}),
        None,
    );
    ready(&mut dm, d.path());
    for kind in ["val", "test", "predict"] {
        assert_eq!(
            ids(&dm.get_dataloader(kind, false, 0, 1).unwrap()),
            (100..107).collect::<Vec<_>>()
        );
    }
    assert!(dm.warnings().iter().any(|w| w.contains("forced off")));
    let mut it = manager(
        json!({"full_name": "mem/raw/val", "iterable_dataset_shards": 2, "shuffle_buffer_size": 4}),
        None,
    );
    ready(&mut it, d.path());
    assert_eq!(
        ids(&it.get_dataloader("val", false, 0, 1).unwrap()),
        (100..107).collect::<Vec<_>>()
    );
}

#[test]
fn invalid_loader_type_is_named() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({}), None);
    ready(&mut dm, d.path());
    let e = dm
        .get_dataloader("training", false, 0, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`training`"), "{e}");
    let e = dm
        .get_dataloader("train", true, 2, 2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("rank 2"), "{e}");
}

#[test]
fn set_epoch_reshuffles_and_without_it_epochs_repeat() {
    let d = tempfile::tempdir().unwrap();
    for cfg in [
        json!({}),
        json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "shuffle_buffer_size": 16}),
    ] {
        let mut dm = manager(cfg, None);
        ready(&mut dm, d.path());
        let loader = dm.get_dataloader("train", false, 0, 1).unwrap();
        let e0 = ids(&loader);
        assert_eq!(ids(&loader), e0, "same epoch, same order");
        dm.set_epoch(1);
        let e1 = ids(&loader);
        assert_ne!(e0, e1);
        assert_eq!(sorted(&e0), sorted(&e1));
        dm.set_epoch(0);
        assert_eq!(ids(&loader), e0);
    }
}

#[test]
fn make_infinite_keeps_going() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"iterable_dataset_shards": 2, "make_infinite": true}),
        None,
    );
    ready(&mut dm, d.path());
    let loader = rank_loader(&mut dm, d.path(), "train", 1, 2);
    assert_eq!(loader.num_batches(), None);
    let got: Vec<i64> = loader
        .iter()
        .take(12)
        .flat_map(|b| b.unwrap().ids)
        .collect();
    assert_eq!(got.len(), 48);
    assert!(got.iter().all(|i| (0..17).contains(i)));
}

#[test]
fn padding_collators_from_config() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"full_name": "mem/raw_varlen/train", "preprocess_function": "example_to_input_ids",
                                "collate_fn": "pad_truncate", "collate_fn_kwargs": {"block_size": 5}}),
        None,
    );
    ready(&mut dm, d.path());
    for b in dm.get_dataloader("val", false, 0, 1).unwrap().iter() {
        let b = b.unwrap();
        assert_eq!(b.get("input_ids").unwrap().shape[1], 5);
        assert_eq!(b.ids.len(), b.get("input_ids").unwrap().shape[0]);
    }
    let mut dm = manager(
        json!({"full_name": "mem/raw_varlen/train", "preprocess_function": "example_to_input_ids",
                                "collate_fn": "dynamic_padding", "rewrite_manual_cache": true,
                                "dataloader_kwargs": {"batch_size": 16}}),
        None,
    );
    ready(&mut dm, d.path());
    let b = dm
        .get_dataloader("val", false, 0, 1)
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(b.get("input_ids").unwrap().shape, [16, 10]);
    assert_eq!(
        b.get("token_type_ids").unwrap().row(0),
        [0, 0, 0, 0, 2, 2, 2, 2, 2, 2]
    );
}

#[test]
fn worker_count_does_not_change_batches() {
    let d = tempfile::tempdir().unwrap();
    let run = |workers: usize| {
        let mut dm = manager(
            json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "shuffle_buffer_size": 8,
                                    "dataloader_kwargs": {"batch_size": 3, "num_workers": workers, "prefetch_factor": 1}}),
            None,
        );
        ready(&mut dm, d.path());
        batch_ids(&rank_loader(&mut dm, d.path(), "train", 1, 2))
    };
    let base = run(0);
    for w in 1..=4 {
        assert_eq!(run(w), base, "{w} workers");
    }
}

#[test]
fn worker_errors_arrive_as_errors() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::builtin();
    reg.register_processor(
        "fail_on_5",
        Arc::new(
            |e: &Example, _: &xlm::registry::Ctx, _: &xlm::registry::Kwargs| {
                if e.int("id")
                    .map_err(|x| ProcessError::failed("fail_on_5", x))?
                    == 5
                {
                    return Err(ProcessError::failed("fail_on_5", "row 5 is poisoned"));
                }
                Ok(Example::new().with("seen", Value::Int(1)))
            },
        ),
        Some(vec![]),
    );
    for workers in [0, 2] {
        let mut dm = DatasetManager::builder(config(json!({"on_the_fly_processor": "fail_on_5", "dataloader_kwargs": {"batch_size": 2, "num_workers": workers}})))
            .registry(Arc::new(reg.clone()))
            .build()
            .unwrap();
        ready(&mut dm, d.path());
        let loader = dm.get_dataloader("val", false, 0, 1).unwrap();
        let items: Vec<_> = loader.iter().collect();
        assert_eq!(
            items.len(),
            3,
            "two good batches then the error, then the iterator ends"
        );
        let e = items[2].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("batch 2") && e.contains("poisoned") && e.contains("sample 5"),
            "{e}"
        );
    }
}

#[test]
fn fast_collation_matches_example_collation() {
    use xlm::loader::SampleReader;
    let d = tempfile::tempdir().unwrap();
    let packed = |group: &str, collate: &str, kw: serde_json::Value| {
        let mut gkw = json!({"block_size": 7, "drop_last": false});
        if group == "pack_sequences" {
            gkw["use_bos"] = json!(true);
        }
        json!({"full_name": "mem/raw_varlen/train", "iterable_dataset_shards": 3, "collate_fn": collate, "collate_fn_kwargs": kw,
               "on_the_fly_group_processor": group, "on_the_fly_group_processor_kwargs": gkw,
               "dataloader_kwargs": {"batch_size": 3}})
    };
    let rows = |name: &str, collate: &str, kw: serde_json::Value| json!({"full_name": name, "collate_fn": collate, "collate_fn_kwargs": kw, "dataloader_kwargs": {"batch_size": 3}});
    let configs = vec![
        rows("mem/raw/train", "default", json!({})),
        rows("mem/raw/train", "id_tracking", json!({})),
        rows(
            "mem/raw_varlen/train",
            "pad_truncate",
            json!({"block_size": 5, "pad_id": 9}),
        ),
        rows("mem/raw_varlen/train", "dynamic_padding", json!({})),
        packed("pack_sequences", "default", json!({})),
        packed("pack_with_id", "default", json!({})),
        packed("pack_sequences", "pad_truncate", json!({"block_size": 5})),
        packed("pack_with_id", "pad_truncate", json!({"block_size": 10})),
        packed("pack_sequences", "dynamic_padding", json!({})),
    ];
    for cfg in configs {
        let mut dm = manager(cfg.clone(), None);
        ready(&mut dm, d.path());
        let pipeline = dm.pipeline().unwrap().clone();
        let loader = dm.get_dataloader("train", false, 0, 1).unwrap();
        let registry = xlm::registry::Registry::builtin();
        let resolved = dm.config().resolved_collator().unwrap();
        let (c, kw) = (&resolved.name, &resolved.kwargs);
        let ctx = xlm::registry::Ctx {
            tokenizer: Some(tokenizer()),
            block_size: Some(8),
        };
        let collator = registry.collator("collate_fn", c, kw).unwrap()(kw, &ctx).unwrap();
        let mut n = 0;
        for b in loader.iter() {
            let fast = b.unwrap();
            let examples: Vec<_> = fast
                .samples
                .iter()
                .map(|&s| pipeline.read(s).unwrap())
                .collect();
            let mut slow = collator.collate(&examples).unwrap();
            slow.samples = fast.samples.clone();
            assert_eq!(fast, slow, "{cfg}");
            n += 1;
        }
        assert!(n > 0);
    }
}

#[test]
fn yaml_configs_mean_the_same_as_json() {
    let yaml = "full_name: mem/raw_large/train\niterable_dataset_shards: 4\nshuffle_buffer_size: 16\nstages: [fit, validate]\non_the_fly_group_processor: pack_sequences\non_the_fly_group_processor_kwargs:\n  block_size: 8\n  use_bos: true\ndataloader_kwargs:\n  batch_size: 2\n  num_workers: 1\n";
    let from_yaml = DatasetManagerConfig::from_yaml(yaml).unwrap();
    let from_json = DatasetManagerConfig::from_json(
        r#"{"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "shuffle_buffer_size": 16,
            "stages": ["fit", "validate"], "on_the_fly_group_processor": "pack_sequences",
            "on_the_fly_group_processor_kwargs": {"block_size": 8, "use_bos": true},
            "dataloader_kwargs": {"batch_size": 2, "num_workers": 1}}"#,
    )
    .unwrap();
    assert_eq!(from_yaml, from_json);
    let e =
        DatasetManagerConfig::from_yaml("full_name: mem/raw/train\nshufle_seed: 1\n").unwrap_err();
    assert!(e.to_string().contains("shufle_seed"), "{e}");
}

#[test]
fn a_panicking_worker_is_named() {
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::builtin();
    reg.register_processor(
        "panic_on_5",
        Arc::new(
            |e: &Example, _: &xlm::registry::Ctx, _: &xlm::registry::Kwargs| {
                if e.int("id").ok() == Some(5) {
                    panic!("row 5 blew up");
                }
                Ok(Example::new())
            },
        ),
        Some(vec![]),
    );
    let mut dm = DatasetManager::builder(config(json!({"on_the_fly_processor": "panic_on_5", "dataloader_kwargs": {"batch_size": 2, "num_workers": 2}})))
        .registry(Arc::new(reg))
        .build()
        .unwrap();
    ready(&mut dm, d.path());
    let loader = dm.dataloader(LoaderType::Val).unwrap();
    let items: Vec<_> = loader.iter().collect();
    let e = items
        .iter()
        .find_map(|i| i.as_ref().err())
        .expect("the panic surfaces as an error")
        .to_string();
    assert!(
        e.contains("worker thread `xlm-val-worker-0`") && e.contains("row 5 blew up"),
        "{e}"
    );
    assert!(items.last().unwrap().is_err(), "nothing after the failure");
}

// ---------------------------------------------------------------- embedding API

#[test]
fn setup_remembers_the_rank_and_get_dataloader_must_agree() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({"dataloader_kwargs": {"batch_size": 3}}), None);
    let e = dm.dataloader(LoaderType::Train).unwrap_err().to_string();
    assert!(e.contains("setup"), "a loader before setup: {e}");
    dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
    dm.setup(Stage::Fit, &setup_args(d.path(), 8, true, 1, 2))
        .unwrap();
    let typed = ids(&dm.dataloader(LoaderType::Train).unwrap());
    let compat = ids(&dm.get_dataloader("train", true, 1, 2).unwrap());
    assert_eq!(typed, compat);
    assert_eq!(typed.len(), 9);
    for (is_ddp, rank, world) in [(true, 0, 2), (true, 1, 3), (false, 0, 1)] {
        let e = dm
            .get_dataloader("train", is_ddp, rank, world)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("setup was given is_ddp=true, rank=1, world_size=2")
                && e.contains(&format!("rank={rank}, world_size={world}")),
            "{e}"
        );
    }
}

#[test]
fn setup_rejects_a_rank_outside_the_world() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(json!({}), None);
    dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
    for (rank, world) in [(0, 0), (2, 2), (5, 1)] {
        let e = dm
            .setup(Stage::Fit, &setup_args(d.path(), 8, true, rank, world))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("rank {rank} is not below world_size {world}")),
            "{e}"
        );
    }
}

#[test]
fn out_of_range_loader_options_name_the_key() {
    for (kw, key) in [
        (json!({"batch_size": 0}), "dataloader_kwargs.batch_size"),
        (
            json!({"prefetch_factor": 0}),
            "dataloader_kwargs.prefetch_factor",
        ),
        (
            json!({"num_workers": 5000}),
            "dataloader_kwargs.num_workers",
        ),
    ] {
        let e = build_err(json!({ "dataloader_kwargs": kw }));
        assert!(e.contains(key), "{key}: {e}");
    }
    use xlm::loader::{LoaderError, LoaderOptions};
    let ok = LoaderOptions {
        batch_size: 2,
        drop_last: false,
        num_workers: 0,
        prefetch: 2,
    };
    assert!(ok.validate().is_ok());
    for (bad, key) in [
        (
            LoaderOptions {
                batch_size: 0,
                ..ok
            },
            "batch_size",
        ),
        (LoaderOptions { prefetch: 0, ..ok }, "prefetch_factor"),
        (
            LoaderOptions {
                num_workers: 1025,
                ..ok
            },
            "num_workers",
        ),
    ] {
        match bad.validate() {
            Err(LoaderError::Invalid { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: {other:?}"),
        }
    }
}

#[test]
fn plans_with_no_ranks_or_a_rank_outside_are_errors_not_panics() {
    use xlm::plan::{OrderKind, PlanError, PlanSpec, Remainder};
    let plan = PlanSpec {
        num_samples: 10,
        order: OrderKind::Permuted,
        seed: 1,
        world_size: 0,
        rank: 0,
        remainder: Remainder::Pad,
        infinite: false,
        start: 0,
    };
    assert_eq!(plan.validate(), Err(PlanError::ZeroWorld));
    assert!(plan.stream(0).is_err());
    assert_eq!(plan.num_batches(0, false), Some(10), "no division by zero");
    let plan = PlanSpec {
        world_size: 2,
        rank: 2,
        ..plan
    };
    assert!(plan.stream(0).unwrap_err().to_string().contains("rank = 2"));
    let shards = PlanSpec {
        rank: 0,
        order: OrderKind::Stream {
            shard_sizes: Arc::new(vec![3, 3]),
            shuffle_buffer: None,
        },
        ..plan
    };
    assert!(shards
        .validate()
        .unwrap_err()
        .to_string()
        .contains("add up to 6"));
}
