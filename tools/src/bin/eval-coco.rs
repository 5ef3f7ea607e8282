//! `eval-coco ANNOTATIONS.json RESULTS.json [--iou-type bbox|segm] [--max-dets 100,300,1000]`:
//! COCO AP of a results file, the 12 statistics printed as JSON.
//!
//! The statistics are pycocotools' to the bit (checked on the cases of
//! `mona-det/tests/data/coco_parity`), its quirk included: `mAP` is read at 100 detections
//! whatever the caps (so with mmdet's 100,300,1000 `mAP` is AP@100 and `mAP_50` … `mAP_l`
//! are AP@1000), and is -1 when 100 is not among them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mona_det::metrics::coco::{CocoIouType, coco_evaluate_files};

/// Evaluate COCO-format detections (pycocotools semantics, mmdet's defaults).
#[derive(Parser, Debug)]
#[command(name = "eval-coco", version)]
struct Args {
    /// The ground-truth annotation file (COCO json).
    annotations: PathBuf,
    /// The results file: a json list of `{image_id, category_id, bbox|segmentation, score}`.
    results: PathBuf,
    /// `bbox` or `segm`.
    #[arg(long = "iou-type", default_value = "bbox")]
    iou_type: CocoIouType,
    /// The three detection caps (mmdet: 100,300,1000; pycocotools: 1,10,100).
    #[arg(
        long = "max-dets",
        value_name = "SMALL,MEDIUM,LARGEST",
        value_delimiter = ',',
        default_value = "100,300,1000"
    )]
    max_dets: Vec<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    mona_tools::cli::run(|| -> anyhow::Result<()> {
        let stats = coco_evaluate_files(
            &args.annotations,
            &args.results,
            args.iou_type,
            &args.max_dets,
        )?;
        println!("{}", stats.to_json_string());
        Ok(())
    })
}
