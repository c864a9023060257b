//! The built-in collators by name (`collate_fn`).

use super::kwargs::{block_size, opt_usize};
use super::{CollatorFn, Ctx, Kwargs, ProcessError};
use crate::collate::{Collate, PadMode, StackCollator};
use std::sync::Arc;

fn pad_id(kw: &Kwargs, name: &str, ctx: &Ctx) -> Result<i64, ProcessError> {
    Ok(opt_usize(kw, name, "pad_id")?
        .map(|v| {
            i64::try_from(v).map_err(|_| ProcessError::BadKwarg {
                function: name.to_string(),
                kwarg: "pad_id".into(),
                reason: format!("{v} is too large"),
            })
        })
        .transpose()?
        .or_else(|| {
            ctx.tokenizer
                .as_ref()
                .and_then(|t| t.specials().pad)
                .map(i64::from)
        })
        .unwrap_or(0))
}

pub(super) fn builtin_collators() -> Vec<(&'static str, CollatorFn, &'static [&'static str])> {
    vec![
        (
            "default",
            Arc::new(|_: &Kwargs, _: &Ctx| {
                Ok(
                    Arc::new(StackCollator::new("default", PadMode::None, 0, false))
                        as Arc<dyn Collate>,
                )
            }),
            &[],
        ),
        (
            "id_tracking",
            Arc::new(|_: &Kwargs, _: &Ctx| {
                Ok(
                    Arc::new(StackCollator::new("id_tracking", PadMode::None, 0, true))
                        as Arc<dyn Collate>,
                )
            }),
            &[],
        ),
        (
            "pad_truncate",
            Arc::new(|kw: &Kwargs, ctx: &Ctx| {
                let n = block_size(kw, "pad_truncate", ctx.block_size)?;
                Ok(Arc::new(StackCollator::new(
                    "pad_truncate",
                    PadMode::Fixed(n),
                    pad_id(kw, "pad_truncate", ctx)?,
                    false,
                )) as Arc<dyn Collate>)
            }),
            &["block_size", "pad_id"],
        ),
        (
            "dynamic_padding",
            Arc::new(|kw: &Kwargs, ctx: &Ctx| {
                Ok(Arc::new(StackCollator::new(
                    "dynamic_padding",
                    PadMode::Dynamic,
                    pad_id(kw, "dynamic_padding", ctx)?,
                    false,
                )) as Arc<dyn Collate>)
            }),
            &["pad_id"],
        ),
    ]
}
