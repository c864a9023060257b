use super::result::write_atomic;
use super::{EpochRecord, Fault, ProbeConfig, RankResult};
use std::path::Path;
use std::time::Instant;
use xlm::loader::{DataLoader, LoaderState};
use xlm::manager::{DatasetManager, PrepareArgs, SetupArgs};
use xlm_dist::{ProcessGroup, RankEnv};

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The rank to name the result file after when the environment is invalid.
fn fallback_rank() -> usize {
    ["RANK", "SLURM_PROCID"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(0)
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs one rank of the probe described by `config` (JSON text, or the
/// error met reading it) and returns its result (the caller writes it).
/// Errors and panics become `ok: false`.
pub fn run_probe(result_dir: &Path, config: Result<String, String>) -> RankResult {
    let start = Instant::now();
    let env = match RankEnv::from_env() {
        Ok(e) => e,
        Err(e) => return RankResult::failed(fallback_rank(), 0, format!("rank environment: {e}")),
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        probe(result_dir, &config?, &env)
    }));
    let mut r = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => RankResult::failed(env.rank, env.world_size, e),
        Err(p) => RankResult::failed(
            env.rank,
            env.world_size,
            format!("panic: {}", panic_text(p)),
        ),
    };
    r.local_rank = env.local_rank;
    r.hostname = hostname();
    r.elapsed_s = start.elapsed().as_secs_f64();
    r
}

fn probe(result_dir: &Path, config_json: &str, env: &RankEnv) -> Result<RankResult, String> {
    let value: serde_json::Value =
        serde_json::from_str(config_json).map_err(|e| format!("--config-json: {e}"))?;
    if let Some(cfg) = super::datamodule::as_datamodule(&value)? {
        return super::datamodule::probe_datamodule(cfg, env);
    }
    let mut cfg: ProbeConfig =
        serde_json::from_value(value).map_err(|e| format!("--config-json: {e}"))?;
    if let Some(seed) = cfg.run.seed {
        cfg.dsm_kwargs.shuffle_seed = seed;
    }
    let timeouts = cfg.run.timeouts()?;
    let tokenizer = cfg
        .tokenizer
        .build()
        .map_err(|e| format!("tokenizer: {e}"))?;
    let mut dm = DatasetManager::new(cfg.dsm_kwargs.clone()).map_err(|e| e.to_string())?;
    let cache_dir = cfg
        .setup_kwargs
        .manual_cache_dir
        .clone()
        .unwrap_or_else(|| result_dir.join("cache"));
    let mut group = ProcessGroup::connect(env, timeouts.rendezvous).map_err(|e| e.to_string())?;
    let fault = cfg.run.fault.clone().filter(|f| f.rank == env.rank);
    prepare_then_barrier(
        &mut group,
        env,
        fault.as_ref(),
        env.local_rank == 0,
        timeouts.prepare,
        || {
            let args = PrepareArgs::new(&cache_dir).with_tokenizer(tokenizer.clone());
            dm.prepare_data(&args)
                .map(|_| ())
                .map_err(|e| format!("prepare_data on rank {}: {e}", env.rank))
        },
    )?;
    let setup = SetupArgs {
        manual_cache_dir: cache_dir,
        tokenizer: Some(tokenizer),
        block_size: cfg.setup_kwargs.block_size,
        is_ddp: env.is_distributed(),
        rank: env.rank,
        world_size: env.world_size,
    };
    dm.setup(cfg.setup_kwargs.stage, &setup)
        .map_err(|e| e.to_string())?;
    let loader = dm
        .get_dataloader(
            &cfg.run.loader,
            env.is_distributed(),
            env.rank,
            env.world_size,
        )
        .map_err(|e| e.to_string())?;
    if loader.num_batches().is_none() && cfg.run.max_batches_per_epoch.is_none() {
        return Err("the loader is infinite (make_infinite); set run.max_batches_per_epoch".into());
    }
    let mut first_epoch = 0;
    if let Some(path) = &cfg.run.resume_from {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("run.resume_from {}: {e}", path.display()))?;
        let state = LoaderState::from_json(&text)
            .map_err(|e| format!("run.resume_from {}: {e}", path.display()))?;
        loader
            .restore(&state)
            .map_err(|e| format!("run.resume_from {}: {e}", path.display()))?;
        first_epoch = state.epoch;
    }
    let mut budget = cfg.run.stop_after_batches.unwrap_or(u64::MAX);
    let mut epochs = Vec::new();
    for epoch in first_epoch..cfg.run.num_epochs {
        if budget == 0 {
            break;
        }
        if cfg.run.set_epoch_each_epoch {
            dm.set_epoch(epoch);
        }
        let limit = cfg
            .run
            .max_batches_per_epoch
            .unwrap_or(u64::MAX)
            .min(budget);
        let rec = record_epoch(&loader, epoch, limit)?;
        budget -= rec.num_batches;
        epochs.push(rec);
    }
    if let (Some(path), 0) = (&cfg.run.state_out, env.rank) {
        write_atomic(path, loader.state().to_json().as_bytes())
            .map_err(|e| format!("run.state_out {}: {e}", path.display()))?;
    }
    Ok(RankResult {
        rank: env.rank,
        world_size: env.world_size,
        ok: true,
        error: None,
        is_iterable_dataset: Some(dm.is_iterable()),
        num_samples: dm.pipeline().map(|p| p.num_samples()),
        planned_batches_per_epoch: loader.num_batches(),
        epochs,
        loaders: Vec::new(),
        accumulation_steps: None,
        local_rank: env.local_rank,
        hostname: String::new(),
        elapsed_s: 0.0,
    })
}

/// Joins the fault hooks and `prepare_data` (run where `prepares`) with the
/// barrier after it: every rank learns whether preparing worked, under the
/// long prepare timeout.
pub(super) fn prepare_then_barrier(
    group: &mut ProcessGroup,
    env: &RankEnv,
    fault: Option<&Fault>,
    prepares: bool,
    timeout: std::time::Duration,
    prepare: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    if let Some(f) = fault {
        super::fault::inject_after_join(f, env.rank)?;
    }
    let prepared = if prepares {
        if let Some(f) = fault {
            super::fault::inject_in_prepare(f)?;
        }
        prepare()
    } else {
        Ok(())
    };
    if let Some(f) = fault {
        super::fault::inject_before_barrier(f)?;
    }
    let status = prepared.err().unwrap_or_default();
    // The others wait here while a rank prepares: the long prepare
    // timeout, not the collective one.
    let statuses = group
        .all_gather_named("barrier after prepare_data", status.as_bytes(), timeout)
        .map_err(|e| e.to_string())?;
    match statuses.iter().find(|s| !s.is_empty()) {
        Some(bad) => Err(String::from_utf8_lossy(bad).into_owned()),
        None => Ok(()),
    }
}

/// Iterates one epoch of `loader` (at most `limit` batches) and records it.
pub(super) fn record_epoch(
    loader: &DataLoader,
    epoch: u64,
    limit: u64,
) -> Result<EpochRecord, String> {
    let mut rec = EpochRecord {
        epoch,
        ids: Vec::new(),
        samples: Vec::new(),
        batch_shapes: Vec::new(),
        source_ids: None,
        num_batches: 0,
    };
    for batch in loader
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        let b = batch.map_err(|e| e.to_string())?;
        let main = b
            .get("input_ids")
            .or_else(|| b.get("token_ids"))
            .or_else(|| b.arrays.first().map(|(_, a)| a));
        rec.batch_shapes
            .push(main.map(|a| a.shape).unwrap_or([b.samples.len(), 0]));
        rec.ids.extend(&b.ids);
        rec.samples.extend(&b.samples);
        if let Some(s) = b.get("source_ids") {
            rec.source_ids
                .get_or_insert_with(Vec::new)
                .extend((0..s.shape[0]).map(|i| s.row(i).to_vec()));
        }
        rec.num_batches += 1;
    }
    Ok(rec)
}
