//! `--show-dir` drawings: boxes with `class|score` labels and instance masks over the
//! original image, as mmdet's `show_result`.

use std::path::{Path, PathBuf};

use image::{GrayImage, Rgb};

use crate::error::DetError;
use crate::retina::Detections;

/// mmdet's `score_thr` of `show_result` (boxes below it are not drawn).
pub const SHOW_SCORE_THR: f32 = 0.3;

/// A fixed colour per class.
fn class_color(label: usize) -> Rgb<u8> {
    let mut h = (label as u32 + 1).wrapping_mul(2_654_435_761);
    h ^= h >> 15;
    Rgb([
        (h & 0xff) as u8 | 0x40,
        ((h >> 8) & 0xff) as u8 | 0x40,
        ((h >> 16) & 0xff) as u8 | 0x40,
    ])
}

/// mmdet `show_result`: the original image with every box scoring at least `score_thr`
/// (mmdet's default: [`SHOW_SCORE_THR`]) and its `class|score` label, written to `dir/<name>.png`; instance
/// masks are blended in at half opacity in the class colour (mmdet's `mask_color` blend).
pub fn draw_detections(
    dir: &Path,
    image: &Path,
    name: &str,
    dets: &Detections,
    classes: &[String],
    score_thr: f32,
) -> Result<PathBuf, DetError> {
    let mut img = mona_data::read_image(image)?;
    for (i, ((b, &s), &l)) in dets
        .bboxes
        .iter()
        .zip(&dets.scores)
        .zip(&dets.labels)
        .enumerate()
    {
        if s < score_thr {
            continue;
        }
        let color = class_color(l);
        if let Some(mask) = dets.masks.get(i) {
            blend_mask(&mut img, mask, color);
        }
        let ib = [
            b[0].round() as i64,
            b[1].round() as i64,
            b[2].round() as i64,
            b[3].round() as i64,
        ];
        mona_data::draw::stroke_box(&mut img, ib, 1, color);
        let class = classes.get(l).map_or("?", String::as_str);
        mona_data::draw::draw_label(
            &mut img,
            ib[0],
            ib[1],
            &format!("{class}|{s:.2}"),
            color,
            Rgb([0, 0, 0]),
        );
    }
    let stem = Path::new(name)
        .with_extension("")
        .to_string_lossy()
        .replace('/', "_");
    let path = dir.join(format!("{stem}.png"));
    std::fs::create_dir_all(dir).map_err(|source| DetError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    img.save(&path).map_err(|source| DetError::Encode {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Blends `color` at half opacity into the pixels of `img` where `mask` is set.
fn blend_mask(img: &mut image::RgbImage, mask: &GrayImage, color: Rgb<u8>) {
    let (w, h) = (
        img.width().min(mask.width()),
        img.height().min(mask.height()),
    );
    for y in 0..h {
        for x in 0..w {
            if mask.get_pixel(x, y).0[0] != 0 {
                let p = img.get_pixel_mut(x, y);
                for c in 0..3 {
                    p.0[c] = ((p.0[c] as u16 + color.0[c] as u16) / 2) as u8;
                }
            }
        }
    }
}
