//! Hand-written decoding of fuzzer bytes into structured values (no
//! `arbitrary`, so the root crate's tests can include this file with only
//! wgsample's own dependencies).
//!
//! Every read succeeds: an exhausted input reads as zeros, so any byte
//! string decodes to something, and a longer input only adds detail. The
//! first byte of most values is a "tag" that picks between special values
//! (NaN, infinities, extremes, boundaries of SPEC's ranges) and raw bits, so
//! the fuzzer reaches the corners in a few mutations.

use wgsample::{RowState, SamplingParams};

/// A cursor over the fuzzer's bytes.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// True once every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The bytes not read yet (consumes them).
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.data.get(self.pos..).unwrap_or(&[]);
        self.pos = self.data.len();
        r
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Any f32: specials, boundaries of SPEC's ranges, small "nice" values
    /// (which make ties), and raw bit patterns.
    pub fn f32_any(&mut self) -> f32 {
        let tag = self.u8();
        match tag % 32 {
            0 => 0.0,
            1 => -0.0,
            2 => 1.0,
            3 => f32::NAN,
            4 => f32::INFINITY,
            5 => f32::NEG_INFINITY,
            6 => f32::MAX,
            7 => -f32::MAX,
            8 => f32::MIN_POSITIVE,
            9 => f32::from_bits(1), // smallest subnormal
            10 => 1.0 - f32::EPSILON / 2.0,
            11 => 1.0 + f32::EPSILON,
            12 => -f32::from_bits(1),
            13 => f32::from_bits(0x7fc0_0000 | u32::from(self.u16())), // NaN payloads
            14 => 0.5,
            15 => 2.0,
            16..=23 => self.f32_nice(),
            _ => f32::from_bits(self.u32()),
        }
    }

    /// A small value with few significant bits: `(k - 128) / 2^s`,
    /// `s` in 0..8 (ties and exactly representable sums are common).
    pub fn f32_nice(&mut self) -> f32 {
        let k = f32::from(self.u8()) - 128.0;
        let s = self.u8() % 8;
        k / (1u32 << s) as f32
    }

    /// A value in `[0, 1]`: nice fractions, the ends and raw fractions.
    pub fn f32_unit(&mut self) -> f32 {
        let tag = self.u8();
        match tag % 8 {
            0 => 0.0,
            1 => 1.0,
            2 => 1.0 - f32::EPSILON / 2.0,
            3 => f32::MIN_POSITIVE,
            4 => f32::from(self.u8()) / 256.0,
            5 => f32::from(self.u16()) / 65536.0,
            // Powers of two down to 2^-127 (tiny top_p / min_p).
            6 => 2f32.powi(-i32::from(self.u8() % 128)),
            _ => (self.u32() >> 8) as f32 / (1u32 << 24) as f32,
        }
    }

    /// A logit: mostly finite, with -inf holes, and every special at a
    /// lower rate; `raw` draws uniformly distributed bit patterns more.
    pub fn logit(&mut self) -> f32 {
        let tag = self.u8();
        match tag % 16 {
            0..=5 => self.f32_nice(),
            6 | 7 => f32::from_bits(self.u32()),
            8 => f32::NEG_INFINITY,
            9 => {
                // A "realistic" logit, with fractional bits everywhere.
                let x = f32::from(self.u16()) / 2048.0 - 16.0;
                x + (f32::from(self.u8()) / 256.0) * 1e-3
            }
            10..=13 => self.f32_any(),
            _ => {
                // Raw bits with the exponent clamped to |x| < 2^64.
                let bits = self.u32();
                let exp = ((bits >> 23) & 0xff) % 64 + 96;
                f32::from_bits((bits & 0x807f_ffff) | (exp << 23))
            }
        }
    }

    /// A token id for a vocabulary of `vocab`: mostly in range, sometimes
    /// any u32 (to exercise "id >= V" errors).
    pub fn token(&mut self, vocab: u32, in_range_only: bool) -> u32 {
        let tag = self.u8();
        if !in_range_only && tag >= 0xf0 {
            match tag {
                0xf0 => vocab,
                0xf1 => u32::MAX,
                _ => self.u32(),
            }
        } else if vocab == 0 {
            u32::from(tag)
        } else {
            u32::from(self.u16()) % vocab
        }
    }

    /// A list length: usually short, sometimes long (up to `max`).
    pub fn len(&mut self, short: usize, max: usize) -> usize {
        let tag = self.u8();
        if tag >= 0xf8 && max > short {
            usize::from(self.u16()) % (max + 1)
        } else {
            usize::from(tag) % (short + 1)
        }
    }
}

/// How permissive a params decoder is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Any values at all: NaN, infinities, out-of-range ids, huge lists.
    Wild,
    /// Mostly values that pass validation (for the GPU-vs-CPU target,
    /// which skips invalid rows): ids in range, finite penalties.
    MostlyValid,
}

/// Decodes a `SamplingParams` for a vocabulary of `vocab` tokens. The
/// first byte holds feature flags, so the default params are one byte away.
pub fn params(r: &mut Reader<'_>, vocab: u32, mode: Mode) -> SamplingParams {
    let wild = mode == Mode::Wild;
    let in_range = !wild;
    let f1 = r.u8();
    let f2 = r.u8();
    let mut p = SamplingParams {
        seed: match r.u8() % 4 {
            0 => 0,
            1 => u64::from(r.u8()),
            _ => r.u64(),
        },
        ..Default::default()
    };
    if f1 & 1 != 0 {
        p.temperature = match r.u8() % 8 {
            0 => 0.0,
            1 => f32::from(r.u8()) / 64.0,
            2 => f32::from(r.u16()) / 4096.0 + 1e-3,
            3 => f32::from_bits(r.u32() & 0x7fff_ffff), // any non-negative bits
            4 => f32::from_bits(1 + u32::from(r.u16())), // tiny (division overflows)
            5 if wild => r.f32_any(),
            _ => 1.0 - f32::from(r.u8()) / 512.0,
        };
    }
    if f1 & 2 != 0 {
        p.top_k = match r.u8() % 4 {
            0 => 1,
            1 => u32::from(r.u8()) % vocab.saturating_add(2),
            2 => vocab,
            _ => r.u32(),
        };
    }
    if f1 & 4 != 0 {
        p.top_p = match r.u8() % 4 {
            0 if wild => r.f32_any(),
            _ => {
                let u = r.f32_unit();
                if u == 0.0 && !wild { 1.0 } else { u }
            }
        };
    }
    if f1 & 8 != 0 {
        p.min_p = match r.u8() % 4 {
            0 if wild => r.f32_any(),
            _ => {
                let u = r.f32_unit();
                if u == 1.0 && !wild { 0.5 } else { u }
            }
        };
    }
    if f1 & 16 != 0 {
        p.repetition_penalty = match r.u8() % 4 {
            0 if wild => r.f32_any(),
            0 | 1 => f32::from(r.u8()) / 64.0 + 1.0 / 256.0,
            2 => f32::from_bits(r.u32() & 0x7f7f_ffff).max(f32::from_bits(1)),
            _ => 1.0 + f32::from(r.u8()) / 128.0,
        };
    }
    let penalty = |r: &mut Reader<'_>| match r.u8() % 4 {
        0 if wild => r.f32_any(),
        0 | 1 => {
            let x = r.f32_any();
            if x.is_finite() { x } else { 0.5 }
        }
        _ => r.f32_nice(),
    };
    if f1 & 32 != 0 {
        p.presence_penalty = penalty(r);
    }
    if f1 & 64 != 0 {
        p.frequency_penalty = penalty(r);
    }
    let long = if wild { 70_000 } else { 64 };
    if f1 & 128 != 0 {
        let n = r.len(8, long);
        for i in 0..n {
            let t = if r.is_empty() {
                // Past the input: a cheap pattern, so long lists cost no bytes.
                (i as u32).wrapping_mul(2_654_435_761) % vocab.max(1)
            } else {
                r.token(vocab, in_range)
            };
            if !wild && p.logit_bias.iter().any(|&(u, _)| u == t) {
                continue;
            }
            let b = if wild {
                r.f32_any()
            } else {
                let x = r.f32_any();
                if x.is_finite() { x } else { r.f32_nice() }
            };
            p.logit_bias.push((t, b));
        }
    }
    let list = |r: &mut Reader<'_>, short: usize| -> Vec<u32> {
        let n = r.len(short, long);
        (0..n)
            .map(|i| {
                if r.is_empty() {
                    (i as u32).wrapping_mul(40_503) % vocab.max(1)
                } else {
                    r.token(vocab, in_range)
                }
            })
            .collect()
    };
    if f2 & 1 != 0 {
        p.banned_tokens = list(r, 6);
    }
    if f2 & 2 != 0 {
        p.eos_token_ids = list(r, 3);
        p.min_new_tokens = match r.u8() % 4 {
            0 => 0,
            1 | 2 => u32::from(r.u8() % 8),
            _ => r.u32(),
        };
    }
    if f2 & 4 != 0 {
        let words = (vocab as usize).div_ceil(32);
        // A vocabulary in the billions would need a mask of hundreds of MB:
        // past 65536 words the length is decoded like any list (and the
        // params are then refused, which is what a wrong length must give).
        let n = if words > 65_536 || (wild && r.u8().is_multiple_of(4)) {
            r.len(4, long)
        } else {
            words
        };
        let dense = r.u8() % 3;
        p.allowed_tokens = Some(
            (0..n)
                .map(|_| match dense {
                    0 => r.u32(),
                    1 => r.u32() | r.u32(),
                    _ => r.u32() & r.u32(),
                })
                .collect(),
        );
    }
    p
}

/// Decodes a row state: prompt tokens, generated tokens and the step.
/// `vocab` bounds the ids unless `wild` (then some are out of range).
pub fn row_state(r: &mut Reader<'_>, vocab: u32, wild: bool) -> RowState {
    let tag = r.u8();
    if tag.is_multiple_of(4) {
        return RowState::default();
    }
    let np = r.len(12, 0);
    let prompt: Vec<u32> = (0..np).map(|_| r.token(vocab, !wild)).collect();
    let no = r.len(12, 0);
    let output: Vec<u32> = (0..no).map(|_| r.token(vocab, !wild)).collect();
    let mut s = RowState::with_output(&prompt, &output);
    s.step = match r.u8() % 4 {
        0 => 0,
        1 => u64::from(r.u16()),
        2 => u64::from(r.u32()),
        _ => r.u64(),
    };
    s
}
