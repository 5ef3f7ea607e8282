//! `--cfg-options` on TOML configs as mmcv's `DictAction` reads them: value forms, nested
//! keys, list indices, `None` and the errors of bad options.

mod config_tree;

use config_tree::*;
use mona_core::config::ConfigError;
use serde::Deserialize;

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
