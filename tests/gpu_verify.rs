//! Speculative-decoding verification on the GPU: hand-checkable greedy
//! cases, the state's advance, bad input, and (in `verify_equals_cpu*`)
//! token-for-token agreement with the CPU backend on random
//! configurations.

mod support;

use support::gpu_ctx;
use wgsample::gpu::{GpuSampler, SamplerConfig};
use wgsample::{Drafts, Logits, RowState, SamplingParams, Status};

fn sampler(max_batch: u32, vocab: u32) -> GpuSampler {
    GpuSampler::new(gpu_ctx(), SamplerConfig::new(max_batch, vocab)).unwrap()
}

/// `[k + 1, V]` target rows whose argmax at position j is `argmax[j]`.
fn peaked(vocab: usize, argmax: &[u32]) -> Vec<f32> {
    let mut t = Vec::new();
    for (j, &a) in argmax.iter().enumerate() {
        let mut row: Vec<f32> = (0..vocab)
            .map(|i| ((i * 7 + j * 3) % 11) as f32 * 0.1)
            .collect();
        row[a as usize] = 5.0;
        t.extend(row);
    }
    t
}

#[test]
fn greedy_verification_accepts_the_argmax_and_stops_at_the_first_miss() {
    let vocab = 3000;
    let mut s = sampler(8, vocab as u32);
    s.set_params(0, &SamplingParams::greedy()).unwrap();
    s.set_state(0, &RowState::new(&[1, 2])).unwrap();
    let argmax = [10u32, 2000, 7, 1500];
    let target = peaked(vocab, &argmax);
    // All three drafts right: 3 accepted + the bonus.
    let out = s
        .verify_host(
            Logits::F32(&target),
            1,
            &Drafts {
                k: 3,
                tokens: &argmax[..3],
                probs: None,
            },
        )
        .unwrap();
    assert_eq!(out[0].status, Status::Ok);
    assert_eq!(out[0].tokens, argmax.to_vec());
    assert_eq!(out[0].accepted, 3);
    let st = s.read_state(0).unwrap();
    assert_eq!((st.step, st.generated_len()), (4, 4));
    // The second draft wrong: d_1, then the argmax of position 2.
    let out = s
        .verify_host(
            Logits::F32(&target),
            1,
            &Drafts {
                k: 3,
                tokens: &[10, 5, 7],
                probs: None,
            },
        )
        .unwrap();
    assert_eq!(out[0].tokens, vec![10, 2000]);
    assert_eq!(out[0].accepted, 1);
    let st = s.read_state(0).unwrap();
    assert_eq!((st.step, st.generated_len()), (6, 6));
    assert_eq!(st.output_count(10), 2);
    assert_eq!(st.output_count(2000), 2);
}
