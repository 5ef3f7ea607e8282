//! `plot-log`: real PNGs of the requested size with the curves in their subplots, and one-line
//! errors naming the file and line or the keys that exist.

mod common;

use std::path::Path;

use common::{run, write};
use image::{Rgb, RgbImage};
use mona_tools::plot::{BACKGROUND, PALETTE};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_plot-log");

/// The records of iterations `iters` (40 per epoch): a train record every 10 iterations and
/// a val record after every epoch. `offset` makes a second, worse run.
fn records(iters: impl Iterator<Item = u32>, offset: f64, lines: &mut Vec<String>) {
    for iter in iters.step_by(10) {
        let loss = 2.0 * (-(iter as f64) / 120.0).exp() + 0.3 + offset;
        lines.push(
            json!({
                "mode": "train", "epoch": iter.div_ceil(40), "iter": iter, "lr": 0.001,
                "loss": loss, "loss_cls": loss, "grad_norm": 1.3, "time": 0.2,
                "data_time": 0.0, "memory": 60
            })
            .to_string(),
        );
        if iter % 40 == 0 {
            let acc = 50.0 + 40.0 * (1.0 - (-(iter as f64) / 150.0).exp()) - offset * 10.0;
            lines.push(
                json!({
                    "mode": "val", "epoch": iter / 40, "iter": iter,
                    "accuracy_top-1": acc, "accuracy_top-5": 99.5
                })
                .to_string(),
            );
        }
    }
}

/// A run of 400 iterations killed after 200 and resumed from the checkpoint of iteration 160,
/// so iterations 170 to 200 are logged twice.
fn log_text(offset: f64) -> String {
    let mut lines = Vec::new();
    records(10..=200, offset, &mut lines);
    records(170..=400, offset, &mut lines);
    lines.join("\n") + "\n"
}

fn decode(path: &Path) -> RgbImage {
    assert!(path.exists(), "{} was not written", path.display());
    image::open(path)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()))
        .to_rgb8()
}

/// Pixels of exactly `color` in rows `rows` (all columns).
fn count(img: &RgbImage, color: Rgb<u8>, rows: std::ops::Range<u32>) -> usize {
    img.enumerate_pixels()
        .filter(|(_, y, p)| rows.contains(y) && **p == color)
        .count()
}

#[test]
fn one_key_gives_a_png_of_the_requested_size_with_the_curve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write(dir.path(), "log.jsonl", &log_text(0.0));
    let out = dir.path().join("curves/loss.png");
    let out_str = out.display().to_string();
    run(
        BIN,
        &[
            &log, "--keys", "loss", "--out", &out_str, "--width", "480", "--height", "320",
        ],
    )
    .ok();
    let bytes = std::fs::read(&out).expect("read the png");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG file");
    let img = decode(&out);
    assert_eq!(img.dimensions(), (480, 320));

    // The plot area (the middle of the image, away from labels) is drawn on, and the curve
    // is there in the first series colour.
    let (w, h) = img.dimensions();
    let drawn = (h / 5..h * 4 / 5)
        .flat_map(|y| (w / 5..w * 4 / 5).map(move |x| (x, y)))
        .filter(|&(x, y)| *img.get_pixel(x, y) != BACKGROUND)
        .count();
    assert!(drawn > 100, "the plot area is empty ({drawn} pixels drawn)");
    let curve = count(&img, PALETTE[0], 0..h);
    assert!(curve > 200, "only {curve} pixels have the series colour");
    assert_eq!(count(&img, PALETTE[1], 0..h), 0, "a second series appeared");
}

#[test]
fn two_keys_give_two_stacked_subplots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write(dir.path(), "log.jsonl", &log_text(0.0));
    let out = dir.path().join("two.png");
    let out_str = out.display().to_string();
    run(
        BIN,
        &[&log, "--keys", "loss,accuracy_top-1", "--out", &out_str],
    )
    .ok();
    let img = decode(&out);
    assert_eq!(img.dimensions(), (960, 540), "the default size");
    let half = img.height() / 2;
    let (loss, acc) = (PALETTE[0], PALETTE[1]);
    assert!(count(&img, loss, 0..half) > 200, "no loss curve above");
    assert_eq!(count(&img, loss, half..img.height()), 0, "loss curve below");
    assert!(
        count(&img, acc, half..img.height()) > 100,
        "no accuracy curve below"
    );
    assert_eq!(count(&img, acc, 0..half), 0, "accuracy curve above");
}

#[test]
fn several_logs_with_legend_title_and_epochs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(dir.path(), "a.jsonl", &log_text(0.0));
    let b = write(dir.path(), "b.jsonl", &log_text(0.2));
    let out = dir.path().join("cmp.png");
    let out_str = out.display().to_string();
    run(
        BIN,
        &[
            &a,
            &b,
            "--keys",
            "loss",
            "--keys",
            "accuracy_top-1",
            "--legend",
            "mona,lora",
            "--title",
            "Swin-T: Mona vs LoRA",
            "--x",
            "epoch",
            "--width",
            "800",
            "--height",
            "600",
            "--out",
            &out_str,
        ],
    )
    .ok();
    let img = decode(&out);
    assert_eq!(img.dimensions(), (800, 600));
    let half = img.height() / 2;
    // One colour per (log, key): both logs' losses above, both accuracies below.
    for color in &PALETTE[..2] {
        assert!(
            count(&img, *color, 0..half) > 100,
            "{color:?} missing above"
        );
    }
    for color in &PALETTE[2..4] {
        assert!(
            count(&img, *color, half..img.height()) > 50,
            "{color:?} missing below"
        );
    }
}

#[test]
fn malformed_line_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = log_text(0.0);
    let lines: Vec<&str> = text.lines().collect();
    text = format!(
        "{}\n{}\n{{\"mode\":\"train\",\"iter\":30,\"loss\":\n{}\n",
        lines[0],
        lines[1],
        lines[3..].join("\n")
    );
    let log = write(dir.path(), "log.jsonl", &text);
    let out = dir.path().join("x.png");
    let run = run(
        BIN,
        &[&log, "--keys", "loss", "--out", &out.display().to_string()],
    )
    .failed();
    let line = run.error_line();
    assert!(line.contains(&format!("{log}:3:")), "{line}");
    assert!(line.contains("malformed JSON"), "{line}");
    assert!(!out.exists(), "a PNG was written despite the error");
}

#[test]
fn unknown_key_lists_the_keys_that_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write(dir.path(), "log.jsonl", &log_text(0.0));
    let out = dir.path().join("x.png");
    let run = run(
        BIN,
        &[
            &log,
            "--keys",
            "loss,bbox_mAP",
            "--out",
            &out.display().to_string(),
        ],
    )
    .failed();
    let line = run.error_line();
    assert!(line.contains("`bbox_mAP`"), "{line}");
    for key in ["accuracy_top-1", "accuracy_top-5", "loss", "loss_cls", "lr"] {
        assert!(line.contains(key), "{key} not listed: {line}");
    }
    assert!(!line.contains("iter,"), "the x fields are not keys: {line}");
}

#[test]
fn bad_inputs_fail_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write(dir.path(), "log.jsonl", &log_text(0.0));
    let empty = write(dir.path(), "empty.jsonl", "\n\n");
    let out = dir.path().join("x.png");
    let out = out.display().to_string();
    let missing = dir.path().join("nope.jsonl").display().to_string();

    let line = run(BIN, &[&missing, "--keys", "loss", "--out", &out])
        .failed()
        .error_line()
        .to_owned();
    assert!(
        line.contains(&missing) && line.contains("cannot read"),
        "{line}"
    );

    let line = run(BIN, &[&empty, "--keys", "loss", "--out", &out])
        .failed()
        .error_line()
        .to_owned();
    assert!(
        line.contains(&empty) && line.contains("no records"),
        "{line}"
    );

    let line = run(
        BIN,
        &[&log, "--keys", "loss", "--legend", "a,b", "--out", &out],
    )
    .failed()
    .error_line()
    .to_owned();
    assert!(line.contains("--legend"), "{line}");

    let line = run(
        BIN,
        &[&log, "--keys", "loss", "--width", "0", "--out", &out],
    )
    .failed()
    .error_line()
    .to_owned();
    assert!(line.contains("--width 0"), "{line}");

    let line = run(BIN, &[&log, "--keys", ",", "--out", &out])
        .failed()
        .error_line()
        .to_owned();
    assert!(line.contains("--keys"), "{line}");

    // Ten subplots do not fit in the smallest image.
    let keys = "loss,loss_cls,lr,grad_norm,time,data_time,memory,accuracy_top-1,accuracy_top-5";
    let line = run(
        BIN,
        &[
            &log, "--keys", keys, "--width", "160", "--height", "120", "--out", &out,
        ],
    )
    .failed()
    .error_line()
    .to_owned();
    assert!(line.contains("too small"), "{line}");
    assert!(!Path::new(&out).exists());
}

#[test]
fn out_never_overwrites_a_log_and_must_be_a_png_or_svg() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = log_text(0.0);
    let log = write(dir.path(), "log.jsonl", &text);

    // --out set to the log itself (also spelt through `.`): refused, the log untouched.
    let dotted = dir.path().join(".").join("log.jsonl").display().to_string();
    for out in [&log, &dotted] {
        let line = run(BIN, &[&log, "--keys", "loss", "--out", out])
            .failed()
            .error_line()
            .to_owned();
        assert!(
            line == format!(
                "error: --out {out}: the plot is a PNG or an SVG; give the file a .png or .svg extension"
            ),
            "{line}"
        );
    }
    // A log named like a PNG, given as --out: refused as an input.
    let png_log = write(dir.path(), "log.png", &text);
    let line = run(BIN, &[&png_log, "--keys", "loss", "--out", &png_log])
        .failed()
        .error_line()
        .to_owned();
    assert_eq!(
        line,
        format!(
            "error: --out {png_log} is one of the logs to plot: refusing to write over an input"
        )
    );
    assert_eq!(std::fs::read_to_string(&png_log).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), text);

    // A good run leaves the PNG and no temporary file.
    let out = dir.path().join("curve.PNG").display().to_string();
    run(BIN, &[&log, "--keys", "loss", "--out", &out]).ok();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"curve.PNG".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
}

#[test]
fn an_svg_out_writes_an_svg_with_the_curves_and_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write(dir.path(), "log.jsonl", &log_text(0.0));
    let out = dir.path().join("curves.svg");
    let out_str = out.display().to_string();
    run(
        BIN,
        &[
            &log,
            "--keys",
            "loss,accuracy_top-1",
            "--title",
            "Swin-T Mona",
            "--out",
            &out_str,
        ],
    )
    .ok();
    let svg = std::fs::read_to_string(&out).expect("read the svg");
    assert!(
        svg.starts_with("<svg width=\"960\" height=\"540\""),
        "{}",
        &svg[..80]
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    // Both series as polylines in their palette colours, the captions and the axis label.
    for color in &PALETTE[..2] {
        let hex = format!("#{:02X}{:02X}{:02X}", color.0[0], color.0[1], color.0[2]);
        assert!(
            svg.contains(&format!("stroke=\"{hex}\"")),
            "no {hex} stroke"
        );
    }
    assert!(svg.contains("<polyline"), "no curve");
    for text in ["Swin-T Mona", "loss", "accuracy_top-1", "iter"] {
        assert!(svg.contains(&format!("\n{text}\n")), "no text {text:?}");
    }
}
