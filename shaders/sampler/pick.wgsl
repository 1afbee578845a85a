// pick.wgsl: after each hist.wgsl pass, one workgroup per row (dispatch
// (1, B)) reads and clears the row's 256-bucket histogram, scans it from
// the largest keys down, and picks the bucket where the running count
// reaches k (top-k) or the running mass reaches top_p of the survivors'
// total (top-p). After the fourth digit the prefix is the exact ordered key
// of the k-th largest value / the top-p cut, and theta rises to it: every
// token with z / T at or above it survives (ties kept, SPEC steps 8-9).

var<workgroup> sc: array<u32, 256>;
var<workgroup> slo: array<u32, 256>;
var<workgroup> shi: array<u32, 256>;
var<workgroup> wg_active: u32;
var<workgroup> wg_sel: atomic<u32>;
var<workgroup> wg_last: atomic<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.batch) {
        return;
    }
    let pmode = dims.pass_id >= 4u;
    if (lid == 0u) {
        var on = 0u;
        if (scratch[rs(r, RS_DONE)] == 0u) {
            on = scratch[rs(r, select(RS_K_ACTIVE, RS_P_ACTIVE, pmode))];
        }
        wg_active = on;
        atomicStore(&wg_sel, 0xFFFFFFFFu);
        atomicStore(&wg_last, 0u);
    }
    let row_on = workgroupUniformLoad(&wg_active);
    if (row_on == 0u) {
        return;
    }
    // q = 0 is bucket 255 (largest keys).
    let q = lid;
    let bucket = 255u - q;
    let g = (r * 256u + bucket) * 3u;
    let own_c = atomicLoad(&hist[g]);
    let own = vec2<u32>(atomicLoad(&hist[g + 1u]), atomicLoad(&hist[g + 2u]));
    atomicStore(&hist[g], 0u);
    atomicStore(&hist[g + 1u], 0u);
    atomicStore(&hist[g + 2u], 0u);
    sc[q] = own_c;
    slo[q] = own.x;
    shi[q] = own.y;
    workgroupBarrier();
    // Inclusive Hillis-Steele scan over q.
    for (var off = 1u; off < 256u; off <<= 1u) {
        var c = sc[q];
        var m = vec2<u32>(slo[q], shi[q]);
        if (q >= off) {
            c += sc[q - off];
            m = add64(m, vec2<u32>(slo[q - off], shi[q - off]));
        }
        workgroupBarrier();
        sc[q] = c;
        slo[q] = m.x;
        shi[q] = m.y;
        workgroupBarrier();
    }
    let p = params[r];
    let digit = dims.pass_id & 3u;
    let total_c = sc[255];
    let total_m = vec2<u32>(slo[255], shi[255]);
    var above_c = 0u;
    var above_m = vec2<u32>(0u, 0u);
    var target_m = vec2<u32>(0u, 0u);
    var k_target = p.top_k;
    var noop = false;
    if (pmode) {
        if (digit == 0u) {
            let tf = p.top_p * (f32(total_m.y) * 4294967296.0 + f32(total_m.x));
            let hi = u32(tf / 4294967296.0);
            let lo = u32(max(tf - f32(hi) * 4294967296.0, 0.0));
            target_m = vec2<u32>(lo, hi);
            // A top_p so small that top_p * total rounds below one unit of
            // the fixed-point mass (top_p < ~2^-31) still cuts at the first
            // token, as on the CPU; a zero target would never be crossed
            // and keep every token.
            if (hi == 0u && lo == 0u) {
                target_m = vec2<u32>(1u, 0u);
            }
        } else {
            above_m = vec2<u32>(scratch[rs(r, RS_P_ABOVE_LO)], scratch[rs(r, RS_P_ABOVE_HI)]);
            target_m = vec2<u32>(scratch[rs(r, RS_P_TARGET_LO)], scratch[rs(r, RS_P_TARGET_HI)]);
        }
    } else {
        if (digit == 0u) {
            noop = total_c <= k_target;
        } else {
            above_c = scratch[rs(r, RS_K_ABOVE)];
        }
    }
    let incl_c = sc[q];
    let incl_m = add64(above_m, vec2<u32>(slo[q], shi[q]));
    var excl_c = 0u;
    var excl_m = above_m;
    if (q > 0u) {
        excl_c = sc[q - 1u];
        excl_m = add64(above_m, vec2<u32>(slo[q - 1u], shi[q - 1u]));
    }
    if (own_c > 0u) {
        atomicMax(&wg_last, q);
        var hit = false;
        if (pmode) {
            hit = ge64(incl_m, target_m) && !ge64(excl_m, target_m);
        } else {
            hit = above_c + incl_c >= k_target && above_c + excl_c < k_target;
        }
        if (hit) {
            atomicMin(&wg_sel, q);
        }
    }
    workgroupBarrier();
    var sel = atomicLoad(&wg_sel);
    if (sel == 0xFFFFFFFFu) {
        sel = atomicLoad(&wg_last);
    }
    if (q == sel) {
        if (!pmode && noop) {
            scratch[rs(r, RS_K_ACTIVE)] = 0u;
            return;
        }
        let prev = scratch[rs(r, select(RS_K_PREFIX, RS_P_PREFIX, pmode))];
        var prefix = bucket;
        if (digit > 0u) {
            prefix = (prev << 8u) | bucket;
        }
        if (pmode) {
            scratch[rs(r, RS_P_PREFIX)] = prefix;
            scratch[rs(r, RS_P_ABOVE_LO)] = excl_m.x;
            scratch[rs(r, RS_P_ABOVE_HI)] = excl_m.y;
            if (digit == 0u) {
                scratch[rs(r, RS_P_TARGET_LO)] = target_m.x;
                scratch[rs(r, RS_P_TARGET_HI)] = target_m.y;
            }
        } else {
            scratch[rs(r, RS_K_PREFIX)] = prefix;
            scratch[rs(r, RS_K_ABOVE)] = above_c + excl_c;
        }
        if (digit == 3u) {
            let theta_key = okey(bitcast<f32>(scratch[rs(r, RS_THETA)]));
            if (prefix > theta_key) {
                scratch[rs(r, RS_THETA)] = bitcast<u32>(sortable_key_to_f32(prefix));
            }
            scratch[rs(r, select(RS_K_ACTIVE, RS_P_ACTIVE, pmode))] = 0u;
        }
    }
}
