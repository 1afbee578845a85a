//! The Rust side of each pass of the sampling pipeline, one module per
//! shader (`shaders/sampler/<name>.wgsl`), so each can be read next to its
//! WGSL. Every pass binds the same layout (see `bindings.wgsl` and
//! [`super::Buffers`]); what differs is the source and the grid: per-chunk
//! passes run `(chunks, B)` workgroups so several workgroups share a long
//! row, per-row passes run `(1, B)`.

/// How a pass is dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grid {
    /// `(chunks, B)`: one workgroup per 4096 logits of each row.
    PerChunk,
    /// `(1, B)`: one workgroup per row.
    PerRow,
}

/// A pass: its name, WGSL source (without the shared prelude) and grid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass {
    pub name: &'static str,
    pub source: &'static str,
    pub grid: Grid,
}

macro_rules! pass_module {
    ($modname:ident, $file:literal, $grid:expr, $doc:literal) => {
        #[doc = $doc]
        pub(crate) mod $modname {
            use super::{Grid, Pass};
            /// This pass.
            pub(crate) const PASS: Pass = Pass {
                name: stringify!($modname),
                source: include_str!(concat!("../../../shaders/sampler/", $file)),
                grid: $grid,
            };
        }
    };
}

pass_module!(
    prep,
    "prep.wgsl",
    Grid::PerChunk,
    "Dense copy of rows with masks/bias/penalties into the work buffer, allowed mask applied."
);
pass_module!(
    sparse,
    "sparse.wgsl",
    Grid::PerRow,
    "Banned, EOS, bias and penalties on the work buffer, in SPEC order."
);
pass_module!(
    reduce,
    "reduce.wgsl",
    Grid::PerChunk,
    "Input check, raw softmax stats, max/argmax of z, Gumbel-max of plain rows, per chunk."
);
pass_module!(
    merge,
    "merge.wgsl",
    Grid::PerRow,
    "Merges the chunk partials; finishes greedy/plain rows; sets up the threshold search."
);
pass_module!(
    hist,
    "hist.wgsl",
    Grid::PerChunk,
    "One 8-bit digit of the radix search: counts (top-k) or fixed-point mass (top-p)."
);
pass_module!(
    pick,
    "pick.wgsl",
    Grid::PerRow,
    "Scans a row's histogram and picks the digit where count k / mass top_p is reached."
);
pass_module!(
    gumbel,
    "gumbel.wgsl",
    Grid::PerChunk,
    "Gumbel-max over the survivors of filtered rows, per chunk."
);
pass_module!(
    finalize,
    "finalize.wgsl",
    Grid::PerRow,
    "Merges the Gumbel partials and finishes the filtered rows."
);

/// Every pass, in pipeline-cache order.
pub(crate) const ALL: [Pass; 8] = [
    prep::PASS,
    sparse::PASS,
    reduce::PASS,
    merge::PASS,
    hist::PASS,
    pick::PASS,
    gumbel::PASS,
    finalize::PASS,
];

/// Index of each pass in [`ALL`].
pub(crate) mod idx {
    pub const PREP: usize = 0;
    pub const SPARSE: usize = 1;
    pub const REDUCE: usize = 2;
    pub const MERGE: usize = 3;
    pub const HIST: usize = 4;
    pub const PICK: usize = 5;
    pub const GUMBEL: usize = 6;
    pub const FINALIZE: usize = 7;
}

/// The full WGSL of a pass: shared helpers, the sampler's bindings, then
/// the pass itself.
pub(crate) fn full_source(pass: &Pass) -> String {
    format!(
        "{}\n{}\n{}",
        include_str!("../../../shaders/common.wgsl"),
        include_str!("../../../shaders/sampler/bindings.wgsl"),
        pass.source
    )
}
