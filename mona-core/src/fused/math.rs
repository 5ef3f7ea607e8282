//! Branch-free f32 maths for the fused CPU kernels: `exp`, the normal CDF `Φ` and the GELU
//! derivative, written so that the compiler vectorises a loop over them (no calls into
//! libm, selects instead of branches).
//!
//! Every function uses separate multiplies and adds (never `mul_add`): the compiler does not
//! contract them, so the SSE2, AVX2 and AVX-512 builds of a kernel give bit-identical results,
//! and a run is reproducible across CPUs.

/// `1/√2`.
pub const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1/√(2π)`, the standard normal density at 0.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// `e^x` to ~1 ulp on the range where it is a normal float (Cephes' `expf`: `x = n·ln2 + r`,
/// a degree-6 polynomial in `r`, `2^n` built in the exponent bits), `+∞`-free up to 88.7.
///
/// Below −87.3, where `e^x` is subnormal, the result is 0. Subnormal arithmetic costs
/// about a hundred cycles an operation on x86: a softmax over the shifted-window mask's
/// −100 entries would otherwise fill its probabilities, and every product with them, with
/// subnormals (measured: 10× slower attention backward passes in shifted blocks).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `n·C1` is exact.
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let underflow = x <= -87.3;
    let x = x.clamp(-87.3, 88.7);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    // The integer n sits in the low mantissa bits of `shifted` (no float-to-int cast, whose
    // saturating semantics do not vectorise).
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = x - n * C1 - n * C2;
    let r2 = r * r;
    let p = ((((1.987_569_2e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * r2 + r + 1.0;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    if underflow { 0.0 } else { y * scale }
}

/// `Φ(x) = (1 + erf(x/√2)) / 2`, the standard normal CDF, within 8e-8 absolute everywhere
/// and 1e-5 relative in the lower tail (where `(1 + erf)/2` in f32 loses every digit).
///
/// Near zero (`|x/√2| < 0.84375`) it is fdlibm's rational `erf(t) = t + t·P(t²)/Q(t²)`;
/// elsewhere the Chebyshev fit of `erfc` with fractional error < 1.2e-7 (Numerical Recipes'
/// `erfcc`): `erfc(|t|) = u·exp(−t² + R(u))`, `u = 1/(1 + |t|/2)`.
#[inline(always)]
pub fn normal_cdf(x: f32) -> f32 {
    let t = x * FRAC_1_SQRT_2;
    let z = t.abs();
    // Small |t|: fdlibm's erf on [0, 0.84375).
    let zz = t * t;
    let r = 1.283_791_7e-1
        + zz * (-3.250_421e-1
            + zz * (-2.848_175e-2 + zz * (-5.770_270_3e-3 + zz * -2.376_301_8e-5)));
    let s = 1.0
        + zz * (3.979_172e-1
            + zz * (6.502_225e-2
                + zz * (5.081_306e-3 + zz * (1.324_947_4e-4 + zz * -3.960_228e-6))));
    let small = 0.5 + 0.5 * (t + t * (r / s));
    // Large |t|: erfc(|t|).
    let u = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77_f32;
    for c in [
        -0.822_152_23,
        1.488_515_9,
        -1.135_204,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_7,
        -1.265_512_2,
    ] {
        p = p * u + c;
    }
    let half_erfc = 0.5 * (u * exp(p - z * z));
    let tail = if x < 0.0 { half_erfc } else { 1.0 - half_erfc };
    if z < 0.843_75 { small } else { tail }
}

/// The exact (erf) GELU, `x·Φ(x)`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    x * normal_cdf(x)
}

/// `d/dx x·Φ(x) = Φ(x) + x·φ(x)`.
#[inline(always)]
pub fn gelu_derivative(x: f32) -> f32 {
    normal_cdf(x) + x * (FRAC_1_SQRT_2PI * exp(-0.5 * (x * x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erfc64(x: f64) -> f64 {
        // Reference erfc by the continued fraction / series in f64 (libm's is not exposed
        // by std); accurate to ~1e-15 on the tested range.
        libm_erfc(x)
    }

    /// W. J. Cody's rational approximations are overkill here: the test's reference is the
    /// series of erf for |x| < 3 and the Laplace continued fraction of erfc beyond.
    fn libm_erfc(x: f64) -> f64 {
        if x < 0.0 {
            return 2.0 - libm_erfc(-x);
        }
        if x < 3.0 {
            let mut sum = x;
            let mut term = x;
            let x2 = x * x;
            for n in 1..200 {
                term *= -x2 / n as f64;
                let add = term / (2 * n + 1) as f64;
                sum += add;
                if add.abs() < 1e-18 {
                    break;
                }
            }
            return 1.0 - sum * 2.0 / std::f64::consts::PI.sqrt();
        }
        let mut f = 0.0;
        for k in (1..120).rev() {
            f = (k as f64 / 2.0) / (x + f);
        }
        (-x * x).exp() / (std::f64::consts::PI.sqrt() * (x + f))
    }

    #[test]
    fn exp_flushes_what_would_be_subnormal_to_zero() {
        assert_eq!(exp(-87.4), 0.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(-87.2).is_normal());
        assert!((exp(88.0) as f64 - 88f64.exp()).abs() / 88f64.exp() < 3e-7);
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_3;
        }
        assert!(worst < 2.5e-7, "exp relative error {worst}");
    }

    #[test]
    fn normal_cdf_matches_the_f64_reference() {
        let (mut abs_worst, mut rel_worst) = (0f64, 0f64);
        let mut x = -12.0f32;
        while x < 12.0 {
            let got = normal_cdf(x) as f64;
            let want = 0.5 * erfc64(-(x as f64) / std::f64::consts::SQRT_2);
            abs_worst = abs_worst.max((got - want).abs());
            if x > -9.0 {
                rel_worst = rel_worst.max(((got - want) / want).abs());
            }
            x += 0.000_7;
        }
        assert!(abs_worst < 1e-7, "Φ absolute error {abs_worst}");
        assert!(rel_worst < 2e-5, "Φ relative error {rel_worst}");
    }

    #[test]
    fn gelu_derivative_matches_a_central_difference_in_f64() {
        let mut worst = 0f64;
        let mut x = -8.0f32;
        while x < 8.0 {
            let xd = x as f64;
            let phi = |v: f64| 0.5 * erfc64(-v / std::f64::consts::SQRT_2);
            let want = phi(xd) + xd * (-0.5 * xd * xd).exp() / (2.0 * std::f64::consts::PI).sqrt();
            worst = worst.max((gelu_derivative(x) as f64 - want).abs());
            x += 0.001_1;
        }
        assert!(worst < 3e-7, "GELU derivative error {worst}");
    }
}
