use serde::Deserialize;
use std::path::PathBuf;
use std::time::Instant;
use xlm::datamodule::{TextDataModule, TextDataModuleConfig};
use xlm::manager::{DatasetManager, DatasetManagerConfig, PrepareArgs};
use xlm::tokenizer::TokenizerConfig;

/// The file `xlm prepare --config` reads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareConfig {
    /// The DatasetManager config.
    pub dsm_kwargs: DatasetManagerConfig,
    /// The tokenizer (default: SimpleSpaceTokenizer over the test vocabulary).
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
    /// Base directory of the cache.
    pub manual_cache_dir: PathBuf,
    /// Threads (default: all cores).
    #[serde(default)]
    pub num_proc: Option<usize>,
}

/// Arguments of `xlm prepare`.
#[derive(Debug, clap::Args)]
pub struct PrepareCliArgs {
    /// JSON or YAML (.yaml/.yml) file: {"dsm_kwargs": {...}, "tokenizer": {...}, "manual_cache_dir": "...", "num_proc": N}, or a data module's node (xlm-core's datamodule YAML, with `dataset_managers`).
    #[arg(long)]
    pub config: PathBuf,
    /// Overrides num_proc.
    #[arg(long)]
    pub num_proc: Option<usize>,
}

impl PrepareCliArgs {
    /// Prepares the cache and prints a summary.
    pub fn run(&self) -> anyhow::Result<()> {
        let value: serde_json::Value =
            super::read_config_file(&self.config).map_err(|e| anyhow::anyhow!("--config {e}"))?;
        if value.get("dataset_managers").is_some() {
            return self.run_datamodule(value);
        }
        if let Some(node) = value.get("datamodule") {
            return self.run_datamodule(node.clone());
        }
        let cfg: PrepareConfig = serde_json::from_value(value)
            .map_err(|e| anyhow::anyhow!("--config {}: {e}", self.config.display()))?;
        let tokenizer = cfg.tokenizer.build()?;
        let dm = DatasetManager::new(cfg.dsm_kwargs)?;
        let dir = dm.cache_dir(&cfg.manual_cache_dir);
        let t = Instant::now();
        let table = dm.prepare_data(&PrepareArgs {
            manual_cache_dir: cfg.manual_cache_dir.clone(),
            tokenizer: Some(tokenizer),
            num_proc: self.num_proc.or(cfg.num_proc),
            load: true,
            progress: Some(std::sync::Arc::new(crate::progress::TerminalProgress)),
        })?;
        let secs = t.elapsed().as_secs_f64();
        let t = table.expect("load=true returns the dataset");
        let tokens = t
            .list_elements("input_ids")
            .max(t.list_elements("token_ids"));
        println!(
            "xlm prepare: {} -> {} ({} rows, {} tokens) in {:.2} s ({:.2} M tokens/s)",
            dm.full_name(),
            dir.display(),
            t.len(),
            tokens,
            secs,
            tokens as f64 / secs.max(1e-9) / 1e6
        );
        Ok(())
    }

    /// A data module's node (xlm-core's `datamodule/*.yaml`): prepares
    /// every manager's cache.
    fn run_datamodule(&self, value: serde_json::Value) -> anyhow::Result<()> {
        let mut cfg = TextDataModuleConfig::from_value(value)
            .map_err(|e| anyhow::anyhow!("--config {}: {e}", self.config.display()))?;
        if let Some(n) = self.num_proc {
            cfg.num_dataset_workers = Some(n);
        }
        let module = TextDataModule::new(cfg)?;
        let t = Instant::now();
        module.prepare_data_with(Some(std::sync::Arc::new(crate::progress::TerminalProgress)))?;
        for (split, name, dm) in module.managers() {
            println!(
                "xlm prepare: {split}/{name}: {} -> {}",
                dm.full_name(),
                dm.cache_dir(&module.config().manual_cache_dir).display()
            );
        }
        println!(
            "xlm prepare: data module ready in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
