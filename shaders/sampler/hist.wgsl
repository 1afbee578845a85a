// hist.wgsl: one digit of the radix threshold search (dispatch (chunks, B),
// pass index in dims.pass_id: 0-3 top-k digits, 4-7 top-p digits, most
// significant first). For the survivors z / T >= theta whose ordered key
// matches the prefix chosen so far, it histograms the next 8 bits: counts
// (top-k) or probability mass exp(z / T - max) in 64-bit fixed point,
// 2^31 = 1 (top-p). Integer sums make the result independent of the order
// in which invocations add. Workgroup histograms are flushed into the
// row's global histogram; pick.wgsl reads and clears it.

var<workgroup> lc: array<atomic<u32>, 256>;
var<workgroup> llo: array<atomic<u32>, 256>;
var<workgroup> lhi: array<atomic<u32>, 256>;
var<workgroup> wg_active: u32;

fn add_mass(b: u32, m: u32) {
    let old = atomicAdd(&llo[b], m);
    if (old + m < old) {
        atomicAdd(&lhi[b], 1u);
    }
}

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
    }
    atomicStore(&lc[lid], 0u);
    atomicStore(&llo[lid], 0u);
    atomicStore(&lhi[lid], 0u);
    let row_on = workgroupUniformLoad(&wg_active);
    if (row_on == 0u) {
        return;
    }
    let p = params[r];
    let modified = (p.flags & FLAG_MODIFIED) != 0u;
    let digit = dims.pass_id & 3u;
    let shift = 24u - 8u * digit;
    let prefix = scratch[rs(r, select(RS_K_PREFIX, RS_P_PREFIX, pmode))];
    let theta_key = okey(bitcast<f32>(scratch[rs(r, RS_THETA)]));
    let zmax = bitcast<f32>(scratch[rs(r, RS_ZMAX)]);
    let base = wg.x * CHUNK;
    for (var j = 0u; j < ITEMS; j++) {
        let i = base + j * WG + lid;
        if (i < dims.vocab) {
            let zb = z_bits(r, i, modified);
            if (!bits_is_neg_inf(zb)) {
                let zt = scale(bitcast<f32>(zb), p);
                let key = okey(zt);
                var match_prefix = key >= theta_key;
                if (digit > 0u) {
                    match_prefix = match_prefix && (key >> (shift + 8u)) == prefix;
                }
                if (match_prefix) {
                    let b = (key >> shift) & 255u;
                    atomicAdd(&lc[b], 1u);
                    if (pmode) {
                        add_mass(b, u32(exp(zt - zmax) * 2147483648.0));
                    }
                }
            }
        }
    }
    workgroupBarrier();
    let c = atomicLoad(&lc[lid]);
    if (c > 0u) {
        let g = (r * 256u + lid) * 3u;
        atomicAdd(&hist[g], c);
        let lo = atomicLoad(&llo[lid]);
        let old = atomicAdd(&hist[g + 1u], lo);
        var carry = atomicLoad(&lhi[lid]);
        if (old + lo < old) {
            carry += 1u;
        }
        if (carry > 0u) {
            atomicAdd(&hist[g + 2u], carry);
        }
    }
}
