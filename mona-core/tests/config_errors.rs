//! Config errors (missing bases and files, bad TOML, extraction with the full key and the file
//! that set it), keys with dots, and the dump round trip.

mod config_tree;

use std::path::Path;

use config_tree::*;
use mona_core::config::{Config, ConfigError, OPTIONS_SOURCE};
use serde::Deserialize;

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
