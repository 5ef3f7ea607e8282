//! The optimizer's parameter-wise rules, update rules and global clipping, and the LR
//! schedules, against values computed by hand from the PyTorch / mmcv formulas.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use mona_core::config::Config;
use mona_core::fused;
use mona_core::nn::Linear;
use mona_core::params::{ParamInfo, param_data, param_infos};
use mona_core::runner::{KeyMult, LrSchedule, Optimizer, ParamwiseCfg, Progress, Rule};

fn info(key: &str, shape: &[usize], module_type: &str) -> ParamInfo {
    ParamInfo {
        key: key.into(),
        shape: shape.to_vec(),
        module_type: module_type.into(),
    }
}

fn cls_paramwise() -> ParamwiseCfg {
    ParamwiseCfg {
        norm_decay_mult: Some(0.0),
        bias_decay_mult: Some(0.0),
        custom_keys: BTreeMap::from([
            (
                ".absolute_pos_embed".into(),
                KeyMult {
                    lr_mult: 1.0,
                    decay_mult: 0.0,
                },
            ),
            (
                ".relative_position_bias_table".into(),
                KeyMult {
                    lr_mult: 1.0,
                    decay_mult: 0.0,
                },
            ),
        ]),
        ..Default::default()
    }
}

/// The official classification configs: the decay of each Mona parameter under the classification settings.
#[test]
fn classification_decay_rules_match_the_spec() {
    let p = "backbone.layers.0.blocks.0.my_module_1";
    let infos = vec![
        info(&format!("{p}.gamma"), &[96], "Mona"),
        info(&format!("{p}.gammax"), &[96], "Mona"),
        info(&format!("{p}.project1.weight"), &[64, 96], "Linear"),
        info(&format!("{p}.project1.bias"), &[64], "Linear"),
        info(
            &format!("{p}.adapter_conv.conv1.weight"),
            &[64, 1, 3, 3],
            "Conv2d",
        ),
        info(&format!("{p}.adapter_conv.conv1.bias"), &[64], "Conv2d"),
        info(
            &format!("{p}.adapter_conv.projector.weight"),
            &[64, 64, 1, 1],
            "Conv2d",
        ),
        info(&format!("{p}.adapter_conv.projector.bias"), &[64], "Conv2d"),
        info(&format!("{p}.norm.weight"), &[96], "LayerNorm"),
        info(&format!("{p}.norm.bias"), &[96], "LayerNorm"),
        info(
            "backbone.layers.0.blocks.0.attn.relative_position_bias_table",
            &[169, 3],
            "WindowAttention",
        ),
        info("head.fc.weight", &[10, 768], "Linear"),
        info("head.fc.bias", &[10], "Linear"),
    ];
    let opt = Optimizer::new(
        Rule::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        3.125e-5,
        0.05,
        &cls_paramwise(),
        &infos,
        &|_| true,
    );
    let decay = |k: &str| opt.settings()[k].weight_decay;
    assert_eq!(decay(&format!("{p}.gamma")), 0.05);
    assert_eq!(decay(&format!("{p}.gammax")), 0.05);
    assert_eq!(decay(&format!("{p}.project1.weight")), 0.05);
    assert_eq!(decay(&format!("{p}.project1.bias")), 0.0);
    // Depthwise convs: dwconv_decay_mult (default 1) wins over the bias rule, weight and bias.
    assert_eq!(decay(&format!("{p}.adapter_conv.conv1.weight")), 0.05);
    assert_eq!(decay(&format!("{p}.adapter_conv.conv1.bias")), 0.05);
    assert_eq!(decay(&format!("{p}.adapter_conv.projector.weight")), 0.05);
    assert_eq!(decay(&format!("{p}.adapter_conv.projector.bias")), 0.0);
    assert_eq!(decay(&format!("{p}.norm.weight")), 0.0);
    assert_eq!(decay(&format!("{p}.norm.bias")), 0.0);
    assert_eq!(
        decay("backbone.layers.0.blocks.0.attn.relative_position_bias_table"),
        0.0
    );
    assert_eq!(decay("head.fc.weight"), 0.05);
    assert_eq!(decay("head.fc.bias"), 0.0);
    assert!(opt.settings().values().all(|s| s.base_lr == 3.125e-5));
}

/// In the official ADE20K-Mona config the custom key `backbone` (longest) matches before `norm`, so
/// Mona's LayerNorm keeps its weight decay; a head BN (`bn`) never matches `norm`.
#[test]
fn longest_custom_key_wins() {
    let cfg = ParamwiseCfg {
        custom_keys: BTreeMap::from([
            (
                "backbone".into(),
                KeyMult {
                    lr_mult: 1.0,
                    decay_mult: 1.0,
                },
            ),
            (
                "norm".into(),
                KeyMult {
                    lr_mult: 1.0,
                    decay_mult: 0.0,
                },
            ),
            (
                "absolute_pos_embed".into(),
                KeyMult {
                    lr_mult: 1.0,
                    decay_mult: 0.0,
                },
            ),
            (
                "relative_position_bias_table".into(),
                KeyMult {
                    lr_mult: 1.0,
                    decay_mult: 0.0,
                },
            ),
        ]),
        ..Default::default()
    };
    let infos = vec![
        info(
            "backbone.layers.0.blocks.0.my_module_1.norm.weight",
            &[192],
            "LayerNorm",
        ),
        info(
            "backbone.layers.0.blocks.0.attn.relative_position_bias_table",
            &[169, 6],
            "WindowAttention",
        ),
        info("decode_head.bottleneck.bn.weight", &[512], "BatchNorm"),
        info("decode_head.norm_like.weight", &[512], "LayerNorm"),
    ];
    let opt = Optimizer::new(
        Rule::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        3e-4,
        0.01,
        &cfg,
        &infos,
        &|_| true,
    );
    let s = opt.settings();
    assert_eq!(
        s["backbone.layers.0.blocks.0.my_module_1.norm.weight"].weight_decay,
        0.01
    );
    assert_eq!(
        s["backbone.layers.0.blocks.0.my_module_1.norm.weight"]
            .mults
            .rule,
        "custom_keys[\"backbone\"]"
    );
    // "relative_position_bias_table" (28 chars) is longer than "backbone" and matches first.
    assert_eq!(
        s["backbone.layers.0.blocks.0.attn.relative_position_bias_table"].weight_decay,
        0.0
    );
    assert_eq!(s["decode_head.bottleneck.bn.weight"].weight_decay, 0.01);
    assert_eq!(s["decode_head.norm_like.weight"].weight_decay, 0.0);
}

#[derive(Module, Debug)]
struct Tiny {
    a: Linear,
    b: Param<Tensor<1>>,
}

fn tiny(device: &Device) -> Tiny {
    Tiny {
        a: Linear {
            weight: Param::from_data([[0.5f32, -1.0], [2.0, 0.25]], device),
            bias: Some(Param::from_data([0.1f32, -0.2], device)),
        },
        b: Param::from_data([1.0f32, 2.0, 3.0], device),
    }
}

/// loss = Σ W·C1 + Σ bias·c2 + Σ b·c3, so the gradients are the constants.
fn grads_of(model: &Tiny) -> GradientsParams {
    let dev = model.b.val().device();
    let c1 = Tensor::<2>::from_data([[1.0f32, -2.0], [3.0, 4.0]], &dev);
    let c2 = Tensor::<1>::from_data([0.5f32, -0.5], &dev);
    let c3 = Tensor::<1>::from_data([2.0f32, 0.0, -1.0], &dev);
    let loss = (model.a.weight.val() * c1).sum()
        + (model.a.bias.as_ref().unwrap().val() * c2).sum()
        + (model.b.val() * c3).sum();
    GradientsParams::from_grads(loss.backward(), model)
}

fn values(model: &Tiny) -> BTreeMap<String, Vec<f32>> {
    param_data(model, &|_| true)
        .into_iter()
        .map(|(k, d)| (k, d.convert::<f32>().try_into_vec().unwrap()))
        .collect()
}

/// Two AdamW steps with decoupled decay and global-norm clipping, computed by hand.
#[test]
fn adamw_with_global_clipping_matches_pytorch_formulas() {
    let dev = Device::flex().autodiff();
    let model = tiny(&dev);
    let infos = param_infos(&model);
    let (lr, wd, b1, b2, eps, max_norm) = (0.1, 0.05, 0.9, 0.999, 1e-8, 2.0);
    let paramwise = ParamwiseCfg {
        bias_decay_mult: Some(0.0),
        ..Default::default()
    };
    let mut opt = Optimizer::new(
        Rule::AdamW {
            beta1: b1,
            beta2: b2,
            eps,
        },
        lr,
        wd,
        &paramwise,
        &infos,
        &|k| k != "b",
    );
    let grads: BTreeMap<&str, Vec<f64>> = BTreeMap::from([
        ("a.weight", vec![1.0, -2.0, 3.0, 4.0]),
        ("a.bias", vec![0.5, -0.5]),
    ]);
    // Global norm over the optimised parameters only ("b" is frozen by the rule).
    let norm: f64 = grads.values().flatten().map(|g| g * g).sum::<f64>().sqrt();
    let coef = max_norm / (norm + 1e-6);
    let mut expected: BTreeMap<&str, Vec<f64>> = BTreeMap::from([
        ("a.weight", vec![0.5, -1.0, 2.0, 0.25]),
        ("a.bias", vec![0.1, -0.2]),
    ]);
    let mut m: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut v: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut model = model;
    for t in 1..=2 {
        let gp = grads_of(&model);
        let (next, stats) = opt.step(model, gp, Some(max_norm));
        model = next;
        assert!(
            (stats.grad_norm - norm).abs() < 1e-5,
            "grad norm {}",
            stats.grad_norm
        );
        assert_eq!(stats.updated, 2);
        for (key, g) in &grads {
            let decay = if *key == "a.bias" { 0.0 } else { wd };
            let p = expected.get_mut(key).unwrap();
            let mk = m.entry(key).or_insert(vec![0.0; g.len()]);
            let vk = v.entry(key).or_insert(vec![0.0; g.len()]);
            for i in 0..g.len() {
                let gi = g[i] * coef;
                p[i] *= 1.0 - lr * decay;
                mk[i] = b1 * mk[i] + (1.0 - b1) * gi;
                vk[i] = b2 * vk[i] + (1.0 - b2) * gi * gi;
                let bc1 = 1.0 - b1.powi(t);
                let bc2 = 1.0 - b2.powi(t);
                p[i] -= lr / bc1 * mk[i] / ((vk[i] / bc2).sqrt() + eps);
            }
        }
        let got = values(&model);
        for (key, want) in &expected {
            for (g, w) in got[*key].iter().zip(want) {
                assert!((*g as f64 - w).abs() < 1e-5, "step {t} {key}: {g} vs {w}");
            }
        }
        assert_eq!(got["b"], vec![1.0, 2.0, 3.0], "frozen parameter changed");
    }
    // The state round-trips through a state dict.
    let (tensors, steps) = opt.state_dict();
    assert_eq!(steps["a.weight"], 2);
    assert!(tensors.iter().any(|(k, _)| k == "exp_avg_sq.a.bias"));
}

/// Three steps of the fused in-place Adam/AdamW update (the flex path) and of the composed
/// tensor ops: the same bits for the parameters and both moments, with decay, clipping and
/// a parameter of several parallel chunks.
#[test]
fn fused_adam_updates_are_bit_identical_to_the_composed_ops() {
    let dev = Device::flex().autodiff();
    let rules = [
        Rule::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        Rule::Adam {
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
        },
    ];
    for rule in rules {
        let run = |composed: bool| {
            dev.seed(5);
            let mut model = Linear::torch_default(300, 70, true, &dev);
            let infos = param_infos(&model);
            let mut opt = Optimizer::new(
                rule.clone(),
                3e-3,
                0.05,
                &ParamwiseCfg::default(),
                &infos,
                &|_| true,
            );
            let c = Tensor::<2>::random([70, 300], Distribution::Normal(0.0, 1.0), &dev);
            for step in 0..3 {
                let loss = (model.weight.val() * c.clone()).sum()
                    + model.bias.as_ref().unwrap().val().sum() * (step as f64 + 0.5);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                // Clipping on the second step scales the gradients.
                let clip = (step == 1).then_some(1.0);
                let go = || opt.step(model.clone(), grads, clip).0;
                model = if composed { fused::composed(go) } else { go() };
            }
            let (state, _) = opt.state_dict();
            let bits = |d: burn::tensor::TensorData| -> Vec<u32> {
                let v: Vec<f32> = d.convert::<f32>().try_into_vec().unwrap();
                v.into_iter().map(f32::to_bits).collect()
            };
            let mut all: Vec<(String, Vec<u32>)> = param_data(&model, &|_| true)
                .into_iter()
                .map(|(k, d)| (k, bits(d)))
                .collect();
            all.extend(state.into_iter().map(|(k, d)| (k, bits(d))));
            all
        };
        let (fused_run, composed_run) = (run(false), run(true));
        assert_eq!(fused_run.len(), 6, "weight, bias and their two moments");
        for ((k, a), (_, b)) in fused_run.iter().zip(&composed_run) {
            assert!(
                a == b,
                "{rule:?}: {k} differs between the fused and composed updates"
            );
        }
    }
}

/// SGD with momentum and L2 decay (torch.optim.SGD, dampening 0).
#[test]
fn sgd_momentum_matches_pytorch_formula() {
    let dev = Device::flex().autodiff();
    let mut model = tiny(&dev);
    let infos = param_infos(&model);
    let mut opt = Optimizer::new(
        Rule::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        },
        0.01,
        1e-4,
        &ParamwiseCfg::default(),
        &infos,
        &|k| k == "b",
    );
    let g = [2.0f64, 0.0, -1.0];
    let mut p = [1.0f64, 2.0, 3.0];
    let mut buf = [0.0f64; 3];
    for t in 0..2 {
        let gp = grads_of(&model);
        model = opt.step(model, gp, None).0;
        for i in 0..3 {
            let gi = g[i] + 1e-4 * p[i];
            buf[i] = if t == 0 { gi } else { 0.9 * buf[i] + gi };
            p[i] -= 0.01 * buf[i];
        }
    }
    let got = values(&model);
    for (a, b) in got["b"].iter().zip(p) {
        assert!((*a as f64 - b).abs() < 1e-6);
    }
}

/// The lr a step uses is the one `set_lr` (the LR schedule's hook) set last, per parameter
/// from its own base lr (`lr_mult`), and `current_lr` reports the optimizer's.
#[test]
fn steps_use_the_lr_the_schedule_hook_set() {
    let dev = Device::flex().autodiff();
    let model = tiny(&dev);
    let infos = param_infos(&model);
    let mut opt = Optimizer::new(
        Rule::Sgd {
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
        },
        0.1,
        0.0,
        &ParamwiseCfg::default(),
        &infos,
        &|k| k == "b",
    );
    assert_eq!(opt.current_lr(), 0.1);
    opt.set_lr(&|base| base * 0.25);
    assert_eq!(opt.current_lr(), 0.025);
    assert_eq!(opt.settings()["b"].lr, 0.025);
    assert_eq!(opt.settings()["b"].base_lr, 0.1);
    let before = values(&model)["b"].clone();
    let model = opt.step(model.clone(), grads_of(&model), None).0;
    // SGD: p - lr * g with g = [2, 0, -1].
    let want = [2.0f32, 0.0, -1.0].map(|g| g * 0.025);
    for ((a, b), w) in values(&model)["b"].iter().zip(before).zip(want) {
        assert!((b - a - w).abs() < 1e-7, "{b} - {a} != {w}");
    }
}

fn schedule(text: &str) -> LrSchedule {
    let cfg = Config::from_str_at(text, "schedule.toml").unwrap();
    LrSchedule::from_config(&cfg.node("lr_config").unwrap()).unwrap()
}

fn at(iter: usize, epoch_len: usize, max_epochs: usize) -> Progress {
    Progress {
        epoch: iter / epoch_len,
        iter,
        epoch_len,
        max_epochs,
        max_iters: epoch_len * max_epochs,
    }
}

#[test]
fn cosine_with_epoch_warmup_by_iteration() {
    // The classification schedule: cosine by iteration, min_lr_ratio 0.01, linear warmup of
    // 2 epochs (10 iterations each) at ratio 1e-3.
    let s = schedule(
        "[lr_config]\npolicy = \"CosineAnnealing\"\nby_epoch = false\nmin_lr_ratio = 0.01\nwarmup = \"linear\"\nwarmup_ratio = 0.001\nwarmup_iters = 2\nwarmup_by_epoch = true\n",
    );
    let base = 1e-3;
    let cos =
        |i: f64| 1e-5 + 0.5 * (1e-3 - 1e-5) * (1.0 + (std::f64::consts::PI * i / 100.0).cos());
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(s.lr(base, &at(0, 10, 10)), cos(0.0) * 1e-3));
    assert!(close(
        s.lr(base, &at(5, 10, 10)),
        cos(5.0) * (1.0 - (1.0 - 0.25) * (1.0 - 1e-3))
    ));
    assert!(close(s.lr(base, &at(20, 10, 10)), cos(20.0)));
    assert!(close(s.lr(base, &at(99, 10, 10)), cos(99.0)));
}

#[test]
fn step_and_poly_schedules() {
    let s = schedule(
        "[lr_config]\npolicy = \"step\"\nstep = [27, 33]\nwarmup = \"linear\"\nwarmup_iters = 500\nwarmup_ratio = 0.001\n",
    );
    let base = 1e-4;
    assert_eq!(s.lr(base, &at(26 * 1000 + 999, 1000, 36)), base);
    assert!((s.lr(base, &at(27 * 1000, 1000, 36)) - 1e-5).abs() < 1e-15);
    assert!((s.lr(base, &at(35 * 1000, 1000, 36)) - 1e-6).abs() < 1e-16);
    assert!((s.lr(base, &at(250, 1000, 36)) - base * (1.0 - 0.5 * 0.999)).abs() < 1e-15);

    let p = schedule(
        "[lr_config]\npolicy = \"poly\"\npower = 1.0\nmin_lr = 0.0\nby_epoch = false\nwarmup = \"linear\"\nwarmup_iters = 1500\nwarmup_ratio = 1e-6\n",
    );
    let prog = Progress {
        epoch: 0,
        iter: 80_000,
        epoch_len: 1,
        max_epochs: 1,
        max_iters: 160_000,
    };
    assert!((p.lr(3e-4, &prog) - 1.5e-4).abs() < 1e-15);
    let warm = Progress { iter: 750, ..prog };
    let regular = 3e-4 * (1.0 - 750.0 / 160_000.0);
    assert!((p.lr(3e-4, &warm) - regular * (1.0 - 0.5 * (1.0 - 1e-6))).abs() < 1e-15);
}

#[test]
fn unknown_policy_names_file_and_key() {
    let cfg = Config::from_str_at("[lr_config]\npolicy = \"cosine\"\n", "sched.toml").unwrap();
    let err = LrSchedule::from_config(&cfg.node("lr_config").unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("sched.toml"), "{err}");
    assert!(err.contains("lr_config.policy"), "{err}");
    assert!(err.contains("Cosine"), "{err}");
}
