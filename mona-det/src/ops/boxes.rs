//! Axis-aligned box geometry on host `[x1, y1, x2, y2]` boxes, as mmdet's `bbox_overlaps`
//! (no `+1` in widths; the union / enclosing area is clamped to `eps = 1e-6`).

/// A box `[x1, y1, x2, y2]`.
pub type Box4 = [f32; 4];

/// What [`bbox_overlaps`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlapMode {
    /// Intersection over union.
    Iou,
    /// Intersection over the area of the first box ("intersection over foreground").
    Iof,
    /// Generalised IoU: `IoU − (enclosing − union) / enclosing`.
    Giou,
}

/// mmdet's epsilon of `bbox_overlaps`.
pub const OVERLAP_EPS: f32 = 1e-6;

/// `(x2 − x1) · (y2 − y1)`.
pub fn box_area(b: &Box4) -> f32 {
    (b[2] - b[0]) * (b[3] - b[1])
}

/// The overlap of two boxes under `mode`.
pub fn overlap(a: &Box4, b: &Box4, mode: OverlapMode) -> f32 {
    let area_a = box_area(a);
    let area_b = box_area(b);
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = match mode {
        OverlapMode::Iof => area_a,
        OverlapMode::Iou | OverlapMode::Giou => area_a + area_b - inter,
    }
    .max(OVERLAP_EPS);
    let iou = inter / union;
    if mode != OverlapMode::Giou {
        return iou;
    }
    let ew = (a[2].max(b[2]) - a[0].min(b[0])).max(0.0);
    let eh = (a[3].max(b[3]) - a[1].min(b[1])).max(0.0);
    let enclose = (ew * eh).max(OVERLAP_EPS);
    iou - (enclose - union) / enclose
}

/// mmdet `bbox_overlaps(a, b, mode)`: the `a.len() × b.len()` matrix, row-major.
pub fn bbox_overlaps(a: &[Box4], b: &[Box4], mode: OverlapMode) -> Vec<f32> {
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        out.extend(b.iter().map(|y| overlap(x, y, mode)));
    }
    out
}

/// Rows of a flat `[n·4]` slice as boxes (a trailing partial row is dropped).
pub fn boxes_from_flat(flat: &[f32]) -> Vec<Box4> {
    flat.chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_iof_giou_by_hand() {
        let a = [0.0, 0.0, 2.0, 2.0];
        let b = [1.0, 1.0, 3.0, 3.0];
        assert!((overlap(&a, &b, OverlapMode::Iou) - 1.0 / 7.0).abs() < 1e-6);
        assert!((overlap(&a, &b, OverlapMode::Iof) - 0.25).abs() < 1e-6);
        // enclosing 9, union 7: 1/7 − 2/9
        let g = overlap(&a, &b, OverlapMode::Giou);
        assert!((g - (1.0 / 7.0 - 2.0 / 9.0)).abs() < 1e-6);
        let far = [10.0, 10.0, 11.0, 11.0];
        assert_eq!(overlap(&a, &far, OverlapMode::Iou), 0.0);
        assert_eq!(box_area(&a), 4.0);
        assert_eq!(
            bbox_overlaps(&[a], &[a, far], OverlapMode::Iou),
            vec![1.0, 0.0]
        );
    }
}
