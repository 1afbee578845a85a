// merge.wgsl: one workgroup per row (dispatch (1, B)). Combines the
// per-chunk partials of reduce.wgsl in a fixed order (so the result does
// not depend on timing), sets the status, finishes greedy and plain rows
// (token, logprob, state update) and prepares the threshold search of the
// filtered rows (min-p threshold, top-k / top-p radix state).

var<workgroup> sh: array<Acc, 256>;
var<workgroup> wg_tok: u32;
var<workgroup> wg_status: u32; // 0 ok, 1 invalid, 2 no candidates, 3 filtered (not done), 4 +inf overflow
var<workgroup> wg_first_inf: atomic<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.batch) {
        return;
    }
    var a = Acc(0u, 0u, 0.0, 0.0, 0u, 0xFFFFFFFFu, 0u, 0xFFFFFFFFu);
    for (var c = lid; c < dims.chunks; c += WG) {
        let f = scratch[part(r, c, 0u)];
        let b = Acc(f & 1u, (f >> 1u) & 1u,
            bitcast<f32>(scratch[part(r, c, 1u)]), bitcast<f32>(scratch[part(r, c, 2u)]),
            scratch[part(r, c, 3u)], scratch[part(r, c, 4u)],
            scratch[part(r, c, 5u)], scratch[part(r, c, 6u)]);
        a = merge_acc(a, b);
    }
    sh[lid] = a;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            sh[lid] = merge_acc(sh[lid], sh[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let o = sh[0];
        let p = params[r];
        scratch[rs(r, RS_DONE)] = 0u;
        scratch[rs(r, RS_RMAX)] = bitcast<u32>(o.rmax);
        scratch[rs(r, RS_RSUM)] = bitcast<u32>(o.rsum);
        var status = 3u;
        var tok = 0xFFFFFFFFu;
        if (o.bad != 0u) {
            status = 1u;
        } else if (o.zkey == 0u) {
            status = 2u;
        } else if ((p.flags & FLAG_GREEDY) != 0u) {
            status = 0u;
            tok = o.zarg;
        } else if (bitcast<u32>(scale(sortable_key_to_f32(o.zkey), p)) == F32_POS_INF_BITS) {
            // SPEC step 6: the largest z / T is +inf (a tiny temperature or
            // an overflowed bias): the +inf tokens are the only candidates,
            // their Gumbel keys tie at +inf and the lowest index wins. Found
            // below by a scan of the row (rare: costs time, not dispatches).
            status = 4u;
        } else if (bitcast<u32>(scale(sortable_key_to_f32(o.zkey), p)) == F32_NEG_INF_BITS) {
            // Every finite z / T overflows to -inf: the T -> 0 limit,
            // greedy on the unscaled logits (as the CPU).
            status = 0u;
            tok = o.zarg;
        } else if ((p.flags & FILTERS) == 0u) {
            status = 0u;
            tok = o.garg;
        } else {
            let zt = scale(sortable_key_to_f32(o.zkey), p);
            scratch[rs(r, RS_ZMAX)] = bitcast<u32>(zt);
            var theta = FLOOR_BITS;
            let k_on = select(0u, 1u, (p.flags & FLAG_TOP_K) != 0u);
            let p_on = select(0u, 1u, (p.flags & FLAG_TOP_P) != 0u);
            if ((p.flags & FLAG_MIN_P) != 0u) {
                let t = zt + p.ln_min_p;
                if (okey(t) > okey(bitcast<f32>(FLOOR_BITS))) {
                    theta = bitcast<u32>(t);
                }
            }
            scratch[rs(r, RS_THETA)] = theta;
            scratch[rs(r, RS_K_ACTIVE)] = k_on;
            scratch[rs(r, RS_K_ABOVE)] = 0u;
            scratch[rs(r, RS_K_PREFIX)] = 0u;
            scratch[rs(r, RS_P_ACTIVE)] = p_on;
            scratch[rs(r, RS_P_ABOVE_LO)] = 0u;
            scratch[rs(r, RS_P_ABOVE_HI)] = 0u;
            scratch[rs(r, RS_P_PREFIX)] = 0u;
        }
        wg_status = status;
        wg_tok = tok;
    }
    var status = workgroupUniformLoad(&wg_status);
    if (status == 4u) {
        if (lid == 0u) {
            atomicStore(&wg_first_inf, 0xFFFFFFFFu);
        }
        workgroupBarrier();
        let p = params[r];
        let modified = (p.flags & FLAG_MODIFIED) != 0u;
        for (var i = lid; i < dims.vocab; i += WG) {
            if (bitcast<u32>(scale(bitcast<f32>(z_bits(r, i, modified)), p)) == F32_POS_INF_BITS) {
                atomicMin(&wg_first_inf, i);
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            wg_tok = atomicLoad(&wg_first_inf);
        }
        status = 0u;
    }
    let tok = workgroupUniformLoad(&wg_tok);
    if (status != 3u) {
        finish_row(r, lid, tok, status);
    }
}
