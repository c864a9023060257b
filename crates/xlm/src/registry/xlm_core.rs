//! xlm-core's built-in functions, under their dotted names
//! (`xlm.datamodule.*`) and, where xlm had no equivalent, their short names
//! too, with xlm-core's behaviour (`xlm/datamodule.py`):
//!
//! | dotted name | short name | kind | behaviour |
//! |---|---|---|---|
//! | `xlm.datamodule.tokenizing_preprocess_fn` | `tokenize` | preprocess, processor | `token_ids` = the tokenizer's ids of `text`, no special tokens |
//! | `xlm.datamodule.token_ids_to_input_ids` | `token_ids_to_input_ids` | preprocess, processor | `input_ids` = `token_ids[:block_size]` |
//! | `xlm.datamodule.token_ids_to_input_ids_and_prompt_ids` | same | preprocess, processor | `input_ids` = `input_token_ids[:block_size]`, `prompt_ids` = `prompt_token_ids[:block_size]` |
//! | `xlm.datamodule.ids_to_example_fn` | same | preprocess, processor | `input_ids` = the tokenizer's `build_inputs_with_special_tokens(token_ids)`, `attention_mask` of 1s, `token_type_ids` = `create_token_type_ids_from_sequences(token_ids)` |
//! | `xlm.datamodule.pack_sequences` | (`pack_sequences` is xlm's, with `use_bos` false by default) | group | xlm's packer over `token_ids` with xlm-core's default `use_bos: true` |
//! | `xlm.datamodule.replicate_examples` | same | replicator | each example `num_samples` times, copies contiguous |
//! | `xlm.datamodule.DefaultCollator` | `DefaultCollator` | collator | stacks `input_ids`, `attention_mask`, `token_type_ids` (all required, equal lengths) |
//! | `xlm.datamodule.DefaultCollatorWithPadding` | same | collator | the same, each padded or truncated to `block_size` with the tokenizer's pad id / 0 / 2 |
//! | `xlm.datamodule.DefaultCollatorWithDynamicPadding` | same | collator | the same, to min(longest `input_ids` of the batch, `block_size`) |
//!
//! Per-example functions return only the columns they add (the caller
//! merges them, as `datasets.map` does). `block_size` of the per-example
//! functions is their kwarg only (xlm-core's on-the-fly map passes no
//! `block_size`); the collators' `block_size` is their argument, else
//! setup's. Collators produce int64 arrays and carry the `id`s when every
//! example has one.

use super::kwargs::{block_size, opt_usize};
use super::{Ctx, Entry, GroupFn, Kwargs, MapFn, ProcessError, Registry, ReplicateFn};
use crate::collate::{Collate, CollateError, PadMode, StackCollator};
use crate::data::{Batch, Example, Value};
use std::sync::Arc;

/// The dotted prefix of xlm-core's built-ins.
pub const PREFIX: &str = "xlm.datamodule.";

/// The columns xlm-core's default collators stack.
pub const COLLATED_COLUMNS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];

fn entry<F>(f: F, params: &[&str]) -> Entry<F> {
    Entry {
        f,
        params: Some(params.iter().map(|s| s.to_string()).collect()),
    }
}

/// The token list `col` of `e`, or an error of `function` naming it.
fn tokens<'a>(e: &'a Example, function: &str, col: &str) -> Result<&'a [i64], ProcessError> {
    match e.get(col) {
        Some(Value::List(v)) => Ok(v),
        Some(other) => Err(ProcessError::failed(
            function,
            format!("`{col}` is a {}, not a token list", other.kind_name()),
        )),
        None => Err(ProcessError::failed(
            function,
            format!("the example has no `{col}`"),
        )),
    }
}

fn truncated(ids: &[i64], limit: Option<usize>) -> Vec<i64> {
    ids[..limit.map_or(ids.len(), |b| b.min(ids.len()))].to_vec()
}

/// `token_ids_to_input_ids_and_prompt_ids(block_size=None)`.
pub fn token_ids_to_input_ids_and_prompt_ids(
    e: &Example,
    _: &Ctx,
    kw: &Kwargs,
) -> Result<Example, ProcessError> {
    const NAME: &str = "token_ids_to_input_ids_and_prompt_ids";
    let limit = opt_usize(kw, NAME, "block_size")?;
    Ok(Example::new()
        .with(
            "input_ids",
            Value::List(truncated(tokens(e, NAME, "input_token_ids")?, limit)),
        )
        .with(
            "prompt_ids",
            Value::List(truncated(tokens(e, NAME, "prompt_token_ids")?, limit)),
        ))
}

/// `ids_to_example_fn(block_size=None)`: no padding or truncation (as in
/// xlm-core, `block_size` is accepted and unused).
pub fn ids_to_example_fn(e: &Example, ctx: &Ctx, kw: &Kwargs) -> Result<Example, ProcessError> {
    const NAME: &str = "ids_to_example_fn";
    opt_usize(kw, NAME, "block_size")?;
    let tok = ctx.tokenizer.as_ref().ok_or_else(|| {
        ProcessError::failed(
            NAME,
            "needs a tokenizer (for its special tokens), and none was given",
        )
    })?;
    let ids = tokens(e, NAME, "token_ids")?
        .iter()
        .map(|&id| {
            u32::try_from(id)
                .map_err(|_| ProcessError::failed(NAME, format!("{id} is not a token id")))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let input_ids: Vec<i64> = tok
        .build_inputs_with_special_tokens(&ids)
        .into_iter()
        .map(i64::from)
        .collect();
    let types: Vec<i64> = tok
        .create_token_type_ids_from_sequences(&ids)
        .into_iter()
        .map(i64::from)
        .collect();
    let n = input_ids.len();
    Ok(Example::new()
        .with("input_ids", Value::List(input_ids))
        .with("attention_mask", Value::List(vec![1; n]))
        .with("token_type_ids", Value::List(types)))
}

/// `replicate_examples(num_samples)`: each example `num_samples` times, the
/// copies of one example next to each other (xlm-core's batched function,
/// over a list of examples).
pub fn replicate_examples(examples: &[Example], num_samples: usize) -> Vec<Example> {
    examples
        .iter()
        .flat_map(|e| std::iter::repeat_n(e, num_samples).cloned())
        .collect()
}

/// `num_samples` of `replicate_examples`, checked.
fn replicate_count(kw: &Kwargs) -> Result<usize, ProcessError> {
    const NAME: &str = "replicate_examples";
    match opt_usize(kw, NAME, "num_samples")? {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(ProcessError::BadKwarg {
            function: NAME.into(),
            kwarg: "num_samples".into(),
            reason: "needs a whole number of copies, at least 1".into(),
        }),
    }
}

/// How one of xlm-core's default collators makes rows rectangular.
#[derive(Debug, Clone, Copy)]
enum Width {
    /// `DefaultCollator`: rows must have equal lengths (`torch.stack`).
    Equal,
    /// `DefaultCollatorWithPadding`: pad or truncate to `block_size`.
    Fixed(usize),
    /// `DefaultCollatorWithDynamicPadding`: min(longest `input_ids`, `block_size`).
    Longest(usize),
}

/// xlm-core's `DefaultCollator` family.
#[derive(Debug, Clone)]
pub struct DefaultCollator {
    name: &'static str,
    width: Width,
    pad_id: i64,
}

impl Collate for DefaultCollator {
    fn collate(&self, examples: &[Example]) -> Result<Batch, CollateError> {
        let fail = |reason: String| CollateError::new(self.name, reason);
        let mut picked = Vec::with_capacity(examples.len());
        for (i, e) in examples.iter().enumerate() {
            let mut p = Example::new();
            for col in COLLATED_COLUMNS {
                match e.get(col) {
                    Some(v @ Value::List(_)) => p.set(col, v.clone()),
                    Some(other) => {
                        return Err(fail(format!(
                            "`{col}` of example {i} is a {}, not a token list",
                            other.kind_name()
                        )))
                    }
                    None => {
                        return Err(fail(format!(
                            "example {i} has no `{col}`; it stacks {} (e.g. made by xlm.datamodule.ids_to_example_fn)",
                            COLLATED_COLUMNS.join(", ")
                        )))
                    }
                }
            }
            if let Some(id @ Value::Int(_)) = e.get("id") {
                p.set("id", id.clone());
            }
            picked.push(p);
        }
        let pad = match self.width {
            Width::Equal => PadMode::None,
            Width::Fixed(n) => PadMode::Fixed(n),
            Width::Longest(cap) => {
                let longest = picked
                    .iter()
                    .map(|e| e.list("input_ids").map_or(0, <[i64]>::len))
                    .max()
                    .unwrap_or(0);
                PadMode::Fixed(longest.min(cap))
            }
        };
        StackCollator::new(self.name, pad, self.pad_id, false).collate(&picked)
    }
}

/// The tokenizer's pad id, which the padding collators need.
fn tokenizer_pad(name: &str, ctx: &Ctx) -> Result<i64, ProcessError> {
    let tok = ctx.tokenizer.as_ref().ok_or_else(|| {
        ProcessError::failed(
            name,
            "pads with the tokenizer's pad id, and no tokenizer was given to setup",
        )
    })?;
    tok.specials()
        .pad
        .map(i64::from)
        .ok_or_else(|| ProcessError::failed(name, "the tokenizer has no pad token"))
}

fn collator(name: &'static str) -> super::CollatorFn {
    Arc::new(move |kw: &Kwargs, ctx: &Ctx| {
        let c = match name {
            "DefaultCollator" => {
                opt_usize(kw, name, "block_size")?;
                DefaultCollator {
                    name,
                    width: Width::Equal,
                    pad_id: 0,
                }
            }
            "DefaultCollatorWithPadding" => DefaultCollator {
                name,
                width: Width::Fixed(block_size(kw, name, ctx.block_size)?),
                pad_id: tokenizer_pad(name, ctx)?,
            },
            _ => DefaultCollator {
                name,
                width: Width::Longest(block_size(kw, name, ctx.block_size)?),
                pad_id: tokenizer_pad(name, ctx)?,
            },
        };
        Ok(Arc::new(c) as Arc<dyn Collate>)
    })
}

/// Adds xlm-core's built-ins to `r` (after xlm's own, which some alias).
pub(super) fn register(r: &mut Registry) {
    let maps: [(&str, MapFn); 2] = [
        (
            "token_ids_to_input_ids_and_prompt_ids",
            Arc::new(token_ids_to_input_ids_and_prompt_ids),
        ),
        ("ids_to_example_fn", Arc::new(ids_to_example_fn)),
    ];
    for (name, f) in maps {
        for n in [name.to_string(), format!("{PREFIX}{name}")] {
            r.preprocess
                .insert(n.clone(), entry(f.clone(), &["block_size"]));
            r.processors.insert(n, entry(f.clone(), &["block_size"]));
        }
    }
    for (dotted, short) in [
        ("token_ids_to_input_ids", "token_ids_to_input_ids"),
        ("tokenizing_preprocess_fn", "tokenize"),
    ] {
        if let Some(e) = r.preprocess.get(short).cloned() {
            r.preprocess.insert(format!("{PREFIX}{dotted}"), e);
        }
        if let Some(e) = r.processors.get(short).cloned() {
            r.processors.insert(format!("{PREFIX}{dotted}"), e);
        }
    }
    if let Some(base) = r.groups.get("pack_sequences").map(|e| e.f.clone()) {
        let f: GroupFn = Arc::new(move |kw: &Kwargs, ctx: &Ctx| {
            let mut kw = kw.clone();
            kw.entry("use_bos").or_insert(true.into());
            kw.entry("column").or_insert("token_ids".into());
            let mut spec = base(&kw, ctx)?;
            spec.function = format!("{PREFIX}pack_sequences");
            Ok(spec)
        });
        r.groups.insert(
            format!("{PREFIX}pack_sequences"),
            entry(f, &["block_size", "drop_last", "use_bos"]),
        );
    }
    let rep: ReplicateFn = Arc::new(replicate_count);
    for n in [
        "replicate_examples".to_string(),
        format!("{PREFIX}replicate_examples"),
    ] {
        r.replicators
            .insert(n, entry(rep.clone(), &["num_samples"]));
    }
    for name in [
        "DefaultCollator",
        "DefaultCollatorWithPadding",
        "DefaultCollatorWithDynamicPadding",
    ] {
        let f = collator(name);
        for n in [name.to_string(), format!("{PREFIX}{name}")] {
            r.collators.insert(n, entry(f.clone(), &["block_size"]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::SimpleSpaceTokenizer;

    fn ctx(block: Option<usize>) -> Ctx {
        Ctx {
            tokenizer: Some(Arc::new(SimpleSpaceTokenizer::test_vocab())),
            block_size: block,
        }
    }

    fn row(id: i64, n: usize) -> Example {
        let ids: Vec<i64> = (0..n as i64).map(|x| x + 7).collect();
        Example::new()
            .with("id", Value::Int(id))
            .with("token_ids", Value::List(ids.clone()))
            .with("input_ids", Value::List(ids))
            .with("attention_mask", Value::List(vec![1; n]))
            .with("token_type_ids", Value::List(vec![0; n]))
    }

    #[test]
    fn prompt_ids_are_truncated_by_the_kwarg_only() {
        let e = Example::new()
            .with("input_token_ids", Value::List(vec![1, 2, 3]))
            .with("prompt_token_ids", Value::List(vec![4, 5]));
        let out = token_ids_to_input_ids_and_prompt_ids(&e, &ctx(Some(1)), &Kwargs::new()).unwrap();
        assert_eq!(out.names().collect::<Vec<_>>(), ["input_ids", "prompt_ids"]);
        assert_eq!(out.list("input_ids").unwrap(), [1, 2, 3]);
        let mut kw = Kwargs::new();
        kw.insert("block_size".into(), 2.into());
        let out = token_ids_to_input_ids_and_prompt_ids(&e, &ctx(None), &kw).unwrap();
        assert_eq!(out.list("input_ids").unwrap(), [1, 2]);
        assert_eq!(out.list("prompt_ids").unwrap(), [4, 5]);
        let err = token_ids_to_input_ids_and_prompt_ids(&Example::new(), &ctx(None), &kw)
            .unwrap_err()
            .to_string();
        assert!(err.contains("input_token_ids"), "{err}");
    }

    #[test]
    fn ids_to_example_fn_adds_masks_without_truncating() {
        let e = Example::new().with("token_ids", Value::List(vec![7, 8, 9]));
        let out = ids_to_example_fn(&e, &ctx(Some(2)), &Kwargs::new()).unwrap();
        assert_eq!(out.list("input_ids").unwrap(), [7, 8, 9]);
        assert_eq!(out.list("attention_mask").unwrap(), [1, 1, 1]);
        assert_eq!(out.list("token_type_ids").unwrap(), [0, 0, 0]);
        assert!(ids_to_example_fn(&e, &Ctx::default(), &Kwargs::new()).is_err());
    }

    #[test]
    fn replicates_contiguously() {
        let out = replicate_examples(&[row(1, 1), row(2, 2)], 3);
        let ids: Vec<i64> = out.iter().map(|e| e.int("id").unwrap()).collect();
        assert_eq!(ids, [1, 1, 1, 2, 2, 2]);
        assert!(replicate_count(&Kwargs::new()).is_err());
    }

    #[test]
    fn default_collators_pad_with_pad_id_zero_and_two() {
        let c = ctx(Some(3));
        let stack = collator("DefaultCollator")(&Kwargs::new(), &c).unwrap();
        let b = stack.collate(&[row(1, 2), row(2, 2)]).unwrap();
        assert_eq!(b.get("input_ids").unwrap().shape, [2, 2]);
        assert!(b.get("token_ids").is_none(), "only the three columns");
        assert_eq!(b.ids, [1, 2]);
        assert!(stack.collate(&[row(1, 2), row(2, 3)]).is_err());
        let pad = collator("DefaultCollatorWithPadding")(&Kwargs::new(), &c).unwrap();
        let b = pad.collate(&[row(1, 1), row(2, 5)]).unwrap();
        assert_eq!(b.get("input_ids").unwrap().data, [7, 0, 0, 7, 8, 9]);
        assert_eq!(b.get("attention_mask").unwrap().data, [1, 0, 0, 1, 1, 1]);
        assert_eq!(b.get("token_type_ids").unwrap().data, [0, 2, 2, 0, 0, 0]);
        let dynamic = collator("DefaultCollatorWithDynamicPadding")(&Kwargs::new(), &c).unwrap();
        let b = dynamic.collate(&[row(1, 1), row(2, 2)]).unwrap();
        assert_eq!(b.get("input_ids").unwrap().shape, [2, 2]);
        let b = dynamic.collate(&[row(1, 1), row(2, 9)]).unwrap();
        assert_eq!(b.get("input_ids").unwrap().shape, [2, 3]);
        let missing = Example::new().with("input_ids", Value::List(vec![7]));
        let e = pad.collate(&[missing]).unwrap_err().to_string();
        assert!(e.contains("attention_mask"), "{e}");
        assert!(collator("DefaultCollatorWithPadding")(&Kwargs::new(), &Ctx::default()).is_err());
    }
}
