//! Built-in per-example functions and filters.
//!
//! Per-example functions return only the columns they add or replace; the
//! caller merges them into the example (see [`MapFn`]), so the input columns
//! stay unless `columns_to_keep` / `columns_to_remove` drop them.

use super::kwargs::{opt_str, opt_usize};
use super::{Ctx, FilterFn, Kwargs, MapFn, ProcessError};
use crate::data::{Example, Value};
use std::sync::Arc;

type Named<F> = (&'static str, F, &'static [&'static str]);

/// Adds nothing: the example passes through unchanged.
fn identity(_: &Example, _: &Ctx, _: &Kwargs) -> Result<Example, ProcessError> {
    Ok(Example::new())
}

/// `input_ids` = `token_ids`, truncated to the `block_size` kwarg (none: no
/// truncation), as xlm-core's `token_ids_to_input_ids`; `token_ids` stays.
fn token_ids_to_input_ids(e: &Example, _: &Ctx, kw: &Kwargs) -> Result<Example, ProcessError> {
    const NAME: &str = "token_ids_to_input_ids";
    let limit = opt_usize(kw, NAME, "block_size")?;
    let ids = token_ids(e, NAME)?;
    let ids = &ids[..limit.map_or(ids.len(), |b| b.min(ids.len()))];
    Ok(Example::new().with("input_ids", Value::List(ids.to_vec())))
}

/// `token_ids` -> `input_ids`, `attention_mask` of 1s, `token_type_ids` of 0s,
/// truncated to `block_size` (kwarg, else setup's block_size; none: no truncation).
fn example_to_input_ids(e: &Example, ctx: &Ctx, kw: &Kwargs) -> Result<Example, ProcessError> {
    const NAME: &str = "example_to_input_ids";
    let limit = opt_usize(kw, NAME, "block_size")?.or(ctx.block_size);
    let ids = token_ids(e, NAME)?;
    let ids = &ids[..limit.map_or(ids.len(), |b| b.min(ids.len()))];
    let n = ids.len();
    Ok(Example::new()
        .with("input_ids", Value::List(ids.to_vec()))
        .with("attention_mask", Value::List(vec![1; n]))
        .with("token_type_ids", Value::List(vec![0; n])))
}

/// The example's `token_ids`, or an error of `function` naming what is wrong.
fn token_ids<'a>(e: &'a Example, function: &str) -> Result<&'a [i64], ProcessError> {
    match e.get("token_ids") {
        Some(Value::List(v)) => Ok(v),
        Some(other) => Err(ProcessError::failed(
            function,
            format!("`token_ids` is a {}, not a token list", other.kind_name()),
        )),
        None => Err(ProcessError::failed(
            function,
            "the example has no `token_ids`",
        )),
    }
}

/// Tokenizes `text_column` (default `text`) into `token_ids` with the tokenizer.
fn tokenize(e: &Example, ctx: &Ctx, kw: &Kwargs) -> Result<Example, ProcessError> {
    const NAME: &str = "tokenize";
    let col = opt_str(kw, NAME, "text_column")?.unwrap_or("text");
    let tok = ctx
        .tokenizer
        .as_ref()
        .ok_or_else(|| ProcessError::failed(NAME, "no tokenizer was passed to prepare_data"))?;
    let text = e.text(col).map_err(|err| ProcessError::failed(NAME, err))?;
    let ids = tok
        .encode(text)
        .map_err(|err| ProcessError::failed(NAME, err))?;
    Ok(Example::new().with(
        "token_ids",
        Value::List(ids.into_iter().map(i64::from).collect()),
    ))
}

pub(super) fn builtin_maps() -> Vec<Named<MapFn>> {
    vec![
        ("identity", Arc::new(identity), &[]),
        (
            "token_ids_to_input_ids",
            Arc::new(token_ids_to_input_ids),
            &["block_size"],
        ),
        (
            "example_to_input_ids",
            Arc::new(example_to_input_ids),
            &["block_size"],
        ),
        ("tokenize", Arc::new(tokenize), &["text_column"]),
    ]
}

/// Drops the example whose `id` is 0.
fn drop_first_example(e: &Example, _: &Kwargs) -> Result<bool, ProcessError> {
    e.int("id")
        .map(|id| id != 0)
        .map_err(|err| ProcessError::failed("drop_first_example", err))
}

/// Keeps examples whose `column` (default `token_ids`) has at least `min_len` ids.
fn min_tokens(e: &Example, kw: &Kwargs) -> Result<bool, ProcessError> {
    const NAME: &str = "min_tokens";
    let col = opt_str(kw, NAME, "column")?.unwrap_or("token_ids");
    let min = opt_usize(kw, NAME, "min_len")?.unwrap_or(1);
    let n = e
        .list(col)
        .map_err(|err| ProcessError::failed(NAME, err))?
        .len();
    Ok(n >= min)
}

pub(super) fn builtin_filters() -> Vec<Named<FilterFn>> {
    vec![
        ("drop_first_example", Arc::new(drop_first_example), &[]),
        ("min_tokens", Arc::new(min_tokens), &["column", "min_len"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex() -> Example {
        Example::new()
            .with("id", Value::Int(0))
            .with("token_ids", Value::List(vec![7, 8, 9]))
    }

    fn names(e: &Example) -> Vec<&str> {
        e.names().collect()
    }

    #[test]
    fn example_to_input_ids_truncates_and_returns_only_new_columns() {
        let mut kw = Kwargs::new();
        kw.insert("block_size".into(), 2.into());
        let e = example_to_input_ids(&ex(), &Ctx::default(), &kw).unwrap();
        assert_eq!(e.list("input_ids").unwrap(), [7, 8]);
        assert_eq!(e.list("attention_mask").unwrap(), [1, 1]);
        assert_eq!(e.list("token_type_ids").unwrap(), [0, 0]);
        assert_eq!(
            names(&e),
            ["input_ids", "attention_mask", "token_type_ids"],
            "the caller merges; the function returns only what it adds"
        );
        let e = example_to_input_ids(
            &ex(),
            &Ctx {
                block_size: Some(8),
                ..Ctx::default()
            },
            &Kwargs::new(),
        )
        .unwrap();
        assert_eq!(e.list("input_ids").unwrap().len(), 3);
        let bad = Example::new().with("token_ids", Value::Int(3));
        let err = example_to_input_ids(&bad, &Ctx::default(), &Kwargs::new()).unwrap_err();
        assert!(err.to_string().contains("int64"), "{err}");
    }

    #[test]
    fn filters_and_token_ids_to_input_ids() {
        assert!(!drop_first_example(&ex(), &Kwargs::new()).unwrap());
        assert!(drop_first_example(&ex().with("id", Value::Int(5)), &Kwargs::new()).unwrap());
        let e = token_ids_to_input_ids(&ex(), &Ctx::default(), &Kwargs::new()).unwrap();
        assert_eq!(names(&e), ["input_ids"]);
        assert_eq!(e.list("input_ids").unwrap(), [7, 8, 9]);
        let mut kw = Kwargs::new();
        kw.insert("block_size".into(), 2.into());
        let e = token_ids_to_input_ids(&ex(), &Ctx::default(), &kw).unwrap();
        assert_eq!(e.list("input_ids").unwrap(), [7, 8]);
        assert!(identity(&ex(), &Ctx::default(), &Kwargs::new())
            .unwrap()
            .is_empty());
        let mut kw = Kwargs::new();
        kw.insert("min_len".into(), 4.into());
        assert!(!min_tokens(&ex(), &kw).unwrap());
    }

    #[test]
    fn tokenize_uses_the_tokenizer() {
        let ctx = Ctx {
            tokenizer: Some(Arc::new(
                crate::tokenizer::SimpleSpaceTokenizer::test_vocab(),
            )),
            block_size: None,
        };
        let e = tokenize(
            &Example::new().with("text", Value::Text("w0 w2".into())),
            &ctx,
            &Kwargs::new(),
        )
        .unwrap();
        assert_eq!(names(&e), ["token_ids"]);
        assert_eq!(e.list("token_ids").unwrap(), [7, 9]);
        assert!(tokenize(&Example::new(), &Ctx::default(), &Kwargs::new()).is_err());
    }
}
