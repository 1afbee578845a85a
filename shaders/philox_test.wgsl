// philox_test.wgsl: runs common.wgsl's helpers elementwise so the tests can
// compare them with their CPU twins (src/rng.rs). common.wgsl is prepended.
//
// All entry points share one layout: raw u32 input, raw u32 output, and a
// uniform block; floats travel as bits so nothing canonicalises them.

struct HelperParams {
    // Number of items.
    n: u32,
    // Invocations along x in the dispatch grid (item = x + y * stride_y).
    stride_y: u32,
    seed_lo: u32,
    seed_hi: u32,
    step_lo: u32,
    step_hi: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> input: array<u32>;
@group(0) @binding(1) var<storage, read_write> output: array<u32>;
@group(0) @binding(2) var<uniform> params: HelperParams;

fn item_index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * params.stride_y;
}

// Item i: input[6i..6i+6] = counter (4 words), key (2 words);
// output[4i..4i+4] = the Philox4x32-10 block.
@compute @workgroup_size(64)
fn philox_words(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = item_index(gid);
    if (i >= params.n) {
        return;
    }
    let b = 6u * i;
    let counter = vec4<u32>(input[b], input[b + 1u], input[b + 2u], input[b + 3u]);
    let key = vec2<u32>(input[b + 4u], input[b + 5u]);
    let r = philox4x32_10(counter, key);
    output[4u * i] = r.x;
    output[4u * i + 1u] = r.y;
    output[4u * i + 2u] = r.z;
    output[4u * i + 3u] = r.w;
}

// Item i: output[i] = bits of g_i for token i under (seed, step).
@compute @workgroup_size(64)
fn gumbel_values(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = item_index(gid);
    if (i >= params.n) {
        return;
    }
    let key = philox_key(params.seed_lo, params.seed_hi);
    output[i] = bitcast<u32>(gumbel_for(key, i, params.step_lo, params.step_hi));
}

// Item i: output[2i] = sortable key of the f32 with bits input[i],
// output[2i + 1] = bits of the key mapped back.
@compute @workgroup_size(64)
fn sortable_keys(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = item_index(gid);
    if (i >= params.n) {
        return;
    }
    let key = f32_to_sortable_key(bitcast<f32>(input[i]));
    output[2u * i] = key;
    output[2u * i + 1u] = bitcast<u32>(sortable_key_to_f32(key));
}

// Item i: output[i] = bits of ln_f32 of the f32 with bits input[i].
@compute @workgroup_size(64)
fn ln_values(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = item_index(gid);
    if (i >= params.n) {
        return;
    }
    output[i] = bitcast<u32>(ln_f32(bitcast<f32>(input[i])));
}
