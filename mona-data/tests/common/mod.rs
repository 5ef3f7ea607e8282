//! Shared test helpers: tiny images on disk and configs from text.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use mona_core::config::Config;
use mona_data::rng::DataRng;
use rand::SeedableRng;

/// Writes a `w × h` PNG at `root/rel` whose pixel (x, y) is `f(x, y)`; returns its path.
pub fn write_png(
    root: &Path,
    rel: &str,
    w: u32,
    h: u32,
    f: impl Fn(u32, u32) -> [u8; 3],
) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_fn(w, h, |x, y| Rgb(f(x, y)))
        .save(&path)
        .unwrap();
    path
}

/// A pattern that makes every pixel distinguishable in small images.
pub fn pattern(x: u32, y: u32) -> [u8; 3] {
    [
        (x * 7 % 256) as u8,
        (y * 11 % 256) as u8,
        ((x + y) * 3 % 256) as u8,
    ]
}

/// A config parsed as if it were `configs/test.toml`.
pub fn config(text: &str) -> Config {
    Config::from_str_at(text, "configs/test.toml").unwrap()
}

pub fn rng(seed: u64) -> DataRng {
    DataRng::seed_from_u64(seed)
}

/// A TOML literal string for a path.
pub fn lit(path: &Path) -> String {
    format!("'{}'", path.display())
}
