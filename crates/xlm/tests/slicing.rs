//! Hugging Face split slicing in `full_name` (`train[:-100000]`,
//! `train[:10%]`, `train[:2]+test[-1:]`), through a DatasetManager, for the
//! in-memory registry, local files and the Hub cache.
//!
//! Run: `cargo test -p xlm --test slicing`

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use xlm::data::Table;
use xlm::manager::DatasetManager;
use xlm::source::{synthetic_table, MemoryRegistry};

fn table_ids(t: &Table) -> Vec<i64> {
    t.rows().map(|e| e.unwrap().int("id").unwrap()).collect()
}

/// prepare_data (load) of `dm` into `dir`: the cached rows' ids.
fn prepared_ids(dm: &DatasetManager, dir: &Path) -> Vec<i64> {
    table_ids(&dm.prepare_data(&prepare_args(dir, true)).unwrap().unwrap())
}

fn build_err(overrides: serde_json::Value) -> String {
    DatasetManager::builder(config(overrides))
        .source(Arc::new(MemoryRegistry::builtin()))
        .build()
        .unwrap_err()
        .to_string()
}

#[test]
fn head_and_tail_slices_are_disjoint_cover_the_split_and_cache_apart() {
    let d = tempfile::tempdir().unwrap();
    let mut head = manager(json!({"full_name": "mem/raw_large/train[:-10]"}), None);
    let mut tail = manager(json!({"full_name": "mem/raw_large/train[-10:]"}), None);
    assert_eq!(head.full_name().split, "train");
    assert_eq!(head.full_name().to_string(), "mem/raw_large/train[:-10]");
    // The cache directory is the full name as written.
    let head_dir = d.path().join("mem").join("raw_large").join("train[:-10]");
    let tail_dir = d.path().join("mem").join("raw_large").join("train[-10:]");
    assert_eq!(head.cache_dir(d.path()), head_dir);
    assert_eq!(tail.cache_dir(d.path()), tail_dir);

    let h = prepared_ids(&head, d.path());
    let t = prepared_ids(&tail, d.path());
    assert_eq!(h, (1000..1050).collect::<Vec<_>>());
    assert_eq!(t, (1050..1060).collect::<Vec<_>>());
    assert!(h.iter().all(|id| !t.contains(id)), "disjoint");
    let mut all = [h, t].concat();
    all.sort();
    assert_eq!(all, (1000..1060).collect::<Vec<_>>(), "together: the split");
    assert!(head_dir.join("manifest.json").exists());
    assert!(tail_dir.join("manifest.json").exists());
    assert!(!d.path().join("mem/raw_large/train").exists());

    // The loaders see exactly their slice.
    ready(&mut head, d.path());
    ready(&mut tail, d.path());
    let seen =
        |dm: &mut DatasetManager| sorted(&ids(&dm.get_dataloader("train", false, 0, 1).unwrap()));
    assert_eq!(seen(&mut head), (1000..1050).collect::<Vec<_>>());
    assert_eq!(seen(&mut tail), (1050..1060).collect::<Vec<_>>());
}

#[test]
fn a_cached_slice_is_found_again_and_the_whole_split_is_separate() {
    let d = tempfile::tempdir().unwrap();
    let head = manager(json!({"full_name": "mem/raw/train[:5]"}), None);
    assert_eq!(prepared_ids(&head, d.path()), [0, 1, 2, 3, 4]);
    // Second prepare: the cache is there (load returns it).
    assert_eq!(prepared_ids(&head, d.path()), [0, 1, 2, 3, 4]);
    let whole = manager(json!({"full_name": "mem/raw/train"}), None);
    assert_eq!(prepared_ids(&whole, d.path()).len(), 17);
    // Without the manual cache, the slice is applied as well.
    let uncached = manager(
        json!({"full_name": "mem/raw/train[-3:]", "use_manual_cache": false}),
        None,
    );
    assert_eq!(prepared_ids(&uncached, d.path()), [14, 15, 16]);
}

#[test]
fn percent_slices_round_half_to_even() {
    let reg = Arc::new(MemoryRegistry::builtin());
    reg.insert("mem/p15/train", synthetic_table((0..15).map(|i| (i, 6))));
    reg.insert("mem/p25/train", synthetic_table((0..25).map(|i| (i, 6))));
    let d = tempfile::tempdir().unwrap();
    for (name, want) in [
        // 50% of 5 is 2 (2.5 -> 2), 10% of 15 is 2 (1.5 -> 2), 10% of 25 is 2 (2.5 -> 2).
        ("mem/raw/test[:50%]", vec![200, 201]),
        ("mem/raw/test[50%:]", vec![202, 203, 204]),
        ("mem/p15/train[:10%]", vec![0, 1]),
        ("mem/p25/train[:10%]", vec![0, 1]),
        ("mem/p25/train[-10%:]", vec![23, 24]),
        // One `%` makes both bounds percentages: 40%..60% of 5 = 2..3.
        ("mem/raw/test[40:60%]", vec![202]),
    ] {
        let dm = manager(json!({ "full_name": name }), Some(reg.clone()));
        assert_eq!(prepared_ids(&dm, d.path()), want, "{name}");
    }
}

#[test]
fn plus_concatenates_slices_of_one_or_several_splits() {
    let d = tempfile::tempdir().unwrap();
    let dm = manager(
        json!({"full_name": "mem/raw/train[:2] + test[-1:]+train[1_5:]"}),
        None,
    );
    assert_eq!(prepared_ids(&dm, d.path()), [0, 1, 204, 15, 16]);
    assert!(d
        .path()
        .join("mem/raw/train[:2] + test[-1:]+train[1_5:]/manifest.json")
        .exists());
}

#[test]
fn sliced_local_jsonl_and_csv_through_data_files() {
    let d = tempfile::tempdir().unwrap();
    let rows = |ids: std::ops::Range<i64>| -> String {
        ids.map(|i| format!("{{\"id\": {i}, \"token_ids\": [7, 8, {i}]}}\n"))
            .collect()
    };
    let train = d.path().join("train.jsonl");
    let test = d.path().join("test.jsonl");
    std::fs::write(&train, rows(0..20)).unwrap();
    std::fs::write(&test, rows(100..104)).unwrap();
    let csv = d.path().join("train.csv");
    std::fs::write(
        &csv,
        format!(
            "id,token_ids\n{}",
            (0..20)
                .map(|i| format!("{i},\"[7, 8]\"\n"))
                .collect::<String>()
        ),
    )
    .unwrap();
    let cache = d.path().join("cache");
    for (full_name, ds_type, files, want) in [
        (
            "local/toy/train[5:-5]",
            "jsonl",
            json!({"train": &train, "test": &test}),
            (5..15).collect::<Vec<i64>>(),
        ),
        (
            "local/toy/train[-25%:]",
            "jsonl",
            json!({"train": &train, "test": &test}),
            (15..20).collect(),
        ),
        (
            "local/toy/train[:2]+test[-1:]",
            "jsonl",
            json!({"train": &train, "test": &test}),
            vec![0, 1, 103],
        ),
        (
            "local/two/train[18:22]",
            "jsonl",
            json!([&train, &test]),
            vec![18, 19, 100, 101],
        ),
        (
            "local/csv/train[:-18]",
            "csv",
            json!({ "train": &csv }),
            vec![0, 1],
        ),
    ] {
        let dm = DatasetManager::new(config(json!({
            "full_name": full_name, "ds_type": ds_type, "data_files": files,
        })))
        .unwrap();
        assert_eq!(prepared_ids(&dm, &cache), want, "{full_name}");
        assert!(
            cache.join(full_name).join("manifest.json").exists(),
            "{full_name}"
        );
    }
    // A split the per-split data_files lack is still named.
    let dm = DatasetManager::new(config(json!({
        "full_name": "local/toy/validation[:5]", "ds_type": "jsonl", "data_files": {"train": &train},
    })))
    .unwrap();
    let e = dm
        .prepare_data(&prepare_args(&cache, false))
        .unwrap_err()
        .to_string();
    assert!(e.contains("split `validation`"), "{e}");
}

#[test]
fn slicing_works_with_the_filter_suffix_cache_dir_and_setup() {
    let d = tempfile::tempdir().unwrap();
    // The filter (drops id 0) runs on the sliced rows.
    let mut dm = manager(
        json!({"full_name": "mem/raw/train[:5]", "filter_fn": "drop_first_example", "filter_suffix": "f"}),
        None,
    );
    assert_eq!(
        dm.cache_dir(d.path()),
        d.path().join("mem").join("raw_f").join("train[:5]")
    );
    ready(&mut dm, d.path());
    let seen = ids(&dm.get_dataloader("train", false, 0, 1).unwrap());
    assert_eq!(sorted(&seen), [1, 2, 3, 4]);
}

#[test]
fn empty_reversed_and_malformed_slices_are_errors() {
    let d = tempfile::tempdir().unwrap();
    // An empty result names the instruction (and what it resolved to).
    for (name, detail) in [
        ("mem/raw/train[17:]", "`train[17:]` is rows 17..17 of 17"),
        ("mem/raw/train[:-17]", "`train[:-17]` is rows 0..0 of 17"),
        ("mem/raw/test[:5%]", "`test[:5%]` is rows 0..0 of 5"),
    ] {
        let dm = manager(json!({ "full_name": name }), None);
        let e = dm
            .prepare_data(&prepare_args(d.path(), false))
            .unwrap_err()
            .to_string();
        let instruction = name.trim_start_matches("mem/raw/");
        assert!(
            e.contains(&format!(
                "split instruction `{instruction}` selects no rows"
            )) && e.contains(detail),
            "{e}"
        );
        assert!(!dm.cache_dir(d.path()).join("manifest.json").exists());
    }
    // from > to: at construction when the bounds have one sign, at prepare
    // once resolved otherwise (-5 of 17 is 12, after 10).
    let e = build_err(json!({"full_name": "mem/raw/train[10:5]"}));
    assert!(
        e.contains("full_name `mem/raw/train[10:5]`") && e.contains("after the end"),
        "{e}"
    );
    let dm = manager(json!({"full_name": "mem/raw/train[-5:10]"}), None);
    let e = dm
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mem/raw/train[-5:10]") && e.contains("12..10"),
        "{e}"
    );
    // Malformed slices name the full name, before any I/O.
    for name in [
        "mem/raw/train[5]",
        "mem/raw/train[:x]",
        "mem/raw/train[:5",
        "mem/raw/train[:200%]",
        "mem/raw/train[:5]+",
    ] {
        let e = build_err(json!({ "full_name": name }));
        assert!(e.contains(&format!("full_name `{name}`")), "{e}");
    }
    // train_test_split always splits the whole train split.
    let e = build_err(json!({"full_name": "mem/raw/train[:10]",
        "train_test_split": {"size": 0.2, "seed": 1, "split": "train"}}));
    assert!(
        e.contains("train_test_split") && e.contains("train[:10]"),
        "{e}"
    );
}

/// Slicing a Hub split whose rows span a jsonl and a parquet file, from an
/// offline hub cache.
#[cfg(all(feature = "hub", feature = "parquet"))]
#[test]
fn hub_splits_slice_across_jsonl_and_parquet_files() {
    use xlm::source::HubSource;
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("hub/datasets--org--toy");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "c0ffee").unwrap();
    let snap = repo.join("snapshots/c0ffee/data");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(
        snap.join("train-00000-of-00002.jsonl"),
        (0..3)
            .map(|i| format!("{{\"id\": {i}}}\n"))
            .collect::<String>(),
    )
    .unwrap();
    write_parquet_ids(&snap.join("train-00001-of-00002.parquet"), &[3, 4, 5, 6]);
    let hub = Arc::new(HubSource::new(d.path().join("hub"), true));
    for (name, want) in [
        ("org/toy/train[2:-2]", vec![2, 3, 4]),
        ("org/toy/train[-3:]", vec![4, 5, 6]),
        ("org/toy/train[:50%]", vec![0, 1, 2, 3]), // 3.5 -> 4
        ("org/toy/train[:1]+train[-1:]", vec![0, 6]),
    ] {
        let dm = DatasetManager::builder(config(json!({ "full_name": name })))
            .source(hub.clone())
            .build()
            .unwrap();
        assert_eq!(prepared_ids(&dm, &d.path().join("cache")), want, "{name}");
    }
}

#[cfg(all(feature = "hub", feature = "parquet"))]
fn write_parquet_ids(path: &Path, ids: &[i64]) {
    use parquet::data_type::Int64Type;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type("message schema { REQUIRED INT64 id; }")
            .unwrap(),
    );
    let mut w = SerializedFileWriter::new(
        std::fs::File::create(path).unwrap(),
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<Int64Type>()
        .write_batch(ids, None, None)
        .unwrap();
    col.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();
}
