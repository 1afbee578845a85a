//! Replays the committed fuzz seeds of the CLI's targets
//! (`fuzz/seeds/{npy,args}/*`) through the same checks the cargo-fuzz
//! targets run (`fuzz/checks/cli.rs`), so every input the fuzzers found
//! interesting stays a regression test of `cargo test -p wgsample-cli`. The
//! library's targets are replayed by the root crate's `tests/fuzz_seeds.rs`.
//! See fuzz/README.md for running the fuzzers themselves.
//!
//! Crash reproducers of bugs not fixed yet are kept out of `fuzz/seeds/`
//! (in `fuzz/crashes/`) until the fix lands.

#[path = "../../fuzz/checks/cli.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

/// Runs `check` on every file of `fuzz/seeds/<target>/` and fails with the
/// list of seeds whose check panicked (each panic message is printed above
/// it by the default hook).
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
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

/// The checks' table of the CLI's flags (`FLAG_NAMES`, in the fixed order
/// the seeds were decoded with) and its switches must list exactly the
/// flags clap declares, so a new flag reaches the `args` fuzzer's
/// vocabulary.
#[test]
fn fuzz_flag_table_matches_the_cli() {
    let mut table: Vec<&str> = checks::FLAG_NAMES.to_vec();
    table.extend_from_slice(checks::SWITCH_NAMES);
    table.sort_unstable();
    let declared: Vec<&str> = wgsample_cli::args::flag_names()
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(declared, table);
}
