// bindings.wgsl: the binding layout and row-access helpers shared by the
// three passes of the sampling pipeline (src/gpu/sampler/): overlay.wgsl,
// scan.wgsl, finish.wgsl. Prepended after common.wgsl; holds declarations
// and accessors only, no entry points.
//
// Eight storage buffers (WebGPU's default per-stage limit) and a uniform:
//   logits  the caller's [B, V] logits, read as packed u32 (f32, f16, bf16)
//   ovtab   per-row hash tables of the tokens that masks, bias and
//           penalties touch (SPEC steps 2-4), with their processed value:
//           the sparse overlay the dense pass looks tokens up in
//   params  one RowParams per row (uploaded when params change)
//   lists   the rows' sparse lists and bitmasks (bias, banned, EOS, prompt)
//   state   per-row decode state: n, step, and the seen-token list + counts
//   scratch per-row words, then per-(row, chunk) partial reductions
//   cands   per-(row, chunk) candidates: the chunk's CAND largest keys
//   outbuf  tokens [B], logprob bits [B], statuses [B], ranks [B], then
//           TOPN (token, logprob bits) pairs a row

struct Dims {
    batch: u32,
    vocab: u32,
    chunks: u32,      // workgroups per row of the dense pass
    dtype: u32,       // 0 f32, 1 f16, 2 bf16
    slots: u32,       // token-count lists in the state buffer
    cap: u32,         // seen-list capacity per row
    logits_off: u32,  // element offset of row 0 inside the logits binding
    max_batch: u32,
    rank_off: u32,    // word offset of the rank counters in ovtab
    positions: u32,   // verify: k + 1 positions per row (1 when sampling)
    drafts_off: u32,  // verify: word offset of the [B, k] drafts in lists
    vmode: u32,       // 0 sampling, 1 verify, 2 verify with draft probabilities
    q_off: u32,       // verify with draft probabilities: element offset of q
    pad0: u32,
    pad1: u32,
    pad2: u32,
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
    top_n: u32,    // top logprobs asked for (0 = none)
    allowed_off: u32,
    ov_off: u32,   // word offset of the row's overlay table in ovtab
    ov_cap: u32,   // slots of the table (a power of two), 0 = no table
    seen_slot: u32, // the row's token-count list in `state`, NONE = none
}

// The constants Rust and WGSL share (FLAG_*, FILTERS, CHUNK, CAND,
// ROW_WORDS, PART_WORDS, OV_FIELDS, the ST_* status codes and the RS_PATH
// values) are not written here: src/gpu/sampler/passes.rs generates them
// from the Rust constants and prepends them to every pass.

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> logits: array<u32>;
@group(0) @binding(2) var<storage, read_write> ovtab: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> params: array<RowParams>;
@group(0) @binding(4) var<storage, read> lists: array<u32>;
@group(0) @binding(5) var<storage, read_write> state: array<u32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<u32>;
@group(0) @binding(7) var<storage, read_write> cands: array<u32>;
@group(0) @binding(8) var<storage, read_write> outbuf: array<u32>;

const WG: u32 = 256u;
const ITEMS: u32 = CHUNK / WG; // logits per invocation of the dense pass
const NONE: u32 = 0xFFFFFFFFu;

// Smallest finite f32: the floor of every threshold (-inf never survives).
const FLOOR_BITS: u32 = 0xFF7FFFFFu;

// ---- per-row words in `scratch` (ROW_WORDS of them): RS_PATH holds
// PATH_NONE, PATH_CANDIDATES or PATH_FULL_ROW; the others are written by
// finish.wgsl for verification (the row's filtered distribution p:
// p_i = exp(z_i / T - RS_ZTMAX) / RS_NORM for tokens whose key is >=
// RS_THETA, or one-hot at RS_ONEHOT; RS_PD = p of the row's draft token;
// RS_RMAX, RS_RSUM the raw softmax statistics for logprobs).
const RS_PATH: u32 = 0u;
const RS_PD: u32 = 1u;
const RS_THETA: u32 = 2u;
const RS_NORM: u32 = 3u;
const RS_ZTMAX: u32 = 4u;
const RS_ONEHOT: u32 = 5u;
const RS_RMAX: u32 = 6u;
const RS_RSUM: u32 = 7u;

fn rs(r: u32, field: u32) -> u32 {
    return r * ROW_WORDS + field;
}

// ---- per-(row, chunk) partials of scan.wgsl, PART_WORDS words each
const P_FLAGS: u32 = 0u;  // 1 invalid input, 2 some z / T is +inf
const P_RMAX: u32 = 1u;   // raw max (f32 bits, -inf = none)
const P_RSUM: u32 = 2u;   // raw sum of exp(x - rmax)
const P_ZKEY: u32 = 3u;   // key of max z (unscaled), 0 = none
const P_ZARG: u32 = 4u;
const P_GKEY: u32 = 5u;   // Gumbel-max key of plain rows, 0 = none
const P_GARG: u32 = 6u;
const P_TMAX: u32 = 7u;   // max of finite z / T (f32 bits, -inf = none)
const P_TSUM: u32 = 8u;   // sum of exp(z / T - tmax)
const P_EXCL: u32 = 9u;   // largest key of z / T not kept as a candidate, 0 = none
// recover.wgsl (verification with draft probabilities, after finish has
// read the partials above) reuses P_GKEY / P_GARG for its Gumbel-max of
// ln(p - q) + g, and adds the chunk's sum of q and a bad-q flag.
const P_QSUM: u32 = 10u;
const P_QBAD: u32 = 11u;

fn part(r: u32, c: u32, field: u32) -> u32 {
    return dims.max_batch * ROW_WORDS + (r * dims.chunks + c) * PART_WORDS + field;
}

// Word index of candidate j (0 .. chunks * CAND) of row r: (key, index).
fn cand_at(r: u32, j: u32) -> u32 {
    return (r * dims.chunks * CAND + j) * 2u;
}

// ---- verification (dims.positions = k + 1 > 1): virtual row vr is
// position j = vr % P of row b = vr / P, at logits row vr of the
// [B, k + 1, V] target. It runs with row b's params, its own overlay
// table, and row b's state advanced by j (the drafts before it).
// When sampling, P = 1 and these are the identity.
fn prow(vr: u32) -> u32 {
    return vr / dims.positions;
}

fn vpos(vr: u32) -> u32 {
    return vr % dims.positions;
}

fn row_params(vr: u32) -> RowParams {
    var p = params[prow(vr)];
    if (dims.positions > 1u) {
        p.ov_off = p.ov_off * dims.positions + vpos(vr) * OV_FIELDS * p.ov_cap;
    }
    return p;
}

// (lo, hi) of the step of virtual row vr.
fn row_step(vr: u32) -> vec2<u32> {
    let b = prow(vr);
    let lo = state[st_step_lo(b)];
    let nlo = lo + vpos(vr);
    return vec2<u32>(nlo, state[st_step_hi(b)] + select(0u, 1u, nlo < lo));
}

// The generated length n of virtual row vr.
fn row_n(vr: u32) -> u32 {
    return state[st_n(prow(vr))] + vpos(vr);
}

// Draft token i (0-based) of row b as stored: drafts recorded from a
// device buffer (record_verify_device) are not checked on the host, so
// this may be >= V; accept.wgsl turns such a row into ST_BAD_DRAFT.
fn draft_raw(b: u32, i: u32) -> u32 {
    return lists[dims.drafts_off + b * (dims.positions - 1u) + i];
}

// Draft token i of row b clamped into 0..V, so that the passes before
// accept.wgsl index their own row's tables and q in bounds for a row whose
// result accept.wgsl then discards.
fn draft_token(b: u32, i: u32) -> u32 {
    return min(draft_raw(b, i), dims.vocab - 1u);
}

// The token the Gumbel-max skips: verification without draft
// probabilities samples a rejected position's recovered token from p
// without the draft token (p - q is p off it). NONE otherwise.
fn excluded(vr: u32) -> u32 {
    if (dims.vmode == 1u && vpos(vr) + 1u < dims.positions) {
        return draft_token(prow(vr), vpos(vr));
    }
    return NONE;
}

// log_softmax of the raw logit of token t (row r) from the row's raw
// max and sum of exp, as f32 bits.
fn logprob_bits(r: u32, t: u32, rmax: f32, rsum: f32) -> u32 {
    let x = bitcast<f32>(raw_bits(r, t));
    return bitcast<u32>((x - rmax) - ln_f32(rsum));
}

// Verification with draft probabilities: merges, in a fixed tree, each
// invocation's best (key, index) of ln(p - q) + g, its sum of q and its
// bad-q flag; afterwards wa[0], wb[0] hold the best, wa[256] the sum (f32
// bits) and wb[256] the flag. Every invocation calls it, in uniform
// control flow (recover.wgsl per chunk, accept.wgsl per position).
fn reduce_recovered(lid: u32, key: u32, arg: u32, qsum: f32, bad: u32) {
    wa[lid] = key;
    wb[lid] = arg;
    wa[256u + lid] = bitcast<u32>(qsum);
    wb[256u + lid] = bad;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            if (ka_before(wa[lid + s], wb[lid + s], wa[lid], wb[lid])) {
                wa[lid] = wa[lid + s];
                wb[lid] = wb[lid + s];
            }
            wa[256u + lid] = bitcast<u32>(bitcast<f32>(wa[256u + lid]) + bitcast<f32>(wa[256u + lid + s]));
            wb[256u + lid] = wb[256u + lid] | wb[256u + lid + s];
        }
        workgroupBarrier();
    }
}

// Word index of top-logprob candidate j (0 .. chunks * TOPN) of row r,
// after every row's CAND candidates: (key of the raw logit, index).
fn tl_at(r: u32, j: u32) -> u32 {
    return (dims.max_batch * dims.chunks * CAND + r * dims.chunks * TOPN + j) * 2u;
}

// Output words (see the header): the rank of row r, and pair j of its
// top logprobs.
fn out_rank(r: u32) -> u32 { return dims.batch * 3u + r; }
fn out_pair(r: u32, j: u32) -> u32 { return dims.batch * 4u + (r * TOPN + j) * 2u; }

// ---- per-row decode state
// header [max_batch * 4]: n, step_lo, step_hi, seen_len; then the seen
// tokens [slots * cap], then their counts [slots * cap]. A row's lists are
// at its params' seen_slot (every row's when they all fit one binding,
// else only rows that have had penalties).
fn st_n(r: u32) -> u32 { return r * 4u; }
fn st_step_lo(r: u32) -> u32 { return r * 4u + 1u; }
fn st_step_hi(r: u32) -> u32 { return r * 4u + 2u; }
fn st_seen_len(r: u32) -> u32 { return r * 4u + 3u; }
fn st_seen_tok(slot: u32, k: u32) -> u32 { return dims.max_batch * 4u + slot * dims.cap + k; }
fn st_seen_cnt(slot: u32, k: u32) -> u32 {
    return dims.max_batch * 4u + dims.slots * dims.cap + slot * dims.cap + k;
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

// ---- the overlay: a hash table per row with OV_FIELDS arrays of ov_cap
// words: keys (token + 1, 0 = empty), processed values (f32 bits), list
// membership bits, bias (f32 bits), output count. Built by overlay.wgsl.
const OV_KEY: u32 = 0u;
const OV_VAL: u32 = 1u;
const OV_META: u32 = 2u;
const OV_BIAS: u32 = 3u;
const OV_COUNT: u32 = 4u;

fn ov_word(p: RowParams, field: u32, slot: u32) -> u32 {
    return p.ov_off + field * p.ov_cap + slot;
}

// lowbias32 (a well-mixed 32-bit hash), reduced to a slot.
fn ov_hash(t: u32, cap: u32) -> u32 {
    var x = t;
    x ^= x >> 16u;
    x *= 0x7FEB352Du;
    x ^= x >> 15u;
    x *= 0x846CA68Bu;
    x ^= x >> 16u;
    return x & (cap - 1u);
}

// The slot of token t in the row's table, or NONE. The table is at most
// half full, so a probe sequence ends at an empty slot.
fn ov_find(p: RowParams, t: u32) -> u32 {
    var s = ov_hash(t, p.ov_cap);
    for (var n = 0u; n < p.ov_cap; n++) {
        let k = atomicLoad(&ovtab[ov_word(p, OV_KEY, s)]);
        if (k == t + 1u) {
            return s;
        }
        if (k == 0u) {
            return NONE;
        }
        s = (s + 1u) & (p.ov_cap - 1u);
    }
    return NONE;
}

// Step 2: raw bits with the allowed-token bitmask applied.
fn masked_bits(r: u32, i: u32, p: RowParams) -> u32 {
    let b = raw_bits(r, i);
    if ((p.flags & FLAG_ALLOWED) != 0u) {
        let word = lists[p.allowed_off + (i >> 5u)];
        if (((word >> (i & 31u)) & 1u) == 0u) {
            return F32_NEG_INF_BITS;
        }
    }
    return b;
}

// Bits of the processed logit z (SPEC steps 2-4) of row r, token i: the
// masked raw value, or the overlay's value for the tokens it holds.
fn z_bits(r: u32, i: u32, p: RowParams) -> u32 {
    if ((p.flags & FLAG_OVERLAY) != 0u) {
        let s = ov_find(p, i);
        if (s != NONE) {
            return atomicLoad(&ovtab[ov_word(p, OV_VAL, s)]);
        }
    }
    return masked_bits(r, i, p);
}

// The order-preserving key of a logit with -0 mapped to +0: equal logits
// get equal keys, so ties (and the lowest-index rule) treat -0 == +0.
// Every key of a non-NaN value is nonzero, so 0 means "none".
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

// Step 6: z / T for a sampled row (T = 1 rows skip the division, like
// the CPU).
fn scale(z: f32, p: RowParams) -> f32 {
    if ((p.flags & FLAG_SCALED) != 0u) {
        return z / p.temperature;
    }
    return z;
}

// Bounds of g = -ln(-ln u) for the uniforms SPEC.md allows, u in
// [2^-24, 1 - 2^-24]: g in [-2.812, 16.636]. Widened: a token whose
// z / T lies more than GUMBEL_SPAN (+ a relative margin for rounding)
// below another survivor's can never beat that survivor's key, so its
// random word and logarithms are skipped; the token does not change.
const GUMBEL_SPAN: f32 = 20.0;

fn hopeless(zt: f32, best_zt: f32) -> bool {
    return zt < best_zt - (GUMBEL_SPAN + 1e-3 * abs(best_zt));
}

// The Gumbel-max key of token i with scaled logit zt as an ordered u32:
// the sortable key of zt + g.
fn gumbel_key_word(zt: f32, w: u32) -> u32 {
    return okey(zt + gumbel_from_uniform(uniform_from_word(w)));
}

fn gumbel_key(zt: f32, r: u32, i: u32, p: RowParams) -> u32 {
    let st = row_step(r);
    let w = philox_word(philox_key(p.seed_lo, p.seed_hi), i, st.x, st.y);
    return gumbel_key_word(zt, w);
}

// (key, arg) "a before b": larger key first, lower index on ties, NONE last.
fn ka_before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    if (ib == NONE) {
        return ia != NONE;
    }
    if (ia == NONE) {
        return false;
    }
    return ka > kb || (ka == kb && ia < ib);
}

// Online softmax statistics (max, sum of exp(x - max)); max -inf = empty.
fn merge_ms(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    if (bits_is_neg_inf(bitcast<u32>(b.x))) {
        return a;
    }
    if (bits_is_neg_inf(bitcast<u32>(a.x))) {
        return b;
    }
    if (b.x > a.x) {
        return vec2<f32>(b.x, a.y * exp(a.x - b.x) + b.y);
    }
    return vec2<f32>(a.x, a.y + b.y * exp(b.x - a.x));
}

fn add_ms(a: vec2<f32>, x: f32) -> vec2<f32> {
    if (bits_is_neg_inf(bitcast<u32>(a.x))) {
        return vec2<f32>(x, 1.0);
    }
    if (x > a.x) {
        return vec2<f32>(x, a.y * exp(a.x - x) + 1.0);
    }
    return vec2<f32>(a.x, a.y + exp(x - a.x));
}

// ---- workgroup scratch of scan.wgsl and finish.wgsl (8 KiB): the tree
// reductions, the candidates' sort, the selection's scans.
var<workgroup> wa: array<u32, 1024>;
var<workgroup> wb: array<u32, 1024>;

// Merges, across the workgroup and in a fixed tree (so the result never
// depends on timing), each invocation's raw softmax statistics `raw`, the
// (key, index) of its max z `z`, of its best Gumbel key `g`, and its
// softmax statistics of z / T `t`. Afterwards wa/wb hold them at 0, 256,
// 512 and 768. Every invocation calls it, in uniform control flow.
fn reduce_partials(lid: u32, raw: vec2<f32>, z: vec2<u32>, g: vec2<u32>, t: vec2<f32>) {
    wa[lid] = bitcast<u32>(raw.x);
    wb[lid] = bitcast<u32>(raw.y);
    wa[256u + lid] = z.x;
    wb[256u + lid] = z.y;
    wa[512u + lid] = g.x;
    wb[512u + lid] = g.y;
    wa[768u + lid] = bitcast<u32>(t.x);
    wb[768u + lid] = bitcast<u32>(t.y);
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let o = lid + s;
            let m = merge_ms(vec2<f32>(bitcast<f32>(wa[lid]), bitcast<f32>(wb[lid])),
                vec2<f32>(bitcast<f32>(wa[o]), bitcast<f32>(wb[o])));
            wa[lid] = bitcast<u32>(m.x);
            wb[lid] = bitcast<u32>(m.y);
            if (ka_before(wa[256u + o], wb[256u + o], wa[256u + lid], wb[256u + lid])) {
                wa[256u + lid] = wa[256u + o];
                wb[256u + lid] = wb[256u + o];
            }
            if (ka_before(wa[512u + o], wb[512u + o], wa[512u + lid], wb[512u + lid])) {
                wa[512u + lid] = wa[512u + o];
                wb[512u + lid] = wb[512u + o];
            }
            let n = merge_ms(vec2<f32>(bitcast<f32>(wa[768u + lid]), bitcast<f32>(wb[768u + lid])),
                vec2<f32>(bitcast<f32>(wa[768u + o]), bitcast<f32>(wb[768u + o])));
            wa[768u + lid] = bitcast<u32>(n.x);
            wb[768u + lid] = bitcast<u32>(n.y);
        }
        workgroupBarrier();
    }
}
