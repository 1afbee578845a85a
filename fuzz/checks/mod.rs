//! The checks behind the library's fuzz targets (`params`, `gpu_cpu`), one
//! `pub fn <target>(&[u8])` each; the CLI's (`npy`, `args`) are in
//! `cli.rs` beside this file.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and by the
//! root crate's regression test (`tests/fuzz_seeds.rs`), which replays every
//! committed seed in `fuzz/seeds/<target>/`. A check panics when a property
//! fails (libFuzzer reports the panic as a crash); it returns normally for
//! every input that the library handles as documented.
//!
//! This file and everything it includes use only `wgsample` and `half`
//! (wgsample's own dependency), so that the root crate's tests can include it
//! without extra dev-dependencies: the fuzzer's bytes are decoded by hand
//! (`input.rs`), not with `arbitrary`. The naive oracle of SPEC.md comes
//! from `tests/oracle/mod.rs` with `#[path]`.

#![allow(dead_code)]

#[path = "input.rs"]
pub mod input;
#[path = "../../tests/oracle/mod.rs"]
#[allow(dead_code, clippy::all)]
pub mod oracle;

use input::{Mode, Reader};
use std::sync::{Mutex, OnceLock};
use wgsample::{CpuSampler, Logits, NO_TOKEN, RowOutput, RowState, SamplingParams, Status};

// ---------------------------------------------------------------------------
// 1. SamplingParams validation, then the CPU backend.
// ---------------------------------------------------------------------------

/// SPEC.md's validation rules, written out independently of
/// `SamplingParams::validate` (plus the library's documented "each bias
/// token at most once" and the bitmask length).
pub fn spec_valid(p: &SamplingParams, vocab: usize) -> bool {
    let tok = |t: u32| (t as usize) < vocab;
    let mut bias_tokens: Vec<u32> = p.logit_bias.iter().map(|b| b.0).collect();
    bias_tokens.sort_unstable();
    let dup = bias_tokens.windows(2).any(|w| w[0] == w[1]);
    p.temperature.is_finite()
        && p.temperature >= 0.0
        && p.top_p > 0.0
        && p.top_p <= 1.0
        && p.min_p >= 0.0
        && p.min_p < 1.0
        && p.repetition_penalty.is_finite()
        && p.repetition_penalty > 0.0
        && p.presence_penalty.is_finite()
        && p.frequency_penalty.is_finite()
        && p.logit_bias.iter().all(|&(t, b)| tok(t) && b.is_finite())
        && !dup
        && p.banned_tokens.iter().all(|&t| tok(t))
        && p.eos_token_ids.iter().all(|&t| tok(t))
        && p.allowed_tokens
            .as_ref()
            .is_none_or(|m| m.len() == vocab.div_ceil(32))
}

fn state_valid(s: &RowState, vocab: usize) -> bool {
    s.prompt_tokens().iter().all(|&t| (t as usize) < vocab)
        && s.output_counts().all(|(t, _)| (t as usize) < vocab)
}

/// Whether an f32 logprob agrees with the oracle's f64 one: within
/// `1e-5 * max(1, |lp|)`, or both beyond f32's range on the same side.
fn logprob_close(got: f32, want: f64) -> bool {
    let g = got as f64;
    if (g - want).abs() <= 1e-5 * want.abs().max(1.0) {
        return true;
    }
    let big = f32::MAX as f64 * (1.0 - 1e-5);
    g.abs() >= big && want.abs() >= big && g.signum() == want.signum()
}

/// The oracle's answer for a row, or `None` when steps 2-4 produce a NaN
/// (e.g. `-inf - (-inf)` from an overflowing penalty): SPEC.md does not
/// define that case and the oracle refuses it.
fn oracle_for(row: &[f32], p: &SamplingParams, st: &RowState) -> Option<oracle::OracleOut> {
    let ost = oracle::OracleState::from_row_state(st);
    if row.iter().any(|x| x.is_nan() || *x == f32::INFINITY) {
        return Some(oracle::oracle_row(row, p, &ost));
    }
    if oracle::processed_logits(row, p, &ost)
        .iter()
        .any(|x| x.is_nan())
    {
        return None;
    }
    Some(oracle::oracle_row(row, p, &ost))
}

/// Checks one CPU output against the contract's invariants.
fn check_row_invariants(
    row: &[f32],
    p: &SamplingParams,
    before: &RowState,
    after: &RowState,
    out: &RowOutput,
) {
    let v = row.len();
    let invalid = row.iter().any(|x| x.is_nan() || *x == f32::INFINITY);
    assert_eq!(
        out.status == Status::InvalidLogits,
        invalid,
        "status {:?} for a row with NaN/+inf = {invalid}",
        out.status
    );
    if out.status != Status::Ok {
        assert_eq!(out.token, NO_TOKEN, "token of a {:?} row", out.status);
        assert!(
            out.logprob.is_nan(),
            "logprob {} of a {:?} row",
            out.logprob,
            out.status
        );
        assert_eq!(after, before, "state changed on a {:?} row", out.status);
        return;
    }
    let t = out.token;
    assert!((t as usize) < v, "token {t} >= V = {v}");
    assert!(!p.banned_tokens.contains(&t), "sampled banned token {t}");
    if let Some(m) = &p.allowed_tokens {
        assert!(
            (m[t as usize / 32] >> (t % 32)) & 1 == 1,
            "sampled token {t} outside the allowed mask"
        );
    }
    if before.generated_len() < p.min_new_tokens {
        assert!(
            !p.eos_token_ids.contains(&t),
            "sampled EOS {t} before min_new_tokens"
        );
    }
    assert!(
        row[t as usize] != f32::NEG_INFINITY,
        "sampled token {t} whose raw logit is -inf"
    );
    assert!(
        !out.logprob.is_nan() && out.logprob <= 1e-6,
        "logprob {}",
        out.logprob
    );
    let mut want = before.clone();
    want.record(t);
    assert_eq!(after, &want, "state after sampling {t}");
}

/// Fuzz target `params`: arbitrary `SamplingParams` (NaN, infinities,
/// extremes, out-of-range ids, lists of up to 70 000 entries) and vocab
/// sizes. `validate` returns Ok or Err (never panics), agrees with SPEC's
/// rules and words its error as one line; when Ok and V <= 64, the CPU
/// backend samples 1-3 rows (f32, f16 or bf16) without panicking, keeps
/// the contract's invariants and agrees with the naive oracle (token,
/// status, logprob, filtered distribution) except at SPEC's knife edges.
pub fn params(data: &[u8]) {
    let mut r = Reader::new(data);
    let vocab: usize = match r.u8() % 16 {
        0 => 0,
        1 => usize::from(r.u16()),
        2 => r.u32() as usize,
        3 => u32::MAX as usize + 1 + usize::from(r.u8()),
        4 => usize::MAX,
        _ => 1 + usize::from(r.u8() % 64),
    };
    let v32 = u32::try_from(vocab).unwrap_or(u32::MAX);
    let p = input::params(&mut r, v32, Mode::Wild);
    let row_id = usize::from(r.u8());
    let res = p.validate(row_id, vocab);
    let want = spec_valid(&p, vocab);
    match &res {
        Ok(()) => assert!(
            want,
            "validate accepted params SPEC refuses (V = {vocab}): {p:?}"
        ),
        Err(e) => {
            assert!(
                !want,
                "validate refused valid params (V = {vocab}): {e}; {p:?}"
            );
            let msg = e.to_string();
            assert!(
                !msg.contains(['\n', '\r']),
                "error over several lines: {msg:?}"
            );
            assert!(
                msg.contains(&format!("row {row_id}")),
                "error does not name the row: {msg}"
            );
        }
    }
    if res.is_err() || !(1..=64).contains(&vocab) {
        return;
    }
    let v = vocab;
    let b = 1 + usize::from(r.u8() % 3);
    let dtype = r.u8() % 4;
    let wild_state = r.u8().is_multiple_of(8);
    let states: Vec<RowState> = (0..b)
        .map(|_| input::row_state(&mut r, v32, wild_state))
        .collect();
    let mut x: Vec<f32> = (0..b * v).map(|_| r.logit()).collect();
    let h16: Vec<half::f16>;
    let hb16: Vec<half::bf16>;
    let logits = match dtype {
        0 => {
            h16 = x.iter().map(|&f| half::f16::from_f32(f)).collect();
            x = h16.iter().map(|h| h.to_f32()).collect();
            Logits::F16(&h16)
        }
        1 => {
            hb16 = x.iter().map(|&f| half::bf16::from_f32(f)).collect();
            x = hb16.iter().map(|h| h.to_f32()).collect();
            Logits::Bf16(&hb16)
        }
        _ => Logits::F32(&x),
    };
    let params = vec![p.clone(); b];
    let mut after = states.clone();
    let threads = if r.bool() { 1 } else { 2 };
    let mut cpu = CpuSampler::with_threads(threads);
    let res = cpu.sample(logits, v, &params, &mut after);
    let states_ok = states.iter().all(|s| state_valid(s, v));
    let outs = match res {
        Ok(o) => {
            assert!(
                states_ok,
                "sampled with a state holding ids >= V = {v}: {states:?}"
            );
            o
        }
        Err(e) => {
            assert!(
                !states_ok,
                "CPU sample refused valid params/states: {e}; {p:?} {states:?}"
            );
            return;
        }
    };
    assert_eq!(outs.len(), b);
    for i in 0..b {
        let row = &x[i * v..(i + 1) * v];
        let (st, out) = (&states[i], &outs[i]);
        check_row_invariants(row, &p, st, &after[i], out);
        // The filtered distribution of the same row (SPEC steps 1-9).
        let dist = wgsample::filtered_distribution(Logits::F32(row), &p, st)
            .unwrap_or_else(|e| panic!("filtered_distribution refused valid input: {e}"));
        assert_eq!(
            dist.status, out.status,
            "distribution status vs sample status"
        );
        assert_eq!(dist.tokens.len(), dist.probs.len());
        if out.status == Status::Ok {
            assert!(
                dist.tokens.contains(&out.token),
                "sampled token {} is not in the filtered distribution {:?}",
                out.token,
                dist.tokens
            );
            let total: f64 = dist.probs.iter().map(|&q| q as f64).sum();
            assert!((total - 1.0).abs() <= 1e-4, "distribution sums to {total}");
            assert!(
                dist.probs.iter().all(|q| q.is_finite() && *q >= 0.0),
                "probs {:?}",
                dist.probs
            );
        } else {
            assert!(dist.tokens.is_empty());
        }
        // Against the naive oracle.
        let Some(o) = oracle_for(row, &p, st) else {
            continue;
        };
        if o.knife() {
            continue;
        }
        assert_eq!(
            out.status, o.status,
            "status vs oracle; row {row:?} params {p:?} state {st:?}"
        );
        assert_eq!(
            out.token, o.token,
            "token vs oracle; row {row:?} params {p:?} state {st:?}"
        );
        if o.status == Status::Ok {
            assert!(
                logprob_close(out.logprob, o.logprob),
                "logprob {} vs oracle {}; row {row:?} params {p:?}",
                out.logprob,
                o.logprob
            );
        }
        if let Err(e) = oracle::check_distribution(&dist, &o) {
            panic!("distribution vs oracle: {e}; row {row:?} params {p:?} state {st:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// 2. GPU backend vs CPU backend.
// ---------------------------------------------------------------------------

/// One device for the whole process, and one sampler per vocabulary size
/// (max_batch 4), created on first use and reused by every input.
struct Gpu {
    ctx: wgsample::gpu::GpuContext,
    samplers: std::collections::HashMap<u32, wgsample::gpu::GpuSampler>,
}

static GPU: OnceLock<Mutex<Gpu>> = OnceLock::new();

fn gpu() -> &'static Mutex<Gpu> {
    GPU.get_or_init(|| {
        let ctx = wgsample::gpu::open_device().unwrap_or_else(|e| {
            panic!(
                "the gpu_cpu check needs a wgpu adapter: {e}. To get one, {}",
                wgsample::gpu::INSTALL_HINT
            )
        });
        Mutex::new(Gpu {
            ctx,
            samplers: Default::default(),
        })
    })
}

/// Fuzz target `gpu_cpu`: V <= 64, B <= 4, arbitrary logits (f32 bit
/// patterns, or f16 / bf16), arbitrary valid params and states per row.
/// The GPU sampler and the CPU backend must give the same status, token and
/// logprob (within `1e-5 * max(1, |lp|)`) for every row, except where the
/// naive oracle flags one of SPEC's knife edges; and the state the GPU
/// keeps on the device must equal the CPU's after the step. Inputs whose
/// params or states fail validation are skipped.
pub fn gpu_cpu(data: &[u8]) {
    let mut r = Reader::new(data);
    let v = 1 + usize::from(r.u8() % 64);
    let b = 1 + usize::from(r.u8() % 4);
    let dtype = r.u8() % 8;
    let v32 = v as u32;
    let params: Vec<SamplingParams> = (0..b)
        .map(|_| input::params(&mut r, v32, Mode::MostlyValid))
        .collect();
    let states: Vec<RowState> = (0..b)
        .map(|_| input::row_state(&mut r, v32, false))
        .collect();
    if params
        .iter()
        .enumerate()
        .any(|(i, p)| p.validate(i, v).is_err())
    {
        return;
    }
    let mut x: Vec<f32> = (0..b * v)
        .map(|_| {
            if dtype < 2 {
                f32::from_bits(r.u32())
            } else {
                r.logit()
            }
        })
        .collect();
    let h16: Vec<half::f16>;
    let hb16: Vec<half::bf16>;
    let logits = match dtype {
        2 => {
            h16 = x.iter().map(|&f| half::f16::from_f32(f)).collect();
            x = h16.iter().map(|h| h.to_f32()).collect();
            Logits::F16(&h16)
        }
        3 => {
            hb16 = x.iter().map(|&f| half::bf16::from_f32(f)).collect();
            x = hb16.iter().map(|h| h.to_f32()).collect();
            Logits::Bf16(&hb16)
        }
        _ => Logits::F32(&x),
    };

    let mut cpu_states = states.clone();
    let cpu_out = CpuSampler::with_threads(1)
        .sample(logits, v, &params, &mut cpu_states)
        .unwrap_or_else(|e| panic!("CPU refused valid input: {e}"));

    let mut g = gpu().lock().unwrap_or_else(|e| e.into_inner());
    let Gpu { ctx, samplers } = &mut *g;
    let s = samplers.entry(v32).or_insert_with(|| {
        wgsample::gpu::GpuSampler::new(ctx, wgsample::gpu::SamplerConfig::new(4, v32))
            .unwrap_or_else(|e| panic!("GpuSampler::new(4, {v}): {e}"))
    });
    for i in 0..b {
        s.set_params(i, &params[i])
            .unwrap_or_else(|e| panic!("set_params row {i}: {e}"));
        s.set_state(i, &states[i])
            .unwrap_or_else(|e| panic!("set_state row {i}: {e}"));
    }
    let gpu_out = s
        .sample_host(logits, b as u32)
        .unwrap_or_else(|e| panic!("GPU sample_host refused valid input: {e}"));
    assert_eq!(gpu_out.len(), b);

    for i in 0..b {
        let row = &x[i * v..(i + 1) * v];
        let (go, co) = (&gpu_out[i], &cpu_out[i]);
        let lp_ok = if co.status == Status::Ok {
            logprob_close(go.logprob, co.logprob as f64)
        } else {
            go.logprob.is_nan()
        };
        let agree = go.token == co.token && go.status == co.status && lp_ok;
        if agree {
            let gs = s
                .read_state(i)
                .unwrap_or_else(|e| panic!("read_state row {i}: {e}"));
            assert_eq!(
                gs, cpu_states[i],
                "row {i}: state after the step, GPU vs CPU (V {v}, B {b})"
            );
            continue;
        }
        let o = oracle_for(row, &params[i], &states[i]);
        if go.status == co.status && o.as_ref().is_some_and(|o| o.knife()) {
            continue;
        }
        panic!(
            "row {i} (V {v}, B {b}, dtype {}): gpu {go:?} cpu {co:?}; oracle {}; params {:?}; state {:?}; logits {:?}",
            ["f32", "f32", "f16", "bf16"]
                .get(usize::from(dtype))
                .unwrap_or(&"f32"),
            match &o {
                Some(o) => format!(
                    "token {} logprob {} status {:?} knife {:?}/{:?} dist {:?}",
                    o.token, o.logprob, o.status, o.filter_knife, o.sample_knife, o.dist_tokens
                ),
                None => "undefined (NaN in steps 2-4)".into(),
            },
            params[i],
            states[i],
            row
        );
    }
}
