// reduce.wgsl: the one dense pass every row takes (dispatch (chunks, B)).
// Per chunk of a row it computes, reading each logit once:
//   - the input check (any NaN / +inf, SPEC step 1),
//   - the raw max and sum of exp (online softmax) for the logprob,
//   - the max of the processed logits z and its first index (greedy, and
//     NoCandidates when no z is finite),
//   - for plain sampling rows (no min-p / top-k / top-p, T > 0), the
//     Gumbel-max key and index over the chunk (SPEC step 10),
// and writes them as partials; merge.wgsl combines the chunks.

var<workgroup> sh: array<Acc, 256>;

fn empty_acc() -> Acc {
    return Acc(0u, 0u, 0.0, 0.0, 0u, 0xFFFFFFFFu, 0u, 0xFFFFFFFFu);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wg.y;
    if (r >= dims.batch) {
        return;
    }
    let p = params[r];
    let modified = (p.flags & FLAG_MODIFIED) != 0u;
    let plain = (p.flags & (FILTERS | FLAG_GREEDY)) == 0u;
    var a = empty_acc();
    let base = wg.x * CHUNK;
    for (var j = 0u; j < ITEMS; j++) {
        let i = base + j * WG + lid;
        if (i < dims.vocab) {
            let rb = raw_bits(r, i);
            if (bits_is_invalid_logit(rb)) {
                a.bad = 1u;
            } else if (!bits_is_neg_inf(rb)) {
                let x = bitcast<f32>(rb);
                if (a.rhas == 0u) {
                    a.rmax = x;
                    a.rsum = 1.0;
                    a.rhas = 1u;
                } else if (x > a.rmax) {
                    a.rsum = a.rsum * exp(a.rmax - x) + 1.0;
                    a.rmax = x;
                } else {
                    a.rsum += exp(x - a.rmax);
                }
            }
            var zb = rb;
            if (modified) {
                zb = zbuf[r * dims.vocab + i];
            }
            // +inf (a bias or penalty that overflowed) is a candidate.
            if (!bits_is_neg_inf(zb) && !bits_is_nan(zb)) {
                let z = bitcast<f32>(zb);
                let k = okey(z);
                if (k > a.zkey) {
                    a.zkey = k;
                    a.zarg = i;
                }
                if (plain) {
                    let g = gumbel_key(scale(z, p), r, i, p);
                    if (g > a.gkey) {
                        a.gkey = g;
                        a.garg = i;
                    }
                }
            }
        }
    }
    sh[lid] = a;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            sh[lid] = merge_acc(sh[lid], sh[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let o = sh[0];
        let c = wg.x;
        scratch[part(r, c, 0u)] = o.bad | (o.rhas << 1u);
        scratch[part(r, c, 1u)] = bitcast<u32>(o.rmax);
        scratch[part(r, c, 2u)] = bitcast<u32>(o.rsum);
        scratch[part(r, c, 3u)] = o.zkey;
        scratch[part(r, c, 4u)] = o.zarg;
        scratch[part(r, c, 5u)] = o.gkey;
        scratch[part(r, c, 6u)] = o.garg;
    }
}
