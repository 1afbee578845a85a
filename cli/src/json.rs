//! The JSON lines the CLI prints, as serde structs written by serde_json.
//!
//! Why it is shaped this way: each output is one line built from a handful
//! of shapes (a status string, lists of token ids, lists of floats), so
//! each is a `Serialize` struct whose field order is the key order. Two
//! rules keep the line exactly as the tool printed it before serde, and
//! valid JSON: [`Spaced`] puts a space after every `:` and `,` (`{"tokens":
//! [3, 2]}`), and floats are printed with Rust's shortest round-trip
//! `Display`, which never uses exponents; a NaN or infinite float is
//! printed as `null` (serde_json's rule for non-finite numbers), never as
//! invalid JSON.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io;
use wgsample::Status;

/// serde_json's compact formatter with a space after each `:` and `,`, and
/// floats in Rust's `Display` form (shortest round-trip, no exponent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Spaced;

impl Formatter for Spaced {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        // Only finite values get here (serde_json writes the others as
        // `null`), and their `Display` is always a valid JSON number.
        write!(w, "{value}")
    }
}

/// Serializes `value` as one line of JSON in the tool's format ([`Spaced`]).
pub fn line<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Spaced);
    // Writing these structs to a Vec cannot fail: every map key is a
    // string and every float is either finite or written as null.
    value
        .serialize(&mut ser)
        .expect("serializing a CLI result cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Serializes a [`Status`] as its SPEC name (`"ok"`, `"no_candidates"`,
/// ...).
fn status_name<S: serde::Serializer>(status: &Status, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

/// The `dist` line: `{"status": ..., "tokens": [...], "probs": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dist<'a> {
    /// The row's status.
    #[serde(serialize_with = "status_name")]
    pub status: Status,
    /// The surviving tokens, most probable first.
    pub tokens: &'a [u32],
    /// Their probabilities.
    pub probs: &'a [f32],
}

/// What `sample` reports for one row: the tokens it got, their
/// log-probabilities, with `--top-logprobs` the top tokens and ranks of
/// each step, and the status it ended with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampledRow {
    /// Tokens sampled at the steps where the row's status was `Ok`.
    pub tokens: Vec<u32>,
    /// Their log-probabilities under the raw logits.
    pub logprobs: Vec<f32>,
    /// `--top-logprobs N`: per step (one list per token), the `N` most
    /// probable tokens under the raw logits, most probable first (a token
    /// whose raw logit is -inf has logprob `null`); absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<Vec<Vec<TopEntry>>>,
    /// `--top-logprobs N`: per step, the sampled token's rank (1 + the
    /// number of tokens with a larger raw logit); absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranks: Option<Vec<u32>>,
    /// `Ok`, or the status of the step at which the row stopped.
    #[serde(serialize_with = "status_name")]
    pub status: Status,
}

/// One entry of a `top_logprobs` list: `{"token": T, "logprob": X}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TopEntry {
    /// Token id.
    pub token: u32,
    /// Its log-probability under the raw logits.
    pub logprob: f32,
}

/// The `sample` line: `{"rows": [{"tokens": [...], "logprobs": [...],
/// "status": ...}, ...]}` (with `"top_logprobs": [...], "ranks": [...]`
/// before `"status"` under `--top-logprobs`), with `"plan": ...` after the
/// rows under `--explain`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample<'a> {
    /// One entry per row of the file.
    pub rows: &'a [SampledRow],
    /// `--explain`: the GPU plan of the last step (`null` when no GPU
    /// adapter was found and the CPU backend ran); absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Option<Plan>>,
}

/// The `"plan"` value of `sample --explain`: `{"dispatches": N,
/// "dense_passes": D, "passes": [{"label": ..., "grid": [x, y, z],
/// "dense": ...}, ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Compute dispatches of the step.
    pub dispatches: usize,
    /// How many of them read whole rows of the logits.
    pub dense_passes: usize,
    /// The dispatches, in order.
    pub passes: Vec<Pass>,
}

/// One dispatch of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pass {
    /// The pass's label (`"scan"`, `"finish"`, ...).
    pub label: String,
    /// Its workgroup grid.
    pub grid: [u32; 3],
    /// Whether it reads whole rows of the logits.
    pub dense: bool,
}

impl From<&wgsample::gpu::Plan> for Plan {
    fn from(plan: &wgsample::gpu::Plan) -> Self {
        Plan {
            dispatches: plan.dispatches(),
            dense_passes: plan.dense_passes(),
            passes: plan
                .passes
                .iter()
                .map(|d| Pass {
                    label: d.label.clone(),
                    grid: d.grid,
                    dense: d.dense,
                })
                .collect(),
        }
    }
}

/// What `verify` reports for one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifiedRow {
    /// The emitted tokens: the accepted drafts, then the recovered or
    /// bonus token.
    pub tokens: Vec<u32>,
    /// How many draft tokens were accepted.
    pub accepted: u32,
    /// The emitted tokens' log-probabilities under the raw target logits
    /// of their positions.
    pub logprobs: Vec<f32>,
    /// `Ok`, or the status of the position that ended the row.
    #[serde(serialize_with = "status_name")]
    pub status: Status,
}

/// The `verify` line: `{"rows": [{"tokens": [...], "accepted": n,
/// "logprobs": [...], "status": ...}, ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verify {
    /// One entry per row.
    pub rows: Vec<VerifiedRow>,
}

/// The `generate` and `beam` lines: `{"sequences": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sequences<T> {
    /// One entry per row (`generate`) or hypothesis, best first (`beam`).
    pub sequences: Vec<T>,
}

/// A `generate` sequence: `{"tokens": [...], "stop_reason": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generated<'a> {
    /// The generated tokens (the EOS id or stop sequence included).
    pub tokens: &'a [u32],
    /// Why the row stopped.
    pub stop_reason: &'a str,
}

/// A `beam` hypothesis: `{"tokens": [...], "score": X}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hypothesis<'a> {
    /// The hypothesis's tokens.
    pub tokens: &'a [u32],
    /// Its score (sum of logprobs / length^length_penalty).
    pub score: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_and_non_finite_is_null() {
        for x in [
            0.0f32,
            -0.0,
            1.0,
            0.1,
            1e-40,
            f32::MAX,
            f32::MIN_POSITIVE,
            -3.25,
        ] {
            let s = line(&[x]);
            let s = s.trim_start_matches('[').trim_end_matches(']');
            assert!(!s.contains(['e', 'E', 'N', 'i']), "{s}");
            assert_eq!(s.parse::<f32>().unwrap().to_bits(), x.to_bits());
        }
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(line(&[x]), "[null]");
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(
            line(&Dist {
                status: Status::Ok,
                tokens: &[3, 2],
                probs: &[0.5, 0.25]
            }),
            r#"{"status": "ok", "tokens": [3, 2], "probs": [0.5, 0.25]}"#
        );
        let rows = [SampledRow {
            tokens: vec![1],
            logprobs: vec![f32::NAN],
            top_logprobs: None,
            ranks: None,
            status: Status::NoCandidates,
        }];
        assert_eq!(
            line(&Sample {
                rows: &rows,
                plan: None
            }),
            r#"{"rows": [{"tokens": [1], "logprobs": [null], "status": "no_candidates"}]}"#
        );
        assert_eq!(
            line(&Sample {
                rows: &[],
                plan: Some(None)
            }),
            r#"{"rows": [], "plan": null}"#
        );
        let rows = [SampledRow {
            tokens: vec![2],
            logprobs: vec![-0.5],
            top_logprobs: Some(vec![vec![
                TopEntry {
                    token: 2,
                    logprob: -0.5,
                },
                TopEntry {
                    token: 0,
                    logprob: f32::NEG_INFINITY,
                },
            ]]),
            ranks: Some(vec![1]),
            status: Status::Ok,
        }];
        assert_eq!(
            line(&Sample {
                rows: &rows,
                plan: None
            }),
            r#"{"rows": [{"tokens": [2], "logprobs": [-0.5], "top_logprobs": [[{"token": 2, "logprob": -0.5}, {"token": 0, "logprob": null}]], "ranks": [1], "status": "ok"}]}"#
        );
        assert_eq!(
            line(&Verify {
                rows: vec![VerifiedRow {
                    tokens: vec![3, 1],
                    accepted: 1,
                    logprobs: vec![-0.25, -2.0],
                    status: Status::Ok,
                }]
            }),
            r#"{"rows": [{"tokens": [3, 1], "accepted": 1, "logprobs": [-0.25, -2], "status": "ok"}]}"#
        );
        assert_eq!(
            line(&Sequences {
                sequences: vec![
                    Generated {
                        tokens: &[1, 2],
                        stop_reason: "eos"
                    },
                    Generated {
                        tokens: &[],
                        stop_reason: "max_new_tokens"
                    },
                ]
            }),
            r#"{"sequences": [{"tokens": [1, 2], "stop_reason": "eos"}, {"tokens": [], "stop_reason": "max_new_tokens"}]}"#
        );
        assert_eq!(
            line(&Sequences {
                sequences: vec![Hypothesis {
                    tokens: &[3],
                    score: -0.5
                }]
            }),
            r#"{"sequences": [{"tokens": [3], "score": -0.5}]}"#
        );
        assert_eq!(
            line(&Pass {
                label: "a\"\\\u{1}".into(),
                grid: [9, 2, 1],
                dense: true
            }),
            r#"{"label": "a\"\\\u0001", "grid": [9, 2, 1], "dense": true}"#
        );
    }
}
