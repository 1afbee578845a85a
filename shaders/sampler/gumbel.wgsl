// gumbel.wgsl: Gumbel-max over the survivors of the filtered rows (min-p,
// top-k, top-p; SPEC step 10), dispatch (chunks, B): per chunk the largest
// key of z / T + g over tokens with z / T >= theta, lowest index on ties,
// written as partials for finalize.wgsl. Rows already finished skip it.

var<workgroup> wg_active: u32;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.batch) {
        return;
    }
    if (lid == 0u) {
        wg_active = select(1u, 0u, scratch[rs(r, RS_DONE)] != 0u);
    }
    let row_on = workgroupUniformLoad(&wg_active);
    if (row_on == 0u) {
        return;
    }
    let p = params[r];
    let modified = (p.flags & FLAG_MODIFIED) != 0u;
    let theta_key = okey(bitcast<f32>(scratch[rs(r, RS_THETA)]));
    var best = 0u;
    var arg = 0xFFFFFFFFu;
    let base = wg.x * CHUNK;
    for (var j = 0u; j < ITEMS; j++) {
        let i = base + j * WG + lid;
        if (i < dims.vocab) {
            let zb = z_bits(r, i, modified);
            if (!bits_is_neg_inf(zb)) {
                let zt = scale(bitcast<f32>(zb), p);
                if (survives(zt, theta_key)) {
                    let k = gumbel_key(zt, r, i, p);
                    if (k > best || arg == 0xFFFFFFFFu) {
                        best = k;
                        arg = i;
                    }
                }
            }
        }
    }
    reduce_key_arg(lid, best, arg);
    if (lid == 0u) {
        scratch[part(r, wg.x, 5u)] = red_key[0];
        scratch[part(r, wg.x, 6u)] = red_arg[0];
    }
}
