//! `SharedTowerRetinaHead`: a single-stage detection head registered from outside the core.
//!
//! RetinaHead runs two conv towers per level, one for classification and one for box
//! regression. This head runs one tower of `shared_convs` 3×3 convs (each followed by ReLU)
//! and branches only at the two output convs, about half RetinaHead's tower cost. Everything
//! else is RetinaNet's: the anchors, the coder, the assigner, the focal and L1 losses and the
//! post-processing come from the same config keys as RetinaHead's, read by
//! [`mona_det::heads::anchor_head_parts`]. Parameter keys: `shared_convs.{i}.conv.{weight,bias}`,
//! `retina_cls.{weight,bias}`, `retina_reg.{weight,bias}`.
//!
//! ```toml
//! [model.bbox_head]
//! type = "SharedTowerRetinaHead"
//! shared_convs = 2        # this head's own key (default 2)
//! num_classes = 1
//! in_channels = 32
//! feat_channels = 32
//! anchor_generator = { ... }   # and bbox_coder, loss_cls, loss_bbox: RetinaHead's keys
//! ```

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use mona_core::nn::Conv2d;
use mona_core::registry::BuildError;
use mona_det::fpn::ConvModule;
use mona_det::heads::{
    AnchorHeadModule, DenseHead, DenseHeadArgs, DenseHeadBuilder, DenseHeadEntry, DenseRole,
    LevelOutputs, SingleStageHead, anchor_head_parts,
};
use mona_det::retina::{bias_init_with_prob, conv_tower};

/// The registered name (`[model.bbox_head] type = "SharedTowerRetinaHead"`).
pub const NAME: &str = "SharedTowerRetinaHead";

/// The head's own config key.
const OWN_KEYS: &[&str] = &["shared_convs"];

/// One conv tower shared by the classification and regression outputs.
#[derive(Module, Debug)]
pub struct SharedTowerRetinaHead {
    pub shared_convs: Vec<ConvModule>,
    pub retina_cls: Conv2d,
    pub retina_reg: Conv2d,
}

impl AnchorHeadModule for SharedTowerRetinaHead {
    fn forward(&self, feats: &[Tensor<4>]) -> LevelOutputs {
        feats
            .iter()
            .map(|x| {
                let mut t = x.clone();
                for conv in &self.shared_convs {
                    t = relu(conv.forward(t));
                }
                (
                    self.retina_cls.forward(t.clone()),
                    self.retina_reg.forward(t),
                )
            })
            .unzip()
    }
}

fn build(args: &DenseHeadArgs<'_, '_>) -> Result<DenseHead, BuildError> {
    let shared_convs: usize = args.node.extract_field("shared_convs")?.unwrap_or(2);
    let parts = anchor_head_parts(args, OWN_KEYS)?;
    let (cfg, a, device) = (&parts.cfg, parts.num_anchors, args.device);
    // RetinaHead's initialisation: N(0, 0.01²) convs, the class bias at prior 0.01.
    let tower = conv_tower(cfg.in_channels, cfg.feat_channels, shared_convs, device);
    let last = if shared_convs == 0 {
        cfg.in_channels
    } else {
        cfg.feat_channels
    };
    let prior = bias_init_with_prob(0.01);
    let head = SharedTowerRetinaHead {
        shared_convs: tower,
        retina_cls: ConvModule::normal(last, a * cfg.num_classes, 0.01, prior, device).conv,
        retina_reg: ConvModule::normal(last, a * 4, 0.01, 0.0, device).conv,
    };
    let head = SingleStageHead::plugin(head)
        .map_err(|e| BuildError::invalid(args.node, None, e.to_string()))?;
    Ok(DenseHead::SingleStage(
        Box::new(head),
        Box::new(parts.logic),
    ))
}

inventory::submit! {
    DenseHeadEntry::new(NAME, DenseHeadBuilder { role: DenseRole::SingleStage, build })
}

/// Keeps this module's registration in the final binary.
#[inline(never)]
pub fn link() {
    std::hint::black_box(NAME);
}
