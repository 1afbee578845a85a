// scan.wgsl: the one dense pass, dispatch (chunks, B). Each workgroup
// reads its CHUNK = 1024 logits of a row once (4 consecutive tokens per
// invocation, so one Philox block serves all four) and, while they are in
// registers, computes:
//   - the input check (any NaN / +inf, SPEC step 1) and the raw max and
//     sum of exp (online softmax) for the logprob;
//   - z (steps 2-4: allowed bitmask, then the overlay's value for the
//     tokens the overlay pass touched) and the max of z with its first
//     index (greedy, NoCandidates);
//   - z / T (step 6), its max and sum of exp (the top-p normaliser), and
//     whether some z / T overflowed to +inf;
//   - plain sampling rows (no min-p / top-k / top-p): the Gumbel-max key
//     and index (step 10), computing the random word and the logarithms
//     only for tokens within GUMBEL_SPAN of the chunk's max;
//   - filtered rows: the chunk's CAND largest keys of z / T among each
//     invocation's two best, sorted (a bitonic sort of 512 pairs in
//     workgroup memory), and the largest key left out (finish.wgsl uses it
//     to prove its candidates complete);
//   - rows that ask for top logprobs: the chunk's top_n largest raw logits
//     (a bitonic sort of all 1024 in workgroup memory), ties to the lower
//     index, which finish.wgsl merges.
// It writes these as partials and candidates; finish.wgsl merges them.

var<workgroup> wg_flags: atomic<u32>;
var<workgroup> wg_tmax: atomic<u32>;
var<workgroup> wg_mode: u32;

const MODE_GREEDY: u32 = 0u;
const MODE_PLAIN: u32 = 1u;
const MODE_FILTERED: u32 = 2u;
// Bit added to the mode of rows that ask for top logprobs.
const MODE_TOPLP: u32 = 16u;
// Pairs sorted per chunk: two per invocation.
const KEPT: u32 = 2u * WG;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.batch) {
        return;
    }
    let p = row_params(r);
    if (lid == 0u) {
        atomicStore(&wg_flags, 0u);
        atomicStore(&wg_tmax, 0u);
        var m = MODE_PLAIN;
        if ((p.flags & FLAG_GREEDY) != 0u) {
            m = MODE_GREEDY;
        } else if ((p.flags & FILTERS) != 0u) {
            m = MODE_FILTERED;
        }
        if ((p.flags & FLAG_TOPLP) != 0u) {
            m |= MODE_TOPLP;
        }
        wg_mode = m;
    }
    let mode_bits = workgroupUniformLoad(&wg_mode);
    let mode = mode_bits & 15u;
    let c = wg.x;
    let base = c * CHUNK + lid * ITEMS;
    var raw = vec2<f32>(f32_neg_inf(), 0.0);
    var tms = vec2<f32>(f32_neg_inf(), 0.0);
    var zkey = 0u;
    var zarg = NONE;
    var flags = 0u;
    var tkeys = array<u32, 4>(0u, 0u, 0u, 0u);
    var tzt = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    // Keys of the raw logits (top logprobs), 0 past the row's end.
    var rkeys = array<u32, 4>(0u, 0u, 0u, 0u);
    // (Verification needs the mass of every row: its p of the draft.)
    let want_mass = (p.flags & FLAG_TOP_P) != 0u || dims.vmode != 0u;
    let ex = excluded(r);
    for (var q = 0u; q < ITEMS; q++) {
        let i = base + q;
        if (i < dims.vocab) {
            let rb = raw_bits(r, i);
            // Step 1: input check (NaN or +inf makes the row invalid).
            if (bits_is_invalid_logit(rb)) {
                flags |= 1u;
            } else {
                if ((mode_bits & MODE_TOPLP) != 0u) {
                    rkeys[q] = okey(bitcast<f32>(rb));
                }
                if (!bits_is_neg_inf(rb)) {
                    raw = add_ms(raw, bitcast<f32>(rb));
                }
            }
            let zb = z_bits(r, i, p);
            // +inf (a bias or penalty that overflowed) is a candidate.
            if (!bits_is_neg_inf(zb) && !bits_is_nan(zb)) {
                let z = bitcast<f32>(zb);
                let k = okey(z);
                if (k > zkey) {
                    zkey = k;
                    zarg = i;
                }
                let zt = scale(z, p);
                let ztb = bitcast<u32>(zt);
                if (!bits_is_neg_inf(ztb)) {
                    tkeys[q] = okey(zt);
                    tzt[q] = zt;
                    if (ztb == F32_POS_INF_BITS) {
                        flags |= 2u;
                    } else if (want_mass) {
                        tms = add_ms(tms, zt);
                    }
                }
            }
        }
    }
    if (flags != 0u) {
        atomicOr(&wg_flags, flags);
    }
    var gkey = 0u;
    var garg = NONE;
    if (mode == MODE_PLAIN) {
        // The chunk's max of z / T bounds which tokens can win (without
        // the excluded token, which cannot).
        var m = 0u;
        for (var q = 0u; q < ITEMS; q++) {
            if (base + q != ex) {
                m = max(m, tkeys[q]);
            }
        }
        atomicMax(&wg_tmax, m);
    }
    workgroupBarrier();
    // Step 10 for rows without filters: the chunk's Gumbel-max.
    if (mode == MODE_PLAIN) {
        let tmax_key = atomicLoad(&wg_tmax);
        if (tmax_key != 0u) {
            let best_zt = sortable_key_to_f32(tmax_key);
            let step = row_step(r);
            var block = vec4<u32>(0u);
            var have_block = false;
            for (var q = 0u; q < ITEMS; q++) {
                if (tkeys[q] != 0u && base + q != ex && !hopeless(tzt[q], best_zt)) {
                    if (!have_block) {
                        block = philox4x32_10(
                            philox_counter(base, step.x, step.y),
                            philox_key(p.seed_lo, p.seed_hi));
                        have_block = true;
                    }
                    let g = gumbel_key_word(tzt[q], block[q]);
                    if (g > gkey || garg == NONE) {
                        gkey = g;
                        garg = base + q;
                    }
                }
            }
        }
    }
    reduce_partials(lid, raw, vec2<u32>(zkey, zarg), vec2<u32>(gkey, garg), tms);
    if (lid == 0u) {
        scratch[part(r, c, P_FLAGS)] = atomicLoad(&wg_flags);
        scratch[part(r, c, P_RMAX)] = wa[0];
        scratch[part(r, c, P_RSUM)] = wb[0];
        scratch[part(r, c, P_ZKEY)] = wa[256];
        scratch[part(r, c, P_ZARG)] = wb[256];
        scratch[part(r, c, P_GKEY)] = wa[512];
        scratch[part(r, c, P_GARG)] = wb[512];
        scratch[part(r, c, P_TMAX)] = wa[768];
        scratch[part(r, c, P_TSUM)] = wb[768];
        scratch[part(r, c, P_EXCL)] = 0u;
    }
    if (mode == MODE_FILTERED) {
        filtered_candidates(r, c, lid, tkeys);
    }
    if ((mode_bits & MODE_TOPLP) != 0u) {
        top_raw(r, c, lid, p.top_n, rkeys);
    }
}

// Sorts the first n (a power of two, 512 or 1024) (key, index) pairs of
// wa/wb, larger key first, lower index on ties, NONE last: a bitonic
// network, each invocation doing n / 512 compare-exchanges a stage. Every
// invocation calls it, in uniform control flow.
fn sort_pairs(lid: u32, n: u32) {
    for (var k = 2u; k <= n; k <<= 1u) {
        for (var j = k >> 1u; j > 0u; j >>= 1u) {
            for (var q = lid; q < n / 2u; q += WG) {
                let a = ((q & ~(j - 1u)) << 1u) | (q & (j - 1u));
                let b = a + j;
                let first = (a & k) == 0u;
                let ka = wa[a];
                let ia = wb[a];
                let kb = wa[b];
                let ib = wb[b];
                if (ka_before(kb, ib, ka, ia) == first) {
                    wa[a] = kb;
                    wb[a] = ib;
                    wa[b] = ka;
                    wb[b] = ia;
                }
            }
            workgroupBarrier();
        }
    }
}

// The chunk's top_n largest raw keys, ties to the lower index: all 1024
// (key, index) pairs sorted in workgroup memory (bitonic, two
// compare-exchanges per invocation and stage). Uniform control flow.
fn top_raw(r: u32, c: u32, lid: u32, n: u32, rkeys: array<u32, 4>) {
    // (wa/wb may still be read by the section before.)
    workgroupBarrier();
    for (var q = 0u; q < ITEMS; q++) {
        let i = c * CHUNK + lid * ITEMS + q;
        wa[lid * ITEMS + q] = rkeys[q];
        wb[lid * ITEMS + q] = select(NONE, i, rkeys[q] != 0u);
    }
    workgroupBarrier();
    sort_pairs(lid, CHUNK);
    if (lid < n) {
        let w = tl_at(r, c * TOPN + lid);
        cands[w] = wa[lid];
        cands[w + 1u] = wb[lid];
    }
}

// Step 8's candidates of a filtered row (see the header). Uniform
// control flow.
fn filtered_candidates(r: u32, c: u32, lid: u32, tkeys: array<u32, 4>) {
    // (Invocation 0 has read the reduction out of wa/wb before they are
    // reused.)
    workgroupBarrier();
    // Candidates. Each invocation keeps two of its four tokens (larger
    // key, then lower index) and reports the best of the rest as left out; the 512
    // kept pairs are sorted (bitonic, in workgroup memory) and the first
    // CAND stay. The largest key left out anywhere in the chunk is the
    // larger of the 65th sorted key and every invocation's third best.
    // The tokens are regrouped by stride WG first (invocation i takes
    // tokens i, i + 256, ...), so a run of adjacent large logits spreads
    // over many invocations instead of crowding one.
    for (var q = 0u; q < ITEMS; q++) {
        wa[lid * ITEMS + q] = tkeys[q];
    }
    workgroupBarrier();
    var gk = array<u32, 4>(0u, 0u, 0u, 0u);
    for (var q = 0u; q < ITEMS; q++) {
        gk[q] = wa[lid + q * WG];
    }
    workgroupBarrier();
    // kept[0] >= kept[1] in (key, index) order; a token pushed out of
    // them (or never let in) is left out.
    var kk = array<u32, 2>(0u, 0u);
    var ki = array<u32, 2>(NONE, NONE);
    var out_key = 0u;
    for (var q = 0u; q < ITEMS; q++) {
        if (gk[q] == 0u) {
            continue;
        }
        var kc = gk[q];
        var ic = c * CHUNK + lid + q * WG;
        for (var slot = 0u; slot < 2u; slot++) {
            if (ka_before(kc, ic, kk[slot], ki[slot])) {
                let tk = kk[slot];
                let ti = ki[slot];
                kk[slot] = kc;
                ki[slot] = ic;
                kc = tk;
                ic = ti;
            }
        }
        if (ic != NONE) {
            out_key = max(out_key, kc);
        }
    }
    // wg_tmax is still 0 in a filtered row (only plain rows set it): it
    // now collects the third bests.
    if (out_key != 0u) {
        atomicMax(&wg_tmax, out_key);
    }
    for (var slot = 0u; slot < 2u; slot++) {
        wa[lid * 2u + slot] = kk[slot];
        wb[lid * 2u + slot] = ki[slot];
    }
    workgroupBarrier();
    sort_pairs(lid, KEPT);
    if (lid < CAND) {
        let w = cand_at(r, c * CAND + lid);
        cands[w] = wa[lid];
        cands[w + 1u] = wb[lid];
    }
    if (lid == 0u) {
        scratch[part(r, c, P_EXCL)] = max(wa[CAND], atomicLoad(&wg_tmax));
    }
}
