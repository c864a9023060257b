//! The crate-wide error type: one variant per life-cycle stage, each wrapping
//! that stage's own typed error so a caller can match on where it failed.

use thiserror::Error;

/// Any error the xlm library returns.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An invalid `DatasetManager` configuration (caught before any I/O).
    #[error(transparent)]
    Config(#[from] crate::manager::ConfigError),
    /// Reading or writing the on-disk cache failed.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// A source could not produce the raw rows.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// A tokenizer could not be loaded or could not encode a text.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    /// A named function (preprocess, filter, processor, collator) failed.
    #[error(transparent)]
    Process(#[from] crate::registry::ProcessError),
    /// A data value had the wrong shape or kind.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The life cycle was used out of order (e.g. a dataloader before setup).
    #[error(transparent)]
    Lifecycle(#[from] crate::manager::LifecycleError),
    /// A data loader worker failed.
    #[error(transparent)]
    Loader(#[from] crate::loader::LoaderError),
}

/// Result with the crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
