// chunk_topk.wgsl: per (chunk, row) workgroup (dispatch (chunks, rows)),
// the best K candidates of the chunk, best first, into cand_parts.
//
// Invocation 0 merges the row's log-sum-exp partials in chunk order (the
// same order, hence the same value, in every workgroup of the row). Each
// invocation scores its 16 logits
//     cand = beam_score + ((z - max) - ln(sum))
// as sortable keys (a -inf logit, an all -inf row or a -inf beam score
// give the key of -inf, without computing with infinities), then K rounds
// of the tournament emit the chunk's best K. Any candidate among its
// group's best K is among its chunk's best K, so merge_topk.wgsl only
// needs these lists.

var<workgroup> wg_m: f32;
var<workgroup> wg_lns: f32;
var<workgroup> wg_has: u32;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.rows) {
        return;
    }
    if (lid == 0u) {
        var a = Lse(0u, 0.0, 0.0);
        for (var c = 0u; c < dims.chunks; c++) {
            let p = Lse(lse_parts[lse_at(r, c, 0u)],
                bitcast<f32>(lse_parts[lse_at(r, c, 1u)]),
                bitcast<f32>(lse_parts[lse_at(r, c, 2u)]));
            a = lse_merge(a, p);
        }
        wg_has = (a.flags >> 1u) & 1u;
        wg_m = a.m;
        wg_lns = select(0.0, ln_f32(a.s), wg_has != 0u);
    }
    workgroupBarrier();
    let has = wg_has != 0u;
    let m = wg_m;
    let lns = wg_lns;
    let bs = beam_scores[r];
    let bs_dead = bitcast<u32>(bs) == F32_NEG_INF_BITS;
    let flat0 = (r % dims.beams) * dims.vocab;
    let base = wg.x * CHUNK;

    var keys: array<u32, 16>;
    for (var j = 0u; j < ITEMS; j++) {
        let i = base + j * WG + lid;
        var key = EMPTY_KEY;
        if (i < dims.vocab) {
            let bits = logits[dims.logits_off + r * dims.vocab + i];
            key = NEG_INF_KEY;
            if (has && !bs_dead && !bits_is_neg_inf(bits) && !bits_is_invalid_logit(bits)) {
                key = cand_key(bs + ((bitcast<f32>(bits) - m) - lns));
            }
        }
        keys[j] = key;
    }

    // This invocation's head: its best item not yet emitted (items in
    // ascending index order, so a strict > keeps the lowest index on ties).
    var taken = 0u;
    var hj = ITEMS;
    var hk = EMPTY_KEY;
    for (var j = 0u; j < ITEMS; j++) {
        if (keys[j] > hk) {
            hk = keys[j];
            hj = j;
        }
    }
    t_key[lid] = hk;
    t_idx[lid] = select(EMPTY_IDX, flat0 + base + hj * WG + lid, hj < ITEMS);
    t_build(lid);

    for (var round = 0u; round < dims.k; round++) {
        let w = workgroupUniformLoad(&t_root[round & 1u]);
        if (lid == w) {
            let at = cand_at(r, wg.x, round);
            cand_parts[at] = t_key[lid];
            cand_parts[at + 1u] = t_idx[lid];
            if (hj < ITEMS) {
                taken |= 1u << hj;
            }
            hj = ITEMS;
            hk = EMPTY_KEY;
            for (var j = 0u; j < ITEMS; j++) {
                if (((taken >> j) & 1u) == 0u && keys[j] > hk) {
                    hk = keys[j];
                    hj = j;
                }
            }
            t_key[lid] = hk;
            t_idx[lid] = select(EMPTY_IDX, flat0 + base + hj * WG + lid, hj < ITEMS);
            t_update(lid, (round + 1u) & 1u);
        }
        workgroupBarrier();
    }
}
