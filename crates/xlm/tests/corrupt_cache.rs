//! Corrupt and hostile caches: every damage is an error naming the file (and
//! row), never a panic or a batch of someone else's bytes — through
//! `cache::open` + row reads, `cache::verify`, the packing index, and a full
//! DatasetManager setup + loader. Also the cache writer's replacement rules:
//! atomic swap, leftovers of crashed writers, never deleting a non-cache.
//!
//! Run: `cargo test -p xlm --test corrupt_cache`
#![allow(clippy::single_range_in_vec_init)] // shard lists of one range

mod common;

use common::*;
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use xlm::cache::{self, CacheError};
use xlm::data::{Example, Table, Value};
use xlm::manager::{DatasetManager, Stage};
use xlm::plan::{PackIndex, PackSpec};
use xlm::source::MemoryRegistry;

const ROWS: usize = 130;

fn tokens_of(i: i64) -> Vec<i64> {
    (0..(i % 5) + 1).map(|t| 7 + (i * 7 + t) % 50).collect()
}

fn table(rows: usize) -> Table {
    Table::from_examples((0..rows as i64).map(|i| {
        Example::new()
            .with("id", Value::Int(i))
            .with("token_ids", Value::List(tokens_of(i)))
            .with("text", Value::Text(format!("row {i} é")))
    }))
    .unwrap()
}

fn manifest(dir: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn write_manifest(dir: &Path, m: &Json) {
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(m).unwrap(),
    )
    .unwrap();
}

fn column<'a>(m: &'a mut Json, name: &str) -> &'a mut Json {
    m["columns"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == name)
        .unwrap()
}

fn file(dir: &Path, name: &str, key: &str) -> PathBuf {
    let mut m = manifest(dir);
    dir.join(column(&mut m, name)[key].as_str().unwrap())
}

fn read_offset(path: &Path, entry: usize) -> u64 {
    let b = std::fs::read(path).unwrap();
    u64::from_le_bytes(b[entry * 8..entry * 8 + 8].try_into().unwrap())
}

fn set_offset(path: &Path, entry: usize, value: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[entry * 8..entry * 8 + 8].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

/// Rewrites every CRC-32 (and size) in the manifest to match the files, so
/// only the structural checks can catch the damage (a hostile cache).
fn fix_crcs(dir: &Path) {
    let mut m = manifest(dir);
    for c in m["columns"].as_array_mut().unwrap() {
        for (file, bytes, crc) in [
            ("data_file", "data_bytes", "data_crc32"),
            ("offsets_file", "offsets_bytes", "offsets_crc32"),
        ] {
            if let Some(f) = c[file].as_str() {
                let b = std::fs::read(dir.join(f)).unwrap();
                c[bytes] = json!(b.len());
                c[crc] = json!(crc32fast::hash(&b));
            }
        }
    }
    write_manifest(dir, &m);
}

fn fresh(d: &Path) -> PathBuf {
    let dir = d.join("c");
    cache::write(&table(ROWS), &dir).unwrap();
    dir
}

/// Reads every row; returns the errors (as text) of the rows that fail.
fn row_errors(t: &Table) -> Vec<(usize, String)> {
    (0..t.len())
        .filter_map(|i| t.row(i).err().map(|e| (i, e.to_string())))
        .collect()
}

fn assert_names(e: &str, path: &Path, row: Option<usize>) {
    assert!(e.contains(&path.display().to_string()), "{e}");
    if let Some(r) = row {
        assert!(e.contains(&format!("row {r}")), "{e}");
    }
}

#[test]
fn decreasing_middle_offset_fails_that_row_naming_the_offsets_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = fresh(d.path());
    let off = file(&dir, "token_ids", "offsets_file");
    // Row 70 ends before it starts; open checks only the first and last offset.
    set_offset(&off, 71, read_offset(&off, 70) - 2);
    fix_crcs(&dir);
    let t = cache::open(&dir).unwrap();
    let errors = row_errors(&t);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 70);
    assert_names(&errors[0].1, &off, Some(70));
    assert!(errors[0].1.contains("decrease"), "{}", errors[0].1);
    let col = t.column("token_ids").unwrap();
    assert!(col.tokens(70).is_err() && col.list_len(70).is_err());
    assert_eq!(col.tokens(69).unwrap().to_vec(), tokens_of(69));
    let e = cache::verify(&dir).unwrap_err().to_string();
    assert_names(&e, &off, Some(70));
}

#[test]
fn offsets_past_the_data_and_bit_flipped_offsets_fail_the_row() {
    let d = tempfile::tempdir().unwrap();
    let dir = fresh(d.path());
    let off = file(&dir, "token_ids", "offsets_file");
    // A flipped high bit (no CRC fix-up): rows 29 and 30 point far past the data.
    let v = read_offset(&off, 30);
    set_offset(&off, 30, v ^ (1 << 62));
    let t = cache::open(&dir).unwrap();
    let errors = row_errors(&t);
    assert_eq!(
        errors.iter().map(|e| e.0).collect::<Vec<_>>(),
        [29, 30],
        "{errors:?}"
    );
    for (row, e) in &errors {
        assert_names(e, &off, Some(*row));
    }
    // verify names the offsets file (not the data file) for its CRC.
    let e = cache::verify(&dir).unwrap_err().to_string();
    assert!(e.contains("offsets CRC-32"), "{e}");
    assert_names(&e, &off, None);
    // The same with the CRC made to match: the row check catches it.
    fix_crcs(&dir);
    let e = cache::verify(&dir).unwrap_err().to_string();
    assert_names(&e, &off, Some(29));
    assert!(e.contains("past the end"), "{e}");
}

#[test]
fn overflowing_manifest_sizes_are_errors_not_panics() {
    let d = tempfile::tempdir().unwrap();
    let dir = fresh(d.path());
    let pristine = manifest(&dir);

    // rows + 1 and rows * 8 overflow u64.
    for rows in [u64::MAX, u64::MAX / 8 + 1, 1 << 61, 1 << 60] {
        let mut m = pristine.clone();
        m["rows"] = json!(rows);
        write_manifest(&dir, &m);
        let e = cache::open(&dir).unwrap_err().to_string();
        assert!(e.contains(&dir.display().to_string()), "{e}");
        assert!(cache::verify(&dir).is_err());
    }
    // An int64 column whose rows * 8 wraps to its real size (0 bytes).
    let mut m = json!({"format": "xlm-cache", "format_version": 1, "rows": 1u64 << 61, "created_by": "test",
        "columns": [{"name": "id", "kind": "int64", "width": 8, "data_file": "empty.data", "data_bytes": 0, "data_crc32": 0,
                     "offsets_file": null, "offsets_bytes": null, "offsets_crc32": null}]});
    std::fs::write(dir.join("empty.data"), b"").unwrap();
    write_manifest(&dir, &m);
    let e = cache::open(&dir).unwrap_err().to_string();
    assert!(e.contains(&dir.display().to_string()), "{e}");
    m["rows"] = json!(3);
    write_manifest(&dir, &m);
    let e = cache::open(&dir).unwrap_err().to_string();
    assert!(e.contains("empty.data") && e.contains("int64 rows"), "{e}");
    // A token column whose last offset * width wraps to the data size.
    m = pristine.clone();
    write_manifest(&dir, &m);
    let off = file(&dir, "token_ids", "offsets_file");
    let data_len = std::fs::metadata(file(&dir, "token_ids", "data_file"))
        .unwrap()
        .len();
    set_offset(&off, ROWS, (1u64 << 63) + data_len / 2);
    fix_crcs(&dir);
    let e = cache::open(&dir).unwrap_err().to_string();
    assert_names(&e, &off, None);
    // Sizes beyond any file.
    for key in ["data_bytes", "offsets_bytes"] {
        let mut m = pristine.clone();
        column(&mut m, "text")[key] = json!(u64::MAX);
        write_manifest(&dir, &m);
        assert!(cache::open(&dir).is_err());
    }
}

#[test]
fn manifest_file_names_must_be_plain_names_inside_the_cache_dir() {
    let d = tempfile::tempdir().unwrap();
    let dir = fresh(d.path());
    let pristine = manifest(&dir);
    let data = file(&dir, "token_ids", "data_file");
    // Valid copies where each bad name points, so only the name check can refuse them.
    std::fs::copy(&data, d.path().join("outside.data")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::copy(&data, dir.join("sub/col1.data")).unwrap();
    let absolute = d.path().join("outside.data").display().to_string();
    for name in [
        "../outside.data",
        absolute.as_str(),
        "sub/col1.data",
        "./col1.data",
        "",
        ".",
        "..",
        "manifest.json",
        "col1.data\0x",
    ] {
        let mut m = pristine.clone();
        column(&mut m, "token_ids")["data_file"] = json!(name);
        write_manifest(&dir, &m);
        let e = cache::open(&dir).unwrap_err().to_string();
        assert!(
            e.contains("not a plain file name") && e.contains("manifest.json"),
            "{name:?}: {e}"
        );
        assert!(cache::verify(&dir).is_err());
    }
    // A symbolic link, even to a valid copy, is not a cache file.
    write_manifest(&dir, &pristine);
    std::fs::remove_file(&data).unwrap();
    std::os::unix::fs::symlink(d.path().join("outside.data"), &data).unwrap();
    let e = cache::open(&dir).unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");
    assert_names(&e, &data, None);
}

#[test]
fn truncated_files_are_errors_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = fresh(d.path());
    let data = file(&dir, "token_ids", "data_file");
    let off = file(&dir, "token_ids", "offsets_file");
    let bytes = std::fs::read(&data).unwrap();

    // Shorter than the manifest says: open names the file.
    std::fs::write(&data, &bytes[..bytes.len() - 3]).unwrap();
    let e = cache::open(&dir).unwrap_err().to_string();
    assert_names(&e, &data, None);
    assert!(e.contains("size"), "{e}");

    // Truncated with the manifest and last offset made to agree: the rows
    // past the new end fail when read, naming the offsets file.
    let keep = read_offset(&off, 100) as usize; // ids of rows 0..100
    std::fs::write(&data, &bytes[..keep * 2]).unwrap();
    set_offset(&off, ROWS, keep as u64);
    fix_crcs(&dir);
    let t = cache::open(&dir).unwrap();
    let errors = row_errors(&t);
    assert_eq!(errors.first().map(|e| e.0), Some(100), "{errors:?}");
    assert_eq!(errors.len(), ROWS - 100);
    for (row, e) in &errors {
        assert_names(e, &off, Some(*row));
    }
    assert_names(
        &cache::verify(&dir).unwrap_err().to_string(),
        &off,
        Some(100),
    );

    // A truncated offsets file.
    let dir = fresh(&d.path().join("2"));
    let off = file(&dir, "text", "offsets_file");
    let b = std::fs::read(&off).unwrap();
    std::fs::write(&off, &b[..b.len() - 8]).unwrap();
    assert_names(&cache::open(&dir).unwrap_err().to_string(), &off, None);
}

#[test]
fn bit_flipped_data_is_caught_naming_the_data_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = fresh(d.path());
    // A flipped bit in token ids cannot be seen without reading every byte:
    // verify's CRC catches it, naming the data file.
    let data = file(&dir, "token_ids", "data_file");
    let mut b = std::fs::read(&data).unwrap();
    b[10] ^= 0x10;
    std::fs::write(&data, &b).unwrap();
    let e = cache::verify(&dir).unwrap_err().to_string();
    assert!(e.contains("CRC-32"), "{e}");
    assert_names(&e, &data, None);

    // A flipped bit in text that breaks UTF-8 fails that row when read.
    let text = file(&dir, "text", "data_file");
    let mut b = std::fs::read(&text).unwrap();
    let at = b.iter().position(|&x| x == 0xC3).unwrap(); // first byte of row 0's "é"
    b[at] ^= 0x40;
    std::fs::write(&text, &b).unwrap();
    let t = cache::open(&dir).unwrap();
    let errors = row_errors(&t);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 0);
    assert_names(&errors[0].1, &text, Some(0));
    assert!(errors[0].1.contains("UTF-8"), "{}", errors[0].1);
}

#[test]
fn bad_utf8_in_a_text_column_is_a_row_error_and_verify_checks_each_row() {
    let d = tempfile::tempdir().unwrap();
    let dir = fresh(d.path());
    let text = file(&dir, "text", "data_file");
    let off = file(&dir, "text", "offsets_file");
    // Move the boundary between rows 4 and 5 into row 4's "é": the bytes as a
    // whole stay UTF-8, but neither row is.
    let end4 = read_offset(&off, 5);
    set_offset(&off, 5, end4 - 1);
    fix_crcs(&dir);
    let t = cache::open(&dir).unwrap();
    let errors = row_errors(&t);
    assert_eq!(
        errors.iter().map(|e| e.0).collect::<Vec<_>>(),
        [4, 5],
        "{errors:?}"
    );
    for (row, e) in &errors {
        assert_names(e, &text, Some(*row));
        assert!(e.contains("UTF-8"), "{e}");
    }
    let e = cache::verify(&dir).unwrap_err().to_string();
    assert_names(&e, &text, Some(4));

    // Invalid bytes with matching CRCs.
    let dir = fresh(&d.path().join("2"));
    let text = file(&dir, "text", "data_file");
    let mut b = std::fs::read(&text).unwrap();
    let at = b.len() - 2; // the last row's "é"
    b[at] = 0xFF;
    std::fs::write(&text, &b).unwrap();
    fix_crcs(&dir);
    let t = cache::open(&dir).unwrap();
    assert_eq!(
        row_errors(&t).iter().map(|e| e.0).collect::<Vec<_>>(),
        [ROWS - 1]
    );
    assert!(t.column("text").unwrap().text(ROWS - 1).is_err());
    assert_names(
        &cache::verify(&dir).unwrap_err().to_string(),
        &text,
        Some(ROWS - 1),
    );
}

fn pack_spec(block: usize, bos: bool) -> PackSpec {
    PackSpec {
        function: "pack_sequences".into(),
        column: None,
        block_size: block,
        bos: bos.then_some(1),
        eos: Some(2),
        drop_last: false,
        pad_id: 0,
        source_ids: false,
    }
}

#[test]
fn packing_index_over_damaged_offsets_errors_instead_of_panicking() {
    let d = tempfile::tempdir().unwrap();
    // Row r holds r % 5 + 1 ids: each change makes row entry-1 end before it
    // starts, or run past the data.
    for (entry, delta) in [
        (71usize, -2i64),
        (64, -5),
        (40, 1 << 40),
        (129, -5),
        (1, -2),
    ] {
        let dir = fresh(&d.path().join(format!("{entry}")));
        let off = file(&dir, "token_ids", "offsets_file");
        let v = read_offset(&off, entry);
        set_offset(&off, entry, v.wrapping_add_signed(delta));
        fix_crcs(&dir);
        let t = cache::open(&dir).unwrap();
        let col = t.column("token_ids").unwrap();
        for shards in [vec![0..ROWS], vec![0..50, 50..ROWS], vec![0..65, 65..ROWS]] {
            for (block, bos) in [(3, true), (8, false), (64, true)] {
                let what = format!("entry {entry}, shards {shards:?}, block {block}");
                let mut errors = Vec::new();
                match PackIndex::build_contiguous(pack_spec(block, bos), col, &shards) {
                    Err(e) => errors.push(e.to_string()),
                    Ok(idx) => {
                        assert!(idx.num_blocks() < 10_000, "{what}");
                        for b in 0..idx.num_blocks() {
                            match idx.pieces(b) {
                                Err(e) => errors.push(e.to_string()),
                                Ok(p) => {
                                    for p in p {
                                        if let xlm::plan::Piece::Tokens(row, r) = p {
                                            assert!(
                                                r.end <= col.list_len(row).unwrap_or(0),
                                                "{what}"
                                            );
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                assert!(!errors.is_empty(), "{what}: no error");
                for e in errors {
                    assert_names(&e, &off, None);
                    assert!(
                        e.contains(&format!("row {}", entry - 1))
                            || e.contains(&format!("row {entry}")),
                        "{what}: {e}"
                    );
                }
            }
        }
    }
}

fn corrupt_registry() -> Arc<MemoryRegistry> {
    let r = MemoryRegistry::new();
    r.insert("mem/corrupt/train", table(ROWS));
    Arc::new(r)
}

/// Every batch of an epoch (or the setup error), as results.
fn epoch(dm: &mut DatasetManager, dir: &Path) -> Result<Vec<Result<xlm::Batch, String>>, String> {
    dm.setup(Stage::Fit, &setup_args(dir, 8, false, 0, 1))
        .map_err(|e| e.to_string())?;
    let loader = dm
        .get_dataloader("train", false, 0, 1)
        .map_err(|e| e.to_string())?;
    Ok(loader
        .iter()
        .map(|b| b.map_err(|e| e.to_string()))
        .collect())
}

#[test]
fn damaged_rows_reach_the_loader_as_errors_naming_the_file() {
    let configs = [
        (
            "stack",
            json!({"collate_fn": "pad_truncate", "dataloader_kwargs": {"batch_size": 8}}),
        ),
        (
            "dynamic padding, 2 workers",
            json!({"collate_fn": "dynamic_padding", "dataloader_kwargs": {"batch_size": 8, "num_workers": 2}}),
        ),
        (
            "processor",
            json!({"on_the_fly_processor": "identity", "collate_fn": "dynamic_padding", "dataloader_kwargs": {"batch_size": 8}}),
        ),
        (
            "iterable",
            json!({"iterable_dataset_shards": 2, "collate_fn": "pad_truncate", "dataloader_kwargs": {"batch_size": 8}}),
        ),
        (
            "packed",
            json!({"iterable_dataset_shards": 2, "on_the_fly_group_processor": "pack_sequences",
                          "on_the_fly_group_processor_kwargs": {"block_size": 8, "use_bos": true, "drop_last": false},
                          "collate_fn": "default", "dataloader_kwargs": {"batch_size": 4}}),
        ),
        (
            "packed, 1 worker",
            json!({"iterable_dataset_shards": 3, "on_the_fly_group_processor": "pack_sequences",
                          "on_the_fly_group_processor_kwargs": {"block_size": 5, "drop_last": true},
                          "collate_fn": "default", "dataloader_kwargs": {"batch_size": 4, "num_workers": 1}}),
        ),
        (
            "packed, filtered",
            json!({"iterable_dataset_shards": 2, "on_the_fly_filter_fn": "min_tokens",
                          "on_the_fly_group_processor": "pack_sequences",
                          "on_the_fly_group_processor_kwargs": {"block_size": 8}, "collate_fn": "default"}),
        ),
    ];
    for (what, overrides) in configs {
        let mut overrides = overrides;
        overrides["full_name"] = json!("mem/corrupt/train");
        for (damage, entry, row) in [("decreasing", 71usize, 70usize), ("past the end", 30, 29)] {
            let d = tempfile::tempdir().unwrap();
            let mut dm = manager(overrides.clone(), Some(corrupt_registry()));
            dm.prepare_data(&prepare_args(d.path(), false)).unwrap();
            let dir = dm.cache_dir(d.path());
            let off = file(&dir, "token_ids", "offsets_file");
            let v = read_offset(&off, entry);
            set_offset(
                &off,
                entry,
                if damage == "decreasing" {
                    v - 2
                } else {
                    v + 10_000
                },
            );
            fix_crcs(&dir);
            let what = format!("{what}, {damage}");
            let errors: Vec<String> = match epoch(&mut dm, d.path()) {
                Err(e) => vec![e],
                Ok(batches) => {
                    for b in batches.iter().flatten() {
                        // Batches that do come out hold the rows' own ids.
                        if let (Some(ids), false) = (b.get("token_ids"), b.ids.is_empty()) {
                            for (k, &id) in b.ids.iter().enumerate() {
                                let want = tokens_of(id);
                                assert_eq!(&ids.row(k)[..want.len()], &want[..], "{what}");
                            }
                        }
                        if let Some(ids) = b.get("input_ids") {
                            assert!(ids.data.iter().all(|&t| (0..=56).contains(&t)), "{what}");
                        }
                    }
                    batches.into_iter().filter_map(|b| b.err()).collect()
                }
            };
            assert!(!errors.is_empty(), "{what}: no error");
            for e in &errors {
                assert_names(e, &off, None);
                assert!(
                    e.contains(&format!("row {row}")) || e.contains(&format!("row {}", row + 1)),
                    "{what}: {e}"
                );
                assert!(!e.contains("panicked"), "{what}: {e}");
            }
        }
    }
}

// ------------------------------------------------------------ replacement

#[test]
fn a_target_that_is_not_a_cache_is_never_deleted() {
    let d = tempfile::tempdir().unwrap();
    let t = table(5);
    // A directory of someone's files.
    let dir = d.path().join("mine");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("thesis.tex"), "precious").unwrap();
    // One whose manifest is not xlm's.
    let other = d.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("manifest.json"), r#"{"format": "arrow"}"#).unwrap();
    // A file.
    let f = d.path().join("file");
    std::fs::write(&f, "x").unwrap();
    for target in [&dir, &other, &f] {
        let e = cache::write(&t, target).unwrap_err();
        assert!(matches!(e, CacheError::Occupied { .. }), "{e}");
        let e = e.to_string();
        assert!(
            e.contains(&target.display().to_string())
                && e.contains("not an xlm cache")
                && e.contains("move or delete it yourself"),
            "{e}"
        );
        assert!(cache::CacheWriter::create(target).is_err());
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("thesis.tex")).unwrap(),
        "precious"
    );
    assert!(other.join("manifest.json").exists() && f.is_file());
    // Through prepare_data with rewrite_manual_cache: refused, nothing deleted.
    let mut dm = manager(json!({"rewrite_manual_cache": true}), None);
    let target = dm.cache_dir(d.path());
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("notes.txt"), "keep").unwrap();
    let e = dm
        .prepare_data(&prepare_args(d.path(), false))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&target.display().to_string()), "{e}");
    assert!(target.join("notes.txt").exists());
    assert!(dm
        .setup(Stage::Fit, &setup_args(d.path(), 8, false, 0, 1))
        .is_err());
    // No hidden directory was left either.
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    // What a writer may replace: an empty directory, a cache of another
    // version, a damaged cache.
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    cache::write(&t, &empty).unwrap();
    let mut m = manifest(&empty);
    m["format_version"] = json!(99);
    write_manifest(&empty, &m);
    assert!(cache::open(&empty).is_err());
    cache::write(&t, &empty).unwrap();
    std::fs::write(file(&empty, "token_ids", "data_file"), b"").unwrap();
    cache::write(&t, &empty).unwrap();
    cache::verify(&empty).unwrap();
}

#[test]
fn replacing_a_cache_never_leaves_readers_without_one() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("c");
    let a = table(40);
    let b = Table::from_examples((0..40).map(|i| {
        Example::new()
            .with("id", Value::Int(1000 + i))
            .with("token_ids", Value::List(vec![9; 3]))
            .with("text", Value::Text("b".into()))
    }))
    .unwrap();
    cache::write(&a, &dir).unwrap();
    let old = cache::open(&dir).unwrap();
    let rows = |t: &Table| t.rows().collect::<Result<Vec<_>, _>>().unwrap();

    // A watcher checks, as fast as it can, that a manifest is always there.
    let stop = Arc::new(AtomicBool::new(false));
    let (missing, looks) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let watcher = {
        let (stop, missing, looks, manifest) = (
            stop.clone(),
            missing.clone(),
            looks.clone(),
            dir.join("manifest.json"),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if std::fs::symlink_metadata(&manifest).is_err() {
                    missing.fetch_add(1, Ordering::Relaxed);
                }
                looks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    for i in 0..300 {
        cache::write(if i % 2 == 0 { &b } else { &a }, &dir).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(looks.load(Ordering::Relaxed) > 1000);
    assert_eq!(
        missing.load(Ordering::Relaxed),
        0,
        "readers saw no cache while it was replaced"
    );
    // The reader that opened the first cache still reads it, whole.
    assert_eq!(rows(&old), rows(&a));
    // A fresh open sees the last one written (i = 299 wrote `a`; write `b`).
    cache::write(&b, &dir).unwrap();
    assert_eq!(rows(&cache::open(&dir).unwrap()), rows(&b));
    assert_eq!(rows(&old), rows(&a));
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no hidden directories left");
}

/// A pid that no process has (a reaped child's).
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn leftovers_of_crashed_writers_are_removed_by_the_next_write() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("c");
    cache::write(&table(3), &dir).unwrap();
    let host = xlm::cache::host_tag();
    let dead = dead_pid();
    let me = std::process::id();
    let leftover = |kind: &str, host: &str, pid: u32| {
        let p = d.path().join(format!(".c.{kind}-{host}-{pid}-123-0"));
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("col0.data"), b"partial").unwrap();
        p
    };
    let gone = [leftover("tmp", &host, dead), leftover("old", &host, dead)];
    let kept = [
        // A writer of this process (another thread) is still running.
        leftover("tmp", &host, me),
        // Another host's writer may still be running (shared filesystem).
        leftover("tmp", "otherhost", dead),
    ];
    // Not this cache's.
    let other = d.path().join(format!(".d.tmp-{host}-{dead}-123-0"));
    std::fs::create_dir(&other).unwrap();
    let user = d.path().join(".c.tmp-notes");
    std::fs::create_dir(&user).unwrap();

    cache::write(&table(4), &dir).unwrap();
    for p in &gone {
        assert!(!p.exists(), "{} was left", p.display());
    }
    for p in kept.iter().chain([&other, &user]) {
        assert!(p.exists(), "{} was removed", p.display());
    }
    assert_eq!(cache::open(&dir).unwrap().len(), 4);
}
