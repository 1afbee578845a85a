//! The typed errors engines match on: every device-limit overflow is an
//! `Error::Limit` naming the limit and both numbers, misuse is
//! `Error::InvalidArgument`, and a bad parameter is `Error::InvalidParams`
//! naming the row and field. Runs on the real device (lavapipe here).

mod support;

use support::gpu_ctx;
use wgsample::gpu::{GpuSampler, SamplerConfig};
use wgsample::{CpuSampler, Error, RowState, SamplingParams};

#[test]
fn a_vocabulary_past_the_grid_limit_is_a_limit_error() {
    let ctx = gpu_ctx();
    let max = ctx.device.limits().max_compute_workgroups_per_dimension;
    // One workgroup per 1024 logits: one more chunk than the grid allows.
    let vocab = (max + 1) * 1024;
    let e = GpuSampler::new(ctx, SamplerConfig::new(1, vocab)).unwrap_err();
    match &e {
        Error::Limit {
            limit_name,
            needed,
            max: m,
            ..
        } => {
            assert_eq!(*limit_name, "max_compute_workgroups_per_dimension");
            assert_eq!(*needed, u64::from(max) + 1);
            assert_eq!(*m, u64::from(max));
        }
        other => panic!("expected Error::Limit, got {other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("max_compute_workgroups_per_dimension"),
        "{text}"
    );
}

#[test]
fn misuse_and_bad_params_have_their_own_variants() {
    let ctx = gpu_ctx();
    let e = GpuSampler::new(ctx, SamplerConfig::new(0, 16)).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");

    let mut cpu = CpuSampler::new();
    let logits = vec![0.0f32; 8];
    let bad = SamplingParams {
        top_p: 1.5,
        ..Default::default()
    };
    let mut states = vec![RowState::default(); 2];
    let e = cpu
        .sample(
            (&logits).into(),
            4,
            &[SamplingParams::default(), bad],
            &mut states,
        )
        .unwrap_err();
    match &e {
        Error::InvalidParams { row, field, .. } => {
            assert_eq!((*row, *field), (1, "top_p"));
        }
        other => panic!("expected Error::InvalidParams, got {other:?}"),
    }
    // Wrong lengths are misuse.
    let e = cpu
        .sample(
            logits[..7].into(),
            4,
            &[SamplingParams::default()],
            &mut states[..1],
        )
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
}
