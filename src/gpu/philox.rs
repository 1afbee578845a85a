//! The shared WGSL helpers of `shaders/common.wgsl` (Philox4x32-10, the
//! word -> uniform -> Gumbel chain, `ln_f32`, the sortable float key), run
//! elementwise on the GPU so that tests can hold them against their CPU
//! twins in [`crate::rng`]; the binding side of `shaders/philox_test.wgsl`.
//!
//! Why a module for this: the crate's central promise is that a row's token
//! does not depend on the backend, and that rests on these helpers giving
//! the same bits as the CPU. The sampling passes inline them, where they
//! cannot be observed one value at a time; these entry points expose them
//! directly. Each call compiles a small pipeline, uploads, dispatches,
//! reads back and blocks: meant for tests and diagnostics, not hot paths.
//!
//! The CPU twin of the sortable key lives here too
//! ([`f32_to_sortable_key`](crate::twins::f32_to_sortable_key)), since only the GPU's radix selection needs it.

use wgpu::util::DeviceExt;

use super::device::{GpuContext, scoped};
use super::kit::{buffer_entry, check_buffer_size, compute_pipeline, grid_2d, submit_and_read};
use crate::{Error, Result};

/// WGSL source of the helper kernels: `common.wgsl` followed by
/// `philox_test.wgsl`.
pub const PHILOX_TEST_WGSL: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    "\n",
    include_str!("../../shaders/philox_test.wgsl")
);

/// Invocations per workgroup of the helper kernels.
const WORKGROUP_SIZE: u32 = 64;

/// Uniform block of `philox_test.wgsl` (`HelperParams`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct HelperParams {
    n: u32,
    stride_y: u32,
    seed_lo: u32,
    seed_hi: u32,
    step_lo: u32,
    step_hi: u32,
    pad0: u32,
    pad1: u32,
}

/// Runs entry point `entry` over `n` items with `input` words bound at 0
/// and `out_words_per_item * n` output words at 1; returns the output.
fn run_helper(
    ctx: &GpuContext,
    entry: &str,
    input: &[u32],
    n: u32,
    out_words_per_item: u32,
    mut params: HelperParams,
) -> Result<Vec<u32>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let device = &ctx.device;
    let limits = device.limits();
    let out_bytes = u64::from(n) * u64::from(out_words_per_item) * 4;
    // A non-empty input binding even when the kernel reads none.
    let input: &[u32] = if input.is_empty() { &[0] } else { input };
    let in_bytes = std::mem::size_of_val(input) as u64;
    for (what, bytes) in [("helper input", in_bytes), ("helper output", out_bytes)] {
        check_buffer_size(device, what, bytes)?;
        if bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::limit(
                format!("{what} (bytes)"),
                bytes,
                "max_storage_buffer_binding_size",
                limits.max_storage_buffer_binding_size,
            ));
        }
    }
    let (grid_x, grid_y) = grid_2d(&limits, n.div_ceil(WORKGROUP_SIZE))?;
    params.n = n;
    params.stride_y = grid_x * WORKGROUP_SIZE;

    let layout = scoped(device, "helper bind group layout", || {
        Ok(
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("wgsample helpers"),
                entries: &[
                    buffer_entry(
                        0,
                        wgpu::BufferBindingType::Storage { read_only: true },
                        Some(4),
                    ),
                    buffer_entry(
                        1,
                        wgpu::BufferBindingType::Storage { read_only: false },
                        Some(4),
                    ),
                    buffer_entry(
                        2,
                        wgpu::BufferBindingType::Uniform,
                        Some(std::mem::size_of::<HelperParams>() as u64),
                    ),
                ],
            }),
        )
    })?;
    let pipeline = compute_pipeline(device, entry, PHILOX_TEST_WGSL, entry, &layout)?;
    let bytes = scoped(device, entry, || {
        let in_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("wgsample helper input"),
            contents: bytemuck::cast_slice(input),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let out_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgsample helper output"),
            size: out_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let params_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("wgsample helper params"),
            contents: bytemuck::bytes_of(&params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let bind_group = crate::gpu::kit::bind_group(
            device,
            "wgsample helpers",
            &layout,
            &[
                in_buf.as_entire_binding(),
                out_buf.as_entire_binding(),
                params_buf.as_entire_binding(),
            ],
        );
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(entry) });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(entry),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(grid_x, grid_y, 1);
        }
        submit_and_read(ctx, encoder, &out_buf, out_bytes)
    })?;
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

fn item_count(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| Error::InvalidArgument(format!("{len} items do not fit in u32")))
}

/// Philox4x32-10 on the GPU: for each `(counter, key)`, the four output
/// words of `shaders/common.wgsl`'s `philox4x32_10`, which must equal
/// [`crate::rng::philox4x32_10`].
pub fn philox_words_gpu(
    ctx: &GpuContext,
    inputs: &[([u32; 4], [u32; 2])],
) -> Result<Vec<[u32; 4]>> {
    let n = item_count(inputs.len())?;
    let packed: Vec<u32> = inputs
        .iter()
        .flat_map(|(c, k)| [c[0], c[1], c[2], c[3], k[0], k[1]])
        .collect();
    let words = run_helper(ctx, "philox_words", &packed, n, 4, HelperParams::default())?;
    Ok(words
        .chunks_exact(4)
        .map(|w| [w[0], w[1], w[2], w[3]])
        .collect())
}

/// The Gumbel values `g_i = -ln(-ln(u_i))` for token indices `0..n` at
/// `step` under `seed`, computed by the shared WGSL helpers (the GPU twin of
/// [`crate::rng::gumbel`]).
pub fn gumbel_gpu(ctx: &GpuContext, seed: u64, step: u64, n: u32) -> Result<Vec<f32>> {
    let params = HelperParams {
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        step_lo: step as u32,
        step_hi: (step >> 32) as u32,
        ..Default::default()
    };
    let bits = run_helper(ctx, "gumbel_values", &[], n, 1, params)?;
    Ok(bits.into_iter().map(f32::from_bits).collect())
}

/// `ln_f32` of `shaders/common.wgsl` (the natural log the Gumbel chain uses,
/// < 1 ulp from the exact value) applied to each of `xs` on the GPU.
pub fn ln_gpu(ctx: &GpuContext, xs: &[f32]) -> Result<Vec<f32>> {
    let n = item_count(xs.len())?;
    let input: Vec<u32> = xs.iter().map(|x| x.to_bits()).collect();
    let bits = run_helper(ctx, "ln_values", &input, n, 1, HelperParams::default())?;
    Ok(bits.into_iter().map(f32::from_bits).collect())
}

/// The WGSL sortable key of each value, with the key mapped back to a
/// float: `(f32_to_sortable_key(x), sortable_key_to_f32(key))` as computed
/// by `shaders/common.wgsl` (twins: [`f32_to_sortable_key`](crate::twins::f32_to_sortable_key),
/// [`sortable_key_to_f32`](crate::twins::sortable_key_to_f32)).
pub fn sortable_keys_gpu(ctx: &GpuContext, values: &[f32]) -> Result<Vec<(u32, f32)>> {
    let n = item_count(values.len())?;
    let input: Vec<u32> = values.iter().map(|x| x.to_bits()).collect();
    let words = run_helper(ctx, "sortable_keys", &input, n, 2, HelperParams::default())?;
    Ok(words
        .chunks_exact(2)
        .map(|w| (w[0], f32::from_bits(w[1])))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shader_validates_with_naga() {
        crate::gpu::validate_wgsl(PHILOX_TEST_WGSL).unwrap();
    }
}
