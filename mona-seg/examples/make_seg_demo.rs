//! Builds `data/seg-demo` (see its README): real Fashion-MNIST garments (data/fashion-mnist-mini,
//! MIT) composited onto crops of a real photograph (the Rust Embedded Book's `f3.jpg`,
//! MIT OR Apache-2.0). The label map is exactly the composite's mask: 0 background, 1 top
//! (T-shirt/top, Pullover, Shirt, Coat), 2 trouser, 3 bag.
//!
//!   cargo run --release -p mona-seg --example make_seg_demo -- <f3.jpg> <out dir>

use image::{GrayImage, Luma, RgbImage, imageops};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let photo = image::open(&args[1]).expect("photo").to_rgb8();
    let out = std::path::PathBuf::from(&args[2]);
    let fm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/fashion-mnist-mini");
    let groups: [(&str, &[&str], u8); 3] = [
        ("top", &["T-shirt_top", "Pullover", "Shirt", "Coat"], 1),
        ("trouser", &["Trouser"], 2),
        ("bag", &["Bag"], 3),
    ];
    let mut garments: Vec<(std::path::PathBuf, u8)> = Vec::new();
    for split in ["train", "test"] {
        let mut files: Vec<_> = std::fs::read_dir(fm.join("images").join(split))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            for (_, prefixes, label) in &groups {
                if prefixes.iter().any(|p| name.starts_with(&format!("{p}_"))) {
                    garments.push((f.clone(), *label));
                }
            }
        }
    }
    // A tiny deterministic LCG.
    let mut state: u64 = 0x9e3779b97f4a7c15;
    let mut next = move |n: u32| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as u32
    };
    let size = 64u32;
    for (split, count) in [("training", 48), ("validation", 16)] {
        std::fs::create_dir_all(out.join("images").join(split)).unwrap();
        std::fs::create_dir_all(out.join("annotations").join(split)).unwrap();
        for i in 0..count {
            // A random 160x160 window of the photo, scaled to 64x64.
            let x = next(photo.width() - 160);
            let y = next(photo.height() - 160);
            let crop = imageops::crop_imm(&photo, x, y, 160, 160).to_image();
            let mut img: RgbImage =
                imageops::resize(&crop, size, size, imageops::FilterType::Triangle);
            let mut label = GrayImage::from_pixel(size, size, Luma([0]));
            for _ in 0..2 {
                let (path, cls) = &garments[next(garments.len() as u32) as usize];
                let g = image::open(path).unwrap().to_luma8();
                let s = 28 + next(13);
                let g = imageops::resize(&g, s, s, imageops::FilterType::Nearest);
                let ox = next(size - s);
                let oy = next(size - s);
                for (gx, gy, p) in g.enumerate_pixels() {
                    let v = p.0[0];
                    if v > 24 {
                        img.put_pixel(ox + gx, oy + gy, image::Rgb([v, v, v]));
                        label.put_pixel(ox + gx, oy + gy, Luma([*cls]));
                    }
                }
            }
            img.save(out.join(format!("images/{split}/{i:03}.jpg")))
                .unwrap();
            label
                .save(out.join(format!("annotations/{split}/{i:03}.png")))
                .unwrap();
        }
    }
}
