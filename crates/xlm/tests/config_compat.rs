//! Config compatibility with xlm-core (issue #10): its DatasetManager
//! configs, as YAML fixtures in the shape of
//! `xlm/configs/lightning_train/datasets/*.yaml` (`tests/fixtures/xlm_core/`),
//! parse, build and run; what xlm does not support is an error that names
//! the key.

use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use xlm::data::{Example, Value};
use xlm::manager::{
    check_unresolved, CollatorSpec, DatasetManager, DatasetManagerConfig, LoaderType, ManagerKind,
    PrepareArgs, SetupArgs, Stage, GLOBAL_TOKENIZER,
};
use xlm::registry::{Ctx, Kwargs, Registry};
use xlm::tokenizer::{
    pretrained, GlobalComponents, SimpleSpaceTokenizer, Tokenizer, TokenizerConfig,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xlm_core")
}

/// A fixture's text, with `${oc.env:DATA_DIR,.}` resolved to `data_dir` (as
/// Hydra would).
fn fixture(name: &str, data_dir: &Path) -> String {
    std::fs::read_to_string(fixtures().join(name))
        .unwrap()
        .replace("${oc.env:DATA_DIR,.}", &data_dir.display().to_string())
}

/// A fixture as a JSON value, to edit.
fn fixture_value(name: &str) -> Json {
    serde_yaml_ng::from_str(&fixture(name, &fixtures().join("data"))).unwrap()
}

fn parse(v: &Json) -> Result<DatasetManagerConfig, String> {
    DatasetManagerConfig::from_json(&v.to_string()).map_err(|e| e.to_string())
}

fn build(v: &Json) -> Result<DatasetManager, String> {
    parse(v).and_then(|c| DatasetManager::new(c).map_err(|e| e.to_string()))
}

fn build_with(v: &Json, r: Registry) -> Result<DatasetManager, String> {
    let c = parse(v)?;
    DatasetManager::builder(c)
        .registry(Arc::new(r))
        .build()
        .map_err(|e| e.to_string())
}

/// Registers a stand-in for a task's Python preprocess function.
fn with_task_fn(name: &str) -> Registry {
    let mut r = Registry::builtin();
    r.register_preprocess(
        name,
        Arc::new(|_: &Example, _: &Ctx, _: &Kwargs| Ok(Example::new())),
        Some(vec![]),
    );
    r
}

fn simple_tokenizer() -> Arc<dyn Tokenizer> {
    let cfg: TokenizerConfig =
        serde_yaml_ng::from_str(&fixture("tokenizer_simple_space.yaml", Path::new("."))).unwrap();
    cfg.build().unwrap()
}

/// A local jsonl manager config over `file` (xlm's spelling).
fn local_jsonl(file: &Path) -> Json {
    json!({"_target_": "xlm.datamodule.LocalDatasetManager", "ds_type": "jsonl",
           "full_name": "local/toy/train", "load_kwargs": {"data_files": file}})
}

fn rows(dm: &DatasetManager, cache: &Path) -> usize {
    dm.prepare_data(&PrepareArgs::new(cache).with_load(true))
        .unwrap()
        .unwrap()
        .len()
}

#[test]
fn lm1b_fixture_parses_every_accepted_key() {
    let c = DatasetManagerConfig::from_yaml(&fixture("lm1b_train.yaml", Path::new("."))).unwrap();
    assert_eq!(c.target.as_deref(), Some("xlm.datamodule.DatasetManager"));
    assert_eq!(c.preprocess_load_from_cache_file, Some(true));
    assert_eq!(c.on_the_fly_load_from_cache_file, Some(false));
    assert_eq!(c.model_name, None);
    assert_eq!(c.dataloader_kwargs.pin_memory, Some(true));
    assert_eq!(c.dataloader_kwargs.persistent_workers, Some(false));
    assert_eq!(c.dataloader_kwargs.prefetch_factor, 2);
    assert!(
        matches!(&c.collator, Some(CollatorSpec::Target { target, .. })
        if target == "xlm.datamodule.DefaultCollatorWithPadding")
    );
    let ignored: Vec<&str> = c.ignored_keys().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        ignored,
        [
            "preprocess_load_from_cache_file",
            "on_the_fly_load_from_cache_file",
            "dataloader_kwargs.pin_memory",
            "dataloader_kwargs.persistent_workers"
        ]
    );
    let resolved = c.resolved_collator().unwrap();
    assert_eq!(resolved.name, "xlm.datamodule.DefaultCollatorWithPadding");
    assert_eq!(
        Json::Object(resolved.kwargs),
        json!({"block_size": 128}),
        "tokenizer and noise_schedule are understood, not passed on"
    );
}

#[test]
fn accepted_keys_are_documented_as_ignored_and_unknown_keys_stay_errors() {
    let mut v = fixture_value("lm1b_train.yaml");
    v["model_name"] = json!("mdlm");
    v["dataloader_kwargs"]["prefetch_factor"] = Json::Null;
    v["load_from_cache_file"] = json!(false);
    let c = parse(&v).unwrap();
    assert_eq!(
        c.dataloader_kwargs.prefetch_factor, 2,
        "null is the default"
    );
    let ignored = c.ignored_keys();
    assert!(ignored
        .iter()
        .any(|(k, why)| *k == "model_name" && why.contains("cache")));
    assert!(ignored.iter().any(|(k, _)| *k == "load_from_cache_file"));
    let mut v = fixture_value("lm1b_train.yaml");
    v["colator"] = json!("default");
    let e = parse(&v).unwrap_err();
    assert!(e.contains("unknown field `colator`"), "{e}");
    let mut v = fixture_value("lm1b_train.yaml");
    v["dataloader_kwargs"]["pin_memroy"] = json!(true);
    let e = parse(&v).unwrap_err();
    assert!(e.contains("pin_memroy"), "{e}");
}

#[test]
fn unknown_dotted_function_names_itself_and_how_to_register_it() {
    let e = build(&fixture_value("lm1b_train.yaml")).unwrap_err();
    assert!(
        e.contains("preprocess_function")
            && e.contains("`xlm.tasks.lm1b.preprocess_fn`")
            && e.contains("Registry::register_preprocess(\"xlm.tasks.lm1b.preprocess_fn\""),
        "{e}"
    );
    let mut v = fixture_value("lm1b_train.yaml");
    v["on_the_fly_processor"] = json!("xlm.tasks.star.processor");
    let e = build_with(&v, with_task_fn("xlm.tasks.lm1b.preprocess_fn")).unwrap_err();
    assert!(
        e.contains("register_processor(\"xlm.tasks.star.processor\""),
        "{e}"
    );
    let mut v = fixture_value("lm1b_train.yaml");
    v["collator"] = json!("xlm.lm.mlm.datamodule_mlm.DefaultMLMCollator");
    let e = build_with(&v, with_task_fn("xlm.tasks.lm1b.preprocess_fn")).unwrap_err();
    assert!(
        e.contains("collator") && e.contains("register_collator(\"xlm.lm.mlm"),
        "{e}"
    );
}

#[test]
fn user_registered_dotted_function_builds_and_runs() {
    let dm = build_with(
        &fixture_value("lm1b_train.yaml"),
        with_task_fn("xlm.tasks.lm1b.preprocess_fn"),
    )
    .unwrap();
    assert_eq!(dm.kind(), ManagerKind::Default);
    // A registered processor runs at setup, as xlm-core's would.
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("toy.jsonl");
    std::fs::write(&file, "{\"token_ids\": [7, 8]}\n{\"token_ids\": [9]}\n").unwrap();
    let mut r = Registry::builtin();
    r.register_processor(
        "xlm.tasks.toy.double_fn",
        Arc::new(|e: &Example, _: &Ctx, _: &Kwargs| {
            let ids = e.list("token_ids").unwrap();
            Ok(Example::new().with("input_ids", Value::List([ids, ids].concat())))
        }),
        Some(vec![]),
    );
    let mut v = local_jsonl(&file);
    v["on_the_fly_processor"] = json!("xlm.tasks.toy.double_fn");
    v["dataloader_kwargs"] = json!({"batch_size": 2, "shuffle": false});
    v["collator"] = json!("dynamic_padding");
    let mut dm = build_with(&v, r).unwrap();
    let cache = d.path().join("cache");
    rows(&dm, &cache);
    dm.setup(Stage::Fit, &SetupArgs::single(&cache)).unwrap();
    let batch = dm
        .dataloader(LoaderType::Train)
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        batch.get("input_ids").unwrap().data,
        [7, 8, 7, 8, 9, 9, 0, 0]
    );
}

#[test]
fn collator_forms_and_the_collate_fn_alias() {
    let base = fixture_value("gsm8k_test_eval.yaml");
    let with = |key: &str, c: Json| {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove("collator");
        v[key] = c;
        v
    };
    let forms = [
        ("collator", json!("DefaultCollator"), "DefaultCollator"),
        (
            "collator",
            json!("xlm.datamodule.DefaultCollatorWithPadding"),
            "xlm.datamodule.DefaultCollatorWithPadding",
        ),
        (
            "collator",
            json!({"_target_": "xlm.datamodule.DefaultCollatorWithDynamicPadding",
                   "tokenizer": GLOBAL_TOKENIZER, "block_size": 64,
                   "noise_schedule": {"_target_": "xlm.noise.LogLinear"}}),
            "xlm.datamodule.DefaultCollatorWithDynamicPadding",
        ),
        (
            "collator",
            json!({"_target_": "pad_truncate", "block_size": 8}),
            "pad_truncate",
        ),
        ("collate_fn", json!("id_tracking"), "id_tracking"),
        (
            "collate_fn",
            json!({"_target_": "xlm.datamodule.DefaultCollator", "tokenizer": null}),
            "xlm.datamodule.DefaultCollator",
        ),
    ];
    for (key, c, name) in forms {
        let cfg = parse(&with(key, c.clone())).unwrap();
        let r = cfg.resolved_collator().unwrap();
        assert_eq!((r.key, r.name.as_str()), (key, name), "{c}");
        assert!(!r.kwargs.contains_key("tokenizer") && !r.kwargs.contains_key("noise_schedule"));
        // Each names a registered collator with arguments it takes.
        Registry::builtin()
            .collator(r.key, &r.name, &r.kwargs)
            .unwrap();
    }
    // The default stays `default`.
    let mut v = base.clone();
    v.as_object_mut().unwrap().remove("collator");
    assert_eq!(
        parse(&v).unwrap().resolved_collator().unwrap().name,
        "default"
    );

    let mut both = base.clone();
    both["collate_fn"] = json!("default");
    let e = parse(&both).unwrap_err();
    assert!(
        e.contains("`collator` and its alias `collate_fn` are both set"),
        "{e}"
    );
    let mut kw = with("collator", json!({"_target_": "pad_truncate"}));
    kw["collate_fn_kwargs"] = json!({"block_size": 8});
    let e = parse(&kw).unwrap_err();
    assert!(
        e.contains("collate_fn_kwargs") && e.contains("mapping"),
        "{e}"
    );
    let e = parse(&with(
        "collator",
        json!({"_target_": "pad_truncate", "tokenizer": {"_target_": "x"}}),
    ))
    .unwrap_err();
    assert!(e.contains("collator.tokenizer"), "{e}");
    let e = parse(&with("collator", json!({"block_size": 8}))).unwrap_err();
    assert!(e.contains("`_target_`"), "{e}");
    let e = parse(&with(
        "collator",
        json!({"_target_": "pad_truncate", "block_sise": 8}),
    ))
    .and_then(|c| {
        let r = c.resolved_collator().unwrap();
        Registry::builtin()
            .collator(r.key, &r.name, &r.kwargs)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .unwrap_err();
    assert!(e.contains("block_sise"), "{e}");
}

#[test]
fn task_subclass_target_is_an_error_until_registered() {
    let data = tempfile::tempdir().unwrap();
    let text = fixture("sudoku_train.yaml", data.path());
    let v: Json = serde_yaml_ng::from_str(&text).unwrap();
    let e = build(&v).unwrap_err();
    assert!(
        e.contains("_target_")
            && e.contains("`xlm.tasks.sudoku.LocalDatasetManager`")
            && e.contains("register_manager_target"),
        "{e}"
    );
    let mut r = with_task_fn("xlm.tasks.sudoku.sudoku_preprocess_fn");
    r.register_manager_target("xlm.tasks.sudoku.LocalDatasetManager", ManagerKind::Local);
    let dm = build_with(&v, r).unwrap();
    assert_eq!(dm.kind(), ManagerKind::Local);
    assert_eq!(dm.full_name().split, "train");

    let mut v = fixture_value("gsm8k_test_eval.yaml");
    v["_target_"] = json!("xlm.datamodule.TextDataModule");
    let e = build(&v).unwrap_err();
    assert!(e.contains("data module, not a dataset manager"), "{e}");
}

#[test]
fn manager_kinds_by_target() {
    for (file, kind) in [
        ("gsm8k_test_eval.yaml", ManagerKind::Eval),
        (
            "text_unconditional_prediction.yaml",
            ManagerKind::UnconditionalGeneration,
        ),
        ("lm1b_train.yaml", ManagerKind::Default),
        ("toy_text_train.yaml", ManagerKind::Local),
    ] {
        let c = DatasetManagerConfig::from_yaml(&fixture(file, &fixtures().join("data"))).unwrap();
        assert_eq!(
            ManagerKind::from_target(c.target.as_deref().unwrap()),
            Some(kind),
            "{file}"
        );
    }
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("a.jsonl");
    std::fs::write(&file, "{\"token_ids\": [7]}\n").unwrap();
    let mut v = local_jsonl(&file);
    v.as_object_mut().unwrap().remove("ds_type");
    let e = build(&v).unwrap_err();
    assert!(
        e.contains("ds_type") && e.contains("LocalDatasetManager"),
        "{e}"
    );
    let mut v = local_jsonl(&file);
    v["_target_"] = json!("xlm.datamodule.DatasetManager");
    let e = build(&v).unwrap_err();
    assert!(
        e.contains("need `_target_: xlm.datamodule.LocalDatasetManager`"),
        "{e}"
    );
    let mut v = local_jsonl(&file);
    v.as_object_mut().unwrap().remove("_target_");
    assert_eq!(
        build(&v).unwrap().kind(),
        ManagerKind::Local,
        "ds_type alone selects local files"
    );
}

#[test]
fn load_kwargs_data_files_and_the_top_level_spelling_mean_the_same() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("toy.jsonl");
    std::fs::write(&file, "{\"token_ids\": [7]}\n{\"token_ids\": [8, 9]}\n").unwrap();
    let nested = build(&local_jsonl(&file)).unwrap();
    assert_eq!(rows(&nested, &d.path().join("c1")), 2);
    let mut top = local_jsonl(&file);
    top.as_object_mut().unwrap().remove("load_kwargs");
    top["data_files"] = json!(file);
    assert_eq!(rows(&build(&top).unwrap(), &d.path().join("c2")), 2);
    // A map from split to files: the manager's split, in both spellings.
    let other = d.path().join("other.jsonl");
    std::fs::write(&other, "{\"token_ids\": [7]}\n").unwrap();
    let mut split = local_jsonl(&file);
    split["load_kwargs"]["data_files"] = json!({"train": other, "test": file});
    assert_eq!(rows(&build(&split).unwrap(), &d.path().join("c3")), 1);

    let mut both = local_jsonl(&file);
    both["data_files"] = json!(file);
    let e = build(&both).unwrap_err();
    assert!(e.contains("data_files") && e.contains("keep one"), "{e}");
    let mut extra = local_jsonl(&file);
    extra["load_kwargs"]["delimiter"] = json!(";");
    let e = build(&extra).unwrap_err();
    assert!(e.contains("`delimiter`"), "{e}");
}

#[test]
fn without_data_files_reads_parent_split_csv_at_any_depth() {
    let d = tempfile::tempdir().unwrap();
    let corpus = d.path().join("a/b/c/d/corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(corpus.join("train.csv"), "text\nthe cat\na dog\nthe mat\n").unwrap();
    std::fs::write(corpus.join("test.csv"), "text\nthe dog\n").unwrap();
    let cache = d.path().join("cache");
    for (split, n) in [("train", 3), ("test", 1)] {
        let v = json!({"_target_": "xlm.datamodule.LocalDatasetManager", "ds_type": "csv",
                       "load_kwargs": null, "full_name": corpus.join(split)});
        let dm = build(&v).unwrap();
        assert_eq!(dm.full_name().split, split);
        assert_eq!(rows(&dm, &cache), n);
        let dir = dm.cache_dir(&cache);
        assert!(
            dir.starts_with(&cache) && dir.ends_with(format!("corpus/{split}")),
            "{dir:?}"
        );
    }
    // `+` reads every split it names from its own file.
    let v = json!({"_target_": "xlm.datamodule.LocalDatasetManager", "ds_type": "csv",
                   "full_name": format!("{}[:2]+test", corpus.join("train").display())});
    assert_eq!(rows(&build(&v).unwrap(), &cache), 3);
    let v = json!({"_target_": "xlm.datamodule.LocalDatasetManager", "ds_type": "csv",
                   "full_name": corpus.join("validation")});
    let e = build(&v)
        .unwrap()
        .prepare_data(&PrepareArgs::new(&cache))
        .unwrap_err()
        .to_string();
    assert!(e.contains("validation.csv"), "{e}");
}

/// A BERT-like WordLevel tokenizer.json with BERT's post-processor.
fn bert_like(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let tok = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": null,
        "model": {"type": "WordLevel", "unk_token": "[UNK]",
                  "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4,
                            "hello": 5, "world": 6}}
    });
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    std::fs::write(
        dir.join("special_tokens_map.json"),
        json!({"pad_token": "[PAD]", "unk_token": {"content": "[UNK]"}, "cls_token": "[CLS]",
               "sep_token": "[SEP]", "mask_token": "[MASK]"})
        .to_string(),
    )
    .unwrap();
}

fn tokenizer(v: Json) -> Result<TokenizerConfig, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}

#[test]
fn tokenizer_forms() {
    // SimpleSpaceTokenizer from a `_target_`, and its for_numbers.
    let t = simple_tokenizer();
    assert_eq!(t.encode("the cat").unwrap(), [7, 8]);
    assert_eq!(t.specials().pad, Some(0));
    let n = tokenizer(
        json!({"_target_": "xlm.datamodule.SimpleSpaceTokenizer.for_numbers", "vocab_size": 20}),
    )
    .unwrap()
    .build()
    .unwrap();
    assert_eq!(n.encode("0 19").unwrap(), [7, 26]);
    assert_eq!(n.vocab_size(), 27);

    // `*.from_pretrained` over a local directory: xlm-core's BERT class adds
    // [BOS] and [EOS] at the end of the vocabulary.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("bert-tiny");
    bert_like(&dir);
    let cfg = tokenizer(
        json!({"_target_": "xlm.datamodule.BertTokenizerFast.from_pretrained",
                               "pretrained_model_name_or_path": dir}),
    )
    .unwrap();
    let bert = cfg.build().unwrap();
    let s = bert.specials();
    assert_eq!(
        (s.pad, s.unk, s.cls, s.sep, s.mask, s.bos, s.eos),
        (
            Some(0),
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(7),
            Some(8)
        )
    );
    assert_eq!(bert.build_inputs_with_special_tokens(&[5, 6]), [2, 5, 6, 3]);
    assert_eq!(
        bert.create_token_type_ids_from_sequences(&[5, 6]),
        [0, 0, 0, 0]
    );
    // Another library's class loads the files as they are.
    let plain = tokenizer(
        json!({"_target_": "transformers.AutoTokenizer.from_pretrained",
                                 "pretrained_model_name_or_path": dir}),
    )
    .unwrap()
    .build()
    .unwrap();
    assert_eq!((plain.specials().eos, plain.vocab_size()), (None, 7));
    // xlm-core's GPT2 class needs an eos (`<|endoftext|>`) and adds six tokens.
    let gpt = d.path().join("gpt-tiny");
    std::fs::create_dir_all(&gpt).unwrap();
    let tok = json!({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "unk_token": "hi",
        "vocab": {"hi": 0, "there": 1, "<|endoftext|>": 2}}});
    std::fs::write(gpt.join("tokenizer.json"), tok.to_string()).unwrap();
    let g = pretrained::load(
        "xlm.datamodule.GPT2TokenizerFast.from_pretrained",
        gpt.to_str().unwrap(),
    )
    .unwrap();
    let s = g.specials();
    assert_eq!(
        (s.eos, s.cls, s.bos, s.pad, s.unk, s.mask, s.sep),
        (
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            Some(7),
            Some(8)
        )
    );

    // A Hub name through the Hub cache (no network).
    let cache = d.path().join("hub");
    let snap = cache.join("models--org--bert-tiny/snapshots/abc123");
    bert_like(&snap);
    std::fs::create_dir_all(cache.join("models--org--bert-tiny/refs")).unwrap();
    std::fs::write(cache.join("models--org--bert-tiny/refs/main"), "abc123").unwrap();
    let h = pretrained::load_from(
        "xlm.datamodule.BertTokenizerFast.from_pretrained",
        "org/bert-tiny",
        &cache,
    )
    .unwrap();
    assert_eq!(h.specials().eos, Some(8));
    let e = pretrained::load_from("x.Tok.from_pretrained", "org/missing", &cache)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("org/missing")
            && e.contains("Hub cache")
            && e.contains("huggingface-cli download"),
        "{e}"
    );
    let empty = d.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = pretrained::load("x.Tok.from_pretrained", empty.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no tokenizer.json"), "{e}");

    // `${global_components:tokenizer}` refers to a top-level block.
    let r = tokenizer(json!(GLOBAL_TOKENIZER)).unwrap();
    assert_eq!(r, TokenizerConfig::GlobalComponent);
    assert!(r.build().is_err());
    let global: GlobalComponents = serde_yaml_ng::from_str(
        "tokenizer:\n  _target_: xlm.datamodule.SimpleSpaceTokenizer\n  vocab: [a, b]\nnoise_schedule: {_target_: x}\n",
    )
    .unwrap();
    let resolved = r.resolve(Some(&global)).unwrap();
    assert_eq!(
        resolved,
        TokenizerConfig::SimpleSpace {
            vocab: Some(vec!["a".into(), "b".into()])
        }
    );
    assert!(r
        .resolve(None)
        .unwrap_err()
        .to_string()
        .contains("global_components"));

    // Errors name what is wrong.
    for (v, needle) in [
        (
            json!({"_target_": "xlm.tasks.cfg.create_tokenizer_cfg_small"}),
            "not a tokenizer xlm can build",
        ),
        (
            json!({"_target_": "xlm.datamodule.SimpleSpaceTokenizer", "vocab": ["a"], "model_max_length": 8}),
            "`model_max_length`",
        ),
        (
            json!({"_target_": "xlm.datamodule.GPT2TokenizerFast.from_pretrained"}),
            "pretrained_model_name_or_path",
        ),
        (
            json!({"_target_": "xlm.datamodule.GPT2TokenizerFastWithCyclicPads.from_pretrained", "pretrained_model_name_or_path": "gpt2"}),
            "cyclic pad",
        ),
        (
            json!({"_target_": "xlm.datamodule.SimpleSpaceTokenizer.for_numbers", "vocab_size": "???"}),
            "vocab_size",
        ),
        (
            json!({"_target_": "a.B.from_pretrained", "pretrained_model_name_or_path": "${oc.env:TOK}"}),
            "must be resolved",
        ),
        (
            json!("${global_components:noise_schedule}"),
            "must be resolved",
        ),
    ] {
        let e = tokenizer(v.clone()).unwrap_err();
        assert!(e.contains(needle), "{v}: {e}");
    }
}

#[test]
fn hydra_leftovers_name_the_key_path() {
    let e = DatasetManagerConfig::from_yaml(&fixture("default_text.yaml", Path::new(".")))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("collator: `???`") && e.contains("must be resolved"),
        "{e}"
    );
    let edits: [(&str, Json, &str); 5] = [
        (
            "/dataloader_kwargs/batch_size",
            json!("${per_device_batch_size}"),
            "dataloader_kwargs.batch_size: `${per_device_batch_size}`",
        ),
        (
            "/full_name",
            json!("${oc.env:DATA_DIR,.}/sudoku/train"),
            "full_name: `${oc.env:DATA_DIR,.}/sudoku/train`",
        ),
        (
            "/columns_to_remove/0",
            json!("???"),
            "columns_to_remove[0]: `???`",
        ),
        (
            "/collator/block_size",
            json!("${block_size}"),
            "collator.block_size",
        ),
        (
            "/use_manual_cache",
            json!("${oc.select:use_manual_cache,false}"),
            "use_manual_cache",
        ),
    ];
    for (pointer, value, needle) in edits {
        let mut v = fixture_value("lm1b_train.yaml");
        if v.pointer(pointer).is_none() {
            v[&pointer[1..]] = Json::Null;
        }
        *v.pointer_mut(pointer).unwrap() = value;
        let e = parse(&v).unwrap_err();
        assert!(
            e.contains(needle) && e.contains("must be resolved"),
            "{pointer}: {e}"
        );
        // However the config is deserialised (e.g. inside a data module's config).
        let e = serde_json::from_value::<DatasetManagerConfig>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{pointer}: {e}");
    }
    let mut v = fixture_value("lm1b_train.yaml");
    v["defaults"] = json!(["default_text", "_self_"]);
    let e = parse(&v).unwrap_err();
    assert!(e.contains("defaults") && e.contains("compose"), "{e}");
    // The key path includes where the manager sits in a bigger config.
    let tree = json!({"datasets": {"train": {"lm1b": {"full_name": "${oc.env:D}/lm1b/train"}}}});
    let e = check_unresolved(&tree, "").unwrap_err();
    assert_eq!(e.path, "datasets.train.lm1b.full_name");
    // The global references are kept, as xlm-core prints them.
    check_unresolved(&fixture_value("lm1b_train.yaml"), "").unwrap();
}

#[test]
fn xlm_core_builtins_resolve_under_dotted_names() {
    let r = Registry::builtin();
    let none = Kwargs::new();
    let ctx = Ctx {
        tokenizer: Some(Arc::new(SimpleSpaceTokenizer::test_vocab())),
        block_size: Some(4),
    };
    let e = Example::new()
        .with("text", Value::Text("w0 w1 w2".into()))
        .with("token_ids", Value::List(vec![7, 8, 9]))
        .with("input_token_ids", Value::List(vec![1, 2, 3]))
        .with("prompt_token_ids", Value::List(vec![4]));
    for short in [
        "token_ids_to_input_ids",
        "token_ids_to_input_ids_and_prompt_ids",
        "ids_to_example_fn",
    ] {
        let dotted = format!("xlm.datamodule.{short}");
        for kind in ["preprocess", "processor"] {
            let (a, b) = if kind == "preprocess" {
                (
                    r.preprocess("k", short, &none).unwrap(),
                    r.preprocess("k", &dotted, &none).unwrap(),
                )
            } else {
                (
                    r.processor("k", short, &none).unwrap(),
                    r.processor("k", &dotted, &none).unwrap(),
                )
            };
            assert_eq!(
                a(&e, &ctx, &none).unwrap(),
                b(&e, &ctx, &none).unwrap(),
                "{dotted}"
            );
        }
    }
    let tokenized = r
        .preprocess("k", "xlm.datamodule.tokenizing_preprocess_fn", &none)
        .unwrap()(&e, &ctx, &none)
    .unwrap();
    assert_eq!(tokenized.list("token_ids").unwrap(), [7, 8, 9]);
    let out = r
        .processor("k", "xlm.datamodule.ids_to_example_fn", &none)
        .unwrap()(&e, &ctx, &none)
    .unwrap();
    assert_eq!(
        out.names().collect::<Vec<_>>(),
        ["input_ids", "attention_mask", "token_type_ids"]
    );
    // pack_sequences under its dotted name: xlm-core's defaults (use_bos, token_ids).
    let spec = r
        .group("k", "xlm.datamodule.pack_sequences", &none)
        .unwrap()(&none, &ctx)
    .unwrap();
    assert_eq!((spec.bos, spec.eos, spec.block_size), (Some(4), Some(3), 4));
    assert_eq!(spec.column.as_deref(), Some("token_ids"));
    let mut kw = Kwargs::new();
    kw.insert("use_bos".into(), false.into());
    assert_eq!(
        r.group("k", "xlm.datamodule.pack_sequences", &kw).unwrap()(&kw, &ctx)
            .unwrap()
            .bos,
        None
    );
    for name in [
        "DefaultCollator",
        "DefaultCollatorWithPadding",
        "DefaultCollatorWithDynamicPadding",
    ] {
        r.collator("k", name, &none).unwrap();
        r.collator("k", &format!("xlm.datamodule.{name}"), &none)
            .unwrap();
    }
    let mut kw = Kwargs::new();
    kw.insert("num_samples".into(), 3.into());
    for name in ["replicate_examples", "xlm.datamodule.replicate_examples"] {
        assert_eq!(
            r.replicator("k", name, &kw).unwrap().unwrap()(&kw).unwrap(),
            3
        );
    }
    let copies = xlm::registry::xlm_core::replicate_examples(std::slice::from_ref(&e), 2);
    assert_eq!(copies, [e.clone(), e]);
}

#[test]
fn ids_to_example_fn_uses_the_tokenizers_special_tokens() {
    let d = tempfile::tempdir().unwrap();
    bert_like(&d.path().join("bert"));
    let tok = pretrained::load(
        "xlm.datamodule.BertTokenizerFast.from_pretrained",
        d.path().join("bert").to_str().unwrap(),
    )
    .unwrap();
    let ctx = Ctx {
        tokenizer: Some(Arc::new(tok)),
        block_size: None,
    };
    let e = Example::new().with("token_ids", Value::List(vec![5, 6]));
    let none = Kwargs::new();
    let out = Registry::builtin()
        .processor("k", "xlm.datamodule.ids_to_example_fn", &none)
        .unwrap()(&e, &ctx, &none)
    .unwrap();
    assert_eq!(out.list("input_ids").unwrap(), [2, 5, 6, 3]);
    assert_eq!(out.list("attention_mask").unwrap(), [1, 1, 1, 1]);
    assert_eq!(out.list("token_type_ids").unwrap(), [0, 0, 0, 0]);
}

#[test]
fn packed_and_replicating_group_processors() {
    let dm = DatasetManager::new(
        DatasetManagerConfig::from_yaml(&fixture("owt_packed_train.yaml", Path::new("."))).unwrap(),
    )
    .unwrap();
    assert!(dm.config().make_infinite);
    assert_eq!(dm.full_name().split, "train");
    let mut v = fixture_value("owt_packed_train.yaml");
    v["on_the_fly_group_processor"] = json!("xlm.datamodule.replicate_examples");
    v["on_the_fly_group_processor_kwargs"] = json!({"num_samples": 4});
    // Replication is wired into setup (see manager_kinds.rs for its output).
    build(&v).unwrap();
    v["on_the_fly_group_processor_kwargs"] = json!({"num_samples": 0});
    let e = build(&v).unwrap_err();
    assert!(e.contains("num_samples") && e.contains("at least 1"), "{e}");
    v["on_the_fly_group_processor_kwargs"] = json!({"num_sample": 4});
    let e = build(&v).unwrap_err();
    assert!(e.contains("num_sample"), "{e}");
}

#[test]
fn end_to_end_toy_text_fixture_yields_xlm_core_columns() {
    let cfg =
        DatasetManagerConfig::from_yaml(&fixture("toy_text_train.yaml", &fixtures().join("data")))
            .unwrap();
    let mut dm = DatasetManager::new(cfg).unwrap();
    assert_eq!(dm.kind(), ManagerKind::Local);
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    // The tokenizer as a data module would get it: `${global_components:tokenizer}`.
    let global = GlobalComponents {
        tokenizer: Some(
            serde_yaml_ng::from_str(&fixture("tokenizer_simple_space.yaml", Path::new(".")))
                .unwrap(),
        ),
        ..GlobalComponents::default()
    };
    let tok = TokenizerConfig::GlobalComponent
        .resolve(Some(&global))
        .unwrap()
        .build()
        .unwrap();
    let prepared = dm
        .prepare_data(
            &PrepareArgs::new(&cache)
                .with_tokenizer(tok.clone())
                .with_load(true),
        )
        .unwrap()
        .unwrap();
    assert_eq!(prepared.len(), 5);
    let columns: Vec<String> = prepared.schema().into_iter().map(|s| s.name).collect();
    assert_eq!(columns, ["token_ids"], "text removed by columns_to_remove");
    assert!(dm
        .setup(Stage::Fit, &SetupArgs::single(&cache).with_tokenizer(tok))
        .unwrap());
    let loader = dm.dataloader(LoaderType::Train).unwrap();
    let mut seen = 0;
    for batch in loader.iter() {
        let batch = batch.unwrap();
        let names: Vec<&str> = batch.arrays.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["input_ids", "attention_mask", "token_type_ids"]);
        let [rows, width] = batch.get("input_ids").unwrap().shape;
        assert!(
            width <= 4,
            "dynamic padding is capped at the collator's block_size"
        );
        for (name, a) in &batch.arrays {
            assert_eq!(a.shape, [rows, width], "{name}");
        }
        let mask = &batch.get("attention_mask").unwrap().data;
        let types = &batch.get("token_type_ids").unwrap().data;
        for i in 0..rows * width {
            assert!(mask[i] == 1 && types[i] == 0 || mask[i] == 0 && types[i] == 2);
        }
        seen += rows;
    }
    assert_eq!(seen, 5, "one epoch, drop_last false");
}
