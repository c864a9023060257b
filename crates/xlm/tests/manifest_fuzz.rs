//! Structured fuzz of cache manifests and files: valid caches mutated
//! (sizes, row counts, widths, kinds, names, versions, CRCs, file contents,
//! random JSON), then `open` + every row read through every accessor +
//! `slice` + the packing index + `verify`. Errors are fine; a panic fails.
//!
//! Run: `cargo test -p xlm --test manifest_fuzz` (10,000 cases, a few seconds).
#![allow(clippy::single_range_in_vec_init)] // shard lists of one range

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use xlm::cache;
use xlm::data::{ColumnKind, Example, Table, Value};
use xlm::plan::{PackIndex, PackSpec};

/// A number: absolute, or relative to the value it replaces.
#[derive(Debug, Clone)]
enum Num {
    Abs(u64),
    Rel(i8),
}

impl Num {
    fn apply(&self, old: u64) -> u64 {
        match self {
            Num::Abs(v) => *v,
            Num::Rel(d) => old.wrapping_add_signed(*d as i64),
        }
    }
}

fn num() -> impl Strategy<Value = Num> {
    prop_oneof![
        3 => (-9i8..=9).prop_map(Num::Rel),
        2 => prop_oneof![
            Just(0u64),
            Just(1),
            Just(8),
            Just(u64::MAX),
            Just(u64::MAX - 7),
            Just(u64::MAX / 8 + 1),
            Just(1 << 61),
            Just(1 << 63),
            Just((1 << 63) + 3),
            Just(1 << 32),
            Just(1 << 48),
            Just((1 << 48) + 1),
        ]
        .prop_map(Num::Abs),
        1 => any::<u64>().prop_map(Num::Abs),
        1 => (0u64..64).prop_map(Num::Abs),
    ]
}

/// A file name: one of the cache's own files, or a hostile one.
#[derive(Debug, Clone)]
enum Name {
    Own(usize),
    Fixed(&'static str),
    Random(Vec<u8>),
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        3 => (0usize..16).prop_map(Name::Own),
        3 => prop_oneof![
            Just("../col0.data"),
            Just("/etc/hostname"),
            Just("/dev/zero"),
            Just("sub/col0.data"),
            Just("./col0.data"),
            Just(""),
            Just("."),
            Just(".."),
            Just("manifest.json"),
            Just("missing.data"),
            Just("col0.data/"),
            Just("c\\ol0.data"),
            Just("col0.data\0"),
        ]
        .prop_map(Name::Fixed),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Name::Random),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Rows(Num),
    Version(Num),
    Format(u8),
    CreatedBy(Json),
    Width(usize, Num),
    Kind(usize, u8),
    ColumnName(usize, u8),
    DataBytes(usize, Num),
    OffsetsBytes(usize, Option<Num>),
    Crc(usize, bool, Num),
    DataName(usize, Name),
    OffsetsName(usize, Option<Name>),
    DropColumn(usize),
    DupColumn(usize),
    SwapColumns(usize, usize),
    ExtraField(usize),
    Truncate(usize, Num),
    Append(usize, Vec<u8>),
    FlipBit(usize, u64),
    SetOffset(usize, u64, Num),
    /// Make sizes and CRCs match the (edited) files, so that only the
    /// structural checks stand between the damage and a reader.
    FixCrcs,
}

fn edit() -> impl Strategy<Value = Edit> {
    let col = 0usize..8;
    prop_oneof![
        2 => num().prop_map(Edit::Rows),
        1 => num().prop_map(Edit::Version),
        1 => any::<u8>().prop_map(Edit::Format),
        1 => json_value().prop_map(Edit::CreatedBy),
        2 => (col.clone(), num()).prop_map(|(c, n)| Edit::Width(c, n)),
        1 => (col.clone(), any::<u8>()).prop_map(|(c, k)| Edit::Kind(c, k)),
        1 => (col.clone(), any::<u8>()).prop_map(|(c, k)| Edit::ColumnName(c, k)),
        2 => (col.clone(), num()).prop_map(|(c, n)| Edit::DataBytes(c, n)),
        2 => (col.clone(), proptest::option::of(num())).prop_map(|(c, n)| Edit::OffsetsBytes(c, n)),
        1 => (col.clone(), any::<bool>(), num()).prop_map(|(c, o, n)| Edit::Crc(c, o, n)),
        2 => (col.clone(), name()).prop_map(|(c, n)| Edit::DataName(c, n)),
        2 => (col.clone(), proptest::option::of(name())).prop_map(|(c, n)| Edit::OffsetsName(c, n)),
        1 => col.clone().prop_map(Edit::DropColumn),
        1 => col.clone().prop_map(Edit::DupColumn),
        1 => (col.clone(), col.clone()).prop_map(|(a, b)| Edit::SwapColumns(a, b)),
        1 => col.clone().prop_map(Edit::ExtraField),
        2 => (0usize..16, num()).prop_map(|(f, n)| Edit::Truncate(f, n)),
        1 => (0usize..16, proptest::collection::vec(any::<u8>(), 1..24)).prop_map(|(f, b)| Edit::Append(f, b)),
        3 => (0usize..16, any::<u64>()).prop_map(|(f, b)| Edit::FlipBit(f, b)),
        4 => (col, any::<u64>(), num()).prop_map(|(c, e, n)| Edit::SetOffset(c, e, n)),
        3 => Just(Edit::FixCrcs),
    ]
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_map(|f| json!(f)),
        proptest::collection::vec(any::<u8>(), 0..8)
            .prop_map(|b| Json::from(String::from_utf8_lossy(&b).into_owned())),
        Just(json!("xlm-cache")),
        Just(json!("int64")),
        Just(json!("tokens")),
        Just(json!("text")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::from),
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("format".to_string()),
                        Just("format_version".to_string()),
                        Just("rows".to_string()),
                        Just("columns".to_string()),
                        Just("name".to_string()),
                        Just("kind".to_string()),
                        Just("width".to_string()),
                        Just("data_file".to_string()),
                        Just("data_bytes".to_string()),
                        Just("offsets_file".to_string()),
                        Just("created_by".to_string()),
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Input {
    Edits(Vec<Edit>),
    Json(Json),
    Bytes(Vec<u8>),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        16 => proptest::collection::vec(edit(), 1..6).prop_map(Input::Edits),
        1 => json_value().prop_map(Input::Json),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Input::Bytes),
    ]
}

/// The base cache: its manifest and files (name, bytes).
struct Base {
    manifest: Json,
    files: Vec<(String, Vec<u8>)>,
}

fn base(dir: &Path) -> Base {
    let t = Table::from_examples((0..5i64).map(|i| {
        Example::new()
            .with("id", Value::Int(i))
            .with("token_ids", Value::List((0..i).map(|t| 7 + t).collect()))
            .with("wide", Value::List(vec![70_000 + i; (i % 3) as usize]))
            .with("text", Value::Text("é".repeat(i as usize)))
    }))
    .unwrap();
    cache::write(&t, dir).unwrap();
    let manifest: Json =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "manifest.json")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    Base { manifest, files }
}

fn columns(m: &mut Json) -> Option<&mut Vec<Json>> {
    m.get_mut("columns").and_then(|c| c.as_array_mut())
}

fn with_column(m: &mut Json, i: usize, f: impl FnOnce(&mut serde_json::Map<String, Json>)) {
    if let Some(cols) = columns(m) {
        if !cols.is_empty() {
            let n = cols.len();
            if let Some(obj) = cols[i % n].as_object_mut() {
                f(obj);
            }
        }
    }
}

fn set_num(obj: &mut serde_json::Map<String, Json>, key: &str, n: &Num) {
    let old = obj.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
    obj.insert(key.into(), json!(n.apply(old)));
}

fn file_index(files: &[(String, Vec<u8>)], i: usize) -> usize {
    i % files.len()
}

fn name_str(files: &[(String, Vec<u8>)], n: &Name) -> String {
    match n {
        Name::Own(i) => files[file_index(files, *i)].0.clone(),
        Name::Fixed(s) => s.to_string(),
        Name::Random(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Writes the edited cache to `dir`, rewriting only the files that differ
/// from what `on_disk` says the previous case left (cases stay cheap).
fn materialize(base: &Base, input: &Input, dir: &Path, on_disk: &mut HashMap<String, Vec<u8>>) {
    let mut m = base.manifest.clone();
    let mut files = base.files.clone();
    let mut manifest_bytes = None;
    match input {
        Input::Json(j) => manifest_bytes = Some(serde_json::to_vec(j).unwrap()),
        Input::Bytes(b) => manifest_bytes = Some(b.clone()),
        Input::Edits(edits) => {
            for e in edits {
                match e {
                    Edit::Rows(n) => {
                        let old = m["rows"].as_u64().unwrap_or(0);
                        m["rows"] = json!(n.apply(old));
                    }
                    Edit::Version(n) => {
                        let old = m["format_version"].as_u64().unwrap_or(0);
                        m["format_version"] = json!(n.apply(old) as u32);
                    }
                    Edit::Format(k) => {
                        m["format"] = json!(["xlm-cache", "xlm", "", "XLM-CACHE"][*k as usize % 4])
                    }
                    Edit::CreatedBy(j) => m["created_by"] = j.clone(),
                    Edit::Width(c, n) => with_column(&mut m, *c, |o| {
                        let old = o.get("width").and_then(|v| v.as_u64()).unwrap_or(0);
                        o.insert("width".into(), json!(n.apply(old) as u8));
                    }),
                    Edit::Kind(c, k) => with_column(&mut m, *c, |o| {
                        o.insert(
                            "kind".into(),
                            json!(["int64", "tokens", "text", "float"][*k as usize % 4]),
                        );
                    }),
                    Edit::ColumnName(c, k) => with_column(&mut m, *c, |o| {
                        o.insert(
                            "name".into(),
                            json!(["id", "token_ids", "wide", "text", ""][*k as usize % 5]),
                        );
                    }),
                    Edit::DataBytes(c, n) => {
                        with_column(&mut m, *c, |o| set_num(o, "data_bytes", n))
                    }
                    Edit::OffsetsBytes(c, n) => with_column(&mut m, *c, |o| match n {
                        Some(n) => set_num(o, "offsets_bytes", n),
                        None => {
                            o.insert("offsets_bytes".into(), Json::Null);
                        }
                    }),
                    Edit::Crc(c, offsets, n) => with_column(&mut m, *c, |o| {
                        let key = if *offsets {
                            "offsets_crc32"
                        } else {
                            "data_crc32"
                        };
                        let old = o.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
                        o.insert(key.into(), json!(n.apply(old) as u32));
                    }),
                    Edit::DataName(c, n) => {
                        let s = name_str(&files, n);
                        with_column(&mut m, *c, |o| {
                            o.insert("data_file".into(), json!(s));
                        })
                    }
                    Edit::OffsetsName(c, n) => {
                        let s = n.as_ref().map(|n| name_str(&files, n));
                        with_column(&mut m, *c, |o| {
                            o.insert("offsets_file".into(), json!(s));
                        })
                    }
                    Edit::DropColumn(c) => {
                        if let Some(cols) = columns(&mut m) {
                            if !cols.is_empty() {
                                let n = cols.len();
                                cols.remove(c % n);
                            }
                        }
                    }
                    Edit::DupColumn(c) => {
                        if let Some(cols) = columns(&mut m) {
                            if !cols.is_empty() {
                                let n = cols.len();
                                let dup = cols[c % n].clone();
                                cols.push(dup);
                            }
                        }
                    }
                    Edit::SwapColumns(a, b) => {
                        if let Some(cols) = columns(&mut m) {
                            if !cols.is_empty() {
                                let n = cols.len();
                                cols.swap(a % n, b % n);
                            }
                        }
                    }
                    Edit::ExtraField(c) => with_column(&mut m, *c, |o| {
                        o.insert("extra".into(), json!(1));
                    }),
                    Edit::Truncate(f, n) => {
                        let i = file_index(&files, *f);
                        let len = files[i].1.len() as u64;
                        let new = n.apply(len).min(len) as usize;
                        files[i].1.truncate(new);
                    }
                    Edit::Append(f, b) => {
                        let i = file_index(&files, *f);
                        files[i].1.extend_from_slice(b);
                    }
                    Edit::FlipBit(f, bit) => {
                        let i = file_index(&files, *f);
                        let len = files[i].1.len() as u64;
                        if len > 0 {
                            let bit = bit % (len * 8);
                            files[i].1[(bit / 8) as usize] ^= 1 << (bit % 8);
                        }
                    }
                    Edit::SetOffset(c, entry, n) => {
                        let offsets: Vec<&str> = files
                            .iter()
                            .filter(|f| f.0.ends_with(".offsets"))
                            .map(|f| f.0.as_str())
                            .collect();
                        let name = offsets[c % offsets.len()].to_string();
                        let f = files.iter_mut().find(|f| f.0 == name).unwrap();
                        let entries = f.1.len() / 8;
                        if entries > 0 {
                            let e = (*entry as usize) % entries;
                            let old = u64::from_le_bytes(f.1[e * 8..e * 8 + 8].try_into().unwrap());
                            f.1[e * 8..e * 8 + 8].copy_from_slice(&n.apply(old).to_le_bytes());
                        }
                    }
                    Edit::FixCrcs => {
                        if let Some(cols) = columns(&mut m) {
                            for c in cols.iter_mut() {
                                for (file, bytes, crc) in [
                                    ("data_file", "data_bytes", "data_crc32"),
                                    ("offsets_file", "offsets_bytes", "offsets_crc32"),
                                ] {
                                    let name =
                                        c.get(file).and_then(|v| v.as_str()).map(String::from);
                                    if let Some(f) =
                                        name.and_then(|n| files.iter().find(|f| f.0 == n))
                                    {
                                        c[bytes] = json!(f.1.len());
                                        c[crc] = json!(crc32fast::hash(&f.1));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    for (name, bytes) in &files {
        if on_disk.get(name) != Some(bytes) {
            std::fs::write(dir.join(name), bytes).unwrap();
            on_disk.insert(name.clone(), bytes.clone());
        }
    }
    let manifest_bytes = manifest_bytes.unwrap_or_else(|| serde_json::to_vec_pretty(&m).unwrap());
    std::fs::write(dir.join("manifest.json"), manifest_bytes).unwrap();
}

/// Everything a reader may do with a cache; errors are fine.
fn exercise(dir: &Path) -> usize {
    let mut opened = 0;
    let _ = cache::is_cache(dir);
    if let Ok(t) = cache::open(dir) {
        opened = 1;
        let n = t.len().min(64);
        for i in 0..n {
            let _ = t.row(i);
            for c in t.columns() {
                let _ = c.check_row(i);
                match c.schema().kind {
                    ColumnKind::Int64 => {
                        let _ = c.int(i);
                    }
                    ColumnKind::Tokens => {
                        let _ = c.list_len(i);
                        c.prefetch_row(i);
                        if let Ok(toks) = c.tokens(i) {
                            let _ = toks.to_vec();
                        }
                    }
                    ColumnKind::Text => {
                        let _ = c.text(i);
                        let _ = c.value(i);
                    }
                }
            }
        }
        let _ = t.slice(0..n);
        let _ = t.fingerprint();
        for name in ["token_ids", "wide", "text", "id"] {
            let _ = t.list_elements(name);
        }
        for c in t.columns() {
            if c.schema().kind != ColumnKind::Tokens {
                continue;
            }
            let rows = t.len();
            for shards in [vec![0..rows], vec![0..rows / 2, rows / 2..rows]] {
                for (block, bos) in [(1usize, false), (3, true), (8, false)] {
                    let spec = PackSpec {
                        function: "pack_sequences".into(),
                        column: None,
                        block_size: block,
                        bos: bos.then_some(1),
                        eos: Some(2),
                        drop_last: block == 8,
                        pad_id: 0,
                        source_ids: false,
                    };
                    if let Ok(idx) = PackIndex::build_contiguous(spec, c, &shards) {
                        for b in 0..idx.num_blocks().min(256) {
                            if let Ok(pieces) = idx.pieces(b) {
                                for p in pieces {
                                    if let xlm::plan::Piece::Tokens(row, r) = p {
                                        // A piece never points past its row.
                                        let len = c.list_len(row).expect("a piece's row reads");
                                        assert!(r.end <= len);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let _ = cache::verify(dir);
    opened
}

fn runner_cases() -> usize {
    std::env::var("XLM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

#[test]
fn fuzzed_manifests_and_files_never_panic() {
    let d = tempfile::tempdir().unwrap();
    let base = base(&d.path().join("base"));
    let dir = d.path().join("case");
    std::fs::create_dir(&dir).unwrap();
    let on_disk = Mutex::new(HashMap::new());
    let cases = AtomicUsize::new(0);
    let opened = AtomicUsize::new(0);
    // XLM_FUZZ_CASES / XLM_FUZZ_SEED run a longer or different search locally.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let config = Config {
        cases: env("XLM_FUZZ_CASES").unwrap_or(10_000) as u32,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = match env("XLM_FUZZ_SEED") {
        Some(seed) => {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&seed.to_le_bytes());
            TestRng::from_seed(RngAlgorithm::ChaCha, &key)
        }
        None => TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    };
    let mut runner = TestRunner::new_with_rng(config, rng);
    runner
        .run(&input(), |input| {
            materialize(&base, &input, &dir, &mut on_disk.lock().unwrap());
            cases.fetch_add(1, Ordering::Relaxed);
            opened.fetch_add(exercise(&dir), Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    let (cases, opened) = (cases.into_inner(), opened.into_inner());
    println!("manifest fuzz: {cases} cases, {opened} opened as a cache, no panic");
    assert!(cases >= runner_cases(), "{cases}");
    // The mutations stay close enough to valid that many caches open (and
    // their rows are read), not just the manifest parser.
    assert!(opened > cases / 20, "only {opened} of {cases} opened");
}
