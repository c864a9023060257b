//! get_dataloader: choose the plan for a loader type and rank.

use super::pipeline::Layout;
use super::{DatasetManager, LifecycleError, ManagerKind};
use crate::hash::fingerprint;
use crate::loader::{DataLoader, Fingerprints, LoaderOptions};
use crate::plan::{OrderKind, PlanSpec, Remainder};
use crate::registry::Ctx;
use crate::Result;

/// The four loader types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoaderType {
    /// Training: shuffled (unless debug-overfit), stateful.
    Train,
    /// Validation: never shuffled.
    Val,
    /// Test: never shuffled.
    Test,
    /// Prediction: never shuffled.
    Predict,
}

impl std::str::FromStr for LoaderType {
    type Err = LifecycleError;
    fn from_str(s: &str) -> Result<Self, LifecycleError> {
        match s {
            "train" => Ok(Self::Train),
            "val" => Ok(Self::Val),
            "test" => Ok(Self::Test),
            "predict" => Ok(Self::Predict),
            other => Err(LifecycleError::LoaderType(other.to_string())),
        }
    }
}

/// Which rank of how many a manager serves: given to
/// [`DatasetManager::setup`] and remembered for its loaders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    /// Data-parallel run (`is_ddp` and more than one rank).
    pub ddp: bool,
    /// Global rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
}

impl Topology {
    /// Checks `rank < world_size` (world size at least 1); a single process
    /// counts as not data-parallel whatever `is_ddp` says.
    pub fn new(is_ddp: bool, rank: usize, world_size: usize) -> Result<Self, LifecycleError> {
        if world_size == 0 || rank >= world_size {
            return Err(LifecycleError::Rank { rank, world_size });
        }
        Ok(Self {
            ddp: is_ddp && world_size > 1,
            rank,
            world_size,
        })
    }
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "is_ddp={}, rank={}, world_size={}",
            self.ddp, self.rank, self.world_size
        )
    }
}

impl DatasetManager {
    /// A loader of `kind` for the rank and world size given to
    /// [`setup`](Self::setup).
    ///
    /// | type | ddp | iterable | plan |
    /// |---|---|---|---|
    /// | train | yes | yes | rank's split of the shard stream (shuffle buffer); a `shuffle` kwarg is dropped with a warning |
    /// | train | yes | no | distributed sampler: permutation by seed + epoch, ceil(N/W) (or floor) per rank |
    /// | train | no | no | random permutation by seed + epoch (sequential in debug-overfit or with `shuffle: false`) |
    /// | train | no | yes | the shard stream as is |
    /// | val/test/predict | any | any | never shuffled (a `shuffle: true` is forced off with a warning); split by rank under DDP |
    ///
    /// By kind: `EvalDatasetManager` and the unconditional-generation kind
    /// have no train loader (an error, as in xlm-core). An eval loader under
    /// DDP is split like the `DistributedSampler(shuffle=False)` Lightning
    /// gives xlm-core's eval loaders: rank r takes samples r, r+W, ..., every
    /// rank ceil(N/W), the shortfall wrapped around from the start
    /// ([`Remainder::Pad`]). An unconditional-generation loader is never
    /// split: every rank yields all `num_examples`, as in xlm-core.
    pub fn dataloader(&mut self, kind: LoaderType) -> Result<DataLoader> {
        let topology = self.topology.ok_or_else(|| LifecycleError::NotSetUp {
            full_name: self.full_name.to_string(),
            stages: self.stages.clone(),
        })?;
        self.build_loader(kind, topology)
    }

    /// xlm-core's call shape: `kind` is `train`, `val`, `test` or
    /// `predict`; `is_ddp`, `rank` and `world_size` must agree with what
    /// [`setup`](Self::setup) was given (an error otherwise). Prefer
    /// [`dataloader`](Self::dataloader).
    pub fn get_dataloader(
        &mut self,
        kind: &str,
        is_ddp: bool,
        rank: usize,
        world_size: usize,
    ) -> Result<DataLoader> {
        let kind: LoaderType = kind.parse()?;
        let given = Topology::new(is_ddp, rank, world_size)?;
        let setup = self.topology.ok_or_else(|| LifecycleError::NotSetUp {
            full_name: self.full_name.to_string(),
            stages: self.stages.clone(),
        })?;
        if given != setup {
            return Err(LifecycleError::TopologyMismatch {
                full_name: self.full_name.to_string(),
                given: given.to_string(),
                setup: setup.to_string(),
            }
            .into());
        }
        self.build_loader(kind, setup)
    }

    fn build_loader(&mut self, kind: LoaderType, topology: Topology) -> Result<DataLoader> {
        let Topology {
            ddp,
            rank,
            world_size,
        } = topology;
        let pipeline = self
            .pipeline
            .clone()
            .ok_or_else(|| LifecycleError::NotSetUp {
                full_name: self.full_name.to_string(),
                stages: self.stages.clone(),
            })?;
        let c = self.config.clone();
        let iterable = self.is_iterable();
        let mut kwargs = c.dataloader_kwargs.clone();
        let train = kind == LoaderType::Train;
        let eval_only = matches!(
            self.kind,
            ManagerKind::Eval | ManagerKind::UnconditionalGeneration
        );
        if train && eval_only {
            return Err(LifecycleError::NoTrainLoader {
                full_name: self.full_name.to_string(),
                kind: self.kind,
            }
            .into());
        }
        if train && ddp && iterable && kwargs.shuffle.is_some() {
            self.warn(format!(
                "{}: dataloader_kwargs.shuffle is ignored for a train loader over an iterable dataset under DDP; the shuffle buffer (shuffle_buffer_size) shuffles instead",
                self.full_name
            ));
            kwargs.shuffle = None;
        }
        if !train && kwargs.shuffle == Some(true) {
            self.warn(format!("{}: shuffle is forced off for the {kind:?} loader; evaluation data is never shuffled", self.full_name));
        }
        let stream = |buffer: Option<usize>| OrderKind::Stream {
            shard_sizes: pipeline
                .shard_sizes()
                .cloned()
                .expect("iterable mode has shards"),
            shuffle_buffer: buffer,
        };
        let order = match (train, iterable) {
            (true, true) => stream(if c.debug_overfit {
                None
            } else {
                c.shuffle_buffer_size
            }),
            (true, false) if c.debug_overfit || kwargs.shuffle == Some(false) => {
                OrderKind::Sequential
            }
            (true, false) => OrderKind::Permuted,
            (false, true) => stream(None),
            (false, false) => OrderKind::Sequential,
        };
        // Unconditional generation: every rank yields all examples.
        let split = ddp
            && (!iterable || c.split_by_node)
            && self.kind != ManagerKind::UnconditionalGeneration;
        let remainder = match self.kind {
            ManagerKind::Eval => Remainder::Pad,
            _ => c.ddp_remainder,
        };
        let plan = PlanSpec {
            num_samples: pipeline.num_samples(),
            order,
            seed: c.shuffle_seed,
            world_size: if split { world_size as u64 } else { 1 },
            rank: if split { rank as u64 } else { 0 },
            remainder,
            infinite: train && c.make_infinite,
            start: 0,
        };
        let ctx = Ctx {
            tokenizer: pipeline.ctx.tokenizer.clone(),
            block_size: pipeline.ctx.block_size,
        };
        let collator = c.resolved_collator()?;
        let collate = self
            .registry
            .collator(collator.key, &collator.name, &collator.kwargs)?(
            &collator.kwargs, &ctx
        )?;
        let options = LoaderOptions {
            batch_size: kwargs.batch_size,
            drop_last: kwargs.drop_last,
            num_workers: kwargs.num_workers,
            prefetch: kwargs.prefetch_factor,
        };
        let name = format!("{kind:?}").to_lowercase();
        // What shapes the sample space and its order; batch size, world size
        // and workers are left out (they may change on an elastic resume).
        let packed = matches!(pipeline.layout, Layout::Packed { .. });
        let shape = serde_json::json!({
            "kind": self.kind.target(),
            "loader": name,
            "samples": plan.num_samples,
            "order": plan.order.algorithm(),
            // Not the world size (elastic resume), but whether ranks split at all.
            "split": (self.kind != ManagerKind::UnconditionalGeneration).then_some(crate::plan::SPLIT_ALGORITHM),
            "packing": packed.then_some(crate::plan::PACK_ALGORITHM),
            "replicate": pipeline.rows().copies(),
            "dataset_constructor": (self.kind == ManagerKind::UnconditionalGeneration).then(|| {
                serde_json::json!({
                    "name": c.dataset_constructor_str.as_deref().unwrap_or(super::DEFAULT_EMPTY_DATASET),
                    "kwargs": c.dataset_kwargs,
                })
            }),
            "remainder": plan.remainder,
            "infinite": plan.infinite,
            "on_the_fly_filter_fn": c.on_the_fly_filter_fn,
            "on_the_fly_processor": c.on_the_fly_processor,
            "on_the_fly_processor_kwargs": c.on_the_fly_processor_kwargs,
            "on_the_fly_group_processor": c.on_the_fly_group_processor,
            "on_the_fly_group_processor_kwargs": c.on_the_fly_group_processor_kwargs,
            "block_size": pipeline.ctx.block_size,
            "collate_fn": collator.name,
            "collate_fn_kwargs": collator.kwargs,
            "drop_last": options.drop_last,
        });
        let fingerprints = Fingerprints {
            dataset: pipeline.dataset_fingerprint().to_string(),
            pipeline: fingerprint(shape.to_string().as_bytes()),
        };
        Ok(
            DataLoader::new(name, pipeline, collate, plan, options, self.epoch.clone())?
                .with_fingerprints(fingerprints),
        )
    }
}
