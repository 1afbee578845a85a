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

#[path = "../../fuzz/checks/replay.rs"]
mod replay;

/// [`replay::replay`] over this repository's `fuzz/seeds`.
fn replay(target: &str, check: fn(&[u8])) {
    replay::replay(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds"),
        target,
        check,
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
