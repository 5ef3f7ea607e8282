//! Detection's test-time augmentation, merged as mmdet 2.11 merges it: the test views of a
//! config (`MultiScaleFlipAug` scales, each maybe flipped), the geometry that maps boxes
//! between a view and the original image (`bbox_mapping`, `bbox_mapping_back`), and the
//! merge of a dense head's candidates (`aug_test_bboxes`) and of RPN proposals
//! (`merge_aug_proposals`). A detector runs its views in [`Detector::predict_aug`]; the RoI
//! head's merge (mean boxes, scores and masks) lives with the RoI head.
//!
//! One plain view (no flip, one scale) takes [`Detector::predict`], the path without
//! augmentation, so configs without test-time augmentation keep their exact numbers.

use burn::tensor::Device;
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use mona_data::transforms::{TtaMode, TtaView, build_tta_views};
use mona_data::{Pipeline, Results};

use crate::batch::{DetBatch, collate};
use crate::detector::Detector;
use crate::error::DetError;
use crate::ops::boxes::Box4;
use crate::ops::nms::{batched_nms, nms};
use crate::retina::Detections;

/// Where a view's image sits relative to the original: resized by `scale_factor`
/// (`[w, h, w, h]`) to `img_shape` (`(h, w)`, before padding), then flipped horizontally or
/// not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewGeometry {
    pub img_shape: (usize, usize),
    pub scale_factor: [f32; 4],
    pub flip: bool,
}

impl ViewGeometry {
    /// The geometry of the one image of `batch`, seen through a view that flipped it or not.
    pub fn of(batch: &DetBatch, flip: bool) -> Self {
        Self {
            img_shape: batch.metas[0].img_shape,
            scale_factor: batch.scale_factors[0],
            flip,
        }
    }

    /// mmdet's `bbox_flip` (horizontal): `x1' = w − x2`, `x2' = w − x1` in the view's width.
    fn flipped(&self, b: Box4) -> Box4 {
        let w = self.img_shape.1 as f32;
        [w - b[2], b[1], w - b[0], b[3]]
    }

    /// mmdet's `bbox_mapping_back`: a box of the view in the original image (flipped back,
    /// then divided by the scale factor).
    pub fn to_original(&self, b: Box4) -> Box4 {
        let b = if self.flip { self.flipped(b) } else { b };
        std::array::from_fn(|i| b[i] / self.scale_factor[i])
    }

    /// mmdet's `bbox_mapping`: a box of the original image in the view (scaled, then
    /// flipped).
    pub fn to_view(&self, b: Box4) -> Box4 {
        let b: Box4 = std::array::from_fn(|i| b[i] * self.scale_factor[i]);
        if self.flip { self.flipped(b) } else { b }
    }
}

/// One view of one image: the collated one-image batch, and whether the view flipped it.
pub struct AugView {
    pub batch: DetBatch,
    pub flip: bool,
}

impl AugView {
    pub fn geometry(&self) -> ViewGeometry {
        ViewGeometry::of(&self.batch, self.flip)
    }
}

/// mmdet 2.11 `aug_test_bboxes` after the head: each view's candidates (before NMS, in the
/// view's coordinates) mapped back to the original image and concatenated in view order,
/// then mmdet's `multiclass_nms` (class-aware NMS at `iou_threshold`, the first `max_per_img`
/// by score when `> 0`). The candidates already passed the head's `score_thr`.
pub fn merge_dense_candidates(
    views: Vec<(Detections, ViewGeometry)>,
    iou_threshold: f32,
    max_per_img: usize,
) -> Detections {
    let mut all = Detections::default();
    for (det, geometry) in views {
        all.bboxes
            .extend(det.bboxes.into_iter().map(|b| geometry.to_original(b)));
        all.scores.extend(det.scores);
        all.labels.extend(det.labels);
    }
    let mut keep = batched_nms(&all.bboxes, &all.scores, &all.labels, iou_threshold);
    if max_per_img > 0 {
        keep.truncate(max_per_img);
    }
    Detections {
        bboxes: keep.iter().map(|&i| all.bboxes[i]).collect(),
        scores: keep.iter().map(|&i| all.scores[i]).collect(),
        labels: keep.iter().map(|&i| all.labels[i]).collect(),
        masks: Vec::new(),
    }
}

/// mmdet 2.11 `merge_aug_proposals`: each view's proposals (boxes and scores, view
/// coordinates) mapped back to the original image, concatenated, NMS at `iou_threshold`
/// (class-agnostic), the best `max_num` by score. Returns the boxes, in the original image.
pub fn merge_proposals(
    views: Vec<(Vec<Box4>, Vec<f32>, ViewGeometry)>,
    iou_threshold: f32,
    max_num: usize,
) -> Vec<Box4> {
    let (mut boxes, mut scores) = (Vec::new(), Vec::new());
    for (b, s, geometry) in views {
        boxes.extend(b.into_iter().map(|b| geometry.to_original(b)));
        scores.extend(s);
    }
    let mut keep = nms(&boxes, &scores, iou_threshold);
    keep.truncate(max_num);
    keep.iter().map(|&i| boxes[i]).collect()
}

/// A detector without test-time augmentation, asked for it.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0} has no test-time augmentation (several scales or flip in MultiScaleFlipAug, or --aug-test); test it with one scale and flip = false"
)]
pub struct NoAugTest(pub &'static str);

/// The views a detector is tested through: the test pipeline's `MultiScaleFlipAug` scales and
/// flips (see [`TtaMode`]).
pub struct DetTestViews {
    views: Vec<TtaView>,
}

impl DetTestViews {
    /// The views of the test pipeline `node`: what the config asks ([`TtaMode::Config`]) or,
    /// for `--aug-test`, its scales each also flipped ([`TtaMode::Flip`]).
    pub fn build(node: &ConfigNode<'_>, mode: TtaMode) -> Result<Self, BuildError> {
        Ok(Self {
            views: build_tta_views(node, mode)?,
        })
    }

    /// How many views each image is seen through.
    pub fn len(&self) -> usize {
        self.views.len()
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Whether the views are one plain view: prediction without augmentation.
    pub fn is_plain(&self) -> bool {
        matches!(self.views.as_slice(), [v] if !v.flip)
    }

    /// The detections of one image in its own pixel coordinates (mmdet `rescale=True`):
    /// `load` runs a view's pipeline on the image; one plain view is [`predict_sample`], more
    /// are merged by [`Detector::predict_aug`].
    pub fn predict<M: Detector>(
        &self,
        model: &M,
        mut load: impl FnMut(&Pipeline) -> Result<Results, mona_data::DataError>,
        device: &Device,
    ) -> Result<Detections, DetError> {
        if self.is_plain() {
            return predict_sample(model, load(&self.views[0].pipeline)?, device);
        }
        let views = self
            .views
            .iter()
            .map(|v| {
                let r = load(&v.pipeline)?;
                Ok(AugView {
                    batch: collate(std::slice::from_ref(&r), device)?,
                    flip: v.flip,
                })
            })
            .collect::<Result<Vec<_>, DetError>>()?;
        model.predict_aug(&views).map_err(DetError::Model)
    }
}

/// The detections of one sample after the test pipeline, in the original image's
/// coordinates (mmdet `rescale=True`: boxes divided by the resize's scale factor).
pub fn predict_sample<M: Detector>(
    model: &M,
    r: Results,
    device: &Device,
) -> Result<Detections, DetError> {
    let b = collate(std::slice::from_ref(&r), device)?;
    let mut dets = model
        .predict(&b)
        .map_err(DetError::Model)?
        .pop()
        .unwrap_or_default();
    let f = b.scale_factors[0];
    for bb in &mut dets.bboxes {
        for (v, s) in bb.iter_mut().zip(f) {
            *v /= s;
        }
    }
    Ok(dets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(flip: bool) -> ViewGeometry {
        ViewGeometry {
            img_shape: (60, 100),
            scale_factor: [2.0, 3.0, 2.0, 3.0],
            flip,
        }
    }

    #[test]
    fn mapping_to_a_view_and_back_is_the_identity() {
        let b = [5.0, 4.0, 20.0, 10.0];
        for flip in [false, true] {
            let g = geometry(flip);
            assert_eq!(g.to_original(g.to_view(b)), b);
        }
        // scaled by (2, 3), then flipped in the view's width of 100
        assert_eq!(geometry(true).to_view(b), [60.0, 12.0, 90.0, 30.0]);
        assert_eq!(geometry(false).to_view(b), [10.0, 12.0, 40.0, 30.0]);
    }

    #[test]
    fn dense_candidates_of_a_flipped_view_merge_with_the_plain_ones() {
        let plain = Detections {
            bboxes: vec![[10.0, 12.0, 40.0, 30.0], [0.0, 0.0, 6.0, 6.0]],
            scores: vec![0.6, 0.3],
            labels: vec![1, 0],
            masks: Vec::new(),
        };
        // the same object seen flipped, a little more confident; a second class at the
        // same place is kept by class-aware NMS
        let flipped = Detections {
            bboxes: vec![[60.0, 12.0, 90.0, 30.0], [60.0, 12.0, 90.0, 30.0]],
            scores: vec![0.7, 0.2],
            labels: vec![1, 2],
            masks: Vec::new(),
        };
        let merged = merge_dense_candidates(
            vec![(plain, geometry(false)), (flipped, geometry(true))],
            0.5,
            2,
        );
        assert_eq!(
            merged.bboxes,
            [[5.0, 4.0, 20.0, 10.0], [0.0, 0.0, 3.0, 2.0]]
        );
        assert_eq!(merged.scores, [0.7, 0.3]);
        assert_eq!(merged.labels, [1, 0]);
    }

    #[test]
    fn proposals_merge_by_nms_and_keep_the_best() {
        let views = vec![
            (vec![[10.0, 12.0, 40.0, 30.0]], vec![0.9], geometry(false)),
            (
                vec![[60.0, 12.0, 90.0, 30.0], [0.0, 0.0, 2.0, 3.0]],
                vec![0.95, 0.1],
                geometry(true),
            ),
        ];
        let merged = merge_proposals(views.clone(), 0.7, 10);
        assert_eq!(merged, [[5.0, 4.0, 20.0, 10.0], [49.0, 0.0, 50.0, 1.0]]);
        assert_eq!(merge_proposals(views, 0.7, 1).len(), 1);
    }
}
