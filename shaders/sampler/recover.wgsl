// recover.wgsl: verification with draft probabilities only, dispatch
// (chunks, B * (k + 1)), after finish.wgsl. For each judged position (all
// but the bonus one) the recovered token of a rejection is the
// Gumbel-max of ln(p_i - q_i) + g_i over the tokens where p_i > q_i
// (SPEC.md "Speculative decoding"), g_i the step-10 Gumbel value of the
// position's step. Each workgroup covers 1024 tokens: it rebuilds p_i
// from what finish.wgsl wrote (RS_* words), reads q_i (the draft
// probabilities, bound where the candidates are otherwise: `cands`), and
// writes its chunk's best (key, index) over P_GKEY / P_GARG (finish has
// read those), the chunk's sum of q and whether q held a negative or
// non-finite value. accept.wgsl merges the chunks in a fixed order.

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.batch || vpos(r) + 1u >= dims.positions) {
        return;
    }
    let p = row_params(r);
    let c = wg.x;
    let k = dims.positions - 1u;
    let qrow = dims.q_off + (prow(r) * k + vpos(r)) * dims.vocab;
    let live = outbuf[dims.batch * 2u + r] == ST_OK;
    let onehot = scratch[rs(r, RS_ONEHOT)];
    let theta = scratch[rs(r, RS_THETA)];
    let norm = bitcast<f32>(scratch[rs(r, RS_NORM)]);
    let ztmax = bitcast<f32>(scratch[rs(r, RS_ZTMAX)]);
    let step = row_step(r);
    let base = c * CHUNK + lid * ITEMS;
    let block = philox4x32_10(philox_counter(base, step.x, step.y), philox_key(p.seed_lo, p.seed_hi));
    var best = 0u;
    var arg = NONE;
    var qsum = 0.0;
    var bad = 0u;
    for (var q = 0u; q < ITEMS; q++) {
        let i = base + q;
        if (i >= dims.vocab) {
            continue;
        }
        let qb = cands[qrow + i];
        let qi = bitcast<f32>(qb);
        if (bits_is_nan(qb) || (qb & 0x7FFFFFFFu) == 0x7F800000u || qi < 0.0) {
            bad = 1u;
            continue;
        }
        qsum += qi;
        if (!live) {
            continue;
        }
        var pi = 0.0;
        if (onehot != NONE) {
            pi = select(0.0, 1.0, i == onehot);
        } else {
            let zb = z_bits(r, i, p);
            if (!bits_is_neg_inf(zb) && !bits_is_nan(zb)) {
                let zt = scale(bitcast<f32>(zb), p);
                if (!bits_is_neg_inf(bitcast<u32>(zt)) && okey(zt) >= theta) {
                    pi = exp(zt - ztmax) / norm;
                }
            }
        }
        let diff = pi - qi;
        if (diff > 0.0) {
            let g = gumbel_key_word(ln_f32(diff), block[q]);
            if (arg == NONE || g > best) {
                best = g;
                arg = i;
            }
        }
    }
    reduce_recovered(lid, best, arg, qsum, bad);
    if (lid == 0u) {
        scratch[part(r, c, P_GKEY)] = wa[0];
        scratch[part(r, c, P_GARG)] = wb[0];
        scratch[part(r, c, P_QSUM)] = wa[256];
        scratch[part(r, c, P_QBAD)] = wb[256];
    }
}
