// bindings.wgsl: the binding layout shared by the beam-step passes
// (src/beam/gpu.rs). Prepended after common.wgsl; declarations only.
//
//   dims        sizes of this step (uniform)
//   logits      the caller's [rows, V] f32 logits, read as u32 bits
//   beam_scores [rows] running beam scores (f32; -inf allowed)
//   lse_parts   per (row, chunk): flags (bit 0 NaN/+inf seen, bit 1 some
//               finite value seen), max bits, sum of exp(x - max) bits, pad
//   cand_parts  per (row, chunk): its best K candidates, best first, as
//               (sortable key, flat index j * V + t) pairs; key 0 = none
//   outbuf      scores [G * K] (f32 bits), beams [G * K], tokens [G * K],
//               status [G] (0 ok, 1 + j when beam j's row holds NaN/+inf)

struct BeamDims {
    rows: u32,       // G * b
    vocab: u32,
    chunks: u32,     // workgroups per row: ceil(V / CHUNK)
    beams: u32,      // b
    groups: u32,     // G
    k: u32,          // candidates kept per group (and per chunk)
    logits_off: u32, // element offset of row 0 inside the logits binding
    lists: u32,      // b * chunks: sorted lists merged per group
}

@group(0) @binding(0) var<uniform> dims: BeamDims;
@group(0) @binding(1) var<storage, read> logits: array<u32>;
@group(0) @binding(2) var<storage, read> beam_scores: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse_parts: array<u32>;
@group(0) @binding(4) var<storage, read_write> cand_parts: array<u32>;
@group(0) @binding(5) var<storage, read_write> outbuf: array<u32>;

// CHUNK (logits per workgroup) and LPT come from the Rust constants
// (src/beam/gpu.rs), generated ahead of this file.
const WG: u32 = 256u;
const ITEMS: u32 = CHUNK / WG;

// Index of field f of the log-sum-exp partial of (row r, chunk c).
fn lse_at(r: u32, c: u32, f: u32) -> u32 {
    return (r * dims.chunks + c) * 4u + f;
}

// Index of the key of entry p of the candidate list of (row r, chunk c);
// the flat index follows it.
fn cand_at(r: u32, c: u32, p: u32) -> u32 {
    return ((r * dims.chunks + c) * dims.k + p) * 2u;
}

// The order-preserving key of a candidate score with -0 mapped to +0, so
// the two tie (the CPU does the same).
fn cand_key(x: f32) -> u32 {
    if (bitcast<u32>(x) == 0x80000000u) {
        return 0x80000000u;
    }
    return f32_to_sortable_key(x);
}

// ---- log-sum-exp partials (lse.wgsl writes them, chunk_topk.wgsl merges)

struct Lse {
    flags: u32, // bit 0: NaN / +inf seen, bit 1: a finite value seen
    m: f32,
    s: f32,
}

fn lse_merge(a: Lse, b: Lse) -> Lse {
    var o = a;
    o.flags = a.flags | b.flags;
    if ((b.flags & 2u) != 0u) {
        if ((a.flags & 2u) == 0u) {
            o.m = b.m;
            o.s = b.s;
        } else if (b.m > a.m) {
            o.m = b.m;
            o.s = a.s * exp(a.m - b.m) + b.s;
        } else {
            o.s = a.s + b.s * exp(b.m - a.m);
        }
    }
    return o;
}

// The key of a -inf candidate (f32_to_sortable_key(-inf)).
const NEG_INF_KEY: u32 = 0x007FFFFFu;
