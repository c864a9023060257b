//! setup: open the cache and build the sample space (filter, shards, packing).

use super::pipeline::{Layout, Pipeline, RowSet};
use super::{
    DatasetManager, EmptyDatasetSpec, LifecycleError, ManagerKind, PrepareArgs, SetupArgs, Stage,
    Topology,
};
use crate::cache;
use crate::data::{ColumnKind, Table};
use crate::plan::{shard_ranges, PackIndex};
use crate::registry::{Ctx, Kwargs};
use crate::Result;
use std::sync::Arc;

/// Most copies `replicate_examples` may make of each row.
const MAX_COPIES: usize = 1 << 20;
/// Most samples a replicated or generated sample space may hold (2^40).
const MAX_SAMPLES: usize = 1 << 40;

impl DatasetManager {
    /// Builds the sample space for `stage` (every rank) and remembers the
    /// rank and world size for [`dataloader`](Self::dataloader). Builds
    /// nothing when `stage` is not in `stages` or when already set up (a
    /// later call may still change the rank, e.g. to simulate ranks in one
    /// process); returns whether it built the sample space.
    ///
    /// The stages are [`stages`](Self::stages) (every stage for the
    /// unconditional-generation kind, whose sample space is `num_examples`
    /// copies of [`EmptyDatasetSpec::example`], built here: no cache is
    /// read). A replicating group processor (`replicate_examples`) repeats
    /// every kept row `num_samples` times in place, the copies next to each
    /// other.
    pub fn setup(&mut self, stage: Stage, args: &SetupArgs) -> Result<bool> {
        let topology = Topology::new(args.is_ddp, args.rank, args.world_size)?;
        if !self.stages.contains(&stage) {
            return Ok(false);
        }
        self.topology = Some(topology);
        if self.pipeline.is_some() {
            return Ok(false);
        }
        if self.kind == ManagerKind::UnconditionalGeneration {
            self.pipeline = Some(Arc::new(self.empty_dataset(args)?));
            return Ok(true);
        }
        let table = if self.config.use_manual_cache {
            cache::open(&self.cache_dir(&args.manual_cache_dir))?
        } else {
            let prep = PrepareArgs {
                manual_cache_dir: args.manual_cache_dir.clone(),
                tokenizer: args.tokenizer.clone(),
                num_proc: None,
                progress: None,
                load: true,
            };
            self.prepare_data(&prep)?
                .expect("prepare_data without cache returns the data")
        };
        let ctx = Ctx {
            tokenizer: args.tokenizer.clone(),
            block_size: args.block_size,
        };
        let c = &self.config;
        let no_kwargs = Kwargs::new();
        let rows = match &c.on_the_fly_filter_fn {
            None => RowSet::All(table.len()),
            Some(name) => {
                let f = self
                    .registry
                    .filter("on_the_fly_filter_fn", name, &no_kwargs)?;
                let mut kept = Vec::new();
                for i in 0..table.len() {
                    if f(&table.row(i)?, &no_kwargs)? {
                        // Kept positions are stored as u32 (4 B per row).
                        kept.push(u32::try_from(i).map_err(|_| LifecycleError::Setup {
                            full_name: self.full_name.to_string(),
                            reason: format!(
                                "on_the_fly_filter_fn over {} rows: at most 4294967296 rows can be filtered at setup; filter at prepare time (filter_fn) instead",
                                table.len()
                            ),
                        })?);
                    }
                }
                RowSet::Some(kept)
            }
        };
        // A replicating group processor: its copies of each row (else a packer).
        let copies = match &c.on_the_fly_group_processor {
            Some(name) => {
                let kw = &c.on_the_fly_group_processor_kwargs;
                match self
                    .registry
                    .replicator("on_the_fly_group_processor", name, kw)?
                {
                    Some(f) => Some(f(kw)?),
                    None => None,
                }
            }
            None => None,
        };
        let rows = match copies {
            Some(n) => {
                // Positions are counted in usize and planned in u64: keep
                // the replicated count far from either limit.
                if n == 0
                    || n > MAX_COPIES
                    || rows.len().checked_mul(n).is_none_or(|t| t > MAX_SAMPLES)
                {
                    return Err(LifecycleError::Setup {
                        full_name: self.full_name.to_string(),
                        reason: format!(
                            "on_the_fly_group_processor_kwargs: {n} copies of {} rows is out of range (1..={MAX_COPIES} copies, at most {MAX_SAMPLES} samples)",
                            rows.len()
                        ),
                    }
                    .into());
                }
                rows.repeated(n)
            }
            None => rows,
        };
        let processor = match &c.on_the_fly_processor {
            Some(name) => Some((
                name.clone(),
                self.registry
                    .processor("on_the_fly_processor", name, &c.on_the_fly_processor_kwargs)?
                    .clone(),
                c.on_the_fly_processor_kwargs.clone(),
            )),
            None => None,
        };
        let shards = c.iterable_dataset_shards.map(|k| {
            shard_ranges(table.len(), k)
                .into_iter()
                .map(|r| rows.positions_in(r))
                .collect::<Vec<_>>()
        });
        let fail = |reason: String| LifecycleError::Setup {
            full_name: self.full_name.to_string(),
            reason,
        };
        // The group step's input columns to drop must exist (as for
        // `datasets.map`); packed blocks and replicated rows keep the
        // group step's outputs, so nothing else is done with them.
        if c.on_the_fly_group_processor.is_some() {
            for col in c.on_the_fly_group_processor_remove_columns.iter().flatten() {
                if table.column(col).is_none() {
                    return Err(fail(format!("on_the_fly_group_processor_remove_columns: column `{col}` is not in the data")).into());
                }
            }
        }
        let packer = c
            .on_the_fly_group_processor
            .as_ref()
            .filter(|_| copies.is_none());
        let (layout, shard_sizes) = match (packer, &shards) {
            (Some(name), Some(shards)) => {
                let kwargs = &c.on_the_fly_group_processor_kwargs;
                let spec = self
                    .registry
                    .group("on_the_fly_group_processor", name, kwargs)?(
                    kwargs, &ctx
                )?;
                let column = spec.column.clone().unwrap_or_else(|| {
                    if table.column("input_ids").is_some() {
                        "input_ids"
                    } else {
                        "token_ids"
                    }
                    .to_string()
                });
                let col = table
                    .column(&column)
                    .filter(|col| col.schema().kind == ColumnKind::Tokens);
                // An empty table (e.g. an empty jsonl file) has no schema and packs to no blocks.
                if col.is_none() && !table.is_empty() {
                    return Err(fail(format!(
                        "{name} packs the token column `{column}`, which the data does not have"
                    ))
                    .into());
                }
                let index = match (col.filter(|c| c.offsets().is_some()), &rows) {
                    // Unfiltered rows: the token column's own offsets are the index.
                    (Some(col), RowSet::All(_)) => PackIndex::build_contiguous(spec, col, shards)?,
                    _ => {
                        // Every kept row's length: its offsets are checked here.
                        let mut lengths = Vec::with_capacity(shards.len());
                        for r in shards.iter() {
                            let mut l = Vec::with_capacity(r.len());
                            for p in r.clone() {
                                l.push(col.map_or(Ok(0), |c| c.list_len(rows.row(p)))?);
                            }
                            lengths.push((r.start, l));
                        }
                        PackIndex::build(spec, lengths)
                    }
                };
                let sizes = index.shard_blocks();
                (Layout::Packed { index, column }, Some(Arc::new(sizes)))
            }
            (_, Some(shards)) => (
                Layout::Rows,
                Some(Arc::new(shards.iter().map(|r| r.len() as u64).collect())),
            ),
            (_, None) => (Layout::Rows, None),
        };
        self.pipeline = Some(Arc::new(Pipeline {
            dataset_fingerprint: table.fingerprint(),
            table,
            rows,
            layout,
            shard_sizes,
            processor,
            ctx,
        }));
        Ok(true)
    }

    /// The unconditional-generation sample space: `num_examples` copies of
    /// the configured empty example, in memory.
    fn empty_dataset(&self, args: &SetupArgs) -> Result<Pipeline> {
        let c = &self.config;
        let spec = EmptyDatasetSpec::from_config(c)?;
        let example = spec.example(args.tokenizer.as_deref())?;
        let n = c.num_examples.unwrap_or(0);
        if n > MAX_SAMPLES {
            return Err(LifecycleError::Setup {
                full_name: "unconditional generation".into(),
                reason: format!("num_examples {n} is out of range (at most {MAX_SAMPLES})"),
            }
            .into());
        }
        // One row, repeated: memory does not grow with num_examples.
        let table = Table::from_examples(std::iter::once(example))?;
        let rows = match n {
            0 => RowSet::Some(Vec::new()),
            n => RowSet::All(1).repeated(n),
        };
        Ok(Pipeline {
            dataset_fingerprint: format!("{}x{n}", table.fingerprint()),
            rows,
            table,
            layout: Layout::Rows,
            shard_sizes: None,
            processor: None,
            ctx: Ctx {
                tokenizer: args.tokenizer.clone(),
                block_size: args.block_size,
            },
        })
    }
}
