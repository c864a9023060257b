//! What each [`ManagerKind`] takes and does differently.
//!
//! | kind | keys | stages | data | loaders |
//! |---|---|---|---|---|
//! | `DatasetManager`, `LocalDatasetManager` | all but the unconditional-generation keys | fit, validate | the source, cached | every type |
//! | `EvalDatasetManager` | xlm-core's (below) | validate, test | the source, cached | val/test/predict: sequential, split by rank with the pad rule; no train loader |
//! | `UnconditionalGenerationDatasetManager` | xlm-core's (below) | every stage (no `stages` key) | `num_examples` empty examples built at setup, no source, no cache | val/test/predict: sequential, **not** split (every rank yields all); no train loader |
//!
//! A key a kind does not take is an error naming it when it is set to
//! anything but its default (xlm-core's classes would refuse it as an
//! unexpected keyword argument).

use super::{ConfigError, DatasetManagerConfig, ManagerKind};
use crate::data::{Example, Value};
use crate::registry::{Kwargs, ProcessError};
use crate::tokenizer::Tokenizer;
use serde_json::Value as Json;

/// The dataset class xlm builds for the unconditional-generation kind (the
/// default of `dataset_constructor_str`).
pub const DEFAULT_EMPTY_DATASET: &str = "xlm.datamodule.DefaultEmptyDataset";

/// Keys of xlm-core's `EvalDatasetManager`, plus xlm's spellings and cache
/// switches (`collate_fn`, `collate_fn_kwargs`, `use_manual_cache`,
/// `rewrite_manual_cache`) and `ddp_remainder` at its default (`pad`).
const EVAL_KEYS: &[&str] = &[
    "_target_",
    "collator",
    "collate_fn",
    "collate_fn_kwargs",
    "full_name",
    "dataloader_kwargs",
    "preprocess_function",
    "preprocess_function_kwargs",
    "load_from_cache_file",
    "filter_fn",
    "filter_suffix",
    "columns_to_remove",
    "columns_to_keep",
    "stages",
    "use_manual_cache",
    "rewrite_manual_cache",
];

/// Keys of xlm-core's `UnconditionalGenerationDatasetManager`, plus xlm's
/// collator spellings and `rewrite_manual_cache` (which a data module ORs
/// into every manager; there is nothing to rewrite).
const UNCONDITIONAL_KEYS: &[&str] = &[
    "_target_",
    "collator",
    "collate_fn",
    "collate_fn_kwargs",
    "dataloader_kwargs",
    "num_examples",
    "dataset_constructor_str",
    "dataset_kwargs",
    "split_by_node",
    "rewrite_manual_cache",
];

/// Keys only the unconditional-generation kind takes.
const UNCONDITIONAL_ONLY: &[&str] = &["num_examples", "dataset_constructor_str", "dataset_kwargs"];

/// Checks the keys `kind` takes: a key it does not take, set to anything but
/// its default, is an error naming the key and the kind.
pub(super) fn check_keys(c: &DatasetManagerConfig, kind: ManagerKind) -> Result<(), ConfigError> {
    let set = serde_json::to_value(c).map_err(|e| ConfigError::Json(e.to_string()))?;
    let defaults = serde_json::to_value(DatasetManagerConfig::new(""))
        .map_err(|e| ConfigError::Json(e.to_string()))?;
    let Json::Object(set) = set else {
        return Ok(());
    };
    let is_set = |key: &str, v: &Json| defaults.get(key) != Some(v);
    let refuse = |key: &str, reason: String| ConfigError::NotForKind {
        key: key.to_string(),
        kind,
        reason,
    };
    for (key, v) in &set {
        if !is_set(key, v) {
            continue;
        }
        match kind {
            ManagerKind::Default | ManagerKind::Local
                if UNCONDITIONAL_ONLY.contains(&key.as_str()) =>
            {
                return Err(refuse(
                    key,
                    format!(
                        "only {} takes it (`_target_: {}`)",
                        ManagerKind::UnconditionalGeneration,
                        ManagerKind::UnconditionalGeneration.target()
                    ),
                ));
            }
            ManagerKind::Eval if !EVAL_KEYS.contains(&key.as_str()) => {
                let why = match key.as_str() {
                    "iterable_dataset_shards" | "shuffle_buffer_size" | "make_infinite"
                    | "split_by_node" => "it is map-style: xlm-core's EvalDatasetManager has no iterable mode; use xlm.datamodule.DatasetManager for an iterable eval split".to_string(),
                    "ddp_remainder" => "under DDP it splits by rank like the DistributedSampler(shuffle=False) that Lightning gives xlm-core's eval loaders: every rank takes ceil(N/W) samples, the shortfall wrapped around from the start (`pad`); `drop` is not available".to_string(),
                    "shuffle_seed" => "it never shuffles".to_string(),
                    k if k.starts_with("on_the_fly_") => "xlm-core's EvalDatasetManager has no on-the-fly processing; do it in preprocess_function".to_string(),
                    _ => format!("xlm-core's class takes no such argument; it takes: {}", EVAL_KEYS.join(", ")),
                };
                return Err(refuse(key, why));
            }
            ManagerKind::UnconditionalGeneration if !UNCONDITIONAL_KEYS.contains(&key.as_str()) => {
                let why = match key.as_str() {
                    "stages" => "it sets up for every stage (xlm-core's class takes no `stages`); remove the key".to_string(),
                    "full_name" | "full_name_debug" | "ds_type" | "data_files" | "load_kwargs"
                    | "filter_fn" | "filter_suffix" | "preprocess_function"
                    | "preprocess_function_kwargs" | "columns_to_keep" | "columns_to_remove"
                    | "train_test_split" | "use_manual_cache" | "load_from_cache_file" => format!(
                        "it reads no data and caches nothing: it makes num_examples examples with dataset_constructor_str ({DEFAULT_EMPTY_DATASET})"
                    ),
                    "ddp_remainder" => "it is not split by rank: every rank yields all num_examples, as in xlm-core".to_string(),
                    _ => format!("xlm-core's class takes no such argument; it takes: {}", UNCONDITIONAL_KEYS.join(", ")),
                };
                return Err(refuse(key, why));
            }
            _ => {}
        }
    }
    if kind == ManagerKind::UnconditionalGeneration {
        if c.num_examples.is_none() {
            return Err(ConfigError::Invalid {
                key: "num_examples",
                reason: format!(
                    "{} needs it: the number of examples every rank yields (xlm-core's configs set it to the per-device batch size)",
                    ManagerKind::UnconditionalGeneration
                ),
            });
        }
        EmptyDatasetSpec::from_config(c)?;
    }
    Ok(())
}

/// xlm-core's `xlm.datamodule.DefaultEmptyDataset(tokenizer, num_examples,
/// tokenizer_kwargs=None, empty_text="")`: every example is
/// `tokenizer(empty_text, add_special_tokens=False, **tokenizer_kwargs)`.
///
/// xlm's example has `input_ids`, `token_type_ids` (zeros) and
/// `attention_mask` (ones on tokens, zeros on padding); with the default
/// `empty_text: ""` all three are empty lists (and no tokenizer is needed),
/// so a batch of them has zero columns and `batch_size` rows
/// ([`Batch::len`](crate::data::Batch::len) counts them from
/// `Batch::samples`). Hugging Face tokenizers without token type ids
/// (GPT-2) would leave `token_type_ids` out; xlm always adds it (unless
/// `return_token_type_ids: false`), which xlm-core's `DefaultCollator` needs.
///
/// `tokenizer_kwargs` understood: `max_length`, `truncation` (bool or
/// `longest_first`/`only_first`/`do_not_truncate`; with `max_length` and no
/// `padding` it defaults to on, as in Hugging Face), `padding` (`false`,
/// `do_not_pad`, `true`/`longest`: nothing to pad for one text,
/// `max_length`: pad on the right with the tokenizer's pad id),
/// `return_attention_mask`, `return_token_type_ids`. Any other key is an
/// error naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyDatasetSpec {
    /// The text every example encodes (default `""`).
    pub empty_text: String,
    /// Truncate to this many ids.
    pub truncate_to: Option<usize>,
    /// Pad on the right to this many ids.
    pub pad_to: Option<usize>,
    /// Add `attention_mask` (default true).
    pub attention_mask: bool,
    /// Add `token_type_ids` (default true).
    pub token_type_ids: bool,
}

const TOKENIZER_KWARGS: &[&str] = &[
    "max_length",
    "truncation",
    "padding",
    "return_attention_mask",
    "return_token_type_ids",
];

impl EmptyDatasetSpec {
    /// The dataset the config's `dataset_constructor_str` and
    /// `dataset_kwargs` describe; errors name the key.
    pub fn from_config(c: &DatasetManagerConfig) -> Result<Self, ConfigError> {
        if let Some(name) = &c.dataset_constructor_str {
            if name != DEFAULT_EMPTY_DATASET {
                return Err(ConfigError::Invalid {
                    key: "dataset_constructor_str",
                    reason: format!(
                        "`{name}` is not a dataset xlm can build: xlm cannot import Python classes, and only `{DEFAULT_EMPTY_DATASET}` is built in"
                    ),
                });
            }
        }
        Self::from_kwargs(&c.dataset_kwargs)
    }

    /// `DefaultEmptyDataset`'s kwargs (`empty_text`, `tokenizer_kwargs`).
    pub fn from_kwargs(kw: &Kwargs) -> Result<Self, ConfigError> {
        let bad = |key: &str, reason: String| ConfigError::InvalidKey {
            key: key.to_string(),
            reason,
        };
        if let Some(k) = kw
            .keys()
            .find(|k| !["empty_text", "tokenizer_kwargs"].contains(&k.as_str()))
        {
            return Err(bad(
                &format!("dataset_kwargs.{k}"),
                format!("{DEFAULT_EMPTY_DATASET} takes no such argument; it takes: empty_text, tokenizer_kwargs"),
            ));
        }
        let empty_text = match kw.get("empty_text") {
            None | Some(Json::Null) => String::new(),
            Some(Json::String(s)) => s.clone(),
            Some(other) => {
                return Err(bad(
                    "dataset_kwargs.empty_text",
                    format!("expected a string, got {other}"),
                ))
            }
        };
        let empty = Kwargs::new();
        let tk = match kw.get("tokenizer_kwargs") {
            None | Some(Json::Null) => &empty,
            Some(Json::Object(m)) => m,
            Some(other) => {
                return Err(bad(
                    "dataset_kwargs.tokenizer_kwargs",
                    format!("expected a mapping, got {other}"),
                ))
            }
        };
        let key = |k: &str| format!("dataset_kwargs.tokenizer_kwargs.{k}");
        if let Some(k) = tk.keys().find(|k| !TOKENIZER_KWARGS.contains(&k.as_str())) {
            let why = if k == "add_special_tokens" {
                "DefaultEmptyDataset passes add_special_tokens=False itself (xlm-core would fail with `got multiple values for keyword argument`)".to_string()
            } else {
                format!(
                    "xlm's DefaultEmptyDataset does not understand this tokenizer argument; it understands: {}",
                    TOKENIZER_KWARGS.join(", ")
                )
            };
            return Err(bad(&key(k), why));
        }
        let flag = |k: &str| -> Result<Option<bool>, ConfigError> {
            match tk.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::Bool(b)) => Ok(Some(*b)),
                Some(other) => Err(bad(&key(k), format!("expected true or false, got {other}"))),
            }
        };
        let max_length = match tk.get("max_length") {
            None | Some(Json::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|&n| n <= 1 << 24)
                    .map(|n| n as usize)
                    .ok_or_else(|| {
                        bad(
                            &key("max_length"),
                            format!("expected an integer between 0 and 16777216, got {v}"),
                        )
                    })?,
            ),
        };
        let pad_max = match tk.get("padding") {
            None | Some(Json::Null) | Some(Json::Bool(false)) => None,
            Some(Json::Bool(true)) => Some(false),
            Some(Json::String(s)) => match s.as_str() {
                "do_not_pad" => None,
                "longest" => Some(false),
                "max_length" => Some(true),
                _ => {
                    return Err(bad(
                        &key("padding"),
                        format!("`{s}`: expected false, true, do_not_pad, longest or max_length"),
                    ))
                }
            },
            Some(other) => {
                return Err(bad(
                    &key("padding"),
                    format!("expected a bool or a strategy name, got {other}"),
                ))
            }
        };
        let truncation = match tk.get("truncation") {
            None | Some(Json::Null) => None,
            Some(Json::Bool(b)) => Some(*b),
            Some(Json::String(s)) => match s.as_str() {
                "longest_first" | "only_first" => Some(true),
                "do_not_truncate" => Some(false),
                _ => {
                    return Err(bad(
                        &key("truncation"),
                        format!(
                        "`{s}`: expected true, false, longest_first, only_first or do_not_truncate"
                    ),
                    ))
                }
            },
            Some(other) => {
                return Err(bad(
                    &key("truncation"),
                    format!("expected a bool or a strategy name, got {other}"),
                ))
            }
        };
        // Hugging Face: max_length without padding or truncation truncates.
        let truncate = truncation.unwrap_or(max_length.is_some() && pad_max.is_none());
        let needs_length = |what: &str| {
            bad(
                &key("max_length"),
                format!("{what} needs max_length (xlm does not know the model's maximum length)"),
            )
        };
        let truncate_to = match (truncate, max_length) {
            (true, Some(n)) => Some(n),
            (true, None) => return Err(needs_length("truncation")),
            (false, _) => None,
        };
        let pad_to = match (pad_max, max_length) {
            (Some(true), Some(n)) => Some(n),
            (Some(true), None) => return Err(needs_length("padding: max_length")),
            _ => None,
        };
        Ok(Self {
            empty_text,
            truncate_to,
            pad_to,
            attention_mask: flag("return_attention_mask")?.unwrap_or(true),
            token_type_ids: flag("return_token_type_ids")?.unwrap_or(true),
        })
    }

    /// The example every row of the dataset is: `empty_text` encoded without
    /// special tokens (the tokenizer is needed only for a non-empty text or
    /// for padding), truncated and padded as configured.
    pub fn example(&self, tokenizer: Option<&dyn Tokenizer>) -> Result<Example, ProcessError> {
        const NAME: &str = DEFAULT_EMPTY_DATASET;
        let need = |why: &str| {
            ProcessError::failed(
                NAME,
                format!("{why} needs a tokenizer, and setup was given none"),
            )
        };
        let mut ids: Vec<i64> = if self.empty_text.is_empty() {
            Vec::new()
        } else {
            let tok =
                tokenizer.ok_or_else(|| need(&format!("empty_text `{}`", self.empty_text)))?;
            tok.encode(&self.empty_text)
                .map_err(|e| ProcessError::failed(NAME, format!("empty_text: {e}")))?
                .into_iter()
                .map(i64::from)
                .collect()
        };
        if let Some(n) = self.truncate_to {
            ids.truncate(n);
        }
        let real = ids.len();
        if let Some(n) = self.pad_to.filter(|&n| n > real) {
            let tok = tokenizer.ok_or_else(|| need("padding: max_length"))?;
            let pad = tok.specials().pad.ok_or_else(|| {
                ProcessError::failed(
                    NAME,
                    "padding: max_length needs a pad token, and the tokenizer has none",
                )
            })?;
            ids.resize(n, i64::from(pad));
        }
        let n = ids.len();
        let mut e = Example::new().with("input_ids", Value::List(ids));
        if self.token_type_ids {
            e.set("token_type_ids", Value::List(vec![0; n]));
        }
        if self.attention_mask {
            let mut mask = vec![1; real];
            mask.resize(n, 0);
            e.set("attention_mask", Value::List(mask));
        }
        Ok(e)
    }
}
