//! `list-registry`: every registry with its names. Fails when a linked crate's entries are
//! missing from the binaries (a crate dropped by the linker, or not referenced by
//! `mona_tools::link_all`).

mod common;

use std::collections::BTreeMap;

use common::run;

const BIN: &str = env!("CARGO_BIN_EXE_list-registry");

/// `kind (Record): a, b` lines as kind → record → names.
fn parse(stdout: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for line in stdout.lines() {
        let (head, names) = line.split_once("): ").expect("`kind (Record): names` line");
        let (kind, record) = head.split_once(" (").expect("kind and record");
        let names = if names == "(none)" {
            Vec::new()
        } else {
            names.split(", ").map(str::to_string).collect()
        };
        out.entry(kind.to_string())
            .or_default()
            .insert(record.to_string(), names);
    }
    out
}

/// Names registered under `kind` in any record type.
fn names_of<'a>(
    all: &'a BTreeMap<String, BTreeMap<String, Vec<String>>>,
    kind: &str,
) -> Vec<&'a str> {
    all.get(kind)
        .map(|records| records.values().flatten().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn lists_every_registered_name() {
    let out = run(BIN, &[]).ok();
    let all = parse(&out.stdout);

    let methods = names_of(&all, "tuning method");
    for name in [
        "mona",
        "adapter",
        "adaptformer",
        "lora",
        "bitfit",
        "norm_tuning",
        "partial_1",
        "fixed",
        "full",
    ] {
        assert!(
            methods.contains(&name),
            "tuning method `{name}` missing:\n{}",
            out.stdout
        );
    }
    // The example plugin ships its own binaries; the core's tools do not link it.
    assert!(
        !methods.contains(&"scaled_lowrank"),
        "the shipped tools link the example plugin:\n{}",
        out.stdout
    );
    assert!(
        names_of(&all, "backbone").contains(&"SwinTransformer"),
        "{}",
        out.stdout
    );
    // mona-cls
    assert!(
        names_of(&all, "head").contains(&"LinearClsHead"),
        "{}",
        out.stdout
    );
    assert!(
        names_of(&all, "neck").contains(&"GlobalAveragePooling"),
        "{}",
        out.stdout
    );
    // mona-data
    for name in [
        "LoadImageFromFile",
        "Normalize",
        "RandomFlip",
        "Resize",
        "LoadAnnotations",
        "RandomCrop",
        "PhotoMetricDistortion",
        "Pad",
    ] {
        assert!(
            names_of(&all, "transform").contains(&name),
            "{name}:\n{}",
            out.stdout
        );
    }
}

/// mona-seg's registrations reach the binaries through `mona_seg::link`.
#[test]
fn lists_segmentation_names() {
    let out = run(BIN, &[]).ok();
    let all = parse(&out.stdout);
    assert!(
        names_of(&all, "model").contains(&"EncoderDecoder"),
        "{}",
        out.stdout
    );
    for name in ["ADE20KDataset", "CustomSegDataset"] {
        assert!(
            names_of(&all, "dataset").contains(&name),
            "{name}:\n{}",
            out.stdout
        );
    }
    assert_eq!(names_of(&all, "decode head"), ["FCNHead", "UPerHead"]);
}

/// mona-det's registrations reach the binaries through `mona_det::link`; the dataset
/// wrappers and detection formatting come from mona-data.
#[test]
fn lists_detection_names() {
    let out = run(BIN, &[]).ok();
    let all = parse(&out.stdout);
    assert!(
        names_of(&all, "model").contains(&"RetinaNet"),
        "{}",
        out.stdout
    );
    for name in [
        "VOCDataset",
        "CocoDataset",
        "RepeatDataset",
        "ConcatDataset",
    ] {
        assert!(
            names_of(&all, "dataset").contains(&name),
            "{name}:\n{}",
            out.stdout
        );
    }
    assert!(
        names_of(&all, "transform").contains(&"DefaultFormatBundle"),
        "{}",
        out.stdout
    );
    for (kind, names) in [
        ("neck", &["FPN"][..]),
        ("dense head", &["RPNHead", "RetinaHead"]),
        ("RoI head", &["CascadeRoIHead"]),
        (
            "bbox head",
            &[
                "ConvFCBBoxHead",
                "Shared2FCBBoxHead",
                "Shared4Conv1FCBBoxHead",
            ],
        ),
        ("mask head", &["FCNMaskHead"]),
        ("detection dataset", &["CocoDataset", "VOCDataset"]),
    ] {
        for name in names {
            assert!(
                names_of(&all, kind).contains(name),
                "{kind} {name}:\n{}",
                out.stdout
            );
        }
    }
}

/// Each task's metrics are a registry of their own, under the one kind `metric`.
#[test]
fn lists_every_tasks_metrics() {
    let out = run(BIN, &[]).ok();
    let all = parse(&out.stdout);
    let metrics = &all["metric"];
    let expected = [
        (
            "ClsMetricEntry",
            &[
                "accuracy",
                "accuracy_top-1",
                "accuracy_top-5",
                "f1_score",
                "precision",
                "recall",
            ][..],
        ),
        (
            "SegMetricEntry",
            &["aAcc", "mAcc", "mDice", "mFscore", "mIoU"],
        ),
        ("DetMetricEntry", &["bbox", "mAP", "segm"]),
    ];
    for (record, names) in expected {
        assert_eq!(metrics[record], names, "{}", out.stdout);
    }
}

/// The binary sees exactly what a program that calls `link_all` sees (this test does).
#[test]
fn binary_matches_link_all() {
    mona_tools::link_all();
    let expected = mona_tools::registries::registry_lines().join("\n");
    let out = run(BIN, &[]).ok();
    assert_eq!(out.stdout.trim_end(), expected);
}
