//! The agreement checks: every configuration sampled by [`GpuSampler`] on
//! the runtime's WebGPU device and by [`CpuSampler`] in the same module,
//! compared token for token.
//!
//! A configuration is a batch of rows (params, starting state, logits per
//! step) run for a few steps with the state kept on each backend (the GPU
//! sampler's on the device, the CPU's in `RowState`s), so penalties, the
//! EOS mask and the step counter of the random stream are exercised
//! across steps. After the last step the GPU's state is read back and
//! compared with the CPU's. Then a 50-step decode loop
//! ([`generate_async`], the bigram model's gather on the device) and two
//! beam searches ([`beam_search_bigram_async`]) run on both backends.
//!
//! The comparison is exact for tokens and statuses; logprobs agree within
//! `1e-4` absolute or `1e-5` relative, or are both NaN (the two backends
//! sum `exp` in different orders).

use std::collections::HashMap;

use half::{bf16, f16};
use wgsample::beam::{BeamBackend, BeamConfig, EarlyStopping, beam_search_bigram_async};
use wgsample::decode::{Backend, DecodeSpec, Readback, StopCriteria, generate_async};
use wgsample::gpu::{GpuContext, GpuSampler, SamplerConfig};
use wgsample::{CpuSampler, Logits, RowOutput, RowState, SamplingParams, allowed_mask};

use crate::data;
use crate::now_ms;

/// Rows of the samplers the checks share (one per vocabulary size).
const MAX_BATCH: u32 = 8;

/// Element type a configuration hands to both samplers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `Logits::F32`.
    F32,
    /// `Logits::F16` (the f32 data rounded to half).
    F16,
    /// `Logits::Bf16` (the f32 data rounded to bfloat16).
    Bf16,
}

/// Host logits in one of the three element types.
enum HostLogits {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
}

impl HostLogits {
    fn new(x: Vec<f32>, dtype: Dtype) -> Self {
        match dtype {
            Dtype::F32 => HostLogits::F32(x),
            Dtype::F16 => HostLogits::F16(x.iter().map(|&v| f16::from_f32(v)).collect()),
            Dtype::Bf16 => HostLogits::Bf16(x.iter().map(|&v| bf16::from_f32(v)).collect()),
        }
    }

    fn view(&self) -> Logits<'_> {
        match self {
            HostLogits::F32(x) => Logits::F32(x),
            HostLogits::F16(x) => Logits::F16(x),
            HostLogits::Bf16(x) => Logits::Bf16(x),
        }
    }
}

/// Makes the `[B, V]` f32 logits of step `s`.
type LogitsFn = Box<dyn Fn(u32) -> Vec<f32>>;

/// One sampling configuration: rows, their starting states, and the
/// logits of each step.
pub struct Case {
    /// What the configuration exercises (printed on failure).
    pub name: String,
    /// Vocabulary size `V`.
    pub vocab: usize,
    /// Element type of the logits.
    pub dtype: Dtype,
    /// One entry per row.
    pub params: Vec<SamplingParams>,
    /// Starting state of each row.
    pub states: Vec<RowState>,
    /// Steps sampled, the state carried from one to the next.
    pub steps: u32,
    logits: LogitsFn,
}

impl Case {
    /// `params.len()` rows over `vocab` tokens, fresh states, f32 logits
    /// that change every step.
    fn new(name: &str, vocab: usize, params: Vec<SamplingParams>, steps: u32) -> Self {
        let rows = params.len();
        let seed = name_seed(name);
        Case {
            name: name.to_string(),
            vocab,
            dtype: Dtype::F32,
            states: vec![RowState::default(); rows],
            params,
            steps,
            logits: Box::new(move |s| data::logits(seed + u64::from(s), rows, vocab, 2.0, 6)),
        }
    }

    fn dtype(mut self, d: Dtype) -> Self {
        self.dtype = d;
        self
    }

    fn states(mut self, s: Vec<RowState>) -> Self {
        assert_eq!(s.len(), self.params.len());
        self.states = s;
        self
    }

    fn logits(mut self, f: impl Fn(u32) -> Vec<f32> + 'static) -> Self {
        self.logits = Box::new(f);
        self
    }
}

/// A stable seed from a configuration's name.
fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn p() -> SamplingParams {
    SamplingParams::default()
}

/// The `n` largest entries of `row` (ties: lower id first).
fn top_ids(row: &[f32], n: usize) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..row.len() as u32).collect();
    ids.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
    ids.truncate(n);
    ids
}

/// The same logits at every step (for penalties and the EOS mask, whose
/// effect shows when the input does not change).
fn fixed(rows: usize, vocab: usize, seed: u64) -> impl Fn(u32) -> Vec<f32> + 'static {
    let x = data::logits(seed, rows, vocab, 2.0, 8);
    move |_| x.clone()
}

/// Every sampling configuration the check runs.
pub fn cases() -> Vec<Case> {
    const V: usize = 5000;
    let mut c = Vec::new();
    let seeded = |seed: u64, f: fn(&mut SamplingParams)| {
        let mut q = SamplingParams { seed, ..p() };
        f(&mut q);
        q
    };

    c.push(Case::new("greedy", V, vec![SamplingParams::greedy()], 3));
    c.push(Case::new(
        "temperature 1 (plain sampling)",
        V,
        vec![seeded(11, |_| {})],
        4,
    ));
    c.push(Case::new(
        "temperature 0.05",
        V,
        vec![seeded(12, |q| q.temperature = 0.05)],
        4,
    ));
    c.push(Case::new(
        "temperature 2.0",
        V,
        vec![seeded(13, |q| q.temperature = 2.0)],
        4,
    ));
    c.push(Case::new(
        "top-k 40",
        V,
        vec![seeded(14, |q| q.top_k = 40)],
        4,
    ));
    c.push(Case::new(
        "top-k 300 (more than a chunk's 64 candidates)",
        V,
        vec![seeded(15, |q| q.top_k = 300)],
        3,
    ));
    c.push(Case::new(
        "top-p 0.9",
        V,
        vec![seeded(16, |q| q.top_p = 0.9)],
        4,
    ));
    c.push(Case::new(
        "top-p 0.5, temperature 0.7",
        V,
        vec![seeded(17, |q| {
            q.top_p = 0.5;
            q.temperature = 0.7;
        })],
        4,
    ));
    c.push(Case::new(
        "min-p 0.1",
        V,
        vec![seeded(18, |q| q.min_p = 0.1)],
        4,
    ));
    c.push(Case::new(
        "min-p 0.02, temperature 1.3",
        V,
        vec![seeded(19, |q| {
            q.min_p = 0.02;
            q.temperature = 1.3;
        })],
        4,
    ));
    c.push(Case::new(
        "top-k 50 + top-p 0.9 + min-p 0.05, temperature 0.8",
        V,
        vec![seeded(20, |q| {
            q.top_k = 50;
            q.top_p = 0.9;
            q.min_p = 0.05;
            q.temperature = 0.8;
        })],
        4,
    ));
    c.push(
        Case::new(
            "flat row, top-p 0.999 and min-p 0.001 (full-row path)",
            V,
            vec![
                seeded(21, |q| q.top_p = 0.999),
                seeded(22, |q| q.min_p = 0.001),
            ],
            3,
        )
        .logits(|s| data::logits(900 + u64::from(s), 2, V, 0.01, 0)),
    );
    c.push(
        Case::new(
            "ties, top-k 10 and top-p 0.3 on integer logits",
            V,
            vec![seeded(23, |q| q.top_k = 10), seeded(24, |q| q.top_p = 0.3)],
            3,
        )
        .logits(|s| {
            data::logits(910 + u64::from(s), 2, V, 1.5, 0)
                .into_iter()
                .map(f32::round)
                .collect()
        }),
    );

    // Penalties: the same logits every step, so each sampled token's
    // penalty changes the next step's choice; prompts hold the row's
    // strongest tokens.
    {
        let seed = 930;
        let x = data::logits(seed, 2, V, 2.0, 8);
        let prompt0 = top_ids(&x[..V], 5);
        let prompt1 = top_ids(&x[V..], 3);
        c.push(
            Case::new(
                "repetition penalty 1.3 with prompt tokens",
                V,
                vec![
                    SamplingParams {
                        repetition_penalty: 1.3,
                        ..SamplingParams::greedy()
                    },
                    seeded(31, |q| {
                        q.repetition_penalty = 1.3;
                        q.temperature = 0.5;
                    }),
                ],
                6,
            )
            .states(vec![RowState::new(&prompt0), RowState::new(&prompt1)])
            .logits(fixed(2, V, seed)),
        );
    }
    {
        let seed = 940;
        let x = data::logits(seed, 2, V, 2.0, 8);
        let prompt = top_ids(&x[V..], 4);
        c.push(
            Case::new(
                "presence 0.8 + frequency 0.5 penalties",
                V,
                vec![
                    SamplingParams {
                        presence_penalty: 0.8,
                        frequency_penalty: 0.5,
                        ..SamplingParams::greedy()
                    },
                    seeded(41, |q| {
                        q.presence_penalty = 0.8;
                        q.frequency_penalty = 0.5;
                        q.repetition_penalty = 1.2;
                        q.temperature = 0.5;
                    }),
                ],
                8,
            )
            .states(vec![RowState::default(), RowState::new(&prompt)])
            .logits(fixed(2, V, seed)),
        );
    }
    c.push(
        Case::new(
            "negative penalties (repetition 0.8, frequency -0.3), state with earlier output",
            V,
            vec![SamplingParams {
                repetition_penalty: 0.8,
                frequency_penalty: -0.3,
                ..SamplingParams::greedy()
            }],
            5,
        )
        .states(vec![RowState::with_output(&[7, 8, 9], &[100, 100, 200])])
        .logits(fixed(1, V, 950)),
    );
    {
        let seed = 960;
        let x = data::logits(seed, 1, V, 2.0, 8);
        let top = top_ids(&x, 3);
        let mut q = SamplingParams { seed: 61, ..p() };
        q.logit_bias = vec![(top[0], -100.0), (top[2], 2.5), (4321, 9.0), (17, -3.0)];
        c.push(
            Case::new("logit bias", V, vec![q.clone(), q], 4)
                .logits(move |_| [x.clone(), x.clone()].concat()),
        );
    }
    {
        let seed = 970;
        let x = data::logits(seed, 1, V, 2.0, 8);
        let banned = top_ids(&x, 10);
        let greedy = SamplingParams {
            banned_tokens: banned.clone(),
            ..SamplingParams::greedy()
        };
        let topk = SamplingParams {
            banned_tokens: banned,
            top_k: 5,
            seed: 71,
            ..p()
        };
        c.push(
            Case::new("banned tokens", V, vec![greedy, topk], 3)
                .logits(move |_| [x.clone(), x.clone()].concat()),
        );
    }
    {
        let allowed: Vec<u32> = (0..V as u32).filter(|t| t % 7 == 3).collect();
        let mask = allowed_mask(V, &allowed).expect("ids below V");
        c.push(Case::new(
            "allowed-token mask (every 7th token)",
            V,
            vec![
                SamplingParams {
                    allowed_tokens: Some(mask.clone()),
                    ..SamplingParams::greedy()
                },
                SamplingParams {
                    allowed_tokens: Some(mask),
                    seed: 81,
                    top_p: 0.9,
                    ..p()
                },
            ],
            3,
        ));
    }
    {
        let seed = 980;
        let x = data::logits(seed, 2, V, 2.0, 8);
        let eos0 = top_ids(&x[..V], 1);
        let eos1 = top_ids(&x[V..], 2);
        c.push(
            Case::new(
                "EOS masked until min_new_tokens 3",
                V,
                vec![
                    SamplingParams {
                        eos_token_ids: eos0,
                        min_new_tokens: 3,
                        ..SamplingParams::greedy()
                    },
                    SamplingParams {
                        eos_token_ids: eos1,
                        min_new_tokens: 3,
                        temperature: 0.5,
                        seed: 91,
                        ..p()
                    },
                ],
                5,
            )
            .logits(fixed(2, V, seed)),
        );
    }
    c.push(
        Case::new(
            "f16 logits: greedy, top-p 0.9, min-p 0.1",
            V,
            vec![
                SamplingParams::greedy(),
                seeded(101, |q| q.top_p = 0.9),
                seeded(102, |q| q.min_p = 0.1),
            ],
            3,
        )
        .dtype(Dtype::F16),
    );
    c.push(
        Case::new(
            "bf16 logits: greedy, top-k 20 temperature 0.9, presence penalty",
            V,
            vec![
                SamplingParams::greedy(),
                seeded(111, |q| {
                    q.top_k = 20;
                    q.temperature = 0.9;
                }),
                seeded(112, |q| q.presence_penalty = 1.0),
            ],
            3,
        )
        .dtype(Dtype::Bf16),
    );
    {
        let allowed: Vec<u32> = (0..V as u32).filter(|t| t % 3 != 0).collect();
        let mask = allowed_mask(V, &allowed).expect("ids below V");
        let rows = vec![
            SamplingParams::greedy(),
            seeded(121, |q| q.temperature = 0.05),
            seeded(122, |q| q.temperature = 2.0),
            seeded(123, |q| q.top_k = 40),
            seeded(124, |q| q.top_p = 0.8),
            seeded(125, |q| q.min_p = 0.1),
            seeded(126, |q| {
                q.repetition_penalty = 1.2;
                q.presence_penalty = 0.4;
                q.frequency_penalty = 0.3;
            }),
            SamplingParams {
                seed: 127,
                logit_bias: vec![(5, 4.0), (6, -2.0)],
                banned_tokens: vec![1, 2, 3],
                allowed_tokens: Some(mask),
                top_k: 100,
                top_p: 0.95,
                ..p()
            },
        ];
        let states = (0..8u32)
            .map(|r| RowState::new(&[r, r + 10, r + 4000]))
            .collect();
        c.push(Case::new("batch 8, a different strategy a row", V, rows, 4).states(states));
    }
    {
        // Rows 1-4 get no token at any step (their state must not move).
        let rows = vec![
            seeded(131, |q| q.top_p = 0.9),
            seeded(132, |_| {}),
            SamplingParams::greedy(),
            seeded(133, |q| q.top_k = 5),
            SamplingParams {
                allowed_tokens: Some(vec![0; V.div_ceil(32)]),
                ..SamplingParams::greedy()
            },
        ];
        c.push(
            Case::new(
                "invalid rows: NaN, +inf (invalid_logits), all -inf, all masked (no_candidates)",
                V,
                rows,
                2,
            )
            .logits(|s| {
                let mut x = data::logits(990 + u64::from(s), 5, V, 2.0, 6);
                x[V + 1234] = f32::NAN;
                x[2 * V + 4999] = f32::INFINITY;
                x[3 * V..4 * V].fill(f32::NEG_INFINITY);
                x
            }),
        );
    }
    c.push(Case::new(
        "V = 1000 (less than one chunk): greedy, top-p 0.9",
        1000,
        vec![SamplingParams::greedy(), seeded(141, |q| q.top_p = 0.9)],
        3,
    ));
    c.push(Case::new(
        "V = 7: top-k 3, temperature 1",
        7,
        vec![seeded(151, |q| q.top_k = 3), seeded(152, |_| {})],
        4,
    ));
    c.push(Case::new(
        "V = 32000: greedy, top-p 0.95 temperature 0.8, min-p 0.05",
        32000,
        vec![
            SamplingParams::greedy(),
            seeded(161, |q| {
                q.top_p = 0.95;
                q.temperature = 0.8;
            }),
            seeded(162, |q| q.min_p = 0.05),
        ],
        3,
    ));
    {
        let mut st = RowState::default();
        st.step = 0xFFFF_FFFE;
        c.push(
            Case::new(
                "step counter crossing 2^32, seed with high bits",
                V,
                vec![
                    seeded(0xDEAD_BEEF_0000_0001, |_| {}),
                    seeded(0x0123_4567_89AB_CDEF, |q| q.top_k = 30),
                ],
                4,
            )
            .states(vec![st.clone(), st]),
        );
    }
    c
}

/// `g` and `c` agree: equal, both NaN, within 1e-4 absolute, or within
/// 1e-5 relative.
fn close(g: f32, c: f32) -> bool {
    g == c || (g.is_nan() && c.is_nan()) || {
        let d = (g - c).abs();
        d <= 1e-4 || d <= 1e-5 * c.abs()
    }
}

/// The first row where `gpu` and `cpu` disagree, described.
fn compare_rows(step: u32, gpu: &[RowOutput], cpu: &[RowOutput]) -> Result<(), String> {
    if gpu.len() != cpu.len() {
        return Err(format!(
            "step {step}: {} GPU rows, {} CPU rows",
            gpu.len(),
            cpu.len()
        ));
    }
    for (r, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        if g.token != c.token || g.status != c.status || !close(g.logprob, c.logprob) {
            return Err(format!(
                "step {step} row {r}: GPU token {} {} logprob {}, CPU token {} {} logprob {}",
                tok(g.token),
                g.status.as_str(),
                g.logprob,
                tok(c.token),
                c.status.as_str(),
                c.logprob
            ));
        }
    }
    Ok(())
}

fn tok(t: u32) -> String {
    if t == wgsample::NO_TOKEN {
        "none".into()
    } else {
        t.to_string()
    }
}

/// Samplers shared across configurations, one per vocabulary size (each
/// configuration sets every row's params and state first, which is what
/// an engine reusing a sampler does).
#[derive(Default)]
pub struct Samplers(HashMap<usize, GpuSampler>);

impl Samplers {
    fn take(&mut self, ctx: &GpuContext, vocab: usize) -> Result<GpuSampler, String> {
        match self.0.remove(&vocab) {
            Some(s) => Ok(s),
            None => GpuSampler::new(ctx, SamplerConfig::new(MAX_BATCH, vocab as u32))
                .map_err(|e| format!("GpuSampler::new: {e}")),
        }
    }
}

/// Runs one configuration on both backends. `corrupt` flips the
/// expected token of row 0 at step 0, to show that a disagreement is
/// caught.
pub async fn run_case(
    ctx: &GpuContext,
    samplers: &mut Samplers,
    case: &Case,
    corrupt: bool,
) -> Result<(), String> {
    let b = case.params.len();
    let v = case.vocab;
    let mut gpu = samplers.take(ctx, v)?;
    for (r, (q, s)) in case.params.iter().zip(&case.states).enumerate() {
        gpu.set_params(r, q)
            .map_err(|e| format!("set_params: {e}"))?;
        gpu.set_state(r, s).map_err(|e| format!("set_state: {e}"))?;
    }
    let mut cpu = CpuSampler::new();
    let mut states = case.states.clone();
    for step in 0..case.steps {
        let x = HostLogits::new((case.logits)(step), case.dtype);
        let g = gpu
            .sample_host_async(x.view(), b as u32)
            .await
            .map_err(|e| format!("step {step}: GPU: {e}"))?;
        let mut c = cpu
            .sample(x.view(), v, &case.params, &mut states)
            .map_err(|e| format!("step {step}: CPU: {e}"))?;
        if corrupt && step == 0 {
            c[0].token ^= 1;
        }
        compare_rows(step, &g, &c)?;
    }
    for (r, want) in states.iter().enumerate() {
        let got = gpu
            .read_state_async(r)
            .await
            .map_err(|e| format!("read_state({r}): {e}"))?;
        if &got != want {
            return Err(format!(
                "row {r}: state after {} steps differs: GPU {got:?}, CPU {want:?}",
                case.steps
            ));
        }
    }
    samplers.0.insert(v, gpu);
    Ok(())
}

/// A 50-step decode with the bigram model, 4 rows with different
/// strategies, the state kept on the device: GPU tokens, logprobs and
/// stop reasons against the CPU loop's. `every_step` adds an EOS id with
/// `min_new_tokens` (the GPU loop then reads back every step).
pub async fn run_decode(ctx: &GpuContext, every_step: bool) -> Result<String, String> {
    const V: usize = 300;
    let table = data::bigram_table(77, V);
    let params = vec![
        SamplingParams::greedy(),
        SamplingParams {
            temperature: 0.8,
            top_p: 0.9,
            seed: 1,
            ..p()
        },
        SamplingParams {
            top_k: 20,
            repetition_penalty: 1.2,
            seed: 2,
            ..p()
        },
        SamplingParams {
            min_p: 0.05,
            presence_penalty: 0.3,
            frequency_penalty: 0.2,
            seed: 3,
            ..p()
        },
    ];
    let mut criteria = StopCriteria::new(50);
    if every_step {
        // Each row's likeliest successor of its start token ends it, once
        // 5 tokens are out.
        let eos: Vec<u32> = [10u32, 20, 30, 40]
            .iter()
            .map(|&s| top_ids(&table[s as usize * V..(s as usize + 1) * V], 1)[0])
            .collect();
        criteria = criteria.with_eos(eos).with_min_new_tokens(5);
    }
    let starts = [10, 20, 30, 40];
    let mut spec = DecodeSpec::new(&params, &criteria);
    if every_step {
        spec.readback = Readback::EveryStep;
    }
    let g = generate_async(&table, V, &starts, &spec, Backend::Gpu(ctx), |_| {})
        .await
        .map_err(|e| format!("GPU: {e}"))?;
    let c = generate_async(&table, V, &starts, &spec, Backend::Cpu, |_| {})
        .await
        .map_err(|e| format!("CPU: {e}"))?;
    let mut lens = Vec::new();
    for (r, (gs, cs)) in g.sequences.iter().zip(&c.sequences).enumerate() {
        if gs.tokens != cs.tokens {
            let i = gs
                .tokens
                .iter()
                .zip(&cs.tokens)
                .position(|(a, b)| a != b)
                .unwrap_or(gs.tokens.len().min(cs.tokens.len()));
            return Err(format!(
                "row {r}: tokens differ at step {i}: GPU {:?}, CPU {:?} ({} vs {} tokens)",
                gs.tokens.get(i),
                cs.tokens.get(i),
                gs.tokens.len(),
                cs.tokens.len()
            ));
        }
        if let Some(i) = (0..gs.logprobs.len()).find(|&i| !close(gs.logprobs[i], cs.logprobs[i])) {
            return Err(format!(
                "row {r} step {i}: logprob GPU {}, CPU {}",
                gs.logprobs[i], cs.logprobs[i]
            ));
        }
        if gs.stop_reason != cs.stop_reason {
            return Err(format!(
                "row {r}: stop reason GPU {}, CPU {}",
                gs.stop_reason.as_str(),
                cs.stop_reason.as_str()
            ));
        }
        lens.push(gs.tokens.len().to_string());
    }
    if g.sequences.len() != c.sequences.len() {
        return Err("different numbers of rows".into());
    }
    Ok(format!(
        "{} steps, tokens per row {}",
        g.stats.steps,
        lens.join("/")
    ))
}

/// Beam search over a bigram table on both backends: the same hypotheses
/// (tokens equal, scores within the logprob tolerance).
pub async fn run_beam(ctx: &GpuContext, cfg: &BeamConfig) -> Result<String, String> {
    const V: usize = 200;
    let table = data::bigram_table(88, V);
    let g = beam_search_bigram_async(&table, V, 3, cfg, BeamBackend::Gpu(ctx))
        .await
        .map_err(|e| format!("GPU: {e}"))?;
    let c = beam_search_bigram_async(&table, V, 3, cfg, BeamBackend::Cpu)
        .await
        .map_err(|e| format!("CPU: {e}"))?;
    if g.len() != c.len() {
        return Err(format!("{} GPU hypotheses, {} CPU", g.len(), c.len()));
    }
    for (i, (gh, ch)) in g.iter().zip(&c).enumerate() {
        if gh.tokens != ch.tokens || !close(gh.score, ch.score) {
            return Err(format!(
                "hypothesis {i}: GPU {:?} score {}, CPU {:?} score {}",
                gh.tokens, gh.score, ch.tokens, ch.score
            ));
        }
    }
    Ok(format!("best {:?} score {:.4}", g[0].tokens, g[0].score))
}

/// The beam searches the check runs: plain, and with EOS ids, a length
/// penalty and two returned sequences.
pub fn beam_configs() -> Vec<(String, BeamConfig)> {
    let plain = BeamConfig {
        max_new_tokens: 12,
        ..BeamConfig::new(4)
    };
    let eos = BeamConfig {
        num_beams: 3,
        length_penalty: 0.8,
        early_stopping: EarlyStopping::Never,
        eos_token_ids: vec![5, 17],
        max_new_tokens: 10,
        num_return_sequences: 2,
    };
    vec![
        ("beam search: 4 beams, 12 tokens".into(), plain),
        (
            "beam search: 3 beams, EOS 5/17, length penalty 0.8, early_stopping never, 2 returned"
                .into(),
            eos,
        ),
    ]
}

/// Runs every check on `ctx`, reporting a line per configuration through
/// `log` (`ok   NAME (... ms)` or `FAIL NAME: first mismatch`), and returns
/// `(passed, total)`.
pub async fn run_all(ctx: &GpuContext, corrupt: bool, log: &mut dyn FnMut(&str)) -> (usize, usize) {
    let mut passed = 0;
    let mut total = 0;
    let mut report = |name: &str, t0: f64, r: Result<String, String>, passed: &mut usize| {
        let ms = now_ms() - t0;
        match r {
            Ok(detail) if detail.is_empty() => {
                *passed += 1;
                log(&format!("ok   {name} ({ms:.0} ms)"));
            }
            Ok(detail) => {
                *passed += 1;
                log(&format!("ok   {name}: {detail} ({ms:.0} ms)"));
            }
            Err(e) => log(&format!("FAIL {name}: {e}")),
        }
    };
    let mut samplers = Samplers::default();
    for (i, case) in cases().iter().enumerate() {
        total += 1;
        let t0 = now_ms();
        let r = run_case(ctx, &mut samplers, case, corrupt && i == 0).await;
        let detail = format!(
            "{} row{}, V {}, {} steps",
            case.params.len(),
            if case.params.len() == 1 { "" } else { "s" },
            case.vocab,
            case.steps
        );
        report(&case.name, t0, r.map(|()| detail), &mut passed);
    }
    drop(samplers);
    for (name, every_step) in [
        (
            "decode loop: bigram V 300, 4 rows, 50 steps on the device",
            false,
        ),
        (
            "decode loop: EOS after min_new_tokens 5, read back every step",
            true,
        ),
    ] {
        total += 1;
        let t0 = now_ms();
        let r = run_decode(ctx, every_step).await;
        report(name, t0, r, &mut passed);
    }
    for (name, cfg) in beam_configs() {
        total += 1;
        let t0 = now_ms();
        let r = run_beam(ctx, &cfg).await;
        report(&name, t0, r, &mut passed);
    }
    (passed, total)
}
