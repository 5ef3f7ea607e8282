//! The random draws of a training pass (dropout, DropPath), keyed by sample.
//!
//! A training step may cut its batch into shards that run forward and backward on separate
//! threads (see the runner). For that to change nothing but summation order, what a sample
//! draws must not depend on which shard or thread draws it. So within a [`DrawScope`] a draw
//! is counter-based: the k-th draw of the pass gets the seed `mix(scope seed, k)`, and
//! element `i` of sample `s` keeps or drops by a hash of that seed and its index in the
//! *whole* batch. Every shard runs the same layers in the same order, so its k-th draw is
//! the whole batch's k-th draw, and its samples find their own bits at their own indices.
//!
//! Tensors are taken to be sample-major (all of sample 0's elements, then sample 1's, ...),
//! as every activation of the models is: `[B, ...]`, and the windows `[B·nW, ...]`.
//!
//! Outside a scope (tests, tools that call a model directly), the seed comes from the
//! device's random stream instead, as burn's own dropout draws.

use std::cell::Cell;

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rayon::prelude::*;

/// Elements of a mask made by one task.
const MASK_CHUNK: usize = 1 << 16;

/// The scope of the current thread: its seed, the draws so far, and where its shard sits.
#[derive(Debug, Clone, Copy)]
struct Scope {
    seed: u64,
    draws: u64,
    shard: Shard,
}

/// Where a shard's samples sit in the whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// The batch index of the shard's first sample.
    pub first: usize,
    /// The shard's samples.
    pub len: usize,
}

impl Shard {
    /// The whole batch, unsplit (its draws start at index 0 whatever its size).
    pub const WHOLE: Shard = Shard { first: 0, len: 1 };
}

/// `n` samples cut into `parts` consecutive shards as even as can be (the first ones one
/// larger); fewer shards when `n < parts`, none when `n` is 0.
pub fn shard_ranges(n: usize, parts: usize) -> impl Iterator<Item = Shard> {
    let parts = parts.clamp(1, n.max(1));
    let (base, extra) = (n / parts, n % parts);
    (0..parts)
        .map(move |k| Shard {
            first: k * base + k.min(extra),
            len: base + usize::from(k < extra),
        })
        .filter(|s| s.len > 0)
}

thread_local! {
    static SCOPE: Cell<Option<Scope>> = const { Cell::new(None) };
}

/// Makes the current thread draw from `seed` as `shard` of a batch until dropped (which
/// gives back the scope it replaced, so scopes nest).
pub struct DrawScope {
    previous: Option<Scope>,
}

impl DrawScope {
    pub fn enter(seed: u64, shard: Shard) -> Self {
        let previous = SCOPE.with(|s| {
            s.replace(Some(Scope {
                seed,
                draws: 0,
                shard,
            }))
        });
        Self { previous }
    }
}

impl Drop for DrawScope {
    fn drop(&mut self) {
        SCOPE.with(|s| s.set(self.previous));
    }
}

/// One draw: a seed, and the whole-batch index of the first element of the tensor it masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub seed: u64,
    pub first_element: u64,
}

impl Draw {
    /// The next draw for a sample-major tensor of `numel` elements: from the thread's scope,
    /// or (outside one) seeded from four draws of `device`'s random stream.
    pub fn next(numel: usize, device: &Device) -> Self {
        let scoped = SCOPE.with(|s| {
            let mut scope = s.get()?;
            let seed = mix64(scope.seed ^ mix64(scope.draws.wrapping_add(1)));
            scope.draws += 1;
            s.set(Some(scope));
            let Shard { first, len } = scope.shard;
            let per_sample = (numel / len.max(1)) as u64;
            Some(Draw {
                seed,
                first_element: first as u64 * per_sample,
            })
        });
        scoped.unwrap_or_else(|| Draw {
            seed: device_seed(device),
            first_element: 0,
        })
    }

    /// Whether element `index` of the masked tensor is kept, at keep threshold `threshold`
    /// (`keep · 2³²`): its whole-batch index hashed with the seed (indices wrap at 2³²).
    #[inline(always)]
    pub fn kept(&self, index: usize, threshold: u32) -> bool {
        let global = self.first_element.wrapping_add(index as u64);
        hash32(self.seed, global as u32) < threshold
    }

    /// The inverted-dropout mask (`1/keep` where kept, else 0) of `shape`, for keep
    /// probability `keep`, as a tensor on `device`.
    pub fn mask<const D: usize>(&self, shape: [usize; D], keep: f64, device: &Device) -> Tensor<D> {
        let numel: usize = shape.iter().product();
        let threshold = keep_threshold(keep);
        let scale = (1.0 / keep) as f32;
        let mut values = vec![0f32; numel];
        values
            .par_chunks_mut(MASK_CHUNK)
            .enumerate()
            .for_each(|(k, chunk)| {
                for (i, v) in chunk.iter_mut().enumerate() {
                    if self.kept(k * MASK_CHUNK + i, threshold) {
                        *v = scale;
                    }
                }
            });
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}

/// `keep · 2³²`, saturating at `u32::MAX` (keep = 1 keeps all but 1 in 2³²).
pub fn keep_threshold(keep: f64) -> u32 {
    (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32
}

/// A seed from four uniform draws of the device's random stream (16 bits each), so the
/// runner's per-iteration reseeding of the stream makes it reproducible.
fn device_seed(device: &Device) -> u64 {
    let draws = Tensor::<1>::random([4], Distribution::Default, device)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("four f32 draws");
    draws.iter().fold(0u64, |acc, u| {
        (acc << 16) | ((u * 65_536.0) as u64 & 0xFFFF)
    })
}

/// A counter-based hash of `(seed, index)` to 32 uniform bits (two rounds of the `lowbias32`
/// mixer keyed by the two halves of the seed): the dropout mask of element `index`, computed
/// where it is used and recomputed in the backward pass instead of being stored.
#[inline(always)]
pub fn hash32(seed: u64, index: u32) -> u32 {
    let mut x = index.wrapping_mul(0x9E37_79B9) ^ (seed as u32);
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^= x >> 16;
    x ^= (seed >> 32) as u32;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^= x >> 16;
    x
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scoped_draws(seed: u64, shard: Shard, numels: &[usize]) -> Vec<Draw> {
        let device = Device::default();
        let _scope = DrawScope::enter(seed, shard);
        numels.iter().map(|&n| Draw::next(n, &device)).collect()
    }

    #[test]
    fn hash_masks_keep_the_asked_fraction_and_differ_by_seed() {
        let keep = (0.9 * 4_294_967_296.0) as u64;
        let kept = (0..1_000_000u32)
            .filter(|&i| (hash32(42, i) as u64) < keep)
            .count();
        assert!((kept as f64 / 1e6 - 0.9).abs() < 2e-3, "kept {kept}");
        let same = (0..10_000u32)
            .filter(|&i| hash32(1, i) == hash32(2, i))
            .count();
        assert!(same < 5, "{same} equal hashes for two seeds");
        let high = (0..10_000u32)
            .filter(|&i| hash32(1, i) == hash32(1 | (1 << 40), i))
            .count();
        assert!(high < 5, "the seed's high half is ignored ({high} equal)");
    }

    #[test]
    fn a_shard_finds_its_samples_bits_at_their_whole_batch_indices() {
        // A batch of 4 samples, 6 elements each, split 3 + 1.
        let whole = scoped_draws(7, Shard { first: 0, len: 4 }, &[24, 24]);
        let head = scoped_draws(7, Shard { first: 0, len: 3 }, &[18, 18]);
        let tail = scoped_draws(7, Shard { first: 3, len: 1 }, &[6, 6]);
        let t = keep_threshold(0.5);
        for k in 0..2 {
            assert_eq!(whole[k].seed, head[k].seed);
            assert_eq!(whole[k].seed, tail[k].seed);
            assert_eq!(tail[k].first_element, 18);
            let joined: Vec<bool> = (0..18)
                .map(|i| head[k].kept(i, t))
                .chain((0..6).map(|i| tail[k].kept(i, t)))
                .collect();
            let expected: Vec<bool> = (0..24).map(|i| whole[k].kept(i, t)).collect();
            assert_eq!(joined, expected);
        }
        assert_ne!(
            whole[0].seed, whole[1].seed,
            "successive draws share a seed"
        );
    }

    #[test]
    fn shard_ranges_cover_the_batch_in_order() {
        let cut = |n, p| {
            shard_ranges(n, p)
                .map(|s| (s.first, s.len))
                .collect::<Vec<_>>()
        };
        assert_eq!(cut(32, 2), [(0, 16), (16, 16)]);
        assert_eq!(cut(7, 3), [(0, 3), (3, 2), (5, 2)]);
        assert_eq!(cut(1, 2), [(0, 1)]);
        assert_eq!(cut(0, 2), []);
        assert_eq!(cut(5, 1), [(0, 5)]);
    }

    #[test]
    fn scopes_nest_and_restore_the_outer_count() {
        let device = Device::default();
        let _outer = DrawScope::enter(1, Shard { first: 0, len: 1 });
        let first = Draw::next(1, &device);
        {
            let _inner = DrawScope::enter(2, Shard { first: 0, len: 1 });
            let _ = Draw::next(1, &device);
        }
        let second = Draw::next(1, &device);
        let again = scoped_draws(1, Shard { first: 0, len: 1 }, &[1, 1]);
        assert_eq!([first, second], [again[0], again[1]]);
    }

    #[test]
    fn masks_keep_the_asked_fraction_scaled() {
        let device = Device::default();
        let draw = scoped_draws(3, Shard { first: 0, len: 1 }, &[100_000])[0];
        let mask = draw.mask([100_000], 0.8, &device);
        let values = mask
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let kept = values.iter().filter(|&&v| v != 0.0).count();
        assert!((kept as f64 / 1e5 - 0.8).abs() < 5e-3, "kept {kept}");
        assert!(values.iter().all(|&v| v == 0.0 || v == 1.25));
    }
}
