//! Helpers shared by the tools' integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (`tools/..`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `$MONA_FIXTURES` when set, else `<workspace>/../shared/fixtures`.
pub fn fixtures() -> PathBuf {
    match std::env::var_os("MONA_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures"
        )),
    }
}

/// A binary's result: status code, stdout, stderr.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with both streams unless the run succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the run failed with status 1, one `error:` line and no panic.
    pub fn failed(self) -> Self {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit status 1\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "panicked:\n{}",
            self.stderr
        );
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "expected one error line:\n{}", self.stderr);
        self
    }

    /// The `error: ...` line.
    pub fn error_line(&self) -> &str {
        self.stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or("")
    }
}

/// Runs `bin` with `args` from the workspace root, logging warnings and errors only.
pub fn run(bin: &str, args: &[&str]) -> Run {
    run_logging(bin, args, "warn")
}

/// Runs `bin` with `args` from the workspace root, with `RUST_LOG=filter`.
pub fn run_logging(bin: &str, args: &[&str], filter: &str) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(bin)
        .args(args)
        .current_dir(workspace())
        .env("RUST_LOG", filter)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path.display().to_string()
}

/// Writes the first `n` lines of the fashion-mnist demo's `meta/SPLIT.txt` annotation file to
/// `dir/SPLIT.txt` and returns that path: a smaller split of the shipped demo data.
pub fn demo_split(dir: &Path, split: &str, n: usize) -> String {
    let file = workspace().join(format!("data/fashion-mnist-mini/meta/{split}.txt"));
    let head: String = std::fs::read_to_string(&file)
        .expect("read the demo's annotation file")
        .lines()
        .take(n)
        .map(|l| format!("{l}\n"))
        .collect();
    write(dir, &format!("{split}.txt"), &head)
}

/// Trains `config` into `work` with `--cfg-options options`, which must succeed.
pub fn train_into(config: &str, work: &Path, options: &[&str]) {
    let mut args = vec![
        config,
        "--work-dir",
        work.to_str().unwrap(),
        "--cfg-options",
    ];
    args.extend_from_slice(options);
    run(env!("CARGO_BIN_EXE_train"), &args).ok();
}
