//! Adapter-only files (save the trainable parameters, load them over the same pretrained
//! backbone) and LoRA merging.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use burn::tensor::TensorData;
use common::{fixture, fixture_json, outputs, pseudo_random, tensor, tiny};
use mona_core::checkpoint::adapter_file::{self, load_adapter, save_adapter};
use mona_core::checkpoint::{
    CheckpointError, KeyReport, LoadOptions, StateDict, load_state_dict, write_safetensors,
};
use mona_core::params::{load_params, param_data};
use mona_core::swin::SwinTransformer;
use mona_fixtures::{FORWARD_TOL, rel_err};

const CONFIG_TOML: &str = "[model.backbone.method]\ntype = \"mona\"\n";

/// The tiny mona backbone with the pretrained (mmdet fixture) weights.
fn pretrained_mona() -> SwinTransformer {
    let sd = StateDict::read(fixture("swin_mona_tiny.mmdet.pth")).expect("fixture");
    let (model, report) = load_state_dict(tiny("mona"), &sd, &LoadOptions::default())
        .map_err(|e| e.to_string())
        .expect("loads");
    assert!(report.missing.is_empty(), "{report}");
    model
}

/// The fixture's input image batch `(2, 3, 100, 120)`.
fn input() -> burn::tensor::Tensor<4> {
    let sd = StateDict::read(fixture("swin_mona_tiny.safetensors")).expect("fixture");
    tensor::<4>(&sd.tensors["input"])
}

/// Replaces every trainable parameter by deterministic noise (a "fine-tuned" adapter).
fn perturb_trainable(model: SwinTransformer) -> SwinTransformer {
    let current = param_data(&model, &|k| model.trainable(k));
    let noise: HashMap<String, TensorData> = current
        .iter()
        .enumerate()
        .map(|(i, (k, d))| {
            let n = d.shape().iter().product();
            (
                k.clone(),
                TensorData::new(pseudo_random(n, i as u64 + 1, 0.05), d.shape().to_vec()),
            )
        })
        .collect();
    let (model, outcome) = load_params(model, &noise);
    assert_eq!(outcome.applied.len(), current.len());
    model
}

fn adapter_err(result: Result<(SwinTransformer, KeyReport), CheckpointError>) -> String {
    match result {
        Ok((_, report)) => panic!("adapter loaded although it must fail: {report}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mona_adapter_file_round_trip_restores_the_tuned_model_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tuned.adapter.safetensors");
    let x = input();

    let tuned = perturb_trainable(pretrained_mona());
    let written = save_adapter(
        &tuned,
        &|k| tuned.trainable(k),
        &path,
        "mona",
        CONFIG_TOML,
        &[],
    )
    .expect("saves");
    // 8 blocks × 2 Mona modules × 16 tensors.
    assert_eq!(written, 256);
    // The atomic write leaves no temporary file behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tuned.adapter.safetensors"]);

    // Exactly the trainable keys, with the fixture's trainable element count.
    let file = StateDict::read(&path).expect("reads back");
    let trainable: BTreeSet<String> = param_data(&tuned, &|k| tuned.trainable(k))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        file.tensors.keys().cloned().collect::<BTreeSet<_>>(),
        trainable
    );
    assert!(file.tensors.keys().all(|k| k.contains("my_module")));
    let elements: usize = file
        .tensors
        .values()
        .map(|t| t.shape().iter().product::<usize>())
        .sum();
    let expected = fixture_json("swin_mona_tiny")["params_trainable"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!((elements, expected), (347_168, 347_168));
    assert_eq!(file.metadata[adapter_file::FORMAT_KEY], "mona-adapter/1");
    assert_eq!(file.metadata[adapter_file::METHOD_KEY], "mona");
    assert_eq!(file.metadata[adapter_file::CONFIG_KEY], CONFIG_TOML);

    // A fresh model with the pretrained weights differs until the adapter is loaded...
    let tuned_out = outputs(&tuned, &x);
    let fresh = pretrained_mona();
    assert!(rel_err(&outputs(&fresh, &x)[0], &tuned_out[0]) > 1e-3);
    let (restored, report) = load_adapter(fresh, &path, "mona")
        .map_err(|e| e.to_string())
        .expect("loads");
    assert_eq!(report.applied.len(), 256);
    assert_eq!(report.missing.len(), 381 - 256);
    assert!(report.unused.is_empty());
    // ...and then gives the tuned model's outputs bit for bit.
    let restored_out = outputs(&restored, &x);
    for (i, (a, b)) in restored_out.iter().zip(&tuned_out).enumerate() {
        assert_eq!(rel_err(a, b), 0.0, "output.{i}");
        assert_eq!(a, b, "output.{i}");
    }
}

#[test]
fn adapter_of_another_method_or_a_plain_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mona.safetensors");
    let tuned = pretrained_mona();
    save_adapter(
        &tuned,
        &|k| tuned.trainable(k),
        &path,
        "mona",
        CONFIG_TOML,
        &[],
    )
    .expect("saves");

    let text = adapter_err(load_adapter(tiny("lora"), &path, "lora"));
    assert_eq!(
        text,
        format!(
            "{}: adapter of method `mona` cannot be loaded into a `lora` model",
            path.display()
        )
    );

    let plain = fixture("swin_mona_tiny.safetensors");
    let text = adapter_err(load_adapter(tiny("mona"), &plain, "mona"));
    assert_eq!(
        text,
        format!(
            "{}: not an adapter file (metadata `format` is not `mona-adapter/1`)",
            plain.display()
        )
    );

    // An adapter file whose tensors do not all land on the model.
    let stray = dir.path().join("stray.safetensors");
    write_adapter_by_hand(
        &stray,
        &[("layers.9.blocks.0.my_module_1.gamma", vec![24])],
        Some("mona"),
    );
    let text = adapter_err(load_adapter(tiny("mona"), &stray, "mona"));
    assert!(
        text.ends_with(
            "1 tensor(s) match no parameter of the model: layers.9.blocks.0.my_module_1.gamma"
        ),
        "{text}"
    );

    // No method in the metadata.
    let anonymous = dir.path().join("anonymous.safetensors");
    write_adapter_by_hand(
        &anonymous,
        &[("layers.0.blocks.0.my_module_1.gamma", vec![24])],
        None,
    );
    let text = adapter_err(load_adapter(tiny("mona"), &anonymous, "mona"));
    assert!(text.ends_with("metadata `method` is missing"), "{text}");

    // The adapter of another width: a shape mismatch naming the key.
    let mut wide = common::fixture_config("swin_mona_tiny");
    wide.embed_dim = Some(32);
    let text = adapter_err(load_adapter(common::backbone(&wide, "mona"), &path, "mona"));
    assert!(
        text.contains(
            "layers.0.blocks.0.my_module_1.gamma: shape mismatch: the model expects [32], the checkpoint has [24]"
        ),
        "{text}"
    );
}

/// An adapter-format file with zero tensors of the given shapes.
fn write_adapter_by_hand(path: &Path, tensors: &[(&str, Vec<usize>)], method: Option<&str>) {
    let tensors: Vec<(String, TensorData)> = tensors
        .iter()
        .map(|(k, s)| {
            (
                k.to_string(),
                TensorData::new(vec![0f32; s.iter().product()], s.clone()),
            )
        })
        .collect();
    let mut metadata = HashMap::from([(
        adapter_file::FORMAT_KEY.to_string(),
        adapter_file::FORMAT.to_string(),
    )]);
    if let Some(m) = method {
        metadata.insert(adapter_file::METHOD_KEY.to_string(), m.to_string());
    }
    write_safetensors(path, &tensors, metadata).expect("writes");
}

/// The tiny LoRA backbone (embed 16) with the `swin_lora_tiny` fixture parameters.
fn lora_model() -> (SwinTransformer, StateDict) {
    let sd = StateDict::read(fixture("swin_lora_tiny.safetensors")).expect("fixture");
    let model = common::backbone(&common::fixture_config("swin_lora_tiny"), "lora");
    let (model, report) = load_state_dict(
        model,
        &sd,
        &LoadOptions {
            strip_prefix: Some("param.".into()),
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())
    .expect("loads");
    assert!(report.missing.is_empty(), "{report}");
    assert!(report.unused.iter().all(|k| !k.starts_with("param.")));
    (model, sd)
}

fn qkv_weights(model: &SwinTransformer) -> Vec<(String, Vec<f32>)> {
    param_data(model, &|k| k.ends_with("attn.qkv.weight"))
        .into_iter()
        .map(|(k, d)| (k, d.try_into_vec::<f32>().unwrap()))
        .collect()
}

#[test]
fn lora_merge_keeps_outputs_and_unmerge_restores_weights() {
    let (model, sd) = lora_model();
    let x = tensor::<4>(&sd.tensors["input"]);
    // The fixture's lora_B is not zero, so merging really changes the weights.
    let b = sd.tensors["param.layers.0.blocks.0.attn.qkv.lora_B"].clone();
    assert!(b.iter::<f32>().any(|v| v != 0.0));

    let unmerged_out = outputs(&model, &x);
    for (i, out) in unmerged_out.iter().enumerate() {
        let err = rel_err(out, &sd.tensors[&format!("output.{i}")]);
        assert!(err <= FORWARD_TOL, "output.{i}: {err:.3e}");
    }
    let original = qkv_weights(&model);
    assert_eq!(original.len(), 8);

    let merged = model.merge_lora();
    assert!(merged.layers[0].blocks[0].attn.qkv.is_merged());
    for (i, (a, b)) in outputs(&merged, &x).iter().zip(&unmerged_out).enumerate() {
        let err = rel_err(a, b);
        assert!(err <= 1e-5, "merged output.{i}: rel err {err:.3e}");
    }

    // Block 0 (C = 16, r = 64, scaling 1/64): W' = W + [B_q·A_q; 0; B_v·A_v] / 64.
    let merged_w = qkv_weights(&merged);
    let (c, r) = (16usize, 64usize);
    let a: Vec<f32> = sd.tensors["param.layers.0.blocks.0.attn.qkv.lora_A"]
        .clone()
        .try_into_vec()
        .unwrap();
    let b: Vec<f32> = b.try_into_vec().unwrap();
    let (w0, w1) = (&original[0].1, &merged_w[0].1);
    let mut max_diff = 0f64;
    for row in 0..3 * c {
        for col in 0..c {
            let delta = match row / c {
                1 => 0.0,
                part => {
                    let (a_off, b_row) = if part == 0 { (0, row) } else { (r, row - c) };
                    (0..r)
                        .map(|j| b[b_row * r + j] as f64 * a[(a_off + j) * c + col] as f64)
                        .sum::<f64>()
                        / 64.0
                }
            };
            let got = w1[row * c + col] as f64 - w0[row * c + col] as f64;
            max_diff = max_diff.max((got - delta).abs());
        }
    }
    assert!(max_diff < 1e-6, "merged delta off by {max_diff:.3e}");
    // The k third has no LoRA: bit-identical after the merge.
    assert_eq!(w1[c * c..2 * c * c], w0[c * c..2 * c * c]);
    assert_ne!(w1[..c * c], w0[..c * c]);

    // Merging twice is a no-op; unmerging gives the pretrained weights back.
    let merged = merged.merge_lora();
    assert_eq!(qkv_weights(&merged), merged_w);
    let restored = merged.unmerge_lora();
    assert!(!restored.layers[0].blocks[0].attn.qkv.is_merged());
    for ((key, w), (_, w0)) in qkv_weights(&restored).iter().zip(&original) {
        let err = rel_err(
            &TensorData::new(w.clone(), [w.len()]),
            &TensorData::new(w0.clone(), [w0.len()]),
        );
        assert!(err <= 1e-6, "{key}: rel err {err:.3e} after unmerge");
    }
    for (i, (a, b)) in outputs(&restored, &x).iter().zip(&unmerged_out).enumerate() {
        let err = rel_err(a, b);
        assert!(err <= 1e-5, "unmerged output.{i}: rel err {err:.3e}");
    }
}

#[test]
fn lora_adapter_file_holds_only_the_low_rank_factors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lora.safetensors");
    let (model, sd) = lora_model();
    let written =
        save_adapter(&model, &|k| model.trainable(k), &path, "lora", "", &[]).expect("saves");
    assert_eq!(written, 16);
    let file = StateDict::read(&path).unwrap();
    assert!(
        file.tensors
            .keys()
            .all(|k| k.ends_with("attn.qkv.lora_A") || k.ends_with("attn.qkv.lora_B"))
    );
    let elements: usize = file
        .tensors
        .values()
        .map(|t| t.shape().iter().product::<usize>())
        .sum();
    assert_eq!(elements, 122_880);
    assert_eq!(
        fixture_json("swin_lora_tiny")["params_trainable"].as_u64(),
        Some(122_880)
    );

    // Over a backbone with only the frozen weights, the file restores the fixture outputs.
    let frozen = common::backbone(&common::fixture_config("swin_lora_tiny"), "lora");
    let (frozen, _) = load_state_dict(
        frozen,
        &StateDict {
            path: "frozen".into(),
            tensors: sd
                .with_prefix_stripped("param.")
                .into_iter()
                .filter(|(k, _)| !k.contains("lora_"))
                .collect(),
            ..Default::default()
        },
        &LoadOptions::default(),
    )
    .map_err(|e| e.to_string())
    .expect("loads");
    let (restored, _) = load_adapter(frozen, &path, "lora")
        .map_err(|e| e.to_string())
        .expect("loads");
    let x = tensor::<4>(&sd.tensors["input"]);
    let expected = outputs(&model, &x);
    for (i, (out, want)) in outputs(&restored, &x).iter().zip(&expected).enumerate() {
        assert_eq!(out, want, "output.{i}");
    }
}
