//! The Rust side of each pass of the sampling pipeline, one module per
//! shader (`shaders/sampler/<name>.wgsl`), so each can be read next to its
//! WGSL. Every pass binds the same layout (see `bindings.wgsl` and
//! [`super::Buffers`]); what differs is the source and the grid: per-chunk
//! passes run `(chunks, B)` workgroups (1024 logits each) so several
//! workgroups share a long row, per-row passes run `(1, B)`.

/// How a pass is dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grid {
    /// `(chunks, B)`: one workgroup per 1024 logits of each row.
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
    overlay,
    "overlay.wgsl",
    Grid::PerRow,
    "SPEC steps 2-4 for the tokens the rows' lists touch: a hash table per row (the sparse overlay)."
);
pass_module!(
    scan,
    "scan.wgsl",
    Grid::PerChunk,
    "The one dense pass: input check, logprob statistics, max, Gumbel-max of plain rows, and each chunk's candidates."
);
pass_module!(
    finish,
    "finish.wgsl",
    Grid::PerRow,
    "Merges the chunk partials, runs min-p, top-k and top-p on the candidates (or the row), samples, writes outputs and state."
);

pass_module!(
    rank,
    "rank.wgsl",
    Grid::PerChunk,
    "The sampled token's rank for rows that ask for top logprobs: a count of the larger raw logits."
);

pass_module!(
    recover,
    "recover.wgsl",
    Grid::PerChunk,
    "Verification with draft probabilities: each chunk's Gumbel-max of ln(p - q) + g, the recovered token of a rejection."
);
pass_module!(
    accept,
    "accept.wgsl",
    Grid::PerRow,
    "Verification: accepts or rejects each row's drafts in order, writes the emitted tokens and advances the state."
);

/// Every pass, in pipeline-cache order.
pub(crate) const ALL: [Pass; 6] = [
    overlay::PASS,
    scan::PASS,
    finish::PASS,
    rank::PASS,
    recover::PASS,
    accept::PASS,
];

/// Index of each pass in [`ALL`].
pub(crate) mod idx {
    pub const OVERLAY: usize = 0;
    pub const SCAN: usize = 1;
    pub const FINISH: usize = 2;
    pub const RANK: usize = 3;
    pub const RECOVER: usize = 4;
    pub const ACCEPT: usize = 5;
}

/// The constants the Rust side and the WGSL share, as WGSL, generated from
/// the Rust values so they are written once.
pub(crate) fn wgsl_constants() -> String {
    use super::*;
    let consts: [(&str, u64); 23] = [
        ("FLAG_GREEDY", FLAG_GREEDY.into()),
        ("FLAG_MIN_P", FLAG_MIN_P.into()),
        ("FLAG_TOP_K", FLAG_TOP_K.into()),
        ("FLAG_TOP_P", FLAG_TOP_P.into()),
        ("FLAG_ALLOWED", FLAG_ALLOWED.into()),
        ("FLAG_SCALED", FLAG_SCALED.into()),
        ("FLAG_OVERLAY", FLAG_OVERLAY.into()),
        ("FLAG_TOPLP", FLAG_TOPLP.into()),
        ("TOPN", TOPN),
        ("OUT_WORDS", OUT_WORDS),
        ("FILTERS", FILTERS.into()),
        ("CHUNK", CHUNK.into()),
        ("CAND", CAND),
        ("ROW_WORDS", ROW_WORDS),
        ("PART_WORDS", PART_WORDS),
        ("OV_FIELDS", OV_FIELDS),
        ("ST_OK", Status::Ok.code().into()),
        ("ST_INVALID", Status::InvalidLogits.code().into()),
        ("ST_NONE", Status::NoCandidates.code().into()),
        ("ST_BAD_DRAFT", Status::InvalidDraft.code().into()),
        ("PATH_CANDIDATES", RowPath::Candidates.code().into()),
        ("PATH_FULL_ROW", RowPath::FullRow.code().into()),
        ("PATH_NONE", RowPath::NoSelection.code().into()),
    ];
    crate::gpu::kit::wgsl_consts(&consts)
}

/// The full WGSL of a pass: shared helpers, the generated constants, the
/// sampler's bindings, then the pass itself.
pub(crate) fn full_source(pass: &Pass) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        include_str!("../../../shaders/common.wgsl"),
        wgsl_constants(),
        include_str!("../../../shaders/sampler/bindings.wgsl"),
        pass.source
    )
}
