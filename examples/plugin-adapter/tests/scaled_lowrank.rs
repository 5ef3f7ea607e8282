//! The plugin method, built from a config through the registries exactly as the tools build
//! it: shapes, trainable keys and counts, identity at initialisation, and gradients.

use std::collections::{BTreeSet, HashMap};

use burn::tensor::{Device, Tensor, TensorData};
use mona_core::backbone::{Backbone, build_backbone};
use mona_core::config::Config;
use mona_core::params::{count, load_params, param_data, param_grads, param_infos, set_trainable};
use mona_plugin_adapter::scaled_lowrank_params;

/// A tiny Swin (embed 16; 2,2,2,2; heads 1,2,4,8; window 7) with the given method table.
fn config(method: &str) -> Config {
    let text = format!(
        r#"
[model.backbone]
type = "SwinTransformer"
embed_dim = 16
depths = [2, 2, 2, 2]
num_heads = [1, 2, 4, 8]
window_size = 7
out_indices = [0, 1, 2, 3]
drop_path_rate = 0.0

[model.backbone.method]
{method}
"#
    );
    Config::from_str_at(&text, "x.toml").expect("config parses")
}

fn build(method: &str, device: &Device) -> Backbone {
    mona_plugin_adapter::link();
    let cfg = config(method);
    build_backbone(&cfg.get("model.backbone").expect("backbone node"), device).expect("builds")
}

const PLUGIN: &str = "type = \"scaled_lowrank\"\nrank = 4\nscale = 0.5";

fn input(device: &Device) -> Tensor<4> {
    let values: Vec<f32> = (0..3 * 64 * 64)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(values, [1, 3, 64, 64]), device)
}

#[test]
fn forward_shapes() {
    let device = Device::flex();
    let backbone = build(PLUGIN, &device);
    assert_eq!(backbone.method().name(), "scaled_lowrank");
    let outs = backbone.forward(input(&device), false);
    let shapes: Vec<[usize; 4]> = outs.iter().map(|t| t.dims()).collect();
    assert_eq!(
        shapes,
        vec![
            [1, 16, 16, 16],
            [1, 32, 8, 8],
            [1, 64, 4, 4],
            [1, 128, 2, 2]
        ]
    );
}

#[test]
fn trains_exactly_its_own_keys() {
    let backbone = build(PLUGIN, &Device::flex());
    let infos = param_infos(&backbone);
    let trainable: BTreeSet<&str> = infos
        .iter()
        .map(|p| p.key.as_str())
        .filter(|k| backbone.trainable(k))
        .collect();
    let added: BTreeSet<&str> = infos
        .iter()
        .map(|p| p.key.as_str())
        .filter(|k| k.contains(".my_module_"))
        .collect();
    assert_eq!(trainable, added);
    // 8 blocks × one adapter × (norm w/b, down w/b, up w/b, scale) = 56 tensors.
    assert_eq!(trainable.len(), 8 * 7);
    assert!(trainable.iter().all(|k| k.contains(".my_module_1.")));
    assert!(trainable.contains("layers.3.blocks.1.my_module_1.up.weight"));
    assert!(trainable.contains("layers.0.blocks.0.my_module_1.scale"));

    // Per block (2r + 4)·C + r with r = 4, two blocks per stage of C = 16, 32, 64, 128:
    // 2·12·(16 + 32 + 64 + 128) + 8·4 = 5,760 + 32 = 5,792.
    let expected = 5_792;
    let stages: usize = [16, 32, 64, 128]
        .iter()
        .map(|c| 2 * scaled_lowrank_params(*c, 4))
        .sum();
    assert_eq!(stages, expected);
    let counted = count(&backbone, &|k| backbone.trainable(k));
    assert_eq!(counted.trainable, expected);

    // The rest is the plain backbone: the same total as `full` minus nothing.
    let full = build("type = \"full\"", &Device::flex());
    assert_eq!(counted.total, count(&full, &|_| true).total + expected);
}

#[test]
fn starts_as_the_pretrained_backbone() {
    // `up` is zero at initialisation, so with the same backbone weights the plugin model and
    // the plain model give the same features.
    let device = Device::flex();
    let plugin = build(PLUGIN, &device);
    let full = build("type = \"full\"", &device);
    let shared: HashMap<String, TensorData> = param_data(&full, &|_| true).into_iter().collect();
    let (plugin, outcome) = load_params(plugin, &shared);
    assert!(outcome.mismatched.is_empty());
    assert!(outcome.missing.iter().all(|k| k.contains("my_module")));
    let a = plugin.forward(input(&device), false);
    let b = full.forward(input(&device), false);
    for (x, y) in a.into_iter().zip(b) {
        let diff: f32 = (x - y).abs().max().into_scalar();
        assert!(
            diff < 1e-5,
            "plugin model differs from the plain one by {diff}"
        );
    }
}

#[test]
fn gradients_reach_only_the_adapter() {
    let device = Device::flex().autodiff();
    let backbone = build(PLUGIN, &device);
    let rule = |k: &str| k.contains("my_module");
    let backbone = set_trainable(backbone, &rule);
    let loss = backbone
        .forward(input(&device), false)
        .into_iter()
        .map(|t| t.sum())
        .reduce(|a, b| a + b)
        .expect("outputs");
    let grads = param_grads(&backbone, &loss.backward());
    assert!(!grads.is_empty());
    assert!(
        grads.keys().all(|k| rule(k)),
        "a frozen parameter got a gradient"
    );
    // `up` and the scale get gradients at once (down's is zero while up is zero).
    assert!(grads.contains_key("layers.0.blocks.0.my_module_1.up.weight"));
    assert!(grads.contains_key("layers.3.blocks.1.my_module_1.scale"));
}

#[test]
fn bad_values_name_file_and_key() {
    let cfg = config("type = \"scaled_lowrank\"\nrank = 0");
    let err = build_backbone(&cfg.get("model.backbone").unwrap(), &Device::flex())
        .expect_err("rank 0 is rejected")
        .to_string();
    assert!(err.contains("x.toml"), "{err}");
    assert!(err.contains("model.backbone.method.rank"), "{err}");

    let cfg = config("type = \"scaled_lowrank\"\nrnak = 4");
    let err = build_backbone(&cfg.get("model.backbone").unwrap(), &Device::flex())
        .expect_err("unknown keys are rejected")
        .to_string();
    assert!(err.contains("rnak"), "{err}");
}

#[test]
fn position_after_attn_is_accepted() {
    let device = Device::flex();
    let backbone = build(
        "type = \"scaled_lowrank\"\nrank = 2\nposition = \"after_attn\"",
        &device,
    );
    assert_eq!(backbone.forward(input(&device), false).len(), 4);
}
