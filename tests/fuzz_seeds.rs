//! Replays the committed fuzz seeds of the library's targets
//! (`fuzz/seeds/{params,gpu_cpu}/*`) through the same checks the cargo-fuzz
//! targets run (`fuzz/checks/mod.rs`), so every input the fuzzers found
//! interesting stays a regression test of the plain `cargo test`. The CLI's
//! targets (`npy`, `args`) are replayed by `cli/tests/fuzz_seeds.rs`. See
//! fuzz/README.md for running the fuzzers themselves.
//!
//! The `gpu_cpu` seeds need a wgpu adapter (lavapipe is enough), like the
//! other GPU tests. Crash reproducers of bugs not fixed yet are kept out of
//! `fuzz/seeds/` (in `fuzz/crashes/`) until the fix lands.

#[path = "../fuzz/checks/mod.rs"]
mod checks;

#[path = "../fuzz/checks/replay.rs"]
mod replay;

/// [`replay::replay`] over this repository's `fuzz/seeds`.
fn replay(target: &str, check: fn(&[u8])) {
    replay::replay(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds"),
        target,
        check,
    );
}

#[test]
fn fuzz_seeds_params() {
    replay("params", checks::params);
}

#[test]
fn fuzz_seeds_gpu_cpu() {
    replay("gpu_cpu", checks::gpu_cpu);
}
