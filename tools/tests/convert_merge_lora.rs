//! `convert-checkpoint --merge-lora`: a LoRA run of the classification demo, merged, loads as
//! the same classifier with method `full` and gives the LoRA model's outputs to 1e-5; an
//! adapter file merged on top of its pretrained weights gives the same file; a config of
//! another method, a file without LoRA and an adapter file without pretrained weights are
//! errors naming the file.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::{demo_split, run};
use mona_cls::model::ImageClassifier;
use mona_core::checkpoint::{StateDict, load_pretrained, write_safetensors};

const DEMO: &str = "configs/demo/fashion_mnist_swin_mona.toml";
const LORA: [&str; 2] = [
    "model.backbone.method=None",
    "model.backbone.method.type=lora",
];
const FULL: [&str; 2] = [
    "model.backbone.method=None",
    "model.backbone.method.type=full",
];

fn demo() -> String {
    common::workspace().join(DEMO).display().to_string()
}

/// One epoch of the demo with LoRA on 64 images: `epoch_1.safetensors` and
/// `adapter_final.safetensors` in the returned work dir. Two AdamW steps move `lora_B` off
/// its zero initialisation, so merging really changes the weights.
fn train_lora(dir: &Path) -> PathBuf {
    let work = dir.join("work");
    let train = format!("data.train.ann_file={}", demo_split(dir, "train", 64));
    let val = format!("data.val.ann_file={}", demo_split(dir, "val", 16));
    let demo = demo();
    let mut args = vec![
        demo.as_str(),
        "--work-dir",
        work.to_str().unwrap(),
        "--cfg-options",
        &train,
        &val,
        "runner.max_epochs=1",
        "checkpoint_config.interval=1",
    ];
    args.extend(LORA);
    run(env!("CARGO_BIN_EXE_train"), &args).ok();
    work
}

fn merge(input: &Path, output: &Path, extra: &[&str]) -> common::Run {
    let demo = demo();
    let mut args = vec![
        input.to_str().unwrap(),
        output.to_str().unwrap(),
        "--config",
        demo.as_str(),
        "--merge-lora",
    ];
    args.extend_from_slice(extra);
    run(env!("CARGO_BIN_EXE_convert-checkpoint"), &args)
}

/// The demo classifier with `options`, loaded from `checkpoint` (every parameter present).
fn classifier(options: &[&str], checkpoint: &Path) -> ImageClassifier {
    let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
    let cfg = mona_tools::config_args::load_config(Path::new(&demo()), &options).unwrap();
    let model = ImageClassifier::from_config(&cfg.node("model").unwrap(), &Device::flex())
        .expect("build the demo classifier");
    let (model, report) = load_pretrained(model, checkpoint).expect("load");
    assert!(
        report.missing.is_empty(),
        "{}: {report}",
        checkpoint.display()
    );
    model
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

fn floats(sd: &StateDict, key: &str) -> Vec<f32> {
    sd.tensors[key]
        .clone()
        .convert::<f32>()
        .try_into_vec()
        .unwrap()
}

#[test]
fn the_merged_checkpoint_is_a_plain_swin_with_the_lora_models_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let work = train_lora(dir.path());
    let ckpt = work.join("epoch_1.safetensors");
    let merged = dir.path().join("merged.safetensors");
    let out = merge(&ckpt, &merged, &["--cfg-options", LORA[0], LORA[1]]).ok();
    assert!(
        out.stdout
            .contains("merged the LoRA updates into 6 attn.qkv weights"),
        "{}",
        out.stdout
    );

    // Every key of the LoRA model but lora_A / lora_B, and the q and v thirds changed.
    let before = StateDict::read(&ckpt).unwrap();
    let after = StateDict::read(&merged).unwrap();
    let plain: Vec<&String> = before
        .tensors
        .keys()
        .filter(|k| !k.contains(".lora_"))
        .collect();
    assert_eq!(after.tensors.keys().collect::<Vec<_>>(), plain);
    assert!(before.tensors.keys().any(|k| k.ends_with("lora_B")));
    let key = "backbone.layers.0.blocks.0.attn.qkv.weight";
    let (w0, w1) = (floats(&before, key), floats(&after, key));
    let third = w0.len() / 3;
    let changed =
        |range: std::ops::Range<usize>| range.map(|i| (w1[i] - w0[i]).abs()).fold(0f32, f32::max);
    assert!(changed(0..third) > 1e-6, "q third unchanged");
    assert_eq!(changed(third..2 * third), 0.0, "k has no LoRA");
    assert!(changed(2 * third..3 * third) > 1e-6, "v third unchanged");
    assert_eq!(
        floats(&before, "head.fc.weight"),
        floats(&after, "head.fc.weight")
    );

    // The plain classifier on the merged weights computes the LoRA classifier's logits.
    let lora = classifier(&LORA, &ckpt);
    let full = classifier(&FULL, &merged);
    let x = Tensor::<4>::random(
        [4, 3, 32, 32],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    );
    let (a, b) = (
        values(lora.forward(x.clone(), false)),
        values(full.forward(x, false)),
    );
    let scale = a.iter().map(|v| v.abs()).fold(0f32, f32::max);
    let err = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max)
        / scale;
    assert!(err <= 1e-5, "merged logits differ by {err:.3e} (relative)");

    // The adapter file on top of its pretrained weights merges to the same file.
    let from_adapter = dir.path().join("from_adapter.safetensors");
    let out = merge(
        &work.join("adapter_final.safetensors"),
        &from_adapter,
        &[
            "--load-from",
            ckpt.to_str().unwrap(),
            "--cfg-options",
            LORA[0],
            LORA[1],
        ],
    )
    .ok();
    assert!(out.stdout.contains("pretrained backbone"), "{}", out.stdout);
    let again = StateDict::read(&from_adapter).unwrap();
    assert_eq!(again.tensors, after.tensors);

    // --load-from under a full checkpoint is not read, and says so; the output is the same.
    let ignored = dir.path().join("ignored.safetensors");
    let out = merge(
        &ckpt,
        &ignored,
        &[
            "--load-from",
            ckpt.to_str().unwrap(),
            "--cfg-options",
            LORA[0],
            LORA[1],
        ],
    )
    .ok();
    assert!(
        out.stderr.contains(&format!(
            "--load-from {}: not used: {} is a full checkpoint with its own backbone",
            ckpt.display(),
            ckpt.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("pretrained backbone"),
        "{}",
        out.stdout
    );
    assert_eq!(StateDict::read(&ignored).unwrap().tensors, after.tensors);

    // Without pretrained weights an adapter file cannot be merged.
    let err = merge(
        &work.join("adapter_final.safetensors"),
        &dir.path().join("x.safetensors"),
        &["--cfg-options", LORA[0], LORA[1]],
    )
    .failed();
    assert!(
        err.error_line()
            .contains("adapter_final.safetensors: --merge-lora: is an adapter file"),
        "{}",
        err.stderr
    );
    assert!(!dir.path().join("x.safetensors").exists());
}

#[test]
fn a_config_of_another_method_or_a_file_without_lora_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.safetensors");
    write_safetensors(
        &plain,
        &[(
            "backbone.patch_embed.proj.bias".to_string(),
            TensorData::new(vec![0f32; 32], [32]),
        )],
        Default::default(),
    )
    .unwrap();
    let out = dir.path().join("out.safetensors");

    let err = merge(&plain, &out, &[]).failed();
    assert!(
        err.error_line()
            .contains("plain.safetensors: --merge-lora: ")
            && err
                .error_line()
                .contains("model.backbone.method is `mona`, not `lora`"),
        "{}",
        err.stderr
    );
    let err = merge(&plain, &out, &["--cfg-options", LORA[0], LORA[1]]).failed();
    assert!(
        err.error_line().contains(
            "plain.safetensors: --merge-lora: holds no `lora_A` tensor: not a LoRA checkpoint"
        ),
        "{}",
        err.stderr
    );
    let err = merge(&plain, &plain, &["--cfg-options", LORA[0], LORA[1]]).failed();
    assert!(
        err.error_line().contains("refusing to write over it"),
        "{}",
        err.stderr
    );
    assert!(!out.exists());
}
