// overlay.wgsl: SPEC steps 2-4 for the few tokens they touch, one
// workgroup per row (dispatch (1, B)); rows without a table leave at once.
// The row's hash table is cleared, every token of its lists is inserted
// with the lists it belongs to (banned, EOS while n < min_new_tokens, bias,
// prompt and output for the repetition penalty, output counts for the
// frequency and presence penalties), then each slot computes its token's
// processed value in SPEC order from the masked raw logit. The dense pass
// looks tokens up in the table, so no dense copy of the row is made.

const M_BANNED: u32 = 1u;
const M_EOS: u32 = 2u;
const M_BIAS: u32 = 4u;
const M_PROMPT: u32 = 8u;
const M_SEEN: u32 = 16u;

var<workgroup> wg_on: u32;

// Inserts token t (or finds it) and returns its slot.
fn ov_insert(p: RowParams, t: u32) -> u32 {
    var s = ov_hash(t, p.ov_cap);
    // Each slot is tried until it is won or seen taken; a weak exchange may
    // fail spuriously, so a slot read back as empty is tried again.
    for (var n = 0u; n < 4u * p.ov_cap; n++) {
        let res = atomicCompareExchangeWeak(&ovtab[ov_word(p, OV_KEY, s)], 0u, t + 1u);
        if (res.exchanged || res.old_value == t + 1u) {
            return s;
        }
        if (res.old_value != 0u) {
            s = (s + 1u) & (p.ov_cap - 1u);
        }
    }
    return NONE;
}

fn ov_mark(p: RowParams, t: u32, bit: u32) -> u32 {
    let s = ov_insert(p, t);
    if (s != NONE) {
        atomicOr(&ovtab[ov_word(p, OV_META, s)], bit);
    }
    return s;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (lid == 0u) {
        var on = 0u;
        if (r < dims.batch && (row_params(r).flags & FLAG_OVERLAY) != 0u) {
            on = 1u;
        }
        wg_on = on;
    }
    if (workgroupUniformLoad(&wg_on) == 0u) {
        return;
    }
    let p = row_params(r);
    for (var k = lid; k < OV_FIELDS * p.ov_cap; k += WG) {
        atomicStore(&ovtab[p.ov_off + k], 0u);
    }
    storageBarrier();
    for (var k = lid; k < p.banned_len; k += WG) {
        ov_mark(p, lists[p.banned_off + k], M_BANNED);
    }
    if (row_n(r) < p.min_new) {
        for (var k = lid; k < p.eos_len; k += WG) {
            ov_mark(p, lists[p.eos_off + k], M_EOS);
        }
    }
    for (var k = lid; k < p.bias_len; k += WG) {
        let s = ov_mark(p, lists[p.bias_off + k], M_BIAS);
        if (s != NONE) {
            atomicStore(&ovtab[ov_word(p, OV_BIAS, s)], lists[p.bias_off + p.bias_len + k]);
        }
    }
    let seen = state[st_seen_len(prow(r))];
    if (p.rep != 1.0) {
        for (var k = lid; k < p.prompt_len; k += WG) {
            ov_mark(p, lists[p.prompt_off + k], M_PROMPT);
        }
    }
    // Rows with penalties always have a token-count slot (the host sees to it).
    if ((p.rep != 1.0 || p.freq != 0.0 || p.presence != 0.0) && p.seen_slot != NONE) {
        for (var k = lid; k < seen; k += WG) {
            let s = ov_mark(p, state[st_seen_tok(p.seen_slot, k)], M_SEEN);
            if (s != NONE) {
                atomicStore(&ovtab[ov_word(p, OV_COUNT, s)], state[st_seen_cnt(p.seen_slot, k)]);
            }
        }
    }
    storageBarrier();
    // Verification: the drafts before this position count as generated.
    if ((p.rep != 1.0 || p.freq != 0.0 || p.presence != 0.0) && p.seen_slot != NONE) {
        for (var k = lid; k < vpos(r); k += WG) {
            let s = ov_mark(p, draft_token(prow(r), k), M_SEEN);
            if (s != NONE) {
                atomicAdd(&ovtab[ov_word(p, OV_COUNT, s)], 1u);
            }
        }
    }
    storageBarrier();
    for (var s = lid; s < p.ov_cap; s += WG) {
        let key = atomicLoad(&ovtab[ov_word(p, OV_KEY, s)]);
        if (key == 0u) {
            continue;
        }
        let t = key - 1u;
        let mem = atomicLoad(&ovtab[ov_word(p, OV_META, s)]);
        var b = masked_bits(r, t, p);
        // Step 2: banned tokens, EOS under min_new_tokens.
        if ((mem & (M_BANNED | M_EOS)) != 0u) {
            b = F32_NEG_INF_BITS;
        }
        // Step 3: logit bias.
        if ((mem & M_BIAS) != 0u && !bits_is_neg_inf(b)) {
            b = bitcast<u32>(bitcast<f32>(b) + bitcast<f32>(atomicLoad(&ovtab[ov_word(p, OV_BIAS, s)])));
        }
        // Step 4: repetition over prompt and output (once per token), then
        // frequency and presence over the output.
        if (p.rep != 1.0 && (mem & (M_PROMPT | M_SEEN)) != 0u && !bits_is_neg_inf(b)) {
            let x = bitcast<f32>(b);
            var y = x * p.rep;
            if (x > 0.0) {
                y = x / p.rep;
            }
            b = bitcast<u32>(y);
        }
        let c = atomicLoad(&ovtab[ov_word(p, OV_COUNT, s)]);
        if ((mem & M_SEEN) != 0u && (p.freq != 0.0 || p.presence != 0.0) && c > 0u && !bits_is_neg_inf(b)) {
            b = bitcast<u32>(bitcast<f32>(b) - (p.freq * f32(c) + p.presence));
        }
        atomicStore(&ovtab[ov_word(p, OV_VAL, s)], b);
    }
}
