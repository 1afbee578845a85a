//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/*`) through the
//! same checks the cargo-fuzz targets run (`fuzz/checks/mod.rs`), so every
//! input the fuzzers found interesting stays a regression test of the plain
//! `cargo test`. See fuzz/README.md for running the fuzzers themselves.
//!
//! The `gpu_cpu` seeds need a wgpu adapter (lavapipe is enough), like the
//! other GPU tests. Crash reproducers of bugs not fixed yet are kept out of
//! `fuzz/seeds/` (in `fuzz/crashes/`) until the fix lands.

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

/// Runs `check` on every file of `fuzz/seeds/<target>/` and fails with the
/// list of seeds whose check panicked (each panic message is printed above
/// it by the default hook).
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
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

#[test]
fn fuzz_seeds_npy() {
    replay("npy", checks::npy);
}

#[test]
fn fuzz_seeds_args() {
    replay("args", checks::args);
}

#[test]
fn fuzz_seeds_params() {
    replay("params", checks::params);
}

#[test]
fn fuzz_seeds_gpu_cpu() {
    replay("gpu_cpu", checks::gpu_cpu);
}

/// The checks' copy of the CLI's flag table (`FLAGS` is private to
/// src/cli/args.rs) and its switches must list exactly the flags the usage
/// text documents, so a new flag reaches the `args` fuzzer's vocabulary.
#[test]
fn fuzz_flag_table_matches_usage() {
    let usage = checks::cli_args::USAGE;
    let mut documented: Vec<&str> = usage
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .filter(|w| *w != "--help" && *w != "--option")
        .collect();
    documented.sort_unstable();
    documented.dedup();
    let mut table: Vec<&str> = checks::FLAG_NAMES.to_vec();
    table.extend_from_slice(checks::SWITCH_NAMES);
    table.sort_unstable();
    assert_eq!(documented, table);
}
