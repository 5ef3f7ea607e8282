//! Bicubic resizing exactly as PyTorch's `F.interpolate(mode="bicubic", align_corners=False)`.

/// Keys' cubic convolution coefficients with A = −0.75 (PyTorch's constant).
fn cubic_coeffs(t: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let c1 = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [c2(t + 1.0), c1(t), c1(1.0 - t), c2(2.0 - t)]
}

/// For each output index: the base input index and the four tap weights.
fn taps(input: usize, output: usize) -> Vec<(i64, [f64; 4])> {
    let scale = input as f64 / output as f64;
    (0..output)
        .map(|o| {
            let real = scale * (o as f64 + 0.5) - 0.5;
            let idx = (real.floor() as i64).min(input as i64 - 1);
            let t = (real - idx as f64).clamp(0.0, 1.0);
            (idx, cubic_coeffs(t))
        })
        .collect()
}

/// Resizes one `h×w` plane (row-major) to `oh×ow`; taps outside the plane read its border.
pub fn resize_bicubic(plane: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    let (ty, tx) = (taps(h, oh), taps(w, ow));
    let at = |r: i64, c: i64| {
        let r = r.clamp(0, h as i64 - 1) as usize;
        let c = c.clamp(0, w as i64 - 1) as usize;
        plane[r * w + c] as f64
    };
    let mut out = Vec::with_capacity(oh * ow);
    for (iy, cy) in &ty {
        for (ix, cx) in &tx {
            let mut acc = 0.0;
            for (i, wy) in cy.iter().enumerate() {
                let mut row = 0.0;
                for (j, wx) in cx.iter().enumerate() {
                    row += wx * at(iy - 1 + i as i64, ix - 1 + j as i64);
                }
                acc += wy * row;
            }
            out.push(acc as f32);
        }
    }
    out
}

/// Resizes a relative position bias table `((2s−1)², heads)` to `((2d−1)², heads)`:
/// per head, the `(2s−1)×(2s−1)` grid is resized bicubically (spec: permute to
/// `(1, heads, 2s−1, 2s−1)`, interpolate, permute back). `None` if `rows` is not a square.
pub fn resize_bias_table(
    table: &[f32],
    rows: usize,
    heads: usize,
    dst_rows: usize,
) -> Option<Vec<f32>> {
    let side = (rows as f64).sqrt().round() as usize;
    let dst_side = (dst_rows as f64).sqrt().round() as usize;
    if side * side != rows || dst_side * dst_side != dst_rows {
        return None;
    }
    let mut out = vec![0f32; dst_rows * heads];
    for h in 0..heads {
        let plane: Vec<f32> = (0..rows).map(|r| table[r * heads + h]).collect();
        let resized = resize_bicubic(&plane, side, side, dst_side, dst_side);
        for (r, v) in resized.into_iter().enumerate() {
            out[r * heads + h] = v;
        }
    }
    Some(out)
}
