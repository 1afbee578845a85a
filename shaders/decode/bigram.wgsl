// bigram.wgsl: the bigram test model's step, a gather:
//   logits[r, :] = table[tokens[r], :]
// where `tokens` is the sampler's output buffer (its first B words are the
// ids sampled at the previous step) or, at step 0, the start tokens. So the
// tokens go from the sampler to the model without leaving the GPU.
//
// Grid: (ceil(V / CHUNK), B) workgroups of 256 invocations; each
// invocation copies every 256th element of its chunk (coalesced). A token
// id >= V (NO_TOKEN, a row that got no token) gives a row of zeros: that
// row has stopped, its logits only have to be harmless. No workgroup
// memory, no barriers; inside WebGPU's default limits.

struct Dims {
    vocab: u32,
    batch: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;

const WG: u32 = 256u;
// CHUNK (logits per workgroup) is generated from src/decode/bigram.rs.

@compute @workgroup_size(256)
fn bigram_gather(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wg.y;
    if (r >= dims.batch) {
        return;
    }
    let v = dims.vocab;
    let start = wg.x * CHUNK;
    let end = min(start + CHUNK, v);
    let out_base = r * v;
    let prev = tokens[r];
    if (prev >= v) {
        for (var i = start + lid; i < end; i += WG) {
            logits[out_base + i] = 0.0;
        }
        return;
    }
    let in_base = prev * v;
    for (var i = start + lid; i < end; i += WG) {
        logits[out_base + i] = table[in_base + i];
    }
}
