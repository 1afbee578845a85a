// prep.wgsl: dense copy of the rows that need processing (masks, bias or
// penalties) into zbuf, widened to f32, with the allowed-token bitmask
// applied (SPEC step 2). Dispatch (chunks, B); other rows return at once.

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.batch) {
        return;
    }
    let p = params[r];
    if ((p.flags & FLAG_MODIFIED) == 0u) {
        return;
    }
    let base = wg.x * CHUNK;
    for (var j = 0u; j < ITEMS; j++) {
        let i = base + j * WG + lid;
        if (i < dims.vocab) {
            var b = raw_bits(r, i);
            if ((p.flags & FLAG_ALLOWED) != 0u) {
                let word = lists[p.allowed_off + (i >> 5u)];
                if (((word >> (i & 31u)) & 1u) == 0u) {
                    b = F32_NEG_INF_BITS;
                }
            }
            zbuf[r * dims.vocab + i] = b;
        }
    }
}
