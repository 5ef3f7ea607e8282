//! COCO box / mask AP through `hotcoco` (a faithful pycocotools port), with mmdet's
//! defaults: `maxDets = [100, 300, 1000]` and the 12 summary statistics.
//!
//! Parity with pycocotools is checked case by case in `tests/coco_parity.rs`. One place
//! where hotcoco departs from it is patched here: pycocotools' `summarize()` computes
//! `stats[0]` (AP over IoU .50:.95, area all) with `_summarize(1)`, i.e. at its default
//! `maxDets=100`, not at `params.maxDets[2]` as every other AP statistic. So under mmdet's
//! `proposal_nums = (100, 300, 1000)` mmdet's `mAP` is AP@100 while `mAP_50` … `mAP_l` are
//! AP@1000, and with caps that do not contain 100 `stats[0]` is `-1`. hotcoco reads every AP
//! at the largest cap; [`coco_evaluate`] recomputes `stats[0]` the pycocotools way.

use std::path::Path;

use hotcoco::{COCO, COCOeval, IouType};

use super::coco_checks::{check_results_shape, check_results_value, validate};

/// mmdet's `proposal_nums` for COCO evaluation.
pub const MMDET_MAX_DETS: [usize; 3] = [100, 300, 1000];

/// Names of the 12 statistics as mmdet logs them, for the three `max_dets` caps
/// (`mAP`, …, `AR@100`, `AR@300`, `AR@1000`, `AR_s@1000`, … for mmdet's caps).
pub fn stat_names(max_dets: &[usize; 3]) -> [String; 12] {
    let [a, b, c] = max_dets.map(|d| d.to_string());
    [
        "mAP".into(),
        "mAP_50".into(),
        "mAP_75".into(),
        "mAP_s".into(),
        "mAP_m".into(),
        "mAP_l".into(),
        format!("AR@{a}"),
        format!("AR@{b}"),
        format!("AR@{c}"),
        format!("AR_s@{c}"),
        format!("AR_m@{c}"),
        format!("AR_l@{c}"),
    ]
}

pub use super::coco_types::{CocoEvalError, CocoIouType};

/// The 12 statistics in pycocotools order, the (sorted) caps they were computed with, and
/// each category's AP.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoStats {
    pub stats: [f64; 12],
    pub max_dets: [usize; 3],
    /// `(category name, AP)` in category-id order: AP over IoU .50:.95 at area `all` and the
    /// largest cap, as mmdet's `classwise=True` reads `precision[:, :, k, 0, -1]`; NaN for a
    /// category nothing was computed for (no ground truth), as mmdet prints it.
    pub per_category: Vec<(String, f64)>,
}

impl CocoStats {
    /// `(name, value)` pairs with mmdet's names, in pycocotools order.
    pub fn named(&self) -> Vec<(String, f64)> {
        stat_names(&self.max_dets)
            .into_iter()
            .zip(self.stats)
            .collect()
    }

    /// A JSON object of [`Self::named`], keys in pycocotools order.
    pub fn to_json_string(&self) -> String {
        let fields: Vec<String> = self
            .named()
            .into_iter()
            .map(|(k, v)| format!("  \"{k}\": {}", serde_json::json!(v)))
            .collect();
        format!("{{\n{}\n}}", fields.join(",\n"))
    }
}

/// Evaluates already loaded ground truth and detections.
pub fn coco_evaluate(
    gt: COCO,
    dt: COCO,
    iou_type: CocoIouType,
    max_dets: &[usize],
) -> Result<CocoStats, CocoEvalError> {
    let Ok(mut sorted) = <[usize; 3]>::try_from(max_dets) else {
        return Err(CocoEvalError::MaxDets(max_dets.to_vec()));
    };
    sorted.sort_unstable();
    let iou = match iou_type {
        CocoIouType::Bbox => IouType::Bbox,
        CocoIouType::Segm => IouType::Segm,
    };
    let mut categories: Vec<(u64, String)> = gt
        .dataset
        .categories
        .iter()
        .map(|c| (c.id, c.name.clone()))
        .collect();
    categories.sort_unstable();
    let mut ev = COCOeval::new(gt, dt, iou);
    // pycocotools sorts `maxDets` inside `evaluate()`; hotcoco keeps the caller's order on
    // its M axis, so sort here and both index the same way.
    ev.params.max_dets = sorted.to_vec();
    ev.evaluate().map_err(CocoEvalError::Evaluate)?;
    ev.accumulate();
    // the summary table goes to the log, never to stdout (tools print JSON there)
    for line in ev.summarize_lines() {
        tracing::info!("{line}");
    }
    let stats = ev.stats().unwrap_or(&[]);
    let mut stats: [f64; 12] = stats
        .try_into()
        .map_err(|_| CocoEvalError::Stats(stats.len()))?;
    if ev.params.max_det() != 100 {
        stats[0] = ev
            .accumulated()
            .map_or(-1.0, |acc| ap_at_cap(acc, &ev.params, 100));
        tracing::info!(
            "stats[0] (mAP) taken at maxDets=100 as pycocotools does: {:.3}",
            stats[0]
        );
    }
    let by_name = ev.get_results(None, true);
    let per_category = categories
        .into_iter()
        .map(|(_, name)| {
            let ap = by_name.get(&format!("AP/{name}")).copied();
            (name, ap.unwrap_or(f64::NAN))
        })
        .collect();
    Ok(CocoStats {
        stats,
        max_dets: sorted,
        per_category,
    })
}

/// Per-category AP as mmdet's `classwise=True` logs it: terminaltables' `AsciiTable` of
/// `category | AP` pairs, up to three pairs per row, AP with 3 decimals (`nan` without ground
/// truth), the cells after the last pair `None`. Drawn here, in a few lines, because users
/// compare it with mmdet's logs character for character.
pub fn classwise_table(per_category: &[(String, f64)]) -> String {
    let cells: Vec<String> = per_category
        .iter()
        .flat_map(|(name, ap)| {
            // Python's `f"{nan:0.3f}"` is `nan`; Rust's `{:0.3}` would write `NaN`
            let ap = if ap.is_nan() {
                "nan".to_string()
            } else {
                format!("{ap:0.3}")
            };
            [name.clone(), ap]
        })
        .collect();
    let columns = cells.len().clamp(2, 6);
    let mut rows: Vec<Vec<String>> = vec![
        ["category", "AP"]
            .iter()
            .cycle()
            .take(columns)
            .map(|s| s.to_string())
            .collect(),
    ];
    // `itertools.zip_longest(*[flat[i::columns] ...])`: row-major, the last row padded with
    // `None`, which terminaltables prints as `str(None)`
    rows.extend(cells.chunks(columns).map(|chunk| {
        let mut row = chunk.to_vec();
        row.resize(columns, "None".into());
        row
    }));
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+";
    let line = |row: &Vec<String>| {
        row.iter()
            .zip(&widths)
            .map(|(cell, w)| format!("| {cell:<w$} "))
            .collect::<String>()
            + "|"
    };
    let mut out = vec![rule.clone(), line(&rows[0]), rule.clone()];
    out.extend(rows[1..].iter().map(line));
    out.push(rule);
    out.join("\n")
}

/// AP over every IoU threshold, recall threshold and category at area `all` and the
/// detection cap `cap`: pycocotools' `_summarize(1, maxDets=cap)`, `-1` when `cap` is not one
/// of the caps or nothing was computed (the mean skips pycocotools' `-1` cells).
fn ap_at_cap(acc: &hotcoco::AccumulatedEval, params: &hotcoco::Params, cap: usize) -> f64 {
    let Some(m) = params.max_dets.iter().position(|&d| d == cap) else {
        return -1.0;
    };
    let a = params.all_area_idx();
    let s = acc.shape;
    // `s[s > -1]` in numpy's C order (k fastest), summed in numpy's order: bit-equal to
    // pycocotools' `np.mean`, like hotcoco's own statistics
    let mut valid = Vec::with_capacity(s.t * s.r * s.k);
    for t in 0..s.t {
        for r in 0..s.r {
            for k in 0..s.k {
                let v = acc.precision[acc.precision_idx(t, r, k, a, m)];
                if v > -1.0 {
                    valid.push(v);
                }
            }
        }
    }
    if valid.is_empty() {
        -1.0
    } else {
        pairwise_sum(&valid) / valid.len() as f64
    }
}

/// numpy's `pairwise_sum` (`loops_utils.h.src`), the order `np.mean` adds in: serial below 8
/// values, 8 interleaved accumulators up to 128, halves (at a multiple of 8) above. hotcoco
/// has the same function but does not export it.
fn pairwise_sum(values: &[f64]) -> f64 {
    const UNROLL: usize = 8;
    const BLOCK: usize = 128;
    let n = values.len();
    if n < UNROLL {
        values.iter().fold(0.0, |s, &v| s + v)
    } else if n <= BLOCK {
        let mut r = [0.0f64; UNROLL];
        r.copy_from_slice(&values[..UNROLL]);
        let end = n - n % UNROLL;
        for block in values[UNROLL..end].chunks_exact(UNROLL) {
            for (acc, &v) in r.iter_mut().zip(block) {
                *acc += v;
            }
        }
        let head = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        values[end..].iter().fold(head, |s, &v| s + v)
    } else {
        let half = n / 2;
        let split = half - half % UNROLL;
        pairwise_sum(&values[..split]) + pairwise_sum(&values[split..])
    }
}

/// Evaluates a results json (a list of `{image_id, category_id, bbox | segmentation, score}`)
/// against a COCO annotation file. An empty list gives zeros (and -1 where there is no
/// ground truth); mmdet 2.x stops before pycocotools there, which would fail on it.
pub fn coco_evaluate_files(
    annotations: &Path,
    results: &Path,
    iou_type: CocoIouType,
    max_dets: &[usize],
) -> Result<CocoStats, CocoEvalError> {
    let gt = COCO::new(annotations).map_err(|source| CocoEvalError::Annotations {
        path: annotations.to_path_buf(),
        source,
    })?;
    check_results_shape(results, &gt, iou_type)?;
    let dt = gt.load_res(results);
    score_loaded(gt, dt, annotations, results, iou_type, max_dets)
}

/// Scores the detections `dt` loaded from `results` against `gt` (loaded from `annotations`)
/// after [`validate`]'s checks; a failed load names `results`.
fn score_loaded(
    gt: COCO,
    dt: Result<COCO, hotcoco::Error>,
    annotations: &Path,
    results: &Path,
    iou_type: CocoIouType,
    max_dets: &[usize],
) -> Result<CocoStats, CocoEvalError> {
    let dt = dt.map_err(|source| CocoEvalError::Results {
        path: results.to_path_buf(),
        source,
    })?;
    validate(&gt, &dt, annotations, results, iou_type)?;
    coco_evaluate(gt, dt, iou_type, max_dets)
}

/// The place results held in memory are named by in messages.
pub const IN_MEMORY_RESULTS: &str = "<predictions>";

/// Evaluates `results` (a JSON list as [`coco_evaluate_files`] reads, here already in memory)
/// against the loaded ground truth `gt`, which `annotations` names in messages, with the
/// same checks as the files get, and no file written: the in-memory counterpart of
/// [`coco_evaluate_files`], with identical numbers (the JSON numbers are the same `f64`s).
pub fn coco_evaluate_value(
    gt: COCO,
    annotations: &Path,
    results: serde_json::Value,
    iou_type: CocoIouType,
    max_dets: &[usize],
) -> Result<CocoStats, CocoEvalError> {
    let label = Path::new(IN_MEMORY_RESULTS);
    check_results_value(&results, label, &gt, iou_type)?;
    let anns: Vec<hotcoco::types::Annotation> =
        serde_json::from_value(results).map_err(|e| CocoEvalError::Invalid {
            path: label.to_path_buf(),
            message: format!("not COCO results: {e}"),
        })?;
    let dt = gt.load_res_anns(anns);
    score_loaded(gt, dt, annotations, label, iou_type, max_dets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const GT: &str = r#"{
      "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
      "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
      "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 60, 60], "area": 3600, "iscrowd": 0}
      ]
    }"#;

    /// `gt.json` and `res.json` with these texts in a fresh temporary folder (removed when
    /// the returned handle drops).
    fn case_files(gt: &str, results: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (gt_path, res_path) = (dir.path().join("gt.json"), dir.path().join("res.json"));
        std::fs::write(&gt_path, gt).expect("write gt");
        std::fs::write(&res_path, results).expect("write results");
        (dir, gt_path, res_path)
    }

    #[test]
    fn perfect_detections_score_one_and_errors_name_the_file() {
        let (dir, gt, res) = case_files(
            GT,
            r#"[{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},
                {"image_id": 2, "category_id": 2, "bbox": [0, 0, 60, 60], "score": 0.8},
                {"image_id": 2, "category_id": 1, "bbox": [70, 70, 20, 20], "score": 0.1}]"#,
        );
        let s = coco_evaluate_files(&gt, &res, CocoIouType::Bbox, &MMDET_MAX_DETS).expect("eval");
        // AP 1 for both classes (the false positive ranks below the only TP of class a)
        assert!((s.stats[0] - 1.0).abs() < 1e-9, "{:?}", s.stats);
        assert!((s.stats[1] - 1.0).abs() < 1e-9);
        assert!((s.stats[6] - 1.0).abs() < 1e-9);
        let json: serde_json::Value =
            serde_json::from_str(&s.to_json_string()).expect("valid json");
        assert!((json["mAP_50"].as_f64().unwrap_or(0.0) - 1.0).abs() < 1e-9);
        assert!(json["AR_l@1000"].is_number());
        assert_eq!(json.as_object().map(|m| m.len()), Some(12));
        let missing = dir.path().join("nope.json");
        let err = coco_evaluate_files(&missing, &res, CocoIouType::Bbox, &MMDET_MAX_DETS)
            .expect_err("missing file");
        assert!(err.to_string().contains("nope.json"), "{err}");
    }

    #[test]
    fn results_in_memory_score_as_the_same_results_in_a_file() {
        let results = r#"[{"image_id": 1, "category_id": 1, "bbox": [12.5, 9, 40, 38.25], "score": 0.9},
            {"image_id": 2, "category_id": 2, "bbox": [3, 0, 55, 61], "score": 0.8},
            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.7},
            {"image_id": 1, "category_id": 2, "bbox": [10, 10, 30, 30], "score": 0.3}]"#;
        let (_dir, gt, res) = case_files(GT, results);
        let from_files =
            coco_evaluate_files(&gt, &res, CocoIouType::Bbox, &MMDET_MAX_DETS).expect("files");
        let value: serde_json::Value = serde_json::from_str(results).expect("json");
        let in_memory = coco_evaluate_value(
            COCO::new(&gt).expect("gt"),
            &gt,
            value,
            CocoIouType::Bbox,
            &MMDET_MAX_DETS,
        )
        .expect("in memory");
        assert_eq!(in_memory.stats, from_files.stats);
        assert!(from_files.stats[0] > 0.0 && from_files.stats[0] < 1.0);
        // The same checks: a result without a score names the in-memory results.
        let bad: serde_json::Value =
            serde_json::from_str(r#"[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]"#)
                .expect("json");
        let err = coco_evaluate_value(
            COCO::new(&gt).expect("gt"),
            &gt,
            bad,
            CocoIouType::Bbox,
            &MMDET_MAX_DETS,
        )
        .expect_err("no score");
        assert_eq!(err.to_string(), "<predictions>: result 0 has no `score`");
    }

    #[test]
    fn per_category_ap_and_mmdets_classwise_table() {
        // `c` has no ground truth; `b`'s only detection overlaps its box at IoU 2460/3600 =
        // 0.683: a match at the thresholds .50 to .65, a miss from .70 up, so AP 4/10.
        let three = GT.replace(
            r#"{"id": 2, "name": "b"}"#,
            r#"{"id": 2, "name": "b"}, {"id": 3, "name": "c"}"#,
        );
        let (_dir, gt, res) = case_files(
            &three,
            r#"[{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},
                {"image_id": 2, "category_id": 2, "bbox": [0, 0, 60, 41], "score": 0.8}]"#,
        );
        let s = coco_evaluate_files(&gt, &res, CocoIouType::Bbox, &MMDET_MAX_DETS).expect("eval");
        let names: Vec<&str> = s.per_category.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!((s.per_category[0].1 - 1.0).abs() < 1e-12);
        assert!(
            (s.per_category[1].1 - 0.4).abs() < 1e-12,
            "{:?}",
            s.per_category
        );
        assert!(s.per_category[2].1.is_nan());
        // mmAP is their mean over the categories with ground truth
        assert!((s.stats[0] - 0.7).abs() < 1e-12, "{:?}", s.stats);
        assert_eq!(
            classwise_table(&s.per_category),
            "+----------+-------+----------+-------+----------+-----+\n\
             | category | AP    | category | AP    | category | AP  |\n\
             +----------+-------+----------+-------+----------+-----+\n\
             | a        | 1.000 | b        | 0.400 | c        | nan |\n\
             +----------+-------+----------+-------+----------+-----+"
        );
        // four categories: three pairs a row, the last row padded with `None` as mmdet's is
        let four: Vec<(String, f64)> = ["person", "car", "dog", "x"]
            .iter()
            .map(|n| (n.to_string(), 0.25))
            .collect();
        assert_eq!(
            classwise_table(&four),
            "+----------+-------+----------+-------+----------+-------+\n\
             | category | AP    | category | AP    | category | AP    |\n\
             +----------+-------+----------+-------+----------+-------+\n\
             | person   | 0.250 | car      | 0.250 | dog      | 0.250 |\n\
             | x        | 0.250 | None     | None  | None     | None  |\n\
             +----------+-------+----------+-------+----------+-------+"
        );
    }
}
