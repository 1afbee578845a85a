//! `wgsample dist`: the filtered distribution of one row.

mod support;

use support::*;

#[test]
fn dist_full_softmax_most_probable_first() {
    let s = Scratch::new("dist-full");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    let j = ok_json(&["dist", "--logits", &f]);
    check_dist(&j, "ok", &[3, 2, 1, 0], &[0.4, 0.3, 0.2, 0.1]);
}

#[test]
fn dist_top_k_two() {
    let s = Scratch::new("dist-topk");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    let j = ok_json(&["dist", "--logits", &f, "--top-k", "2"]);
    check_dist(&j, "ok", &[3, 2], &[4.0 / 7.0, 3.0 / 7.0]);
    // The `--flag=value` form means the same.
    let j = ok_json(&["dist", "--logits", &f, "--top-k=2"]);
    check_dist(&j, "ok", &[3, 2], &[4.0 / 7.0, 3.0 / 7.0]);
    let j = ok_json(&["dist", &format!("--logits={f}"), "--top-k=2"]);
    check_dist(&j, "ok", &[3, 2], &[4.0 / 7.0, 3.0 / 7.0]);
}

#[test]
fn dist_top_p_and_min_p() {
    let s = Scratch::new("dist-topp");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    // Mass 0.4, then 0.7 >= 0.5: the threshold is 0.3.
    let j = ok_json(&["dist", "--logits", &f, "--top-p", "0.5"]);
    check_dist(&j, "ok", &[3, 2], &[4.0 / 7.0, 3.0 / 7.0]);
    // p >= 0.6 * 0.4 = 0.24 keeps 0.4 and 0.3.
    let j = ok_json(&["dist", "--logits", &f, "--min-p", "0.6"]);
    check_dist(&j, "ok", &[3, 2], &[4.0 / 7.0, 3.0 / 7.0]);
}

#[test]
fn dist_temperature() {
    let s = Scratch::new("dist-temp");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    // T = 0.5 squares the odds: 16 : 9 : 4 : 1.
    let j = ok_json(&["dist", "--logits", &f, "--temperature", "0.5"]);
    check_dist(
        &j,
        "ok",
        &[3, 2, 1, 0],
        &[16.0 / 30.0, 9.0 / 30.0, 4.0 / 30.0, 1.0 / 30.0],
    );
}

#[test]
fn dist_greedy_is_the_argmax_with_probability_one() {
    let s = Scratch::new("dist-greedy");
    let f = s.file("l.npy", &npy_f32_vec(&[0.5, 2.0, -1.0, 1.5]));
    let j = ok_json(&["dist", "--logits", &f, "--temperature", "0"]);
    check_dist(&j, "ok", &[1], &[1.0]);
}

#[test]
fn dist_of_a_batch_row() {
    let s = Scratch::new("dist-row");
    let mut rev = ln_1234();
    rev.reverse();
    let f = s.file("l.npy", &npy_f32_mat(&[ln_1234(), rev]));
    let j = ok_json(&["dist", "--logits", &f, "--row", "1", "--top-k", "2"]);
    check_dist(&j, "ok", &[0, 1], &[4.0 / 7.0, 3.0 / 7.0]);
    let j = ok_json(&["dist", "--logits", &f, "--top-k", "2"]);
    check_dist(&j, "ok", &[3, 2], &[4.0 / 7.0, 3.0 / 7.0]);
}

#[test]
fn dist_f16_input() {
    let s = Scratch::new("dist-f16");
    let h: Vec<half::f16> = ln_1234().iter().map(|&x| half::f16::from_f32(x)).collect();
    let f = s.file("l.npy", &npy_f16(&[1, 4], &h));
    // The library widens f16 exactly, so the expectation uses the rounded
    // values.
    let z: Vec<f64> = h.iter().map(|x| f64::from(x.to_f32())).collect();
    let (a, b) = (z[3].exp(), z[2].exp());
    let j = ok_json(&["dist", "--logits", &f, "--top-k", "2"]);
    check_dist(&j, "ok", &[3, 2], &[a / (a + b), b / (a + b)]);
}

#[test]
fn dist_raw_f32_with_vocab() {
    let s = Scratch::new("dist-raw");
    let mut data = vec![0.0f32; 4];
    data.extend(ln_1234());
    let f = s.file("l.bin", &f32_bytes(&data));
    let j = ok_json(&["dist", "--logits", &f, "--vocab", "4", "--row", "1"]);
    check_dist(&j, "ok", &[3, 2, 1, 0], &[0.4, 0.3, 0.2, 0.1]);
    // Row 0 is uniform: ties are listed lowest id first.
    let j = ok_json(&["dist", "--logits", &f, "--vocab=4"]);
    check_dist(&j, "ok", &[0, 1, 2, 3], &[0.25; 4]);
}

#[test]
fn dist_npy_versions_2_and_3() {
    let s = Scratch::new("dist-v2");
    for version in [2u8, 3] {
        let f = s.file(
            &format!("v{version}.npy"),
            &npy_with(version, "<f4", &[4], false, &f32_bytes(&ln_1234())),
        );
        let j = ok_json(&["dist", "--logits", &f, "--top-k", "2"]);
        check_dist(&j, "ok", &[3, 2], &[4.0 / 7.0, 3.0 / 7.0]);
    }
    // Key order and quoting as other writers may produce them.
    let f = s.file(
        "reordered.npy",
        &npy_raw_header(
            1,
            "{\"shape\": (1, 4), \"fortran_order\": False, \"descr\": \"<f4\"}",
            &f32_bytes(&ln_1234()),
        ),
    );
    let j = ok_json(&["dist", "--logits", &f]);
    check_dist(&j, "ok", &[3, 2, 1, 0], &[0.4, 0.3, 0.2, 0.1]);
}

#[test]
fn dist_masks_bias_and_penalties() {
    let s = Scratch::new("dist-masks");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    let j = ok_json(&["dist", "--logits", &f, "--ban", "3", "--ban", "0"]);
    check_dist(&j, "ok", &[2, 1], &[0.6, 0.4]);
    let j = ok_json(&["dist", "--logits", &f, "--allow", "0,1"]);
    check_dist(&j, "ok", &[1, 0], &[2.0 / 3.0, 1.0 / 3.0]);
    // Bias ln 4 on token 0: odds 4 : 2 : 3 : 4.
    let j = ok_json(&[
        "dist",
        "--logits",
        &f,
        &format!("--logit-bias=0={}", 4.0f32.ln()),
    ]);
    check_dist(
        &j,
        "ok",
        &[0, 3, 2, 1],
        &[4.0 / 13.0, 4.0 / 13.0, 3.0 / 13.0, 2.0 / 13.0],
    );
    // EOS 3 is masked while fewer than 1 token has been generated.
    let j = ok_json(&[
        "dist",
        "--logits",
        &f,
        "--eos",
        "3",
        "--min-new-tokens",
        "1",
    ]);
    check_dist(&j, "ok", &[2, 1, 0], &[0.5, 2.0 / 6.0, 1.0 / 6.0]);
    let j = ok_json(&[
        "dist",
        "--logits",
        &f,
        "--eos",
        "3",
        "--min-new-tokens",
        "1",
        "--output-tokens",
        "1",
    ]);
    check_dist(&j, "ok", &[3, 2, 1, 0], &[0.4, 0.3, 0.2, 0.1]);
    // Presence penalty ln 4 on output token 3 takes its logit to exactly 0
    // (x - x), a tie with token 0 that the lower id wins: odds 1 : 2 : 3 : 1.
    let j = ok_json(&[
        "dist",
        "--logits",
        &f,
        "--output-tokens",
        "3",
        "--presence-penalty",
        &4.0f32.ln().to_string(),
    ]);
    check_dist(
        &j,
        "ok",
        &[2, 1, 0, 3],
        &[3.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0, 1.0 / 7.0],
    );
}

#[test]
fn dist_penalties_under_greedy() {
    let s = Scratch::new("dist-pen");
    let f = s.file("l.npy", &npy_f32_vec(&[4.0, 3.0, 0.0, -1.0]));
    // Repetition penalty 2 on prompt token 0: 4 -> 2, so token 1 wins.
    let j = ok_json(&[
        "dist",
        "--logits",
        &f,
        "--temperature",
        "0",
        "--prompt-tokens",
        "0,3",
        "--repetition-penalty",
        "2",
    ]);
    check_dist(&j, "ok", &[1], &[1.0]);
    // Frequency penalty 0.6 on two occurrences of token 0: 4 - 1.2 < 3.
    let j = ok_json(&[
        "dist",
        "--logits",
        &f,
        "--temperature",
        "0",
        "--output-tokens",
        "0,0",
        "--frequency-penalty",
        "0.6",
    ]);
    check_dist(&j, "ok", &[1], &[1.0]);
}

#[test]
fn dist_statuses_other_than_ok_exit_zero_with_empty_lists() {
    let s = Scratch::new("dist-status");
    let f = s.file("nan.npy", &npy_f32_vec(&[0.0, f32::NAN, 1.0]));
    check_dist(
        &ok_json(&["dist", "--logits", &f]),
        "invalid_logits",
        &[],
        &[],
    );
    let f = s.file("inf.npy", &npy_f32_vec(&[0.0, f32::INFINITY, 1.0]));
    check_dist(
        &ok_json(&["dist", "--logits", &f]),
        "invalid_logits",
        &[],
        &[],
    );
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    check_dist(
        &ok_json(&[
            "dist", "--logits", &f, "--ban", "0", "--ban", "1", "--ban", "2", "--ban", "3",
        ]),
        "no_candidates",
        &[],
        &[],
    );
    let f = s.file("masked.npy", &npy_f32_vec(&[f32::NEG_INFINITY; 3]));
    check_dist(
        &ok_json(&["dist", "--logits", &f]),
        "no_candidates",
        &[],
        &[],
    );
}

#[test]
fn bad_row() {
    let s = Scratch::new("bad-row");
    let f = s.file("l.npy", &npy_f32_mat(&[ln_1234(), ln_1234()]));
    bad(&["dist", "--logits", &f, "--row", "2"], "--row 2");
    bad(
        &["dist", "--logits", &f, "--row", "18446744073709551615"],
        "--row",
    );
    let raw = s.file("l.bin", &f32_bytes(&ln_1234()));
    bad(
        &["dist", "--logits", &raw, "--vocab", "4", "--row", "1"],
        "--row 1",
    );
}
