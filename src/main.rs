//! The `wgsample` binary: a thin entry point, so that everything it does
//! lives in the [`cli`] module where it can be read and unit-tested.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
