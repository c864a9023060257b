//! xlm-core's `_target_: <Class>.from_pretrained` tokenizers, from Hugging
//! Face files: `pretrained_model_name_or_path` is a local directory with a
//! `tokenizer.json`, or a Hub model name read from the Hub cache (no
//! network: fetch it once with `huggingface-cli download`).
//!
//! Special tokens come from the directory's `special_tokens_map.json` (else
//! `tokenizer_config.json`, else the usual spellings), then xlm-core's own
//! classes add theirs as their constructors do:
//!
//! - `xlm.datamodule.BertTokenizer(Fast)`: `[CLS]` cls, `[BOS]` bos, `[EOS]` eos;
//! - `xlm.datamodule.GPT2Tokenizer(Fast)`: `<|cls|>`, `<|bos|>`, `<|pad|>`,
//!   `<|unk|>`, `<|mask|>`, `<|sep|>`, eos `<|endoftext|>`;
//! - `xlm.datamodule.EsmTokenizer`: bos is cls and sep is eos when missing;
//!
//! and, like xlm-core's `post_creation`, these three need all seven special
//! tokens. Tokens a class adds take the next free ids, in that order.

use super::{HfTokenizer, Specials, TokenizerError};
use std::path::{Path, PathBuf};

pub use crate::hf_env::hub_cache_dir;

fn err(reason: String) -> TokenizerError {
    TokenizerError::Config(reason)
}

/// The cached snapshot of Hub model `name` (revision `main`, else the only
/// snapshot), if any.
fn hub_snapshot(cache: &Path, name: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", name.replace('/', "--")));
    if let Ok(commit) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let dir = repo.join("snapshots").join(commit.trim());
        if dir.is_dir() {
            return Some(dir);
        }
    }
    let mut dirs = std::fs::read_dir(repo.join("snapshots"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir());
    match (dirs.next(), dirs.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// The directory `name_or_path` names: a local directory, else the
/// snapshot of that model in the Hub cache at `cache`.
pub fn resolve_dir(name_or_path: &str, cache: &Path) -> Result<PathBuf, TokenizerError> {
    let p = Path::new(name_or_path);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    hub_snapshot(cache, name_or_path).ok_or_else(|| {
        err(format!(
            "pretrained_model_name_or_path `{name_or_path}` is neither a local directory nor a model in the Hub cache at {}; point it at a directory with tokenizer.json, or fetch the model once with `huggingface-cli download {name_or_path} tokenizer.json special_tokens_map.json tokenizer_config.json` (HF_HOME / HF_HUB_CACHE select the cache)",
            cache.display()
        ))
    })
}

const ROLES: [&str; 7] = ["pad", "cls", "mask", "eos", "bos", "sep", "unk"];

fn role<'a>(s: &'a mut Specials, name: &str) -> &'a mut Option<u32> {
    match name {
        "pad" => &mut s.pad,
        "cls" => &mut s.cls,
        "mask" => &mut s.mask,
        "eos" => &mut s.eos,
        "bos" => &mut s.bos,
        "sep" => &mut s.sep,
        _ => &mut s.unk,
    }
}

/// `<role>_token` entries of a Hugging Face json file (a string, or an
/// object with `content`).
fn declared_specials(dir: &Path) -> Vec<(&'static str, String)> {
    for file in ["special_tokens_map.json", "tokenizer_config.json"] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        let Ok(serde_json::Value::Object(m)) = serde_json::from_str(&text) else {
            continue;
        };
        return ROLES
            .iter()
            .filter_map(|r| {
                let token = match m.get(&format!("{r}_token"))? {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Object(o) => o.get("content")?.as_str()?.to_string(),
                    _ => return None,
                };
                Some((*r, token))
            })
            .collect();
    }
    Vec::new()
}

/// Loads the tokenizer of `target` (`<Class>.from_pretrained`) from
/// `name_or_path`, with Hub names read from [`hub_cache_dir`].
pub fn load(target: &str, name_or_path: &str) -> Result<HfTokenizer, TokenizerError> {
    load_from(target, name_or_path, &hub_cache_dir())
}

/// [`load`] with Hub names read from the Hub cache at `cache`.
pub fn load_from(
    target: &str,
    name_or_path: &str,
    cache: &Path,
) -> Result<HfTokenizer, TokenizerError> {
    let dir = resolve_dir(name_or_path, cache)?;
    let file = dir.join("tokenizer.json");
    if !file.is_file() {
        return Err(err(format!(
            "{} has no tokenizer.json; xlm reads Hugging Face fast-tokenizer files: write one with `AutoTokenizer.from_pretrained(...).save_pretrained(dir)`",
            dir.display()
        )));
    }
    let mut t = HfTokenizer::from_file(&file)?;
    let mut specials = super::Tokenizer::specials(&t);
    for (r, token) in declared_specials(&dir) {
        if let Some(id) = t.token_to_id(&token) {
            *role(&mut specials, r) = Some(id);
        }
    }
    let class = target.strip_suffix(".from_pretrained").unwrap_or(target);
    let added: &[(&str, &str)] = match class {
        "xlm.datamodule.BertTokenizer" | "xlm.datamodule.BertTokenizerFast" => {
            &[("cls", "[CLS]"), ("bos", "[BOS]"), ("eos", "[EOS]")]
        }
        "xlm.datamodule.GPT2Tokenizer" | "xlm.datamodule.GPT2TokenizerFast" => &[
            ("cls", "<|cls|>"),
            ("bos", "<|bos|>"),
            ("pad", "<|pad|>"),
            ("unk", "<|unk|>"),
            ("mask", "<|mask|>"),
            ("sep", "<|sep|>"),
            ("eos", "<|endoftext|>"),
        ],
        _ => &[],
    };
    for (r, token) in added {
        *role(&mut specials, r) = Some(t.add_special_token(token)?);
    }
    if class == "xlm.datamodule.EsmTokenizer" {
        specials.bos = specials.bos.or(specials.cls);
        specials.sep = specials.sep.or(specials.eos);
    }
    let checked = [
        "xlm.datamodule.BertTokenizer",
        "xlm.datamodule.BertTokenizerFast",
        "xlm.datamodule.GPT2Tokenizer",
        "xlm.datamodule.GPT2TokenizerFast",
        "xlm.datamodule.EsmTokenizer",
    ];
    if checked.contains(&class) {
        if let Some(missing) = ROLES.iter().find(|r| role(&mut specials, r).is_none()) {
            return Err(err(format!(
                "{target}: the tokenizer in {} has no {missing} token, which xlm-core's {class} requires",
                dir.display()
            )));
        }
    }
    t.set_specials(specials);
    Ok(t)
}
