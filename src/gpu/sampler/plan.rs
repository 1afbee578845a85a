//! The dispatches of one sampling step as plain data.
//!
//! [`GpuSampler::record`](super::GpuSampler::record) encodes exactly the
//! [`Plan`] that [`Plan::for_rows`] builds from the rows' flags, so what a
//! user inspects ([`GpuSampler::plan`](super::GpuSampler::plan), `wgsample
//! sample --backend gpu --explain`) and what the unit tests count is what
//! runs. Keeping the plan separate from the wgpu calls is what lets it be
//! tested without a device.

use super::passes::{ALL, Grid, idx};
use super::{FILTERS, FLAG_MODIFIED, FLAG_TOP_K, FLAG_TOP_P};

/// One compute dispatch of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDispatch {
    /// The debug label it carries in a capture (RenderDoc, Xcode, PIX):
    /// the shader's name, and for the radix passes the digit and filter.
    pub label: String,
    /// Workgroups `[x, y, z]`: `x` chunks of 4096 logits (or 1 for a
    /// per-row pass), `y` rows.
    pub grid: [u32; 3],
    /// True when the dispatch reads whole rows of the logits (or of the
    /// processed copy of them): the passes whose cost grows with `V`.
    pub dense: bool,
    /// Index of the pass in the pipeline cache.
    pub(crate) pass: usize,
    /// Which 256-byte slot of the uniform it binds (the radix digit).
    pub(crate) slot: u32,
}

/// The dispatches one step records, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Every dispatch, in recording order.
    pub passes: Vec<PlannedDispatch>,
}

impl Plan {
    /// The plan for `batch` rows whose per-row flags are `flags` (the
    /// sampler's `FLAG_*` bits), over `chunks` chunks of 4096 logits:
    /// - `prep` and `sparse` when a row has masks, bias or penalties;
    /// - `reduce` and `merge` always;
    /// - four (`hist`, `pick`) pairs, one per 8-bit digit, when a row has
    ///   top-k, and four more when a row has top-p;
    /// - `gumbel` and `finalize` when a row has min-p, top-k or top-p.
    pub(crate) fn for_rows(flags: &[u32], chunks: u32, batch: u32) -> Plan {
        let any = |f: u32| flags.iter().any(|&x| x & f != 0);
        let mut plan = Plan::default();
        let mut add = |pass: usize, slot: u32, label: String| {
            let p = &ALL[pass];
            let x = match p.grid {
                Grid::PerChunk => chunks,
                Grid::PerRow => 1,
            };
            plan.passes.push(PlannedDispatch {
                label,
                grid: [x, batch, 1],
                dense: p.grid == Grid::PerChunk,
                pass,
                slot,
            });
        };
        let name = |pass: usize| ALL[pass].name.to_string();
        if any(FLAG_MODIFIED) {
            add(idx::PREP, 0, name(idx::PREP));
            add(idx::SPARSE, 0, name(idx::SPARSE));
        }
        add(idx::REDUCE, 0, name(idx::REDUCE));
        add(idx::MERGE, 0, name(idx::MERGE));
        for (flag, filter, first) in [(FLAG_TOP_K, "top-k", 0u32), (FLAG_TOP_P, "top-p", 4)] {
            if any(flag) {
                for d in 0..4 {
                    add(idx::HIST, first + d, format!("hist {filter} digit {d}"));
                    add(idx::PICK, first + d, format!("pick {filter} digit {d}"));
                }
            }
        }
        if any(FILTERS) {
            add(idx::GUMBEL, 0, name(idx::GUMBEL));
            add(idx::FINALIZE, 0, name(idx::FINALIZE));
        }
        plan
    }

    /// The number of dispatches.
    pub fn dispatches(&self) -> usize {
        self.passes.len()
    }

    /// The number of dispatches that read whole rows
    /// ([`PlannedDispatch::dense`]).
    pub fn dense_passes(&self) -> usize {
        self.passes.iter().filter(|p| p.dense).count()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FLAG_GREEDY, FLAG_MIN_P, FLAG_SCALED};
    use super::*;

    fn counts(flags: &[u32]) -> (usize, usize) {
        let p = Plan::for_rows(flags, 32, flags.len() as u32);
        (p.dispatches(), p.dense_passes())
    }

    #[test]
    fn counts_per_configuration() {
        // The cost table of the module docs, counted (dispatches, dense).
        assert_eq!(counts(&[FLAG_GREEDY]), (2, 1));
        assert_eq!(counts(&[0]), (2, 1));
        assert_eq!(counts(&[FLAG_SCALED]), (2, 1));
        assert_eq!(counts(&[FLAG_MIN_P]), (4, 2));
        assert_eq!(counts(&[FLAG_TOP_K]), (12, 6));
        assert_eq!(counts(&[FLAG_TOP_P]), (12, 6));
        assert_eq!(counts(&[FLAG_TOP_K | FLAG_TOP_P]), (20, 10));
        assert_eq!(counts(&[FLAG_TOP_P | FLAG_MODIFIED]), (14, 7));
        // A batch takes the union of its rows' needs.
        assert_eq!(counts(&[FLAG_TOP_K, FLAG_GREEDY, FLAG_TOP_P]), (20, 10));
    }

    #[test]
    fn grids_and_labels() {
        let p = Plan::for_rows(&[FLAG_TOP_K, 0, 0], 32, 3);
        assert_eq!(p.passes[0].label, "reduce");
        assert_eq!(p.passes[0].grid, [32, 3, 1]);
        assert!(p.passes[0].dense);
        assert_eq!(p.passes[1].label, "merge");
        assert_eq!(p.passes[1].grid, [1, 3, 1]);
        assert!(!p.passes[1].dense);
        assert_eq!(p.passes[2].label, "hist top-k digit 0");
        assert_eq!(p.passes[9].label, "pick top-k digit 3");
        assert_eq!(p.passes[9].slot, 3);
        assert_eq!(p.passes.last().unwrap().label, "finalize");
    }
}
