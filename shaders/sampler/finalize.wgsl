// finalize.wgsl: one workgroup per row (dispatch (1, B)): merges the
// Gumbel partials of gumbel.wgsl in a fixed order and finishes the
// filtered rows (token, logprob, status, state update).

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
    reduce_key_arg(lid, best, arg);
    if (lid == 0u) {
        wg_active = red_arg[0];
    }
    let tok = workgroupUniformLoad(&wg_active);
    finish_row(r, lid, tok, select(0u, 2u, tok == 0xFFFFFFFFu));
}
