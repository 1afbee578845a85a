// bindings.wgsl: the binding layout and row-access helpers shared by every
// pass of the sampling pipeline (src/gpu/sampler/). Prepended after
// common.wgsl; holds declarations and accessors only, no entry points.
//
// Eight storage buffers (WebGPU's default per-stage limit) and one uniform
// with a dynamic offset that carries the pass index:
//   logits  the caller's [B, V] logits, read as packed u32 (f32, f16, bf16)
//   zbuf    processed logits (f32 bits; -inf = masked) for rows that have
//           masks, bias or penalties; untouched rows are read from logits
//   params  one RowParams per row (uploaded when params change)
//   lists   the rows' sparse lists and bitmasks (bias, banned, EOS, prompt)
//   state   per-row decode state: n, step, and the seen-token list + counts
//   scratch per-row search state, then per-(row, chunk) partial reductions
//   hist    per-row radix histograms (count, mass lo, mass hi), atomics
//   outbuf  tokens [B], then logprob bits [B], then statuses [B]

struct Dims {
    batch: u32,
    vocab: u32,
    chunks: u32,      // workgroups per row for the dense passes
    dtype: u32,       // 0 f32, 1 f16, 2 bf16
    pass_id: u32,     // radix pass: 0-3 top-k digits, 4-7 top-p digits
    cap: u32,         // seen-list capacity per row
    logits_off: u32,  // element offset of row 0 inside the logits binding
    max_batch: u32,
}

struct RowParams {
    temperature: f32,
    top_k: u32,
    top_p: f32,
    ln_min_p: f32,
    rep: f32,
    presence: f32,
    freq: f32,
    flags: u32,
    min_new: u32,
    seed_lo: u32,
    seed_hi: u32,
    bias_off: u32,
    bias_len: u32,
    banned_off: u32,
    banned_len: u32,
    eos_off: u32,
    eos_len: u32,
    prompt_off: u32,
    prompt_len: u32,
    prompt_mask_off: u32,
    allowed_off: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

const FLAG_GREEDY: u32 = 1u;
const FLAG_MODIFIED: u32 = 2u;
const FLAG_MIN_P: u32 = 4u;
const FLAG_TOP_K: u32 = 8u;
const FLAG_TOP_P: u32 = 16u;
const FLAG_ALLOWED: u32 = 32u;
const FLAG_PROMPT_MASK: u32 = 64u;
const FLAG_SCALED: u32 = 128u;
const FILTERS: u32 = 28u; // min-p | top-k | top-p

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> logits: array<u32>;
@group(0) @binding(2) var<storage, read_write> zbuf: array<u32>;
@group(0) @binding(3) var<storage, read> params: array<RowParams>;
@group(0) @binding(4) var<storage, read> lists: array<u32>;
@group(0) @binding(5) var<storage, read_write> state: array<u32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<u32>;
@group(0) @binding(7) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read_write> outbuf: array<u32>;

const WG: u32 = 256u;
const ITEMS: u32 = 16u;
const CHUNK: u32 = 4096u; // WG * ITEMS elements per workgroup per row

// Smallest finite f32: the floor of every threshold (-inf never survives).
const FLOOR_BITS: u32 = 0xFF7FFFFFu;

// ---- per-row search state in `scratch` (ROW_WORDS words per row)
const ROW_WORDS: u32 = 32u;
const RS_DONE: u32 = 0u;       // 1 once the row's output is written
const RS_RMAX: u32 = 1u;       // raw max (f32 bits)
const RS_RSUM: u32 = 2u;       // raw sum of exp(x - rmax) (f32 bits)
const RS_ZMAX: u32 = 3u;       // max of z / T (f32 bits)
const RS_THETA: u32 = 4u;      // survivors: z / T >= theta (f32 bits)
const RS_K_ACTIVE: u32 = 5u;
const RS_K_ABOVE: u32 = 6u;    // tokens strictly above the current prefix
const RS_K_PREFIX: u32 = 7u;
const RS_P_ACTIVE: u32 = 8u;
const RS_P_ABOVE_LO: u32 = 9u;
const RS_P_ABOVE_HI: u32 = 10u;
const RS_P_PREFIX: u32 = 11u;
const RS_P_TARGET_LO: u32 = 12u;
const RS_P_TARGET_HI: u32 = 13u;

fn rs(r: u32, field: u32) -> u32 {
    return r * ROW_WORDS + field;
}

// ---- per-(row, chunk) partials, PART_WORDS words each, after the rows
const PART_WORDS: u32 = 8u;
fn part(r: u32, c: u32, field: u32) -> u32 {
    return dims.max_batch * ROW_WORDS + (r * dims.chunks + c) * PART_WORDS + field;
}

// ---- per-row decode state
// header [max_batch * 4]: n, step_lo, step_hi, seen_len; then seen tokens
// [max_batch * cap], then seen counts [max_batch * cap].
fn st_n(r: u32) -> u32 { return r * 4u; }
fn st_step_lo(r: u32) -> u32 { return r * 4u + 1u; }
fn st_step_hi(r: u32) -> u32 { return r * 4u + 2u; }
fn st_seen_len(r: u32) -> u32 { return r * 4u + 3u; }
fn st_seen_tok(r: u32, k: u32) -> u32 { return dims.max_batch * 4u + r * dims.cap + k; }
fn st_seen_cnt(r: u32, k: u32) -> u32 {
    return dims.max_batch * 4u + dims.max_batch * dims.cap + r * dims.cap + k;
}

// f16 bits -> f32 bits, exact (subnormals included), without relying on
// unpack2x16float's handling of subnormals.
fn f16_bits_to_f32_bits(h: u32) -> u32 {
    let s = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1Fu;
    let m = h & 0x3FFu;
    if (e == 0x1Fu) {
        return s | 0x7F800000u | (m << 13u);
    }
    if (e == 0u) {
        if (m == 0u) {
            return s;
        }
        let p = firstLeadingBit(m); // value = m * 2^-24 = 1.f * 2^(p - 24)
        return s | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7FFFFFu);
    }
    return s | ((e + 112u) << 23u) | (m << 13u);
}

// Bits of the raw input logit (row r, token i), widened to f32.
fn raw_bits(r: u32, i: u32) -> u32 {
    let e = dims.logits_off + r * dims.vocab + i;
    if (dims.dtype == 0u) {
        return logits[e];
    }
    let w = logits[e >> 1u];
    let h = (w >> ((e & 1u) * 16u)) & 0xFFFFu;
    if (dims.dtype == 1u) {
        return f16_bits_to_f32_bits(h);
    }
    return h << 16u;
}

// Bits of the processed logit z (steps 2-4) of row r, token i.
fn z_bits(r: u32, i: u32, modified: bool) -> u32 {
    if (modified) {
        return zbuf[r * dims.vocab + i];
    }
    return raw_bits(r, i);
}

// The order-preserving key of a logit with -0 mapped to +0: equal logits
// get equal keys, so ties (and the lowest-index rule) treat -0 == +0.
fn okey(x: f32) -> u32 {
    if (bitcast<u32>(x) == 0x80000000u) {
        return 0x80000000u;
    }
    return f32_to_sortable_key(x);
}

// 64-bit add of (lo, hi) pairs.
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

// a >= b for (lo, hi) pairs.
fn ge64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y > b.y || (a.y == b.y && a.x >= b.x);
}

// The Gumbel-max key of a survivor with scaled logit zt as an ordered u32
// (float compare free): the sortable key of zt + g.
fn gumbel_key(zt: f32, r: u32, i: u32, p: RowParams) -> u32 {
    let w = philox_word(philox_key(p.seed_lo, p.seed_hi), i, state[st_step_lo(r)], state[st_step_hi(r)]);
    return okey(zt + gumbel_from_uniform(uniform_from_word(w)));
}

// z / T for a sampled row (T = 1 rows skip the division, like the CPU).
fn scale(z: f32, p: RowParams) -> f32 {
    if ((p.flags & FLAG_SCALED) != 0u) {
        return z / p.temperature;
    }
    return z;
}

// ---- finishing a row: output and state update (SPEC steps 11-12), shared
// by merge.wgsl and finalize.wgsl. Called by every invocation of a
// one-workgroup-per-row pass, in uniform control flow: `tok` and `status`
// must be workgroup-uniform (taken from workgroupUniformLoad).
var<workgroup> wg_found: atomic<u32>;

fn finish_row(r: u32, lid: u32, tok: u32, status: u32) {
    if (lid == 0u) {
        atomicStore(&wg_found, 0xFFFFFFFFu);
    }
    workgroupBarrier();
    if (status == 0u) {
        let len = state[st_seen_len(r)];
        for (var k = lid; k < len; k += WG) {
            if (state[st_seen_tok(r, k)] == tok) {
                atomicMin(&wg_found, k);
            }
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        let b = dims.batch;
        scratch[rs(r, RS_DONE)] = 1u;
        outbuf[b * 2u + r] = status;
        if (status != 0u) {
            outbuf[r] = 0xFFFFFFFFu;
            outbuf[b + r] = 0x7FC00000u;
        } else {
            outbuf[r] = tok;
            let rmax = bitcast<f32>(scratch[rs(r, RS_RMAX)]);
            let rsum = bitcast<f32>(scratch[rs(r, RS_RSUM)]);
            let x = bitcast<f32>(raw_bits(r, tok));
            outbuf[b + r] = bitcast<u32>((x - rmax) - ln_f32(rsum));
            // State update: c_tok += 1, n += 1, s += 1.
            state[st_n(r)] += 1u;
            let lo = state[st_step_lo(r)] + 1u;
            state[st_step_lo(r)] = lo;
            if (lo == 0u) {
                state[st_step_hi(r)] += 1u;
            }
            let f = atomicLoad(&wg_found);
            if (f != 0xFFFFFFFFu) {
                state[st_seen_cnt(r, f)] += 1u;
            } else {
                let len = state[st_seen_len(r)];
                if (len < dims.cap) {
                    state[st_seen_tok(r, len)] = tok;
                    state[st_seen_cnt(r, len)] = 1u;
                    state[st_seen_len(r)] = len + 1u;
                }
            }
        }
    }
}

// Survivor test on ordered keys (no float compare on possibly infinite
// values): z / T >= theta.
fn survives(zt: f32, theta_key: u32) -> bool {
    return okey(zt) >= theta_key;
}

// ---- partial reductions of reduce.wgsl, merged again in merge.wgsl
struct Acc {
    bad: u32,
    rhas: u32,
    rmax: f32,
    rsum: f32,
    zkey: u32, // sortable key of max z, 0 = none
    zarg: u32,
    gkey: u32, // Gumbel key, 0 = none
    garg: u32,
}

fn merge_acc(a: Acc, b: Acc) -> Acc {
    var o = a;
    o.bad = a.bad | b.bad;
    if (b.rhas != 0u) {
        if (a.rhas == 0u) {
            o.rmax = b.rmax;
            o.rsum = b.rsum;
        } else if (b.rmax > a.rmax) {
            o.rmax = b.rmax;
            o.rsum = a.rsum * exp(a.rmax - b.rmax) + b.rsum;
        } else {
            o.rsum = a.rsum + b.rsum * exp(b.rmax - a.rmax);
        }
        o.rhas = 1u;
    }
    if (b.zkey > a.zkey || (b.zkey == a.zkey && b.zarg < a.zarg)) {
        o.zkey = b.zkey;
        o.zarg = b.zarg;
    }
    if (b.gkey > a.gkey || (b.gkey == a.gkey && b.garg < a.garg)) {
        o.gkey = b.gkey;
        o.garg = b.garg;
    }
    return o;
}


// ---- (key, index) argmax across a workgroup, shared by gumbel.wgsl and
// finalize.wgsl: the largest key, the lowest index on ties; index
// 0xFFFFFFFF means "none". Every invocation calls it in uniform control
// flow; afterwards red_key[0] / red_arg[0] hold the result.
var<workgroup> red_key: array<u32, 256>;
var<workgroup> red_arg: array<u32, 256>;

fn reduce_key_arg(lid: u32, key: u32, arg: u32) {
    red_key[lid] = key;
    red_arg[lid] = arg;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let k2 = red_key[lid + s];
            let a2 = red_arg[lid + s];
            if (a2 != 0xFFFFFFFFu && (red_arg[lid] == 0xFFFFFFFFu || k2 > red_key[lid] || (k2 == red_key[lid] && a2 < red_arg[lid]))) {
                red_key[lid] = k2;
                red_arg[lid] = a2;
            }
        }
        workgroupBarrier();
    }
}
