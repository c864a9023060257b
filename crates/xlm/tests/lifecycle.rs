//! Tier 2, the lifecycle: prepare -> setup -> dataloader -> iterate, end to
//! end in one process, with the cache on disk.
//!
//! Run: `cargo nextest run --test lifecycle`

mod common;

use common::*;
use serde_json::json;
use xlm::manager::{DatasetManager, LoaderType, Stage};
use xlm::tokenizer::TokenizerConfig;

#[test]
fn map_style_lifecycle_sees_every_id() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"dataloader_kwargs": {"batch_size": 4, "num_workers": 2}}),
        None,
    );
    dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
    assert!(d.path().join("mem/raw/train/manifest.json").exists());
    dm.setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap();
    let loader = dm.get_dataloader("train", false, 0, 1).unwrap();
    assert_eq!(loader.num_batches(), Some(5));
    let batches: Vec<_> = loader.iter().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 5);
    for (i, b) in batches.iter().enumerate() {
        let rows = if i < 4 { 4 } else { 1 };
        assert_eq!(b.get("token_ids").unwrap().shape, [rows, 6]);
    }
    let all: Vec<i64> = batches.iter().flat_map(|b| b.ids.clone()).collect();
    assert_eq!(sorted(&all), (0..17).collect::<Vec<_>>());
}

#[test]
fn iterable_lifecycle_sees_every_id() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = manager(
        json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "shuffle_buffer_size": 16,
               "preprocess_function": "example_to_input_ids", "columns_to_remove": ["text"],
               "dataloader_kwargs": {"batch_size": 4, "num_workers": 1, "drop_last": true}}),
        None,
    );
    dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
    dm.setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
        .unwrap();
    let loader = dm.get_dataloader("train", false, 0, 1).unwrap();
    let batches: Vec<_> = loader.iter().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 15);
    assert!(batches
        .iter()
        .all(|b| b.get("input_ids").unwrap().shape == [4, 6]));
    let all: Vec<i64> = batches.iter().flat_map(|b| b.ids.clone()).collect();
    assert_eq!(sorted(&all), (1000..1060).collect::<Vec<_>>());
}

#[test]
fn local_jsonl_and_csv_with_a_tokenizer_json() {
    let d = tempfile::tempdir().unwrap();
    let tok = d.path().join("tokenizer.json");
    std::fs::write(
        &tok,
        json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "unk_token": "[UNK]",
                      "vocab": {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2, "[BOS]": 3, "a": 4, "b": 5, "c": 6}}
        })
        .to_string(),
    )
    .unwrap();
    let tokenizer = TokenizerConfig::TokenizerJson { path: tok }
        .build()
        .unwrap();
    let jsonl = d.path().join("train.jsonl");
    std::fs::write(
        &jsonl,
        (0..9)
            .map(|i| format!("{{\"id\": {i}, \"text\": \"a b c a\"}}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let csv = d.path().join("train.csv");
    std::fs::write(
        &csv,
        format!(
            "id,text\n{}",
            (0..9).map(|i| format!("{i},a b c a\n")).collect::<String>()
        ),
    )
    .unwrap();
    for (ds_type, file) in [("jsonl", &jsonl), ("csv", &csv)] {
        let cache = d.path().join(format!("cache-{ds_type}"));
        let mut dm = DatasetManager::new(config(json!({
            "full_name": "local/toy/train", "ds_type": ds_type, "data_files": {"train": file},
            "preprocess_function": "tokenize", "columns_to_remove": ["text"],
            "iterable_dataset_shards": 2,
            "on_the_fly_group_processor": "pack_sequences",
            "on_the_fly_group_processor_kwargs": {"block_size": 5, "drop_last": true},
            "collate_fn": "default", "dataloader_kwargs": {"batch_size": 2}
        })))
        .unwrap();
        let mut prep = prepare_args(&cache, false);
        prep.tokenizer = Some(tokenizer.clone());
        dm.prepare_data(&prep).unwrap();
        let mut s = setup_args(&cache, 5, false, 0, 1);
        s.tokenizer = Some(tokenizer.clone());
        dm.setup(Stage::Fit, &s).unwrap();
        let loader = dm.get_dataloader("train", false, 0, 1).unwrap();
        let first = loader.iter().next().unwrap().unwrap();
        // "a b c a" + [EOS] = 5 tokens: exactly one row per block.
        assert_eq!(
            first.get("input_ids").unwrap().row(0),
            [4, 5, 6, 4, 2],
            "{ds_type}"
        );
        let blocks: usize = loader.iter().map(|b| b.unwrap().len()).sum();
        assert_eq!(blocks, 9, "{ds_type}");
    }
}

#[test]
fn packing_rows_with_string_ids_neither_panics_nor_invents_source_ids() {
    // Hugging Face data often has string ids ("a1"): the packer must treat
    // them as "no source id", not read them as integers.
    let d = tempfile::tempdir().unwrap();
    let jsonl = d.path().join("train.jsonl");
    std::fs::write(
        &jsonl,
        (0..9)
            .map(|i| format!("{{\"id\": \"r{i}\", \"token_ids\": [5, 6, 7, {i}]}}\n"))
            .collect::<String>(),
    )
    .unwrap();
    for (group, kwargs) in [
        (
            "pack_sequences",
            json!({"block_size": 4, "drop_last": false, "eos_id": 2}),
        ),
        ("pack_with_id", json!({"block_size": 4, "drop_last": false})),
    ] {
        let cache = d.path().join(format!("cache-{group}"));
        let mut dm = DatasetManager::new(config(json!({
            "full_name": "local/strid/train", "ds_type": "jsonl", "data_files": {"train": &jsonl},
            "iterable_dataset_shards": 2,
            "on_the_fly_group_processor": group,
            "on_the_fly_group_processor_kwargs": kwargs,
            "collate_fn": "default", "dataloader_kwargs": {"batch_size": 2, "num_workers": 1}
        })))
        .unwrap();
        dm.prepare_data(&prepare_args(&cache, false)).unwrap();
        dm.setup(Stage::Fit, &setup_args(&cache, 4, false, 0, 1))
            .unwrap();
        let loader = dm.dataloader(LoaderType::Train).unwrap();
        let mut blocks = 0;
        for b in loader.iter() {
            let b = b.unwrap_or_else(|e| panic!("{group}: {e}"));
            blocks += b.len();
            if let Some(src) = b.get("source_ids") {
                assert!(src.data.iter().all(|&x| x == -1), "{group}: {src:?}");
            }
        }
        assert!(blocks > 0, "{group}");
    }
}
