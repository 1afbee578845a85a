//! Stop criteria checked on the host after every sampled token (SPEC.md
//! "Stopping (host side)").
//!
//! Shape, and why:
//!
//! - [`StopCriteria`] is plain data shared by every row of a batch; a
//!   [`StopChecker`] is the per-row state that consumes one token at a time.
//!   Keeping the checker incremental (one `push` per token, O(stop lengths)
//!   work) is what lets the decode loop stream, and it is equally usable by
//!   an engine that runs its own loop.
//! - EOS and `min_new_tokens` follow the sampler's device-side rule exactly:
//!   the sampler masks every EOS id while the generated length `n` (before
//!   the token) is below `min_new_tokens`, so the checker accepts an EOS as a
//!   stop only when `n >= min_new_tokens`. The decode loop copies the
//!   criteria's EOS ids and `min_new_tokens` into each row's
//!   [`SamplingParams`](crate::SamplingParams) ([`StopCriteria::apply_to`]),
//!   so the two can never disagree.
//! - Stop sequences (token ids or text) end a row only once it holds at
//!   least `min_new_tokens` tokens, the stop tokens included (vLLM's rule:
//!   nothing but `max_new_tokens` stops a row earlier).
//! - Text stops need text, which only the caller can make: a
//!   [`Detokenizer`] maps a token id to its text piece (any
//!   `Fn(u32) -> impl AsRef<str>` is one). Text that could still become a
//!   stop sequence (a suffix that is a proper prefix of a stop string, or
//!   the pieces of trailing tokens that are a proper prefix of a stop token
//!   sequence) is held back and released only once it is decided; the stop
//!   text itself, the text after it in the same token, and the EOS token's
//!   piece are never emitted. Emitted text is never taken back.
//! - Token ids are never held back: the token stream includes the EOS id or
//!   the stop sequence that ended the row (what `generate` prints), only the
//!   text stream is filtered.

use crate::{Error, Result, Status};

/// When a row stops. `max_new_tokens` is the only criterion that is always
/// active; the others are off when their lists are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopCriteria {
    /// The row stops after this many generated tokens. `0` generates
    /// nothing.
    pub max_new_tokens: u32,
    /// EOS ids are masked on the device, and no stop sequence counts, until
    /// the row holds this many tokens.
    pub min_new_tokens: u32,
    /// Sampling any of these ends the row (the EOS id is kept in its
    /// tokens, its text is not emitted).
    pub eos_token_ids: Vec<u32>,
    /// The row stops when its generated tokens end with one of these
    /// (non-empty) id sequences; the sequence is kept in its tokens.
    pub stop_token_sequences: Vec<Vec<u32>>,
    /// The row stops when its text (through the [`Detokenizer`]) contains
    /// one of these (non-empty) strings; the text is cut where the string
    /// starts.
    pub stop_strings: Vec<String>,
}

impl StopCriteria {
    /// Only a length limit: stop after `max_new_tokens` tokens.
    pub fn new(max_new_tokens: u32) -> Self {
        StopCriteria {
            max_new_tokens,
            ..Default::default()
        }
    }

    /// Sets `min_new_tokens`.
    pub fn with_min_new_tokens(mut self, n: u32) -> Self {
        self.min_new_tokens = n;
        self
    }

    /// Sets the EOS ids.
    pub fn with_eos(mut self, ids: impl IntoIterator<Item = u32>) -> Self {
        self.eos_token_ids = ids.into_iter().collect();
        self
    }

    /// Adds a stop sequence of token ids.
    pub fn with_stop_tokens(mut self, seq: impl IntoIterator<Item = u32>) -> Self {
        self.stop_token_sequences.push(seq.into_iter().collect());
        self
    }

    /// Adds a stop string (needs a [`Detokenizer`]).
    pub fn with_stop_string(mut self, s: impl Into<String>) -> Self {
        self.stop_strings.push(s.into());
        self
    }

    /// Checks every id against a vocabulary of `vocab` tokens and that no
    /// stop sequence or string is empty.
    pub fn validate(&self, vocab: usize) -> Result<()> {
        let bad_id = |what: String, t: u32| {
            Error::InvalidArgument(format!(
                "{what}: {t} is not a token id (vocab size is {vocab})"
            ))
        };
        for &t in &self.eos_token_ids {
            if t as usize >= vocab {
                return Err(bad_id("eos_token_ids".into(), t));
            }
        }
        for (i, seq) in self.stop_token_sequences.iter().enumerate() {
            if seq.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "stop token sequence {i} is empty"
                )));
            }
            if let Some(&t) = seq.iter().find(|&&t| t as usize >= vocab) {
                return Err(bad_id(format!("stop token sequence {i}"), t));
            }
        }
        if let Some(i) = self.stop_strings.iter().position(|s| s.is_empty()) {
            return Err(Error::InvalidArgument(format!("stop string {i} is empty")));
        }
        Ok(())
    }

    /// True when a criterion other than `max_new_tokens` can end a row
    /// early, so the decode loop has to look at the tokens every step to
    /// stop early (otherwise it can read them once at the end).
    pub fn can_stop_early(&self) -> bool {
        !self.eos_token_ids.is_empty()
            || !self.stop_token_sequences.is_empty()
            || !self.stop_strings.is_empty()
    }

    /// Writes the EOS ids and `min_new_tokens` into a row's sampling
    /// parameters, so that the device masks EOS exactly while the checker
    /// refuses it.
    pub fn apply_to(&self, params: &mut crate::SamplingParams) {
        params.eos_token_ids.clone_from(&self.eos_token_ids);
        params.min_new_tokens = self.min_new_tokens;
    }
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// It sampled an EOS id (the last token).
    Eos,
    /// Its tokens ended with stop token sequence `i` (an index into
    /// [`StopCriteria::stop_token_sequences`]).
    StopTokens(usize),
    /// Its text reached stop string `i` (an index into
    /// [`StopCriteria::stop_strings`]).
    StopString(usize),
    /// It generated `max_new_tokens` tokens.
    MaxNewTokens,
    /// The sampler gave it no token (status `InvalidLogits` or
    /// `NoCandidates`); its tokens are those before that step.
    NoToken(Status),
}

impl StopReason {
    /// The name the CLI prints: `eos`, `stop_sequence` (token ids or text),
    /// `max_new_tokens`, or the status name (`invalid_logits`,
    /// `no_candidates`).
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::StopTokens(_) | StopReason::StopString(_) => "stop_sequence",
            StopReason::MaxNewTokens => "max_new_tokens",
            StopReason::NoToken(s) => s.as_str(),
        }
    }
}

/// Maps a token id to its text piece, for stop strings and streamed text.
///
/// Implemented for every `Fn(u32) -> S` with `S: AsRef<str>`, e.g.
/// `|t: u32| vocab[t as usize].as_str()`. A byte-level tokenizer whose
/// pieces can split a UTF-8 character should return the piece only once it
/// is complete (or a replacement); the checker works on whole strings.
pub trait Detokenizer {
    /// Appends the text of `token` to `out`.
    fn push_piece(&self, token: u32, out: &mut String);
}

impl<F, S> Detokenizer for F
where
    F: Fn(u32) -> S,
    S: AsRef<str>,
{
    fn push_piece(&self, token: u32, out: &mut String) {
        out.push_str(self(token).as_ref());
    }
}

/// What one [`StopChecker::push`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed<'a> {
    /// Text that became final with this token (may be empty: held back, or
    /// no detokenizer). Concatenated over the row's pushes it is the row's
    /// whole output text, without the stop text.
    pub text: &'a str,
    /// `Some` when this token ended the row.
    pub stop: Option<StopReason>,
}

/// The per-row stop state: feed it every sampled token with
/// [`StopChecker::push`]; it says when the row stops and which text may be
/// streamed.
#[derive(Clone)]
pub struct StopChecker<'a> {
    criteria: &'a StopCriteria,
    detokenizer: Option<&'a dyn Detokenizer>,
    tokens: Vec<u32>,
    text: String,
    /// Byte offset in `text` where the piece of token `i` starts.
    piece_starts: Vec<usize>,
    /// Bytes of `text` that are final (streamed).
    emitted: usize,
    stop: Option<StopReason>,
}

impl std::fmt::Debug for StopChecker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopChecker")
            .field("tokens", &self.tokens)
            .field("text", &self.text)
            .field("emitted", &self.emitted)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

/// First position of `needle` in `hay` (byte-wise).
fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<'a> StopChecker<'a> {
    /// A checker for one row. `detokenizer` is needed when `criteria` has
    /// stop strings (an error otherwise) and gives the streamed text.
    /// With `max_new_tokens == 0` the row is stopped from the start.
    pub fn new(
        criteria: &'a StopCriteria,
        detokenizer: Option<&'a dyn Detokenizer>,
    ) -> Result<Self> {
        if !criteria.stop_strings.is_empty() && detokenizer.is_none() {
            return Err(Error::InvalidArgument(
                "stop strings need a detokenizer (token id -> text)".into(),
            ));
        }
        if let Some(i) = criteria.stop_strings.iter().position(|s| s.is_empty()) {
            return Err(Error::InvalidArgument(format!("stop string {i} is empty")));
        }
        if let Some(i) = criteria.stop_token_sequences.iter().position(Vec::is_empty) {
            return Err(Error::InvalidArgument(format!(
                "stop token sequence {i} is empty"
            )));
        }
        Ok(StopChecker {
            criteria,
            detokenizer,
            tokens: Vec::new(),
            text: String::new(),
            piece_starts: Vec::new(),
            emitted: 0,
            stop: (criteria.max_new_tokens == 0).then_some(StopReason::MaxNewTokens),
        })
    }

    /// The generated tokens so far (the one that stopped the row included).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The final (streamed) text so far; once stopped, the row's output
    /// text.
    pub fn text(&self) -> &str {
        &self.text[..self.emitted]
    }

    /// Why the row stopped, or `None` while it runs.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }

    /// True once the row has stopped; later pushes are ignored.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_some()
    }

    /// Ends the row with `reason` and makes the text up to `end` final.
    fn finish(&mut self, reason: StopReason, end: usize, from: usize) -> Pushed<'_> {
        self.stop = Some(reason);
        let end = end.max(self.emitted);
        self.emitted = end;
        Pushed {
            text: &self.text[from..end],
            stop: Some(reason),
        }
    }

    /// Records the row's next sampled token and applies the criteria in
    /// this order: EOS (when `n >= min_new_tokens`, `n` the length before
    /// the token), stop sequences (once the row holds `min_new_tokens`
    /// tokens; the one starting earliest wins, token sequences before
    /// strings at the same place), then `max_new_tokens`. Returns the text
    /// that became final and the stop reason if the row ended. After the
    /// row stopped, it does nothing.
    pub fn push(&mut self, token: u32) -> Pushed<'_> {
        let from = self.emitted;
        if self.stop.is_some() {
            return Pushed {
                text: "",
                stop: None,
            };
        }
        let c = self.criteria;
        let before = self.tokens.len();
        self.tokens.push(token);
        let n = self.tokens.len();
        if c.eos_token_ids.contains(&token) && before >= c.min_new_tokens as usize {
            self.piece_starts.push(self.text.len());
            let end = self.text.len();
            return self.finish(StopReason::Eos, end, from);
        }
        let prev_len = self.text.len();
        self.piece_starts.push(prev_len);
        if let Some(d) = self.detokenizer {
            d.push_piece(token, &mut self.text);
        }
        let bytes = self.text.as_bytes();

        if n >= c.min_new_tokens as usize {
            // (cut position in the text, reason); earliest cut wins.
            let mut best: Option<(usize, StopReason)> = None;
            let mut consider = |cut: usize, why: StopReason| {
                if best.is_none_or(|(b, _)| cut < b) {
                    best = Some((cut, why));
                }
            };
            for (i, seq) in c.stop_token_sequences.iter().enumerate() {
                if self.tokens.ends_with(seq) {
                    consider(self.piece_starts[n - seq.len()], StopReason::StopTokens(i));
                }
            }
            for (i, s) in c.stop_strings.iter().enumerate() {
                // Only matches this token completed (end > prev_len) and
                // that start in text not yet final.
                let lo = self.emitted.max((prev_len + 1).saturating_sub(s.len()));
                if let Some(p) = find_bytes(&bytes[lo..], s.as_bytes()) {
                    consider(lo + p, StopReason::StopString(i));
                }
            }
            if let Some((cut, why)) = best {
                return self.finish(why, cut, from);
            }
        }
        if n >= c.max_new_tokens as usize {
            let end = self.text.len();
            return self.finish(StopReason::MaxNewTokens, end, from);
        }

        // Hold back whatever could still turn into a stop sequence.
        let mut hold = self.text.len();
        for s in &c.stop_strings {
            let s = s.as_bytes();
            if let Some(k) = (1..s.len()).rev().find(|&k| bytes.ends_with(&s[..k])) {
                hold = hold.min(bytes.len() - k);
            }
        }
        for seq in &c.stop_token_sequences {
            if let Some(k) = (1..seq.len())
                .rev()
                .find(|&k| k <= n && self.tokens.ends_with(&seq[..k]))
            {
                hold = hold.min(self.piece_starts[n - k]);
            }
        }
        let end = hold.max(self.emitted);
        self.emitted = end;
        Pushed {
            text: &self.text[from..end],
            stop: None,
        }
    }

    /// Ends the row because the sampler gave it no token (`status` is not
    /// `Ok`); the held-back text becomes final. Does nothing after a stop.
    pub fn push_no_token(&mut self, status: Status) -> Pushed<'_> {
        let from = self.emitted;
        if self.stop.is_some() {
            return Pushed {
                text: "",
                stop: None,
            };
        }
        let end = self.text.len();
        self.finish(StopReason::NoToken(status), end, from)
    }
}
