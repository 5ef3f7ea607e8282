//! mIoU / mAcc / aAcc on hand-computed confusion cases.

use mona_seg::metrics::{SegStats, nanmean, reduce_zero_label};

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
