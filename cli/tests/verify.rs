//! `wgsample verify`: speculative-decoding verification of draft tokens
//! against target logits, on both backends, and its bad input.

mod support;

use support::*;

const V: usize = 40;
const K: usize = 4;
const B: usize = 3;

/// `[B, K+1, V]` target logits: distinct, irregular values in [-3, 3).
fn target(batch: usize) -> Vec<f32> {
    (0..batch * (K + 1))
        .flat_map(|p| (0..V).map(move |i| (((i * 7919 + p * 104729) % 1000) as f32) * 0.006 - 3.0))
        .collect()
}

/// Row `b`, position `j` (0-based) of a `[B, K+1, V]` target.
fn pos(t: &[f32], b: usize, j: usize) -> &[f32] {
    &t[(b * (K + 1) + j) * V..][..V]
}

/// `[B, K, V]` draft probabilities: the softmax of a flattened, shifted
/// copy of the target, so that they differ from it but overlap it.
fn draft_probs(t: &[f32], batch: usize) -> Vec<f32> {
    let mut q = Vec::new();
    for b in 0..batch {
        for j in 0..K {
            let z: Vec<f64> = pos(t, b, j)
                .iter()
                .enumerate()
                .map(|(i, &x)| 0.5 * f64::from(x) + ((i % 7) as f64) * 0.2)
                .collect();
            let m = z.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x));
            let s: f64 = z.iter().map(|x| (x - m).exp()).sum();
            q.extend(z.iter().map(|x| ((x - m).exp() / s) as f32));
        }
    }
    q
}

/// Draft tokens: per row, the target's argmax at the first two positions
/// (likely accepted), then tokens from the middle of the ranking.
fn drafts(t: &[f32], batch: usize) -> Vec<Vec<u32>> {
    (0..batch)
        .map(|b| {
            (0..K)
                .map(|j| {
                    let z = pos(t, b, j);
                    if j < 2 {
                        argmax(z)
                    } else {
                        ((b * 13 + j * 5) % V) as u32
                    }
                })
                .collect()
        })
        .collect()
}

fn draft_arg(rows: &[Vec<u32>]) -> String {
    rows.iter()
        .map(|r| r.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
        .collect::<Vec<_>>()
        .join(";")
}

fn npy_f32_nd(shape: &[u64], values: &[f32]) -> Vec<u8> {
    npy_with(1, "<f4", shape, false, &f32_bytes(values))
}

/// A verified row: (tokens, accepted, logprobs, status).
type Verified = (Vec<u32>, u32, Vec<f32>, String);

/// The rows of a `verify` line, keys checked.
fn verify_rows(j: &Value) -> Vec<Verified> {
    assert_eq!(j.keys(), ["rows"]);
    j.key("rows")
        .arr()
        .iter()
        .map(|r| {
            assert_eq!(r.keys(), ["tokens", "accepted", "logprobs", "status"]);
            let accepted = match r.key("accepted") {
                Value::Number(n) => n.to_string().parse().expect("a count"),
                other => panic!("accepted is {other:?}"),
            };
            (
                r.key("tokens").u32s(),
                accepted,
                r.key("logprobs").f32s(),
                r.key("status").text().to_string(),
            )
        })
        .collect()
}

/// Runs `verify` with `args` on both backends, checks that they print the
/// same rows (logprobs within 1e-5) and returns them.
fn verify_both(args: &[&str]) -> Vec<Verified> {
    let base = joined(&["verify"], args);
    let c = verify_rows(&json_any_stderr(&joined(&base, &["--backend", "cpu"])));
    let g = verify_rows(&json_any_stderr(&joined(&base, &["--backend", "gpu"])));
    assert_eq!(c.len(), g.len());
    for (rc, rg) in c.iter().zip(&g) {
        assert_eq!(
            (&rc.0, rc.1, &rc.3),
            (&rg.0, rg.1, &rg.3),
            "{args:?}: gpu differs from cpu"
        );
        for (a, b) in rc.2.iter().zip(&rg.2) {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{args:?}: logprob {a} vs {b}"
            );
        }
    }
    c
}

/// What every verified row satisfies: 1 to k+1 tokens, the accepted
/// drafts first, then a token other than the rejected draft (or the bonus
/// token), each with its raw logprob under its own position's logits.
fn check_row(row: &Verified, t: &[f32], b: usize, drafts: &[u32]) {
    let (tokens, accepted, logprobs, status) = row;
    let a = *accepted as usize;
    assert_eq!(status, "ok");
    assert!(a <= K && tokens.len() == a + 1, "{row:?}");
    assert_eq!(tokens[..a], drafts[..a], "{row:?}");
    if a < K {
        assert_ne!(
            tokens[a], drafts[a],
            "the rejected draft came back: {row:?}"
        );
    }
    let want: Vec<f64> = tokens
        .iter()
        .enumerate()
        .map(|(j, &tok)| log_softmax(pos(t, b, j))[tok as usize])
        .collect();
    assert_close(logprobs, &want, 1e-5);
}

#[test]
fn verify_backends_agree_and_rows_are_well_formed() {
    let s = Scratch::new("verify-both");
    let t = target(B);
    let d = drafts(&t, B);
    let tf = s.file(
        "t.npy",
        &npy_f32_nd(&[B as u64, (K + 1) as u64, V as u64], &t),
    );
    let qf = s.file(
        "q.npy",
        &npy_f32_nd(&[B as u64, K as u64, V as u64], &draft_probs(&t, B)),
    );
    let da = draft_arg(&d);
    let base = ["--target", tf.as_str(), "--draft-tokens", da.as_str()];
    let configs: [&[&str]; 7] = [
        &["--temperature", "0"],
        &["--seed", "7"],
        &["--seed", "7", "--draft-probs", &qf],
        &["--seed", "3", "--top-k", "8", "--temperature", "0.7"],
        &[
            "--seed",
            "5",
            "--top-p",
            "0.8",
            "--min-p",
            "0.05",
            "--draft-probs",
            &qf,
        ],
        &[
            "--seed",
            "11",
            "--frequency-penalty",
            "0.8",
            "--presence-penalty",
            "0.3",
            "--repetition-penalty",
            "1.3",
            "--prompt-tokens",
            "1,2,3",
            "--output-tokens",
            "4,4",
        ],
        &[
            "--temperature",
            "0",
            "--frequency-penalty",
            "2",
            "--ban",
            "9",
            "--draft-probs",
            &qf,
        ],
    ];
    let mut accepted = Vec::new();
    for extra in configs {
        let rows = verify_both(&joined(&base, extra));
        assert_eq!(rows.len(), B);
        for (b, row) in rows.iter().enumerate() {
            check_row(row, &t, b, &d[b]);
            accepted.push(row.1);
        }
    }
    // The drafts are neither all accepted nor all rejected.
    assert!(accepted.iter().any(|&a| a < K as u32), "{accepted:?}");
    assert!(accepted.iter().any(|&a| a >= 2), "{accepted:?}");
}

#[test]
fn verify_row_r_uses_seed_s_plus_r_and_f16_targets_work() {
    let s = Scratch::new("verify-seed");
    let t = target(B);
    let d = drafts(&t, B);
    let q = draft_probs(&t, B);
    let tf = s.file(
        "t.npy",
        &npy_f32_nd(&[B as u64, (K + 1) as u64, V as u64], &t),
    );
    let qf = s.file("q.npy", &npy_f32_nd(&[B as u64, K as u64, V as u64], &q));
    let da = draft_arg(&d);
    let all = verify_rows(&ok_json(&[
        "verify",
        "--target",
        &tf,
        "--draft-tokens",
        &da,
        "--draft-probs",
        &qf,
        "--seed",
        "20",
    ]));
    for (b, row) in all.iter().enumerate() {
        // Row b alone, as a [k+1, V] file with [k, V] probabilities.
        let one = s.file(
            &format!("t{b}.npy"),
            &npy_f32_nd(
                &[(K + 1) as u64, V as u64],
                &t[b * (K + 1) * V..][..(K + 1) * V],
            ),
        );
        let q1 = s.file(
            &format!("q{b}.npy"),
            &npy_f32_nd(&[K as u64, V as u64], &q[b * K * V..][..K * V]),
        );
        let seed = (20 + b).to_string();
        let da1 = draft_arg(&d[b..=b]);
        let got = verify_rows(&ok_json(&[
            "verify",
            "--target",
            &one,
            "--draft-tokens",
            &da1,
            "--draft-probs",
            &q1,
            "--seed",
            &seed,
        ]));
        assert_eq!(got, std::slice::from_ref(row), "row {b}");
    }
    // The logits are multiples of 0.006 below 3: f16 rounds them, so the
    // f16 file is compared with its own values widened to f32.
    let h: Vec<half::f16> = t.iter().map(|&x| half::f16::from_f32(x)).collect();
    let wide: Vec<f32> = h.iter().map(|x| x.to_f32()).collect();
    let shape = [B as u64, (K + 1) as u64, V as u64];
    let hf = s.file("h.npy", &npy_f16(&shape, &h));
    let wf = s.file("w.npy", &npy_f32_nd(&shape, &wide));
    let run = |f: &str| verify_both(&["--target", f, "--draft-tokens", &da, "--seed", "4"]);
    assert_eq!(run(&hf), run(&wf));
}

/// `sample`'s greedy token for `z` after `output` (the step-by-step
/// greedy decode, one step at a time).
fn greedy_step(s: &Scratch, z: &[f32], output: &[u32], extra: &[&str]) -> u32 {
    let f = s.file("step.npy", &npy_f32_vec(z));
    let out = draft_arg(&[output.to_vec()]);
    let mut args = vec!["sample", "--logits", f.as_str(), "--temperature", "0"];
    if !output.is_empty() {
        args.extend_from_slice(&["--output-tokens", &out]);
    }
    args.extend_from_slice(extra);
    sample_rows(&ok_json(&args))[0].0[0]
}

#[test]
fn greedy_verify_of_the_greedy_tokens_accepts_all_k_and_adds_the_bonus() {
    let s = Scratch::new("verify-greedy");
    // The same logits at every position with a close second: under a
    // frequency penalty the greedy decode alternates 0, 1, 0, 1, ...
    let mut z = vec![0.0f32; 10];
    z[0] = 3.0;
    z[1] = 2.8;
    z[5] = 1.0;
    for extra in [&[][..], &["--frequency-penalty", "0.5"][..]] {
        let t: Vec<f32> = (0..=K).flat_map(|_| z.iter().copied()).collect();
        let tf = s.file("t.npy", &npy_f32_nd(&[(K + 1) as u64, 10], &t));
        let mut greedy = Vec::new();
        for _ in 0..=K {
            let next = greedy_step(&s, &z, &greedy, extra);
            greedy.push(next);
        }
        if !extra.is_empty() {
            assert_eq!(greedy, [0, 1, 0, 1, 0]);
        }
        let da = draft_arg(&[greedy[..K].to_vec()]);
        let mut args = vec!["--target", tf.as_str(), "--draft-tokens", da.as_str()];
        args.extend_from_slice(&["--temperature", "0"]);
        args.extend_from_slice(extra);
        let rows = verify_both(&args);
        assert_eq!(rows[0].0, greedy, "{extra:?}");
        assert_eq!(rows[0].1, K as u32);
        assert_eq!(rows[0].0.len(), K + 1);
        // A wrong third draft: two accepted, then the greedy token.
        let mut wrong = greedy[..K].to_vec();
        wrong[2] = 5;
        let da = draft_arg(&[wrong]);
        args[3] = da.as_str();
        let rows = verify_both(&args);
        assert_eq!(rows[0].0, greedy[..3], "{extra:?}");
        assert_eq!(rows[0].1, 2);
    }
}

#[test]
fn verify_without_an_adapter_falls_back_to_the_cpu() {
    let s = Scratch::new("verify-fallback");
    let t = target(1);
    let tf = s.file("t.npy", &npy_f32_nd(&[(K + 1) as u64, V as u64], &t));
    let da = draft_arg(&drafts(&t, 1));
    let args = [
        "verify",
        "--target",
        &tf,
        "--draft-tokens",
        &da,
        "--seed",
        "3",
    ];
    let cpu = wgsample(&args);
    let out = Command::new(env!("CARGO_BIN_EXE_wgsample"))
        .args(args)
        .args(["--backend", "gpu"])
        .env("WGPU_ADAPTER_NAME", "no adapter has this name")
        .output()
        .expect("run wgsample");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("falling back to the CPU backend"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), cpu.stdout);
}

#[test]
fn bad_verify_inputs_exit_2_with_a_message() {
    let s = Scratch::new("verify-bad");
    let t = target(2);
    let shape3 = [2u64, (K + 1) as u64, V as u64];
    let tf = s.file("t.npy", &npy_f32_nd(&shape3, &t));
    let t1 = s.file(
        "t1.npy",
        &npy_f32_nd(&[(K + 1) as u64, V as u64], &t[..(K + 1) * V]),
    );
    let flat = s.file("flat.npy", &npy_f32_vec(&t[..V]));
    let four = s.file(
        "four.npy",
        &npy_f32_nd(&[1, 2, (K + 1) as u64, V as u64], &t),
    );
    let q = draft_probs(&t, 2);
    let q1 = s.file("q1.npy", &npy_f32_nd(&[K as u64, V as u64], &q[..K * V]));
    let qv = s.file(
        "qv.npy",
        &npy_f32_nd(&[2, K as u64, (V / 2) as u64], &q[..K * V]),
    );
    let qk = s.file(
        "qk.npy",
        &npy_f32_nd(&[2, (K - 1) as u64, V as u64], &q[..2 * (K - 1) * V]),
    );
    let mut q_sum = q.clone();
    q_sum[V + 3] += 0.01;
    let q_sum = s.file("qs.npy", &npy_f32_nd(&[2, K as u64, V as u64], &q_sum));
    let mut q_zero = q.clone();
    // Row 1, position 2: draft token 4 gets probability 0 (its mass moved
    // to token 5, so the row still sums to 1).
    let at = (K + 1) * V;
    q_zero[at + 5] += q_zero[at + 4];
    q_zero[at + 4] = 0.0;
    let q_zero = s.file("qz.npy", &npy_f32_nd(&[2, K as u64, V as u64], &q_zero));
    let mut q_neg = q.clone();
    q_neg[7] = -q_neg[7];
    let q_neg = s.file("qn.npy", &npy_f32_nd(&[2, K as u64, V as u64], &q_neg));
    let qh: Vec<half::f16> = q.iter().map(|&x| half::f16::from_f32(x)).collect();
    let q_f16 = s.file("qh.npy", &npy_f16(&[2, K as u64, V as u64], &qh));
    let good = "1,2,3,4;5,4,3,2";
    let with = |target: &str, drafts: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["verify", "--target", target, "--draft-tokens", drafts]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        // k = 0 and ragged rows.
        (with(&tf, "", &[]), "no draft tokens"),
        (with(&tf, ";", &[]), "no draft tokens"),
        (with(&tf, "1,2,3,4;", &[]), "row 1 has no draft tokens"),
        (
            with(&tf, "1,2,3,4;5,6", &[]),
            "row 1 has 2 draft tokens but row 0 has 4",
        ),
        (
            with(&tf, "1,x", &[]),
            "--draft-tokens: 'x' is not a token id",
        ),
        // Shapes that do not match.
        (with(&tf, "1,2,3;4,5,6", &[]), "k+1 = 4 positions"),
        (
            with(&tf, "1,2,3,4", &[]),
            "2 rows of target logits, but --draft-tokens gives 1 row",
        ),
        (
            with(&t1, good, &[]),
            "1 row of target logits, but --draft-tokens gives 2 rows",
        ),
        (
            with(&flat, "1,2,3,4", &[]),
            "neither [k+1, V] nor [B, k+1, V]",
        ),
        (with(&four, good, &[]), "neither [k+1, V] nor [B, k+1, V]"),
        (
            with(&tf, good, &["--draft-probs", &q1]),
            "1 row, but --draft-tokens gives 2 rows",
        ),
        (
            with(&tf, good, &["--draft-probs", &qv]),
            "rows of 20 probabilities, but the --target vocabulary is V = 40",
        ),
        (
            with(&tf, good, &["--draft-probs", &qk]),
            "3 positions per row",
        ),
        (
            with(&tf, good, &["--draft-probs", &flat]),
            "neither [k, V] nor [B, k, V]",
        ),
        (with(&tf, good, &["--draft-probs", &q_f16]), "float32"),
        // Draft tokens and probabilities the library refuses.
        (
            with(&tf, "1,2,3,4;5,6,7,40", &[]),
            "draft token 40 (position 4) is not a token id",
        ),
        (
            with(&tf, good, &["--draft-probs", &q_sum]),
            "position 2 sum to",
        ),
        (
            with(&tf, good, &["--draft-probs", &q_zero]),
            "draft token 4 (position 2) has draft probability 0",
        ),
        (
            with(&tf, good, &["--draft-probs", &q_neg]),
            "must be finite and >= 0",
        ),
        // Files and flags.
        (with("/no/such.npy", good, &[]), "cannot read /no/such.npy"),
        (with(&tf, good, &["--top-p", "2"]), "top_p"),
        (with(&tf, good, &["--prompt-tokens", "40"]), "prompt_tokens"),
        (
            with(&tf, good, &["--steps", "2"]),
            "--steps is not an option of `verify`",
        ),
        (
            vec!["verify".into(), "--target".into(), tf.clone()],
            "`verify` needs --draft-tokens",
        ),
        (
            vec!["verify".into(), "--draft-tokens".into(), good.into()],
            "`verify` needs --target",
        ),
    ];
    for (args, needle) in &cases {
        for backend in ["cpu", "gpu"] {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            a.extend_from_slice(&["--backend", backend]);
            bad(&a, needle);
        }
    }
}

#[test]
fn gpu_verify_takes_at_most_32_drafts_a_row() {
    let s = Scratch::new("verify-k33");
    let k = 33;
    let z: Vec<f32> = (0..(k + 1) * 8).map(|i| (i % 8) as f32).collect();
    let tf = s.file("t.npy", &npy_f32_nd(&[(k + 1) as u64, 8], &z));
    let d = draft_arg(&[vec![7; k]]);
    let args = [
        "verify",
        "--target",
        &tf,
        "--draft-tokens",
        &d,
        "--temperature",
        "0",
    ];
    let cpu = verify_rows(&ok_json(&args));
    assert_eq!(cpu[0].0, vec![7; k + 1]);
    bad(
        &joined(&args, &["--backend", "gpu"]),
        "1 to 32 draft tokens per row",
    );
}
