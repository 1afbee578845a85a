//! The `wgsample` binary: a thin entry point, so that everything it does
//! lives in the [`wgsample_cli`] library, where it can be read, unit-tested
//! and fuzzed.

fn main() {
    std::process::exit(wgsample_cli::main());
}
