//! The TextDataModule tier: construction errors, loader names and ids,
//! prepare -> setup -> loaders over several managers, the global-batch rule,
//! set_epoch fan-out, and equal batch counts on every rank for every loader.

mod common;

use common::*;
use serde_json::{json, Value as Json};
use xlm::datamodule::{DataModuleError, Split, TextDataModule, TextDataModuleConfig};
use xlm::manager::Stage;

fn module_config(dir: &std::path::Path, managers: Json, extra: Json) -> TextDataModuleConfig {
    let mut c = json!({
        "_target_": "xlm.datamodule.TextDataModule",
        "manual_cache_dir": dir,
        "tokenizer": {"kind": "simple_space"},
        "block_size": 8,
        "dataset_managers": managers,
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    TextDataModuleConfig::from_json(&c.to_string()).unwrap()
}

fn two_splits() -> Json {
    json!({
        "train": {"large": {"full_name": "mem/raw_large/train", "collate_fn": "id_tracking",
                             "dataloader_kwargs": {"batch_size": 4}}},
        "val": {
            "raw_val": {"full_name": "mem/raw/val", "collate_fn": "id_tracking",
                         "dataloader_kwargs": {"batch_size": 2}},
            "raw_test": {"full_name": "mem/raw/test", "collate_fn": "id_tracking",
                          "dataloader_kwargs": {"batch_size": 2}}
        }
    })
}

fn err(c: TextDataModuleConfig) -> String {
    TextDataModule::new(c).unwrap_err().to_string()
}

#[test]
fn construction_errors_name_the_split_manager_or_key() {
    let d = tempfile::tempdir().unwrap();
    let e = err(module_config(
        d.path(),
        json!({"training": {"a": {"full_name": "mem/raw/train"}}}),
        json!({}),
    ));
    assert!(
        e.contains("dataset_managers.training") && e.contains("`training` is not a split"),
        "{e}"
    );
    let e = err(module_config(
        d.path(),
        json!({"train": {"a": {"full_name": "mem/raw/train"}, "b": {"full_name": "mem/raw/train"}}}),
        json!({}),
    ));
    assert!(
        e.contains("at most one train dataset manager (found 2: a, b)"),
        "{e}"
    );
    let e = err(module_config(
        d.path(),
        json!({"val": {"v": {"full_name": "mem/raw/val", "shufle": true}}}),
        json!({}),
    ));
    assert!(
        e.contains("dataset_managers.val.v") && e.contains("shufle"),
        "{e}"
    );
    let e = err(module_config(
        d.path(),
        json!({"val": {"v": {"full_name": "mem/raw/val", "collate_fn": "nope"}}}),
        json!({}),
    ));
    assert!(
        e.contains("val dataset manager `v`") && e.contains("nope"),
        "{e}"
    );
    let e = err(module_config(
        d.path(),
        two_splits(),
        json!({"_target_": "my.DataModule"}),
    ));
    assert!(e.contains("_target_") && e.contains("my.DataModule"), "{e}");
}

#[test]
fn names_and_ids_follow_the_config_order() {
    let d = tempfile::tempdir().unwrap();
    let dm = TextDataModule::new(module_config(d.path(), two_splits(), json!({}))).unwrap();
    assert_eq!(dm.dataloader_names(Split::Train), ["large"]);
    assert_eq!(dm.dataloader_names(Split::Val), ["raw_val", "raw_test"]);
    assert_eq!(dm.dataloader_ids(Split::Val)["raw_test"], 1);
    assert!(dm.dataloader_names(Split::Test).is_empty());
}

#[test]
fn prepare_setup_and_loaders_over_several_managers() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = TextDataModule::new(module_config(d.path(), two_splits(), json!({}))).unwrap();
    assert!(matches!(
        dm.train_dataloader(),
        Err(DataModuleError::NotSetUp)
    ));
    dm.prepare_data().unwrap();
    dm.setup(Stage::Fit, 0, 1).unwrap();
    let train = dm.train_dataloader().unwrap();
    assert_eq!(sorted(&ids(&train)), (1000..1060).collect::<Vec<_>>());
    let val = dm.dataloaders(Split::Val).unwrap();
    assert_eq!(val.len(), 2);
    assert_eq!(
        ids(&val[0]),
        (100..107).collect::<Vec<_>>(),
        "never shuffled"
    );
    assert_eq!(ids(&val[1]), (200..205).collect::<Vec<_>>());
    assert!(
        dm.dataloaders(Split::Test).unwrap().is_empty(),
        "no test managers: an empty list, as xlm-core"
    );
    // set_epoch reaches every manager: the train order changes, val does not.
    let (t0, v0) = (ids(&train), ids(&val[0]));
    dm.set_epoch(1);
    assert_ne!(ids(&train), t0);
    assert_eq!(ids(&val[0]), v0);
    assert_eq!(train.epoch(), 1);
    assert!(val.iter().all(|l| l.epoch() == 1), "every manager's epoch");
}

#[test]
fn a_config_without_a_train_split_is_valid() {
    let d = tempfile::tempdir().unwrap();
    let managers = json!({"test": {"t": {"full_name": "mem/raw/test", "stages": ["test"],
                                          "collate_fn": "id_tracking"}}});
    let mut dm = TextDataModule::new(module_config(
        d.path(),
        managers,
        json!({"global_batch_size": 7}),
    ))
    .unwrap();
    dm.prepare_data().unwrap();
    dm.setup(Stage::Test, 0, 1).unwrap();
    assert_eq!(dm.accumulation_steps().unwrap(), None, "no train manager");
    assert_eq!(
        ids(&dm.dataloaders(Split::Test).unwrap()[0]),
        (200..205).collect::<Vec<_>>()
    );
    assert!(dm.train_dataloader().is_err());
}

#[test]
fn global_batch_gives_the_accumulation_or_an_error_naming_every_number() {
    let d = tempfile::tempdir().unwrap();
    let mut dm = TextDataModule::new(module_config(
        d.path(),
        two_splits(),
        json!({"global_batch_size": 16}),
    ))
    .unwrap();
    dm.prepare_data().unwrap();
    dm.setup(Stage::Fit, 1, 2).unwrap();
    assert_eq!(dm.accumulation_steps().unwrap(), Some(2), "16 / (4 x 2)");
    for bad in [12u64, 0, 4] {
        let mut dm = TextDataModule::new(module_config(
            d.path(),
            two_splits(),
            json!({"global_batch_size": bad}),
        ))
        .unwrap();
        let e = dm.setup(Stage::Fit, 0, 2).unwrap_err().to_string();
        assert!(
            e.contains(&format!("global_batch_size {bad} is not a positive multiple of batch_size 4 x world_size 2 = 8")),
            "{e}"
        );
    }
}

#[test]
fn rewrite_manual_cache_is_or_ed_into_every_manager() {
    let d = tempfile::tempdir().unwrap();
    let c = module_config(
        d.path(),
        two_splits(),
        json!({"rewrite_manual_cache": true}),
    );
    for (_, name, m) in c.managers().unwrap() {
        assert!(m.rewrite_manual_cache, "{name}");
    }
    let c = module_config(d.path(), two_splits(), json!({}));
    assert!(c
        .managers()
        .unwrap()
        .iter()
        .all(|(_, _, m)| !m.rewrite_manual_cache));
}

#[test]
fn every_rank_gets_the_same_number_of_batches_for_every_loader() {
    let d = tempfile::tempdir().unwrap();
    let managers = json!({
        "train": {"it": {"full_name": "mem/raw_large/train", "iterable_dataset_shards": 3,
                          "shuffle_buffer_size": 4, "collate_fn": "id_tracking",
                          "dataloader_kwargs": {"batch_size": 4}}},
        "val": {"a": {"full_name": "mem/raw/val", "collate_fn": "id_tracking", "dataloader_kwargs": {"batch_size": 2}},
                "b": {"full_name": "mem/raw/train", "collate_fn": "id_tracking", "dataloader_kwargs": {"batch_size": 3}}}
    });
    TextDataModule::new(module_config(d.path(), managers.clone(), json!({})))
        .unwrap()
        .prepare_data()
        .unwrap();
    for world in 1..=4usize {
        let per_rank: Vec<Vec<usize>> = (0..world)
            .map(|rank| {
                let mut dm =
                    TextDataModule::new(module_config(d.path(), managers.clone(), json!({})))
                        .unwrap();
                dm.setup(Stage::Fit, rank, world).unwrap();
                let mut counts = vec![dm.train_dataloader().unwrap().iter().count()];
                counts.extend(
                    dm.dataloaders(Split::Val)
                        .unwrap()
                        .iter()
                        .map(|l| l.iter().count()),
                );
                counts
            })
            .collect();
        assert!(
            per_rank.iter().all(|c| *c == per_rank[0]),
            "world {world}: {per_rank:?}"
        );
    }
}

#[test]
fn yaml_in_xlm_core_shape_parses() {
    let d = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
_target_: xlm.datamodule.TextDataModule
manual_cache_dir: {}
block_size: 8
global_batch_size: 8
num_dataset_workers: 1
verbosity: 1
tokenizer:
  kind: simple_space
dataset_managers:
  train:
    large:
      full_name: mem/raw_large/train
      collate_fn: id_tracking
      dataloader_kwargs:
        batch_size: 4
  val:
    raw:
      full_name: mem/raw/val
      collate_fn: id_tracking
"#,
        d.path().display()
    );
    let mut dm = TextDataModule::new(TextDataModuleConfig::from_yaml(&yaml).unwrap()).unwrap();
    dm.prepare_data().unwrap();
    dm.setup(Stage::Fit, 0, 2).unwrap();
    assert_eq!(dm.accumulation_steps().unwrap(), Some(1));
    assert_eq!(ids(&dm.train_dataloader().unwrap()).len(), 30);
}

#[test]
fn a_user_registry_reaches_every_manager_and_block_size_defaults_to_128() {
    use std::sync::Arc;
    use xlm::data::{Example, Value};
    use xlm::registry::{Ctx, Kwargs, Registry};
    let d = tempfile::tempdir().unwrap();
    let mut reg = Registry::builtin();
    reg.register_processor(
        "xlm.tasks.toy.mark",
        Arc::new(|_: &Example, _: &Ctx, _: &Kwargs| {
            Ok(Example::new().with("mark", Value::List(vec![1, 2])))
        }),
        Some(vec![]),
    );
    let managers = json!({"val": {"m": {"full_name": "mem/raw/val", "collate_fn": "id_tracking",
                                         "on_the_fly_processor": "xlm.tasks.toy.mark"}}});
    let mut c = module_config(d.path(), managers, json!({}));
    assert!(TextDataModule::new(c.clone())
        .unwrap_err()
        .to_string()
        .contains("xlm.tasks.toy.mark"));
    c.block_size = TextDataModuleConfig::from_json(
        &json!({"manual_cache_dir": d.path(), "dataset_managers": {}}).to_string(),
    )
    .unwrap()
    .block_size;
    assert_eq!(c.block_size, Some(128), "xlm-core's default");
    let mut dm = TextDataModule::with_registry(c, Arc::new(reg)).unwrap();
    dm.prepare_data().unwrap();
    dm.setup(Stage::Validate, 0, 1).unwrap();
    let b = dm.dataloaders(Split::Val).unwrap()[0]
        .iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(b.get("mark").unwrap().shape[1], 2);
}
