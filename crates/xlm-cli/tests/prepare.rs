//! Prepare at scale: parallel, streamed, deterministic; the Hugging Face
//! Hub source offline against a hub cache built here; `xlm prepare` and
//! `xlm inspect`.
//!
//! Run: `cargo nextest run --test prepare`

#[path = "../../xlm/tests/common/mod.rs"]
mod common;
mod harness;

use common::*;
use harness::{run_command, xlm_bin};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use xlm::manager::{DatasetManager, PrepareArgs};
use xlm::source::HubSource;

fn text_rows(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\": {i}, \"text\": \"w{} w{} w{}\"}}\n",
                i % 50,
                (i * 7) % 50,
                (i * 13) % 50
            )
        })
        .collect()
}

fn cache_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn parallel_prepare_is_byte_identical_for_any_thread_count() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("train.jsonl");
    std::fs::write(&data, text_rows(20_000)).unwrap();
    let mut caches = Vec::new();
    for threads in [1usize, 2, 3] {
        let out = d.path().join(format!("cache{threads}"));
        let dm = DatasetManager::new(config(json!({
            "full_name": "local/toy/train", "ds_type": "jsonl", "data_files": data,
            "preprocess_function": "tokenize", "columns_to_remove": ["text"], "filter_fn": "drop_first_example", "filter_suffix": "f"
        })))
        .unwrap();
        let t = dm
            .prepare_data(&PrepareArgs {
                manual_cache_dir: out.clone(),
                tokenizer: Some(tokenizer()),
                num_proc: Some(threads),
                load: true,
                progress: None,
            })
            .unwrap()
            .unwrap();
        assert_eq!(t.len(), 19_999);
        assert_eq!(t.row(0).int("id").unwrap(), 1);
        assert_eq!(
            t.row(19_998).list("token_ids").unwrap(),
            [
                7 + 19_999 % 50,
                7 + (19_999 * 7) % 50,
                7 + (19_999 * 13) % 50
            ]
        );
        caches.push(cache_files(&dm.cache_dir(&out)));
    }
    assert!(
        caches.windows(2).all(|w| w[0] == w[1]),
        "caches differ between thread counts"
    );
    assert!(caches[0].iter().any(|(n, _)| n == "manifest.json"));
}

/// A hub cache as huggingface_hub lays it out: refs/main -> snapshot dir.
fn hub_cache(root: &Path) -> PathBuf {
    let repo = root.join("hub/datasets--org--toy");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "c0ffee0123").unwrap();
    let snap = repo.join("snapshots/c0ffee0123");
    std::fs::create_dir_all(snap.join("data")).unwrap();
    std::fs::write(
        snap.join("data/train-00000-of-00002.jsonl"),
        (0..3)
            .map(|i| format!("{{\"id\": {i}, \"text\": \"w1 w2\"}}\n"))
            .collect::<String>(),
    )
    .unwrap();
    write_parquet(
        &snap.join("data/train-00001-of-00002.parquet"),
        &[(3, "w3 w4 w5"), (4, "w6")],
    );
    std::fs::write(
        snap.join("data/test-00000-of-00001.jsonl"),
        "{\"id\": 100, \"text\": \"w9\"}\n",
    )
    .unwrap();
    std::fs::write(snap.join("README.md"), "# toy\n").unwrap();
    root.join("hub")
}

fn write_parquet(path: &Path, rows: &[(i64, &str)]) {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(
            "message schema { REQUIRED INT64 id; REQUIRED BINARY text (UTF8); }",
        )
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
        .write_batch(&rows.iter().map(|r| r.0).collect::<Vec<_>>(), None, None)
        .unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<ByteArrayType>()
        .write_batch(
            &rows
                .iter()
                .map(|r| ByteArray::from(r.1))
                .collect::<Vec<_>>(),
            None,
            None,
        )
        .unwrap();
    col.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();
}

#[test]
fn hub_source_reads_jsonl_and_parquet_splits_from_the_cache_offline() {
    let d = tempfile::tempdir().unwrap();
    let hub = hub_cache(d.path());
    let source = Arc::new(HubSource::new(hub.clone(), true));
    let cfg = |split: &str| {
        config(
            json!({"full_name": format!("org/toy/{split}"), "preprocess_function": "tokenize", "columns_to_remove": ["text"]}),
        )
    };
    let dm = DatasetManager::builder(cfg("train"))
        .source(source.clone())
        .build()
        .unwrap();
    let t = dm
        .prepare_data(&prepare_args(&d.path().join("cache"), true))
        .unwrap()
        .unwrap();
    let ids: Vec<i64> = t.rows().map(|e| e.int("id").unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4], "jsonl shard, then parquet shard");
    assert_eq!(t.row(3).list("token_ids").unwrap(), [10, 11, 12]);
    let dm = DatasetManager::builder(cfg("test"))
        .source(source.clone())
        .build()
        .unwrap();
    assert_eq!(
        dm.prepare_data(&prepare_args(&d.path().join("cache"), true))
            .unwrap()
            .unwrap()
            .len(),
        1
    );
    // Not in the cache, offline: a clear error, no network.
    let dm = DatasetManager::builder(config(json!({"full_name": "org/missing/train"})))
        .source(source)
        .build()
        .unwrap();
    let e = dm
        .prepare_data(&prepare_args(&d.path().join("cache"), false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not in the hub cache")
            && e.contains("HF_HUB_OFFLINE")
            && e.contains(&hub.display().to_string()),
        "{e}"
    );
}

#[test]
fn prepare_cli_uses_hf_home_offline_and_inspect_reports_the_cache() {
    let d = tempfile::tempdir().unwrap();
    hub_cache(d.path());
    let cfg = d.path().join("prepare.json");
    let cache = d.path().join("cache");
    std::fs::write(
        &cfg,
        json!({"dsm_kwargs": {"full_name": "org/toy/train", "preprocess_function": "tokenize", "columns_to_remove": ["text"]},
               "manual_cache_dir": cache, "num_proc": 2})
        .to_string(),
    )
    .unwrap();
    let mut c = Command::new(xlm_bin());
    c.args(["prepare", "--config"])
        .arg(&cfg)
        .env("HF_HOME", d.path())
        .env("HF_HUB_OFFLINE", "1");
    let out = run_command(c, Duration::from_secs(60));
    assert!(out.status.unwrap().success(), "{out:?}");
    assert!(out.stdout.contains("5 rows, 10 tokens"), "{out:?}");

    let mut c = Command::new(xlm_bin());
    c.args(["inspect", "--simple-vocab", "--verify", "--examples", "2"])
        .arg(cache.join("org/toy/train"));
    let out = run_command(c, Duration::from_secs(60));
    assert!(out.status.unwrap().success(), "{out:?}");
    assert!(
        out.stdout.contains("rows: 5") && out.stdout.contains("checksums verified"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("token_ids") && out.stdout.contains("\"w1 w2\""),
        "{out:?}"
    );

    let t = xlm::cache::open(&cache.join("org/toy/train")).unwrap();
    let s = xlm_cli::inspect::summarize(&t, 1, None);
    let tok = s.columns.iter().find(|c| c.name == "token_ids").unwrap();
    assert_eq!(
        (
            tok.elements,
            tok.min_len,
            tok.max_len,
            tok.min_value,
            tok.max_value
        ),
        (10, Some(1), Some(3), Some(8), Some(13))
    );
    assert_eq!(s.examples.len(), 1);

    // The same config as YAML.
    let yaml = d.path().join("prepare.yaml");
    std::fs::write(
        &yaml,
        format!(
            "dsm_kwargs:\n  full_name: org/toy/test\n  preprocess_function: tokenize\n  columns_to_remove: [text]\nmanual_cache_dir: {}\n",
            cache.display()
        ),
    )
    .unwrap();
    let mut c = Command::new(xlm_bin());
    c.args(["prepare", "--config"])
        .arg(&yaml)
        .env("HF_HOME", d.path())
        .env("HF_HUB_OFFLINE", "1");
    let out = run_command(c, Duration::from_secs(60));
    assert!(
        out.status.unwrap().success() && out.stdout.contains("1 rows, 1 tokens"),
        "{out:?}"
    );

    // Broken inputs are named.
    let mut c = Command::new(xlm_bin());
    c.args(["inspect"]).arg(d.path());
    let out = run_command(c, Duration::from_secs(60));
    assert!(
        !out.status.unwrap().success() && out.stderr.contains("not an xlm cache"),
        "{out:?}"
    );
    std::fs::write(&cfg, "{\"dsm_kwargs\": {}}").unwrap();
    let mut c = Command::new(xlm_bin());
    c.args(["prepare", "--config"]).arg(&cfg);
    let out = run_command(c, Duration::from_secs(60));
    assert!(
        !out.status.unwrap().success() && out.stderr.contains("prepare.json"),
        "{out:?}"
    );
}
