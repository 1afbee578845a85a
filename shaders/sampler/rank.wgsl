// rank.wgsl: dispatch (chunks, B), only when a row asks for top logprobs.
// The rank of the sampled token (SPEC.md "Top log-probabilities") is 1 +
// the number of raw logits strictly above its own; it needs the token,
// which only finish.wgsl knows, so this pass reads the rows a second time
// (the one extra read top logprobs cost). Each invocation counts its four
// tokens and adds its count to the row's counter in ovtab (the binding
// with atomics; finish.wgsl set it to 1), which the host copies into the
// output after the pass. Integer additions: the total never depends on
// their order.

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.batch) {
        return;
    }
    let p = params[r];
    if ((p.flags & FLAG_TOPLP) == 0u || outbuf[dims.batch * 2u + r] != ST_OK) {
        return;
    }
    let x = bitcast<f32>(raw_bits(r, outbuf[r]));
    let base = wg.x * CHUNK + lid * ITEMS;
    var n = 0u;
    for (var q = 0u; q < ITEMS; q++) {
        let i = base + q;
        if (i < dims.vocab && bitcast<f32>(raw_bits(r, i)) > x) {
            n += 1u;
        }
    }
    if (n > 0u) {
        atomicAdd(&ovtab[dims.rank_off + r], n);
    }
}
