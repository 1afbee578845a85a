// lse.wgsl: per (chunk, row) workgroup (dispatch (chunks, rows)), the
// online max and sum of exp(x - max) of the row's finite logits in the
// chunk, and whether any is NaN or +inf. chunk_topk.wgsl merges the
// partials of a row in chunk order (so every workgroup of the row gets
// the same log-sum-exp) and merge_topk.wgsl reports the NaN / +inf rows.

var<workgroup> sh: array<Lse, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.rows) {
        return;
    }
    var a = Lse(0u, 0.0, 0.0);
    let base = wg.x * CHUNK;
    for (var j = 0u; j < ITEMS; j++) {
        let i = base + j * WG + lid;
        if (i < dims.vocab) {
            let bits = logits[dims.logits_off + r * dims.vocab + i];
            if (bits_is_invalid_logit(bits)) {
                a.flags |= 1u;
            } else if (!bits_is_neg_inf(bits)) {
                let x = bitcast<f32>(bits);
                if ((a.flags & 2u) == 0u) {
                    a.m = x;
                    a.s = 1.0;
                    a.flags |= 2u;
                } else if (x > a.m) {
                    a.s = a.s * exp(a.m - x) + 1.0;
                    a.m = x;
                } else {
                    a.s += exp(x - a.m);
                }
            }
        }
    }
    sh[lid] = a;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            sh[lid] = lse_merge(sh[lid], sh[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let o = sh[0];
        lse_parts[lse_at(r, wg.x, 0u)] = o.flags;
        lse_parts[lse_at(r, wg.x, 1u)] = bitcast<u32>(o.m);
        lse_parts[lse_at(r, wg.x, 2u)] = bitcast<u32>(o.s);
    }
}
