//! The set-up sample space: which rows survive the on-the-fly filter, how
//! they are sharded and packed, and how sample `i` is read.

use crate::collate::{Collate, PadMode, StackCollator};
use crate::data::{Array2, Batch};
use crate::data::{Column, ColumnKind, DataError, Example, Table, Value};
use crate::loader::{collate_examples, ReadError, SampleReader};
use crate::plan::{PackIndex, Piece};
use crate::registry::{Ctx, Kwargs, MapFn, ProcessError};
use std::ops::Range;
use std::sync::Arc;

/// Runs the per-example function `f` on `e` and merges its output into the
/// example, as `datasets.map(f, remove_columns=R)` does: the input columns
/// that `remove` selects (R) are dropped, then every column `f` returns is
/// set (replacing an input column of that name in place, else appended).
/// A column `f` does not return is kept unless `remove` drops it. The one
/// place where preprocess functions and on-the-fly processors are applied.
pub(crate) fn apply_map(
    f: &MapFn,
    mut e: Example,
    ctx: &Ctx,
    kw: &Kwargs,
    remove: impl Fn(&str) -> bool,
) -> Result<Example, ProcessError> {
    let out = f(&e, ctx, kw)?;
    e.retain(|n| !remove(n));
    e.update(out);
    Ok(e)
}

/// Row positions kept after the on-the-fly filter (and repeated by a
/// replicating group processor).
#[derive(Debug, Clone)]
pub enum RowSet {
    /// Every row `0..n` (no filter: costs no memory).
    All(usize),
    /// The kept rows, ascending.
    Some(Vec<u32>),
    /// Each position of `rows` `copies` times in a row (`replicate_examples`):
    /// position `p` is row `rows.row(p / copies)`; costs no memory.
    Repeated {
        /// The rows repeated.
        rows: Box<RowSet>,
        /// Copies of each (at least 1).
        copies: usize,
    },
}

impl RowSet {
    /// Number of kept rows (copies counted).
    pub fn len(&self) -> usize {
        match self {
            RowSet::All(n) => *n,
            RowSet::Some(v) => v.len(),
            RowSet::Repeated { rows, copies } => rows.len().saturating_mul(*copies),
        }
    }

    /// True when no row is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Table row at position `pos`.
    pub fn row(&self, pos: usize) -> usize {
        match self {
            RowSet::All(_) => pos,
            RowSet::Some(v) => v[pos] as usize,
            RowSet::Repeated { rows, copies } => rows.row(pos / copies),
        }
    }

    /// Positions whose table rows fall in `rows` (a contiguous range, since
    /// positions follow the table's row order).
    pub fn positions_in(&self, rows: Range<usize>) -> Range<usize> {
        match self {
            RowSet::All(_) => rows,
            RowSet::Some(v) => {
                v.partition_point(|&r| (r as usize) < rows.start)
                    ..v.partition_point(|&r| (r as usize) < rows.end)
            }
            RowSet::Repeated {
                rows: inner,
                copies,
            } => {
                let r = inner.positions_in(rows);
                r.start.saturating_mul(*copies)..r.end.saturating_mul(*copies)
            }
        }
    }

    /// This set with each position repeated `copies` times in a row
    /// (`copies` of 1, or 0 taken as 1, leaves it as is).
    pub fn repeated(self, copies: usize) -> Self {
        if copies <= 1 {
            return self;
        }
        RowSet::Repeated {
            rows: Box::new(self),
            copies,
        }
    }

    /// Copies of each kept row (1 unless repeated).
    pub fn copies(&self) -> usize {
        match self {
            RowSet::Repeated { copies, .. } => *copies,
            _ => 1,
        }
    }
}

/// How samples map to rows.
#[derive(Debug, Clone)]
pub enum Layout {
    /// Sample i is kept row i.
    Rows,
    /// Sample i is packed block i, reading `column`.
    Packed {
        /// The block index.
        index: PackIndex,
        /// The packed token column.
        column: String,
    },
}

/// The sample space of a set-up manager, and the reader of its samples.
pub struct Pipeline {
    pub(crate) table: Table,
    pub(crate) rows: RowSet,
    pub(crate) layout: Layout,
    /// Samples per shard in iterable mode.
    pub(crate) shard_sizes: Option<Arc<Vec<u64>>>,
    pub(crate) processor: Option<(String, MapFn, Kwargs)>,
    pub(crate) ctx: Ctx,
    /// Fingerprint of the table (see [`Table::fingerprint`]).
    pub(crate) dataset_fingerprint: String,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("rows", &self.rows.len())
            .field("samples", &self.num_samples())
            .field("shard_sizes", &self.shard_sizes)
            .finish()
    }
}

impl Pipeline {
    /// The underlying table (cache or in memory).
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Fingerprint of the underlying data.
    pub fn dataset_fingerprint(&self) -> &str {
        &self.dataset_fingerprint
    }

    /// Kept rows.
    pub fn rows(&self) -> &RowSet {
        &self.rows
    }

    /// Number of samples S (kept rows, or packed blocks).
    pub fn num_samples(&self) -> u64 {
        match &self.layout {
            Layout::Rows => self.rows.len() as u64,
            Layout::Packed { index, .. } => index.num_blocks(),
        }
    }

    /// Samples per shard (iterable mode).
    pub fn shard_sizes(&self) -> Option<&Arc<Vec<u64>>> {
        self.shard_sizes.as_ref()
    }

    /// Appends block `block`'s input ids, attention mask and (when the
    /// layout records them) source ids to the given buffers; no allocation.
    /// A damaged row is an error naming the column's file and the row.
    fn write_block(
        &self,
        index: &PackIndex,
        column: Option<&Column>,
        block: u64,
        ids: &mut Vec<i64>,
        mask: &mut Vec<i64>,
        mut sources: Option<&mut Vec<i64>>,
    ) -> Result<(), DataError> {
        let spec = index.spec();
        // Only an int64 `id` identifies a row (a string id is not a source id).
        let id_col = self
            .table
            .column("id")
            .filter(|c| c.schema().kind == ColumnKind::Int64);
        let source_of = |pos: usize| {
            id_col
                .and_then(|c| c.int(self.rows.row(pos)).ok())
                .unwrap_or(-1)
        };
        index.for_each_piece(block, |piece| {
            let before = ids.len();
            let source = match &piece {
                Piece::Bos(p) => {
                    ids.push(spec.bos.expect("bos piece has an id") as i64);
                    source_of(*p)
                }
                Piece::Eos(p) => {
                    ids.push(spec.eos.expect("eos piece has an id") as i64);
                    source_of(*p)
                }
                Piece::Tokens(p, r) => {
                    let col = column.expect("a non-empty packed table has its token column");
                    let row = self.rows.row(*p);
                    let toks = col.tokens(row)?;
                    if r.end > toks.len() {
                        return Err(col.row_error(
                            row,
                            format!(
                                "the packing index reads ids {r:?} but the row has {}",
                                toks.len()
                            ),
                        ));
                    }
                    toks.extend_range_into(r.clone(), ids);
                    source_of(*p)
                }
                Piece::Pad(k) => {
                    ids.resize(ids.len() + k, spec.pad_id as i64);
                    mask.resize(mask.len() + k, 0);
                    if let Some(s) = sources.as_deref_mut() {
                        s.resize(s.len() + k, -1);
                    }
                    return Ok(());
                }
            };
            let added = ids.len() - before;
            mask.resize(mask.len() + added, 1);
            if let Some(s) = sources.as_deref_mut() {
                s.resize(s.len() + added, source);
            }
            Ok(())
        })
    }

    fn read_packed(
        &self,
        index: &PackIndex,
        column: Option<&Column>,
        block: u64,
    ) -> Result<Example, DataError> {
        let spec = index.spec();
        let n = spec.block_size;
        let mut ids = Vec::with_capacity(n);
        let mut mask = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(if spec.source_ids { n } else { 0 });
        self.write_block(
            index,
            column,
            block,
            &mut ids,
            &mut mask,
            spec.source_ids.then_some(&mut sources),
        )?;
        let mut e = Example::new()
            .with("input_ids", Value::List(ids))
            .with("attention_mask", Value::List(mask))
            .with("token_type_ids", Value::List(vec![0; n]));
        if spec.source_ids {
            e.set("source_ids", Value::List(sources));
        }
        Ok(e)
    }

    /// Fast path: rows stacked straight from the columns into the batch.
    /// Errors keep their type (a damaged row is a [`DataError`]).
    fn stack_rows(&self, samples: &[u64], stack: &StackCollator) -> Result<Batch, ReadError> {
        let rows: Vec<usize> = samples.iter().map(|&s| self.rows.row(s as usize)).collect();
        let fail = |reason: String| ProcessError::failed(stack.name(), reason);
        let mut batch = Batch::default();
        for col in self
            .table
            .columns()
            .iter()
            .filter(|c| c.schema().kind == ColumnKind::Tokens)
        {
            let name = &col.schema().name;
            let width = match stack.pad() {
                PadMode::Fixed(n) => n,
                PadMode::Dynamic => {
                    let mut max = 0;
                    for &r in &rows {
                        max = max.max(col.list_len(r)?);
                    }
                    max
                }
                PadMode::None => {
                    let w = col.list_len(rows[0])?;
                    for (i, &r) in rows.iter().enumerate() {
                        let n = col.list_len(r)?;
                        if n != w {
                            return Err(fail(format!(
                                "column `{name}` has length {w} in example 0 but {n} in example {i}; use the `pad_truncate` or `dynamic_padding` collator for variable-length rows"
                            ))
                            .into());
                        }
                    }
                    w
                }
            };
            let pad = stack.pad_value(name);
            let mut data = Vec::with_capacity(width * rows.len());
            // Rows are read in sample order, which is random for map-style
            // data: start loading up to 64 rows (a whole typical batch) ahead
            // of the copy, so their memory and TLB misses overlap.
            const AHEAD: usize = 64;
            for &r in rows.iter().take(AHEAD) {
                col.prefetch_row(r);
            }
            for (k, &r) in rows.iter().enumerate() {
                if let Some(&next) = rows.get(k + AHEAD) {
                    col.prefetch_row(next);
                }
                let toks = col.tokens(r)?;
                let n = toks.len().min(width);
                toks.extend_range_into(0..n, &mut data);
                data.resize(data.len() + (width - n), pad);
            }
            batch.insert(name, Array2::new(data, [rows.len(), width]));
        }
        match self
            .table
            .column("id")
            .filter(|c| c.schema().kind == ColumnKind::Int64)
        {
            Some(ids) => batch.ids = rows.iter().map(|&r| ids.int(r)).collect::<Result<_, _>>()?,
            None if stack.require_ids() => {
                return Err(fail(
                    "example 0 in the batch has no int64 `id` column; id tracking needs one".into(),
                )
                .into())
            }
            None => {}
        }
        Ok(batch)
    }

    /// Fast path: packed blocks written straight into the batch buffers.
    fn stack_packed(
        &self,
        index: &PackIndex,
        column: Option<&Column>,
        samples: &[u64],
        stack: &StackCollator,
    ) -> Result<Batch, ReadError> {
        let spec = index.spec();
        if stack.require_ids() {
            return Err(ProcessError::failed(
                stack.name(),
                "example 0 in the batch has no int64 `id` column; id tracking needs one",
            )
            .into());
        }
        let block = spec.block_size;
        let width = match stack.pad() {
            PadMode::Fixed(n) => n,
            _ => block,
        };
        let b = samples.len();
        let mut ids = Vec::with_capacity(b * block.max(width));
        let mut mask = Vec::with_capacity(b * block.max(width));
        let mut sources = Vec::with_capacity(if spec.source_ids {
            b * block.max(width)
        } else {
            0
        });
        for &s in samples {
            let start = ids.len();
            self.write_block(
                index,
                column,
                s,
                &mut ids,
                &mut mask,
                spec.source_ids.then_some(&mut sources),
            )?;
            if width != block {
                ids.resize(start + width, stack.pad_value("input_ids"));
                mask.resize(start + width, 0);
                if spec.source_ids {
                    sources.resize(start + width, 0);
                }
            }
        }
        let mut types = vec![0i64; b * width];
        if width > block {
            for row in types.chunks_mut(width) {
                row[block..].fill(2);
            }
        }
        let mut batch = Batch::default();
        batch.insert("input_ids", Array2::new(ids, [b, width]));
        batch.insert("attention_mask", Array2::new(mask, [b, width]));
        batch.insert("token_type_ids", Array2::new(types, [b, width]));
        if spec.source_ids {
            batch.insert("source_ids", Array2::new(sources, [b, width]));
        }
        Ok(batch)
    }
}

impl SampleReader for Pipeline {
    fn read(&self, sample: u64) -> Result<Example, ReadError> {
        match &self.layout {
            Layout::Rows => {
                let e = self.table.row(self.rows.row(sample as usize))?;
                match &self.processor {
                    Some((name, f, kw)) => {
                        Ok(apply_map(f, e, &self.ctx, kw, |_| false).map_err(|err| {
                            ProcessError::failed(name, format!("sample {sample}: {err}"))
                        })?)
                    }
                    None => Ok(e),
                }
            }
            Layout::Packed { index, column } => {
                Ok(self.read_packed(index, self.table.column(column), sample)?)
            }
        }
    }

    fn release_memory(&self) {
        self.table.release_pages();
    }

    fn read_batch(&self, samples: &[u64], collate: &dyn Collate) -> Result<Batch, ReadError> {
        match (collate.as_stack(), &self.layout) {
            (Some(stack), Layout::Rows) if self.processor.is_none() => {
                self.stack_rows(samples, stack)
            }
            (Some(stack), Layout::Packed { index, column }) => {
                self.stack_packed(index, self.table.column(column), samples, stack)
            }
            _ => collate_examples(self, samples, collate),
        }
    }
}
