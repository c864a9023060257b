//! prepare_data: download -> split -> filter -> preprocess -> cache.
//!
//! The source is streamed in chunks of [`CHUNK_ROWS`] rows; groups of chunks
//! are preprocessed in parallel (rayon, `num_proc` threads) and written to
//! the cache in order. Chunk boundaries do not depend on the thread count,
//! so the cache is byte-identical for any `num_proc`.

use super::config::SplitSide;
use super::pipeline::apply_map;
use super::{DatasetManager, DatasetManagerConfig, PrepareArgs};
use crate::cache::{self, CacheWriter};
use crate::data::{Table, TableBuilder};
use crate::plan::Rng;
use crate::registry::{Ctx, FilterFn, Kwargs, MapFn, ProcessError};
use crate::source::{chunk_table, load_selected, load_selected_chunks, Stopped};
use crate::Result;
use rayon::prelude::*;

/// Rows per preprocessing chunk.
pub const CHUNK_ROWS: usize = 4096;

impl DatasetManager {
    /// Downloads, preprocesses and caches the dataset (run on rank 0).
    ///
    /// - `use_manual_cache = false`: download + preprocess, return it, write nothing;
    /// - cache missing: download, filter, preprocess, write the cache, return it;
    /// - cache present and `rewrite_manual_cache`: download again, replace the cache, return it;
    /// - cache present: return it if `load`, else `None`.
    ///
    /// The unconditional-generation kind has no data: nothing is read or
    /// written, and the result is `None` (as xlm-core's).
    pub fn prepare_data(&self, args: &PrepareArgs) -> Result<Option<Table>> {
        if self.kind == super::ManagerKind::UnconditionalGeneration {
            return Ok(None);
        }
        if !self.config.use_manual_cache {
            let mut b = TableBuilder::new();
            self.prepared_chunks(args, &mut |chunk| {
                for e in chunk.rows() {
                    b.push(&e?)?;
                }
                Ok(())
            })?;
            return Ok(Some(b.finish()));
        }
        let dir = self.cache_dir(&args.manual_cache_dir);
        if cache::is_cache(&dir) && !self.config.rewrite_manual_cache {
            return Ok(if args.load {
                Some(cache::open(&dir)?)
            } else {
                None
            });
        }
        let mut writer = CacheWriter::create(&dir)?;
        self.prepared_chunks(args, &mut |chunk| Ok(writer.append(&chunk)?))?;
        writer.finish()?;
        Ok(Some(cache::open(&dir)?))
    }

    /// Streams the preprocessed rows, in order, as chunks.
    fn prepared_chunks(
        &self,
        args: &PrepareArgs,
        sink: &mut dyn FnMut(Table) -> Result<()>,
    ) -> Result<()> {
        let c = &self.config;
        let no_kwargs = Kwargs::new();
        let steps = Steps {
            filter: match &c.filter_fn {
                Some(f) => Some(self.registry.filter("filter_fn", f, &no_kwargs)?.clone()),
                None => None,
            },
            map: match &c.preprocess_function {
                Some(f) => Some((
                    f.clone(),
                    self.registry
                        .preprocess("preprocess_function", f, &c.preprocess_function_kwargs)?
                        .clone(),
                )),
                None => None,
            },
            ctx: Ctx {
                tokenizer: args.tokenizer.clone(),
                block_size: None,
            },
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(args.num_proc.unwrap_or(0))
            .thread_name(|i| format!("xlm-prepare-{i}"))
            .build()
            .map_err(|e| {
                ProcessError::failed("prepare_data", format!("cannot start worker threads: {e}"))
            })?;
        let group = pool.current_num_threads().max(1) * 2;
        let mut progress = args
            .progress
            .as_ref()
            .map(|p| p.begin(&format!("prepare {}", self.full_name), None));
        let mut pending: Vec<(usize, Table)> = Vec::new();
        let mut next_row = 0usize;
        let mut flush = |pending: &mut Vec<(usize, Table)>| -> Result<()> {
            let outs: Vec<Result<Table>> = pool.install(|| {
                std::mem::take(pending)
                    .into_par_iter()
                    .map(|(first, t)| self.preprocess_chunk(t, first, &steps))
                    .collect()
            });
            for out in outs {
                let out = out?;
                if let Some(p) = progress.as_mut() {
                    p.advance(
                        out.len() as u64,
                        out.list_elements("input_ids")
                            .max(out.list_elements("token_ids")),
                    );
                }
                sink(out)?;
            }
            Ok(())
        };
        let mut on_chunk = |t: Table| -> Result<()> {
            let n = t.len();
            pending.push((next_row, t));
            next_row += n;
            if pending.len() >= group {
                flush(&mut pending)?;
            }
            Ok(())
        };
        // The source only learns that the sink stopped; the sink's own
        // error is kept here and wins over the source's `Stopped`.
        let mut failure = None;
        let streamed = {
            let mut sink = |t: Table| {
                on_chunk(t).map_err(|e| {
                    failure = Some(e);
                    Stopped
                })
            };
            if c.train_test_split.is_some() {
                chunk_table(&self.download()?, CHUNK_ROWS, &mut sink)
            } else {
                // Split slicing (`train[:-100000]`) is applied here, for every source.
                load_selected_chunks(&*self.source, &self.full_name, CHUNK_ROWS, &mut sink)
            }
        };
        if let Some(e) = failure {
            return Err(e);
        }
        streamed?;
        flush(&mut pending)?;
        if let Some(p) = progress {
            p.finish();
        }
        Ok(())
    }

    /// Rows from the source; with `train_test_split`, the chosen side of the
    /// `train` split.
    pub(crate) fn download(&self) -> Result<Table> {
        let Some(tts) = &self.config.train_test_split else {
            return Ok(load_selected(&*self.source, &self.full_name)?);
        };
        let table = self.source.load(&self.full_name.with_split("train"))?;
        let n = table.len();
        let n_test = if tts.size < 1.0 {
            (tts.size * n as f64).ceil() as usize
        } else {
            tts.size as usize
        };
        if n_test >= n {
            return Err(super::ConfigError::Invalid {
                key: "train_test_split.size",
                reason: format!("a test side of {n_test} rows leaves no train rows out of {n}"),
            }
            .into());
        }
        let mut perm: Vec<usize> = (0..n).collect();
        Rng::new(&[tts.seed, 0x7474_7370]).shuffle(&mut perm);
        let side = match tts.split {
            SplitSide::Test => &perm[..n_test],
            SplitSide::Train => &perm[n_test..],
        };
        let mut b = TableBuilder::new();
        for &i in side {
            b.push(&table.row(i)?)?;
        }
        Ok(b.finish())
    }

    /// filter_fn, then preprocess_function (merged into each row, see
    /// [`apply_map`]), on one chunk whose first row is row `first` of the
    /// dataset. `columns_to_keep` / `columns_to_remove` choose the *input*
    /// columns the preprocess step drops (xlm-core's `remove_columns`): the
    /// columns the function returns are always kept, a `columns_to_remove`
    /// entry that is not an input column is an error, a missing
    /// `columns_to_keep` entry is not. Without a preprocess function neither
    /// list applies (see [`ignored_column_lists`]).
    fn preprocess_chunk(&self, chunk: Table, first: usize, steps: &Steps) -> Result<Table> {
        let c = &self.config;
        if steps.filter.is_none() && steps.map.is_none() {
            return Ok(chunk);
        }
        // As xlm-core (`if self.columns_to_keep:`), an empty list is no list.
        let keep = c.columns_to_keep.as_deref().filter(|k| !k.is_empty());
        let remove = c.columns_to_remove.as_deref().unwrap_or_default();
        if steps.map.is_some() && !chunk.is_empty() {
            let missing: Vec<String> = remove
                .iter()
                .filter(|col| chunk.column(col).is_none())
                .map(|col| format!("column `{col}`"))
                .collect();
            if !missing.is_empty() {
                return Err(super::ConfigError::Invalid {
                    key: "columns_to_remove",
                    reason: format!(
                        "{} {} not in the data (columns: {})",
                        missing.join(", "),
                        if missing.len() == 1 { "is" } else { "are" },
                        chunk
                            .schema()
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
                .into());
            }
        }
        let dropped = |n: &str| {
            keep.is_some_and(|k| !k.iter().any(|x| x == n)) || remove.iter().any(|x| x == n)
        };
        let no_kwargs = Kwargs::new();
        let mut out = TableBuilder::new();
        for (i, e) in chunk.rows().enumerate() {
            let mut e = e?;
            if let Some(f) = &steps.filter {
                if !f(&e, &no_kwargs)? {
                    continue;
                }
            }
            if let Some((name, f)) = &steps.map {
                e = apply_map(f, e, &steps.ctx, &c.preprocess_function_kwargs, dropped).map_err(
                    |err| ProcessError::failed(name, format!("row {}: {err}", first + i)),
                )?;
            }
            out.push(&e)?;
        }
        Ok(out.finish())
    }
}

/// The warning for `columns_to_keep` / `columns_to_remove` set without a
/// `preprocess_function`: as in xlm-core, they only choose the columns the
/// preprocess step drops, so without one they are ignored.
pub(super) fn ignored_column_lists(c: &DatasetManagerConfig) -> Option<String> {
    if c.preprocess_function.is_some() {
        return None;
    }
    let set: Vec<&str> = [
        ("columns_to_keep", &c.columns_to_keep),
        ("columns_to_remove", &c.columns_to_remove),
    ]
    .into_iter()
    .filter(|(_, v)| v.as_ref().is_some_and(|v| !v.is_empty()))
    .map(|(k, _)| k)
    .collect();
    (!set.is_empty()).then(|| {
        format!(
            "{}: {} only apply with a preprocess_function (they choose the input columns it drops); without one they are ignored",
            c.full_name,
            set.join(" and ")
        )
    })
}

/// The prepare-time functions, resolved once.
struct Steps {
    filter: Option<FilterFn>,
    map: Option<(String, MapFn)>,
    ctx: Ctx,
}
