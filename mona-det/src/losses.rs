//! Box regression losses on tensors (differentiable), as mmdet 2.x defines them.

use burn::tensor::Tensor;

/// mmdet's `giou_loss(pred, target, eps=1e-6)`: `1 − GIoU` per pair of aligned boxes
/// `(n, 4)` in `x1, y1, x2, y2` (no `+1`), with mmdet's `bbox_overlaps(is_aligned=True,
/// mode='giou')` clamps: overlap sides at 0, the union and the enclosing area at `eps`. The
/// Cascade R-CNN heads of the COCO config use it on decoded boxes (`reg_decoded_bbox`,
/// `loss_weight` 10); reduce and weight the returned `(n,)` tensor as the head needs.
pub fn giou_loss(pred: Tensor<2>, target: Tensor<2>, eps: f64) -> Tensor<1> {
    let [n, _] = pred.dims();
    let col = |t: &Tensor<2>, i: usize| t.clone().narrow(1, i, 1).reshape([n]);
    let (px1, py1, px2, py2) = (col(&pred, 0), col(&pred, 1), col(&pred, 2), col(&pred, 3));
    let (tx1, ty1, tx2, ty2) = (
        col(&target, 0),
        col(&target, 1),
        col(&target, 2),
        col(&target, 3),
    );
    let area_p = (px2.clone() - px1.clone()) * (py2.clone() - py1.clone());
    let area_t = (tx2.clone() - tx1.clone()) * (ty2.clone() - ty1.clone());
    let iw = (px2.clone().min_pair(tx2.clone()) - px1.clone().max_pair(tx1.clone())).clamp_min(0.0);
    let ih = (py2.clone().min_pair(ty2.clone()) - py1.clone().max_pair(ty1.clone())).clamp_min(0.0);
    let overlap = iw * ih;
    let union = (area_p + area_t - overlap.clone()).clamp_min(eps);
    let ious = overlap / union.clone();
    let ew = (px2.max_pair(tx2) - px1.min_pair(tx1)).clamp_min(0.0);
    let eh = (py2.max_pair(ty2) - py1.min_pair(ty1)).clamp_min(0.0);
    let enclose = (ew * eh).clamp_min(eps);
    let gious = ious - (enclose.clone() - union) / enclose;
    gious.neg() + 1.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::boxes::{OverlapMode, overlap};
    use burn::tensor::{Device, TensorData};

    fn boxes(v: &[[f32; 4]], device: &Device) -> Tensor<2> {
        let flat: Vec<f32> = v.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [v.len(), 4]), device)
    }

    #[test]
    fn matches_the_scalar_giou_and_its_gradient() {
        let device = Device::flex().autodiff();
        let pred = [
            [0.0, 0.0, 2.0, 2.0],
            [1.0, 1.0, 3.0, 5.0],
            [10.0, 10.0, 11.0, 11.0],
            [2.0, 3.0, 2.0, 8.0], // zero width
        ];
        let target = [
            [1.0, 1.0, 3.0, 3.0],
            [1.0, 1.0, 3.0, 5.0],
            [0.0, 0.0, 2.0, 2.0],
            [1.0, 2.0, 4.0, 6.0],
        ];
        let p = boxes(&pred, &device).require_grad();
        let loss = giou_loss(p.clone(), boxes(&target, &device), 1e-6);
        let got: Vec<f32> = loss
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        for (i, (a, b)) in pred.iter().zip(&target).enumerate() {
            let expected = 1.0 - overlap(a, b, OverlapMode::Giou);
            assert!(
                (got[i] - expected).abs() < 1e-6,
                "box {i}: {} vs {expected}",
                got[i]
            );
        }
        // Hand value: IoU 1/7, enclosing 9, union 7 → 1 − (1/7 − 2/9).
        assert!((got[0] - (1.0 - (1.0 / 7.0 - 2.0 / 9.0))).abs() < 1e-6);
        assert!(got[1].abs() < 1e-6, "identical boxes have zero loss");
        // Gradient of the sum against central differences (f32, h = 1e-2), away from the kinks
        // (identical boxes, zero width).
        let grads = loss.sum().backward();
        let g: Vec<f32> = p
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let cpu = Device::flex();
        let f = |v: &[[f32; 4]]| -> f32 {
            giou_loss(boxes(v, &cpu), boxes(&target, &cpu), 1e-6)
                .sum()
                .into_scalar::<f32>()
        };
        for i in [0, 2] {
            for j in 0..4 {
                let (mut up, mut down) = (pred, pred);
                up[i][j] += 1e-2;
                down[i][j] -= 1e-2;
                let numeric = (f(&up) - f(&down)) / 2e-2;
                assert!(
                    (g[i * 4 + j] - numeric).abs() < 2e-3,
                    "d/d pred[{i}][{j}]: {} vs {numeric}",
                    g[i * 4 + j]
                );
            }
        }
    }
}
