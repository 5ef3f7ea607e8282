//! Running the plugin's binaries from its tests.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a binary of this crate in the workspace root: (status, stdout, stderr).
pub fn run(bin: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(workspace())
        .env("RUST_LOG", "warn")
        .output()
        .expect("binary starts");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `name: value` lines a tool prints for its final metrics.
pub fn metric(stdout: &str, name: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in\n{stdout}"))
        .parse()
        .expect("a number")
}

/// The one `error:` line of a run of `bin` with `args` that must fail with status 1 and no
/// panic.
pub fn error_line(bin: &str, args: &[&str]) -> String {
    let (code, _, stderr) = run(bin, args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in\n{stderr}"))
        .to_string()
}
