// finalize.wgsl: one workgroup per row (dispatch (1, B)): merges the
// Gumbel partials of gumbel.wgsl in a fixed order and finishes the
// filtered rows (token, logprob, status, state update).

var<workgroup> skey: array<u32, 256>;
var<workgroup> sarg: array<u32, 256>;
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
    var best = 0u;
    var arg = 0xFFFFFFFFu;
    for (var c = lid; c < dims.chunks; c += WG) {
        let k = scratch[part(r, c, 5u)];
        let a = scratch[part(r, c, 6u)];
        if (a != 0xFFFFFFFFu && (arg == 0xFFFFFFFFu || k > best)) {
            best = k;
            arg = a;
        }
    }
    skey[lid] = best;
    sarg[lid] = arg;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let k2 = skey[lid + s];
            let a2 = sarg[lid + s];
            if (a2 != 0xFFFFFFFFu && (sarg[lid] == 0xFFFFFFFFu || k2 > skey[lid] || (k2 == skey[lid] && a2 < sarg[lid]))) {
                skey[lid] = k2;
                sarg[lid] = a2;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        wg_active = sarg[0];
    }
    let tok = workgroupUniformLoad(&wg_active);
    finish_row(r, lid, tok, select(0u, 2u, tok == 0xFFFFFFFFu));
}
