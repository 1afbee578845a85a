//! Shape errors of the CPU backend's batch API (`CpuSampler::sample`,
//! `filtered_distribution`): never a panic, and the sampler still works
//! afterwards.
//!
//! The hand-worked SPEC.md cases that used to live here (expected tokens,
//! logprobs, statuses and distributions worked out by hand) are in
//! tests/spec_cases.rs, where they run on both backends.

use wgsample::{CpuSampler, Logits, RowState, SamplingParams, filtered_distribution};

fn greedy() -> SamplingParams {
    SamplingParams::greedy()
}

#[test]
fn shape_errors_never_panic() {
    let z = [0.0f32; 7];
    let p2 = vec![SamplingParams::default(); 2];
    let mut s2 = vec![RowState::default(); 2];
    let mut s = CpuSampler::new();
    // 7 is not a multiple of V = 4.
    assert!(s.sample(Logits::F32(&z), 4, &p2, &mut s2).is_err());
    // 12 values for B*V = 2*4 = 8.
    let z12 = [0.0f32; 12];
    assert!(s.sample(Logits::F32(&z12), 4, &p2, &mut s2).is_err());
    // 8 values, V = 4, but 3 params.
    let z8 = [0.0f32; 8];
    let p3 = vec![SamplingParams::default(); 3];
    assert!(s.sample(Logits::F32(&z8), 4, &p3, &mut s2).is_err());
    // states length 1 for 2 rows, and 3 for 2 rows.
    let mut s1 = vec![RowState::default(); 1];
    assert!(s.sample(Logits::F32(&z8), 4, &p2, &mut s1).is_err());
    let mut s3 = vec![RowState::default(); 3];
    assert!(s.sample(Logits::F32(&z8), 4, &p2, &mut s3).is_err());
    // vocab 0.
    assert!(s.sample(Logits::F32(&[]), 0, &p2, &mut s2).is_err());
    assert!(
        s.sample(Logits::F32(&[]), 0, &p2[..1], &mut s2[..1])
            .is_err()
    );
    // Same for half inputs.
    let h = [half::f16::ZERO; 7];
    assert!(s.sample(Logits::F16(&h), 4, &p2, &mut s2).is_err());
    let hb = [half::bf16::ZERO; 12];
    assert!(s.sample(Logits::Bf16(&hb), 4, &p2, &mut s2).is_err());
    // State token ids must be < V.
    let mut bad_state = vec![RowState::default(), RowState::with_output(&[9], &[])];
    let e = s.sample(Logits::F32(&z8), 4, &p2, &mut bad_state);
    assert!(e.is_err(), "prompt token 9 >= V = 4 accepted: {e:?}");
    let mut bad_state = vec![RowState::default(), RowState::with_output(&[], &[4])];
    assert!(s.sample(Logits::F32(&z8), 4, &p2, &mut bad_state).is_err());
    // Empty row for filtered_distribution.
    assert!(
        filtered_distribution(
            Logits::F32(&[]),
            &SamplingParams::default(),
            &RowState::default()
        )
        .is_err()
    );
    // An empty batch must not panic (Ok(empty) or Err are both fine).
    if let Ok(out) = s.sample(Logits::F32(&[]), 4, &[], &mut []) {
        assert!(out.is_empty());
    }
    // After all these errors the sampler still works: greedy on [0, 2, 1, 0]
    // -> 1.
    let out = s
        .sample(
            Logits::F32(&[0.0, 2.0, 1.0, 0.0]),
            4,
            &[greedy()],
            &mut [RowState::default()],
        )
        .unwrap();
    assert_eq!(out[0].token, 1);
}
