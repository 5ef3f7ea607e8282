//! Path questions the tools ask before writing, so that no output lands on an input.

use std::path::Path;

/// Whether `a` and `b` name the same file: compared after resolving `.`, `..` and links
/// when both exist, else as written.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
