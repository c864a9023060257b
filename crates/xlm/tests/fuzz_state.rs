//! Structured fuzz of loader states (proptest, 10,000 cases per target in
//! the normal test run): any text handed to `LoaderState::from_json`, and
//! any parsed state handed to `DataLoader::restore`, gives a state or an
//! error, never a panic; a restored loader then yields batches of the
//! configured size, never garbage.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Value as Json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use xlm::loader::{DataLoader, LoaderState};

const CASES: u32 = 10_000;

struct Fixture {
    _dir: tempfile::TempDir,
    loaders: Vec<DataLoader>,
    valid: Json,
}

/// Loaders of every mode over one small dataset, built once.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let configs = [
            json!({"full_name": "mem/raw_large/train", "dataloader_kwargs": {"batch_size": 4}}),
            json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 4, "shuffle_buffer_size": 8,
                   "dataloader_kwargs": {"batch_size": 4}}),
            json!({"full_name": "mem/raw_large/train", "iterable_dataset_shards": 2, "make_infinite": true,
                   "dataloader_kwargs": {"batch_size": 4}}),
        ];
        let loaders: Vec<DataLoader> = configs
            .into_iter()
            .map(|c| {
                let mut dm = manager(c, None);
                ready(&mut dm, dir.path());
                dm.get_dataloader("train", false, 0, 1).unwrap()
            })
            .collect();
        let mut it = loaders[0].iter();
        it.next().unwrap().unwrap();
        drop(it);
        let valid = serde_json::from_str(&loaders[0].state().to_json()).unwrap();
        Fixture {
            _dir: dir,
            loaders,
            valid,
        }
    })
}

/// Integers at the edges, where arithmetic overflows.
fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(1u64 << 63),
        Just(1u64 << 32),
        Just(u64::from(u32::MAX)),
        (0u64..4).prop_map(|k| u64::MAX - k),
    ]
}

/// A JSON value of any kind, shallow.
fn any_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        (0u64..64).prop_map(Json::from),
        edge_u64().prop_map(Json::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        ".{0,12}".prop_map(Json::from),
        prop::collection::vec(0u64..5, 0..3).prop_map(Json::from),
    ]
}

const FIELDS: [&str; 11] = [
    "format",
    "version",
    "dataset_fingerprint",
    "pipeline_fingerprint",
    "seed",
    "epoch",
    "consumed",
    "samples_per_step",
    "world_size",
    "num_workers",
    "extra",
];

/// A valid state with some fields replaced, removed or added.
fn mutated_state() -> impl Strategy<Value = String> {
    let edit = (0..FIELDS.len(), any::<bool>(), any_json());
    prop::collection::vec(edit, 0..4).prop_map(|edits| {
        let mut v = fixture().valid.clone();
        let obj = v.as_object_mut().unwrap();
        for (field, remove, value) in edits {
            if remove {
                obj.remove(FIELDS[field]);
            } else {
                obj.insert(FIELDS[field].to_string(), value);
            }
        }
        v.to_string()
    })
}

static TRIED: AtomicUsize = AtomicUsize::new(0);
static PARSED: AtomicUsize = AtomicUsize::new(0);
static RESTORED: AtomicUsize = AtomicUsize::new(0);

/// Checks one state text against every loader.
fn check(text: &str) {
    TRIED.fetch_add(1, Ordering::Relaxed);
    let Ok(state) = LoaderState::from_json(text) else {
        return;
    };
    PARSED.fetch_add(1, Ordering::Relaxed);
    for loader in &fixture().loaders {
        if loader.restore(&state).is_err() {
            continue;
        }
        RESTORED.fetch_add(1, Ordering::Relaxed);
        // A restored position: the next batch is a full batch or the epoch
        // ends; never a panic or a batch of another size.
        if let Some(batch) = loader.iter().next() {
            let batch = batch.expect("a restored loader reads its data");
            assert!(batch.len() <= 4 && !batch.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_states_never_panic(text in mutated_state()) {
        check(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        check(&text);
    }

    #[test]
    fn consumed_and_epoch_anywhere_never_panic(
        epoch in prop_oneof![0u64..4, edge_u64(), any::<u64>()],
        consumed in prop_oneof![0u64..200, edge_u64(), any::<u64>()],
        world in prop_oneof![1u64..5, edge_u64()],
    ) {
        let mut v = fixture().valid.clone();
        v["epoch"] = json!(epoch);
        v["consumed"] = json!(consumed);
        v["world_size"] = json!(world);
        check(&v.to_string());
    }
}

/// Runs the positions target again with counters: every generated case
/// reaches `check`, and a good share of them restore and read a batch.
#[test]
fn the_fuzz_reaches_restore_and_iteration() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let (t0, r0) = (
        TRIED.load(Ordering::Relaxed),
        RESTORED.load(Ordering::Relaxed),
    );
    runner
        .run(&(0u64..4, 0u64..120), |(epoch, consumed)| {
            let mut v = fixture().valid.clone();
            v["epoch"] = json!(epoch);
            v["consumed"] = json!(consumed);
            check(&v.to_string());
            Ok(())
        })
        .unwrap();
    let tried = TRIED.load(Ordering::Relaxed) - t0;
    let restored = RESTORED.load(Ordering::Relaxed) - r0;
    eprintln!(
        "loader-state fuzz: {} texts tried in all, {} parsed, {} restores (this target: {tried} tried, {restored} restored)",
        TRIED.load(Ordering::Relaxed),
        PARSED.load(Ordering::Relaxed),
        RESTORED.load(Ordering::Relaxed)
    );
    assert!(tried >= 2_000, "{tried}");
    // Positions 0..=60 of 0..120 are in range: about half restore.
    assert!(restored >= 800, "in-range positions restore: {restored}");
}
