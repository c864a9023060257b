//! `xlm probe` over a whole data module: every split's loaders on one rank.
//!
//! Accepted shapes: the data module's own node (a config with
//! `dataset_managers` at the top, as xlm-core's `datamodule/*.yaml`), or
//! `{"datamodule": {...}, "run": {...}}` to set the run options too.

use super::run::{prepare_then_barrier, record_epoch};
use super::{LoaderRecord, ProbeRun, RankResult};
use serde::Deserialize;
use xlm::datamodule::{DataModuleError, Split, TextDataModule, TextDataModuleConfig};
use xlm::manager::Stage;
use xlm_dist::{ProcessGroup, RankEnv};

/// A probe of a data module.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataModuleProbe {
    /// The data module (xlm-core's `datamodule` node).
    pub datamodule: TextDataModuleConfig,
    /// What to iterate (as for a single manager; `loader` and
    /// `resume_from`/`state_out` do not apply).
    #[serde(default)]
    pub run: ProbeRun,
}

/// The data-module probe `value` describes, if it describes one.
pub fn as_datamodule(value: &serde_json::Value) -> Result<Option<DataModuleProbe>, String> {
    let Some(obj) = value.as_object() else {
        return Ok(None);
    };
    if obj.contains_key("dataset_managers") {
        let datamodule = TextDataModuleConfig::from_value(value.clone())
            .map_err(|e| format!("datamodule config: {e}"))?;
        return Ok(Some(DataModuleProbe {
            datamodule,
            run: ProbeRun::default(),
        }));
    }
    if obj.contains_key("datamodule") {
        xlm::manager::check_unresolved(value, "").map_err(|e| e.to_string())?;
        return serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| format!("--config-json: {e}"));
    }
    Ok(None)
}

/// Runs one rank: the ranks the module picks prepare while the others
/// wait, every rank sets up every stage, then each split's loaders are
/// iterated for `run.num_epochs` epochs (`set_epoch` on the module).
pub fn probe_datamodule(cfg: DataModuleProbe, env: &RankEnv) -> Result<RankResult, String> {
    let run = &cfg.run;
    if run.resume_from.is_some() || run.state_out.is_some() {
        return Err(
            "run.resume_from / run.state_out apply to a single dataset manager, not a datamodule"
                .into(),
        );
    }
    let timeouts = run.timeouts()?;
    let mut module = TextDataModule::new(cfg.datamodule).map_err(|e| e.to_string())?;
    let mut group = ProcessGroup::connect(env, timeouts.rendezvous).map_err(|e| e.to_string())?;
    let fault = run.fault.clone().filter(|f| f.rank == env.rank);
    let prepares = module.prepares(env.rank, env.local_rank);
    prepare_then_barrier(
        &mut group,
        env,
        fault.as_ref(),
        prepares,
        timeouts.prepare,
        || {
            module
                .prepare_data()
                .map_err(|e| format!("prepare_data on rank {}: {e}", env.rank))
        },
    )?;
    for stage in [Stage::Fit, Stage::Validate, Stage::Test, Stage::Predict] {
        module
            .setup(stage, env.rank, env.world_size)
            .map_err(|e| e.to_string())?;
    }
    let mut loaders = Vec::new();
    for split in Split::ALL {
        let split_loaders = match module.dataloaders(split) {
            Ok(l) => l,
            Err(DataModuleError::NoManager { .. }) => continue,
            Err(e) => return Err(e.to_string()),
        };
        let names: Vec<String> = module
            .dataloader_names(split)
            .into_iter()
            .map(String::from)
            .collect();
        for (name, loader) in names.into_iter().zip(split_loaders) {
            if loader.num_batches().is_none() && run.max_batches_per_epoch.is_none() {
                return Err(format!(
                    "{split} loader `{name}` is infinite (make_infinite); set run.max_batches_per_epoch"
                ));
            }
            let mut epochs = Vec::new();
            for epoch in 0..run.num_epochs {
                if run.set_epoch_each_epoch {
                    module.set_epoch(epoch);
                }
                let limit = run.max_batches_per_epoch.unwrap_or(u64::MAX);
                epochs.push(record_epoch(&loader, epoch, limit)?);
            }
            loaders.push(LoaderRecord {
                split: split.as_str().to_string(),
                name,
                planned_batches_per_epoch: loader.num_batches(),
                epochs,
            });
        }
    }
    let accumulation = module.accumulation_steps().map_err(|e| e.to_string())?;
    Ok(RankResult {
        rank: env.rank,
        world_size: env.world_size,
        ok: true,
        error: None,
        is_iterable_dataset: None,
        num_samples: None,
        planned_batches_per_epoch: None,
        epochs: Vec::new(),
        loaders,
        accumulation_steps: accumulation,
        local_rank: env.local_rank,
        hostname: String::new(),
        elapsed_s: 0.0,
    })
}
