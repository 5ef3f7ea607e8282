//! Settings that used to run and give a wrong result (or a panic) now stop before any work
//! with an error naming the key and the value: a head smaller than the dataset, optimizer
//! arguments PyTorch refuses, metric names no task computes, and component types or keys
//! nothing implements.

mod common;

use common::run;

const CLS_DEMO: &str = "configs/demo/fashion_mnist_swin_mona.toml";
const SEG_DEMO: &str = "configs/demo/seg_demo_swin_mona_upernet.toml";
const DET_DEMO: &str = "configs/demo/det_demo_swin_mona_retinanet.toml";

/// `train CONFIG --work-dir (temp) --cfg-options OPTIONS`, which must fail with one error
/// line; returns that line.
fn train_error(config: &str, options: &[&str]) -> String {
    let work = tempfile::tempdir().unwrap();
    let mut args = vec![config, "--work-dir", work.path().to_str().unwrap()];
    if !options.is_empty() {
        args.push("--cfg-options");
        args.extend_from_slice(options);
    }
    let out = run(env!("CARGO_BIN_EXE_train"), &args).failed();
    assert!(
        !work.path().join("log.jsonl").exists()
            || std::fs::read_to_string(work.path().join("log.jsonl"))
                .unwrap()
                .is_empty(),
        "nothing may train"
    );
    out.error_line().to_string()
}

#[test]
fn a_head_smaller_than_the_dataset_is_refused() {
    assert_eq!(
        train_error(CLS_DEMO, &["model.head.num_classes=5"]),
        "error: model.head.num_classes is 5, but data.train has 10 classes; set \
         model.head.num_classes = 10"
    );
    // Detection wants the dataset's classes exactly (mmdet's NumClassCheckHook).
    assert_eq!(
        train_error(DET_DEMO, &["model.bbox_head.num_classes=3"]),
        "error: model.bbox_head.num_classes is 3, but data.train has 1 class; set \
         model.bbox_head.num_classes = 1"
    );
    assert_eq!(
        train_error(
            SEG_DEMO,
            &[
                "model.decode_head.num_classes=2",
                "model.auxiliary_head.num_classes=2"
            ]
        ),
        "error: model.decode_head.num_classes is 2, but data.train has 4 classes; set \
         model.decode_head.num_classes = 4"
    );
}

#[test]
fn optimizer_arguments_pytorch_refuses_are_config_errors() {
    let file = CLS_DEMO.to_string();
    let cases = [
        (
            "optimizer.lr=-0.01",
            "optimizer.lr",
            "-0.01 is invalid: it must be a finite number ≥ 0",
        ),
        (
            "optimizer.weight_decay=-0.05",
            "optimizer.weight_decay",
            "-0.05 is invalid: it must be a finite number ≥ 0",
        ),
        (
            "optimizer.betas=[0.9,1.0]",
            "optimizer.betas",
            "betas[1] = 1 is invalid: each beta must lie in [0, 1)",
        ),
        (
            "optimizer.eps=-1e-8",
            "optimizer.eps",
            "-0.00000001 is invalid: it must be a finite number ≥ 0",
        ),
    ];
    for (option, key, message) in cases {
        let line = train_error(CLS_DEMO, &[option]);
        assert!(
            line.contains(key) && line.ends_with(message),
            "{option}: {line}"
        );
        // The option that set the value is named, not the file that declared the table.
        assert!(line.starts_with("error: --cfg-options: "), "{line}");
        assert!(!line.contains(&file), "{line}");
    }
    let line = train_error(
        CLS_DEMO,
        &[
            "optimizer.type=SGD",
            "optimizer.momentum=-0.9",
            "optimizer.betas=None",
        ],
    );
    assert!(
        line.contains("optimizer.momentum")
            && line.ends_with("-0.9 is invalid: it must be a finite number ≥ 0"),
        "{line}"
    );
}

#[test]
fn unknown_metrics_are_refused_by_every_task() {
    let cases = [
        (
            CLS_DEMO,
            "classification",
            "accuracy, accuracy_top-1, accuracy_top-5, f1_score, precision, recall",
        ),
        (SEG_DEMO, "segmentation", "aAcc, mAcc, mDice, mFscore, mIoU"),
        (DET_DEMO, "detection", "bbox, mAP, segm"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("never_read.safetensors");
    for (config, task, supported) in cases {
        let out = run(
            env!("CARGO_BIN_EXE_test"),
            &[config, ckpt.to_str().unwrap(), "--metrics", "foo"],
        )
        .failed();
        assert_eq!(
            out.error_line(),
            format!(
                "error: --metrics: metric \"foo\" is not supported for {task} (supported: {supported})"
            )
        );
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        // The same name in the config is refused before training.
        assert_eq!(
            train_error(config, &["evaluation.metric=foo"]),
            format!(
                "error: evaluation.metric: metric \"foo\" is not supported for {task} (supported: {supported})"
            )
        );
    }
}

/// A near miss of a registered metric is named, as a misspelt component type is.
#[test]
fn a_misspelt_metric_gets_the_nearest_names() {
    assert_eq!(
        train_error(SEG_DEMO, &["evaluation.metric=miou"]),
        "error: evaluation.metric: metric \"miou\" is not supported for segmentation (did you mean mIoU?) (supported: aAcc, mAcc, mDice, mFscore, mIoU)"
    );
    assert_eq!(
        train_error(DET_DEMO, &["evaluation.metric=[\"mAP\", \"bboxes\"]"]),
        "error: evaluation.metric: metric \"bboxes\" is not supported for detection (did you mean bbox?) (supported: bbox, mAP, segm)"
    );
}

#[test]
fn zero_batch_shards_names_the_setting() {
    let line = train_error(CLS_DEMO, &["runner.batch_shards=0"]);
    assert!(
        line.contains("runner.batch_shards")
            && line.ends_with("batch_shards must be at least 1 (1 runs every batch whole)"),
        "{line}"
    );
}

#[test]
fn zero_batch_and_zero_devices_name_the_setting() {
    let line = train_error(CLS_DEMO, &["data.samples_per_gpu=0"]);
    assert!(
        line.contains("data.samples_per_gpu")
            && line.ends_with("0 images per batch: it must be at least 1"),
        "{line}"
    );
    let work = tempfile::tempdir().unwrap();
    let out = run(
        env!("CARGO_BIN_EXE_train"),
        &[
            CLS_DEMO,
            "--work-dir",
            work.path().to_str().unwrap(),
            "--gpus",
            "0",
        ],
    )
    .failed();
    assert_eq!(
        out.error_line(),
        "error: --gpus 0: training needs at least one device (the default is 1)"
    );
}

#[test]
fn show_score_thr_is_a_score_and_needs_show_dir() {
    let test = |extra: &[&str]| {
        let mut args = vec![CLS_DEMO, "model.safetensors"];
        args.extend_from_slice(extra);
        let out = run(env!("CARGO_BIN_EXE_test"), &args);
        assert_eq!(out.code, Some(2), "a usage error: {}", out.stderr);
        out.stderr
    };
    let err = test(&["--show-dir", "show", "--show-score-thr", "1.5"]);
    assert!(
        err.contains("invalid value '1.5' for '--show-score-thr <SHOW_SCORE_THR>'")
            && err.contains("expected a score between 0 and 1, got `1.5`"),
        "{err}"
    );
    let err = test(&["--show-score-thr", "0.5"]);
    assert!(
        err.contains("the following required arguments were not provided")
            && err.contains("--show-dir <SHOW_DIR>"),
        "{err}"
    );
}

#[test]
fn test_outputs_are_checked_before_inference() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("model.safetensors");
    std::fs::write(&ckpt, b"not read").unwrap();
    let ckpt = ckpt.to_str().unwrap();
    let test = |extra: &[&str]| {
        let mut args = vec![CLS_DEMO, ckpt];
        args.extend_from_slice(extra);
        run(env!("CARGO_BIN_EXE_test"), &args).failed()
    };
    assert_eq!(
        test(&["--format-only"]).error_line(),
        "error: --format-only writes only the predictions: give --out FILE"
    );
    // No output over an input: the checkpoint and the config stay as they are.
    assert_eq!(
        test(&["--out", ckpt]).error_line(),
        format!("error: --out {ckpt}: is the input {ckpt}; refusing to write over it")
    );
    assert_eq!(std::fs::read(ckpt).unwrap(), b"not read");
    assert_eq!(
        test(&["--out", CLS_DEMO]).error_line(),
        format!("error: --out {CLS_DEMO}: is the input {CLS_DEMO}; refusing to write over it")
    );
    let folder = dir.path().display().to_string();
    assert_eq!(
        test(&["--out", &folder]).error_line(),
        format!("error: --out {folder}: is a folder; give a file name")
    );
    assert_eq!(
        test(&["--show-dir", ckpt]).error_line(),
        format!("error: --show-dir {ckpt}: is a file; give a folder")
    );
    // A place that cannot be created: under a file.
    let under_file = format!("{ckpt}/sub/out.json");
    let line = test(&["--out", &under_file]).error_line().to_string();
    assert!(
        line.starts_with(&format!(
            "error: --out {under_file}: cannot create {ckpt}/sub: "
        )),
        "{line}"
    );
    // Classification draws nothing: --show-dir says so instead of doing nothing.
    let show = dir.path().join("show").display().to_string();
    assert_eq!(
        test(&["--show-dir", &show]).error_line(),
        format!(
            "error: --show-dir {show}: classification draws no pictures; --out FILE writes \
             every image's predicted class and score"
        )
    );
}

#[test]
fn keys_nothing_reads_are_named_with_the_nearest_key() {
    let work = tempfile::tempdir().unwrap();
    let work_dir = work.path().to_str().unwrap();
    let typos = ["--cfg-options", "runner.max_epoch=1", "optimzer.lr=0.1"];
    let mut strict = vec![CLS_DEMO, "--work-dir", work_dir, "--strict"];
    strict.extend_from_slice(&typos);
    let out = run(env!("CARGO_BIN_EXE_train"), &strict).failed();
    assert_eq!(
        out.error_line(),
        "error: --cfg-options: `optimzer` is not a key any component reads (did you mean \
         `optimizer`?); --cfg-options: `runner.max_epoch` is not a key any component reads \
         (did you mean `max_epochs`?) (--strict)"
    );
    // Without --strict: one warning per key (the run is cut after one iteration).
    let mut loose = vec![CLS_DEMO, "--work-dir", work_dir, "--stop-after", "1"];
    loose.extend_from_slice(&typos);
    let out = run(env!("CARGO_BIN_EXE_train"), &loose).ok();
    // A log that is not a terminal (here a pipe) gets no colour codes.
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
    for line in [
        "--cfg-options: `optimzer` is not a key any component reads (did you mean `optimizer`?); it is ignored (--strict makes this an error)",
        "--cfg-options: `runner.max_epoch` is not a key any component reads (did you mean `max_epochs`?); it is ignored",
    ] {
        assert!(out.stderr.contains(line), "{line}\n{}", out.stderr);
    }
}

#[test]
fn no_shipped_config_has_a_key_nothing_reads() {
    fn tomls(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                tomls(&path, out);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    let mut configs = Vec::new();
    tomls(&common::workspace().join("configs"), &mut configs);
    assert!(configs.len() > 30, "{} configs", configs.len());
    for path in configs {
        let config = mona_core::config::Config::from_file(&path).unwrap();
        let unknown = mona_core::config::unknown_keys(&config);
        assert!(unknown.is_empty(), "{}: {unknown:?}", path.display());
    }
}

const MASK_DEMO: &str = "configs/demo/mask_demo_swin_mona_cascade.toml";

/// Every component is chosen by name through a registry: a misspelt or unimplemented `type`
/// (which for detection necks, heads and sub-components used to build ours silently) names
/// the source of the value, the key and the nearest registered names.
#[test]
fn component_types_are_looked_up_by_name() {
    let cases: [(&str, &str, &str); 10] = [
        (
            DET_DEMO,
            "model.neck.type=PAFPN",
            "model.neck.type: unknown neck type \"PAFPN\" (did you mean FPN?); registered: FPN",
        ),
        (
            DET_DEMO,
            "model.bbox_head.type=RetinaHaed",
            "model.bbox_head.type: unknown dense head type \"RetinaHaed\" (did you mean RetinaHead?); registered: RPNHead, RetinaHead",
        ),
        (
            DET_DEMO,
            "model.bbox_head.type=RPNHead",
            "model.bbox_head.type: RPNHead: a region proposal head; RetinaNet needs a single-stage head (RetinaHead)",
        ),
        (
            DET_DEMO,
            "model.bbox_head.loss_bbox.type=GIoULoss",
            "model.bbox_head.loss_bbox.type: unknown box loss type \"GIoULoss\"; registered: L1Loss",
        ),
        (
            DET_DEMO,
            "model.test_cfg.nms.type=soft_nms",
            "model.test_cfg.nms.type: unknown NMS type \"soft_nms\" (did you mean nms?); registered: nms",
        ),
        (
            DET_DEMO,
            "data.val.type=VOCDatset",
            "data.val.type: unknown detection dataset type \"VOCDatset\" (did you mean VOCDataset or CocoDataset?); registered: CocoDataset, VOCDataset",
        ),
        (
            MASK_DEMO,
            "model.roi_head.bbox_head.1.type=Shared2FCBoxHead",
            "model.roi_head.bbox_head.1.type: unknown bbox head type \"Shared2FCBoxHead\" (did you mean Shared2FCBBoxHead or Shared4Conv1FCBBoxHead?); registered: ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead",
        ),
        (
            MASK_DEMO,
            "model.train_cfg.rcnn.0.sampler.type=OHEMSampler",
            "model.train_cfg.rcnn.0.sampler.type: unknown sampler type \"OHEMSampler\" (did you mean RandomSampler?); registered: RandomSampler",
        ),
        (
            SEG_DEMO,
            "model.auxiliary_head.type=FCNhead",
            "model.auxiliary_head.type: unknown decode head type \"FCNhead\" (did you mean FCNHead?); registered: FCNHead, UPerHead",
        ),
        (
            SEG_DEMO,
            "data.val.type=ADE20K",
            "data.val.type: unknown segmentation dataset type \"ADE20K\" (did you mean ADE20KDataset?); registered: ADE20KDataset, CustomSegDataset",
        ),
    ];
    for (config, option, message) in cases {
        assert_eq!(
            train_error(config, &[option]),
            format!("error: --cfg-options: {message}"),
            "{config} {option}"
        );
    }
}

/// A misspelt key of a dense head, its losses or the model's `test_cfg` stops the run (these
/// were read without a check of unknown keys, so `stacked_conv = 2` trained with the default
/// 4 convolutions in silence).
#[test]
fn a_key_a_dense_head_does_not_read_is_refused() {
    let cases = [
        (
            DET_DEMO,
            "model.bbox_head.stacked_conv=2",
            "model.bbox_head.stacked_conv`: unknown field: found `stacked_conv`",
        ),
        (
            DET_DEMO,
            "model.test_cfg.nms_pre_=100",
            "model.test_cfg.nms_pre_`: unknown field: found `nms_pre_`, expected `one of `nms_pre`",
        ),
        (
            DET_DEMO,
            "model.bbox_head.loss_cls.gama=2.0",
            "model.bbox_head.loss_cls.gama`: unknown field: found `gama`",
        ),
        (
            MASK_DEMO,
            "model.rpn_head.loss_cls.use_sigmod=true",
            "model.rpn_head.loss_cls.use_sigmod`: unknown field: found `use_sigmod`, expected `one of `type`, `use_sigmoid`",
        ),
        (
            MASK_DEMO,
            "model.train_cfg.rpn.allowed_bordr=0",
            "model.train_cfg.rpn.allowed_bordr`: unknown field: found `allowed_bordr`",
        ),
    ];
    for (config, option, message) in cases {
        let line = train_error(config, &[option]);
        assert!(
            line.starts_with("error: --cfg-options: invalid value at `") && line.contains(message),
            "{option}: {line}"
        );
    }
}

/// A key a decode head does not read is an error naming it and the nearest key it reads (it
/// used to be refused by a generic serde message, or after this change silently ignored).
#[test]
fn a_key_a_head_does_not_read_is_refused() {
    assert_eq!(
        train_error(SEG_DEMO, &["model.decode_head.pool_scale=[1,2]"]),
        "error: --cfg-options: model.decode_head.pool_scale: unknown key of a UPerHead (did you \
         mean pool_scales?); it reads in_channels, in_index, channels, num_classes, \
         dropout_ratio, norm_cfg, align_corners, loss_decode, ignore_index, pool_scales"
    );
    // FCNHead's own keys are not UPerHead's.
    assert!(
        train_error(SEG_DEMO, &["model.auxiliary_head.pool_scales=[1]"])
            .contains("model.auxiliary_head.pool_scales: unknown key of a FCNHead"),
    );
}
