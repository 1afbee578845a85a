// argmax.wgsl: greedy decoding (SPEC.md step 5 with no processing), one
// 256-invocation workgroup per row. common.wgsl is prepended.
//
// Each invocation walks its strided slice of the row (coalesced reads),
// keeping an online (max, index, sum of exp(x - max)) triple and an
// "invalid" flag; a tree reduction in workgroup memory then merges the 256
// triples. The row's max is the argmax value, so its log-softmax is simply
// -ln(sum of exp(x - max)), no second pass needed.
//
// Workgroup memory: 4 arrays x 256 x 4 bytes = 4 KiB (the WebGPU default
// allows 16 KiB). Every barrier sits in uniform control flow: the early
// return depends only on the workgroup id and uniforms.

struct ArgmaxParams {
    batch: u32,
    vocab: u32,
    // Element offset of row 0 inside the `logits` binding (the binding starts
    // at an aligned byte offset at or below the caller's offset).
    base: u32,
    // Workgroups along x in the dispatch grid (rows = x + y * grid_x).
    grid_x: u32,
}

struct RowOut {
    token: u32,
    logprob: f32,
    status: u32,
}

const WG: u32 = 256u;
const NONE: u32 = 0xFFFFFFFFu;
const STATUS_OK: u32 = 0u;
const STATUS_INVALID: u32 = 1u;
const STATUS_NO_CANDIDATES: u32 = 2u;

// Logits are read as raw bits: classification is done on the bits, and the
// value is bitcast back to f32 only once it is known to be finite.
@group(0) @binding(0) var<storage, read> logits: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<RowOut>;
@group(0) @binding(2) var<uniform> params: ArgmaxParams;

var<workgroup> wg_max: array<f32, WG>;
var<workgroup> wg_sum: array<f32, WG>;
var<workgroup> wg_idx: array<u32, WG>;
var<workgroup> wg_bad: array<u32, WG>;

// Merge (m_b, s_b, i_b) into (m_a, s_a, i_a); i == NONE means "no finite
// value seen". Ties on the max go to the lower index.
struct Acc {
    m: f32,
    s: f32,
    i: u32,
}

fn merge(a: Acc, b: Acc) -> Acc {
    if (b.i == NONE) {
        return a;
    }
    if (a.i == NONE) {
        return b;
    }
    if (b.m > a.m || (b.m == a.m && b.i < a.i)) {
        return Acc(b.m, b.s + a.s * exp(a.m - b.m), b.i);
    }
    return Acc(a.m, a.s + b.s * exp(b.m - a.m), a.i);
}

@compute @workgroup_size(256)
fn argmax_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wid.x + wid.y * params.grid_x;
    if (row >= params.batch) {
        return; // uniform: the whole workgroup leaves together
    }
    let vocab = params.vocab;
    let start = params.base + row * vocab;

    var acc = Acc(0.0, 0.0, NONE);
    var bad = 0u;
    for (var j = lid; j < vocab; j += WG) {
        let bits = logits[start + j];
        if (bits_is_invalid_logit(bits)) {
            bad = 1u;
        } else if (!bits_is_neg_inf(bits)) {
            let x = bitcast<f32>(bits);
            if (acc.i == NONE) {
                acc = Acc(x, 1.0, j);
            } else if (x > acc.m) {
                // Strictly greater: within one invocation j increases, so
                // the lowest index keeps ties.
                acc = Acc(x, acc.s * exp(acc.m - x) + 1.0, j);
            } else {
                acc.s += exp(x - acc.m);
            }
        }
    }
    wg_max[lid] = acc.m;
    wg_sum[lid] = acc.s;
    wg_idx[lid] = acc.i;
    wg_bad[lid] = bad;
    workgroupBarrier();

    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            let a = Acc(wg_max[lid], wg_sum[lid], wg_idx[lid]);
            let b = Acc(wg_max[lid + stride], wg_sum[lid + stride], wg_idx[lid + stride]);
            let m = merge(a, b);
            wg_max[lid] = m.m;
            wg_sum[lid] = m.s;
            wg_idx[lid] = m.i;
            wg_bad[lid] = wg_bad[lid] | wg_bad[lid + stride];
        }
        workgroupBarrier();
    }

    if (lid == 0u) {
        var r: RowOut;
        if (wg_bad[0] != 0u) {
            r = RowOut(NONE, f32_nan(), STATUS_INVALID);
        } else if (wg_idx[0] == NONE) {
            r = RowOut(NONE, f32_nan(), STATUS_NO_CANDIDATES);
        } else {
            // log_softmax at the argmax = x_max - (x_max + ln(sum)).
            r = RowOut(wg_idx[0], -ln_f32(wg_sum[0]), STATUS_OK);
        }
        out[row] = r;
    }
}
