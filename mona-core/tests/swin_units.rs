//! Units of the det-style Swin: the relative position index, the shifted-window
//! mask, window partitioning, padding of odd sizes, patch merging order, and the exact
//! parameter counts of Swin-T/S/B/L under every method.

mod common;

use std::collections::{BTreeSet, HashMap};

use burn::tensor::ops::PadMode;
use burn::tensor::{Tensor, TensorData};
use common::{device, method, pseudo_random, tiny};
use mona_core::params::{count, load_params};
use mona_core::swin::{
    PatchMerging, SwinConfig, SwinTransformer, relative_position_index, shifted_window_mask,
    window_partition, window_reverse,
};
use mona_fixtures::rel_err;

#[test]
fn relative_position_index_follows_the_formula() {
    let w = 7usize;
    let n = w * w;
    let idx = relative_position_index(w);
    assert_eq!(idx.len(), n * n);
    assert_eq!(idx.iter().min(), Some(&0));
    assert_eq!(idx.iter().max(), Some(&168));
    // Every table row 0..169 is used.
    assert_eq!(idx.iter().collect::<BTreeSet<_>>().len(), 169);
    let at = |p: usize, q: usize| idx[p * n + q];
    // ((i_p − i_q) + 6)·13 + (j_p − j_q) + 6
    assert_eq!(at(0, 0), 84);
    assert_eq!(at(0, 48), 0); // p = (0,0), q = (6,6)
    assert_eq!(at(48, 0), 168);
    assert_eq!(at(8, 15), 71); // (1,1) vs (2,1): (−1+6)·13 + 6
    assert_eq!(at(6, 42), 12); // (0,6) vs (6,0): (−6+6)·13 + (6+6)
    assert_eq!(at(42, 6), 156); // (6,0) vs (0,6): (6+6)·13 + (−6+6)
    for (p, q) in [(3, 40), (17, 22), (48, 24), (10, 11)] {
        let (ip, jp, iq, jq) = (p / w, p % w, q / w, q % w);
        let expected = (ip as i64 - iq as i64 + 6) * 13 + (jp as i64 - jq as i64 + 6);
        assert_eq!(at(p, q), expected, "p={p} q={q}");
    }
    // Antisymmetric offsets: idx[p,q] + idx[q,p] = 2·84, and the diagonal is the centre.
    for p in 0..n {
        assert_eq!(at(p, p), 84);
        for q in 0..n {
            assert_eq!(at(p, q) + at(q, p), 168);
        }
    }
    // Window 12 (the 384 checkpoints): (2·12 − 1)² = 529 rows.
    assert_eq!(relative_position_index(12).iter().max(), Some(&528));
}

/// The number of distinct label regions of one window, read back from its mask.
fn regions(window: &[f32], n: usize) -> usize {
    (0..n)
        .map(|p| {
            (0..n)
                .filter(|q| window[p * n + q] == 0.0)
                .collect::<Vec<_>>()
        })
        .collect::<BTreeSet<_>>()
        .len()
}

#[test]
fn shifted_window_mask_has_the_known_structure() {
    let (w, n) = (7usize, 49usize);
    let mask = shifted_window_mask(14, 14, w, 3);
    assert_eq!(mask.len(), 4 * n * n);
    assert!(mask.iter().all(|v| *v == 0.0 || *v == -100.0));
    let windows: Vec<&[f32]> = mask.chunks(n * n).collect();
    // Window 0 (top-left) lies in one region: no masking.
    assert!(windows[0].iter().all(|v| *v == 0.0));
    // Top-right and bottom-left: split by one boundary (columns/rows 4 | 3).
    assert_eq!(regions(windows[1], n), 2);
    assert_eq!(regions(windows[2], n), 2);
    // Bottom-right: 4 regions of 4×4, 4×3, 3×4, 3×3 positions.
    assert_eq!(regions(windows[3], n), 4);
    let zeros = windows[3].iter().filter(|v| **v == 0.0).count();
    assert_eq!(zeros, 16 * 16 + 12 * 12 + 12 * 12 + 9 * 9);
    let zeros1 = windows[1].iter().filter(|v| **v == 0.0).count();
    assert_eq!(zeros1, 28 * 28 + 21 * 21);
    // Symmetric: p sees q exactly when q sees p.
    for win in &windows {
        for p in 0..n {
            for q in 0..n {
                assert_eq!(win[p * n + q], win[q * n + p]);
            }
        }
    }
    // A stage that is a single window is still masked.
    let single = shifted_window_mask(7, 7, w, 3);
    assert_eq!(regions(&single, n), 4);
    assert_eq!(single.iter().filter(|v| **v == 0.0).count(), 625);
}

#[test]
fn window_partition_and_reverse_round_trip() {
    let (b, hp, wp, c, w) = (2usize, 14usize, 21usize, 5usize, 7usize);
    let values = pseudo_random(b * hp * wp * c, 7, 1.0);
    let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [b, hp, wp, c]), &device());
    let windows = window_partition(x.clone(), w);
    assert_eq!(windows.dims(), [b * 2 * 3, w * w, c]);
    let wv: Vec<f32> = windows.to_data().try_into_vec().unwrap();
    // Window k = b·nW + row·(Wp/w) + col; position p = (p / w, p % w) inside it.
    for (bi, row, col, p, ch) in [(0, 0, 0, 0, 0), (0, 1, 2, 48, 4), (1, 0, 1, 10, 2)] {
        let k = bi * 6 + row * 3 + col;
        let (y, xx) = (row * w + p / w, col * w + p % w);
        assert_eq!(
            wv[(k * w * w + p) * c + ch],
            values[((bi * hp + y) * wp + xx) * c + ch]
        );
    }
    let back = window_reverse(windows, w, hp, wp);
    assert_eq!(back.to_data(), x.to_data());
}

/// Input `1×3×61×75`: the patch embedding pads right/bottom to 64×76 (grid 16×19), patch
/// merging pads odd grids: 16×19 → 8×10 → 4×5 → 2×3.
#[test]
fn odd_input_sizes_give_ceil_divided_grids() {
    let model = tiny("mona");
    let x = Tensor::<4>::from_data(
        TensorData::new(pseudo_random(3 * 61 * 75, 3, 1.0), [1, 3, 61, 75]),
        &device(),
    );
    let outs: Vec<Tensor<4>> = model.forward(x.clone(), false);
    let dims: Vec<[usize; 4]> = outs.iter().map(|o| o.dims()).collect();
    assert_eq!(
        dims,
        [
            [1, 24, 16, 19],
            [1, 48, 8, 10],
            [1, 96, 4, 5],
            [1, 192, 2, 3]
        ]
    );
    for o in &outs {
        assert!(o.to_data().iter::<f32>().all(f32::is_finite));
    }
    // Padding is zeros on the right/bottom: an explicitly padded image gives the same maps.
    let padded = x.pad([(0, 0), (0, 0), (0, 3), (0, 1)], PadMode::Constant(0.0));
    assert_eq!(padded.dims(), [1, 3, 64, 76]);
    for (i, (a, b)) in model.forward(padded, false).iter().zip(&outs).enumerate() {
        let err = rel_err(&a.to_data(), &b.to_data());
        assert!(err <= 1e-6, "output.{i}: {err:.3e}");
    }
}

/// Outputs come in stage order whatever the order of `out_indices` (the official loop), and
/// `out_channels` lists them in that same order.
#[test]
fn out_channels_follow_the_order_of_the_outputs() {
    let mut config = common::fixture_config("swin_mona_tiny");
    config.out_indices = vec![3, 1];
    let model = SwinTransformer::new(&config, method("mona"), &device()).expect("backbone");
    let x = Tensor::<4>::zeros([1, 3, 64, 64], &device());
    let channels: Vec<usize> = model
        .forward(x, false)
        .iter()
        .map(|o| o.dims()[1])
        .collect();
    assert_eq!(channels, [48, 192]);
    assert_eq!(model.out_channels(), channels);
    assert_eq!(tiny("fixed").out_channels(), [24, 48, 96, 192]);
}

#[test]
fn patch_merging_pads_odd_grids_and_orders_x0_x1_x2_x3() {
    let dev = device();
    // Odd 3×3 grid == the same grid zero-padded to 4×4 by hand.
    let merging = PatchMerging::new(3, &dev);
    let x3 = Tensor::<4>::from_data(
        TensorData::new(pseudo_random(27, 11, 1.0), [1, 3, 3, 3]),
        &dev,
    );
    let x4 = x3
        .clone()
        .pad([(0, 0), (0, 1), (0, 1), (0, 0)], PadMode::Constant(0.0));
    let y3 = merging.forward(x3.reshape([1, 9, 3]), (3, 3));
    let y4 = merging.forward(x4.reshape([1, 16, 3]), (4, 4));
    assert_eq!(y3.dims(), [1, 4, 6]);
    assert_eq!(rel_err(&y3.to_data(), &y4.to_data()), 0.0);

    // C = 1, grid [[1, 2], [3, 4]] (row-major tokens a b / c d): the concat is
    // x0 x1 x2 x3 = (0,0) (1,0) (0,1) (1,1) = [1, 3, 2, 4]; LayerNorm gives ±0.4472 for the
    // middle two, which a reduction picking channels 1 and 2 returns.
    let merging = PatchMerging::new(1, &dev);
    let pick = HashMap::from([(
        "reduction.weight".to_string(),
        TensorData::new(vec![0f32, 1., 0., 0., 0., 0., 1., 0.], [2, 4]),
    )]);
    let (merging, outcome) = load_params(merging, &pick);
    assert_eq!(outcome.applied, ["reduction.weight"]);
    let x = Tensor::<3>::from_data(TensorData::new(vec![1f32, 2., 3., 4.], [1, 4, 1]), &dev);
    let y: Vec<f32> = merging.forward(x, (2, 2)).to_data().try_into_vec().unwrap();
    let expected = 0.5 / (1.25f32 + 1e-5).sqrt();
    assert!((y[0] - expected).abs() < 1e-6, "{y:?}");
    assert!((y[1] + expected).abs() < 1e-6, "{y:?}");
}

/// Backbone size (parameters the method does not add) and trainable count.
fn counts(config: &SwinConfig, name: &str) -> (usize, usize) {
    let model = SwinTransformer::new(config, method(name), &device()).expect("backbone");
    let c = count(&model, &|k| model.trainable(k));
    let adds_modules = matches!(name, "mona" | "adapter" | "adaptformer" | "lora");
    let backbone = if adds_modules {
        c.total - c.trainable
    } else {
        c.total
    };
    (backbone, c.trainable)
}

fn with_out(mut config: SwinConfig, out: &[usize]) -> SwinConfig {
    config.out_indices = out.to_vec();
    config
}

/// The paper's parameter counts (parameters are lazy, so even Swin-L is cheap to build).
#[test]
fn parameter_counts_match_the_spec_tables() {
    let swin_b = SwinConfig::swin_b();
    let swin_l = SwinConfig::swin_l();
    const B: usize = 86_745_016;
    const L: usize = 194_998_164;
    for (name, trainable) in [
        ("mona", 3_667_456),
        ("adapter", 3_107_328),
        ("adaptformer", 1_553_664),
        ("lora", 3_080_192),
        ("bitfit", 201_656),
        ("norm_tuning", 59_392),
        ("partial_1", 12_601_632),
        ("fixed", 0),
        ("full", B),
    ] {
        assert_eq!(counts(&swin_b, name), (B, trainable), "Swin-B {name}");
    }
    for (name, trainable) in [
        ("mona", 5_267_712),
        ("adapter", 4_659_456),
        ("adaptformer", 2_329_728),
        ("lora", 4_620_288),
        ("bitfit", 302_484),
        ("norm_tuning", 89_088),
        ("partial_1", 28_339_632),
    ] {
        assert_eq!(counts(&swin_l, name), (L, trainable), "Swin-L {name}");
    }
    // VOC-RetinaNet (out 1-3) and classification (out 3) have fewer output norms.
    let voc = with_out(SwinConfig::swin_l(), &[1, 2, 3]);
    assert_eq!(counts(&voc, "mona"), (194_997_780, 5_267_712));
    assert_eq!(counts(&voc, "bitfit"), (194_997_780, 302_292));
    assert_eq!(counts(&voc, "norm_tuning"), (194_997_780, 88_704));
    let cls = with_out(SwinConfig::swin_l(), &[3]);
    assert_eq!(counts(&cls, "mona"), (194_995_476, 5_267_712));
    assert_eq!(counts(&cls, "bitfit"), (194_995_476, 301_140));
    assert_eq!(counts(&cls, "norm_tuning"), (194_995_476, 86_400));
    // Swin-T and Swin-S with Mona.
    assert_eq!(
        counts(&SwinConfig::swin_t(), "mona"),
        (27_520_698, 1_408_128)
    );
    assert_eq!(
        counts(&SwinConfig::swin_s(), "mona"),
        (48_838_602, 2_867_328)
    );
}
