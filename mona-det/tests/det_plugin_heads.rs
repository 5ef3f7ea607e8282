//! A region proposal head and RoI-stage box and mask heads of another crate: registered from
//! this test (as a plugin would be), chosen by `type` in the shipped Cascade Mask R-CNN demo
//! config, with their own field names as parameter keys, trained and decoded by the RPN's and
//! the stages' logic. (The single-stage head path is the example plugin's
//! `SharedTowerRetinaHead`.)

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use mona_core::config::Config;
use mona_core::nn::{Conv2d, Linear};
use mona_core::ops::resize::bilinear;
use mona_core::params::param_infos;
use mona_core::runner::TrainModel;
use mona_data::sample_rng;
use mona_det::CascadeRcnn;
use mona_det::detector::Detector;
use mona_det::heads::{
    AnchorHeadModule, DenseHead, DenseHeadArgs, DenseHeadBuilder, DenseHeadEntry, DenseRole,
    LevelOutputs, ProposalHead, proposal_head_parts,
};
use mona_det::roi::{
    BBoxHead, BBoxHeadConfig, BBoxHeadEntry, BBoxHeadError, BBoxHeadLogic, FcnMaskHeadConfig,
    MaskHead, MaskHeadEntry, MaskHeadError, MaskLossSettings, RoiBBoxHeadModule, RoiMaskHeadModule,
};
use mona_det::task::{build_model, collate};

/// Two linear layers on the flattened RoI features.
#[derive(Module, Debug)]
struct LinearBBoxHead {
    fc_cls: Linear,
    fc_reg: Linear,
}

impl RoiBBoxHeadModule for LinearBBoxHead {
    fn forward(&self, x: Tensor<4>, _training: bool) -> (Tensor<2>, Tensor<2>) {
        let [n, c, h, w] = x.dims();
        let x: Tensor<2> = x.reshape([n, c * h * w]);
        (self.fc_cls.forward(x.clone()), self.fc_reg.forward(x))
    }
}

fn build_linear(
    cfg: &BBoxHeadConfig,
    device: &Device,
) -> Result<(BBoxHead, BBoxHeadLogic), BBoxHeadError> {
    let [h, w] = cfg.roi_feat_size.hw();
    let d = cfg.in_channels * h * w;
    let reg = if cfg.reg_class_agnostic {
        4
    } else {
        4 * cfg.num_classes
    };
    let head = LinearBBoxHead {
        fc_cls: Linear::normal(d, cfg.num_classes + 1, 0.01, device),
        fc_reg: Linear::normal(d, reg, 0.001, device),
    };
    let head = BBoxHead::plugin(head).expect("rank 2 parameters");
    Ok((head, BBoxHeadLogic::for_plugin_head(cfg)))
}

/// A 1×1 conv to the class logits, upsampled ×2 to the mask target size.
#[derive(Module, Debug)]
struct TinyMaskHead {
    conv_logits: Conv2d,
}

impl RoiMaskHeadModule for TinyMaskHead {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, _, h, w] = x.dims();
        let y = self.conv_logits.forward(x);
        if n == 0 {
            let [_, c, _, _] = y.dims();
            return Tensor::zeros([0, c, 2 * h, 2 * w], &y.device());
        }
        bilinear(y, [2 * h, 2 * w])
    }
}

fn build_tiny_mask(cfg: &FcnMaskHeadConfig, device: &Device) -> Result<MaskHead, MaskHeadError> {
    let c = if cfg.class_agnostic {
        1
    } else {
        cfg.num_classes
    };
    let head = TinyMaskHead {
        conv_logits: Conv2d::torch_default(cfg.in_channels, c, 1, 1, 0, 1, true, device),
    };
    let loss = MaskLossSettings {
        num_classes: cfg.num_classes,
        class_agnostic: cfg.class_agnostic,
        loss_weight: cfg.loss_mask.loss_weight,
    };
    Ok(MaskHead::plugin(head, loss).expect("rank 4 parameters"))
}

/// 1×1 convs straight from the neck to the objectness logits and box deltas.
#[derive(Module, Debug)]
struct TinyRpnHead {
    rpn_cls: Conv2d,
    rpn_reg: Conv2d,
}

impl AnchorHeadModule for TinyRpnHead {
    fn forward(&self, feats: &[Tensor<4>]) -> LevelOutputs {
        feats
            .iter()
            .map(|x| {
                (
                    self.rpn_cls.forward(x.clone()),
                    self.rpn_reg.forward(x.clone()),
                )
            })
            .unzip()
    }
}

fn build_tiny_rpn(
    args: &DenseHeadArgs<'_, '_>,
) -> Result<DenseHead, mona_core::registry::BuildError> {
    let parts = proposal_head_parts(args, &[])?;
    let (c, a, device) = (parts.cfg.in_channels, parts.num_anchors, args.device);
    let head = TinyRpnHead {
        rpn_cls: Conv2d::torch_default(c, a, 1, 1, 0, 1, true, device),
        rpn_reg: Conv2d::torch_default(c, 4 * a, 1, 1, 0, 1, true, device),
    };
    let head = ProposalHead::plugin(head).expect("rank 4 parameters");
    Ok(DenseHead::Proposal(Box::new(head), Box::new(parts.logic)))
}

inventory::submit! {
    DenseHeadEntry::new("TinyRPNHead", DenseHeadBuilder { role: DenseRole::Proposal, build: build_tiny_rpn })
}
inventory::submit! { BBoxHeadEntry::new("LinearBBoxHead", build_linear) }
inventory::submit! { MaskHeadEntry::new("TinyMaskHead", build_tiny_mask) }

fn config(extra: &[&str]) -> Config {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    common::demo_config("mask_demo_swin_mona_cascade", "mask-demo", &extra)
}

#[test]
fn plugin_rpn_box_and_mask_heads_train_and_predict_in_a_cascade() {
    let cfg = config(&[
        "model.rpn_head.type=TinyRPNHead",
        "model.roi_head.bbox_head.1.type=LinearBBoxHead",
        "model.roi_head.mask_head.type=TinyMaskHead",
    ]);
    let device = Device::flex().autodiff();
    let model: CascadeRcnn = build_model(&cfg, &device).unwrap_or_else(|e| panic!("{e}"));

    let keys: Vec<String> = param_infos(&model).into_iter().map(|p| p.key).collect();
    for key in [
        "rpn_head.rpn_cls.weight",
        "rpn_head.rpn_reg.bias",
        "roi_head.bbox_head.0.shared_convs.0.conv.weight",
        "roi_head.bbox_head.1.fc_cls.weight",
        "roi_head.bbox_head.1.fc_reg.bias",
        "roi_head.bbox_head.2.fc_cls.weight",
        "roi_head.mask_head.0.conv_logits.weight",
        "roi_head.mask_head.2.conv_logits.bias",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing");
    }
    assert!(!keys.iter().any(|k| k.starts_with("rpn_head.rpn_conv")));
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("roi_head.bbox_head.1.shared"))
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("roi_head.mask_head.0.convs"))
    );

    let train = mona_data::build_dataset(&cfg.node("data.train").unwrap()).unwrap();
    let samples: Vec<_> = (0..2)
        .map(|i| train.load(i, &mut sample_rng(0, 0, i as u64)).unwrap())
        .collect();
    let batch = collate(&samples, &device).unwrap();
    let losses = TrainModel::losses(&model, &batch, true).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = losses.parts.iter().map(|(k, _)| k.as_str()).collect();
    for k in [
        "loss_rpn_cls",
        "loss_rpn_bbox",
        "s1.loss_cls",
        "s1.loss_bbox",
        "s0.loss_mask",
        "s2.loss_mask",
    ] {
        assert!(names.contains(&k), "no {k} in {names:?}");
    }
    let total: f32 = losses.total.clone().into_scalar::<f32>();
    assert!(total.is_finite() && total > 0.0, "{total}");
    // The plugin layers receive gradients.
    let grads = losses.total.backward();
    let head = match &model.roi_head.bbox_head[1] {
        BBoxHead::Plugin(h) => h,
        BBoxHead::ConvFc(_) => panic!("stage 1 is the plugin's"),
    };
    let mut found = 0;
    head.visit(&mut GradCheck {
        grads: &grads,
        found: &mut found,
    });
    assert_eq!(found, 4, "fc_cls and fc_reg weight and bias have gradients");

    let valid = model.valid();
    let dets = Detector::predict(&valid, &collate(&samples[..1], &Device::flex()).unwrap())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dets.len(), 1);
    assert_eq!(dets[0].masks.len(), dets[0].bboxes.len());
}

/// Counts float parameters with a gradient.
struct GradCheck<'a> {
    grads: &'a burn::tensor::Gradients,
    found: &'a mut usize,
}

impl burn::module::ModuleVisitor for GradCheck<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if param.val().grad(self.grads).is_some() {
            *self.found += 1;
        }
    }
}

#[test]
fn a_misspelt_plugin_stage_head_names_the_registered_ones() {
    let cfg = config(&["model.roi_head.bbox_head.1.type=LinearBoxHead"]);
    let err = build_model::<CascadeRcnn>(&cfg, &Device::flex()).expect_err("unknown type");
    let message = err.to_string();
    assert!(
        message.contains("model.roi_head.bbox_head.1.type: unknown bbox head type \"LinearBoxHead\" (did you mean LinearBBoxHead?)"),
        "{message}"
    );
}
