//! The random number generator of data augmentation, and how it is seeded.
//!
//! Reproducibility is the point: a run resumed from a checkpoint, or run again with a different
//! number of loader threads, must see the same sample order and the same augmented pixels. So
//! no generator is ever shared between samples. Each sample of each epoch gets its own
//! [`DataRng`], seeded from `(seed, epoch, position in the epoch)`; the epoch's order comes
//! from a generator seeded from `(seed, epoch)`. Nothing depends on which thread runs a sample
//! or in what order threads finish.
//!
//! ChaCha8 is fast, has a documented, portable output stream (unlike `StdRng`, whose algorithm
//! may change between `rand` releases) and accepts full 256-bit seeds.

use rand::SeedableRng;

/// The generator every transform draws from.
pub type DataRng = rand_chacha::ChaCha8Rng;

/// Domain tags keep the streams for orders and for samples apart even for equal numbers.
const TAG_ORDER: u64 = 0x006f_7264_6572; // "order" in ASCII
const TAG_SAMPLE: u64 = 0x7361_6d70_6c65; // "sample" in ASCII

/// The generator of the sample at `position` (0-based, in epoch order) of epoch `epoch`.
pub fn sample_rng(seed: u64, epoch: u64, position: u64) -> DataRng {
    DataRng::from_seed(derive_seed(&[TAG_SAMPLE, seed, epoch, position]))
}

/// The generator that shuffles epoch `epoch`.
pub fn order_rng(seed: u64, epoch: u64) -> DataRng {
    DataRng::from_seed(derive_seed(&[TAG_ORDER, seed, epoch]))
}

/// A 256-bit seed from a tuple of integers: SplitMix64 absorbs each part in turn, then four
/// outputs fill the seed. Distinct tuples give unrelated seeds (SplitMix64's finaliser is a
/// bijection with full avalanche).
pub fn derive_seed(parts: &[u64]) -> [u8; 32] {
    let mut state = 0x243f_6a88_85a3_08d3_u64; // digits of pi: an arbitrary non-zero start
    for &part in parts {
        state = splitmix64(state ^ part);
    }
    let mut seed = [0u8; 32];
    for chunk in seed.chunks_exact_mut(8) {
        state = splitmix64(state);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    seed
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_by_every_part() {
        let base: u64 = sample_rng(1, 2, 3).random();
        assert_ne!(base, sample_rng(0, 2, 3).random::<u64>());
        assert_ne!(base, sample_rng(1, 0, 3).random::<u64>());
        assert_ne!(base, sample_rng(1, 2, 0).random::<u64>());
        assert_eq!(base, sample_rng(1, 2, 3).random::<u64>());
        assert_ne!(derive_seed(&[1, 2]), derive_seed(&[2, 1]));
    }
}
