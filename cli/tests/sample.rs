//! `wgsample sample`: the decode loop over a file of logits, on both
//! backends, and `--explain`.

mod support;

use support::*;

#[test]
fn sample_greedy_gives_the_argmax_and_its_raw_logprob() {
    let s = Scratch::new("sample-greedy");
    let rows = test_rows(3, 50);
    let f = s.file("l.npy", &npy_f32_mat(&rows));
    let j = ok_json(&["sample", "--logits", &f, "--temperature", "0"]);
    let got = sample_rows(&j);
    assert_eq!(got.len(), 3);
    for (row, (tokens, logprobs, status)) in rows.iter().zip(&got) {
        let t = argmax(row);
        assert_eq!(status, "ok");
        assert_eq!(tokens, &[t]);
        assert_close(logprobs, &[log_softmax(row)[t as usize]], 1e-5);
    }
}

#[test]
fn sample_logprob_is_under_the_raw_logits() {
    let s = Scratch::new("sample-lp");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    // top-k 1 leaves only token 3; its logprob is still ln 0.4.
    let j = ok_json(&["sample", "--logits", &f, "--top-k", "1", "--seed", "9"]);
    let got = sample_rows(&j);
    assert_eq!(got[0].0, [3]);
    assert_close(&got[0].1, &[0.4f64.ln()], 1e-6);
}

#[test]
fn sample_same_seed_same_tokens_different_seeds_differ() {
    let s = Scratch::new("sample-seed");
    let f = s.file("l.npy", &npy_f32_mat(&[vec![0.0; 1000], vec![0.0; 1000]]));
    let run = |seed: &str| {
        let j = ok_json(&["sample", "--logits", &f, "--seed", seed, "--steps", "20"]);
        sample_rows(&j)
    };
    let a = run("7");
    let b = run("7");
    let c = run("8");
    assert_eq!(a, b);
    assert_eq!(a[0].0.len(), 20);
    // 20 uniform draws out of 1000 coincide by chance with probability
    // 1e-60.
    assert_ne!(a[0].0, c[0].0);
    // Each row draws from its own seed and step only, so two rows with the
    // same logits and seed get the same tokens.
    assert_eq!(a[0], a[1]);
}

#[test]
fn sample_steps_give_n_tokens_per_row() {
    let s = Scratch::new("sample-steps");
    let f = s.file("l.npy", &npy_f32_mat(&test_rows(4, 30)));
    for n in [1usize, 5] {
        let n_s = n.to_string();
        let j = ok_json(&["sample", "--logits", &f, "--steps", &n_s, "--seed", "3"]);
        let got = sample_rows(&j);
        assert_eq!(got.len(), 4);
        for (tokens, _, status) in &got {
            assert_eq!(status, "ok");
            assert_eq!(tokens.len(), n);
            assert!(tokens.iter().all(|&t| t < 30));
        }
    }
    // Greedy with no penalties repeats the argmax at every step.
    let j = ok_json(&["sample", "--logits", &f, "--steps=3", "--temperature=0"]);
    for ((tokens, _, _), row) in sample_rows(&j).iter().zip(test_rows(4, 30)) {
        assert_eq!(tokens, &vec![argmax(&row); 3]);
    }
}

#[test]
fn sample_frequency_penalty_alternates_a_greedy_tie() {
    let s = Scratch::new("sample-freq");
    let f = s.file("l.npy", &npy_f32_vec(&[5.0, 5.0, 0.0, 0.0]));
    let j = ok_json(&[
        "sample",
        "--logits",
        &f,
        "--temperature",
        "0",
        "--frequency-penalty",
        "1",
        "--steps",
        "6",
    ]);
    let got = sample_rows(&j);
    assert_eq!(got[0].0, [0, 1, 0, 1, 0, 1]);
    assert_eq!(got[0].2, "ok");
}

#[test]
fn sample_min_new_tokens_holds_back_eos_for_the_first_steps() {
    let s = Scratch::new("sample-eos");
    let f = s.file("l.npy", &npy_f32_vec(&[0.0, 1.0, 5.0]));
    let j = ok_json(&[
        "sample",
        "--logits",
        &f,
        "--temperature",
        "0",
        "--eos",
        "2",
        "--min-new-tokens",
        "2",
        "--steps",
        "4",
    ]);
    assert_eq!(sample_rows(&j)[0].0, [1, 1, 2, 2]);
}

#[test]
fn sample_a_row_that_is_not_ok_stops_and_the_others_go_on() {
    let s = Scratch::new("sample-stop");
    let f = s.file(
        "l.npy",
        &npy_f32_mat(&[
            vec![0.0, f32::NAN, 1.0],
            vec![0.0, 2.0, 1.0],
            vec![f32::NEG_INFINITY; 3],
        ]),
    );
    let j = ok_json(&[
        "sample",
        "--logits",
        &f,
        "--temperature",
        "0",
        "--steps",
        "3",
    ]);
    let got = sample_rows(&j);
    assert_eq!(got[0], (vec![], vec![], "invalid_logits".to_string()));
    assert_eq!(got[1].0, [1, 1, 1]);
    assert_eq!(got[1].2, "ok");
    assert_eq!(got[2], (vec![], vec![], "no_candidates".to_string()));
}

#[test]
fn sample_f16_and_raw_inputs() {
    let s = Scratch::new("sample-inputs");
    let rows = test_rows(2, 40);
    let h: Vec<half::f16> = rows
        .iter()
        .flatten()
        .map(|&x| half::f16::from_f32(x))
        .collect();
    let f16 = s.file(
        "h.npy",
        &npy_with(3, "<f2", &[2, 40], false, &f16_bytes(&h)),
    );
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let raw = s.file("r.bin", &f32_bytes(&flat));
    // These logits are multiples of 0.25 and small, so exact in f16: the
    // three inputs are the same logits and give the same tokens.
    let npy = s.file("l.npy", &npy_f32_mat(&rows));
    let args = |file: &str| {
        let j = ok_json(&[
            "sample",
            "--logits",
            file,
            "--vocab",
            "40",
            "--seed",
            "11",
            "--steps",
            "4",
            "--backend",
            "cpu",
        ]);
        sample_rows(&j)
    };
    let a = args(&npy);
    assert_eq!(a, args(&f16));
    assert_eq!(a, args(&raw));
}

#[test]
fn sample_zero_steps_prints_empty_rows() {
    let s = Scratch::new("sample-zero");
    let f = s.file("l.npy", &npy_f32_mat(&test_rows(2, 5)));
    let j = ok_json(&["sample", "--logits", &f, "--steps", "0"]);
    let got = sample_rows(&j);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.0.is_empty() && r.2 == "ok"));
}

#[test]
fn gpu_backend_equals_cpu_backend() {
    let s = Scratch::new("gpu");
    // Three rows of varied logits, V = 500.
    let rows: Vec<Vec<f32>> = (0..3)
        .map(|r| {
            (0..500)
                .map(|i| (((i * 7919 + r * 104729) % 1000) as f32) * 0.008)
                .collect()
        })
        .collect();
    let f = s.file("m.npy", &npy_f32_mat(&rows));
    let configs: [&[&str]; 5] = [
        &["--temperature", "0"],
        &["--seed", "7"],
        &[
            "--seed",
            "3",
            "--top-k",
            "20",
            "--top-p",
            "0.9",
            "--temperature",
            "0.8",
        ],
        &[
            "--seed",
            "5",
            "--min-p",
            "0.1",
            "--repetition-penalty",
            "1.3",
            "--prompt-tokens",
            "1,2,3",
        ],
        &[
            "--seed",
            "9",
            "--frequency-penalty",
            "0.5",
            "--presence-penalty",
            "0.2",
            "--ban",
            "10",
            "--logit-bias",
            "4=2.5",
        ],
    ];
    for extra in configs {
        let mut base = vec!["sample", "--logits", f.as_str(), "--steps", "12"];
        base.extend_from_slice(extra);
        let mut cpu = base.clone();
        cpu.extend_from_slice(&["--backend", "cpu"]);
        let mut gpu = base.clone();
        gpu.extend_from_slice(&["--backend", "gpu"]);
        let c = sample_json_any_stderr(&cpu);
        let g = sample_json_any_stderr(&gpu);
        assert_eq!(c.len(), g.len());
        for (rc, rg) in c.iter().zip(&g) {
            assert_eq!(rc.0, rg.0, "{extra:?}: tokens differ");
            assert_eq!(rc.2, rg.2, "{extra:?}: status differs");
            for (a, b) in rc.1.iter().zip(&rg.1) {
                assert!(
                    (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                    "{extra:?}: logprob {a} vs {b}"
                );
            }
        }
    }
    // Bad input is still reported as such on the GPU path.
    bad(
        &["sample", "--logits", &f, "--backend=gpu", "--top-p", "2"],
        "top_p",
    );
}

#[test]
fn sample_explain_adds_the_gpu_plan_of_the_last_step() {
    let d = Scratch::new("explain");
    // V = 9000: nine chunks of 1024 logits per row, two rows.
    let rows: Vec<Vec<f32>> = (0..2)
        .map(|r| {
            (0..9000)
                .map(|i| ((i * 7 + r) % 101) as f32 * 0.03)
                .collect()
        })
        .collect();
    let f = d.file("explain.npy", &npy_f32_mat(&rows));
    let plan_of = |extra: &[&str]| {
        let mut args = vec!["sample", "--logits", &f, "--backend", "gpu", "--explain"];
        args.extend_from_slice(extra);
        let j = ok_json(&args);
        assert_eq!(j.keys(), ["rows", "plan"]);
        let p = j.key("plan").clone();
        let passes = p.key("passes").arr().to_vec();
        let count = |k: &str| match p.key(k) {
            Value::Number(n) => n.to_string().parse::<usize>().unwrap(),
            other => panic!("{other:?}"),
        };
        let dense = passes
            .iter()
            .filter(|x| *x.key("dense") == Value::Bool(true))
            .count();
        assert_eq!(count("dispatches"), passes.len());
        assert_eq!(count("dense_passes"), dense);
        for x in &passes {
            let grid = x.key("grid").u32s();
            let want_x = if *x.key("dense") == Value::Bool(true) {
                9
            } else {
                1
            };
            assert_eq!(grid, [want_x, 2, 1], "{x:?}");
        }
        let labels: Vec<String> = passes
            .iter()
            .map(|x| x.key("label").text().to_string())
            .collect();
        (passes.len(), dense, labels)
    };
    let (n, dense, labels) = plan_of(&["--temperature", "0"]);
    assert_eq!((n, dense), (2, 1));
    assert_eq!(labels, ["scan", "finish"]);
    assert_eq!(plan_of(&["--min-p", "0.1"]).0, 2);
    let (n, dense, labels) = plan_of(&["--top-k", "50", "--top-p", "0.9", "--ban", "3"]);
    assert_eq!((n, dense), (3, 1));
    assert_eq!(labels, ["overlay", "scan", "finish"]);
    // The allowed-token bitmask is read by the dense pass itself.
    assert_eq!(plan_of(&["--top-p", "0.9", "--allow", "1,2,3"]).0, 2);
    // Errors: not on the CPU backend, no value, not twice, not elsewhere.
    bad(&["sample", "--logits", &f, "--explain"], "--backend gpu");
    bad(
        &["sample", "--logits", &f, "--backend", "gpu", "--explain=1"],
        "no value",
    );
    bad(
        &[
            "sample",
            "--logits",
            &f,
            "--backend",
            "gpu",
            "--explain",
            "--explain",
        ],
        "more than once",
    );
    bad(&["dist", "--logits", &f, "--explain"], "not an option");
}

/// A `sample --top-logprobs` row: (tokens, logprobs, per step the
/// (token, logprob) entries, ranks, status), its keys checked.
type TopRow = (Vec<u32>, Vec<f32>, Vec<Vec<(u32, f32)>>, Vec<u32>, String);

fn top_rows(j: &Value) -> Vec<TopRow> {
    assert_eq!(j.keys(), ["rows"]);
    j.key("rows")
        .arr()
        .iter()
        .map(|r| {
            assert_eq!(
                r.keys(),
                ["tokens", "logprobs", "top_logprobs", "ranks", "status"]
            );
            let lists = r
                .key("top_logprobs")
                .arr()
                .iter()
                .map(|l| {
                    l.arr()
                        .iter()
                        .map(|e| {
                            assert_eq!(e.keys(), ["token", "logprob"]);
                            // A token whose raw logit is -inf has
                            // logprob -inf, which JSON prints as null.
                            let lp = match e.key("logprob") {
                                Value::Null => f32::NEG_INFINITY,
                                x => x.f32(),
                            };
                            (e.key("token").u32s_one(), lp)
                        })
                        .collect()
                })
                .collect();
            (
                r.key("tokens").u32s(),
                r.key("logprobs").f32s(),
                lists,
                r.key("ranks").u32s(),
                r.key("status").text().to_string(),
            )
        })
        .collect()
}

trait OneU32 {
    fn u32s_one(&self) -> u32;
}

impl OneU32 for Value {
    fn u32s_one(&self) -> u32 {
        match self {
            Value::Number(n) => n.to_string().parse().expect("token id"),
            other => panic!("not a token id: {other:?}"),
        }
    }
}

/// Checks a `--top-logprobs n` row against the raw logits `z` in f64: each
/// step's list holds the n most probable tokens, most probable first (ties
/// to the lower id) with their logprobs, the sampled token's entry (when it
/// is listed) has exactly its logprob, and its rank is 1 + the number of
/// larger logits.
fn check_top_row(row: &TopRow, z: &[f32], n: usize, steps: usize) {
    let (tokens, logprobs, lists, ranks, status) = row;
    assert_eq!(status, "ok");
    assert_eq!(tokens.len(), steps);
    assert_eq!(lists.len(), steps);
    assert_eq!(ranks.len(), steps);
    let lp = log_softmax(z);
    let mut order: Vec<u32> = (0..z.len() as u32).collect();
    order.sort_by(|&a, &b| z[b as usize].total_cmp(&z[a as usize]).then(a.cmp(&b)));
    for ((&t, &l), (list, &rank)) in tokens.iter().zip(logprobs).zip(lists.iter().zip(ranks)) {
        assert_eq!(list.len(), n.min(z.len()), "{list:?}");
        let ids: Vec<u32> = list.iter().map(|e| e.0).collect();
        assert_eq!(ids, order[..list.len()], "{list:?}");
        for w in list.windows(2) {
            assert!(w[0].1 >= w[1].1, "not sorted by logprob: {list:?}");
        }
        for &(id, x) in list {
            assert!((f64::from(x) - lp[id as usize]).abs() <= 1e-5, "{list:?}");
        }
        if let Some(&(_, x)) = list.iter().find(|e| e.0 == t) {
            assert_eq!(x.to_bits(), l.to_bits(), "token {t}: {x} vs {l}");
        }
        let larger = z.iter().filter(|&&x| x > z[t as usize]).count() as u32;
        assert_eq!(rank, 1 + larger, "token {t}");
    }
}

#[test]
fn sample_top_logprobs_on_both_backends() {
    let s = Scratch::new("sample-top");
    // Distinct logits (no ties between the top tokens), V = 300, 3 rows.
    let rows: Vec<Vec<f32>> = (0..3)
        .map(|r| {
            (0..300)
                .map(|i| (((i * 7919 + r * 104729) % 1000) as f32) * 0.006)
                .collect()
        })
        .collect();
    let f = s.file("m.npy", &npy_f32_mat(&rows));
    let configs: [&[&str]; 4] = [
        &["--temperature", "0"],
        &["--seed", "4"],
        &["--seed", "6", "--top-k", "40", "--temperature", "0.7"],
        // The bias and penalty change what is sampled, not the raw
        // logprobs: the sampled tokens are ranked far down.
        &[
            "--seed",
            "8",
            "--logit-bias",
            "2=9",
            "--frequency-penalty",
            "0.3",
        ],
    ];
    for extra in configs {
        let mut base = vec![
            "sample",
            "--logits",
            f.as_str(),
            "--steps",
            "5",
            "--top-logprobs",
            "3",
        ];
        base.extend_from_slice(extra);
        let cpu = top_rows(&json_any_stderr(&joined(&base, &["--backend", "cpu"])));
        let gpu = top_rows(&json_any_stderr(&joined(&base, &["--backend", "gpu"])));
        assert_eq!(cpu.len(), 3);
        for ((c, g), z) in cpu.iter().zip(&gpu).zip(&rows) {
            check_top_row(c, z, 3, 5);
            check_top_row(g, z, 3, 5);
            assert_eq!(c.0, g.0, "{extra:?}: tokens differ");
            assert_eq!(c.3, g.3, "{extra:?}: ranks differ");
            for (lc, lg) in c.2.iter().zip(&g.2) {
                let ids = |l: &[(u32, f32)]| l.iter().map(|e| e.0).collect::<Vec<_>>();
                assert_eq!(ids(lc), ids(lg), "{extra:?}");
                for (a, b) in lc.iter().zip(lg) {
                    assert!((a.1 - b.1).abs() <= 1e-5 * a.1.abs().max(1.0));
                }
            }
        }
        if extra.contains(&"2=9") {
            // Token 2 (raw logit 0.006 x 838 = 5.03 in row 0) is sampled
            // at least once and is not among the top 3.
            assert!(cpu[0].0.contains(&2), "{:?}", cpu[0].0);
            assert!(cpu[0].3.iter().any(|&r| r > 3), "{:?}", cpu[0].3);
        }
    }
}

#[test]
fn sample_top_logprobs_more_than_v_ties_and_minus_inf() {
    let s = Scratch::new("sample-top-small");
    // V = 5 with a tie (ids 1 and 3) and a masked token.
    let z = vec![0.5, 2.0, f32::NEG_INFINITY, 2.0, -1.0];
    let f = s.file("l.npy", &npy_f32_vec(&z));
    for backend in ["cpu", "gpu"] {
        let j = json_any_stderr(&[
            "sample",
            "--logits",
            &f,
            "--top-logprobs",
            "20",
            "--steps",
            "3",
            "--seed",
            "2",
            "--backend",
            backend,
        ]);
        let rows = top_rows(&j);
        let (_, _, lists, _, _) = &rows[0];
        for list in lists {
            let ids: Vec<u32> = list.iter().map(|e| e.0).collect();
            assert_eq!(ids, [1, 3, 0, 4, 2], "{backend}");
        }
        // The masked token's logprob is -inf, printed as null.
        let raw = j.key("rows").arr()[0].key("top_logprobs").arr()[0].arr()[4].clone();
        assert_eq!(*raw.key("logprob"), Value::Null, "{backend}");
        let finite: Vec<f32> = lists[0].iter().take(4).map(|e| e.1).collect();
        assert_close(&finite, &[1, 3, 0, 4].map(|i| log_softmax(&z)[i]), 1e-6);
    }
}

#[test]
fn sample_without_top_logprobs_prints_what_it_printed_before() {
    let s = Scratch::new("sample-top-off");
    let f = s.file("m.npy", &npy_f32_mat(&test_rows(2, 30)));
    let base = [
        "sample",
        "--logits",
        f.as_str(),
        "--steps",
        "3",
        "--seed",
        "5",
    ];
    let plain = wgsample(&base);
    assert_eq!(plain.code, Some(0), "{}", plain.stderr);
    // The keys of every row are the old ones, in the old order.
    sample_rows(&parse_json(plain.stdout.trim_end()).unwrap());
    assert!(!plain.stdout.contains("top_logprobs") && !plain.stdout.contains("ranks"));
    let zero = wgsample(&joined(&base, &["--top-logprobs", "0"]));
    assert_eq!(zero.stdout, plain.stdout);
    // With the flag the tokens and logprobs are the same.
    let three = top_rows(&ok_json(&joined(&base, &["--top-logprobs", "3"])));
    let plain = sample_rows(&parse_json(plain.stdout.trim_end()).unwrap());
    for (t, p) in three.iter().zip(&plain) {
        assert_eq!((&t.0, &t.1, &t.4), (&p.0, &p.1, &p.2));
    }
}

#[test]
fn sample_top_logprobs_above_20_is_a_usage_error() {
    let s = Scratch::new("sample-top-bad");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    for backend in ["cpu", "gpu"] {
        bad(
            &[
                "sample",
                "--logits",
                &f,
                "--top-logprobs",
                "21",
                "--backend",
                backend,
            ],
            "--top-logprobs 21 is above the limit of 20",
        );
    }
    bad(
        &["sample", "--logits", &f, "--top-logprobs", "-1"],
        "--top-logprobs",
    );
    bad(
        &["sample", "--logits", &f, "--top-logprobs", "x"],
        "--top-logprobs",
    );
    bad(
        &["dist", "--logits", &f, "--top-logprobs", "3"],
        "not an option",
    );
}
