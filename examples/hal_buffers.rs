//! Sampling logits from a buffer that another API allocated: a `VkBuffer`
//! (made with `ash`), an `MTLBuffer` or an `ID3D12Resource`, created on
//! wgpu's own device (`Device::as_hal`) and wrapped as a `wgpu::Buffer` with
//! `Device::create_buffer_from_hal`, then read by the sampler through a
//! `LogitsView` like any other buffer (docs/engines.md, "Buffers another API
//! allocated").
//!
//! `cargo run --example hal_buffers`
//!
//! It runs the path of the adapter's backend (Vulkan on Linux and Windows,
//! Metal on Apple, DX12 on Windows), prints the sampled tokens and checks
//! them against the CPU backend. The three paths compile on their targets
//! (scripts/check_targets.sh); tests/vulkan_hal.rs tests the Vulkan one.

use wgsample::gpu::{DType, GpuContext, GpuSampler, LogitsView, SamplerConfig, open_device};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams};

const BATCH: usize = 2;
const VOCAB: usize = 1000;
/// Byte offset of row 0 inside the buffer: any multiple of 4.
const OFFSET: usize = 4 * 37;

/// The usage the wrapped buffer is declared with: STORAGE is what the
/// sampler needs; the copies are what an engine usually wants too.
const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

fn descriptor(size: u64) -> wgpu::BufferDescriptor<'static> {
    wgpu::BufferDescriptor {
        label: Some("logits from another API"),
        size,
        usage: USAGE,
        mapped_at_creation: false,
    }
}

/// Vulkan: a host-visible, host-coherent `VkBuffer` made with ash on wgpu's
/// VkDevice, filled through a mapping, handed to wgpu with its memory
/// (`Buffer::from_raw_managed`: wgpu destroys both when it is done).
/// wgpu-hal builds Vulkan everywhere but wasm32 and Apple.
#[cfg(not(any(target_arch = "wasm32", target_vendor = "apple")))]
fn vulkan_buffer(ctx: &GpuContext, data: &[u8]) -> wgpu::Buffer {
    use ash::vk;
    use wgpu::hal::{api::Vulkan, vulkan};

    let size = data.len() as u64;
    // SAFETY: the guard is only read (the device, physical device and
    // instance handles); nothing is destroyed through it.
    let (device, memory_props) = unsafe {
        let hal = ctx.device.as_hal::<Vulkan>().expect("a Vulkan device");
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
    // SAFETY: wgpu's live VkDevice and a valid create info.
    let raw = unsafe { device.create_buffer(&info, None) }.expect("vkCreateBuffer");
    // SAFETY: `raw` was just created on `device`.
    let req = unsafe { device.get_buffer_memory_requirements(raw) };
    let wanted = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
    let memory_type = (0..memory_props.memory_type_count)
        .find(|&i| {
            req.memory_type_bits & (1 << i) != 0
                && memory_props.memory_types[i as usize]
                    .property_flags
                    .contains(wanted)
        })
        .expect("a host-visible, host-coherent memory type");
    let alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(memory_type);
    // SAFETY: an allocation of a type the buffer accepts, on its device;
    // the buffer is bound once, at offset 0, to memory of `req.size` bytes.
    let memory = unsafe {
        let memory = device
            .allocate_memory(&alloc, None)
            .expect("vkAllocateMemory");
        device
            .bind_buffer_memory(raw, memory, 0)
            .expect("vkBindBufferMemory");
        memory
    };
    // SAFETY: the memory is host-visible and unmapped, no GPU work uses it
    // yet, the copy stays within the `req.size >= size` mapped bytes, and
    // it is unmapped before wgpu sees it (coherent: no flush needed).
    unsafe {
        let ptr = device
            .map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
            .expect("vkMapMemory");
        std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.cast::<u8>(), data.len());
        device.unmap_memory(memory);
    }
    // SAFETY: from here wgpu owns the buffer and its memory (it frees both
    // once its last use is over, and never maps them: no MAP_* usage); they
    // were made on this device with the Vulkan usage `USAGE` maps to, are
    // `size` bytes, and every byte is written.
    unsafe {
        let hal_buffer = vulkan::Buffer::from_raw_managed(raw, memory, 0, size);
        ctx.device
            .create_buffer_from_hal::<Vulkan>(hal_buffer, &descriptor(size))
    }
}

/// Metal: a shared-storage `MTLBuffer` from wgpu's `MTLDevice`, filled
/// through `contents()`. wgpu keeps a retain on it.
#[cfg(target_vendor = "apple")]
fn metal_buffer(ctx: &GpuContext, data: &[u8]) -> wgpu::Buffer {
    use objc2_metal::{MTLBuffer as _, MTLDevice as _, MTLResourceOptions};
    use wgpu::hal::{api::Metal, metal};

    let size = data.len() as u64;
    // SAFETY: the guard is only used to create a buffer on the device.
    let buffer = unsafe {
        let hal = ctx.device.as_hal::<Metal>().expect("a Metal device");
        hal.raw_device()
            .newBufferWithLength_options(data.len(), MTLResourceOptions::StorageModeShared)
            .expect("newBufferWithLength")
    };
    // SAFETY: a shared-storage buffer of `data.len()` bytes whose contents
    // no GPU work uses yet.
    unsafe {
        std::ptr::copy_nonoverlapping(
            data.as_ptr(),
            buffer.contents().as_ptr().cast::<u8>(),
            data.len(),
        );
    }
    // SAFETY: made on this device, shared storage (readable and writable
    // by the GPU as STORAGE and by copies), `size` bytes, all written.
    unsafe {
        let hal_buffer = metal::Device::buffer_from_raw(buffer, size);
        ctx.device
            .create_buffer_from_hal::<Metal>(hal_buffer, &descriptor(size))
    }
}

/// DX12: a committed buffer resource on wgpu's `ID3D12Device`, in the
/// default heap with unordered access (what STORAGE needs), in the COMMON
/// state. wgpu takes the COM reference. Here it is filled with a wgpu copy;
/// an engine writes it with its own D3D12 work before sampling.
#[cfg(windows)]
fn dx12_buffer(ctx: &GpuContext, data: &[u8]) -> wgpu::Buffer {
    use wgpu::hal::{api::Dx12, dx12};
    use windows::Win32::Graphics::Direct3D12::{
        D3D12_HEAP_FLAG_NONE, D3D12_HEAP_PROPERTIES, D3D12_HEAP_TYPE_DEFAULT, D3D12_RESOURCE_DESC,
        D3D12_RESOURCE_DIMENSION_BUFFER, D3D12_RESOURCE_FLAG_ALLOW_UNORDERED_ACCESS,
        D3D12_RESOURCE_STATE_COMMON, D3D12_TEXTURE_LAYOUT_ROW_MAJOR, ID3D12Resource,
    };
    use windows::Win32::Graphics::Dxgi::Common::{DXGI_FORMAT_UNKNOWN, DXGI_SAMPLE_DESC};

    let size = data.len() as u64;
    let heap = D3D12_HEAP_PROPERTIES {
        Type: D3D12_HEAP_TYPE_DEFAULT,
        ..Default::default()
    };
    let desc = D3D12_RESOURCE_DESC {
        Dimension: D3D12_RESOURCE_DIMENSION_BUFFER,
        Alignment: 0,
        Width: size,
        Height: 1,
        DepthOrArraySize: 1,
        MipLevels: 1,
        Format: DXGI_FORMAT_UNKNOWN,
        SampleDesc: DXGI_SAMPLE_DESC {
            Count: 1,
            Quality: 0,
        },
        Layout: D3D12_TEXTURE_LAYOUT_ROW_MAJOR,
        Flags: D3D12_RESOURCE_FLAG_ALLOW_UNORDERED_ACCESS,
    };
    let mut resource: Option<ID3D12Resource> = None;
    // SAFETY: the guard is only used to create a resource on the device;
    // `heap`, `desc` and `resource` outlive the call.
    unsafe {
        let hal = ctx.device.as_hal::<Dx12>().expect("a DX12 device");
        hal.raw_device()
            .CreateCommittedResource(
                &heap,
                D3D12_HEAP_FLAG_NONE,
                &desc,
                D3D12_RESOURCE_STATE_COMMON,
                None,
                &mut resource,
            )
            .expect("CreateCommittedResource");
    }
    let resource = resource.expect("CreateCommittedResource returned no resource");
    // SAFETY: a buffer of `size` bytes made on this device, with unordered
    // access, in the COMMON state, zero-filled by D3D12 (committed, without
    // CREATE_NOT_ZEROED), so initialised; wgpu holds the only reference.
    let buffer = unsafe {
        let hal_buffer = dx12::Device::buffer_from_raw(resource, size);
        ctx.device
            .create_buffer_from_hal::<Dx12>(hal_buffer, &descriptor(size))
    };
    ctx.queue.write_buffer(&buffer, 0, data);
    buffer
}

/// Deterministic logits (xorshift, roughly uniform in [-4, 4)).
fn logits(n: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

fn main() {
    if let Some(code) = wgsample::gpu::rerun_with_runtime_dir() {
        std::process::exit(code);
    }
    let ctx = match open_device() {
        Ok(c) => c,
        Err(e) => {
            println!("no GPU adapter ({e}): nothing to wrap");
            return;
        }
    };
    println!("device: {}", ctx.describe());

    let x = logits(BATCH * VOCAB);
    // The bytes of the whole buffer: OFFSET zero bytes, then the rows.
    let mut data = vec![0u8; OFFSET];
    data.extend_from_slice(bytemuck::cast_slice(&x));

    let buffer = match ctx.adapter_info.backend {
        #[cfg(not(any(target_arch = "wasm32", target_vendor = "apple")))]
        wgpu::Backend::Vulkan => vulkan_buffer(&ctx, &data),
        #[cfg(target_vendor = "apple")]
        wgpu::Backend::Metal => metal_buffer(&ctx, &data),
        #[cfg(windows)]
        wgpu::Backend::Dx12 => dx12_buffer(&ctx, &data),
        other => {
            println!(
                "the adapter's backend is {}: this example wraps Vulkan, Metal and DX12 buffers only",
                other.to_str()
            );
            return;
        }
    };

    let params = vec![
        SamplingParams::greedy(),
        SamplingParams {
            temperature: 0.8,
            top_k: 50,
            seed: 1,
            ..Default::default()
        },
    ];
    let mut sampler = GpuSampler::new(&ctx, SamplerConfig::new(BATCH as u32, VOCAB as u32))
        .expect("GpuSampler::new");
    for (r, p) in params.iter().enumerate() {
        sampler.set_params(r, p).expect("set_params");
    }
    let view = LogitsView {
        buffer: &buffer,
        offset: OFFSET as u64,
        dtype: DType::F32,
    };
    let gpu = sampler.sample(view, BATCH as u32).expect("sample");
    let mut states = vec![RowState::default(); BATCH];
    let cpu = CpuSampler::new()
        .sample(Logits::F32(&x), VOCAB, &params, &mut states)
        .expect("CPU sample");
    for (r, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
        println!(
            "row {r}: token {} (logprob {:.4}), CPU backend: token {}",
            g.token, g.logprob, c.token
        );
    }
    if gpu.iter().zip(&cpu).all(|(g, c)| g.token == c.token) {
        println!("the tokens match the CPU backend's");
    } else {
        eprintln!("error: the GPU and CPU tokens differ");
        std::process::exit(1);
    }
}
