//! Named functions, so a whole `DatasetManager` is built from JSON.
//!
//! Five kinds, each a map from name to function; [`Registry::builtin`] holds
//! the built-ins and users add their own with the `register_*` methods:
//!
//! | kind | config key | built-ins |
//! |---|---|---|
//! | preprocess (prepare time, per example) | `preprocess_function` | `identity`, `token_ids_to_input_ids`, `example_to_input_ids`, `tokenize` |
//! | filter | `filter_fn`, `on_the_fly_filter_fn` | `drop_first_example`, `min_tokens` |
//! | processor (setup time, per example) | `on_the_fly_processor` | same as preprocess |
//! | group processor (packing) | `on_the_fly_group_processor` | `pack_sequences`, `pack_with_id` |
//! | collator | `collator` (alias `collate_fn`) | `default`, `id_tracking`, `pad_truncate`, `dynamic_padding` |
//! | replicator (setup time, repeats examples) | `on_the_fly_group_processor` | `replicate_examples` |
//!
//! xlm-core's built-ins are registered under their dotted names
//! (`xlm.datamodule.ids_to_example_fn`, `xlm.datamodule.DefaultCollator`,
//! ...), with xlm-core's behaviour; see [`xlm_core`]. Users register their
//! own functions under any name, dotted ones included
//! (`xlm.tasks.lm1b.preprocess_fn`), and their own manager `_target_`s with
//! [`Registry::register_manager_target`]. An unknown dotted name is an
//! error that says how to register it.
//!
//! Every function declares the keyword arguments it accepts, so an unknown
//! kwarg is an error at construction, before any I/O.

mod collate;
mod kwargs;
mod maps;
mod pack;
pub mod xlm_core;

pub use kwargs::Kwargs;

use crate::collate::Collate;
use crate::data::Example;
use crate::plan::PackSpec;
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;

/// Errors of named functions.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// No function of that kind has that name.
    #[error("{key}: no {kind} named `{name}` (registered: {available})")]
    Unknown {
        /// The config key.
        key: String,
        /// The kind of function.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The registered names.
        available: String,
    },
    /// A dotted (Python) name that is neither built in nor registered.
    #[error("{key}: no {kind} named `{name}`: xlm cannot import Python code; implement it in Rust, register it under this name with Registry::{register}(\"{name}\", ...) and build the manager with DatasetManager::builder(config).registry(..) (registered: {available})")]
    UnknownDotted {
        /// The config key.
        key: String,
        /// The kind of function.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The `Registry` method that registers this kind.
        register: &'static str,
        /// The registered names.
        available: String,
    },
    /// A function was given a keyword argument it does not take.
    #[error(
        "{key}: `{function}` does not take the keyword argument `{kwarg}` (it takes: {accepted})"
    )]
    UnknownKwarg {
        /// The config key.
        key: String,
        /// The function.
        function: String,
        /// The unknown keyword argument.
        kwarg: String,
        /// The keyword arguments it takes.
        accepted: String,
    },
    /// A keyword argument has a bad value.
    #[error("`{function}`: keyword argument `{kwarg}`: {reason}")]
    BadKwarg {
        /// The function.
        function: String,
        /// The keyword argument.
        kwarg: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A function failed on its input.
    #[error("`{function}` failed: {reason}")]
    Failed {
        /// The function.
        function: String,
        /// Why it failed.
        reason: String,
    },
}

impl ProcessError {
    /// A failure of `function` with a reason.
    pub fn failed(function: &str, reason: impl std::fmt::Display) -> Self {
        ProcessError::Failed {
            function: function.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// What a named function may need besides its kwargs.
#[derive(Clone, Default)]
pub struct Ctx {
    /// The tokenizer passed to prepare_data/setup, if any.
    pub tokenizer: Option<Arc<dyn Tokenizer>>,
    /// The `block_size` passed to setup, if known.
    pub block_size: Option<usize>,
}

/// A per-example function (preprocess or on-the-fly processor). It reads the
/// example and returns only the columns it adds or replaces; the caller
/// merges them into the example, as `datasets.map` does (a column it does not
/// return is kept, unless `columns_to_keep` / `columns_to_remove` drop it).
pub type MapFn =
    Arc<dyn Fn(&Example, &Ctx, &Kwargs) -> Result<Example, ProcessError> + Send + Sync>;
/// A predicate; false drops the example.
pub type FilterFn = Arc<dyn Fn(&Example, &Kwargs) -> Result<bool, ProcessError> + Send + Sync>;
/// Builds a packing layout from kwargs.
pub type GroupFn = Arc<dyn Fn(&Kwargs, &Ctx) -> Result<PackSpec, ProcessError> + Send + Sync>;
/// Builds a collator from kwargs.
pub type CollatorFn =
    Arc<dyn Fn(&Kwargs, &Ctx) -> Result<Arc<dyn Collate>, ProcessError> + Send + Sync>;

/// Reads a replicator's kwargs: the number of copies of each example.
pub type ReplicateFn = Arc<dyn Fn(&Kwargs) -> Result<usize, ProcessError> + Send + Sync>;

/// A registered function and the kwargs it accepts (`None`: any).
#[derive(Clone)]
pub struct Entry<F> {
    /// The function.
    pub f: F,
    /// Accepted keyword arguments.
    pub params: Option<Vec<String>>,
}

fn entry<F>(f: F, params: &[&str]) -> Entry<F> {
    Entry {
        f,
        params: Some(params.iter().map(|s| s.to_string()).collect()),
    }
}

/// The maps of named functions, and the manager `_target_`s users added.
#[derive(Clone, Default)]
pub struct Registry {
    preprocess: BTreeMap<String, Entry<MapFn>>,
    filters: BTreeMap<String, Entry<FilterFn>>,
    processors: BTreeMap<String, Entry<MapFn>>,
    groups: BTreeMap<String, Entry<GroupFn>>,
    collators: BTreeMap<String, Entry<CollatorFn>>,
    replicators: BTreeMap<String, Entry<ReplicateFn>>,
    manager_targets: BTreeMap<String, crate::manager::ManagerKind>,
}

fn lookup<'a, F>(
    map: &'a BTreeMap<String, Entry<F>>,
    key: &str,
    (kind, register): (&'static str, &'static str),
    name: &str,
    kwargs: &Kwargs,
) -> Result<&'a F, ProcessError> {
    let e = map.get(name).ok_or_else(|| {
        let available = map.keys().cloned().collect::<Vec<_>>().join(", ");
        if name.contains('.') {
            ProcessError::UnknownDotted {
                key: key.to_string(),
                kind,
                name: name.to_string(),
                register,
                available,
            }
        } else {
            ProcessError::Unknown {
                key: key.to_string(),
                kind,
                name: name.to_string(),
                available,
            }
        }
    })?;
    if let Some(params) = &e.params {
        if let Some(bad) = kwargs.keys().find(|k| !params.contains(k)) {
            return Err(ProcessError::UnknownKwarg {
                key: key.to_string(),
                function: name.to_string(),
                kwarg: bad.clone(),
                accepted: if params.is_empty() {
                    "none".into()
                } else {
                    params.join(", ")
                },
            });
        }
    }
    Ok(&e.f)
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in functions.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        for (name, f, params) in maps::builtin_maps() {
            r.preprocess.insert(name.into(), entry(f.clone(), params));
            r.processors.insert(name.into(), entry(f, params));
        }
        for (name, f, params) in maps::builtin_filters() {
            r.filters.insert(name.into(), entry(f, params));
        }
        for (name, f, params) in pack::builtin_groups() {
            r.groups.insert(name.into(), entry(f, params));
        }
        for (name, f, params) in collate::builtin_collators() {
            r.collators.insert(name.into(), entry(f, params));
        }
        xlm_core::register(&mut r);
        r
    }

    /// Adds a replicator: `f` reads the kwargs and returns the number of
    /// copies of each example (see `replicate_examples`).
    pub fn register_replicator(&mut self, name: &str, f: ReplicateFn, params: Option<Vec<String>>) {
        self.replicators.insert(name.into(), Entry { f, params });
    }

    /// Makes `_target_: target` (e.g. a task's subclass such as
    /// `xlm.tasks.sudoku.LocalDatasetManager`) build a manager of `kind`.
    pub fn register_manager_target(&mut self, target: &str, kind: crate::manager::ManagerKind) {
        self.manager_targets.insert(target.into(), kind);
    }

    /// The kind a user registered for `target`, if any.
    pub fn manager_target(&self, target: &str) -> Option<crate::manager::ManagerKind> {
        self.manager_targets.get(target).copied()
    }

    /// The replicator `name`, if registered (`None`: not a replicator), checked against `kwargs`.
    pub fn replicator(
        &self,
        key: &str,
        name: &str,
        kwargs: &Kwargs,
    ) -> Result<Option<&ReplicateFn>, ProcessError> {
        if !self.replicators.contains_key(name) {
            return Ok(None);
        }
        lookup(
            &self.replicators,
            key,
            ("replicator", "register_replicator"),
            name,
            kwargs,
        )
        .map(Some)
    }

    /// Adds a preprocess function (`params`: accepted kwargs, `None` for any).
    pub fn register_preprocess(&mut self, name: &str, f: MapFn, params: Option<Vec<String>>) {
        self.preprocess.insert(name.into(), Entry { f, params });
    }
    /// Adds a filter.
    pub fn register_filter(&mut self, name: &str, f: FilterFn, params: Option<Vec<String>>) {
        self.filters.insert(name.into(), Entry { f, params });
    }
    /// Adds an on-the-fly processor.
    pub fn register_processor(&mut self, name: &str, f: MapFn, params: Option<Vec<String>>) {
        self.processors.insert(name.into(), Entry { f, params });
    }
    /// Adds a group processor (a packing layout).
    pub fn register_group(&mut self, name: &str, f: GroupFn, params: Option<Vec<String>>) {
        self.groups.insert(name.into(), Entry { f, params });
    }
    /// Adds a collator.
    pub fn register_collator(&mut self, name: &str, f: CollatorFn, params: Option<Vec<String>>) {
        self.collators.insert(name.into(), Entry { f, params });
    }

    /// The preprocess function `name`, checked against `kwargs`; `key` names the config key for errors.
    pub fn preprocess(
        &self,
        key: &str,
        name: &str,
        kwargs: &Kwargs,
    ) -> Result<&MapFn, ProcessError> {
        lookup(
            &self.preprocess,
            key,
            ("preprocess function", "register_preprocess"),
            name,
            kwargs,
        )
    }
    /// The filter `name`.
    pub fn filter(
        &self,
        key: &str,
        name: &str,
        kwargs: &Kwargs,
    ) -> Result<&FilterFn, ProcessError> {
        lookup(
            &self.filters,
            key,
            ("filter", "register_filter"),
            name,
            kwargs,
        )
    }
    /// The processor `name`.
    pub fn processor(
        &self,
        key: &str,
        name: &str,
        kwargs: &Kwargs,
    ) -> Result<&MapFn, ProcessError> {
        lookup(
            &self.processors,
            key,
            ("processor", "register_processor"),
            name,
            kwargs,
        )
    }
    /// The group processor `name`.
    pub fn group(&self, key: &str, name: &str, kwargs: &Kwargs) -> Result<&GroupFn, ProcessError> {
        lookup(
            &self.groups,
            key,
            ("group processor", "register_group"),
            name,
            kwargs,
        )
    }
    /// The collator `name`.
    pub fn collator(
        &self,
        key: &str,
        name: &str,
        kwargs: &Kwargs,
    ) -> Result<&CollatorFn, ProcessError> {
        lookup(
            &self.collators,
            key,
            ("collator", "register_collator"),
            name,
            kwargs,
        )
    }
}
