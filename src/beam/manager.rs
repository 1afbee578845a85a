//! The host side of beam search: SPEC.md rules 3 to 6 over the candidates
//! of a step (see the module docs of [`crate::beam`] for the choices made
//! where SPEC.md and HF leave room).

use super::{BeamConfig, Candidate, DEAD_BEAM_SCORE, EarlyStopping, Hypothesis};
use crate::{Error, Result};

/// The state of a beam search over `G` groups of `b` beams: the running
/// beams (scores, generated tokens, parents), each group's finished
/// hypotheses, and which groups have stopped.
///
/// Use: [`BeamSearch::beam_scores`] and the running beams' tokens
/// ([`BeamSearch::beam_tokens`]) give the inputs of the next step (a
/// [`cpu_step`](super::cpu_step) or a [`GpuBeamStep`](super::GpuBeamStep)
/// with `k =` [`BeamSearch::k`]); [`BeamSearch::advance`] consumes its
/// candidates; repeat until [`BeamSearch::is_done`]; then
/// [`BeamSearch::into_results`].
#[derive(Debug, Clone)]
pub struct BeamSearch {
    cfg: BeamConfig,
    eos: Vec<u32>,
    vocab: usize,
    groups: usize,
    b: usize,
    k: usize,
    steps: u32,
    scores: Vec<f32>,
    tokens: Vec<Vec<u32>>,
    parents: Vec<u32>,
    /// Per running beam: true when it descends from a dead start beam
    /// (one of beams `1..b`, scored [`DEAD_BEAM_SCORE`] at the first step).
    dead: Vec<bool>,
    /// Per group, its finished slots that hold a hypothesis, best first
    /// (older first among equal scores); the other `b - len` slots are
    /// HF's placeholders at [`DEAD_BEAM_SCORE`], older than every entry.
    slots: Vec<Vec<Slot>>,
    done: Vec<bool>,
}

/// A finished slot: a hypothesis, and whether it descends from a dead start
/// beam (such slots count as finished, as in HF, but are never returned).
#[derive(Debug, Clone)]
struct Slot {
    h: Hypothesis,
    dead: bool,
}

/// The most beams a search may hold in all (`groups * num_beams`): bounds
/// the host memory of the running beams.
pub const MAX_ROWS: usize = 1 << 20;

impl BeamSearch {
    /// A search of `groups` groups under `cfg` over a vocabulary of `vocab`
    /// tokens. Every group starts with beam 0 at score 0 and the other
    /// beams at [`DEAD_BEAM_SCORE`], all with no generated token.
    ///
    /// Errors: an invalid `cfg` ([`BeamConfig::validate`]) or `groups == 0`.
    pub fn new(cfg: &BeamConfig, vocab: usize, groups: usize) -> Result<Self> {
        cfg.validate(vocab)?;
        if groups == 0 {
            return Err(Error::InvalidArgument(
                "a beam search needs at least 1 group".into(),
            ));
        }
        let b = cfg.num_beams as usize;
        let rows = groups
            .checked_mul(b)
            .filter(|&r| r <= MAX_ROWS)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{groups} groups x {b} beams is above the limit of {MAX_ROWS} beams in all"
                ))
            })?;
        let mut eos = cfg.eos_token_ids.clone();
        eos.sort_unstable();
        eos.dedup();
        let scores = (0..rows)
            .map(|r| if r % b == 0 { 0.0 } else { DEAD_BEAM_SCORE })
            .collect();
        Ok(BeamSearch {
            k: cfg.candidates_per_group(vocab),
            cfg: cfg.clone(),
            eos,
            vocab,
            groups,
            b,
            steps: 0,
            scores,
            tokens: vec![Vec::new(); rows],
            parents: (0..rows).map(|r| (r % b) as u32).collect(),
            dead: (0..rows).map(|r| r % b != 0).collect(),
            slots: vec![Vec::new(); groups],
            done: vec![false; groups],
        })
    }

    /// `K`, the candidates per group each step must deliver
    /// ([`BeamConfig::candidates_per_group`]).
    pub fn k(&self) -> usize {
        self.k
    }

    /// The number of groups.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Tokens generated so far (steps taken).
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// The running beams' scores, `[G * b]` (row `g * b + j`): the summed
    /// log-probabilities of their tokens, best first within a group. Rows
    /// of a stopped group keep their last values.
    pub fn beam_scores(&self) -> &[f32] {
        &self.scores
    }

    /// The tokens generated so far by running beam `beam` of group `group`
    /// (start / prompt tokens not included).
    ///
    /// Errors: `group` or `beam` out of range.
    pub fn beam_tokens(&self, group: usize, beam: usize) -> Result<&[u32]> {
        self.check_group(group)?;
        if beam >= self.b {
            return Err(Error::InvalidArgument(format!(
                "beam {beam} is out of range ({} beams)",
                self.b
            )));
        }
        Ok(&self.tokens[group * self.b + beam])
    }

    fn check_group(&self, group: usize) -> Result<()> {
        if group >= self.groups {
            return Err(Error::InvalidArgument(format!(
                "group {group} is out of range ({} groups)",
                self.groups
            )));
        }
        Ok(())
    }

    /// For each running beam (`[G * b]`), the beam of the previous step it
    /// extends (what an engine uses to reorder its KV cache).
    pub fn parents(&self) -> &[u32] {
        &self.parents
    }

    /// True when group `group` has stopped (SPEC.md rule 5).
    ///
    /// Errors: `group` out of range.
    pub fn group_done(&self, group: usize) -> Result<bool> {
        self.check_group(group)?;
        Ok(self.done[group])
    }

    /// True when every group has stopped.
    pub fn is_done(&self) -> bool {
        self.done.iter().all(|&d| d)
    }

    /// The finished hypotheses of group `group` so far, best first (at
    /// most `b`): the filled slots (SPEC.md rule 3) less those descending
    /// from a dead start beam.
    ///
    /// Errors: `group` out of range.
    pub fn finished(&self, group: usize) -> Result<Vec<Hypothesis>> {
        self.check_group(group)?;
        Ok(real(&self.slots[group]).collect())
    }

    /// The number of group `group`'s `b` finished slots that hold a
    /// hypothesis (what rule 5 counts; descendants of dead start beams
    /// included, as in HF).
    ///
    /// Errors: `group` out of range.
    pub fn filled_slots(&self, group: usize) -> Result<usize> {
        self.check_group(group)?;
        Ok(self.slots[group].len())
    }

    /// Applies one step's candidates: `G * k` of them, group by group,
    /// each group's best first (the output of a beam step on
    /// [`BeamSearch::beam_scores`] and the running beams' logits).
    ///
    /// For each group that has not stopped, with `L` = tokens generated
    /// including this step's: a candidate finishes when its token is an EOS
    /// id or `L == max_new_tokens`; a finished candidate ranked `< b`
    /// becomes a hypothesis scored `score / L^length_penalty` and the group
    /// keeps its best `b` hypotheses; the next running beams are the best
    /// `b` candidates that did not finish. The group then stops at
    /// `max_new_tokens`, when no candidate can continue, with
    /// `early_stopping = true` once `b` hypotheses are finished, or when
    /// `b` are finished and the best running score divided by
    /// `L'^length_penalty` is not above the worst finished score (`L' =
    /// L`, or `max_new_tokens` for `never` with `length_penalty > 0`).
    ///
    /// Errors (the state is unchanged): the search is done, the wrong
    /// number of candidates, a beam or token out of range, a NaN score, or
    /// a group's candidates not in best-first order.
    pub fn advance(&mut self, cands: &[Candidate]) -> Result<()> {
        if self.is_done() {
            return Err(Error::InvalidArgument(
                "the beam search has already stopped".into(),
            ));
        }
        let (b, k) = (self.b, self.k);
        if cands.len() != self.groups * k {
            return Err(Error::InvalidArgument(format!(
                "{} candidates for {} groups of k = {k}",
                cands.len(),
                self.groups
            )));
        }
        for (i, c) in cands.iter().enumerate() {
            if c.beam as usize >= b || c.token as usize >= self.vocab || c.score.is_nan() {
                return Err(Error::InvalidArgument(format!(
                    "candidate {i} (beam {}, token {}, score {}) is out of range for \
                     {b} beams x vocab {}",
                    c.beam, c.token, c.score, self.vocab
                )));
            }
            if i % k > 0 {
                let p = &cands[i - 1];
                let pf = p.beam as usize * self.vocab + p.token as usize;
                let cf = c.beam as usize * self.vocab + c.token as usize;
                if p.score < c.score || (p.score == c.score && pf >= cf) {
                    return Err(Error::InvalidArgument(format!(
                        "candidates {} and {i} of group {} are not in best-first order",
                        i - 1,
                        i / k
                    )));
                }
            }
        }
        let len = self.steps + 1;
        let lp = f64::from(self.cfg.length_penalty);
        let penalty = |l: u32| (f64::from(l)).powf(lp) as f32;
        let denom = penalty(len);
        let at_max = len >= self.cfg.max_new_tokens;
        let old_tokens = std::mem::take(&mut self.tokens);
        let mut new_tokens = old_tokens.clone();
        let old_dead = self.dead.clone();
        for g in 0..self.groups {
            if self.done[g] {
                continue;
            }
            let group = &cands[g * k..(g + 1) * k];
            let mut running: Vec<Candidate> = Vec::with_capacity(b);
            for (rank, c) in group.iter().enumerate() {
                let ends = at_max || self.eos.binary_search(&c.token).is_ok();
                if ends {
                    if rank < b {
                        let mut tokens = old_tokens[g * b + c.beam as usize].clone();
                        tokens.push(c.token);
                        // -inf / inf (a huge length_penalty) would be NaN.
                        let score = c.score / denom;
                        let h = Hypothesis {
                            tokens,
                            score: if score.is_nan() {
                                f32::NEG_INFINITY
                            } else {
                                score
                            },
                        };
                        let dead = self.dead[g * b + c.beam as usize];
                        insert_slot(&mut self.slots[g], Slot { h, dead }, b);
                    }
                } else if running.len() < b {
                    running.push(*c);
                }
            }
            let fin = &self.slots[g];
            let stop = if at_max || running.is_empty() {
                true
            } else if fin.len() < b {
                false
            } else if self.cfg.early_stopping == EarlyStopping::True {
                true
            } else {
                let l = if self.cfg.early_stopping == EarlyStopping::Never && lp > 0.0 {
                    self.cfg.max_new_tokens
                } else {
                    len
                };
                let best_running = running[0].score / penalty(l);
                let worst = fin[fin.len() - 1].h.score;
                // "Not above" (NaN from an extreme length_penalty stops).
                best_running.partial_cmp(&worst) != Some(std::cmp::Ordering::Greater)
            };
            self.done[g] = stop;
            if running.is_empty() {
                continue;
            }
            // Fewer than b candidates can continue only when K holds fewer
            // than b unfinished ones, which K = max(2, 1 + n_eos) * b rules
            // out unless it was capped at b * V; pad with -inf beams then.
            for j in 0..b {
                let r = g * b + j;
                let c = running.get(j).copied().unwrap_or(Candidate {
                    score: f32::NEG_INFINITY,
                    ..running[0]
                });
                self.scores[r] = c.score;
                self.parents[r] = c.beam;
                self.dead[r] = old_dead[g * b + c.beam as usize];
                let t = &mut new_tokens[r];
                t.clear();
                t.extend_from_slice(&old_tokens[g * b + c.beam as usize]);
                t.push(c.token);
            }
        }
        self.tokens = new_tokens;
        self.steps = len;
        Ok(())
    }

    /// The result, per group: its best `num_return_sequences` finished
    /// hypotheses, best first, descendants of dead start beams left out
    /// (so fewer when fewer real hypotheses finished, e.g. with more beams
    /// than tokens; also fewer if the search was stopped before
    /// [`BeamSearch::is_done`]).
    pub fn into_results(self) -> Vec<Vec<Hypothesis>> {
        let n = self.cfg.num_return_sequences as usize;
        self.slots
            .iter()
            .map(|f| real(f).take(n).collect())
            .collect()
    }
}

/// The hypotheses of the slots that do not descend from a dead start beam.
fn real(slots: &[Slot]) -> impl Iterator<Item = Hypothesis> + '_ {
    slots.iter().filter(|s| !s.dead).map(|s| s.h.clone())
}

/// HF's finished list (SPEC.md rule 3): `b` slots, best first, of which
/// those not in `slots` are placeholders scoring [`DEAD_BEAM_SCORE`], older
/// than every entry. A new entry takes a slot only if its score is strictly
/// above the lowest slot's (older entries win ties); the lowest slot, a
/// placeholder or an entry, is dropped.
fn insert_slot(slots: &mut Vec<Slot>, new: Slot, b: usize) {
    let placeholders = b - slots.len();
    // Entries are scores are never NaN, so ">=" is "not below".
    let above = slots.partition_point(|x| x.h.score >= new.h.score);
    let placeholders_above = if DEAD_BEAM_SCORE >= new.h.score {
        placeholders
    } else {
        0
    };
    if above + placeholders_above >= b {
        return;
    }
    slots.insert(above, new);
    // Full order: entries above the placeholders' score, the placeholders,
    // then entries at or below it (newer than the placeholders). Drop the
    // last of that order: an entry at or below it if any, else a
    // placeholder (implicit: one fewer once an entry was added).
    if placeholders == 0 || slots.last().is_some_and(|x| x.h.score <= DEAD_BEAM_SCORE) {
        slots.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(score: f32, beam: u32, token: u32) -> Candidate {
        Candidate { score, beam, token }
    }

    #[test]
    fn first_steps_and_eos_rank_rule() {
        // b = 2, V = 10, eos 9: K = 4.
        let cfg = BeamConfig {
            eos_token_ids: vec![9],
            max_new_tokens: 5,
            length_penalty: 1.0,
            ..BeamConfig::new(2)
        };
        let mut s = BeamSearch::new(&cfg, 10, 1).unwrap();
        assert_eq!(s.k(), 4);
        assert_eq!(s.beam_scores(), &[0.0, DEAD_BEAM_SCORE]);
        // Rank 1 is EOS: a hypothesis; rank 3 is EOS too but rank >= b.
        s.advance(&[
            cand(-0.5, 0, 3),
            cand(-0.7, 0, 9),
            cand(-1.0, 0, 4),
            cand(-1.5, 1, 9),
        ])
        .unwrap();
        assert_eq!(s.finished(0).unwrap().len(), 1);
        assert_eq!(s.finished(0).unwrap()[0].tokens, vec![9]);
        assert_eq!(s.beam_scores(), &[-0.5, -1.0]);
        assert_eq!(s.beam_tokens(0, 0).unwrap(), &[3]);
        assert_eq!(s.beam_tokens(0, 1).unwrap(), &[4]);
        assert!(!s.is_done());
        // Step 2: b = 2 slots, one full; best running -0.9 / 2 = -0.45 is
        // above the worst finished once the second arrives.
        s.advance(&[
            cand(-0.6, 1, 9),
            cand(-0.9, 0, 1),
            cand(-1.2, 0, 2),
            cand(-2.0, 1, 5),
        ])
        .unwrap();
        let f = s.finished(0).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].tokens, vec![4, 9]);
        assert!((f[0].score - -0.3).abs() < 1e-6);
        assert_eq!(f[1].tokens, vec![9]);
        // best running -0.9 / 2 = -0.45 > worst -0.7: continue
        assert!(!s.is_done());
        assert_eq!(s.parents(), &[0, 0]);
        assert_eq!(s.beam_tokens(0, 0).unwrap(), &[3, 1]);
        assert_eq!(s.beam_tokens(0, 1).unwrap(), &[3, 2]);
        assert!(s.group_done(1).is_err() && s.finished(5).is_err());
        assert!(s.beam_tokens(0, 2).is_err() && s.beam_tokens(1, 0).is_err());
    }

    #[test]
    fn slots_start_as_placeholders_that_must_be_beaten() {
        let sl = |score: f32, t: u32| Slot {
            h: Hypothesis {
                tokens: vec![t],
                score,
            },
            dead: false,
        };
        let toks = |l: &[Slot]| l.iter().map(|x| x.h.tokens[0]).collect::<Vec<_>>();
        let mut l = Vec::new();
        // Equal to a placeholder: stays out (ties go to the older entry).
        insert_slot(&mut l, sl(DEAD_BEAM_SCORE, 0), 2);
        assert!(l.is_empty());
        insert_slot(&mut l, sl(-1.0, 1), 2);
        insert_slot(&mut l, sl(-1.0, 2), 2);
        insert_slot(&mut l, sl(-1.0, 3), 2);
        assert_eq!(toks(&l), [1, 2]);
        insert_slot(&mut l, sl(-0.5, 4), 2);
        assert_eq!(toks(&l), [4, 1]);
        // Below a placeholder's score: out while a placeholder remains.
        let mut l = vec![sl(-1.0, 1)];
        insert_slot(&mut l, sl(-2e9, 5), 3);
        assert!(toks(&l) == [1]);
        // An entry below the placeholders is dropped before them.
        let mut l = vec![sl(-1.0, 1), sl(-3e9, 6)];
        insert_slot(&mut l, sl(-2.0, 7), 3);
        assert_eq!(toks(&l), [1, 7]);
    }
}
