// accept.wgsl: verification, dispatch (1, B), one workgroup per row after
// finish.wgsl (and recover.wgsl with draft probabilities). Walks the
// row's positions in order (SPEC.md "Speculative decoding"): accepts
// draft d_j when u_j * q_j(d_j) < p_j(d_j), else emits the recovered token
// and stops; after k acceptances emits the bonus token (the last
// position's sample). Writes the row's results after the virtual rows'
// outputs (see out_verify) and advances row b's state once per emitted
// token. With draft probabilities, first merges each position's chunk
// partials from recover.wgsl (fixed order) and checks q: a row of q that
// does not sum to 1 within 1e-3, holds a bad value or gives its draft
// token 0 makes the row's status ST_BAD_DRAFT, with nothing emitted. So
// does a draft token >= V (possible only for drafts recorded from a device
// buffer; the host path refuses them before recording).

const MAX_POS: u32 = 33u;
var<workgroup> wg_rec: array<u32, 32>;
var<workgroup> wg_bad: array<u32, 32>;
var<workgroup> wg_tok: array<u32, 33>;
var<workgroup> wg_m: u32;
var<workgroup> wg_found: atomic<u32>;

// Output words of the verification results, after the B * P virtual rows'
// 4 words each: per row the count emitted [B], the drafts accepted [B],
// the status [B], then the tokens [B, P] and their logprobs [B, P].
fn out_verify(field: u32, b: u32, i: u32) -> u32 {
    let rows = dims.batch / dims.positions;
    let base = dims.batch * 4u;
    if (field < 3u) {
        return base + field * rows + b;
    }
    return base + 3u * rows + (field - 3u) * dims.batch + b * dims.positions + i;
}

// The acceptance uniform u_j: lane 0 of Philox at counter (0, s_j, 1).
fn accept_uniform(p: RowParams, vr: u32) -> f32 {
    let st = row_step(vr);
    let w = philox4x32_10(vec4<u32>(0u, st.x, st.y, 1u), philox_key(p.seed_lo, p.seed_hi));
    return uniform_from_word(w.x);
}

fn vr_logprob(vr: u32, t: u32) -> u32 {
    return logprob_bits(vr, t, bitcast<f32>(scratch[rs(vr, RS_RMAX)]), bitcast<f32>(scratch[rs(vr, RS_RSUM)]));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wg.y;
    let P = dims.positions;
    let k = P - 1u;
    if (b * P >= dims.batch) {
        return;
    }
    let first = b * P;
    let p = params[b];
    let with_q = dims.vmode == 2u;
    if (with_q) {
        for (var j = 0u; j < k; j++) {
            let vr = first + j;
            var bk = 0u;
            var bi = NONE;
            var qs = 0.0;
            var bad = 0u;
            // Each invocation its chunks in order, then a fixed tree.
            for (var c = lid; c < dims.chunks; c += WG) {
                let gk = scratch[part(vr, c, P_GKEY)];
                let ga = scratch[part(vr, c, P_GARG)];
                if (ka_before(gk, ga, bk, bi)) {
                    bk = gk;
                    bi = ga;
                }
                qs += bitcast<f32>(scratch[part(vr, c, P_QSUM)]);
                bad |= scratch[part(vr, c, P_QBAD)];
            }
            workgroupBarrier();
            reduce_recovered(lid, bk, bi, qs, bad);
            if (lid == 0u) {
                wg_rec[j] = wb[0];
                let sum = bitcast<f32>(wa[256]);
                let qd = bitcast<f32>(cands[dims.q_off + (b * k + j) * dims.vocab + draft_token(b, j)]);
                wg_bad[j] = select(0u, 1u, wb[256] != 0u || !(abs(sum - 1.0) <= 1e-3) || !(qd > 0.0));
            }
            workgroupBarrier();
        }
    }
    if (lid == 0u) {
        var status = ST_OK;
        var m = 0u;
        var acc = 0u;
        if (with_q) {
            for (var j = 0u; j < k; j++) {
                if (wg_bad[j] != 0u) {
                    status = ST_BAD_DRAFT;
                }
            }
        }
        for (var j = 0u; j < k; j++) {
            if (draft_raw(b, j) >= dims.vocab) {
                status = ST_BAD_DRAFT;
            }
        }
        var done = status != ST_OK;
        for (var j = 0u; j < k && !done; j++) {
            let vr = first + j;
            let st = outbuf[dims.batch * 2u + vr];
            if (st != ST_OK) {
                status = st;
                done = true;
                break;
            }
            let d = draft_token(b, j);
            var qd = 1.0;
            if (with_q) {
                qd = bitcast<f32>(cands[dims.q_off + (b * k + j) * dims.vocab + d]);
            }
            let pd = bitcast<f32>(scratch[rs(vr, RS_PD)]);
            if (accept_uniform(p, vr) * qd < pd) {
                wg_tok[m] = d;
                outbuf[out_verify(4u, b, m)] = vr_logprob(vr, d);
                m += 1u;
                acc += 1u;
                continue;
            }
            // Rejected: the recovered token.
            var t = outbuf[vr];
            let onehot = scratch[rs(vr, RS_ONEHOT)];
            if (onehot != NONE) {
                t = onehot;
            } else if (with_q && wg_rec[j] != NONE) {
                t = wg_rec[j];
            }
            if (t == NONE) {
                status = ST_NONE;
            } else {
                wg_tok[m] = t;
                outbuf[out_verify(4u, b, m)] = vr_logprob(vr, t);
                m += 1u;
            }
            done = true;
        }
        if (!done) {
            // Every draft accepted: the bonus token of position k + 1.
            let vr = first + k;
            let st = outbuf[dims.batch * 2u + vr];
            if (st != ST_OK) {
                status = st;
            } else {
                wg_tok[m] = outbuf[vr];
                outbuf[out_verify(4u, b, m)] = outbuf[dims.batch + vr];
                m += 1u;
            }
        }
        for (var i = 0u; i < P; i++) {
            outbuf[out_verify(3u, b, i)] = select(NONE, wg_tok[i], i < m);
            if (i >= m) {
                outbuf[out_verify(4u, b, i)] = 0x7FC00000u;
            }
        }
        outbuf[out_verify(0u, b, 0u)] = m;
        outbuf[out_verify(1u, b, 0u)] = acc;
        outbuf[out_verify(2u, b, 0u)] = status;
        wg_m = m;
    }
    // State update, once per emitted token: c_t += 1, n += 1, s += 1.
    let m = workgroupUniformLoad(&wg_m);
    let slot = p.seen_slot;
    for (var e = 0u; e < m; e++) {
        let t = workgroupUniformLoad(&wg_tok[e]);
        if (lid == 0u) {
            atomicStore(&wg_found, NONE);
        }
        workgroupBarrier();
        if (slot != NONE) {
            let len = state[st_seen_len(b)];
            for (var q = lid; q < len; q += WG) {
                if (state[st_seen_tok(slot, q)] == t) {
                    atomicMin(&wg_found, q);
                }
            }
        }
        workgroupBarrier();
        if (lid == 0u && slot != NONE) {
            let f = atomicLoad(&wg_found);
            if (f != NONE) {
                state[st_seen_cnt(slot, f)] += 1u;
            } else {
                let len = state[st_seen_len(b)];
                if (len < dims.cap) {
                    state[st_seen_tok(slot, len)] = t;
                    state[st_seen_cnt(slot, len)] = 1u;
                    state[st_seen_len(b)] = len + 1u;
                }
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        state[st_n(b)] += m;
        let lo = state[st_step_lo(b)];
        let nlo = lo + m;
        state[st_step_lo(b)] = nlo;
        if (nlo < lo) {
            state[st_step_hi(b)] += 1u;
        }
    }
}
