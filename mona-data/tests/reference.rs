//! Bit-exact agreement with the libraries mmcv calls: `cv2.resize` (INTER_LINEAR,
//! INTER_NEAREST), `PIL.Image.resize` (BILINEAR, NEAREST) and mmcv's `imnormalize`.
//!
//! `fixtures/resize_reference.txt` was written by `fixtures/gen_resize_reference.py` with
//! opencv-python-headless 4.10 and Pillow 10.4 (OpenCV 5.0 and Pillow 13 give the same bytes).
//! Sizes cover up- and downscaling, an exact halving (OpenCV's area fast path), row lengths
//! that are not multiples of 16, and one and three channels.

use image::{GrayImage, RgbImage};
use mona_data::ops::{Backend, Interpolation, resize};
use mona_data::rng::DataRng;
use mona_data::transforms::Normalize;
use mona_data::{Image, Results, Transform};
use rand::SeedableRng;

/// The generator's input: pixel (x, y, c) = (37x + 91y + 53c + (xy mod 7) * 11) mod 256.
fn source(w: u32, h: u32, cn: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for y in 0..h {
        for x in 0..w {
            for c in 0..cn {
                v.push(((x * 37 + y * 91 + c * 53 + (x * y) % 7 * 11) % 256) as u8);
            }
        }
    }
    v
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn resize_and_normalize_match_opencv_and_pillow() {
    let text = include_str!("fixtures/resize_reference.txt");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        let n = |i: usize| f[i].parse::<u32>().unwrap();
        let (sw, sh, dw, dh, cn) = (n(1), n(2), n(3), n(4), n(5));
        let want = hex(f[6]);
        let src = source(sw, sh, cn);
        if f[0] == "normalize" {
            let mut r = Results::new("ref");
            r.img = Image::U8(RgbImage::from_raw(sw, sh, src).unwrap());
            let norm = Normalize::new([123.675, 116.28, 103.53], [58.395, 57.12, 57.375], true);
            let out = norm.apply(r, &mut DataRng::seed_from_u64(0)).unwrap();
            let Image::F32 { data, .. } = out.img else {
                panic!("not normalised")
            };
            let got: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            assert_eq!(got, want, "normalize");
            checked += 1;
            continue;
        }
        let (interp, backend) = match f[0] {
            "cv2_linear" => (Interpolation::Bilinear, Backend::Cv2),
            "cv2_nearest" => (Interpolation::Nearest, Backend::Cv2),
            "pil_bilinear" => (Interpolation::Bilinear, Backend::Pillow),
            "pil_nearest" => (Interpolation::Nearest, Backend::Pillow),
            other => panic!("unknown method {other}"),
        };
        let got = if cn == 3 {
            resize(
                &RgbImage::from_raw(sw, sh, src).unwrap(),
                dw,
                dh,
                interp,
                backend,
            )
            .into_raw()
        } else {
            resize(
                &GrayImage::from_raw(sw, sh, src).unwrap(),
                dw,
                dh,
                interp,
                backend,
            )
            .into_raw()
        };
        let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(got.len(), want.len(), "{line:.40}");
        assert_eq!(
            differ, 0,
            "{} {sw}x{sh} -> {dw}x{dh} c{cn}: {differ} values differ",
            f[0]
        );
        checked += 1;
    }
    assert_eq!(checked, 29);
}
