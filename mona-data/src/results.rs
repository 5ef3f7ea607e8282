//! `Results`: mmcv's `results` dict as a typed struct.
//!
//! mmcv pipelines pass a dict from transform to transform; every transform reads the keys it
//! needs and writes the ones it changes. A struct with named fields keeps that shape (one value
//! flows through the whole pipeline) while letting the compiler check the keys. Fields that only
//! segmentation or detection fill (`gt_seg`, `gt_bboxes`, `gt_labels`) live here from the start
//! so that every geometric transform keeps them aligned with the image.
//!
//! Channel order: 8-bit images are kept in **RGB** order, as decoded. mmcv keeps BGR until
//! `Normalize(to_rgb=True)`; the visible result is the same, and `Normalize(to_rgb=False)`
//! emits BGR planes to reproduce mmcv exactly (see `transforms::normalize`).

use std::path::PathBuf;

use image::{GrayImage, RgbImage};

use crate::error::DataError;
use crate::masks::MaskAnnotations;

/// The image of a sample at its current stage of the pipeline.
#[derive(Clone, PartialEq, Default)]
pub enum Image {
    /// Before `LoadImageFromFile`.
    #[default]
    NotLoaded,
    /// Decoded 8-bit RGB, height × width × 3 interleaved (before `Normalize`).
    U8(RgbImage),
    /// Normalised floats, planar CHW (after `Normalize`): `data[c * height * width + y * width + x]`.
    F32 {
        data: Vec<f32>,
        channels: usize,
        height: usize,
        width: usize,
    },
}

impl Image {
    /// `[height, width, channels]` (mmcv's `img.shape`); zeros before loading.
    pub fn shape(&self) -> [usize; 3] {
        match self {
            Image::NotLoaded => [0, 0, 0],
            Image::U8(img) => [img.height() as usize, img.width() as usize, 3],
            Image::F32 {
                channels,
                height,
                width,
                ..
            } => [*height, *width, *channels],
        }
    }

    /// A short description for error messages ("8-bit RGB 200x300").
    pub fn describe(&self) -> String {
        let [h, w, c] = self.shape();
        match self {
            Image::NotLoaded => "no image (LoadImageFromFile has not run)".to_string(),
            Image::U8(_) => format!("8-bit RGB image {w}x{h}"),
            Image::F32 { .. } => format!("normalised {c}-channel float image {w}x{h}"),
        }
    }
}

impl std::fmt::Debug for Image {
    /// Shapes only: pixel dumps of whole images make logs and test failures unreadable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Which axis a flip mirrored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlipDirection {
    /// Mirror left-right (columns reversed).
    Horizontal,
    /// Mirror top-bottom (rows reversed).
    Vertical,
}

/// One sample travelling through a pipeline.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Results {
    /// The image file (`data_prefix` joined with the annotation's relative path).
    pub path: PathBuf,
    /// The path as written in the annotation (mmcv's `ori_filename`), for outputs named after it.
    pub ori_filename: String,
    /// Index of the sample in its dataset.
    pub index: usize,
    /// The image.
    pub img: Image,
    /// `[h, w, c]` right after decoding.
    pub ori_shape: [usize; 3],
    /// `[h, w, c]` after the latest geometric transform (not counting `Pad`, as in mmdet:
    /// boxes are clipped to it and the padding holds no image).
    pub img_shape: [usize; 3],
    /// `[h, w, c]` after `Pad` (mmdet's `pad_shape`); `None` before padding. Detection heads
    /// mark anchors outside it invalid.
    pub pad_shape: Option<[usize; 3]>,
    /// mmdet's `scale_factor` `[w_scale, h_scale, w_scale, h_scale]` of the latest resize
    /// (new size / old size per axis); `None` when never resized (all ones). Detections are
    /// divided by it to return to the original image.
    pub scale_factor: Option<[f32; 4]>,
    /// Whether a flip was applied.
    pub flip: bool,
    /// The axis of the flip, when `flip` is true.
    pub flip_direction: Option<FlipDirection>,
    /// Classification label (0-based).
    pub gt_label: Option<usize>,
    /// Segmentation map, same height and width as `img`; geometric transforms use nearest.
    pub gt_seg: Option<GrayImage>,
    /// Detection boxes `[x1, y1, x2, y2]` in pixels of the current image.
    pub gt_bboxes: Vec<[f32; 4]>,
    /// Detection labels, one per box.
    pub gt_labels: Vec<usize>,
    /// Ignored boxes (VOC `difficult`, COCO `iscrowd`), transformed with the image like
    /// `gt_bboxes`.
    pub gt_bboxes_ignore: Vec<[f32; 4]>,
    /// Instance masks (mmdet `BitmapMasks`): one 0/1 bitmap per `gt_bboxes` entry, each the
    /// size of the current image; `None` unless `LoadAnnotations(with_mask = true)` ran.
    /// Geometric transforms resize them with nearest, flip them and pad them with 0.
    pub gt_masks: Option<Vec<GrayImage>>,
    /// The raw instance-mask annotations (mmdet's `ann_info['masks']`), one per `gt_bboxes`
    /// entry, put there by detection datasets that have them (COCO); `LoadAnnotations(with_mask
    /// = true)` rasterises them into `gt_masks` and clears this field.
    pub gt_mask_anns: Option<MaskAnnotations>,
}

impl Results {
    /// A sample whose image is still on disk at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Results {
            path: path.into(),
            ..Results::default()
        }
    }

    /// Takes the 8-bit image out (leaving [`Image::NotLoaded`]) for a transform that works on
    /// 8-bit pixels; an error naming the sample and the transform otherwise.
    pub fn take_u8(&mut self, transform: &'static str) -> Result<RgbImage, DataError> {
        match std::mem::take(&mut self.img) {
            Image::U8(img) => Ok(img),
            other => {
                let message = format!(
                    "expects an 8-bit image, found {}; put it after LoadImageFromFile and \
                     before Normalize",
                    other.describe()
                );
                self.img = other;
                Err(self.error(transform, message))
            }
        }
    }

    /// A [`DataError::Transform`] about this sample.
    pub fn error(&self, transform: &'static str, message: impl Into<String>) -> DataError {
        DataError::transform(self.path.clone(), transform, message)
    }

    /// Checks that every mask of `gt_masks`, when present, has the image's size (mmdet keeps
    /// `BitmapMasks` at the image's size through every transform; a mismatch means a transform
    /// left them behind).
    pub fn check_mask_sizes(&self, transform: &'static str) -> Result<(), DataError> {
        let [h, w, _] = self.img.shape();
        for (i, m) in self.gt_masks.iter().flatten().enumerate() {
            if (m.height() as usize, m.width() as usize) != (h, w) {
                return Err(self.error(
                    transform,
                    format!(
                        "gt_masks[{i}] is {}x{} but the image is {w}x{h}",
                        m.width(),
                        m.height()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks that `gt_seg`, when present, has the image's size (so geometric transforms can
    /// apply the same geometry to both).
    pub fn check_seg_size(&self, transform: &'static str) -> Result<(), DataError> {
        if let Some(seg) = &self.gt_seg {
            let [h, w, _] = self.img.shape();
            if (seg.height() as usize, seg.width() as usize) != (h, w) {
                return Err(self.error(
                    transform,
                    format!(
                        "gt_seg is {}x{} but the image is {w}x{h}",
                        seg.width(),
                        seg.height()
                    ),
                ));
            }
        }
        Ok(())
    }
}
