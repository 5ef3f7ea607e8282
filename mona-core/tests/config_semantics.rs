//! mmcv config semantics on TOML configs: `_base_` resolution, recursive merge, `_delete_` and
//! provenance. Every test writes its own files to a tempdir (`config_tree`); `--cfg-options`
//! are in `config_options.rs`, errors, extraction and the dump round trip in
//! `config_errors.rs`.

mod config_tree;

use std::path::Path;

use config_tree::*;
use mona_core::config::{Config, ConfigError, OPTIONS_SOURCE};

#[test]
fn nested_tables_merge_key_by_key() {
    let tree = mmlab_tree();
    let cfg = tree.load(TOP);
    // Overridden by the child.
    assert_eq!(string(&cfg, "model.backbone.type"), "SwinTransformer_mona");
    assert_eq!(int(&cfg, "model.backbone.embed_dim"), 128);
    // Kept from the base.
    assert_eq!(int(&cfg, "model.backbone.window_size"), 7);
    assert_eq!(string(&cfg, "model.type"), "CascadeRCNN");
    assert_eq!(string(&cfg, "model.neck.type"), "FPN");
    // Merged in from sibling bases.
    assert_eq!(int(&cfg, "data.samples_per_gpu"), 2);
    assert_eq!(string(&cfg, "log_level"), "INFO");
    assert_eq!(string(&cfg, "lr_config.policy"), "step");
    // `_base_` is gone.
    assert!(cfg.table().get("_base_").is_none());
    let keys: Vec<&str> = cfg.table().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "model",
            "data",
            "optimizer",
            "lr_config",
            "log_level",
            "load_from",
            "workflow"
        ]
    );
}

#[test]
fn lists_are_replaced_not_merged() {
    let tree = mmlab_tree();
    let cfg = tree.load(TOP);
    assert_eq!(
        cfg.get("model.backbone.depths").unwrap().value(),
        &toml_value("[2, 2, 18, 2]")
    );
    assert_eq!(
        cfg.get("lr_config.step").unwrap().value(),
        &toml_value("[27, 33]")
    );

    // A shorter list replaces a longer one entirely (no element-wise merge).
    tree.write(
        "short_pipeline.toml",
        r#"
_base_ = "_base_/datasets/coco.toml"
[data.train]
pipeline = [{ type = "LoadImageFromFile" }]
"#,
    );
    let cfg = tree.load("short_pipeline.toml");
    let items = cfg.node("data.train.pipeline").unwrap().items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].type_name().unwrap(), "LoadImageFromFile");
    assert_eq!(items[0].key(), "data.train.pipeline.0");
    assert_eq!(string(&cfg, "data.train.type"), "CocoDataset");
}

#[test]
fn delete_replaces_the_base_table() {
    let tree = mmlab_tree();
    let cfg = tree.load(TOP);
    let optimizer = cfg.node("optimizer").unwrap().value().as_table().unwrap();
    let keys: Vec<&str> = optimizer.keys().map(String::as_str).collect();
    assert_eq!(keys, ["type", "lr", "betas"]);
    assert_eq!(string(&cfg, "optimizer.type"), "AdamW");
    assert!(cfg.get("optimizer.momentum").is_none());
    assert!(cfg.get("optimizer._delete_").is_none());
    // Without `_delete_` the same child would merge.
    tree.write(
        "merge_optimizer.toml",
        r#"
_base_ = "_base_/schedules/schedule_1x.toml"
[optimizer]
type = "AdamW"
"#,
    );
    let cfg = tree.load("merge_optimizer.toml");
    assert_eq!(string(&cfg, "optimizer.type"), "AdamW");
    assert_eq!(
        cfg.get("optimizer.momentum").unwrap().value().as_float(),
        Some(0.9)
    );
}

#[test]
fn delete_allows_a_table_over_a_non_table_and_scalars_replace_tables() {
    let tree = Tree::new();
    tree.write("base.toml", "norm = \"BN\"\n[neck]\ntype = \"FPN\"\n");
    tree.write(
        "child.toml",
        r#"
_base_ = "base.toml"
neck = "none"
[norm]
_delete_ = true
type = "GN"
num_groups = 32
"#,
    );
    let cfg = tree.load("child.toml");
    assert_eq!(string(&cfg, "neck"), "none");
    assert_eq!(string(&cfg, "norm.type"), "GN");
    assert_eq!(int(&cfg, "norm.num_groups"), 32);
    assert!(cfg.get("norm._delete_").is_none());
}

#[test]
fn table_over_non_table_is_an_error_naming_file_and_key() {
    let tree = Tree::new();
    tree.write("base.toml", "[model]\nbackbone = \"resnet50\"\n");
    let child = tree.write(
        "child.toml",
        "_base_ = \"base.toml\"\n[model.backbone]\ntype = \"Swin\"\n",
    );
    let err = tree.error("child.toml");
    assert!(
        matches!(&err, ConfigError::DictOverNonDict { key, file } if key == "model.backbone" && *file == child),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&show(&child)), "{text}");
    assert!(text.contains("`model.backbone`"), "{text}");
    assert!(text.contains("_delete_"), "{text}");
}

#[test]
fn sibling_bases_may_not_share_a_top_level_key() {
    let tree = Tree::new();
    let a = tree.write("_base_/a.toml", "[model]\ntype = \"A\"\n");
    let b = tree.write("_base_/b.toml", "x = 1\n[model]\ndepth = 2\n");
    tree.write(
        "child.toml",
        "_base_ = [\"_base_/a.toml\", \"_base_/b.toml\"]\n",
    );
    let err = tree.error("child.toml");
    assert!(
        matches!(&err, ConfigError::DuplicateBaseKey { key, first, second }
            if key == "model" && *first == a && *second == b),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("`model`"), "{text}");
    assert!(
        text.contains(&show(&a)) && text.contains(&show(&b)),
        "{text}"
    );
}

#[test]
fn base_cycles_are_errors_showing_the_chain() {
    let tree = Tree::new();
    let a = tree.write("a.toml", "_base_ = \"sub/b.toml\"\nx = 1\n");
    let b = tree.write("sub/b.toml", "_base_ = [\"../a.toml\"]\ny = 2\n");
    let err = tree.error("a.toml");
    match &err {
        ConfigError::BaseCycle { chain } => assert_eq!(chain, &[a.clone(), b.clone(), a.clone()]),
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    let expected = format!("{} -> {} -> {}", show(&a), show(&b), show(&a));
    assert!(text.contains(&expected), "{text}");

    // A file that names itself.
    let own = tree.write("own.toml", "_base_ = \"./own.toml\"\n");
    let text = tree.error("own.toml").to_string();
    assert!(
        text.contains(&format!("{} -> {}", show(&own), show(&own))),
        "{text}"
    );
}

#[test]
fn diamond_inheritance_is_not_a_cycle_but_shares_keys() {
    // mmcv also rejects this: both bases bring in `model` from the same file.
    let tree = Tree::new();
    tree.write("common.toml", "[model]\ntype = \"M\"\n");
    tree.write("left.toml", "_base_ = \"common.toml\"\n");
    tree.write("right.toml", "_base_ = \"common.toml\"\n");
    tree.write("top.toml", "_base_ = [\"left.toml\", \"right.toml\"]\n");
    assert!(matches!(
        tree.error("top.toml"),
        ConfigError::DuplicateBaseKey { .. }
    ));
    // Through one path only it loads.
    tree.write(
        "single.toml",
        "_base_ = \"left.toml\"\n[model]\ndepth = 1\n",
    );
    let cfg = tree.load("single.toml");
    assert_eq!(string(&cfg, "model.type"), "M");
    assert_eq!(int(&cfg, "model.depth"), 1);
}

#[test]
fn relative_bases_resolve_from_the_declaring_folder() {
    let tree = Tree::new();
    tree.write("_base_/x.toml", "_base_ = \"inner/y.toml\"\nx = 1\n");
    tree.write("_base_/inner/y.toml", "y = 2\n[t]\nfrom = \"y\"\n");
    tree.write(
        "a/b/c.toml",
        "_base_ = [\"../../_base_/x.toml\"]\nc = 3\n[t]\nchild = true\n",
    );
    let cfg = tree.load("a/b/c.toml");
    assert_eq!(int(&cfg, "x"), 1);
    assert_eq!(int(&cfg, "y"), 2);
    assert_eq!(int(&cfg, "c"), 3);
    assert_eq!(string(&cfg, "t.from"), "y");
    assert_eq!(cfg.get("t.child").unwrap().value().as_bool(), Some(true));
    // Files are named without `..`.
    assert_eq!(
        cfg.node("y").unwrap().file(),
        tree.path("_base_/inner/y.toml")
    );
    assert_eq!(cfg.node("x").unwrap().file(), tree.path("_base_/x.toml"));
    assert_eq!(cfg.path(), tree.path("a/b/c.toml"));
}

#[test]
fn base_as_string_equals_base_as_list() {
    let tree = Tree::new();
    tree.write("base.toml", "[m]\na = 1\nb = 2\n");
    tree.write("as_string.toml", "_base_ = \"base.toml\"\n[m]\nb = 3\n");
    tree.write("as_list.toml", "_base_ = [\"base.toml\"]\n[m]\nb = 3\n");
    let s = tree.load("as_string.toml");
    let l = tree.load("as_list.toml");
    assert_eq!(s.table(), l.table());
    assert_eq!(int(&s, "m.a"), 1);
    assert_eq!(int(&s, "m.b"), 3);
}

#[test]
fn bad_base_values_are_errors() {
    let tree = Tree::new();
    let path = tree.write("bad.toml", "_base_ = 3\n");
    let err = tree.error("bad.toml");
    assert!(
        matches!(&err, ConfigError::BadBaseValue { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains(&show(&path)));
    tree.write("bad_item.toml", "_base_ = [\"a.toml\", 1]\n");
    let text = tree.error("bad_item.toml").to_string();
    assert!(text.contains("element 1 is an integer"), "{text}");
}

#[test]
fn from_str_at_resolves_bases_next_to_the_given_path() {
    let tree = mmlab_tree();
    let text = "_base_ = \"../../_base_/schedules/schedule_1x.toml\"\n[optimizer]\nlr = 0.5\n";
    let virtual_path = tree.path("mona/swin-b_coco/virtual.toml");
    let cfg = Config::from_str_at(text, &virtual_path).unwrap();
    assert_eq!(cfg.path(), virtual_path);
    assert_eq!(
        cfg.get("optimizer.lr").unwrap().value().as_float(),
        Some(0.5)
    );
    assert_eq!(string(&cfg, "optimizer.type"), "SGD");
    assert_eq!(cfg.node("optimizer.lr").unwrap().file(), virtual_path);
}

// ------------------------------------------------------------- provenance

#[test]
fn provenance_names_the_file_that_set_each_key() {
    let tree = mmlab_tree();
    let cfg = tree.load(TOP);
    let top = tree.path(TOP);
    let model_base = tree.path("_base_/models/cascade_swin.toml");
    let coco = tree.path("_base_/datasets/coco.toml");
    assert_eq!(
        cfg.node("model.backbone.window_size").unwrap().file(),
        model_base
    );
    assert_eq!(cfg.node("model.neck").unwrap().file(), model_base);
    assert_eq!(cfg.node("model.backbone.depths").unwrap().file(), top);
    assert_eq!(cfg.node("model.backbone.type").unwrap().file(), top);
    // A merged table keeps the file that first declared it.
    assert_eq!(cfg.node("model.backbone").unwrap().file(), model_base);
    // `_delete_` hands the whole table to the child.
    assert_eq!(cfg.node("optimizer").unwrap().file(), top);
    assert_eq!(
        cfg.node("data.train.pipeline.1.img_scale").unwrap().file(),
        coco
    );
    assert_eq!(cfg.root().file(), top);
    assert_eq!(cfg.root().key(), "");

    let node = cfg.node("data.train").unwrap();
    let pipeline = node.child("pipeline").unwrap();
    assert_eq!(pipeline.key(), "data.train.pipeline");
    assert_eq!(pipeline.get("1").unwrap().key(), "data.train.pipeline.1");
    assert_eq!(
        node.get("pipeline.2.flip_ratio")
            .unwrap()
            .value()
            .as_float(),
        Some(0.5)
    );
}

#[test]
fn provenance_of_overrides_is_the_options_pseudo_file() {
    let tree = mmlab_tree();
    let mut cfg = tree.load(TOP);
    cfg.apply_options(&[
        "data.train.pipeline.1.keep_ratio=False",
        "model.neck.extra.new=1",
    ])
    .unwrap();
    let options = Path::new(OPTIONS_SOURCE);
    assert_eq!(
        cfg.node("data.train.pipeline.1.keep_ratio").unwrap().file(),
        options
    );
    assert_eq!(cfg.node("model.neck.extra").unwrap().file(), options);
    assert_eq!(cfg.node("model.neck.extra.new").unwrap().file(), options);
    // Siblings keep their origin.
    let coco = tree.path("_base_/datasets/coco.toml");
    assert_eq!(
        cfg.node("data.train.pipeline.1.img_scale").unwrap().file(),
        coco
    );
    assert_eq!(
        cfg.node("model.neck.type").unwrap().file(),
        tree.path("_base_/models/cascade_swin.toml")
    );
}

// ----------------------------------------------------------- cfg-options
