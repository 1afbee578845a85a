//! A logits buffer that wgsample did not create: allocated with `ash` on
//! wgpu's own Vulkan device (`Device::as_hal`), filled through a host
//! mapping, wrapped with `create_buffer_from_hal`, and sampled through a
//! `LogitsView`. Every row must give the CPU backend's token, status and
//! logprob (f32 and bf16 logits, row 0 at byte 0 and at offsets that are
//! multiples of 4 but not of the device's storage-offset alignment), the
//! states the shaders updated must equal the CPU's, and the `VkBuffer` and
//! its memory must be freed once wgpu is done with them.
//!
//! The default adapter must be a Vulkan one (lavapipe on a machine without a
//! GPU); any other backend is a failure that says so, never a skip.
#![cfg(not(any(target_arch = "wasm32", target_vendor = "apple")))]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ash::vk;
use rand::SeedableRng;
use rand::rngs::StdRng;
use wgpu::hal::{api::Vulkan, vulkan};
use wgsample::gpu::{DType, GpuContext, GpuSampler, LogitsView, SamplerConfig};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams, Status};

use support::gpu_ctx;
use support::logits::normal_logits_with_holes;

/// A buffer wgsample did not create, wrapped as a `wgpu::Buffer`, and the
/// flag its drop callback sets once the `VkBuffer` and its memory are freed.
struct Foreign {
    buffer: wgpu::Buffer,
    freed: Arc<AtomicBool>,
}

/// Creates, through `ash` on `ctx`'s Vulkan device, a host-visible,
/// host-coherent `VkBuffer` of `offset + bytes.len()` bytes (rounded up to
/// 4), writes `bytes` at `offset` (zeros elsewhere), and wraps it with
/// `create_buffer_from_hal`. The caller's side keeps owning the handle and
/// the memory; wgpu runs the drop callback, which frees both, when its last
/// use of the buffer is over.
fn foreign_buffer(ctx: &GpuContext, offset: u64, bytes: &[u8]) -> Foreign {
    let size = (offset + bytes.len() as u64).next_multiple_of(4);
    // SAFETY: the guard is only used to read the device's handles (the
    // `ash::Device`, the physical device, the instance); nothing here
    // destroys them, and the guard is dropped at the end of this block.
    let (raw, memory_props) = unsafe {
        let hal = ctx.device.as_hal::<Vulkan>().unwrap_or_else(|| {
            panic!(
                "the default adapter is {}, not a Vulkan one: this test wraps a \
                 VkBuffer, so it needs Vulkan (unset WGPU_BACKEND, or install \
                 lavapipe: apt-get install mesa-vulkan-drivers libvulkan1)",
                ctx.describe()
            )
        });
        let instance = hal.shared_instance().raw_instance();
        let props = instance.get_physical_device_memory_properties(hal.raw_physical_device());
        (hal.raw_device().clone(), props)
    };

    let info = vk::BufferCreateInfo::default()
        .size(size)
        .usage(
            vk::BufferUsageFlags::STORAGE_BUFFER
                | vk::BufferUsageFlags::TRANSFER_SRC
                | vk::BufferUsageFlags::TRANSFER_DST,
        )
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    // SAFETY: `raw` is wgpu's live VkDevice; `info` is a valid create info
    // with no extension chain.
    let vk_buffer = unsafe { raw.create_buffer(&info, None) }.expect("vkCreateBuffer");
    // SAFETY: `vk_buffer` was just created on `raw`.
    let req = unsafe { raw.get_buffer_memory_requirements(vk_buffer) };
    let wanted = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
    let type_index = (0..memory_props.memory_type_count)
        .find(|&i| {
            req.memory_type_bits & (1 << i) != 0
                && memory_props.memory_types[i as usize]
                    .property_flags
                    .contains(wanted)
        })
        .expect("a host-visible, host-coherent memory type for a storage buffer");
    let alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(type_index);
    // SAFETY: a plain allocation of a memory type the buffer accepts, on the
    // device the buffer lives on.
    let memory = unsafe { raw.allocate_memory(&alloc, None) }.expect("vkAllocateMemory");
    // SAFETY: `memory` is unbound and large enough (`req.size`), offset 0
    // satisfies any alignment, and its type is in `req.memory_type_bits`.
    unsafe { raw.bind_buffer_memory(vk_buffer, memory, 0) }.expect("vkBindBufferMemory");
    // SAFETY: `memory` is host-visible and not mapped yet; the mapping covers
    // the whole allocation (`req.size >= size` bytes), nothing else touches
    // it (no GPU work uses the buffer yet), the copy stays inside it, and it
    // is unmapped before wgpu sees the buffer. Host-coherent memory needs
    // no flush.
    unsafe {
        let ptr = raw
            .map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
            .expect("vkMapMemory")
            .cast::<u8>();
        std::ptr::write_bytes(ptr, 0, size as usize);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.add(offset as usize), bytes.len());
        raw.unmap_memory(memory);
    }

    let freed = Arc::new(AtomicBool::new(false));
    let flag = freed.clone();
    let device = raw.clone();
    let free: wgpu::hal::DropCallback = Box::new(move || {
        // SAFETY: wgpu runs this when it destroys the hal buffer, after its
        // last submission using it has finished (wgpu-core keeps in-flight
        // resources alive), so nothing uses the buffer or its memory any
        // more. `device` (a copy of wgpu's VkDevice handle and function
        // table) is still alive then: the wgpu buffer holds the device.
        unsafe {
            device.destroy_buffer(vk_buffer, None);
            device.free_memory(memory, None);
        }
        flag.store(true, Ordering::SeqCst);
    });
    // SAFETY: `vk_buffer` (with its memory) outlives the returned hal
    // buffer: only `free` destroys them, and it runs when the hal buffer is
    // destroyed. wgpu never maps the buffer (no MAP_* usage).
    let hal_buffer = unsafe { vulkan::Buffer::from_raw_externally_owned(vk_buffer, free) };
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    // SAFETY: the buffer was created on this device's VkDevice, with the
    // Vulkan usage that `desc`'s usage maps to (STORAGE_BUFFER,
    // TRANSFER_SRC, TRANSFER_DST), it is `size` bytes (non-zero), bound to
    // memory, and every byte was written above (initialised).
    let buffer = unsafe {
        ctx.device.create_buffer_from_hal::<Vulkan>(
            hal_buffer,
            &wgpu::BufferDescriptor {
                label: Some("logits allocated with ash"),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            },
        )
    };
    if let Some(e) = pollster::block_on(scope.pop()) {
        panic!("create_buffer_from_hal: {e}");
    }
    Foreign { buffer, freed }
}

/// Row `r`'s parameters: greedy, T = 0.7 with top-k and top-p, min-p, and
/// the three penalties, in turn, each with its own seed.
fn params(b: usize) -> Vec<SamplingParams> {
    (0..b)
        .map(|r| {
            let seed = 0x1000 + r as u64;
            match r % 4 {
                0 => SamplingParams {
                    seed,
                    ..SamplingParams::greedy()
                },
                1 => SamplingParams {
                    temperature: 0.7,
                    top_k: 40,
                    top_p: 0.9,
                    seed,
                    ..Default::default()
                },
                2 => SamplingParams {
                    temperature: 1.0,
                    min_p: 0.05,
                    seed,
                    ..Default::default()
                },
                _ => SamplingParams {
                    temperature: 0.9,
                    repetition_penalty: 1.3,
                    presence_penalty: 0.5,
                    frequency_penalty: 0.2,
                    seed,
                    ..Default::default()
                },
            }
        })
        .collect()
}

/// Row `r`'s state before the step: a prompt, some output (which the
/// penalties see) and a step counter.
fn states(b: usize) -> Vec<RowState> {
    (0..b)
        .map(|r| {
            let r32 = r as u32;
            let mut s = RowState::with_output(&[1, 2, 3 + r32], &[7, 7, 11 + r32]);
            s.step = 5 + r as u64;
            s
        })
        .collect()
}

/// Samples `[b, v]` normal logits (a few `-inf`) as `dtype`, placed at byte
/// `offset` of a buffer allocated with ash, and checks them against the CPU
/// backend row by row; then checks that the buffer is freed once the
/// sampler and the `wgpu::Buffer` are gone.
fn sample_foreign_and_compare(b: usize, v: usize, dtype: DType, offset: u64, seed: u64) {
    let ctx = gpu_ctx();
    let mut rng = StdRng::seed_from_u64(seed);
    let x = normal_logits_with_holes(&mut rng, b * v, 3.0, true);
    let bf: Vec<half::bf16> = x.iter().map(|&f| half::bf16::from_f32(f)).collect();
    let (bytes, logits): (Vec<u8>, Logits<'_>) = match dtype {
        DType::F32 => (bytemuck::cast_slice(&x).to_vec(), Logits::F32(&x)),
        DType::Bf16 => (
            bf.iter().flat_map(|h| h.to_bits().to_le_bytes()).collect(),
            Logits::Bf16(&bf),
        ),
        DType::F16 => unreachable!("not a case here"),
    };
    let params = params(b);
    let mut cpu_states = states(b);

    let foreign = foreign_buffer(ctx, offset, &bytes);
    let mut s = GpuSampler::new(ctx, SamplerConfig::new(b as u32, v as u32)).unwrap();
    for (r, (p, st)) in params.iter().zip(&cpu_states).enumerate() {
        s.set_params(r, p).unwrap();
        s.set_state(r, st).unwrap();
    }
    let view = LogitsView {
        buffer: &foreign.buffer,
        offset,
        dtype,
    };
    let gpu = s.sample(view, b as u32).unwrap();
    let cpu = CpuSampler::new()
        .sample(logits, v, &params, &mut cpu_states)
        .unwrap();

    let what = format!("{dtype:?} [{b}, {v}] at byte {offset}");
    for r in 0..b {
        let (g, c) = (&gpu[r], &cpu[r]);
        assert_eq!(c.status, Status::Ok, "{what} row {r}: cpu {c:?}");
        assert_eq!(
            (g.token, g.status),
            (c.token, c.status),
            "{what} row {r}: gpu {g:?} cpu {c:?}"
        );
        assert!(
            (g.logprob - c.logprob).abs() <= 1e-5 * c.logprob.abs().max(1.0),
            "{what} row {r}: logprob gpu {} cpu {}",
            g.logprob,
            c.logprob
        );
        assert_eq!(s.read_state(r).unwrap(), cpu_states[r], "{what} row {r}");
    }
    // Row 0 is greedy: its token is the first maximum of the values as
    // written, a check on the offset independent of the CPU backend.
    let row0: Vec<f32> = match logits {
        Logits::Bf16(h) => h[..v].iter().map(|x| x.to_f32()).collect(),
        _ => x[..v].to_vec(),
    };
    let argmax = (0..v).fold(0, |m, i| if row0[i] > row0[m] { i } else { m });
    assert_eq!(gpu[0].token as usize, argmax, "{what}");
    eprintln!(
        "{what}: tokens {:?}",
        gpu.iter().map(|o| o.token).collect::<Vec<_>>()
    );

    // The sampler's cached bind group holds the buffer too: only once both
    // are gone (and the device has finished the step) does wgpu destroy it
    // and run the drop callback.
    assert!(!foreign.freed.load(Ordering::SeqCst));
    let freed = foreign.freed.clone();
    drop(s);
    drop(foreign);
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("device poll");
    assert!(
        freed.load(Ordering::SeqCst),
        "{what}: wgpu did not run the drop callback"
    );
}

#[test]
fn f32_logits_in_a_vulkan_buffer_match_the_cpu() {
    sample_foreign_and_compare(4, 5000, DType::F32, 0, 1);
}

#[test]
fn bf16_logits_in_a_vulkan_buffer_match_the_cpu() {
    sample_foreign_and_compare(3, 3000, DType::Bf16, 0, 2);
}

#[test]
fn rows_at_a_nonzero_offset_in_a_vulkan_buffer_match_the_cpu() {
    // Multiples of 4 that are 4 past a multiple of 16 (so of no storage
    // offset alignment above 4, and never of WebGPU's default 256).
    let align = u64::from(
        gpu_ctx()
            .device
            .limits()
            .min_storage_buffer_offset_alignment,
    );
    for (dtype, offset) in [(DType::F32, 4 * 37), (DType::Bf16, 4 * 257)] {
        assert!(
            align <= 4 || offset % align != 0,
            "{dtype:?} offset {offset}"
        );
        let (b, v) = if dtype == DType::F32 {
            (4, 5000)
        } else {
            (3, 3000)
        };
        sample_foreign_and_compare(b, v, dtype, offset, 3 + offset);
    }
}
