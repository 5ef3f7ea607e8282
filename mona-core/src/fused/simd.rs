//! One kernel body compiled for several x86-64 instruction sets, chosen at run time.
//!
//! The build targets baseline x86-64 (SSE2), so a loop the compiler vectorises runs four
//! lanes wide. [`multiversion!`] compiles the same body again with AVX2 + FMA and with
//! AVX-512 enabled and calls the widest one the CPU has. Since the kernels never ask for
//! fused multiply-adds (see `math`), all three give bit-identical results.

/// `multiversion! { fn name(args) { body } }`: defines `name`, whose body runs compiled for
/// AVX-512, AVX2 or the baseline, whichever is the best this CPU supports. The body must
/// only call `#[inline(always)]` helpers in its hot loops, or they stay baseline code.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,bmi1,bmi2")]
                fn v4($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma,bmi1,bmi2")]
                fn v3($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                {
                    // SAFETY: the CPU has every feature `v4` is compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("bmi1")
                    && std::arch::is_x86_feature_detected!("bmi2")
                {
                    // SAFETY: the CPU has every feature `v3` is compiled for.
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub(crate) use multiversion;

/// Sums `values` in 16 interleaved lanes, then the lanes in order: vectorisable (a plain
/// running sum is not, as float addition does not reassociate) and the same on every CPU.
#[inline(always)]
pub fn lane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (l, v) in lanes.iter_mut().zip(chunk) {
            *l += *v;
        }
    }
    for (l, v) in lanes.iter_mut().zip(rest) {
        *l += *v;
    }
    let mut total = 0f32;
    for l in lanes {
        total += l;
    }
    total
}

/// [`lane_sum`] of `f(a[i], b[i])`.
#[inline(always)]
pub fn lane_sum_map2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0f32; 16];
    let n = a.len().min(b.len());
    let full = n / 16 * 16;
    let (a_head, a_rest) = a[..n].split_at(full);
    let (b_head, b_rest) = b[..n].split_at(full);
    for (ca, cb) in a_head.chunks_exact(16).zip(b_head.chunks_exact(16)) {
        for ((l, x), y) in lanes.iter_mut().zip(ca).zip(cb) {
            *l += f(*x, *y);
        }
    }
    for ((l, x), y) in lanes.iter_mut().zip(a_rest).zip(b_rest) {
        *l += f(*x, *y);
    }
    let mut total = 0f32;
    for l in lanes {
        total += l;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    multiversion! {
        fn scale_into(src: &[f32], dst: &mut [f32], k: f32) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s * k;
            }
        }
    }

    #[test]
    fn a_multiversioned_kernel_runs_its_body() {
        let src: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let mut dst = vec![0f32; 100];
        scale_into(&src, &mut dst, 0.5);
        assert_eq!(dst[99], 49.5);
        assert_eq!(dst[0], 0.0);
    }

    #[test]
    fn lane_sums_add_every_value() {
        let v: Vec<f32> = (1..=37).map(|i| i as f32).collect();
        assert_eq!(lane_sum(&v), 703.0);
        assert_eq!(
            lane_sum_map2(&v, &v, |a, b| a * b),
            (1..=37).map(|i| (i * i) as f32).sum::<f32>()
        );
        assert_eq!(lane_sum(&[]), 0.0);
    }
}
