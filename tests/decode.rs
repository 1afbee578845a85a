//! Decoding: the stop criteria (each criterion, streaming hold-back), the
//! decode loop's read-back (the host maps only the `B` row results a step,
//! or the token history once at the end, never logits), and the bigram
//! model on the GPU against the CPU, token for token.
//!
//! The GPU tests run on whatever adapter `open_device` finds (lavapipe here
//! and in CI); without one they fail with the install hint, they never skip.

mod support;

use support::gpu_ctx;
use wgsample::decode::{
    self, Backend, DecodeEvent, DecodeSpec, Readback, StepInfo, StopChecker, StopCriteria,
    StopReason,
};
use wgsample::gpu::{GpuSampler, SamplerConfig};
use wgsample::{NO_TOKEN, RowState, SamplingParams, Status};

// ---------------------------------------------------------------------------
// Stop criteria
// ---------------------------------------------------------------------------

/// A toy vocabulary: token `i` is `VOCAB[i]`.
const VOCAB: &[&str] = &[
    "a", "b", "\n", "\n\n", "x\n\ny", "END", "E", "ND", "é", "<eos>", " ", "c",
];

fn piece(t: u32) -> &'static str {
    VOCAB[t as usize]
}

/// Pushes `tokens` and returns each step's (text, stop).
fn run<'c>(
    c: &'c StopCriteria,
    tokens: &[u32],
) -> (Vec<(String, Option<StopReason>)>, StopChecker<'c>) {
    let detok: &'static dyn decode::Detokenizer = &piece;
    let mut ck = StopChecker::new(c, Some(detok)).unwrap();
    let steps = tokens
        .iter()
        .map(|&t| {
            let p = ck.push(t);
            (p.text.to_string(), p.stop)
        })
        .collect();
    (steps, ck)
}

fn texts(steps: &[(String, Option<StopReason>)]) -> Vec<&str> {
    steps.iter().map(|s| s.0.as_str()).collect()
}

#[test]
fn max_new_tokens_stops_and_flushes() {
    let c = StopCriteria::new(3);
    let (steps, ck) = run(&c, &[0, 1, 11, 0]);
    assert_eq!(texts(&steps), ["a", "b", "c", ""]);
    assert_eq!(steps[2].1, Some(StopReason::MaxNewTokens));
    assert_eq!(steps[3].1, None, "pushes after the stop are ignored");
    assert_eq!(ck.tokens(), [0, 1, 11]);
    assert_eq!(ck.text(), "abc");

    // Zero tokens: stopped before the first push.
    let c0 = StopCriteria::new(0);
    let ck0 = StopChecker::new(&c0, None).unwrap();
    assert_eq!(ck0.stop_reason(), Some(StopReason::MaxNewTokens));

    // Held-back text is released when the length limit ends the row.
    let c = StopCriteria::new(2).with_stop_string("END");
    let (steps, ck) = run(&c, &[0, 6]);
    assert_eq!(texts(&steps), ["a", "E"]);
    assert_eq!(steps[1].1, Some(StopReason::MaxNewTokens));
    assert_eq!(ck.text(), "aE");
}

#[test]
fn eos_stops_keeps_the_id_and_drops_its_text() {
    let c = StopCriteria::new(10).with_eos([9, 5]);
    let (steps, ck) = run(&c, &[0, 1, 9, 0]);
    assert_eq!(steps[2].1, Some(StopReason::Eos));
    assert_eq!(ck.tokens(), [0, 1, 9]);
    assert_eq!(ck.text(), "ab");
    assert_eq!(texts(&steps), ["a", "b", "", ""]);
}

#[test]
fn min_new_tokens_follows_the_device_rule() {
    // The sampler masks EOS while n (tokens before this one) < min_new; the
    // checker accepts an EOS exactly when n >= min_new.
    let c = StopCriteria::new(10).with_eos([9]).with_min_new_tokens(2);
    let (steps, ck) = run(&c, &[9, 9, 9]);
    assert_eq!(steps[0].1, None);
    assert_eq!(steps[1].1, None);
    assert_eq!(steps[2].1, Some(StopReason::Eos));
    assert_eq!(ck.tokens(), [9, 9, 9]);
    assert_eq!(ck.text(), "<eos><eos>");

    // The criteria put the same rule into the sampling params.
    let mut p = SamplingParams::default();
    c.apply_to(&mut p);
    assert_eq!(p.eos_token_ids, [9]);
    assert_eq!(p.min_new_tokens, 2);

    // Stop sequences count once the row holds min_new tokens (stop
    // tokens included).
    let c = StopCriteria::new(10)
        .with_stop_tokens([0, 1])
        .with_min_new_tokens(3);
    let (steps, ck) = run(&c, &[0, 1, 0, 1]);
    assert_eq!(steps[1].1, None, "[0, 1] at n = 2 < 3 does not stop");
    assert_eq!(steps[3].1, Some(StopReason::StopTokens(0)));
    assert_eq!(ck.tokens(), [0, 1, 0, 1]);
    assert_eq!(ck.text(), "ab");
    // The ignored match was released as text.
    assert_eq!(texts(&steps), ["", "ab", "", ""]);
}

#[test]
fn stop_token_sequences() {
    let c = StopCriteria::new(20)
        .with_stop_tokens([1, 1, 0])
        .with_stop_tokens([11]);
    // Overlapping prefix: 1 1 1 0 ends with [1, 1, 0].
    let (steps, ck) = run(&c, &[0, 1, 1, 1, 0, 0]);
    assert_eq!(steps[4].1, Some(StopReason::StopTokens(0)));
    assert_eq!(ck.tokens(), [0, 1, 1, 1, 0]);
    // The stop sequence's text is not emitted; text that could start it
    // was held back until decided.
    assert_eq!(texts(&steps), ["a", "", "", "b", "", ""]);
    assert_eq!(ck.text(), "ab");

    let (steps, ck) = run(&c, &[0, 11]);
    assert_eq!(steps[1].1, Some(StopReason::StopTokens(1)));
    assert_eq!(ck.text(), "a");

    // A held prefix that fails is released.
    let (steps, _) = run(&c, &[1, 1, 11]);
    assert_eq!(texts(&steps), ["", "", "bb"]);
    assert_eq!(steps[2].1, Some(StopReason::StopTokens(1)));
    let (steps, _) = run(&c, &[1, 0, 1]);
    assert_eq!(texts(&steps), ["", "ba", ""]);
}

#[test]
fn stop_text_split_across_tokens_is_held_back_while_streaming() {
    let c = StopCriteria::new(20).with_stop_string("END");
    // "E" + "ND": the "E" is held until "ND" decides it.
    let (steps, ck) = run(&c, &[0, 6, 7, 0]);
    assert_eq!(texts(&steps), ["a", "", "", ""]);
    assert_eq!(steps[2].1, Some(StopReason::StopString(0)));
    assert_eq!(ck.tokens(), [0, 6, 7]);
    assert_eq!(ck.text(), "a");

    // "E" then "a": not a stop, the held "E" is released with "a".
    let (steps, ck) = run(&c, &[6, 0, 6, 6, 5]);
    assert_eq!(texts(&steps), ["", "Ea", "", "E", "E"]);
    assert_eq!(steps[4].1, Some(StopReason::StopString(0)));
    assert_eq!(ck.text(), "EaEE");

    // Blank line split over two newlines.
    let c = StopCriteria::new(20).with_stop_string("\n\n");
    let (steps, ck) = run(&c, &[0, 2, 1, 2, 2, 0]);
    assert_eq!(texts(&steps), ["a", "", "\nb", "", "", ""]);
    assert_eq!(steps[4].1, Some(StopReason::StopString(0)));
    assert_eq!(ck.text(), "a\nb");
}

#[test]
fn stop_string_inside_a_longer_token() {
    let c = StopCriteria::new(20).with_stop_string("\n\n");
    // Token 4 is "x\n\ny": the text stops after "x", and the "y" after the
    // stop string in the same token is not emitted either.
    let (steps, ck) = run(&c, &[0, 4, 0]);
    assert_eq!(texts(&steps), ["a", "x", ""]);
    assert_eq!(steps[1].1, Some(StopReason::StopString(0)));
    assert_eq!(ck.tokens(), [0, 4]);
    assert_eq!(ck.text(), "ax");

    // A whole-token stop string equal to the piece.
    let (_, ck) = run(&c, &[1, 3]);
    assert_eq!(ck.text(), "b");
    assert_eq!(ck.stop_reason(), Some(StopReason::StopString(0)));
}

#[test]
fn earliest_stop_wins_and_text_is_never_taken_back() {
    // Two strings completed by the same token: the one that starts first.
    let c = StopCriteria::new(20)
        .with_stop_string("ND")
        .with_stop_string("aEN");
    let (steps, ck) = run(&c, &[0, 6, 7]);
    assert_eq!(steps[2].1, Some(StopReason::StopString(1)));
    assert_eq!(ck.text(), "");
    // A token sequence and a string at the same place: the sequence.
    let c = StopCriteria::new(20)
        .with_stop_string("E")
        .with_stop_tokens([6]);
    let (steps, _) = run(&c, &[0, 6]);
    assert_eq!(steps[1].1, Some(StopReason::StopTokens(0)));
}

#[test]
fn multibyte_text_is_cut_on_character_boundaries() {
    let c = StopCriteria::new(20).with_stop_string("éE");
    let (steps, ck) = run(&c, &[8, 0, 8, 6]);
    assert_eq!(texts(&steps), ["", "éa", "", ""]);
    assert_eq!(ck.text(), "éa");
    assert_eq!(ck.stop_reason(), Some(StopReason::StopString(0)));
}

#[test]
fn no_token_stops_the_row_and_flushes() {
    let c = StopCriteria::new(20).with_stop_string("END");
    let detok: &dyn decode::Detokenizer = &piece;
    let mut ck = StopChecker::new(&c, Some(detok)).unwrap();
    assert_eq!(ck.push(6).text, "");
    let p = ck.push_no_token(Status::NoCandidates);
    assert_eq!(p.text, "E");
    assert_eq!(p.stop, Some(StopReason::NoToken(Status::NoCandidates)));
    assert_eq!(
        StopReason::NoToken(Status::NoCandidates).as_str(),
        "no_candidates"
    );
    assert_eq!(ck.tokens(), [6]);
}

#[test]
fn bad_criteria_are_errors() {
    let c = StopCriteria::new(4).with_stop_string("x");
    assert!(
        StopChecker::new(&c, None).is_err(),
        "stop strings need text"
    );
    let c = StopCriteria::new(4).with_stop_string("");
    assert!(c.validate(10).is_err());
    let c = StopCriteria::new(4).with_stop_tokens([]);
    assert!(c.validate(10).is_err());
    let c = StopCriteria::new(4).with_stop_tokens([3, 10]);
    assert!(c.validate(10).unwrap_err().to_string().contains("10"));
    let c = StopCriteria::new(4).with_eos([10]);
    assert!(c.validate(10).is_err());
    assert!(StopCriteria::new(4).with_eos([9]).validate(10).is_ok());
    assert!(!StopCriteria::new(4).can_stop_early());
    assert!(StopCriteria::new(4).with_eos([1]).can_stop_early());
}

// ---------------------------------------------------------------------------
// Decode loop on the bigram model
// ---------------------------------------------------------------------------

/// A `[V, V]` table with varied, well-separated logits.
fn table(vocab: usize, salt: usize) -> Vec<f32> {
    (0..vocab * vocab)
        .map(|i| {
            let h = (i.wrapping_mul(2_654_435_761) ^ salt.wrapping_mul(40_503)) % 10_007;
            (h as f32) * 0.0009 - 4.0
        })
        .collect()
}

fn params(batch: usize, base: SamplingParams) -> Vec<SamplingParams> {
    (0..batch)
        .map(|r| SamplingParams {
            seed: base.seed + r as u64,
            ..base.clone()
        })
        .collect()
}

type Events = Vec<(usize, u32, u32, String, Option<StopReason>)>;

/// GPU and CPU sequences agree: tokens, text and stop reason exactly,
/// logprobs to f32 rounding (the two backends sum exponentials in a
/// different order).
fn assert_same(a: &[decode::Sequence], b: &[decode::Sequence]) {
    assert_eq!(a.len(), b.len());
    for (r, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.tokens, y.tokens, "row {r}");
        assert_eq!(x.text, y.text, "row {r}");
        assert_eq!(x.stop_reason, y.stop_reason, "row {r}");
        assert_eq!(x.logprobs.len(), y.logprobs.len(), "row {r}");
        for (p, q) in x.logprobs.iter().zip(&y.logprobs) {
            assert!(
                (p - q).abs() <= 1e-4 * p.abs().max(1.0),
                "row {r}: {p} vs {q}"
            );
        }
    }
}

fn collect(out: &mut Events) -> impl FnMut(&DecodeEvent<'_>) + '_ {
    |e| out.push((e.row, e.step, e.token, e.text.to_string(), e.stop))
}

#[test]
fn the_loop_maps_only_the_row_results_never_logits() {
    let ctx = gpu_ctx();
    let (v, b) = (1000usize, 3usize);
    let t = table(v, 1);
    let ps = params(
        b,
        SamplingParams {
            seed: 11,
            top_k: 50,
            ..Default::default()
        },
    );
    let starts = [1u32, 2, 3];
    let max_new = 9u32;
    let crit = StopCriteria::new(max_new);

    // Every step: B row results (12 bytes each) per step.
    let mut spec = DecodeSpec::new(&ps, &crit);
    spec.readback = Readback::EveryStep;
    let mut ev_step = Events::new();
    let every = decode::generate(
        &t,
        v,
        &starts,
        &spec,
        Backend::Gpu(ctx),
        collect(&mut ev_step),
    )
    .unwrap();
    assert_eq!(every.stats.steps, max_new);
    assert_eq!(every.stats.maps, max_new);
    assert_eq!(every.stats.bytes_mapped, u64::from(max_new) * b as u64 * 12);
    assert!(every.stats.bytes_mapped / u64::from(max_new) < (v * 4) as u64);

    // Only max_new_tokens: nothing until the end, then one mapping of the
    // [steps, B] history.
    let spec = DecodeSpec::new(&ps, &crit);
    assert_eq!(spec.readback, Readback::Auto);
    let mut ev_end = Events::new();
    let end = decode::generate(
        &t,
        v,
        &starts,
        &spec,
        Backend::Gpu(ctx),
        collect(&mut ev_end),
    )
    .unwrap();
    assert_eq!(end.stats.maps, 1);
    assert_eq!(end.stats.bytes_mapped, u64::from(max_new) * b as u64 * 12);
    assert_eq!(end.sequences, every.sequences);
    assert_eq!(ev_end, ev_step, "the same events, only later");

    // And both equal the CPU loop, which maps nothing.
    let cpu = decode::generate(&t, v, &starts, &spec, Backend::Cpu, |_| {}).unwrap();
    assert_eq!(cpu.stats.bytes_mapped, 0);
    assert_same(&cpu.sequences, &end.sequences);
    for s in &cpu.sequences {
        assert_eq!(s.tokens.len(), max_new as usize);
        assert_eq!(s.stop_reason, StopReason::MaxNewTokens);
    }
}

#[test]
fn early_stop_reads_each_step_and_exits_when_all_rows_stopped() {
    let ctx = gpu_ctx();
    let v = 64usize;
    let t = table(v, 2);
    // Greedy chain from each start; make token 5 the argmax after 4, and
    // the EOS (7) the argmax after 5.
    let mut t2 = t.clone();
    t2[4 * v + 5] = 50.0;
    t2[5 * v + 7] = 50.0;
    t2[6 * v + 4] = 50.0;
    let ps = params(2, SamplingParams::greedy());
    let crit = StopCriteria::new(40).with_eos([7]);
    let spec = DecodeSpec::new(&ps, &crit);
    let gpu = decode::generate(&t2, v, &[6, 4], &spec, Backend::Gpu(ctx), |_| {}).unwrap();
    let cpu = decode::generate(&t2, v, &[6, 4], &spec, Backend::Cpu, |_| {}).unwrap();
    assert_same(&gpu.sequences, &cpu.sequences);
    assert_eq!(gpu.sequences[0].tokens, [4, 5, 7]);
    assert_eq!(gpu.sequences[1].tokens, [5, 7]);
    assert!(
        gpu.sequences
            .iter()
            .all(|s| s.stop_reason == StopReason::Eos)
    );
    // Three steps, then every row had stopped.
    assert_eq!(gpu.stats.steps, 3);
    assert_eq!(gpu.stats.maps, 3);
    assert_eq!(gpu.stats.bytes_mapped, 3 * 2 * 12);
    assert_eq!(cpu.stats.steps, 3);

    // Forced to read once at the end, the loop runs every step but finds
    // the same stops in the history.
    let mut spec_end = spec;
    spec_end.readback = Readback::AtEnd;
    let end = decode::generate(&t2, v, &[6, 4], &spec_end, Backend::Gpu(ctx), |_| {}).unwrap();
    assert_same(&end.sequences, &gpu.sequences);
    assert_eq!(end.stats.steps, 40);
    assert_eq!(end.stats.maps, 1);
    assert_eq!(end.stats.bytes_mapped, 40 * 2 * 12);
}

/// Several parameter sets, batch > 1, EOS, stop tokens, stop strings,
/// min_new_tokens: GPU == CPU for tokens, logprobs (to rounding), text,
/// stop reasons and the streamed events.
#[test]
fn bigram_gpu_equals_cpu() {
    let ctx = gpu_ctx();
    let v = 300usize;
    let t = table(v, 3);
    // Text for stop strings: token i is a letter, some are newlines.
    let names: Vec<String> = (0..v)
        .map(|i| match i % 13 {
            0 => "\n".to_string(),
            k => ((b'a' + (k as u8)) as char).to_string(),
        })
        .collect();
    let detok = |tok: u32| names[tok as usize].as_str();
    let sets: Vec<(SamplingParams, StopCriteria)> = vec![
        (SamplingParams::greedy(), StopCriteria::new(12)),
        (
            SamplingParams {
                seed: 7,
                ..Default::default()
            },
            StopCriteria::new(30).with_eos([3, 17]),
        ),
        (
            SamplingParams {
                seed: 3,
                temperature: 0.8,
                top_k: 20,
                top_p: 0.9,
                ..Default::default()
            },
            StopCriteria::new(25)
                .with_eos([5])
                .with_min_new_tokens(4)
                .with_stop_tokens([10, 11])
                .with_stop_tokens([42]),
        ),
        (
            SamplingParams {
                seed: 5,
                min_p: 0.05,
                repetition_penalty: 1.3,
                ..Default::default()
            },
            StopCriteria::new(40)
                .with_stop_string("\n\n")
                .with_stop_string("bc"),
        ),
        (
            SamplingParams {
                seed: 9,
                frequency_penalty: 0.5,
                presence_penalty: 0.2,
                temperature: 1.3,
                banned_tokens: vec![10],
                logit_bias: vec![(4, 1.5)],
                ..Default::default()
            },
            StopCriteria::new(30).with_eos([4]).with_stop_string("k"),
        ),
    ];
    let mut stopped_early = 0;
    for (i, (base, crit)) in sets.iter().enumerate() {
        let ps = params(4, base.clone());
        let starts = [0u32, 1, 2, 3];
        let mut spec = DecodeSpec::new(&ps, crit);
        spec.detokenizer = Some(&detok);
        let mut ev_g = Events::new();
        let mut ev_c = Events::new();
        let g =
            decode::generate(&t, v, &starts, &spec, Backend::Gpu(ctx), collect(&mut ev_g)).unwrap();
        let c = decode::generate(&t, v, &starts, &spec, Backend::Cpu, collect(&mut ev_c)).unwrap();
        assert_eq!(ev_g, ev_c, "set {i}: events differ");
        for (r, (sg, sc)) in g.sequences.iter().zip(&c.sequences).enumerate() {
            assert_eq!(sg.tokens, sc.tokens, "set {i} row {r}");
            assert_eq!(sg.text, sc.text, "set {i} row {r}");
            assert_eq!(sg.stop_reason, sc.stop_reason, "set {i} row {r}");
            for (a, b) in sg.logprobs.iter().zip(&sc.logprobs) {
                assert!(
                    (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                    "set {i}: {a} vs {b}"
                );
            }
            if sg.stop_reason != StopReason::MaxNewTokens {
                stopped_early += 1;
            }
            // The streamed text is the sequence's text.
            let streamed: String = ev_g
                .iter()
                .filter(|e| e.0 == r)
                .map(|e| e.3.as_str())
                .collect();
            assert_eq!(streamed, sg.text);
            // min_new_tokens holds on both.
            if sg.stop_reason == StopReason::Eos {
                assert!(sg.tokens.len() > crit.min_new_tokens as usize);
            }
        }
    }
    assert!(stopped_early >= 4, "the data should exercise early stops");
}

#[test]
fn a_custom_model_step_reads_the_tokens_on_the_device() {
    // The model step is any recorded GPU work: here the bigram gather on a
    // sampler the test owns, driven through decode_gpu directly.
    let ctx = gpu_ctx();
    let v = 40u32;
    let t = table(v as usize, 4);
    let model = decode::BigramModel::new(ctx, &t, v, 2).unwrap();
    model.set_start(&[7, 8]).unwrap();
    let mut sampler = GpuSampler::new(ctx, SamplerConfig::new(2, v)).unwrap();
    let ps = params(
        2,
        SamplingParams {
            seed: 1,
            ..Default::default()
        },
    );
    let crit = StopCriteria::new(6);
    let states = [RowState::new(&[7]), RowState::new(&[8])];
    let mut spec = DecodeSpec::new(&ps, &crit);
    spec.states = Some(&states);
    let mut seen_steps = Vec::new();
    let out = decode::decode_gpu(
        &mut sampler,
        model.logits(),
        &spec,
        |enc, info: &StepInfo<'_>| {
            seen_steps.push(info.step);
            model.record_step(enc, info)
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(seen_steps, [0, 1, 2, 3, 4, 5]);
    let cpu = decode::generate(&t, v as usize, &[7, 8], &spec, Backend::Cpu, |_| {}).unwrap();
    assert_same(&out.sequences, &cpu.sequences);
    // The sampler's device state advanced by the loop.
    assert_eq!(sampler.read_state(0).unwrap().step, 6);
}

#[test]
fn rows_without_a_token_stop_with_the_status() {
    let ctx = gpu_ctx();
    let v = 16usize;
    let mut t = table(v, 5);
    // After token 3 every logit is -inf except when banned... make row 3
    // all -inf: no candidates.
    for x in &mut t[3 * v..4 * v] {
        *x = f32::NEG_INFINITY;
    }
    // Greedy from 2 goes to 3 first.
    t[2 * v + 3] = 50.0;
    let ps = params(2, SamplingParams::greedy());
    let crit = StopCriteria::new(5).with_eos([15]);
    let spec = DecodeSpec::new(&ps, &crit);
    let g = decode::generate(&t, v, &[2, 2], &spec, Backend::Gpu(ctx), |_| {}).unwrap();
    let c = decode::generate(&t, v, &[2, 2], &spec, Backend::Cpu, |_| {}).unwrap();
    assert_same(&g.sequences, &c.sequences);
    assert_eq!(g.sequences[0].tokens, [3]);
    assert_eq!(
        g.sequences[0].stop_reason,
        StopReason::NoToken(Status::NoCandidates)
    );
    assert_eq!(NO_TOKEN, u32::MAX);
}

#[test]
fn bad_input_is_an_error_before_anything_runs() {
    let ctx = gpu_ctx();
    let t = table(8, 6);
    let ps = params(2, SamplingParams::default());
    let crit = StopCriteria::new(3);
    let spec = DecodeSpec::new(&ps, &crit);
    for backend in [Backend::Cpu, Backend::Gpu(ctx)] {
        assert!(decode::generate(&t, 7, &[0, 0], &spec, backend, |_| {}).is_err());
        assert!(decode::generate(&t, 8, &[0, 8], &spec, backend, |_| {}).is_err());
        assert!(decode::generate(&t, 8, &[0], &spec, backend, |_| {}).is_err());
        let bad = StopCriteria::new(3).with_eos([8]);
        let s = DecodeSpec::new(&ps, &bad);
        assert!(decode::generate(&t, 8, &[0, 0], &s, backend, |_| {}).is_err());
        let bad_p = params(
            2,
            SamplingParams {
                top_p: 0.0,
                ..Default::default()
            },
        );
        let s = DecodeSpec::new(&bad_p, &crit);
        let e = decode::generate(&t, 8, &[0, 0], &s, backend, |_| {}).unwrap_err();
        assert!(e.to_string().contains("top_p"), "{e}");
    }
}
