//! Test harnesses, behind the `testing` cargo feature: nothing an engine
//! needs, everything the crate's tests and benchmarks lean on to check the
//! GPU against the host bit for bit.
//!
//! Why a feature and not private items: the integration tests in `tests/`
//! are separate crates and can only reach public items. They turn the
//! feature on through a dev-dependency of the crate on itself, so a plain
//! `cargo test` builds it and an engine's build never sees it.

pub use crate::cpu::fastmath;
pub use crate::gpu::argmax::{
    ARGMAX_WGSL, ArgmaxPipeline, GpuRowOutput, ROW_OUTPUT_BYTES, argmax_host, decode_row_outputs,
};
pub use crate::gpu::philox::{
    PHILOX_TEST_WGSL, gumbel_gpu, ln_gpu, philox_words_gpu, sortable_keys_gpu,
};
pub use crate::twins::{f32_to_sortable_key, ln_f32, min_p_log, sortable_key_to_f32};
