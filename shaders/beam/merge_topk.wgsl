// merge_topk.wgsl: one workgroup per group (dispatch (1, groups)). Merges
// the group's b * chunks sorted lists of chunk_topk.wgsl into its best K
// candidates, best first, and writes them with the group's status.
//
// Invocation l owns lists l, l + 256, ... (at most LPT of them) and keeps a
// read position in each; its head is the best entry at those positions.
// K rounds of the tournament emit the winners in order.

// LPT, lists per invocation (MAX_LISTS / WG), is generated from Rust.

fn list_entry(g: u32, l: u32, p: u32) -> u32 {
    return ((g * dims.lists + l) * dims.k + p) * 2u;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wg.y;
    if (g >= dims.groups) {
        return;
    }
    let gk = dims.groups * dims.k;
    if (lid == 0u) {
        var status = 0u;
        for (var j = dims.beams; j > 0u; j--) {
            for (var c = 0u; c < dims.chunks; c++) {
                if ((lse_parts[lse_at(g * dims.beams + j - 1u, c, 0u)] & 1u) != 0u) {
                    status = j;
                }
            }
        }
        outbuf[3u * gk + g] = status;
    }

    var pos: array<u32, 16>;
    var hq = LPT;
    var hk = EMPTY_KEY;
    var hi = EMPTY_IDX;
    for (var q = 0u; q < LPT; q++) {
        pos[q] = 0u;
        let l = lid + q * WG;
        if (l < dims.lists) {
            let e = list_entry(g, l, 0u);
            let k = cand_parts[e];
            let i = cand_parts[e + 1u];
            if (ranks_before(k, i, hk, hi)) {
                hk = k;
                hi = i;
                hq = q;
            }
        }
    }
    t_key[lid] = hk;
    t_idx[lid] = hi;
    t_build(lid);

    for (var round = 0u; round < dims.k; round++) {
        let w = workgroupUniformLoad(&t_root[round & 1u]);
        if (lid == w) {
            let o = g * dims.k + round;
            outbuf[o] = bitcast<u32>(sortable_key_to_f32(t_key[lid]));
            outbuf[gk + o] = t_idx[lid] / dims.vocab;
            outbuf[2u * gk + o] = t_idx[lid] % dims.vocab;
            if (hq < LPT) {
                pos[hq] += 1u;
            }
            hq = LPT;
            hk = EMPTY_KEY;
            hi = EMPTY_IDX;
            for (var q = 0u; q < LPT; q++) {
                let l = lid + q * WG;
                if (l < dims.lists && pos[q] < dims.k) {
                    let e = list_entry(g, l, pos[q]);
                    let k = cand_parts[e];
                    let i = cand_parts[e + 1u];
                    if (ranks_before(k, i, hk, hi)) {
                        hk = k;
                        hi = i;
                        hq = q;
                    }
                }
            }
            t_key[lid] = hk;
            t_idx[lid] = hi;
            t_update(lid, (round + 1u) & 1u);
        }
        workgroupBarrier();
    }
}
