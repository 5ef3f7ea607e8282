//! mIoU / mAcc / aAcc, mDice and mFscore on hand-computed confusion cases, through the
//! metric registry as training and `test` reach them.

use mona_seg::metrics::{SegStats, nanmean, reduce_zero_label, seg_metrics};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn two_images_summed_over_the_dataset() {
    // classes 0, 1, 2. Image 1: label [0,0,1,1], pred [0,1,1,1].
    // Image 2: label [1,2,2,2], pred [1,2,2,0].
    let mut s = SegStats::new(3);
    s.add(&[0, 1, 1, 1], &[0, 0, 1, 1], 255);
    s.add(&[1, 2, 2, 0], &[1, 2, 2, 2], 255);
    // class 0: I=1, pred area 2, label area 2, U=3. class 1: I=3, P=4, L=3, U=4.
    // class 2: I=2, P=2, L=3, U=3.
    assert_eq!(s.intersect, vec![1, 3, 2]);
    assert_eq!(s.union, vec![3, 4, 3]);
    let iou = s.iou();
    assert!(close(iou[0], 1.0 / 3.0) && close(iou[1], 0.75) && close(iou[2], 2.0 / 3.0));
    let m = s.metrics(&[]);
    assert!(close(
        m["mIoU"],
        (1.0 / 3.0 + 0.75 + 2.0 / 3.0) / 3.0 * 100.0
    ));
    assert!(close(m["mAcc"], (0.5 + 1.0 + 2.0 / 3.0) / 3.0 * 100.0));
    assert!(close(m["aAcc"], 6.0 / 8.0 * 100.0));
}

#[test]
fn ignored_pixels_do_not_count() {
    let mut s = SegStats::new(2);
    // the last two pixels are ignored whatever is predicted there.
    s.add(&[0, 1, 1, 0], &[0, 1, 255, 255], 255);
    assert_eq!(s.iou(), vec![1.0, 1.0]);
    assert!(close(s.a_acc(), 1.0));
}

#[test]
fn absent_classes_are_nan_and_skipped() {
    // class 2 is neither labelled nor predicted → IoU NaN, excluded from the mean.
    // class 1 is predicted but never labelled → IoU 0 (union > 0), Acc NaN.
    let mut s = SegStats::new(3);
    s.add(&[0, 0, 1, 0], &[0, 0, 0, 0], 255);
    let iou = s.iou();
    assert!(close(iou[0], 0.75) && close(iou[1], 0.0) && iou[2].is_nan());
    let m = s.metrics(&[]);
    assert!(close(m["mIoU"], 37.5));
    let acc = s.acc();
    assert!(acc[1].is_nan() && acc[2].is_nan());
    assert!(close(m["mAcc"], 75.0));
    assert!(!m.contains_key("IoU.2"));
    assert!(nanmean(&[f64::NAN]).is_nan());
}

#[test]
fn reduce_zero_label_shifts_and_ignores_zero() {
    let mut label = vec![0u8, 1, 2, 150, 255];
    reduce_zero_label(&mut label);
    assert_eq!(label, vec![255, 0, 1, 149, 255]);
    // after reduction, a prediction of 0 on an originally-0 pixel is ignored.
    let mut s = SegStats::new(2);
    s.add(&[1, 0, 0], &label[..3], 255);
    assert_eq!(s.intersect, vec![1, 0]);
    assert_eq!(s.union, vec![2, 1]);
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn dice_and_fscore_as_mmseg_computes_them() {
    // The two images of `two_images_summed_over_the_dataset`: I = [1, 3, 2],
    // P = [2, 4, 2], L = [2, 3, 3].
    let mut s = SegStats::new(3);
    s.add(&[0, 1, 1, 1], &[0, 0, 1, 1], 255);
    s.add(&[1, 2, 2, 0], &[1, 2, 2, 2], 255);
    let classes = names(&["a", "b", "c"]);
    let m = seg_metrics(&s, &classes, &names(&["mDice"])).unwrap();
    // Dice = 2I / (P + L): 2/4, 6/7, 4/5.
    let dice = [0.5, 6.0 / 7.0, 0.8];
    assert!(close(m["mDice"], dice.iter().sum::<f64>() / 3.0 * 100.0));
    assert!(close(m["Dice.b"], 600.0 / 7.0));
    assert!(close(m["mAcc"], (0.5 + 1.0 + 2.0 / 3.0) / 3.0 * 100.0));
    assert!(close(m["aAcc"], 75.0));
    assert_eq!(m.len(), 6, "{m:?}");

    let m = seg_metrics(&s, &classes, &names(&["mFscore"])).unwrap();
    // precision I/P = 1/2, 3/4, 1; recall I/L = 1/2, 1, 2/3; F = 2PR / (P + R).
    let (p, r) = ([0.5, 0.75, 1.0], [0.5, 1.0, 2.0 / 3.0]);
    let f: Vec<f64> = p
        .iter()
        .zip(&r)
        .map(|(p, r)| 2.0 * p * r / (p + r))
        .collect();
    assert!(close(m["mFscore"], f.iter().sum::<f64>() / 3.0 * 100.0));
    assert!(close(m["mPrecision"], 75.0));
    assert!(close(m["mRecall"], (0.5 + 1.0 + 2.0 / 3.0) / 3.0 * 100.0));
    assert!(close(m["Fscore.c"], 80.0));
    // With β = 1 the F-score of a class equals its Dice.
    for (fv, dv) in f.iter().zip(dice) {
        assert!(close(*fv, dv));
    }
}

#[test]
fn single_keys_and_unknown_names_through_the_registry() {
    let mut s = SegStats::new(2);
    s.add(&[0, 1, 1, 0], &[0, 1, 1, 1], 255);
    let m = seg_metrics(&s, &[], &names(&["aAcc", "mAcc"])).unwrap();
    assert_eq!(m.keys().collect::<Vec<_>>(), ["aAcc", "mAcc"]);
    assert!(close(m["aAcc"], 75.0));
    assert!(close(m["mAcc"], (1.0 + 2.0 / 3.0) / 2.0 * 100.0));
    let err = seg_metrics(&s, &[], &names(&["mIoU", "mBoundary"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "metric \"mBoundary\" is not registered for segmentation"
    );
}
