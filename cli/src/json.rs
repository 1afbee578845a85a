//! The few JSON shapes the CLI prints, written by hand.
//!
//! Why it is shaped this way: the crate takes no serialisation dependency,
//! and the output is always one line built from a handful of shapes (a
//! status string, lists of token ids, lists of floats). Keeping those
//! shapes here means the two rules that make the output valid JSON live in
//! one place: floats are printed with Rust's shortest round-trip `Display`
//! (which never uses exponents, `NaN` or `inf`), and a non-finite float is
//! printed as `null` rather than as invalid JSON.

use std::fmt::Write as _;
use wgsample::Status;

/// Appends `x` as a JSON number that parses back to the same `f32`, or
/// `null` when `x` is NaN or infinite.
pub fn push_f32(out: &mut String, x: f32) {
    if x.is_finite() {
        // `Display` for f32 is the shortest decimal that round-trips and
        // never uses exponent notation, so it is always a valid JSON number.
        let _ = write!(out, "{x}");
    } else {
        out.push_str("null");
    }
}

/// Appends `s` as a JSON string literal, escaping what JSON requires.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a JSON array of token ids.
pub fn push_tokens(out: &mut String, tokens: &[u32]) {
    out.push('[');
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{t}");
    }
    out.push(']');
}

/// Appends a JSON array of floats (see [`push_f32`]).
pub fn push_floats(out: &mut String, xs: &[f32]) {
    out.push('[');
    for (i, &x) in xs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_f32(out, x);
    }
    out.push(']');
}

/// The `dist` line: `{"status": ..., "tokens": [...], "probs": [...]}`.
pub fn dist_line(status: Status, tokens: &[u32], probs: &[f32]) -> String {
    let mut out = String::from("{\"status\": ");
    push_str(&mut out, status.as_str());
    out.push_str(", \"tokens\": ");
    push_tokens(&mut out, tokens);
    out.push_str(", \"probs\": ");
    push_floats(&mut out, probs);
    out.push('}');
    out
}

/// What `sample` reports for one row: the tokens it got, their
/// log-probabilities, and the status it ended with.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledRow {
    /// Tokens sampled at the steps where the row's status was `Ok`.
    pub tokens: Vec<u32>,
    /// Their log-probabilities under the raw logits.
    pub logprobs: Vec<f32>,
    /// `Ok`, or the status of the step at which the row stopped.
    pub status: Status,
}

/// The `sample` line: `{"rows": [{"tokens": [...], "logprobs": [...],
/// "status": ...}, ...]}`.
pub fn sample_line(rows: &[SampledRow]) -> String {
    let mut out = String::from("{\"rows\": [");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"tokens\": ");
        push_tokens(&mut out, &row.tokens);
        out.push_str(", \"logprobs\": ");
        push_floats(&mut out, &row.logprobs);
        out.push_str(", \"status\": ");
        push_str(&mut out, row.status.as_str());
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// The `"plan"` value of `sample --explain`: `{"dispatches": N,
/// "dense_passes": D, "passes": [{"label": ..., "grid": [x, y, z],
/// "dense": ...}, ...]}`.
pub fn plan_value(plan: &wgsample::gpu::Plan) -> String {
    let mut out = format!(
        "{{\"dispatches\": {}, \"dense_passes\": {}, \"passes\": [",
        plan.dispatches(),
        plan.dense_passes()
    );
    for (i, d) in plan.passes.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"label\": ");
        push_str(&mut out, &d.label);
        out.push_str(&format!(
            ", \"grid\": [{}, {}, {}], \"dense\": {}}}",
            d.grid[0], d.grid[1], d.grid[2], d.dense
        ));
    }
    out.push_str("]}");
    out
}

/// The `generate` line: `{"sequences": [{"tokens": [...], "stop_reason":
/// ...}, ...]}`, one entry per `(tokens, stop reason)`.
pub fn generate_line(seqs: &[(&[u32], &str)]) -> String {
    let mut out = String::from("{\"sequences\": [");
    for (i, (tokens, reason)) in seqs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"tokens\": ");
        push_tokens(&mut out, tokens);
        out.push_str(", \"stop_reason\": ");
        push_str(&mut out, reason);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// The `beam` line: `{"sequences": [{"tokens": [...], "score": X}, ...]}`,
/// in the given order (best first).
pub fn beam_line(seqs: &[(&[u32], f32)]) -> String {
    let mut out = String::from("{\"sequences\": [");
    for (i, (tokens, score)) in seqs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"tokens\": ");
        push_tokens(&mut out, tokens);
        out.push_str(", \"score\": ");
        push_f32(&mut out, *score);
        out.push('}');
    }
    out.push_str("]}");
    out
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
            let mut s = String::new();
            push_f32(&mut s, x);
            assert!(!s.contains(['e', 'E', 'N', 'i']), "{s}");
            assert_eq!(s.parse::<f32>().unwrap().to_bits(), x.to_bits());
        }
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut s = String::new();
            push_f32(&mut s, x);
            assert_eq!(s, "null");
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(
            dist_line(Status::Ok, &[3, 2], &[0.5, 0.25]),
            r#"{"status": "ok", "tokens": [3, 2], "probs": [0.5, 0.25]}"#
        );
        assert_eq!(
            sample_line(&[SampledRow {
                tokens: vec![1],
                logprobs: vec![f32::NAN],
                status: Status::NoCandidates,
            }]),
            r#"{"rows": [{"tokens": [1], "logprobs": [null], "status": "no_candidates"}]}"#
        );
        assert_eq!(
            generate_line(&[(&[1, 2][..], "eos"), (&[][..], "max_new_tokens")]),
            r#"{"sequences": [{"tokens": [1, 2], "stop_reason": "eos"}, {"tokens": [], "stop_reason": "max_new_tokens"}]}"#
        );
        assert_eq!(
            beam_line(&[(&[3][..], -0.5)]),
            r#"{"sequences": [{"tokens": [3], "score": -0.5}]}"#
        );
        let mut s = String::new();
        push_str(&mut s, "a\"\\\u{1}");
        assert_eq!(s, r#""a\"\\\u0001""#);
    }
}
