// finish.wgsl: one workgroup per row (dispatch (1, B)). Merges the chunk
// partials of scan.wgsl in a fixed order (so nothing depends on timing),
// sets the status, and finishes every row: token, logprob, status and the
// state update (SPEC steps 11-12).
//
// Greedy and plain rows take the merged argmax / Gumbel-max. Filtered rows
// run min-p, top-k and top-p (steps 7-9) as radix selections over a
// source, then the Gumbel-max over the survivors (step 10). The source is
// first the candidates (each chunk's CAND largest keys): every token whose
// key is above the largest key any chunk left out (`excl`) is among them,
// so a threshold strictly above `excl` was computed from complete data.
// Where a threshold is not (a flat row under top-p 0.999 or min-p 0.001,
// top-k above CAND, ties across the cut), the same selection runs again
// with the whole row as the source: the rare case costs time, never a
// dispatch, and the token is the same. scratch[RS_PATH] records which
// source finished the row.

var<workgroup> hc: array<atomic<u32>, 256>;
var<workgroup> hlo: array<atomic<u32>, 256>;
var<workgroup> hhi: array<atomic<u32>, 256>;
var<workgroup> wg_flags: atomic<u32>;
var<workgroup> wg_excl: atomic<u32>;
var<workgroup> wg_sel: atomic<u32>;
var<workgroup> wg_last: atomic<u32>;
var<workgroup> wg_found: atomic<u32>;
var<workgroup> wg_u: u32;
// Selection state, written by one invocation, read with workgroupUniformLoad.
var<workgroup> ws_prefix: u32;
var<workgroup> ws_above_c: u32;
var<workgroup> ws_above_lo: u32;
var<workgroup> ws_above_hi: u32;
var<workgroup> ws_total_c: u32;
var<workgroup> ws_hit: u32;

// ST_OK, ST_INVALID and ST_NONE are the output status codes (generated
// from Status::code); these two are internal to this pass.
const ST_FILTER: u32 = 3u;
const ST_POS_INF: u32 = 4u;

fn bcast(lid: u32, v: u32) -> u32 {
    if (lid == 0u) {
        wg_u = v;
    }
    return workgroupUniformLoad(&wg_u);
}

// Entry j of the source: (key of z / T, token); key 0 = not a candidate.
fn entry(r: u32, p: RowParams, full: bool, j: u32) -> vec2<u32> {
    if (!full) {
        let w = cand_at(r, j);
        return vec2<u32>(cands[w], cands[w + 1u]);
    }
    let zb = z_bits(r, j, p);
    if (bits_is_neg_inf(zb) || bits_is_nan(zb)) {
        return vec2<u32>(0u, j);
    }
    let zt = scale(bitcast<f32>(zb), p);
    if (bits_is_neg_inf(bitcast<u32>(zt))) {
        return vec2<u32>(0u, j);
    }
    return vec2<u32>(okey(zt), j);
}

fn source_len(full: bool) -> u32 {
    return select(dims.chunks * CAND, dims.vocab, full);
}

// exp(z / T - max) in 64-bit fixed point, 2^31 = 1 (integer sums: the same
// total whatever the order of the atomic additions).
fn mass_of(key: u32, ztmax: f32) -> u32 {
    return u32(exp(sortable_key_to_f32(key) - ztmax) * 2147483648.0 + 0.5);
}

// One 8-bit digit of a radix selection over the source entries with key
// >= theta whose higher digits equal `prefix`: histogram (counts, and
// masses when `pmode`), then a scan from the largest keys down that picks
// the bucket where the running count reaches `k_target` (top-k) or the
// running mass reaches `goal` (top-p). Results in ws_*.
fn select_digit(r: u32, p: RowParams, full: bool, lid: u32, digit: u32, pmode: bool,
    theta: u32, ztmax: f32, k_target: u32, goal: vec2<u32>) {
    atomicStore(&hc[lid], 0u);
    atomicStore(&hlo[lid], 0u);
    atomicStore(&hhi[lid], 0u);
    if (lid == 0u) {
        atomicStore(&wg_sel, NONE);
        atomicStore(&wg_last, 0u);
    }
    let shift = 24u - 8u * digit;
    let prefix = workgroupUniformLoad(&ws_prefix);
    let n = source_len(full);
    for (var j = lid; j < n; j += WG) {
        let e = entry(r, p, full, j);
        let key = e.x;
        if (key != 0u && key >= theta && (digit == 0u || (key >> (shift + 8u)) == prefix)) {
            let b = (key >> shift) & 255u;
            atomicAdd(&hc[b], 1u);
            if (pmode) {
                let m = mass_of(key, ztmax);
                let old = atomicAdd(&hlo[b], m);
                if (old + m < old) {
                    atomicAdd(&hhi[b], 1u);
                }
            }
        }
    }
    workgroupBarrier();
    // q = 0 is bucket 255 (largest keys). Inclusive Hillis-Steele scan.
    let q = lid;
    let bucket = 255u - q;
    let own_c = atomicLoad(&hc[bucket]);
    wa[q] = own_c;
    wb[q] = atomicLoad(&hlo[bucket]);
    wa[256u + q] = atomicLoad(&hhi[bucket]);
    workgroupBarrier();
    for (var off = 1u; off < 256u; off <<= 1u) {
        var cnt = wa[q];
        var m = vec2<u32>(wb[q], wa[256u + q]);
        if (q >= off) {
            cnt += wa[q - off];
            m = add64(m, vec2<u32>(wb[q - off], wa[256u + q - off]));
        }
        workgroupBarrier();
        wa[q] = cnt;
        wb[q] = m.x;
        wa[256u + q] = m.y;
        workgroupBarrier();
    }
    let above_c = workgroupUniformLoad(&ws_above_c);
    let above_m = vec2<u32>(workgroupUniformLoad(&ws_above_lo), workgroupUniformLoad(&ws_above_hi));
    let incl_c = above_c + wa[q];
    let incl_m = add64(above_m, vec2<u32>(wb[q], wa[256u + q]));
    var excl_c = above_c;
    var excl_m = above_m;
    if (q > 0u) {
        excl_c += wa[q - 1u];
        excl_m = add64(above_m, vec2<u32>(wb[q - 1u], wa[256u + q - 1u]));
    }
    if (own_c > 0u) {
        atomicMax(&wg_last, q);
        var hit = false;
        if (pmode) {
            hit = ge64(incl_m, goal) && !ge64(excl_m, goal);
        } else {
            hit = incl_c >= k_target && excl_c < k_target;
        }
        if (hit) {
            atomicMin(&wg_sel, q);
        }
    }
    workgroupBarrier();
    let found = atomicLoad(&wg_sel);
    var sel = found;
    if (sel == NONE) {
        sel = atomicLoad(&wg_last);
    }
    if (q == 255u) {
        ws_total_c = wa[255];
    }
    if (q == sel) {
        ws_prefix = select((prefix << 8u) | bucket, bucket, digit == 0u);
        ws_above_c = excl_c;
        ws_above_lo = excl_m.x;
        ws_above_hi = excl_m.y;
        ws_hit = select(0u, 1u, found != NONE);
    }
    workgroupBarrier();
}

// The largest key at position k - 1 of any chunk's sorted candidates
// (0 where a chunk has fewer than k): a lower bound of the row's k-th
// largest key. Workgroup-uniform.
fn kth_bound(r: u32, lid: u32, k: u32) -> u32 {
    if (lid == 0u) {
        atomicStore(&wg_sel, 0u);
    }
    workgroupBarrier();
    var m = 0u;
    for (var c = lid; c < dims.chunks; c += WG) {
        m = max(m, cands[cand_at(r, c * CAND + k - 1u)]);
    }
    atomicMax(&wg_sel, m);
    workgroupBarrier();
    return bcast(lid, atomicLoad(&wg_sel));
}

// The fixed-point mass of the source entries with key >= theta: per
// invocation 64-bit sums, then a fixed tree (no atomics). Uniform.
fn mass_total(r: u32, p: RowParams, full: bool, lid: u32, theta: u32, ztmax: f32) -> vec2<u32> {
    var acc = vec2<u32>(0u, 0u);
    let n = source_len(full);
    for (var j = lid; j < n; j += WG) {
        let key = entry(r, p, full, j).x;
        if (key != 0u && key >= theta) {
            acc = add64(acc, vec2<u32>(mass_of(key, ztmax), 0u));
        }
    }
    workgroupBarrier();
    wa[lid] = acc.x;
    wb[lid] = acc.y;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let m = add64(vec2<u32>(wa[lid], wb[lid]), vec2<u32>(wa[lid + s], wb[lid + s]));
            wa[lid] = m.x;
            wb[lid] = m.y;
        }
        workgroupBarrier();
    }
    return vec2<u32>(workgroupUniformLoad(&wa[0]), workgroupUniformLoad(&wb[0]));
}

fn reset_search(lid: u32) {
    if (lid == 0u) {
        ws_prefix = 0u;
        ws_above_c = 0u;
        ws_above_lo = 0u;
        ws_above_hi = 0u;
        ws_hit = 0u;
    }
    workgroupBarrier();
}

// Step 10: the Gumbel-max over the source entries with key >= theta,
// skipping token `ex` (verification's recovered token; NONE = none). With
// a token skipped the row's max may be the skipped one, so nothing is
// pruned as hopeless.
fn gumbel_pick(r: u32, p: RowParams, full: bool, lid: u32, theta: u32, ztmax: f32, ex: u32) -> u32 {
    var best = 0u;
    var arg = NONE;
    let n = source_len(full);
    for (var j = lid; j < n; j += WG) {
        let e = entry(r, p, full, j);
        if (e.x != 0u && e.x >= theta && e.y != ex) {
            let zt = sortable_key_to_f32(e.x);
            if (ex != NONE || !hopeless(zt, ztmax)) {
                let g = gumbel_key(zt, r, e.y, p);
                if (arg == NONE || ka_before(g, e.y, best, arg)) {
                    best = g;
                    arg = e.y;
                }
            }
        }
    }
    workgroupBarrier();
    wa[lid] = best;
    wb[lid] = arg;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s && ka_before(wa[lid + s], wb[lid + s], wa[lid], wb[lid])) {
            wa[lid] = wa[lid + s];
            wb[lid] = wb[lid + s];
        }
        workgroupBarrier();
    }
    return workgroupUniformLoad(&wb[0]);
}

// Step 11 (output) and Step 12 (state update); `tok` and `status` are
// workgroup-uniform.
fn finish_row(r: u32, lid: u32, tok: u32, status: u32, rmax: f32, rsum: f32) {
    if (lid == 0u) {
        atomicStore(&wg_found, NONE);
    }
    workgroupBarrier();
    // Verification updates the state in accept.wgsl, once per emitted
    // token.
    let slot = params[r].seen_slot;
    let update = status == ST_OK && dims.vmode == 0u;
    if (update && slot != NONE) {
        let len = state[st_seen_len(r)];
        for (var k = lid; k < len; k += WG) {
            if (state[st_seen_tok(slot, k)] == tok) {
                atomicMin(&wg_found, k);
            }
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        let b = dims.batch;
        outbuf[b * 2u + r] = status;
        if (status != ST_OK || tok == NONE) {
            // (A verified position's recovered pick may find no token
            // while the row is fine: its draft was the only survivor.)
            outbuf[r] = NONE;
            outbuf[b + r] = 0x7FC00000u;
        } else {
            outbuf[r] = tok;
            outbuf[b + r] = logprob_bits(r, tok, rmax, rsum);
        }
        if (update) {
            // State update: c_tok += 1, n += 1, s += 1.
            state[st_n(r)] += 1u;
            let lo = state[st_step_lo(r)] + 1u;
            state[st_step_lo(r)] = lo;
            if (lo == 0u) {
                state[st_step_hi(r)] += 1u;
            }
            let f = atomicLoad(&wg_found);
            if (slot == NONE) {
                // Only n and the step are kept for this row.
            } else if (f != NONE) {
                state[st_seen_cnt(slot, f)] += 1u;
            } else {
                let len = state[st_seen_len(r)];
                if (len < dims.cap) {
                    state[st_seen_tok(slot, len)] = tok;
                    state[st_seen_cnt(slot, len)] = 1u;
                    state[st_seen_len(r)] = len + 1u;
                }
            }
        }
    }
}

// Step 11, top logprobs (rows with top_n > 0 and a token): the row's n
// largest raw logits, most probable first, ties to the lower index,
// merged from the chunks' sorted lists by n rounds of a fixed-tree
// argmax over the entries after the last one taken (so the order never
// depends on timing). Also starts the rank counter at 1 (rank.wgsl adds
// the tokens above). Uniform control flow.
fn top_logprobs(r: u32, lid: u32, n: u32, rmax: f32, rsum: f32) {
    if (lid == 0u) {
        atomicStore(&ovtab[dims.rank_off + r], 1u);
    }
    var pk = 0u;
    var pi = NONE;
    let total = dims.chunks * n;
    for (var t = 0u; t < n; t++) {
        var bk = 0u;
        var bi = NONE;
        for (var j = lid; j < total; j += WG) {
            let w = tl_at(r, (j / n) * TOPN + j % n);
            let k = cands[w];
            let i = cands[w + 1u];
            let after = t == 0u || ka_before(pk, pi, k, i);
            if (i != NONE && after && ka_before(k, i, bk, bi)) {
                bk = k;
                bi = i;
            }
        }
        workgroupBarrier();
        wa[lid] = bk;
        wb[lid] = bi;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if (lid < s && ka_before(wa[lid + s], wb[lid + s], wa[lid], wb[lid])) {
                wa[lid] = wa[lid + s];
                wb[lid] = wb[lid + s];
            }
            workgroupBarrier();
        }
        pk = workgroupUniformLoad(&wa[0]);
        pi = workgroupUniformLoad(&wb[0]);
        if (lid == 0u) {
            outbuf[out_pair(r, t)] = pi;
            if (pi == NONE) {
                outbuf[out_pair(r, t) + 1u] = 0x7FC00000u;
            } else {
                outbuf[out_pair(r, t) + 1u] = logprob_bits(r, pi, rmax, rsum);
            }
        }
    }
}

// The top-p goal: top_p * total in the same fixed point (at least one
// unit, so a top_p below 2^-31 still cuts at the first token).
fn top_p_target(top_p: f32, total_f: f32) -> vec2<u32> {
    let tf = top_p * total_f;
    let hi = u32(tf / 4294967296.0);
    let lo = u32(max(tf - f32(hi) * 4294967296.0, 0.0));
    if (hi == 0u && lo == 0u) {
        return vec2<u32>(1u, 0u);
    }
    return vec2<u32>(lo, hi);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.batch) {
        return;
    }
    let p = row_params(r);
    let ex = excluded(r);
    // Verification: this position's draft is judged against p (see
    // verify_outputs).
    let judged = dims.vmode != 0u && vpos(r) + 1u < dims.positions;
    var v_theta = 1u;
    var v_norm = 0.0;
    var onehot = NONE;
    if (lid == 0u) {
        atomicStore(&wg_flags, 0u);
        atomicStore(&wg_excl, 0u);
    }
    workgroupBarrier();
    // Merge the chunk partials: each invocation its chunks in order, then a
    // fixed tree.
    var raw = vec2<f32>(f32_neg_inf(), 0.0);
    var tms = vec2<f32>(f32_neg_inf(), 0.0);
    var zkey = 0u;
    var zarg = NONE;
    var gkey = 0u;
    var garg = NONE;
    var flags = 0u;
    var excl = 0u;
    for (var c = lid; c < dims.chunks; c += WG) {
        flags |= scratch[part(r, c, P_FLAGS)];
        excl = max(excl, scratch[part(r, c, P_EXCL)]);
        raw = merge_ms(raw, vec2<f32>(bitcast<f32>(scratch[part(r, c, P_RMAX)]), bitcast<f32>(scratch[part(r, c, P_RSUM)])));
        tms = merge_ms(tms, vec2<f32>(bitcast<f32>(scratch[part(r, c, P_TMAX)]), bitcast<f32>(scratch[part(r, c, P_TSUM)])));
        let zk = scratch[part(r, c, P_ZKEY)];
        let za = scratch[part(r, c, P_ZARG)];
        if (ka_before(zk, za, zkey, zarg)) {
            zkey = zk;
            zarg = za;
        }
        let gk = scratch[part(r, c, P_GKEY)];
        let ga = scratch[part(r, c, P_GARG)];
        if (ka_before(gk, ga, gkey, garg)) {
            gkey = gk;
            garg = ga;
        }
    }
    atomicOr(&wg_flags, flags);
    atomicMax(&wg_excl, excl);
    reduce_partials(lid, raw, vec2<u32>(zkey, zarg), vec2<u32>(gkey, garg), tms);
    let rmax = bitcast<f32>(workgroupUniformLoad(&wa[0]));
    let rsum = bitcast<f32>(workgroupUniformLoad(&wb[0]));
    let mz_key = workgroupUniformLoad(&wa[256]);
    let mz_arg = workgroupUniformLoad(&wb[256]);
    let mg_arg = workgroupUniformLoad(&wb[512]);
    let tmax_row = bitcast<f32>(workgroupUniformLoad(&wa[768]));
    let tsum = bitcast<f32>(workgroupUniformLoad(&wb[768]));
    let all_flags = bcast(lid, atomicLoad(&wg_flags));
    let row_excl = bcast(lid, atomicLoad(&wg_excl));

    var status = ST_FILTER;
    var tok = NONE;
    let ztmax = scale(sortable_key_to_f32(mz_key), p);
    if ((all_flags & 1u) != 0u) {
        status = ST_INVALID;
    } else if (mz_key == 0u) {
        status = ST_NONE;
    } else if ((p.flags & FLAG_GREEDY) != 0u) {
        // Step 5: greedy, the first index of the largest z.
        status = ST_OK;
        tok = mz_arg;
        onehot = tok;
    } else if (bitcast<u32>(ztmax) == F32_POS_INF_BITS) {
        // Step 6, overflow: the largest z / T is +inf (a tiny temperature or an
        // overflowed bias): the +inf tokens are the only candidates, their
        // Gumbel keys tie at +inf and the lowest index wins. Found by a scan
        // of the row (rare: costs time, not dispatches).
        status = ST_POS_INF;
    } else if (bits_is_neg_inf(bitcast<u32>(ztmax))) {
        // Every finite z / T overflows to -inf: the T -> 0 limit, greedy on
        // the unscaled logits (as the CPU).
        status = ST_OK;
        tok = mz_arg;
        onehot = tok;
    } else if ((p.flags & FILTERS) == 0u) {
        status = ST_OK;
        tok = mg_arg;
        v_norm = tsum * exp(tmax_row - ztmax);
    }
    if (lid == 0u) {
        scratch[rs(r, RS_PATH)] = PATH_NONE;
    }
    if (status == ST_POS_INF) {
        if (lid == 0u) {
            atomicStore(&wg_found, NONE);
        }
        workgroupBarrier();
        for (var i = lid; i < dims.vocab; i += WG) {
            let zb = z_bits(r, i, p);
            if (!bits_is_nan(zb) && bitcast<u32>(scale(bitcast<f32>(zb), p)) == F32_POS_INF_BITS) {
                atomicMin(&wg_found, i);
            }
        }
        workgroupBarrier();
        tok = bcast(lid, atomicLoad(&wg_found));
        status = ST_OK;
        onehot = tok;
    }
    if (status == ST_FILTER) {
        // Step 7: min-p.
        var theta_minp = okey(f32_from_bits(FLOOR_BITS));
        if ((p.flags & FLAG_MIN_P) != 0u) {
            let t = okey(ztmax + p.ln_min_p);
            if (t > theta_minp) {
                theta_minp = t;
            }
        }
        let floor_key = okey(f32_from_bits(FLOOR_BITS));
        for (var attempt = 0u; attempt < 2u; attempt++) {
            let full = attempt == 1u;
            var theta = theta_minp;
            // `complete`: the source holds every token with key >= theta
            // (a threshold above every key left out of the candidates).
            // `exact`: every threshold so far is the one the whole row gives.
            var complete = full || row_excl == 0u || theta > row_excl;
            var exact = true;
            // Step 8: top-k, the k-th largest key.
            if ((p.flags & FLAG_TOP_K) != 0u) {
                // Among the candidates, the k-th largest key of any one
                // chunk is a lower bound of the row's k-th largest (when it
                // survives min-p): the search can skip everything below.
                var start = theta;
                if (!full && p.top_k <= CAND) {
                    start = max(theta, kth_bound(r, lid, p.top_k));
                }
                reset_search(lid);
                select_digit(r, p, full, lid, 0u, false, start, ztmax, p.top_k, vec2<u32>(0u));
                // Fewer than k survivors: top-k keeps them all.
                let survivors = workgroupUniformLoad(&ws_total_c);
                if (survivors >= p.top_k) {
                    for (var d = 1u; d < 4u; d++) {
                        select_digit(r, p, full, lid, d, false, start, ztmax, p.top_k, vec2<u32>(0u));
                    }
                    theta = max(theta, workgroupUniformLoad(&ws_prefix));
                    complete = full || row_excl == 0u || theta > row_excl;
                }
                // A count (or k-th key) over an incomplete source is not
                // the row's.
                exact = complete;
            }
            // Step 9: top-p over the survivors, normalised by their mass:
            // summed over the source when it holds every survivor, else
            // (when every token survives so far) the dense pass's sum.
            if ((p.flags & FLAG_TOP_P) != 0u && exact) {
                let dense_total = !complete && theta == floor_key;
                if (complete || dense_total) {
                    var tf = 0.0;
                    if (dense_total) {
                        tf = tsum * exp(tmax_row - ztmax) * 2147483648.0;
                    } else {
                        let total_m = mass_total(r, p, full, lid, theta, ztmax);
                        tf = f32(total_m.y) * 4294967296.0 + f32(total_m.x);
                    }
                    let goal = top_p_target(p.top_p, tf);
                    // The cut lies at or above max - D when the tokens
                    // below it (each under e^-D of the max, at most V of
                    // them) cannot hold the 1 - top_p of the mass the cut
                    // leaves out: D = ln(V / ((1 - top_p) total)) + 1.
                    // Candidates only, with room for rounding; never
                    // reaching the goal then sends the row to the full
                    // path.
                    var start = theta;
                    let spare = (1.0 - p.top_p) * tf;
                    let pruned = !full && spare > 8.0 * f32(dims.vocab);
                    if (pruned) {
                        let lp = ztmax - (log(f32(dims.vocab) * 2147483648.0 / spare) + 1.0);
                        start = max(theta, okey(lp));
                    }
                    reset_search(lid);
                    for (var d = 0u; d < 4u; d++) {
                        select_digit(r, p, full, lid, d, true, start, ztmax, 0u, goal);
                    }
                    let hit = workgroupUniformLoad(&ws_hit);
                    theta = max(theta, workgroupUniformLoad(&ws_prefix));
                    // Never reaching the goal keeps every survivor: right
                    // when they are all in the source and none was skipped,
                    // unknown otherwise.
                    complete = full || ((hit != 0u || (!dense_total && !pruned)) && (row_excl == 0u || theta > row_excl));
                } else {
                    complete = false;
                }
                exact = complete;
            }
            if (!(complete && exact)) {
                continue;
            }
            if (lid == 0u) {
                scratch[rs(r, RS_PATH)] = select(PATH_CANDIDATES, PATH_FULL_ROW, full);
            }
            tok = gumbel_pick(r, p, full, lid, theta, ztmax, ex);
            status = select(ST_OK, ST_NONE, tok == NONE && ex == NONE);
            if (judged) {
                let m = mass_total(r, p, full, lid, theta, ztmax);
                v_norm = (f32(m.y) * 4294967296.0 + f32(m.x)) / 2147483648.0;
                v_theta = theta;
            }
            break;
        }
    }
    if (lid == 0u) {
        atomicStore(&ovtab[dims.rank_off + r], 0u);
    }
    if ((p.flags & FLAG_TOPLP) != 0u && status == ST_OK && dims.vmode == 0u) {
        top_logprobs(r, lid, p.top_n, rmax, rsum);
    }
    if (dims.vmode != 0u && lid == 0u) {
        verify_outputs(r, p, judged, status, onehot, v_theta, v_norm, ztmax, rmax, rsum);
    }
    finish_row(r, lid, tok, status, rmax, rsum);
}

// Verification: what accept.wgsl and recover.wgsl need of this position's
// filtered distribution p (see bindings.wgsl's RS_* words), and p of the
// draft token: exp(z_d / T - max) / mass of the survivors when d
// survives, 1 or 0 for a one-hot p. One invocation.
fn verify_outputs(r: u32, p: RowParams, judged: bool, status: u32, onehot: u32, theta: u32,
    norm: f32, ztmax: f32, rmax: f32, rsum: f32) {
    scratch[rs(r, RS_RMAX)] = bitcast<u32>(rmax);
    scratch[rs(r, RS_RSUM)] = bitcast<u32>(rsum);
    scratch[rs(r, RS_ONEHOT)] = onehot;
    scratch[rs(r, RS_THETA)] = theta;
    scratch[rs(r, RS_NORM)] = bitcast<u32>(norm);
    scratch[rs(r, RS_ZTMAX)] = bitcast<u32>(ztmax);
    var pd = 0.0;
    if (judged && status == ST_OK) {
        let d = draft_token(prow(r), vpos(r));
        if (onehot != NONE) {
            pd = select(0.0, 1.0, d == onehot);
        } else {
            let zb = z_bits(r, d, p);
            if (!bits_is_neg_inf(zb) && !bits_is_nan(zb)) {
                let zt = scale(bitcast<f32>(zb), p);
                if (!bits_is_neg_inf(bitcast<u32>(zt)) && okey(zt) >= theta) {
                    pd = exp(zt - ztmax) / norm;
                }
            }
        }
    }
    scratch[rs(r, RS_PD)] = bitcast<u32>(pd);
}
