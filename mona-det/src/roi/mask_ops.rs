//! Host-side mask code around [`super::mask_head`]: the training targets (mmdet 2.x
//! `mmdet/core/mask/mask_target.py` + `BitmapMasks.crop_and_resize`), the test-time paste
//! (`FCNMaskHead.get_seg_masks` / `_do_paste_mask`) and the COCO RLE of a result mask
//! (pycocotools `encode` of a Fortran-order mask, as mmdet's `CocoDataset._segm2json`).
//!
//! All of it works on plain `f32` / `u8` buffers: none of it is differentiated (mmdet builds
//! the targets on detached proposals and pastes after `sigmoid` at test time), and the
//! bitmaps are image-sized, which is cheaper to walk on the host than to upload.

use crate::ops::boxes::Box4;
use hotcoco::Segmentation;
use image::GrayImage;

use crate::sampler::SamplingResult;

/// Why a mask operation cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MaskOpsError {
    #[error("mask_size must be positive")]
    MaskSize,
    #[error("{what}: {got} values, expected {expected}")]
    Length {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("positive RoI {roi} is assigned to gt {index} but the image has {num_gts} gt masks")]
    GtIndex {
        roi: usize,
        index: usize,
        num_gts: usize,
    },
    #[error("gt mask {index} is {got:?} (w, h) but gt mask 0 is {expected:?}")]
    GtShape {
        index: usize,
        got: (u32, u32),
        expected: (u32, u32),
    },
    #[error("{0} images of sampling results but {1} images of gt masks")]
    Batch(usize, usize),
    #[error("mask_thr_binary {0} must be >= 0 (mmdet's uint8 debug output is not implemented)")]
    Threshold(f32),
    #[error("scale_factor {0:?} must be positive and finite")]
    ScaleFactor([f32; 4]),
    #[error("image size {0:?} does not fit a bitmap (u32 sides)")]
    ImageSize((usize, usize)),
    #[error("RLE encoding: {0}")]
    Rle(String),
}

// ---------------------------------------------------------------------------------------
// Training targets
// ---------------------------------------------------------------------------------------

/// One axis of mmcv's `bilinear_interpolate` (`roi_align_kernel.cuh`; the CPU `pre_calc` is
/// the same arithmetic): the sample coordinate `v` on an axis of `size` pixels →
/// `(low, high, l, h)` with `l = v − low`, `h = 1 − l`, or `None` when the sample is outside
/// (`v < −1 ∨ v > size`; mmcv's test is per axis, so the 2-D test is the conjunction).
/// mmcv's 2-D weights are then `w1 = hy·hx, w2 = hy·lx, w3 = ly·hx, w4 = ly·lx`.
fn axis_sample(v: f32, size: usize) -> Option<(usize, usize, f32, f32)> {
    let mut v = v;
    if v < -1.0 || v > size as f32 {
        return None;
    }
    if v <= 0.0 {
        v = 0.0;
    }
    let mut low = v as usize;
    let high;
    if low >= size - 1 {
        low = size - 1;
        high = low;
        v = low as f32;
    } else {
        high = low + 1;
    }
    let l = v - low as f32;
    Some((low, high, l, 1.0 - l))
}

/// The samples of one axis of an aligned, scale-1 RoI, bin by bin: `(start, end)` of the
/// RoI in pixels, `out` bins, `grid` samples per bin (mmcv's position formula
/// `start + p·bin + (i + ½)·bin / grid`, in its operation order).
fn axis_samples(
    start: f32,
    bin: f32,
    grid: i64,
    out: usize,
    size: usize,
) -> Vec<Option<(usize, usize, f32, f32)>> {
    let grid_n = grid.max(0) as usize;
    let mut v = Vec::with_capacity(out * grid_n);
    for p in 0..out {
        for i in 0..grid_n {
            let c = start + p as f32 * bin + (i as f32 + 0.5) * bin / grid as f32;
            v.push(axis_sample(c, size));
        }
    }
    v
}

/// mmcv `RoIAlign(out_size, spatial_scale=1.0, sampling_ratio=0, pool_mode='avg',
/// aligned=True)` of one RoI on a one-channel `(h, w)` map whose pixel `i` reads
/// `value(map[i])`, in `f32` with mmcv's operation order: per sample `w1·v1 + w2·v2 + w3·v3
/// + w4·v4`, summed over the bin's samples (rows outer), then `/ count`.
fn roi_align_by<T: Copy>(
    map: &[T],
    value: impl Fn(T) -> f32,
    (h, w): (usize, usize),
    roi: &Box4,
    out: usize,
) -> Vec<f32> {
    let mut res = vec![0f32; out * out];
    if h == 0 || w == 0 || out == 0 || map.len() != h * w {
        return res;
    }
    // spatial_scale 1, aligned: shift by half a pixel
    let (start_w, start_h) = (roi[0] - 0.5, roi[1] - 0.5);
    let (end_w, end_h) = (roi[2] - 0.5, roi[3] - 0.5);
    let (roi_w, roi_h) = (end_w - start_w, end_h - start_h);
    let (bin_h, bin_w) = (roi_h / out as f32, roi_w / out as f32);
    let grid_h = (roi_h / out as f32).ceil() as i64;
    let grid_w = (roi_w / out as f32).ceil() as i64;
    let count = (grid_h * grid_w).max(1) as f32;
    let (gh, gw) = (grid_h.max(0) as usize, grid_w.max(0) as usize);
    let ys = axis_samples(start_h, bin_h, grid_h, out, h);
    let xs = axis_samples(start_w, bin_w, grid_w, out, w);
    // Loop order: bin rows outer, then each row sample across the whole bin row. Every bin
    // still sums its samples rows-outer / columns-inner (mmcv's order, so the same
    // rounding), but two map rows serve a whole bin row, and the column samples are
    // precomputed: ~2 ns per sample, and a RoI costs about one sample per pixel.
    // The valid column samples of every bin, and where each bin's run starts:
    let mut cols: Vec<(usize, usize, f32, f32)> = Vec::with_capacity(xs.len());
    let mut starts = Vec::with_capacity(out + 1);
    for pw in 0..out {
        starts.push(cols.len());
        cols.extend(xs[pw * gw..(pw + 1) * gw].iter().flatten());
    }
    starts.push(cols.len());
    let mut acc = vec![0f32; out];
    for ph in 0..out {
        acc.fill(0.0);
        for &(y_low, y_high, ly, hy) in ys[ph * gh..(ph + 1) * gh].iter().flatten() {
            let (r_low, r_high) = (&map[y_low * w..(y_low + 1) * w], &map[y_high * w..][..w]);
            for (pw, a) in acc.iter_mut().enumerate() {
                let mut sum = *a;
                for &(x_low, x_high, lx, hx) in &cols[starts[pw]..starts[pw + 1]] {
                    let (w1, w2, w3, w4) = (hy * hx, hy * lx, ly * hx, ly * lx);
                    sum += w1 * value(r_low[x_low])
                        + w2 * value(r_low[x_high])
                        + w3 * value(r_high[x_low])
                        + w4 * value(r_high[x_high]);
                }
                *a = sum;
            }
        }
        for (r, a) in res[ph * out..(ph + 1) * out].iter_mut().zip(&acc) {
            *r = a / count;
        }
    }
    res
}

/// [`roi_align_by`] on an `f32` map: mmcv's RoIAlign (aligned, scale 1, adaptive sampling,
/// avg) of one RoI to `out × out`.
///
/// Why a port of mmcv's kernel next to `crate::ops::roi_align` (which it is tested
/// against): the mask targets are binarised at `>= 0.5`, and a binary mask puts many bins
/// *exactly* on 0.5 (a RoI edge on a mask edge). The tensor op folds `1 / count` into
/// separable weights, which can round such a tie to the other side; this port rounds like
/// mmcv. It also runs on the host bitmaps without uploading them.
pub fn roi_align_single(map: &[f32], hw: (usize, usize), roi: &Box4, out: usize) -> Vec<f32> {
    roi_align_by(map, |v| v, hw, roi, out)
}

/// Samples (≈ RoI pixels) per image above which the targets are computed on several
/// threads: 128 positives of 600 px are 46 M samples, ~0.1 s on one core.
const PARALLEL_SAMPLES: f64 = 4e6;

/// mmdet 2.x `mask_target_single` for one image: each positive proposal is clipped to the
/// gt bitmap (`x` to `[0, width]`, `y` to `[0, height]`), its assigned gt bitmap is
/// RoIAligned over it (`BitmapMasks.crop_and_resize`: aligned, scale 1, adaptive sampling,
/// avg) to `mask_size × mask_size` and binarised at `>= 0.5`.
///
/// `gt_masks` are the image's gt bitmaps (one per gt box, all the same size: the padded
/// network input in mmdet 2.x, where `Pad` pads the masks too); any nonzero pixel is
/// foreground (mmdet's are 0/1). Returns `N·S·S` values of 0/1 in RoI order, row-major per
/// RoI.
pub fn mask_targets(
    pos_proposals: &[Box4],
    pos_assigned_gt_inds: &[usize],
    gt_masks: &[GrayImage],
    mask_size: usize,
) -> Result<Vec<f32>, MaskOpsError> {
    if mask_size == 0 {
        return Err(MaskOpsError::MaskSize);
    }
    if pos_assigned_gt_inds.len() != pos_proposals.len() {
        return Err(MaskOpsError::Length {
            what: "pos_assigned_gt_inds",
            got: pos_assigned_gt_inds.len(),
            expected: pos_proposals.len(),
        });
    }
    let s2 = mask_size * mask_size;
    if pos_proposals.is_empty() {
        return Ok(Vec::new());
    }
    let num_gts = gt_masks.len();
    if let Some((roi, &index)) = pos_assigned_gt_inds
        .iter()
        .enumerate()
        .find(|&(_, &g)| g >= num_gts)
    {
        return Err(MaskOpsError::GtIndex {
            roi,
            index,
            num_gts,
        });
    }
    let expected = gt_masks[0].dimensions();
    if let Some((index, m)) = gt_masks
        .iter()
        .enumerate()
        .find(|(_, m)| m.dimensions() != expected)
    {
        return Err(MaskOpsError::GtShape {
            index,
            got: m.dimensions(),
            expected,
        });
    }
    let (maxw, maxh) = (expected.0 as f32, expected.1 as f32);
    let hw = (expected.1 as usize, expected.0 as usize);
    let rois: Vec<Box4> = pos_proposals
        .iter()
        .map(|p| {
            [
                p[0].clamp(0.0, maxw),
                p[1].clamp(0.0, maxh),
                p[2].clamp(0.0, maxw),
                p[3].clamp(0.0, maxh),
            ]
        })
        .collect();
    let target = |roi: &Box4, g: usize, dst: &mut [f32]| {
        let fg = |v: u8| if v != 0 { 1.0f32 } else { 0.0 };
        let pooled = roi_align_by(gt_masks[g].as_raw(), fg, hw, roi, mask_size);
        for (d, v) in dst.iter_mut().zip(pooled) {
            *d = if v >= 0.5 { 1.0 } else { 0.0 };
        }
    };
    let mut out = vec![0f32; rois.len() * s2];
    let samples: f64 = rois
        .iter()
        .map(|r| ((r[2] - r[0]).max(1.0) * (r[3] - r[1]).max(1.0)) as f64)
        .sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads > 1 && samples > PARALLEL_SAMPLES {
        // contiguous RoI chunks, one per thread; each writes its own slice of the output
        let per = rois.len().div_ceil(threads);
        std::thread::scope(|scope| {
            for ((rs, gs), dst) in rois
                .chunks(per)
                .zip(pos_assigned_gt_inds.chunks(per))
                .zip(out.chunks_mut(per * s2))
            {
                let target = &target;
                scope.spawn(move || {
                    for ((roi, &g), d) in rs.iter().zip(gs).zip(dst.chunks_mut(s2)) {
                        target(roi, g, d);
                    }
                });
            }
        });
    } else {
        for ((roi, &g), d) in rois
            .iter()
            .zip(pos_assigned_gt_inds)
            .zip(out.chunks_mut(s2))
        {
            target(roi, g, d);
        }
    }
    Ok(out)
}

/// mmdet 2.x `FCNMaskHead.get_targets` → `mask_target`: [`mask_targets`] of every image,
/// concatenated in image order (the order of `bbox2roi` of the positives).
pub fn get_targets(
    sampling_results: &[SamplingResult],
    gt_masks: &[Vec<GrayImage>],
    mask_size: usize,
) -> Result<Vec<f32>, MaskOpsError> {
    if sampling_results.len() != gt_masks.len() {
        return Err(MaskOpsError::Batch(sampling_results.len(), gt_masks.len()));
    }
    let mut out = Vec::new();
    for (res, masks) in sampling_results.iter().zip(gt_masks) {
        out.extend(mask_targets(
            &res.pos_bboxes,
            &res.pos_assigned_gt_inds,
            masks,
            mask_size,
        )?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Test time
// ---------------------------------------------------------------------------------------

/// PyTorch `grid_sample(bilinear, padding_mode='zeros', align_corners=False)` of one
/// `(mh, mw)` map at normalised `(gx, gy)`: unnormalise `((g + 1)·size − 1) / 2`, then the
/// four corner weights and `nw + ne + sw + se` in ATen's order (its CPU form `(g + 1)·size/2 −
/// ½` and `1 − frac` weights round identically). Corners outside the map read 0.
fn grid_sample(map: &[f32], (mh, mw): (usize, usize), gx: f32, gy: f32) -> f32 {
    let ix = ((gx + 1.0) * mw as f32 - 1.0) / 2.0;
    let iy = ((gy + 1.0) * mh as f32 - 1.0) / 2.0;
    if !ix.is_finite() || !iy.is_finite() {
        return 0.0;
    }
    let (x_w, y_n) = (ix.floor(), iy.floor());
    let (x_e, y_s) = (x_w + 1.0, y_n + 1.0);
    let nw = (x_e - ix) * (y_s - iy);
    let ne = (ix - x_w) * (y_s - iy);
    let sw = (x_e - ix) * (iy - y_n);
    let se = (ix - x_w) * (iy - y_n);
    let at = |y: f32, x: f32| -> f32 {
        if y >= 0.0 && y < mh as f32 && x >= 0.0 && x < mw as f32 {
            map[y as usize * mw + x as usize]
        } else {
            0.0
        }
    };
    let mut out = 0f32;
    out += at(y_n, x_w) * nw;
    out += at(y_n, x_e) * ne;
    out += at(y_s, x_w) * sw;
    out += at(y_s, x_e) * se;
    out
}

/// `(arange(lo, hi) + 0.5 − b0) / (b1 − b0) · 2 − 1` in f32, `±inf → 0` (mmdet's fix-up for
/// zero-size boxes).
fn normalised_coords(lo: i64, hi: i64, b0: f32, b1: f32) -> Vec<f32> {
    (lo..hi)
        .map(|i| {
            let v = (i as f32 + 0.5 - b0) / (b1 - b0) * 2.0 - 1.0;
            if v.is_infinite() { 0.0 } else { v }
        })
        .collect()
}

/// mmdet 2.x `_do_paste_mask` of one detection (the CPU path: one box per chunk,
/// `skip_empty=True`) followed by `>= threshold`: the `(mh, mw)` probability map `probs` is
/// resampled onto the image pixels `[floor(x0) − 1, ceil(x1) + 1) × [floor(y0) − 1,
/// ceil(y1) + 1)` (clipped to the image) with `grid_sample`, every pixel centre `i + ½`
/// normalised to the box as `(i + ½ − x0) / (x1 − x0) · 2 − 1`; the rest of the image is 0.
/// (mmdet's GPU path samples the whole image; the extra pixels are more than a pixel
/// outside the box and sample below half of the border row, so they threshold to 0 too.)
/// Returns an `(img_w, img_h)` 0/1 bitmap.
pub fn paste_mask(
    probs: &[f32],
    (mh, mw): (usize, usize),
    bbox: &Box4,
    (img_h, img_w): (u32, u32),
    threshold: f32,
) -> GrayImage {
    let mut img = GrayImage::new(img_w, img_h);
    if probs.len() != mh * mw || mh == 0 || mw == 0 {
        return img;
    }
    let [x0, y0, x1, y1] = *bbox;
    // `torch.clamp(floor(min) − 1, min=0)`, `clamp(ceil(max) + 1, max=img)`; f32 → int32
    let to_int = |v: f32| -> i64 { v.clamp(i32::MIN as f32, i32::MAX as f32) as i64 };
    let x0_int = to_int((x0.floor() - 1.0).max(0.0));
    let y0_int = to_int((y0.floor() - 1.0).max(0.0));
    let x1_int = to_int((x1.ceil() + 1.0).min(img_w as f32));
    let y1_int = to_int((y1.ceil() + 1.0).min(img_h as f32));
    if x1_int <= x0_int || y1_int <= y0_int {
        return img;
    }
    let img_x = normalised_coords(x0_int, x1_int, x0, x1);
    let img_y = normalised_coords(y0_int, y1_int, y0, y1);
    for (yi, &gy) in img_y.iter().enumerate() {
        let y = (y0_int as usize + yi) as u32;
        for (xi, &gx) in img_x.iter().enumerate() {
            if grid_sample(probs, (mh, mw), gx, gy) >= threshold {
                img.put_pixel((x0_int as usize + xi) as u32, y, image::Luma([1]));
            }
        }
    }
    img
}

/// mmdet 2.x `FCNMaskHead.get_seg_masks` for one image, from *probabilities*: `mask_probs`
/// holds `N` maps of `mask_size²` values, each the (already sigmoid, and for the cascade
/// stage-averaged) mask of the detection's own label; `det_bboxes` are in network-input
/// pixels.
///
/// `rescale = true`: the output is `ori_shape` `(h, w)` and the boxes are divided by
/// `scale_factor` `[w, h, w, h]`. `rescale = false`: the output is `round(ori · scale)`
/// (numpy's round-half-even) and the boxes stay. Each detection is pasted by
/// [`paste_mask`] with `mask_thr_binary`. Returns one 0/1 bitmap per detection, in order
/// (mmdet groups them by label; the caller can, from its labels).
pub fn get_seg_masks(
    mask_probs: &[f32],
    mask_size: usize,
    det_bboxes: &[Box4],
    ori_shape: (usize, usize),
    scale_factor: [f32; 4],
    rescale: bool,
    mask_thr_binary: f32,
) -> Result<Vec<GrayImage>, MaskOpsError> {
    if mask_size == 0 {
        return Err(MaskOpsError::MaskSize);
    }
    let s2 = mask_size * mask_size;
    if mask_probs.len() != det_bboxes.len() * s2 {
        return Err(MaskOpsError::Length {
            what: "mask_probs",
            got: mask_probs.len(),
            expected: det_bboxes.len() * s2,
        });
    }
    if mask_thr_binary.is_nan() || mask_thr_binary < 0.0 {
        return Err(MaskOpsError::Threshold(mask_thr_binary));
    }
    if scale_factor.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
        return Err(MaskOpsError::ScaleFactor(scale_factor));
    }
    let (h, w, scale) = if rescale {
        (ori_shape.0 as f64, ori_shape.1 as f64, scale_factor)
    } else {
        (
            (ori_shape.0 as f64 * scale_factor[1] as f64).round_ties_even(),
            (ori_shape.1 as f64 * scale_factor[0] as f64).round_ties_even(),
            [1.0; 4],
        )
    };
    let side = |v: f64| (v <= u32::MAX as f64).then_some(v as u32);
    let (Some(img_h), Some(img_w)) = (side(h), side(w)) else {
        return Err(MaskOpsError::ImageSize((h as usize, w as usize)));
    };
    Ok(det_bboxes
        .iter()
        .zip(mask_probs.chunks_exact(s2))
        .map(|(b, probs)| {
            let b = [
                b[0] / scale[0],
                b[1] / scale[1],
                b[2] / scale[2],
                b[3] / scale[3],
            ];
            paste_mask(
                probs,
                (mask_size, mask_size),
                &b,
                (img_h, img_w),
                mask_thr_binary,
            )
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// COCO results
// ---------------------------------------------------------------------------------------

/// A bitmap (any nonzero pixel is foreground) as pycocotools' compressed RLE, what mmdet's
/// `_segm2json` stores: `mask_util.encode(np.array(mask[:, :, None], order='F'))`, counts
/// decoded to a string. COCO runs go down the columns, so the row-major image is transposed
/// to Fortran order first (hotcoco's `encode` takes column-major bytes).
pub fn encode_rle(mask: &GrayImage) -> Result<Segmentation, MaskOpsError> {
    let (w, h) = mask.dimensions();
    let raw = mask.as_raw();
    let (wu, hu) = (w as usize, h as usize);
    let mut fortran = vec![0u8; wu * hu];
    for y in 0..hu {
        for x in 0..wu {
            fortran[x * hu + y] = u8::from(raw[y * wu + x] != 0);
        }
    }
    let rle =
        hotcoco::mask::encode(&fortran, h, w).map_err(|e| MaskOpsError::Rle(e.to_string()))?;
    Ok(Segmentation::CompressedRle {
        size: [h, w],
        counts: hotcoco::mask::rle_to_string(&rle),
    })
}
