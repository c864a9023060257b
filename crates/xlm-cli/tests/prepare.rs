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
        assert_eq!(t.row(0).unwrap().int("id").unwrap(), 1);
        assert_eq!(
            t.row(19_998).unwrap().list("token_ids").unwrap(),
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
    let ids: Vec<i64> = t.rows().map(|e| e.unwrap().int("id").unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4], "jsonl shard, then parquet shard");
    assert_eq!(t.row(3).unwrap().list("token_ids").unwrap(), [10, 11, 12]);
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
    let s = xlm_cli::inspect::summarize(&t, 1, None).unwrap();
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

/// A WordLevel `tokenizer.json` over `w0`..`w49` (slower than the built-in
/// test tokenizer, so a prepare of a few MB takes a moment).
fn word_level_tokenizer(path: &Path) {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), json!(0));
    for i in 0..50 {
        vocab.insert(format!("w{i}"), json!(i + 1));
    }
    std::fs::write(
        path,
        json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "unk_token": "[UNK]", "vocab": vocab}
        })
        .to_string(),
    )
    .unwrap();
}

/// The target after a prepare was killed: absent or not a cache, or a
/// complete cache that `verify` accepts.
fn assert_absent_or_complete(target: &Path, rows: usize, what: &str) {
    if xlm::cache::is_cache(target) {
        let t = xlm::cache::open(target).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(t.len(), rows, "{what}");
        xlm::cache::verify(target).unwrap_or_else(|e| panic!("{what}: {e}"));
    } else {
        assert!(xlm::cache::open(target).is_err(), "{what}");
    }
}

fn leftovers(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".train."))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill_9_of_prepare_never_leaves_a_partial_cache() {
    let d = tempfile::tempdir().unwrap();
    let rows = 40_000;
    let data = d.path().join("train.jsonl");
    let text: String = (0..rows)
        .map(|i| {
            let words: Vec<String> = (0..100).map(|k| format!("w{}", (i * k + k) % 50)).collect();
            format!("{{\"id\": {i}, \"text\": \"{}\"}}\n", words.join(" "))
        })
        .collect();
    std::fs::write(&data, text).unwrap();
    let tok = d.path().join("tokenizer.json");
    word_level_tokenizer(&tok);
    let cache = d.path().join("cache");
    let cfg = d.path().join("prepare.json");
    std::fs::write(
        &cfg,
        json!({"dsm_kwargs": {"full_name": "local/toy/train", "ds_type": "jsonl", "data_files": data,
                              "preprocess_function": "tokenize", "columns_to_remove": ["text"],
                              "rewrite_manual_cache": true},
               "tokenizer": {"kind": "tokenizer_json", "path": tok},
               "manual_cache_dir": cache, "num_proc": 2})
        .to_string(),
    )
    .unwrap();
    let target = cache.join("local/toy/train");
    let parent = target.parent().unwrap().to_path_buf();
    let prepare = || {
        let mut c = Command::new(xlm_bin());
        c.args(["prepare", "--config"]).arg(&cfg);
        c
    };
    let started = std::time::Instant::now();
    let out = run_command(prepare(), Duration::from_secs(120));
    let full = started.elapsed();
    assert!(out.status.unwrap().success(), "{out:?}");
    assert_absent_or_complete(&target, rows, "first prepare");

    // Kill at 20 points of a fixed-seed sequence over the whole run; every
    // 4th time with no cache there yet.
    let mut rng = xlm::plan::Rng::new(&[0x6b69_6c6c]);
    let mut mid_run = 0;
    for i in 0..20 {
        if i % 4 == 3 {
            std::fs::remove_dir_all(&target).unwrap_or_default();
        }
        let delay = full.mul_f64(rng.below(1150) as f64 / 1000.0);
        let mut child = prepare()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_absent_or_complete(&target, rows, &format!("killed after {delay:?}"));
    }
    assert!(
        mid_run >= 10,
        "only {mid_run} of 20 kills hit a running prepare"
    );

    // The next prepare succeeds and removes what the killed ones left.
    let out = run_command(prepare(), Duration::from_secs(120));
    assert!(out.status.unwrap().success(), "{out:?}");
    assert_absent_or_complete(&target, rows, "last prepare");
    assert!(xlm::cache::is_cache(&target));
    assert_eq!(leftovers(&parent), Vec::<String>::new());
}

#[test]
fn inspect_reports_damaged_caches_naming_the_file_and_never_panics() {
    let d = tempfile::tempdir().unwrap();
    let t = xlm::data::Table::from_examples((0..50i64).map(|i| {
        xlm::data::Example::new()
            .with("id", xlm::data::Value::Int(i))
            .with(
                "token_ids",
                xlm::data::Value::List((0..i % 4 + 1).map(|t| 7 + t).collect()),
            )
            .with("text", xlm::data::Value::Text(format!("row {i} é")))
    }))
    .unwrap();
    let offsets = |dir: &Path, col: &str| {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let c = m["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == col)
            .unwrap()
            .clone();
        (
            dir.join(c["data_file"].as_str().unwrap()),
            dir.join(c["offsets_file"].as_str().unwrap()),
        )
    };
    let set = |path: &Path, entry: usize, f: &dyn Fn(u64) -> u64| {
        let mut b = std::fs::read(path).unwrap();
        let v = u64::from_le_bytes(b[entry * 8..entry * 8 + 8].try_into().unwrap());
        b[entry * 8..entry * 8 + 8].copy_from_slice(&f(v).to_le_bytes());
        std::fs::write(path, b).unwrap();
    };
    // Recompute sizes and CRCs so only the row checks can catch the damage.
    let fix = |dir: &Path| {
        let p = dir.join("manifest.json");
        let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        for c in m["columns"].as_array_mut().unwrap() {
            for (f, n, crc) in [
                ("data_file", "data_bytes", "data_crc32"),
                ("offsets_file", "offsets_bytes", "offsets_crc32"),
            ] {
                if let Some(name) = c[f].as_str() {
                    let b = std::fs::read(dir.join(name)).unwrap();
                    c[n] = json!(b.len());
                    c[crc] = json!(crc32fast::hash(&b));
                }
            }
        }
        std::fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
    };
    type Damage = Box<dyn Fn(&Path) -> (PathBuf, &'static str)>;
    let damages: Vec<(&str, Damage)> = vec![
        (
            "decreasing middle offset",
            Box::new(move |dir: &Path| {
                let (_, off) = offsets(dir, "token_ids");
                set(&off, 21, &|v| v - 3);
                fix(dir);
                (off, "row 20")
            }),
        ),
        (
            "offset past the data",
            Box::new(move |dir: &Path| {
                let (_, off) = offsets(dir, "token_ids");
                set(&off, 33, &|v| v + (1 << 40));
                fix(dir);
                (off, "row 32")
            }),
        ),
        (
            "row boundary inside a UTF-8 character",
            Box::new(move |dir: &Path| {
                let (data, off) = offsets(dir, "text");
                set(&off, 8, &|v| v - 1);
                fix(dir);
                (data, "row 7")
            }),
        ),
        (
            "overflowing row count",
            Box::new(move |dir: &Path| {
                let p = dir.join("manifest.json");
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(
                    &p,
                    text.replace("\"rows\":50", &format!("\"rows\":{}", u64::MAX)),
                )
                .unwrap();
                (p, "rows")
            }),
        ),
        (
            "file name outside the cache",
            Box::new(move |dir: &Path| {
                let p = dir.join("manifest.json");
                let (data, _) = offsets(dir, "token_ids");
                std::fs::copy(&data, dir.parent().unwrap().join("stolen.data")).unwrap();
                let name = data.file_name().unwrap().to_str().unwrap().to_string();
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(
                    &p,
                    text.replace(&format!("\"{name}\""), "\"../stolen.data\""),
                )
                .unwrap();
                (p, "not a plain file name")
            }),
        ),
    ];
    for (i, (what, damage)) in damages.iter().enumerate() {
        let dir = d.path().join(format!("c{i}/cache"));
        xlm::cache::write(&t, &dir).unwrap();
        // The manifest without whitespace, so the edits above can find fields.
        let p = dir.join("manifest.json");
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        std::fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
        let (file, needle) = damage(&dir);
        for args in [
            &["inspect", "--verify"][..],
            &["inspect"][..],
            &["inspect", "--json", "--examples", "50"][..],
        ] {
            // Without --verify, text is checked only in the rows shown.
            if needle == "row 7" && args == ["inspect"] {
                continue;
            }
            let mut c = Command::new(xlm_bin());
            c.args(args).arg(&dir);
            let out = run_command(c, Duration::from_secs(60));
            let status = out.status.unwrap();
            assert!(
                !status.success() && status.code() == Some(1),
                "{what} {args:?}: {out:?}"
            );
            assert!(!out.stderr.contains("panicked"), "{what} {args:?}: {out:?}");
            assert!(
                out.stderr.contains(&file.display().to_string()) && out.stderr.contains(needle),
                "{what} {args:?}: {out:?}"
            );
        }
    }
}
