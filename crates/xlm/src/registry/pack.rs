//! Group processors: packing layouts.
//!
//! A group processor changes the number of samples, so the plan must know
//! its output before iterating. xlm therefore describes packing as a
//! [`PackSpec`] (a pure layout: which tokens go into which block) rather than
//! as an opaque function over batches of examples; the setup stage turns it
//! into a block index from token lengths alone (see `plan::PackIndex`).

use super::kwargs::{block_size, bool_or, opt_str, opt_usize};
use super::{Ctx, GroupFn, Kwargs, ProcessError};
use crate::plan::PackSpec;
use std::sync::Arc;

/// `pack_sequences(block_size, drop_last, use_bos)`: `[BOS] seq [EOS]` (or
/// `seq [EOS]`) per row; needs an EOS id; `use_bos` with no BOS uses EOS.
fn pack_sequences(kw: &Kwargs, ctx: &Ctx) -> Result<PackSpec, ProcessError> {
    const NAME: &str = "pack_sequences";
    let specials = ctx
        .tokenizer
        .as_ref()
        .map(|t| t.specials())
        .unwrap_or_default();
    let eos = opt_usize(kw, NAME, "eos_id")?
        .map(|v| u32::try_from(v).map_err(|_| bad_id(NAME, "eos_id", v)))
        .transpose()?
        .or(specials.eos)
        .ok_or_else(|| {
            ProcessError::failed(
                NAME,
                "needs an EOS id: the tokenizer has no EOS token and no `eos_id` kwarg was given",
            )
        })?;
    let use_bos = bool_or(kw, NAME, "use_bos", false)?;
    let bos = use_bos.then(|| specials.bos.unwrap_or(eos));
    Ok(PackSpec {
        function: NAME.into(),
        column: opt_str(kw, NAME, "column")?.map(str::to_string),
        block_size: block_size(kw, NAME, ctx.block_size)?,
        bos,
        eos: Some(eos),
        drop_last: bool_or(kw, NAME, "drop_last", true)?,
        pad_id: specials.pad.unwrap_or(0),
        source_ids: false,
    })
}

/// `pack_with_id(block_size, drop_last)`: concatenates rows (no markers) into
/// blocks and records, per token, the `id` of its source row in `source_ids`.
fn pack_with_id(kw: &Kwargs, ctx: &Ctx) -> Result<PackSpec, ProcessError> {
    const NAME: &str = "pack_with_id";
    let specials = ctx
        .tokenizer
        .as_ref()
        .map(|t| t.specials())
        .unwrap_or_default();
    Ok(PackSpec {
        function: NAME.into(),
        column: opt_str(kw, NAME, "column")?.map(str::to_string),
        block_size: block_size(kw, NAME, ctx.block_size)?,
        bos: None,
        eos: None,
        drop_last: bool_or(kw, NAME, "drop_last", true)?,
        pad_id: specials.pad.unwrap_or(0),
        source_ids: true,
    })
}

pub(super) fn builtin_groups() -> Vec<(&'static str, GroupFn, &'static [&'static str])> {
    vec![
        (
            "pack_sequences",
            Arc::new(pack_sequences),
            &["block_size", "drop_last", "use_bos", "eos_id", "column"],
        ),
        (
            "pack_with_id",
            Arc::new(pack_with_id),
            &["block_size", "drop_last", "column"],
        ),
    ]
}

/// A token-id kwarg that does not fit the cache's u32 ids.
fn bad_id(function: &str, kwarg: &str, v: usize) -> ProcessError {
    ProcessError::BadKwarg {
        function: function.to_string(),
        kwarg: kwarg.to_string(),
        reason: format!("{v} is not a token id (at most 4294967295)"),
    }
}
