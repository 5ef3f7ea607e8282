//! Crops and flips of planar (CHW) float images, so that flips and crops placed after
//! `Normalize` (as some mmseg/mmdet pipelines do) work too.

/// The `cw × ch` window at `(x, y)` of a `channels × height × width` image.
pub fn crop_planar(
    data: &[f32],
    (channels, height, width): (usize, usize, usize),
    (x, y): (usize, usize),
    (cw, ch): (usize, usize),
) -> Vec<f32> {
    debug_assert!(x + cw <= width && y + ch <= height);
    let mut out = Vec::with_capacity(channels * ch * cw);
    for c in 0..channels {
        let plane = &data[c * height * width..(c + 1) * height * width];
        for row in plane.chunks_exact(width).skip(y).take(ch) {
            out.extend_from_slice(&row[x..x + cw]);
        }
    }
    out
}

/// Mirrors a `channels × height × width` image in place; `horizontal` reverses columns.
pub fn flip_planar(
    data: &mut [f32],
    (_channels, height, width): (usize, usize, usize),
    horizontal: bool,
) {
    if width == 0 || height == 0 {
        return;
    }
    for plane in data.chunks_exact_mut(height * width) {
        if horizontal {
            for row in plane.chunks_exact_mut(width) {
                row.reverse();
            }
        } else {
            for y in 0..height / 2 {
                let (top, bottom) = plane.split_at_mut((height - 1 - y) * width);
                top[y * width..(y + 1) * width].swap_with_slice(&mut bottom[..width]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_and_crops() {
        // 1 channel, 2x3
        let mut d = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        flip_planar(&mut d, (1, 2, 3), true);
        assert_eq!(d, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        flip_planar(&mut d, (1, 2, 3), false);
        assert_eq!(d, vec![6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
        assert_eq!(crop_planar(&d, (1, 2, 3), (1, 1), (2, 1)), vec![2.0, 1.0]);
    }
}
