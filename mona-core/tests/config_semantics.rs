//! mmcv config semantics on TOML configs: `_base_` resolution,
//! recursive merge, `_delete_`, `--cfg-options`, provenance, error messages
//! and the dump round trip. Every test writes its own files to a tempdir.

use std::path::{Path, PathBuf};

use mona_core::config::{Config, ConfigError, OPTIONS_SOURCE};
use serde::Deserialize;
use toml::Value;

/// A scratch folder of config files.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        Tree {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes `text` to `relative` and returns the full path.
    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, relative: &str) -> Config {
        let path = self.path(relative);
        Config::from_file(&path).unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
    }

    fn error(&self, relative: &str) -> ConfigError {
        match Config::from_file(self.path(relative)) {
            Ok(_) => panic!("{relative} loaded but should not"),
            Err(e) => e,
        }
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

fn int(cfg: &Config, key: &str) -> i64 {
    cfg.get(key)
        .unwrap_or_else(|| panic!("missing {key}"))
        .value()
        .as_integer()
        .unwrap_or_else(|| panic!("{key} is not an integer"))
}

fn string<'a>(cfg: &'a Config, key: &str) -> &'a str {
    cfg.get(key)
        .unwrap_or_else(|| panic!("missing {key}"))
        .value()
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string"))
}

fn toml_value(text: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {text}")).unwrap()["v"].clone()
}

/// The mmlab-style tree used by most tests.
fn mmlab_tree() -> Tree {
    let tree = Tree::new();
    tree.write(
        "_base_/models/cascade_swin.toml",
        r#"
[model]
type = "CascadeRCNN"
pretrained = "swin_base.pth"

[model.backbone]
type = "SwinTransformer"
embed_dim = 96
depths = [2, 2, 6, 2]
num_heads = [3, 6, 12, 24]
window_size = 7

[model.neck]
type = "FPN"
in_channels = [96, 192, 384, 768]
out_channels = 256
"#,
    );
    tree.write(
        "_base_/datasets/coco.toml",
        r#"
[data]
samples_per_gpu = 2
workers_per_gpu = 2

[data.train]
type = "CocoDataset"
ann_file = "annotations/instances_train2017.json"

[[data.train.pipeline]]
type = "LoadImageFromFile"

[[data.train.pipeline]]
type = "Resize"
img_scale = [1333, 800]
keep_ratio = true

[[data.train.pipeline]]
type = "RandomFlip"
flip_ratio = 0.5
"#,
    );
    tree.write(
        "_base_/schedules/schedule_1x.toml",
        r#"
[optimizer]
type = "SGD"
lr = 0.02
momentum = 0.9
weight_decay = 0.0001

[lr_config]
policy = "step"
step = [8, 11]
"#,
    );
    tree.write(
        "_base_/default_runtime.toml",
        r#"
log_level = "INFO"
load_from = "none"
workflow = [["train", 1]]
"#,
    );
    tree.write(
        "mona/swin-b_coco/cascade_mona.toml",
        r#"
_base_ = [
    "../../_base_/models/cascade_swin.toml",
    "../../_base_/datasets/coco.toml",
    "../../_base_/schedules/schedule_1x.toml",
    "../../_base_/default_runtime.toml",
]

[model.backbone]
type = "SwinTransformer_mona"
embed_dim = 128
depths = [2, 2, 18, 2]

[optimizer]
_delete_ = true
type = "AdamW"
lr = 0.0001
betas = [0.9, 0.999]

[lr_config]
step = [27, 33]
"#,
    );
    tree
}

const TOP: &str = "mona/swin-b_coco/cascade_mona.toml";

// ----------------------------------------------------------------- merging

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

#[test]
fn cfg_options_parse_every_value_form_like_mmcv() {
    let tree = Tree::new();
    tree.write("c.toml", "[o]\n");
    let mut cfg = tree.load("c.toml");
    cfg.apply_options(&[
        "o.int=3",
        "o.neg=-3",
        "o.float=0.5",
        "o.negfloat=-0.5",
        "o.exp=1e-4",
        "o.bool=true",
        "o.boolcaps=False",
        "o.string=SwinTransformer_mona",
        "o.single='quoted'",
        "o.double=\"dq\"",
        "o.quoted_int='5'",
        "o.list=[1,2,3]",
        "o.tuple=(1333, 800)",
        "o.nested=[(1,2),(3,4)]",
        "o.comma=1,2,3",
        "o.mixed=[a,1,2.5,true]",
        "o.empty=[]",
        "o.none_string=none",
    ])
    .unwrap();
    let expected = [
        ("int", "3"),
        ("neg", "-3"),
        ("float", "0.5"),
        ("negfloat", "-0.5"),
        ("exp", "1e-4"),
        ("bool", "true"),
        ("boolcaps", "false"),
        ("string", "\"SwinTransformer_mona\""),
        ("single", "\"quoted\""),
        ("double", "\"dq\""),
        ("quoted_int", "5"),
        ("list", "[1, 2, 3]"),
        ("tuple", "[1333, 800]"),
        ("nested", "[[1, 2], [3, 4]]"),
        ("comma", "[1, 2, 3]"),
        ("mixed", "[\"a\", 1, 2.5, true]"),
        ("empty", "[]"),
        ("none_string", "\"none\""),
    ];
    for (key, value) in expected {
        assert_eq!(
            cfg.get(&format!("o.{key}")).unwrap().value(),
            &toml_value(value),
            "o.{key}"
        );
    }
}

#[test]
fn cfg_options_create_nested_keys_and_replace_values() {
    let tree = mmlab_tree();
    let mut cfg = tree.load(TOP);
    cfg.apply_options(&[
        "model.backbone.mona.dim=64",
        "optimizer.lr=2e-4",
        "brand.new.key=x",
        // A scalar may replace a table (mmcv replaces).
        "model.neck=None_but_a_string",
        // A whole list is replaced.
        "lr_config.step=[10]",
    ])
    .unwrap();
    assert_eq!(int(&cfg, "model.backbone.mona.dim"), 64);
    assert_eq!(int(&cfg, "model.backbone.window_size"), 7);
    assert_eq!(
        cfg.get("optimizer.lr").unwrap().value().as_float(),
        Some(2e-4)
    );
    assert_eq!(string(&cfg, "brand.new.key"), "x");
    assert_eq!(string(&cfg, "model.neck"), "None_but_a_string");
    assert_eq!(
        cfg.get("lr_config.step").unwrap().value(),
        &toml_value("[10]")
    );
}

#[test]
fn cfg_options_index_into_lists() {
    let tree = mmlab_tree();
    let mut cfg = tree.load(TOP);
    cfg.apply_options(&[
        "data.train.pipeline.2.type=RandomFlipV2",
        "data.train.pipeline.1.img_scale=(800,600)",
        "workflow.0.1=2",
    ])
    .unwrap();
    let pipeline = cfg.node("data.train.pipeline").unwrap().items();
    let types: Vec<&str> = pipeline.iter().map(|n| n.type_name().unwrap()).collect();
    assert_eq!(types, ["LoadImageFromFile", "Resize", "RandomFlipV2"]);
    // Only the field changed: the rest of the element is intact.
    assert_eq!(
        pipeline[2].get("flip_ratio").unwrap().value().as_float(),
        Some(0.5)
    );
    assert_eq!(
        pipeline[1].get("img_scale").unwrap().value(),
        &toml_value("[800, 600]")
    );
    assert_eq!(
        pipeline[1].get("keep_ratio").unwrap().value().as_bool(),
        Some(true)
    );
    assert_eq!(
        cfg.get("workflow").unwrap().value(),
        &toml_value("[[\"train\", 2]]")
    );
}

#[test]
fn cfg_options_none_removes_the_key() {
    let tree = mmlab_tree();
    let mut cfg = tree.load(TOP);
    cfg.apply_options(&["model.pretrained=None", "not.there=None"])
        .unwrap();
    assert!(cfg.get("model.pretrained").is_none());
    assert!(cfg.get("not").is_none());
    #[derive(Deserialize)]
    struct Model {
        pretrained: Option<String>,
    }
    assert_eq!(cfg.extract::<Model>("model").unwrap().pretrained, None);
}

#[test]
fn cfg_options_bad_index_and_paths_through_scalars_are_errors() {
    let tree = mmlab_tree();
    let coco = tree.path("_base_/datasets/coco.toml");
    let mut cfg = tree.load(TOP);
    let before = cfg.table().clone();

    let err = cfg
        .apply_options(&["data.train.pipeline.7.type=X"])
        .unwrap_err();
    match &err {
        ConfigError::UnknownOverridePath { option, key, file } => {
            assert_eq!(option, "data.train.pipeline.7.type=X");
            assert_eq!(key, "data.train.pipeline.7");
            assert_eq!(file, &coco);
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("data.train.pipeline.7.type=X"), "{text}");
    assert!(text.contains("`data.train.pipeline.7`"), "{text}");
    assert!(text.contains(&show(&coco)), "{text}");

    let err = cfg
        .apply_options(&["model.backbone.depths.deep=1"])
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownOverridePath { key, file, .. }
            if key == "model.backbone.depths.deep" && *file == tree.path(TOP)),
        "{err:?}"
    );
    let err = cfg
        .apply_options(&["data.train.pipeline.first.type=X"])
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::UnknownOverridePath { .. }),
        "{err:?}"
    );
    let err = cfg.apply_options(&["data.train.pipeline.3=X"]).unwrap_err();
    assert!(
        matches!(err, ConfigError::UnknownOverridePath { .. }),
        "{err:?}"
    );

    // A failing batch changes nothing, even its valid items.
    let err = cfg
        .apply_options(&["optimizer.lr=1", "data.train.pipeline.9.type=X"])
        .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownOverridePath { .. }));
    assert_eq!(cfg.table(), &before);
}

#[test]
fn malformed_cfg_options_are_errors() {
    let tree = mmlab_tree();
    let mut cfg = tree.load(TOP);
    for (item, fragment) in [
        ("model.backbone.depths", "no `=`"),
        ("=3", "empty"),
        ("a..b=3", "empty segment"),
        ("a=[1,2", "imbalanced brackets"),
        ("a=[1,None]", "None"),
        ("data.train.pipeline.0=None", "None"),
    ] {
        let err = cfg.apply_options(&[item]).unwrap_err();
        match &err {
            ConfigError::BadOption { option, message } => {
                assert_eq!(option, item);
                assert!(message.contains(fragment), "{item}: {message}");
            }
            other => panic!("{item}: {other:?}"),
        }
        assert!(err.to_string().contains(item), "{err}");
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn missing_base_names_the_base_and_the_declaring_file() {
    let tree = Tree::new();
    let child = tree.write(
        "configs/a/child.toml",
        "_base_ = [\"../_base_/nope.toml\"]\n",
    );
    let err = tree.error("configs/a/child.toml");
    let missing = tree.path("configs/_base_/nope.toml");
    assert!(
        matches!(&err, ConfigError::MissingBase { declared_in, base } if *declared_in == child && *base == missing),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&show(&missing)) && text.contains(&show(&child)),
        "{text}"
    );
}

#[test]
fn missing_top_file_is_an_io_error() {
    let tree = Tree::new();
    let err = tree.error("nope.toml");
    assert!(matches!(&err, ConfigError::Io { path, .. } if *path == tree.path("nope.toml")));
    assert!(err.to_string().contains(&show(&tree.path("nope.toml"))));
}

#[test]
fn bad_toml_reports_file_line_and_column() {
    let tree = Tree::new();
    tree.write(
        "base.toml",
        "ok = 1\n\n[model]\ntype = \"X\"\ndepth = = 3\n",
    );
    let child = tree.write("child.toml", "_base_ = \"base.toml\"\n");
    let _ = child;
    let err = tree.error("child.toml");
    match &err {
        ConfigError::Parse {
            path, line, column, ..
        } => {
            assert_eq!(path, &tree.path("base.toml"));
            assert_eq!(*line, Some(5));
            assert_eq!(*column, Some(9));
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("{}:5:9", show(&tree.path("base.toml")))),
        "{text}"
    );
}

#[test]
fn extract_type_errors_name_the_full_key_and_the_file_that_set_it() {
    let tree = mmlab_tree();
    let base = tree.path("_base_/models/cascade_swin.toml");
    tree.write(
        "_base_/models/bad_depths.toml",
        "[model.backbone]\ntype = \"SwinTransformer\"\ndepths = \"2,2,6,2\"\nembed_dim = 96\n",
    );
    let bad = tree.path("_base_/models/bad_depths.toml");
    tree.write(
        "child.toml",
        "_base_ = \"_base_/models/bad_depths.toml\"\n[model.backbone]\ntype = \"SwinTransformer_mona\"\n",
    );
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Backbone {
        #[serde(rename = "type")]
        kind: String,
        embed_dim: u32,
        depths: Vec<u32>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Model {
        backbone: Backbone,
    }

    let cfg = tree.load("child.toml");
    for err in [
        cfg.extract::<Backbone>("model.backbone").unwrap_err(),
        cfg.extract::<Model>("model").unwrap_err(),
        cfg.node("model.backbone")
            .unwrap()
            .extract::<Backbone>()
            .unwrap_err(),
    ] {
        match &err {
            ConfigError::Extract { file, key, message } => {
                assert_eq!(key, "model.backbone.depths");
                assert_eq!(file, &bad);
                assert!(message.contains("found string \"2,2,6,2\""), "{message}");
                assert!(message.contains("expected a sequence"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("`model.backbone.depths`"), "{text}");
        assert!(text.contains(&show(&bad)), "{text}");
    }

    // Deeper: a list element.
    let cfg = tree.load(TOP);
    let err = cfg
        .extract::<Vec<String>>("model.backbone.depths")
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Extract { key, file, message }
            if key == "model.backbone.depths.0" && *file == tree.path(TOP) && message.contains("expected a string")),
        "{err:?}"
    );
    // Missing field: the key is the table, the file the one that declared it.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Neck {
        num_outs: u32,
    }
    let err = cfg.extract::<Neck>("model.neck").unwrap_err();
    assert!(
        matches!(&err, ConfigError::Extract { key, file, message }
            if key == "model.neck" && *file == base && message.contains("missing field `num_outs`")),
        "{err:?}"
    );
}

#[test]
fn extraction_succeeds_with_figment_conversions() {
    let tree = mmlab_tree();
    let cfg = tree.load(TOP);
    #[derive(Debug, Deserialize, PartialEq)]
    struct Backbone {
        #[serde(rename = "type")]
        kind: String,
        embed_dim: u32,
        depths: Vec<u32>,
        drop_path_rate: Option<f64>,
    }
    let backbone: Backbone = cfg.extract("model.backbone").unwrap();
    assert_eq!(
        backbone,
        Backbone {
            kind: "SwinTransformer_mona".into(),
            embed_dim: 128,
            depths: vec![2, 2, 18, 2],
            drop_path_rate: None,
        }
    );
    let node = cfg.node("model.backbone").unwrap();
    assert_eq!(node.extract_field::<u32>("window_size").unwrap(), Some(7));
    assert_eq!(node.extract_field::<u32>("absent").unwrap(), None);
    assert!(node.extract_field::<u32>("type").is_err());
    // Integers read as floats, as in Python.
    assert_eq!(cfg.extract::<f64>("data.samples_per_gpu").unwrap(), 2.0);
    let scale: (u32, u32) = cfg.extract("data.train.pipeline.1.img_scale").unwrap();
    assert_eq!(scale, (1333, 800));
    let whole: toml::Table = cfg.extract("").unwrap();
    assert_eq!(&whole, cfg.table());
}

#[test]
fn missing_keys_and_bad_types_name_file_and_key() {
    let tree = mmlab_tree();
    let cfg = tree.load(TOP);
    let model_base = tree.path("_base_/models/cascade_swin.toml");

    let err = cfg.node("model.neck.num_outs").unwrap_err();
    assert!(
        matches!(&err, ConfigError::MissingKey { key, file } if key == "model.neck.num_outs" && *file == model_base),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("`model.neck.num_outs`") && text.contains(&show(&model_base)),
        "{text}"
    );

    let err = cfg
        .node("model.neck")
        .unwrap()
        .child("num_outs")
        .unwrap_err();
    assert!(matches!(&err, ConfigError::MissingKey { key, .. } if key == "model.neck.num_outs"));

    let err = cfg.node("nothing.here").unwrap_err();
    assert!(matches!(&err, ConfigError::MissingKey { file, .. } if *file == tree.path(TOP)));

    // `type` missing, not a string, or on a non-table.
    let err = cfg.node("data").unwrap().type_name().unwrap_err();
    assert!(
        matches!(&err, ConfigError::MissingKey { key, .. } if key == "data.type"),
        "{err:?}"
    );
    let err = cfg
        .node("model.backbone.depths")
        .unwrap()
        .type_name()
        .unwrap_err();
    assert!(err.to_string().contains("`model.backbone.depths`"), "{err}");
    let mut cfg = cfg;
    cfg.apply_options(&["model.neck.type=5"]).unwrap();
    let err = cfg.node("model.neck").unwrap().type_name().unwrap_err();
    match &err {
        ConfigError::Invalid { file, key, message } => {
            assert_eq!(key, "model.neck.type");
            assert_eq!(file, Path::new(OPTIONS_SOURCE));
            assert!(
                message.contains("expected a string, found an integer"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        cfg.node("model.backbone").unwrap().type_name().unwrap(),
        "SwinTransformer_mona"
    );

    // Other crates construct `Invalid` errors with the same shape.
    // (The table `model.backbone` was first declared by the model base.)
    let node = cfg.node("model.backbone").unwrap();
    let text = node.invalid("unknown backbone type").to_string();
    assert_eq!(
        text,
        format!(
            "{}: `model.backbone`: unknown backbone type",
            show(&model_base)
        )
    );
    let text = ConfigError::invalid("x.toml", "a.b", "nope").to_string();
    assert_eq!(text, "x.toml: `a.b`: nope");
}

#[test]
fn non_boolean_delete_is_an_error() {
    let tree = Tree::new();
    tree.write("base.toml", "[a]\nx = 1\n");
    let child = tree.write(
        "child.toml",
        "_base_ = \"base.toml\"\n[a]\n_delete_ = \"yes\"\n",
    );
    let err = tree.error("child.toml");
    assert!(
        matches!(&err, ConfigError::Invalid { key, file, .. } if key == "a._delete_" && *file == child),
        "{err:?}"
    );
}

#[test]
fn keys_with_dots_are_reachable() {
    let tree = Tree::new();
    tree.write(
        "c.toml",
        "[optimizer.paramwise_cfg.custom_keys]\nbackbone = { lr_mult = 0.1 }\n\"backbone.norm\" = { decay_mult = 0.0 }\n",
    );
    let cfg = tree.load("c.toml");
    let keys = cfg.node("optimizer.paramwise_cfg.custom_keys").unwrap();
    let norm = keys.get("backbone.norm").unwrap();
    assert_eq!(
        norm.get("decay_mult").unwrap().value().as_float(),
        Some(0.0)
    );
    assert_eq!(
        cfg.get("optimizer.paramwise_cfg.custom_keys.backbone.norm.decay_mult")
            .unwrap()
            .value()
            .as_float(),
        Some(0.0)
    );
    assert_eq!(
        keys.get("backbone")
            .unwrap()
            .get("lr_mult")
            .unwrap()
            .value()
            .as_float(),
        Some(0.1)
    );
}

// ------------------------------------------------------------------- dump

#[test]
fn dump_round_trips_and_is_readable() {
    let tree = mmlab_tree();
    let mut cfg = tree.load(TOP);
    cfg.apply_options(&[
        "model.extra.\"odd key\"=1",
        "data.train.pipeline.0.note=a \"quoted\" word",
    ])
    .unwrap();
    let dumped = cfg.to_toml_string();
    let back = Config::from_str_at(&dumped, cfg.path()).unwrap();
    assert_eq!(back.table(), cfg.table(), "{dumped}");

    // Key order: first declared, bases first; scalars before sub-tables.
    let model = dumped.find("[model]\n").unwrap();
    let backbone = dumped.find("[model.backbone]\n").unwrap();
    let data = dumped.find("[data]\n").unwrap();
    let optimizer = dumped.find("[optimizer]\n").unwrap();
    let log_level = dumped.find("log_level = \"INFO\"").unwrap();
    assert!(
        log_level < model && model < backbone && backbone < data && data < optimizer,
        "{dumped}"
    );
    assert!(
        dumped.contains("[model]\ntype = \"CascadeRCNN\"\npretrained = \"swin_base.pth\"\n"),
        "{dumped}"
    );
    assert!(
        dumped.contains("[[data.train.pipeline]]\ntype = \"Resize\"\nimg_scale = [1333, 800]\n"),
        "{dumped}"
    );
    assert!(dumped.contains("workflow = [[\"train\", 1]]\n"), "{dumped}");
    assert!(
        dumped.contains("[optimizer]\ntype = \"AdamW\"\nlr = 0.0001\nbetas = [0.9, 0.999]\n"),
        "{dumped}"
    );
    assert!(
        !dumped.contains("_base_") && !dumped.contains("_delete_"),
        "{dumped}"
    );
}

#[test]
fn dump_of_a_dump_is_stable() {
    let tree = mmlab_tree();
    let cfg = tree.load(TOP);
    let once = cfg.to_toml_string();
    let twice = Config::from_str_at(&once, cfg.path())
        .unwrap()
        .to_toml_string();
    assert_eq!(once, twice);
}
