//! Annotation-list and class-file parsing, with their error messages.

mod common;

use std::path::Path;

use mona_data::datasets::{Sample, parse_ann_text, read_ann_file, read_class_file};

fn sample(filename: &str, label: usize) -> Sample {
    Sample {
        filename: filename.to_string(),
        label,
    }
}

#[test]
fn splits_at_the_last_space_and_keeps_spaces_in_paths() {
    let text = "a/b.jpg 3\nmy dir/my image.jpg 7\n  padded.png 1  \r\n";
    let got = parse_ann_text(Path::new("ann.txt"), text, None).unwrap();
    assert_eq!(
        got,
        vec![
            sample("a/b.jpg", 3),
            sample("my dir/my image.jpg", 7),
            sample("padded.png", 1)
        ]
    );
}

#[test]
fn comma_labels_keep_the_first() {
    let got = parse_ann_text(
        Path::new("voc.txt"),
        "JPEGImages/0001.jpg 3,7,12\nx.jpg 5,\n",
        None,
    )
    .unwrap();
    assert_eq!(
        got,
        vec![sample("JPEGImages/0001.jpg", 3), sample("x.jpg", 5)]
    );
}

#[test]
fn blank_lines_are_skipped_and_line_numbers_stay_true() {
    let text = "\n a.jpg 0\n\n   \nb.jpg 1\n\nbad-line\n";
    let err = parse_ann_text(Path::new("data/train.txt"), text, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("data/train.txt:7"), "{err}");
    let ok = parse_ann_text(Path::new("t.txt"), "\n a.jpg 0\n\n   \nb.jpg 1\n\n", None).unwrap();
    assert_eq!(ok, vec![sample("a.jpg", 0), sample("b.jpg", 1)]);
}

#[test]
fn malformed_lines_name_file_and_line() {
    for (text, line) in [
        ("a.jpg 1\nnolabel\n", 2),
        ("a.jpg x\n", 1),
        ("a.jpg -1\n", 1),
        ("a.jpg 1\nb.jpg ,3\n", 2),
    ] {
        let err = parse_ann_text(Path::new("ann/list.txt"), text, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("ann/list.txt:{line}:")),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn label_out_of_range_names_file_line_and_label() {
    let err = parse_ann_text(Path::new("t.txt"), "a.jpg 1\nb.jpg 2\n", Some(2))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.txt:2") && err.contains("label 2") && err.contains("2 classes"),
        "{err}"
    );
}

#[test]
fn empty_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.txt");
    std::fs::write(&path, "\n  \n").unwrap();
    let err = read_ann_file(&path, None).unwrap_err().to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("no samples"),
        "{err}"
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let err = read_ann_file(Path::new("/nonexistent/ann.txt"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/ann.txt"), "{err}");
}

#[test]
fn class_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("classes.txt");
    std::fs::write(&path, "cat\ndog house\r\n\n\n").unwrap();
    assert_eq!(read_class_file(&path).unwrap(), vec!["cat", "dog house"]);
    std::fs::write(&path, "cat\n\ndog\n").unwrap();
    let err = read_class_file(&path).unwrap_err().to_string();
    assert!(err.contains(&format!("{}:2", path.display())), "{err}");
    std::fs::write(&path, "\n").unwrap();
    assert!(read_class_file(&path).is_err());
}
