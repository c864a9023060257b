use crate::inspect::summarize;
use std::path::PathBuf;
use std::sync::Arc;
use xlm::tokenizer::{Tokenizer, TokenizerConfig};

/// Arguments of `xlm inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The cache directory (the one holding manifest.json).
    pub cache: PathBuf,
    /// Example rows to show.
    #[arg(long, default_value_t = 3)]
    pub examples: usize,
    /// Decode token columns with this tokenizer.json.
    #[arg(long, conflicts_with = "simple_vocab")]
    pub tokenizer: Option<PathBuf>,
    /// Decode token columns with the SimpleSpaceTokenizer test vocabulary.
    #[arg(long)]
    pub simple_vocab: bool,
    /// Also check every checksum and every row: offsets in order and in
    /// bounds, text UTF-8 (reads the whole cache).
    #[arg(long)]
    pub verify: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl InspectArgs {
    /// Prints the summary.
    pub fn run(&self) -> anyhow::Result<()> {
        if self.verify {
            xlm::cache::verify(&self.cache)?;
        }
        let table = xlm::cache::open(&self.cache)?;
        let tokenizer: Option<Arc<dyn Tokenizer>> = match (&self.tokenizer, self.simple_vocab) {
            (Some(path), _) => Some(TokenizerConfig::TokenizerJson { path: path.clone() }.build()?),
            (None, true) => Some(TokenizerConfig::default().build()?),
            (None, false) => None,
        };
        let s = summarize(&table, self.examples, tokenizer.as_deref())?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            println!(
                "cache: {}{}",
                self.cache.display(),
                if self.verify {
                    " (checksums verified, every row checked)"
                } else {
                    ""
                }
            );
            print!("{s}");
        }
        Ok(())
    }
}
