//! Synthetic logits and bigram tables, deterministic from a seed.
//!
//! The checks run in a wasm module with no `rand` (its `getrandom` needs a
//! JS feature on wasm32) and must produce the same data in every runtime,
//! so this is a small SplitMix64 stream with a Box-Muller transform.

/// A SplitMix64 stream: 64 random bits per call, the same on every
/// platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n` (`n >= 1`).
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// A standard normal sample (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// `rows x vocab` logits, `N(0, sigma)` each, with `peaks` tokens a row
/// lifted by `+3 sigma` so the distributions have a head like a language
/// model's.
pub fn logits(seed: u64, rows: usize, vocab: usize, sigma: f32, peaks: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut x: Vec<f32> = (0..rows * vocab).map(|_| sigma * rng.normal()).collect();
    for row in x.chunks_exact_mut(vocab) {
        for _ in 0..peaks {
            let t = rng.below(vocab as u32) as usize;
            row[t] += 3.0 * sigma;
        }
    }
    x
}

/// A `[vocab, vocab]` bigram table (row `t`: the logits after token `t`),
/// peaked enough that greedy and low-temperature paths are not trivial.
pub fn bigram_table(seed: u64, vocab: usize) -> Vec<f32> {
    logits(seed, vocab, vocab, 1.5, 4)
}
