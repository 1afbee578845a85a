// tournament.wgsl: a winner tree over the heads of the workgroup's 256
// invocations, for the two top-K passes (chunk_topk.wgsl, merge_topk.wgsl).
// Prepended after bindings.wgsl.
//
// Each invocation owns some candidates and exposes its best remaining one,
// its head, as (t_key, t_idx). Internal node n (1..255) holds the lane whose
// head wins its subtree (higher key, then lower index); lane l is leaf
// 256 + l. Each round the root's lane emits its head, takes the next one
// and replays its own path to the root (8 steps, by that lane alone), so a
// round costs one barrier plus one uniform load instead of a 256-wide
// reduction. The root is published in t_root[slot], alternating between
// the two slots by round, so the lane that writes the next root never
// touches the slot the others are reading.

var<workgroup> t_key: array<u32, 256>;
var<workgroup> t_idx: array<u32, 256>;
var<workgroup> t_node: array<u32, 256>;
var<workgroup> t_root: array<u32, 2>;

// The head of an invocation that owns nothing (any real key is above 0).
const EMPTY_KEY: u32 = 0u;
const EMPTY_IDX: u32 = 0xFFFFFFFFu;

// True when (ka, ia) ranks before (kb, ib): higher key, then lower index.
fn ranks_before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return ka > kb || (ka == kb && ia < ib);
}

fn t_lane(c: u32) -> u32 {
    if (c >= WG) {
        return c - WG;
    }
    return t_node[c];
}

// The winning lane of node n from its two children.
fn t_pick(n: u32) -> u32 {
    let a = t_lane(2u * n);
    let b = t_lane(2u * n + 1u);
    if (ranks_before(t_key[b], t_idx[b], t_key[a], t_idx[a])) {
        return b;
    }
    return a;
}

// Builds the tree once every lane has written its head. Call from every
// invocation, in uniform control flow; the root lands in t_root[0].
fn t_build(lid: u32) {
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            t_node[half + lid] = t_pick(half + lid);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        t_root[0] = t_node[1];
    }
    workgroupBarrier();
}

// After `lane` replaced its head: replays its path and publishes the new
// root in t_root[slot]. Called by that lane only.
fn t_update(lane: u32, slot: u32) {
    var n = (WG + lane) >> 1u;
    loop {
        t_node[n] = t_pick(n);
        if (n == 1u) {
            break;
        }
        n = n >> 1u;
    }
    t_root[slot] = t_node[1];
}
