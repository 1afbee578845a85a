//! The seed replay shared by the two `fuzz_seeds` tests (the library's,
//! `tests/fuzz_seeds.rs`, and the CLI's, `cli/tests/fuzz_seeds.rs`), which
//! include this file with `#[path]`: every committed fuzz seed runs through
//! the check its cargo-fuzz target runs, in a plain `cargo test`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Runs `check` on every file of `<seeds>/<target>/` (`seeds` is the
/// repository's `fuzz/seeds`) and fails with the
/// list of seeds whose check panicked (each panic message is printed above
/// it by the default hook).
pub fn replay(seeds: &Path, target: &str, check: fn(&[u8])) {
    let dir = seeds.join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    let mut failed = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if catch_unwind(AssertUnwindSafe(|| check(&bytes))).is_err() {
            failed.push(
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    eprintln!("{target}: {} seeds replayed", files.len());
    assert!(
        failed.is_empty(),
        "{target}: {} of {} seeds fail: {failed:?} (replay one with `cargo +nightly fuzz run {target} fuzz/seeds/{target}/<file>` in fuzz/)",
        failed.len(),
        files.len()
    );
}
