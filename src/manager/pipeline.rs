//! The set-up sample space: which rows survive the on-the-fly filter, how
//! they are sharded and packed, and how sample `i` is read.

use crate::data::{Column, Example, Table, Value};
use crate::loader::SampleReader;
use crate::plan::{PackIndex, Piece};
use crate::registry::{Ctx, Kwargs, MapFn, ProcessError};
use std::ops::Range;
use std::sync::Arc;

/// Row positions kept after the on-the-fly filter.
#[derive(Debug, Clone)]
pub enum RowSet {
    /// Every row `0..n` (no filter: costs no memory).
    All(usize),
    /// The kept rows, ascending.
    Some(Vec<u32>),
}

impl RowSet {
    /// Number of kept rows.
    pub fn len(&self) -> usize {
        match self {
            RowSet::All(n) => *n,
            RowSet::Some(v) => v.len(),
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
        }
    }

    /// Positions whose table rows fall in `rows`.
    pub fn positions_in(&self, rows: Range<usize>) -> Range<usize> {
        match self {
            RowSet::All(_) => rows,
            RowSet::Some(v) => {
                v.partition_point(|&r| (r as usize) < rows.start)
                    ..v.partition_point(|&r| (r as usize) < rows.end)
            }
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

    fn read_packed(&self, index: &PackIndex, column: &Column, block: u64) -> Example {
        let spec = index.spec();
        let n = spec.block_size;
        let mut ids = Vec::with_capacity(n);
        let mut mask = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(if spec.source_ids { n } else { 0 });
        let id_col = self.table.column("id");
        let source_of = |pos: usize| id_col.map(|c| c.int(self.rows.row(pos))).unwrap_or(-1);
        for piece in index.pieces(block) {
            let (pos, before) = (ids.len(), ids.len());
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
                    let toks = column.tokens(self.rows.row(*p));
                    ids.extend(r.clone().map(|i| toks.get(i) as i64));
                    source_of(*p)
                }
                Piece::Pad(k) => {
                    ids.resize(ids.len() + k, spec.pad_id as i64);
                    mask.resize(mask.len() + k, 0);
                    if spec.source_ids {
                        sources.resize(sources.len() + k, -1);
                    }
                    continue;
                }
            };
            let added = ids.len() - before;
            mask.resize(pos + added, 1);
            if spec.source_ids {
                sources.resize(sources.len() + added, source);
            }
        }
        let mut e = Example::new()
            .with("input_ids", Value::List(ids))
            .with("attention_mask", Value::List(mask))
            .with("token_type_ids", Value::List(vec![0; n]));
        if spec.source_ids {
            e.set("source_ids", Value::List(sources));
        }
        e
    }
}

impl SampleReader for Pipeline {
    fn read(&self, sample: u64) -> crate::Result<Example> {
        match &self.layout {
            Layout::Rows => {
                let e = self.table.row(self.rows.row(sample as usize));
                match &self.processor {
                    Some((name, f, kw)) => Ok(f(e, &self.ctx, kw).map_err(|err| {
                        ProcessError::failed(name, format!("sample {sample}: {err}"))
                    })?),
                    None => Ok(e),
                }
            }
            Layout::Packed { index, column } => {
                let col = self.table.column(column).expect("checked at setup");
                Ok(self.read_packed(index, col, sample))
            }
        }
    }
}
