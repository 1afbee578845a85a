// sparse.wgsl: the sparse steps 2-4 on zbuf, one workgroup per row, in
// SPEC order with a storage barrier between steps: banned tokens, EOS ids
// while n < min_new_tokens, logit bias, repetition penalty over
// prompt ∪ output (once per token), frequency / presence over the output.
// Each list holds distinct tokens, so threads never touch the same entry
// within a step. Masked (-inf) entries stay -inf.

fn apply_rep(idx: u32, rep: f32) {
    let b = zbuf[idx];
    if (bits_is_neg_inf(b)) {
        return;
    }
    let x = bitcast<f32>(b);
    var y = x * rep;
    if (x > 0.0) {
        y = x / rep;
    }
    zbuf[idx] = bitcast<u32>(y);
}

var<workgroup> wg_flags: u32;
var<workgroup> wg_eos: u32;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (lid == 0u) {
        var f = 0u;
        var e = 0u;
        if (r < dims.batch) {
            f = params[r].flags;
            if (state[st_n(r)] < params[r].min_new) {
                e = 1u;
            }
        }
        wg_flags = f;
        wg_eos = e;
    }
    let flags = workgroupUniformLoad(&wg_flags);
    let eos_active = workgroupUniformLoad(&wg_eos);
    if ((flags & FLAG_MODIFIED) == 0u) {
        return;
    }
    let p = params[r];
    let row = r * dims.vocab;
    for (var k = lid; k < p.banned_len; k += WG) {
        zbuf[row + lists[p.banned_off + k]] = F32_NEG_INF_BITS;
    }
    storageBarrier();
    if (eos_active != 0u) {
        for (var k = lid; k < p.eos_len; k += WG) {
            zbuf[row + lists[p.eos_off + k]] = F32_NEG_INF_BITS;
        }
    }
    storageBarrier();
    for (var k = lid; k < p.bias_len; k += WG) {
        let idx = row + lists[p.bias_off + k];
        let b = zbuf[idx];
        if (!bits_is_neg_inf(b)) {
            zbuf[idx] = bitcast<u32>(bitcast<f32>(b) + bitcast<f32>(lists[p.bias_off + p.bias_len + k]));
        }
    }
    storageBarrier();
    let seen = state[st_seen_len(r)];
    if (p.rep != 1.0) {
        for (var k = lid; k < p.prompt_len; k += WG) {
            apply_rep(row + lists[p.prompt_off + k], p.rep);
        }
        for (var k = lid; k < seen; k += WG) {
            let t = state[st_seen_tok(r, k)];
            var in_prompt = false;
            if ((p.flags & FLAG_PROMPT_MASK) != 0u) {
                in_prompt = ((lists[p.prompt_mask_off + (t >> 5u)] >> (t & 31u)) & 1u) == 1u;
            }
            if (!in_prompt) {
                apply_rep(row + t, p.rep);
            }
        }
    }
    storageBarrier();
    if (p.freq != 0.0 || p.presence != 0.0) {
        for (var k = lid; k < seen; k += WG) {
            let t = state[st_seen_tok(r, k)];
            let c = state[st_seen_cnt(r, k)];
            let idx = row + t;
            let b = zbuf[idx];
            if (c > 0u && !bits_is_neg_inf(b)) {
                zbuf[idx] = bitcast<u32>(bitcast<f32>(b) - (p.freq * f32(c) + p.presence));
            }
        }
    }
}
