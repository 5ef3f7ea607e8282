//! What `train` and `test` need from a detector, so one task implementation serves every
//! architecture (`RetinaNet`, `CascadeRCNN`): build from the `model` node, say which
//! backbone method it tunes, check its `train_cfg`, and predict a collated batch.

use burn::tensor::Device;
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use mona_core::runner::{BoxError, TrainModel};
use mona_core::task::ModelPart;

use crate::batch::DetBatch;
use crate::retina::Detections;
use crate::tta::{AugView, NoAugTest};

/// A detector usable by [`crate::task`].
pub trait Detector: TrainModel<Batch = DetBatch> + Clone {
    /// The config `type` it registers under.
    const TYPE: &'static str;

    /// Builds the model of a `model` config node.
    fn from_config(node: &ConfigNode<'_>, device: &Device) -> Result<Self, BuildError>;

    /// The backbone's tuning method (`mona`, `lora`, ...), for checkpoints of trainable
    /// parameters.
    fn method_name(&self) -> String;

    /// The number of object classes it predicts, and the config key that sets it (checked
    /// against the datasets before training and testing).
    fn num_classes(&self) -> (usize, &'static str);

    /// The parts after the backbone (`neck`, heads), for `count-params`.
    fn parts(&self) -> Vec<ModelPart>;

    /// Whether training can run: `Err` names what the config lacks (e.g. `train_cfg`).
    /// Boxed, as the model's other errors: a detector of another crate has its own.
    fn check_train_cfg(&self) -> Result<(), BoxError>;

    /// Detections per image of `batch` in the network input's coordinates (mmdet
    /// `rescale=False`; the caller divides boxes by `scale_factor`). Instance masks, for
    /// detectors that predict them, are already pasted at the original image size.
    fn predict(&self, batch: &DetBatch) -> Result<Vec<Detections>, BoxError>;

    /// mmdet's `aug_test(rescale=True)`: the detections of one image seen through several
    /// views (each a one-image batch at its scale, flipped or not), merged, in the original
    /// image's coordinates. A detector without it refuses test-time augmentation.
    fn predict_aug(&self, views: &[AugView]) -> Result<Detections, BoxError> {
        let _ = views;
        Err(NoAugTest(Self::TYPE).into())
    }
}
