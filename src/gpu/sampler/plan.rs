//! The dispatches of one sampling step as plain data.
//!
//! [`GpuSampler::record`](super::GpuSampler::record) encodes exactly the
//! [`Plan`] that [`Plan::for_rows`] builds from the rows' flags, so what a
//! user inspects ([`GpuSampler::plan`](super::GpuSampler::plan), `wgsample
//! sample --backend gpu --explain`) and what the unit tests count is what
//! runs. Keeping the plan separate from the wgpu calls is what lets it be
//! tested without a device.

use super::passes::{ALL, Grid, idx};
use super::{FLAG_OVERLAY, FLAG_TOPLP};

/// One compute dispatch of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDispatch {
    /// The debug label it carries in a capture (RenderDoc, Xcode, PIX):
    /// the shader's name.
    pub label: String,
    /// Workgroups `[x, y, z]`: `x` chunks of 1024 logits (or 1 for a
    /// per-row pass), `y` rows.
    pub grid: [u32; 3],
    /// True when the dispatch reads whole rows of the logits: the passes
    /// whose cost grows with `V`. The per-row `finish` pass is not dense:
    /// it reads the chunks' candidates, and reads a row only in the rare
    /// case where they cannot be proven complete (see
    /// [`GpuSampler::last_step_paths`](super::GpuSampler::last_step_paths)).
    pub dense: bool,
    /// Index of the pass in the pipeline cache.
    pub(crate) pass: usize,
}

/// The dispatches one step records, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Every dispatch, in recording order.
    pub passes: Vec<PlannedDispatch>,
}

impl Plan {
    /// The plan for `batch` rows whose per-row flags are `flags` (the
    /// sampler's `FLAG_*` bits), over `chunks` chunks of 1024 logits:
    /// - `overlay` when a row has banned tokens, EOS ids under
    ///   `min_new_tokens`, a logit bias or penalties (one workgroup a row,
    ///   touching only the listed tokens);
    /// - `scan`, the one dense pass, always;
    /// - `finish`, one workgroup a row, always;
    /// - `rank` when a row asks for top logprobs: a second read of the
    ///   rows, counting the raw logits above the sampled token's (its rank
    ///   needs the token, which only `finish` knows).
    pub(crate) fn for_rows(flags: &[u32], chunks: u32, batch: u32) -> Plan {
        let any = |f: u32| flags.iter().any(|&x| x & f != 0);
        let mut plan = Plan::default();
        let mut add = |pass: usize| {
            let p = &ALL[pass];
            let x = match p.grid {
                Grid::PerChunk => chunks,
                Grid::PerRow => 1,
            };
            plan.passes.push(PlannedDispatch {
                label: p.name.to_string(),
                grid: [x, batch, 1],
                dense: p.grid == Grid::PerChunk,
                pass,
            });
        };
        if any(FLAG_OVERLAY) {
            add(idx::OVERLAY);
        }
        add(idx::SCAN);
        add(idx::FINISH);
        if any(FLAG_TOPLP) {
            add(idx::RANK);
        }
        plan
    }

    /// The plan of a verification of `rows` rows with `positions = k + 1`
    /// target positions each (`rows * positions` virtual rows, flags per
    /// real row): `overlay` as for sampling, `scan` and `finish` over every
    /// position, `recover` (a second dense pass) only with draft
    /// probabilities, and `accept`, one workgroup a row.
    pub(crate) fn for_verify(
        flags: &[u32],
        chunks: u32,
        rows: u32,
        positions: u32,
        with_q: bool,
    ) -> Plan {
        let any = |f: u32| flags.iter().any(|&x| x & f != 0);
        let virt = rows * positions;
        let mut plan = Plan::default();
        let mut add = |pass: usize, y: u32| {
            let p = &ALL[pass];
            let x = match p.grid {
                Grid::PerChunk => chunks,
                Grid::PerRow => 1,
            };
            plan.passes.push(PlannedDispatch {
                label: p.name.to_string(),
                grid: [x, y, 1],
                dense: p.grid == Grid::PerChunk,
                pass,
            });
        };
        if any(FLAG_OVERLAY) {
            add(idx::OVERLAY, virt);
        }
        add(idx::SCAN, virt);
        add(idx::FINISH, virt);
        if with_q {
            add(idx::RECOVER, virt);
        }
        add(idx::ACCEPT, rows);
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
    use super::super::{
        FLAG_ALLOWED, FLAG_GREEDY, FLAG_MIN_P, FLAG_SCALED, FLAG_TOP_K, FLAG_TOP_P,
    };
    use super::*;

    fn counts(flags: &[u32]) -> (usize, usize) {
        let p = Plan::for_rows(flags, 126, flags.len() as u32);
        (p.dispatches(), p.dense_passes())
    }

    #[test]
    fn counts_per_configuration() {
        // The targets of the module docs' cost table, counted
        // (dispatches, dense passes). Before pipeline v2 these were
        // (2, 1), (4, 2), (12, 6), (12, 6), (20, 10) and (14, 7).
        assert_eq!(counts(&[FLAG_GREEDY]), (2, 1));
        assert_eq!(counts(&[0]), (2, 1));
        assert_eq!(counts(&[FLAG_SCALED]), (2, 1));
        assert_eq!(counts(&[FLAG_MIN_P]), (2, 1));
        assert_eq!(counts(&[FLAG_TOP_K]), (2, 1));
        assert_eq!(counts(&[FLAG_TOP_P]), (2, 1));
        assert_eq!(counts(&[FLAG_TOP_K | FLAG_TOP_P | FLAG_MIN_P]), (2, 1));
        // Penalties, bias, banned and EOS add one sparse dispatch; the
        // allowed-token bitmask adds none (the dense pass reads it).
        let ov = FLAG_OVERLAY;
        assert_eq!(counts(&[FLAG_TOP_P | ov]), (3, 1));
        assert_eq!(counts(&[FLAG_TOP_K | FLAG_TOP_P | ov]), (3, 1));
        assert_eq!(counts(&[FLAG_GREEDY | FLAG_ALLOWED]), (2, 1));
        // Top logprobs: the rank pass reads the rows a second time.
        assert_eq!(counts(&[super::super::FLAG_TOPLP]), (3, 2));
        assert_eq!(
            counts(&[FLAG_TOP_P | ov | super::super::FLAG_TOPLP]),
            (4, 2)
        );
        // A batch takes the union of its rows' needs.
        assert_eq!(counts(&[FLAG_TOP_K, FLAG_GREEDY, ov]), (3, 1));
    }

    #[test]
    fn grids_and_labels() {
        let p = Plan::for_rows(&[FLAG_TOP_K, FLAG_OVERLAY, 0], 126, 3);
        let labels: Vec<&str> = p.passes.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["overlay", "scan", "finish"]);
        assert_eq!(p.passes[0].grid, [1, 3, 1]);
        assert!(!p.passes[0].dense);
        assert_eq!(p.passes[1].grid, [126, 3, 1]);
        assert!(p.passes[1].dense);
        assert_eq!(p.passes[2].grid, [1, 3, 1]);
        assert!(!p.passes[2].dense);
    }
}
