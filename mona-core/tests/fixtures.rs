//! Parity with the golden PyTorch fixtures: every `*.json` of `$MONA_FIXTURES` (default
//! `../shared/fixtures`) is run by its `kind` on `$MONA_TEST_DEVICE` (default the CPU); one
//! line per fixture is printed (outside the test harness's capture) and any failure, or an
//! unknown kind, fails the test. The checks live in `mona_fixtures::golden` so that
//! `bench --fixtures` runs the same code on a GPU.

use mona_fixtures::{fixtures_dir, golden, test_device};

#[test]
fn golden_fixtures() {
    let failed = golden::run_all(&fixtures_dir(), &test_device()).unwrap_or_else(|e| panic!("{e}"));
    assert!(failed.is_empty(), "fixtures failed: {failed:?}");
}
