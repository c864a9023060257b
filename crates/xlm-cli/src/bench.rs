//! `xlm bench`: throughput of every stage on a synthetic dataset, measured
//! against a memcpy baseline taken in the same run.
//!
//! The parent process builds the data, measures prepare and the memcpy
//! baseline, then runs the loader measurements in a fresh child process
//! (`xlm bench --loader-only`), so the reported peak RSS is the loader
//! phase's alone.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use xlm::data::{Example, Table, Value};
use xlm::manager::{DatasetManager, DatasetManagerConfig, PrepareArgs, SetupArgs, Stage};
use xlm::plan::Rng;
use xlm::source::{synthetic_text_table, MemoryRegistry};
use xlm::tokenizer::{SimpleSpaceTokenizer, Tokenizer};

/// What to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Rows of the synthetic dataset.
    pub rows: usize,
    /// Token ids per row (the maximum, with `min_tokens`).
    pub tokens: usize,
    /// When set, row lengths are uniform in `min_tokens..=tokens`.
    pub min_tokens: Option<usize>,
    /// Examples per batch.
    pub batch_size: usize,
    /// Shards of the iterable and packed modes.
    pub shards: usize,
    /// Shuffle buffer of the iterable and packed modes.
    pub shuffle_buffer: usize,
    /// Block size of the packed mode.
    pub block_size: usize,
    /// Worker counts to measure.
    pub workers: Vec<usize>,
    /// Threads for prepare (`None`: all cores).
    pub num_proc: Option<usize>,
    /// Epochs timed per mode and worker count; the median is reported.
    pub repeats: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            rows: 200_000,
            tokens: 128,
            min_tokens: None,
            batch_size: 32,
            shards: 8,
            shuffle_buffer: 1024,
            block_size: 128,
            workers: vec![0, 1, 2],
            num_proc: None,
            repeats: 3,
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measure {
    /// What was measured.
    pub name: String,
    /// Wall time.
    pub secs: f64,
    /// Examples (rows or packed blocks).
    pub examples: u64,
    /// Token ids.
    pub tokens: u64,
    /// Examples per second.
    pub examples_per_s: f64,
    /// Tokens per second.
    pub tokens_per_s: f64,
    /// Tokens per second relative to the memcpy baseline's int64 values per second.
    pub vs_memcpy: f64,
}

impl Measure {
    fn new(name: &str, secs: f64, examples: u64, tokens: u64) -> Self {
        let secs = secs.max(1e-9);
        Self {
            name: name.into(),
            secs,
            examples,
            tokens,
            examples_per_s: examples as f64 / secs,
            tokens_per_s: tokens as f64 / secs,
            vs_memcpy: 0.0,
        }
    }
}

/// The loader-phase results (from the child process).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoaderReport {
    /// One epoch per mode and worker count.
    pub epochs: Vec<Measure>,
    /// Milliseconds from a fresh manager over the warm cache to its first batch.
    pub first_batch_ms: f64,
    /// Peak resident memory of the loader process (VmHWM), MB: private
    /// memory plus mapped executable and cache pages.
    pub peak_rss_mb: f64,
    /// Largest private (anonymous) resident memory seen after an epoch, MB.
    pub max_rss_anon_mb: f64,
    /// Largest file-backed resident memory (executable + mapped cache pages) seen after an epoch, MB.
    pub max_rss_file_mb: f64,
}

/// Everything `xlm bench` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// The options.
    pub options: BenchOptions,
    /// Copying the epoch's output bytes (int64) in batch-sized copies.
    pub memcpy: Measure,
    /// Token ids -> input_ids, cache write.
    pub prepare: Measure,
    /// Text -> tokenize (SimpleSpaceTokenizer) -> cache write.
    pub prepare_tokenize: Measure,
    /// Loader phase.
    pub loader: LoaderReport,
}

/// A `/proc/self/status` memory field (e.g. `VmHWM:`) in MB; NaN where unavailable.
pub fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn lengths(o: &BenchOptions) -> impl Iterator<Item = usize> + '_ {
    (0..o.rows).map(move |i| match o.min_tokens {
        Some(min) if min < o.tokens => {
            min + Rng::new(&[0x1e4, i as u64]).below((o.tokens - min + 1) as u64) as usize
        }
        _ => o.tokens,
    })
}

fn token_table(o: &BenchOptions) -> Table {
    Table::from_examples(lengths(o).enumerate().map(|(i, len)| {
        let mut rng = Rng::new(&[0xbe4c, i as u64]);
        Example::new().with("id", Value::Int(i as i64)).with(
            "token_ids",
            Value::List((0..len).map(|_| 7 + rng.below(32_000) as i64).collect()),
        )
    }))
    .expect("one schema")
}

fn text_table(o: &BenchOptions) -> Table {
    synthetic_text_table(
        0x7e47,
        lengths(o).enumerate().map(|(i, len)| (i as i64, len)),
    )
}

fn manager(
    cfg: serde_json::Value,
    registry: Option<Arc<MemoryRegistry>>,
) -> xlm::Result<DatasetManager> {
    let config: DatasetManagerConfig =
        serde_json::from_value(cfg).map_err(|e| xlm::manager::ConfigError::Json(e.to_string()))?;
    let mut b = DatasetManager::builder(config);
    if let Some(r) = registry {
        b = b.source(r);
    }
    Ok(b.build()?)
}

fn prepare(
    cfg: serde_json::Value,
    registry: Arc<MemoryRegistry>,
    dir: &Path,
    o: &BenchOptions,
) -> xlm::Result<f64> {
    let dm = manager(cfg, Some(registry))?;
    let t = Instant::now();
    dm.prepare_data(&PrepareArgs {
        manual_cache_dir: dir.to_path_buf(),
        tokenizer: Some(Arc::new(SimpleSpaceTokenizer::test_vocab()) as Arc<dyn Tokenizer>),
        num_proc: o.num_proc,
        load: false,
        progress: None,
    })?;
    Ok(t.elapsed().as_secs_f64())
}

/// The memcpy baseline: `values` int64 values copied from a 64 MB source
/// into freshly allocated batch-sized buffers, as the loader produces them.
pub fn memcpy_baseline(values: u64, batch_values: usize) -> Measure {
    let src: Vec<i64> = (0..(8usize << 20)).map(|i| i as i64).collect();
    let t = Instant::now();
    let (mut done, mut off, mut sink) = (0u64, 0usize, 0i64);
    while done < values {
        let n = batch_values.min((values - done) as usize);
        if off + n > src.len() {
            off = 0;
        }
        let mut v: Vec<i64> = Vec::with_capacity(n);
        v.extend_from_slice(&src[off..off + n]);
        sink = sink.wrapping_add(v[n / 2]);
        off += n;
        done += n as u64;
    }
    std::hint::black_box(sink);
    Measure::new(
        "memcpy baseline (int64 batches)",
        t.elapsed().as_secs_f64(),
        0,
        values,
    )
}

/// Runs the loader measurements over the cache under `dir` (in this process).
pub fn loader_phase(o: &BenchOptions, dir: &Path) -> xlm::Result<LoaderReport> {
    let base = |extra: serde_json::Value, workers: usize| {
        let mut cfg = serde_json::json!({
            "full_name": "mem/bench/train",
            "dataloader_kwargs": {"batch_size": o.batch_size, "num_workers": workers, "drop_last": false},
        });
        for (k, v) in extra.as_object().expect("object") {
            cfg[k] = v.clone();
        }
        cfg
    };
    let collate = if o.min_tokens.is_some() {
        "dynamic_padding"
    } else {
        "default"
    };
    let modes = [
        ("map-style", serde_json::json!({"collate_fn": collate})),
        (
            "map-style sequential",
            serde_json::json!({"collate_fn": collate, "dataloader_kwargs": {"batch_size": o.batch_size, "shuffle": false}}),
        ),
        (
            "iterable",
            serde_json::json!({"collate_fn": if o.min_tokens.is_some() { "dynamic_padding" } else { "default" },
                               "iterable_dataset_shards": o.shards, "shuffle_buffer_size": o.shuffle_buffer}),
        ),
        (
            "packed",
            serde_json::json!({"iterable_dataset_shards": o.shards, "shuffle_buffer_size": o.shuffle_buffer,
                               "on_the_fly_group_processor": "pack_sequences",
                               "on_the_fly_group_processor_kwargs": {"block_size": o.block_size, "use_bos": true, "drop_last": true}}),
        ),
    ];
    let tokenizer: Arc<dyn Tokenizer> = Arc::new(SimpleSpaceTokenizer::test_vocab());
    let setup = SetupArgs {
        tokenizer: Some(tokenizer),
        block_size: Some(o.block_size),
        ..SetupArgs::single(dir)
    };
    // Time to first batch from a warm cache (its files in the OS page cache):
    // one untimed pass brings the pages the first batch reads into the page
    // cache, then a fresh manager is timed through setup, loader, one batch.
    let mut warm = manager(base(modes[0].1.clone(), 0), None)?;
    warm.setup(Stage::Fit, &setup)?;
    warm.get_dataloader("train", false, 0, 1)?
        .iter()
        .next()
        .transpose()?;
    drop(warm);
    let t = Instant::now();
    let mut dm = manager(base(modes[0].1.clone(), 0), None)?;
    dm.setup(Stage::Fit, &setup)?;
    let first = dm
        .get_dataloader("train", false, 0, 1)?
        .iter()
        .next()
        .transpose()?;
    let first_batch_ms = t.elapsed().as_secs_f64() * 1e3;
    drop((first, dm));
    let mut epochs = Vec::new();
    let (mut anon, mut file) = (0f64, 0f64);
    for (name, extra) in &modes {
        for &w in &o.workers {
            let mut cfg = base(extra.clone(), w);
            cfg["dataloader_kwargs"]["num_workers"] = w.into();
            let mut dm = manager(cfg, None)?;
            dm.setup(Stage::Fit, &setup)?;
            let loader = dm.get_dataloader("train", false, 0, 1)?;
            let mut runs = Vec::new();
            for _ in 0..o.repeats.max(1) {
                let t = Instant::now();
                let (mut examples, mut tokens) = (0u64, 0u64);
                for b in &loader {
                    let b = b?;
                    let main = b
                        .get("input_ids")
                        .or_else(|| b.get("token_ids"))
                        .expect("token array");
                    examples += main.shape[0] as u64;
                    tokens += main.data.len() as u64;
                }
                runs.push((t.elapsed().as_secs_f64(), examples, tokens));
                anon = anon.max(status_mb("RssAnon:"));
                file = file.max(status_mb("RssFile:"));
            }
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (secs, examples, tokens) = runs[runs.len() / 2];
            epochs.push(Measure::new(
                &format!("epoch {name}, {w} workers"),
                secs,
                examples,
                tokens,
            ));
        }
    }
    Ok(LoaderReport {
        epochs,
        first_batch_ms,
        peak_rss_mb: status_mb("VmHWM:"),
        max_rss_anon_mb: anon,
        max_rss_file_mb: file,
    })
}

/// Runs the whole benchmark; `loader` runs the loader phase (normally a
/// fresh child process, see the module docs) over the cache directory.
pub fn run(
    o: &BenchOptions,
    dir: Option<PathBuf>,
    loader: impl FnOnce(&Path) -> xlm::Result<LoaderReport>,
) -> xlm::Result<BenchReport> {
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir()
                .map_err(|e| xlm::cache::CacheError::io(std::env::temp_dir(), e))?;
            tmp.path().to_path_buf()
        }
    };
    let registry = Arc::new(MemoryRegistry::new());
    let table = token_table(o);
    let total_tokens = table.list_elements("token_ids");
    registry.insert("mem/bench/train", table);
    let secs = prepare(
        serde_json::json!({"full_name": "mem/bench/train", "preprocess_function": "token_ids_to_input_ids", "columns_to_remove": ["token_ids"], "rewrite_manual_cache": true}),
        registry.clone(),
        &dir,
        o,
    )?;
    let prepare_m = Measure::new(
        "prepare: token ids -> cache",
        secs,
        o.rows as u64,
        total_tokens,
    );
    registry.insert("mem/bench/train", Table::default());
    let texts = text_table(o);
    registry.insert("mem/bench_text/train", texts);
    let secs = prepare(
        serde_json::json!({"full_name": "mem/bench_text/train", "preprocess_function": "tokenize", "columns_to_remove": ["text"], "rewrite_manual_cache": true}),
        registry.clone(),
        &dir,
        o,
    )?;
    let prepare_tok = Measure::new(
        "prepare: tokenize text -> cache",
        secs,
        o.rows as u64,
        total_tokens,
    );
    drop(registry);
    let loader_report = loader(&dir)?;
    let epoch_values = loader_report
        .epochs
        .first()
        .map(|m| m.tokens)
        .unwrap_or(total_tokens);
    // The baseline copies what one map-style epoch outputs (int64 values).
    let memcpy = memcpy_baseline(epoch_values, o.batch_size * o.tokens);
    let rate = memcpy.tokens_per_s;
    let ratio = |mut m: Measure| {
        m.vs_memcpy = m.tokens_per_s / rate;
        m
    };
    Ok(BenchReport {
        options: o.clone(),
        prepare: ratio(prepare_m),
        prepare_tokenize: ratio(prepare_tok),
        loader: LoaderReport {
            epochs: loader_report.epochs.into_iter().map(ratio).collect(),
            ..loader_report
        },
        memcpy: ratio(memcpy),
    })
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.options;
        let len = match o.min_tokens {
            Some(m) => format!("{m}..={} tokens", o.tokens),
            None => format!("{} tokens", o.tokens),
        };
        writeln!(
            f,
            "xlm bench: {} rows x {len}, batch {}, {} shards, shuffle buffer {}, block {}",
            o.rows, o.batch_size, o.shards, o.shuffle_buffer, o.block_size
        )?;
        writeln!(
            f,
            "{:<36} {:>10} {:>12} {:>14} {:>12} {:>10}",
            "measure", "wall (s)", "examples", "examples/s", "M tokens/s", "x memcpy"
        )?;
        let all = [&self.memcpy, &self.prepare, &self.prepare_tokenize]
            .into_iter()
            .chain(self.loader.epochs.iter());
        for m in all {
            writeln!(
                f,
                "{:<36} {:>10.3} {:>12} {:>14.0} {:>12.1} {:>10.2}",
                m.name,
                m.secs,
                m.examples,
                m.examples_per_s,
                m.tokens_per_s / 1e6,
                m.vs_memcpy
            )?;
        }
        writeln!(
            f,
            "first batch from a warm cache: {:.2} ms",
            self.loader.first_batch_ms
        )?;
        writeln!(
            f,
            "loader process peak RSS: {:.1} MB (largest after an epoch: {:.1} MB private, {:.1} MB file-backed = executable + mapped cache pages)",
            self.loader.peak_rss_mb, self.loader.max_rss_anon_mb, self.loader.max_rss_file_mb
        )
    }
}
