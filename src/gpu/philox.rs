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
//! ([`f32_to_sortable_key`]), since only the GPU's radix selection needs it.

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
            return Err(Error::Gpu(format!(
                "{what} of {bytes} bytes exceeds max_storage_buffer_binding_size ({})",
                limits.max_storage_buffer_binding_size
            )));
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
    u32::try_from(len).map_err(|_| Error::Shape(format!("{len} items do not fit in u32")))
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
/// by `shaders/common.wgsl` (twins: [`f32_to_sortable_key`],
/// [`sortable_key_to_f32`]).
pub fn sortable_keys_gpu(ctx: &GpuContext, values: &[f32]) -> Result<Vec<(u32, f32)>> {
    let n = item_count(values.len())?;
    let input: Vec<u32> = values.iter().map(|x| x.to_bits()).collect();
    let words = run_helper(ctx, "sortable_keys", &input, n, 2, HelperParams::default())?;
    Ok(words
        .chunks_exact(2)
        .map(|w| (w[0], f32::from_bits(w[1])))
        .collect())
}

/// Order-preserving map from f32 to u32: for non-NaN `a`, `b` (with
/// `-0.0 < +0.0`), `a < b` exactly when `key(a) < key(b)`. Negative floats
/// get every bit flipped, the others only the sign bit. NaNs map above
/// +inf (positive sign) or below -inf (negative sign).
pub fn f32_to_sortable_key(x: f32) -> u32 {
    let bits = x.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Inverse of [`f32_to_sortable_key`] (bit-exact, NaN payloads included).
pub fn sortable_key_to_f32(key: u32) -> f32 {
    if key >> 31 == 1 {
        f32::from_bits(key & 0x7FFF_FFFF)
    } else {
        f32::from_bits(!key)
    }
}

/// CPU twin of `shaders/common.wgsl`'s `ln_f32`: the natural log by
/// FreeBSD's `logf` algorithm (fdlibm), error < 1 ulp, same operations in
/// the same order as the WGSL. [`f32::ln`] (the platform libm) is usually
/// correctly rounded and so differs from this in the last bit for a few
/// percent of inputs; with this twin the CPU can reproduce the GPU's bits
/// (up to a GPU compiler's FMA contraction or approximate division).
pub fn ln_f32(x: f32) -> f32 {
    const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
    const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
    const LG1: f32 = f32::from_bits(0x3f2a_aaaa);
    const LG2: f32 = f32::from_bits(0x3ecc_ce13);
    const LG3: f32 = f32::from_bits(0x3e91_e9ee);
    const LG4: f32 = f32::from_bits(0x3e78_9e26);
    let mut x = x;
    let mut ix = x.to_bits() as i32;
    let mut k = 0i32;
    if ix < 0x0080_0000 {
        if ix & 0x7FFF_FFFF == 0 {
            return f32::NEG_INFINITY;
        }
        if ix < 0 {
            return f32::NAN;
        }
        k = -25;
        x *= 33_554_432.0;
        ix = x.to_bits() as i32;
    }
    if ix >= 0x7F80_0000 {
        return x + x;
    }
    k += (ix >> 23) - 127;
    ix &= 0x007F_FFFF;
    let mut i = (ix + 0x4A_FB20) & 0x80_0000;
    x = f32::from_bits((ix | (i ^ 0x3F80_0000)) as u32);
    k += i >> 23;
    let f = x - 1.0;
    let dk = k as f32;
    if (0x007F_FFFF & (0x8000 + ix)) < 0xC000 {
        if f == 0.0 {
            if k == 0 {
                return 0.0;
            }
            return dk * LN2_HI + dk * LN2_LO;
        }
        let r = f * f * (0.5 - (1.0 / 3.0) * f);
        if k == 0 {
            return f - r;
        }
        return dk * LN2_HI - ((r - dk * LN2_LO) - f);
    }
    let s = f / (2.0 + f);
    let z = s * s;
    i = ix - 0x30_A3D0;
    let w = z * z;
    let j = 0x35_C288 - ix;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    i |= j;
    let r = t2 + t1;
    if i > 0 {
        let hfsq = 0.5 * f * f;
        if k == 0 {
            return f - (hfsq - s * (hfsq + r));
        }
        return dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f);
    }
    if k == 0 {
        return f - s * (f - r);
    }
    dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_key_orders_floats() {
        let xs = [
            f32::NEG_INFINITY,
            -3.0e38,
            -1.0,
            -f32::MIN_POSITIVE,
            -1.0e-45,
            -0.0,
            0.0,
            1.0e-45,
            f32::MIN_POSITIVE,
            1.0,
            3.0e38,
            f32::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(
                f32_to_sortable_key(w[0]) < f32_to_sortable_key(w[1]),
                "{} vs {}",
                w[0],
                w[1]
            );
        }
        for &x in &xs {
            assert_eq!(
                sortable_key_to_f32(f32_to_sortable_key(x)).to_bits(),
                x.to_bits()
            );
        }
        assert_eq!(f32_to_sortable_key(0.0), 0x8000_0000);
        assert_eq!(f32_to_sortable_key(-0.0), 0x7FFF_FFFF);
    }

    #[test]
    fn ln_twin_is_within_one_ulp() {
        let mut bits = 1u32;
        while bits < 0x7F80_0000 {
            let x = f32::from_bits(bits);
            let exact = (x as f64).ln();
            let got = ln_f32(x) as f64;
            let e32 = exact as f32;
            let ulp = (f32::from_bits(e32.abs().to_bits() + 1) - e32.abs()) as f64;
            assert!((got - exact).abs() < ulp, "ln({x:e}): {got:e} vs {exact:e}");
            bits += 997;
        }
        assert_eq!(ln_f32(1.0), 0.0);
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(-0.0), f32::NEG_INFINITY);
        assert!(ln_f32(-1.0).is_nan());
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
    }

    #[test]
    fn shader_validates_with_naga() {
        crate::gpu::validate_wgsl(PHILOX_TEST_WGSL).unwrap();
    }
}
