//! Checkpoint import: the two `.pth` layouts of the fixtures (pretrained release and mmdet),
//! the key report, strict mode, bad files, shape mismatches, unknown method names and the
//! bicubic resize of relative position bias tables on load.

mod common;

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::TensorData;
use common::{fixture, outputs, tensor, tiny};
use mona_core::checkpoint::{
    CheckpointError, KeyReport, LoadOptions, StateDict, load_pretrained, load_state_dict,
    resize_bias_table,
};
use mona_core::config::Config;
use mona_core::methods::build_method;
use mona_core::params::{param_data, param_infos};
use mona_core::swin::SwinTransformer;
use mona_fixtures::{FORWARD_TOL, rel_err};

const RELEASE: &str = "swin_mona_tiny.release.pth";
const MMDET: &str = "swin_mona_tiny.mmdet.pth";

/// `backbone.`-stripping options, as a task loads a file into its bare backbone.
fn strip_backbone() -> LoadOptions {
    LoadOptions {
        strip_prefix: Some("backbone.".into()),
        ..Default::default()
    }
}

fn load(
    model: SwinTransformer,
    file: &str,
    options: &LoadOptions,
) -> Result<(SwinTransformer, KeyReport), CheckpointError> {
    let sd = StateDict::read(fixture(file)).expect("fixture checkpoint");
    load_state_dict(model, &sd, options)
}

/// The error of a load that must fail (the model's Debug is too long for `expect_err`).
fn must_fail<M>(result: Result<(M, KeyReport), CheckpointError>) -> CheckpointError {
    match result {
        Ok((_, report)) => panic!("loaded although it must fail: {report}"),
        Err(e) => e,
    }
}

/// Keys of `report.missing` etc. that do not satisfy `pred`.
fn not_matching(keys: &[String], pred: impl Fn(&str) -> bool) -> Vec<&String> {
    keys.iter().filter(|k| !pred(k)).collect()
}

/// Tiny Swin: 8 blocks × 2 Mona modules × 16 tensors = 256 adapter keys, plus norm0..3 (8).
#[test]
fn release_checkpoint_reports_missing_unused_and_recomputed_keys() {
    let sd = StateDict::read(fixture(RELEASE)).expect("release file");
    assert_eq!(sd.top_level_key.as_deref(), Some("model"));
    // 8 integer relative_position_index buffers are set aside as non-float entries.
    assert_eq!(sd.non_float.len(), 8, "{:?}", sd.non_float);
    assert!(
        sd.non_float
            .iter()
            .all(|k| k.ends_with("attn.relative_position_index"))
    );

    let model = tiny("mona");
    let n_params = param_infos(&model).len();
    assert_eq!(n_params, 381);
    let (_, report) = load_state_dict(model, &sd, &strip_backbone()).expect("loads");

    assert_eq!(report.missing.len(), 264, "{report}");
    let adapter_missing = report
        .missing
        .iter()
        .filter(|k| k.contains("my_module"))
        .count();
    assert_eq!(adapter_missing, 256);
    let stray = not_matching(&report.missing, |k| {
        k.contains(".my_module_1.") || k.contains(".my_module_2.") || is_out_norm(k)
    });
    assert!(stray.is_empty(), "unexpected missing keys: {stray:?}");
    for i in 0..4 {
        for p in ["weight", "bias"] {
            let key = format!("norm{i}.{p}");
            assert!(report.missing.contains(&key), "{key} not missing");
        }
    }

    assert_eq!(
        report.unused,
        ["head.bias", "head.weight", "norm.bias", "norm.weight"],
        "{report}"
    );
    // 8 relative_position_index (one per block) + 4 attn_mask (blocks 1 of each stage).
    assert_eq!(report.recomputed.len(), 12, "{:?}", report.recomputed);
    let masks: Vec<&String> = report
        .recomputed
        .iter()
        .filter(|k| k.ends_with("attn_mask"))
        .collect();
    assert_eq!(
        masks,
        [
            "layers.0.blocks.1.attn_mask",
            "layers.1.blocks.1.attn_mask",
            "layers.2.blocks.1.attn_mask",
            "layers.3.blocks.1.attn_mask"
        ]
    );
    assert!(report.resized.is_empty() && report.mismatched.is_empty());
    assert_eq!(report.applied.len(), n_params - 264);
    assert!(report.applied.iter().all(|k| !k.contains("my_module")));
    let summary = report.to_string();
    assert!(
        summary.starts_with(
            "applied 117 | missing 264 | unused 4 | recomputed buffers 12 | resized 0"
        ),
        "{summary}"
    );
}

fn is_out_norm(key: &str) -> bool {
    (0..4).any(|i| key.starts_with(&format!("norm{i}.")))
}

/// The mmdet fixture keeps its keys bare (no `backbone.`), so `strip_prefix` falls back to
/// the whole dict; the prefixed layout is checked by the next test.
#[test]
fn mmdet_checkpoint_loads_everything_and_matches_the_fixture_outputs() {
    let sd = StateDict::read(fixture(MMDET)).expect("mmdet file");
    assert_eq!(sd.top_level_key.as_deref(), Some("state_dict"));
    assert_eq!(sd.tensors.len(), 381);
    assert!(sd.tensors.keys().all(|k| !k.starts_with("backbone.")));
    let (model, report) = load_state_dict(tiny("mona"), &sd, &strip_backbone()).expect("loads");
    assert_eq!(report.applied.len(), 381, "{report}");
    assert!(report.missing.is_empty(), "{report}");
    assert!(report.unused.is_empty(), "{report}");
    assert_eq!(report.recomputed.len(), 8, "{:?}", report.recomputed);
    assert!(report.resized.is_empty() && report.mismatched.is_empty());

    let golden = StateDict::read(fixture("swin_mona_tiny.safetensors")).expect("fixture");
    let x = tensor::<4>(&golden.tensors["input"]);
    let outs = outputs(&model, &x);
    assert_eq!(outs.len(), 4);
    let shapes: Vec<Vec<usize>> = outs.iter().map(|o| o.shape().to_vec()).collect();
    assert_eq!(
        shapes,
        [
            vec![2, 24, 25, 30],
            vec![2, 48, 13, 15],
            vec![2, 96, 7, 8],
            vec![2, 192, 4, 4]
        ]
    );
    for (i, out) in outs.iter().enumerate() {
        let err = rel_err(out, &golden.tensors[&format!("output.{i}")]);
        assert!(err <= FORWARD_TOL, "output.{i}: rel err {err:.3e}");
    }
}

/// A detector-style file: the backbone under `backbone.`, plus a neck tensor. Stripping keeps
/// only the backbone keys; the others are reported unused (and fail a strict load).
#[test]
fn backbone_prefix_is_stripped_and_other_keys_are_unused() {
    let plain = StateDict::read(fixture(MMDET)).unwrap();
    let mut tensors: BTreeMap<String, TensorData> = plain
        .tensors
        .iter()
        .map(|(k, v)| (format!("backbone.{k}"), v.clone()))
        .collect();
    tensors.insert(
        "neck.lateral_convs.0.conv.weight".into(),
        TensorData::new(vec![0f32; 8], [2, 4, 1, 1]),
    );
    let sd = StateDict {
        path: "detector.pth".into(),
        tensors,
        ..Default::default()
    };
    let (model, report) = load_state_dict(tiny("mona"), &sd, &strip_backbone()).expect("loads");
    assert_eq!(report.applied.len(), 381);
    assert!(report.missing.is_empty());
    assert_eq!(report.unused, ["neck.lateral_convs.0.conv.weight"]);
    let key = "layers.1.blocks.0.my_module_2.gamma";
    assert_eq!(param_data(&model, &|k| k == key)[0].1, plain.tensors[key]);

    let err = must_fail(load_state_dict(
        tiny("mona"),
        &sd,
        &LoadOptions {
            strict: true,
            ..strip_backbone()
        },
    ));
    assert_eq!(
        err.to_string(),
        "detector.pth: strict loading failed: 0 missing key(s) (), 1 unused key(s) (neck.lateral_convs.0.conv.weight)"
    );
}

#[test]
fn strict_loading_of_the_release_file_fails_with_counts() {
    let err = must_fail(load(
        tiny("mona"),
        RELEASE,
        &LoadOptions {
            strict: true,
            ..strip_backbone()
        },
    ));
    match &err {
        CheckpointError::Strict {
            missing, unused, ..
        } => assert_eq!((*missing, *unused), (264, 4)),
        other => panic!("expected Strict, got {other:?}"),
    }
    let text = err.to_string();
    for needle in [
        RELEASE,
        "strict loading failed",
        "264 missing key(s)",
        "4 unused key(s)",
        "head.bias",
    ] {
        assert!(text.contains(needle), "`{needle}` not in: {text}");
    }
}

/// Reading never panics on bad input, and every error names the path.
#[test]
fn bad_files_give_errors_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(fixture(MMDET)).expect("fixture");
    let truncated = dir.path().join("truncated.pth");
    std::fs::write(&truncated, &bytes[..1000]).unwrap();
    let text = dir.path().join("notes.pth");
    std::fs::write(&text, "this is not a checkpoint\n").unwrap();
    let empty = dir.path().join("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    let empty_st = dir.path().join("empty.safetensors");
    std::fs::write(&empty_st, b"").unwrap();
    let garbage_st = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage_st, [0xffu8; 64]).unwrap();
    let truncated_st = dir.path().join("truncated.safetensors");
    let st_bytes = std::fs::read(fixture("bias_table_resize.safetensors")).unwrap();
    std::fs::write(&truncated_st, &st_bytes[..st_bytes.len() / 2]).unwrap();
    let folder = dir.path().join("folder.pth");
    std::fs::create_dir(&folder).unwrap();
    let absent = dir.path().join("absent.pth");

    for path in [
        &truncated,
        &text,
        &empty,
        &empty_st,
        &garbage_st,
        &truncated_st,
        &folder,
        &absent,
    ] {
        let result = std::panic::catch_unwind(|| StateDict::read(path));
        let err = match result {
            Ok(Ok(_)) => panic!("{} was read as a checkpoint", path.display()),
            Ok(Err(e)) => e,
            Err(_) => panic!("reading {} panicked", path.display()),
        };
        let msg = err.to_string();
        assert!(
            msg.starts_with(&path.display().to_string()),
            "error does not name {}: {msg}",
            path.display()
        );
    }
    let folder_err = StateDict::read(&folder).unwrap_err().to_string();
    assert!(folder_err.ends_with("is a directory"), "{folder_err}");
    assert!(matches!(
        StateDict::read(&absent),
        Err(CheckpointError::Io { .. })
    ));
}

/// safetensors is recognised by its header too (a `.bin` / `.pt` download); a `.pth` is
/// not mistaken for one.
#[test]
fn safetensors_under_another_extension_is_read_by_its_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let renamed = dir.path().join("bias_table.bin");
    std::fs::copy(fixture("bias_table_resize.safetensors"), &renamed).unwrap();
    let sd = StateDict::read(&renamed).expect("read by header");
    assert_eq!(sd.tensors["input"].shape().to_vec(), [529, 4]);
    assert_eq!(sd.tensors["output"].shape().to_vec(), [169, 4]);
    assert_eq!(sd.top_level_key, None);

    let pth = StateDict::read(fixture(MMDET)).unwrap();
    assert!(pth.metadata.is_empty());
    assert_eq!(pth.tensors.len(), 381);
}

/// Another architecture: embed_dim 32 instead of 24. The error names the model's first
/// parameter that differs, with both shapes.
#[test]
fn checkpoint_of_another_architecture_is_a_shape_mismatch() {
    let mut config = common::fixture_config("swin_mona_tiny");
    config.embed_dim = Some(32);
    let err = must_fail(load(
        common::backbone(&config, "mona"),
        MMDET,
        &strip_backbone(),
    ));
    let CheckpointError::ShapeMismatch {
        key,
        expected,
        found,
        ..
    } = &err
    else {
        panic!("expected ShapeMismatch, got {err:?}");
    };
    assert_eq!(
        (key.as_str(), expected.as_slice(), found.as_slice()),
        (
            "patch_embed.proj.weight",
            &[32, 3, 4, 4][..],
            &[24, 3, 4, 4][..]
        )
    );
    let text = err.to_string();
    assert!(
        text.ends_with(&format!(
            "{MMDET}: patch_embed.proj.weight: shape mismatch: the model expects [32, 3, 4, 4], the checkpoint has [24, 3, 4, 4]"
        )),
        "{text}"
    );

    // skip_mismatched reports them instead, in model order. What still fits: the 8 bias
    // tables (169 × heads) and, per Mona module (16), its 64-channel convs (8 tensors) and
    // project1.bias: 8 + 16·9 = 152 of 381.
    let (_, report) = load(
        common::backbone(&config, "mona"),
        MMDET,
        &LoadOptions {
            skip_mismatched: true,
            ..strip_backbone()
        },
    )
    .map_err(|e| e.to_string())
    .expect("skips");
    assert_eq!(report.applied.len(), 152);
    assert_eq!(report.mismatched.len(), 229);
    assert_eq!(report.missing.len(), 229);
    let first: Vec<&str> = report
        .mismatched
        .iter()
        .take(4)
        .map(|m| m.key.as_str())
        .collect();
    assert_eq!(
        first,
        [
            "patch_embed.proj.weight",
            "patch_embed.proj.bias",
            "patch_embed.norm.weight",
            "patch_embed.norm.bias"
        ]
    );
    assert!(report.to_string().contains(
        "skipped patch_embed.proj.weight: checkpoint [24, 3, 4, 4], model [32, 3, 4, 4]"
    ));
}

#[test]
fn unknown_method_type_names_file_key_and_a_close_name() {
    let cfg = Config::from_str_at(
        "[model.backbone]\ntype = \"SwinTransformer\"\n[model.backbone.method]\ntype = \"mnoa\"\n",
        "configs/typo.toml",
    )
    .expect("toml");
    let node = cfg.node("model.backbone.method").expect("node");
    let err = build_method(&node).expect_err("unknown type");
    let text = err.to_string();
    for needle in [
        "configs/typo.toml",
        "model.backbone.method.type",
        "\"mnoa\"",
        "did you mean mona",
    ] {
        assert!(text.contains(needle), "`{needle}` not in: {text}");
    }
}

/// The bias table fixture: input (window 12) → output (window 7), 4 heads.
fn bias_fixture() -> (TensorData, TensorData) {
    let sd = StateDict::read(fixture("bias_table_resize.safetensors")).expect("fixture");
    (sd.tensors["input"].clone(), sd.tensors["output"].clone())
}

#[test]
fn window_12_bias_table_is_resized_on_load() {
    let (input, expected) = bias_fixture();
    assert_eq!(input.shape().to_vec(), [529, 4]);
    assert_eq!(expected.shape().to_vec(), [169, 4]);

    // Stage 2 of the tiny Swin has 4 heads: put the window-12 table into one of its blocks.
    let key = "layers.2.blocks.1.attn.relative_position_bias_table";
    let mut sd = StateDict::read(fixture(MMDET)).unwrap();
    sd.tensors.insert(key.to_string(), input.clone());
    let (model, report) = load_state_dict(tiny("mona"), &sd, &strip_backbone()).expect("loads");
    assert_eq!(report.resized, [key]);
    assert!(
        report.missing.is_empty() && report.unused.is_empty(),
        "{report}"
    );

    let loaded = &param_data(&model, &|k| k == key)[0].1;
    assert_eq!(loaded.shape().to_vec(), [169, 4]);
    let values: Vec<f32> = input.clone().try_into_vec().unwrap();
    let direct = resize_bias_table(&values, 529, 4, 169).expect("square");
    assert_eq!(loaded.clone().try_into_vec::<f32>().unwrap(), direct);
    let err = rel_err(loaded, &expected);
    assert!(err <= FORWARD_TOL, "resized table vs fixture: {err:.3e}");
    // The resize is not the identity: a corner of the 23×23 grid maps to a 13×13 corner.
    assert_ne!(direct[0], values[0]);

    // The table of a block untouched by the edit is loaded unchanged.
    let other = "layers.2.blocks.0.attn.relative_position_bias_table";
    let kept = &param_data(&model, &|k| k == other)[0].1;
    assert_eq!(kept, &sd.tensors[other]);
}

#[test]
fn bias_table_of_another_head_count_or_non_square_is_a_mismatch() {
    let key = "layers.2.blocks.1.attn.relative_position_bias_table";
    for (rows, heads) in [(529, 3), (500, 4)] {
        let tensors = BTreeMap::from([(
            key.to_string(),
            TensorData::new(vec![0.5f32; rows * heads], [rows, heads]),
        )]);
        let sd = StateDict {
            path: "synthetic.safetensors".into(),
            tensors,
            ..Default::default()
        };
        let err = must_fail(load_state_dict(tiny("mona"), &sd, &LoadOptions::default()));
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "{key}: shape mismatch: the model expects [169, 4], the checkpoint has [{rows}, {heads}]"
            )),
            "{text}"
        );
    }
}

/// A task model: the backbone under `backbone.` (as in every detector / segmentor).
#[derive(Module, Debug)]
struct TaskModel {
    backbone: SwinTransformer,
}

/// `load_from`: a bare release file is placed under `backbone.`; a backbone of another
/// architecture is an error naming the prefixed key.
#[test]
fn load_pretrained_places_bare_files_under_backbone() {
    let task = || TaskModel {
        backbone: tiny("mona"),
    };
    let (_, report) = load_pretrained(task(), &fixture(RELEASE))
        .map_err(|e| e.to_string())
        .expect("loads");
    assert_eq!(report.applied.len(), 117);
    assert_eq!(report.missing.len(), 264);
    assert!(report.missing.iter().all(|k| k.starts_with("backbone.")));
    assert_eq!(
        report.unused,
        [
            "backbone.head.bias",
            "backbone.head.weight",
            "backbone.norm.bias",
            "backbone.norm.weight"
        ]
    );
    assert_eq!(report.recomputed.len(), 12);

    let (_, report) = load_pretrained(task(), &fixture(MMDET))
        .map_err(|e| e.to_string())
        .expect("loads");
    assert_eq!(report.applied.len(), 381);
    assert!(report.missing.is_empty() && report.unused.is_empty());

    let mut config = common::fixture_config("swin_mona_tiny");
    config.embed_dim = Some(32);
    let wide = TaskModel {
        backbone: common::backbone(&config, "mona"),
    };
    let text = must_fail(load_pretrained(wide, &fixture(MMDET))).to_string();
    assert!(
        text.ends_with(
            "backbone.patch_embed.proj.weight: shape mismatch: the model expects [32, 3, 4, 4], the checkpoint has [24, 3, 4, 4]"
        ),
        "{text}"
    );
}
