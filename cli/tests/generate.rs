//! `wgsample generate`: decoding with a bigram model, on both backends,
//! and the bad input of `generate` and `beam`.

mod support;

use support::*;

#[test]
fn generate_stop_reasons() {
    let s = Scratch::new("gen-stop");
    let f = s.file("chain.npy", &npy_bigram(&chain_table(), 6));
    let f = f.as_str();
    let greedy = ["--bigram", f, "--start", "0", "--temperature", "0"];
    let run = |extra: &[&str]| {
        let mut a = greedy.to_vec();
        a.extend_from_slice(extra);
        generate_both(&a)
    };
    let one = |toks: &[u32], why: &str| vec![(toks.to_vec(), why.to_string())];

    assert_eq!(run(&["--eos", "5"]), one(&[1, 2, 5], "eos"));
    // EOS is masked while fewer than 3 tokens are out: 2 -> 3 instead.
    assert_eq!(
        run(&["--eos", "5", "--min-new-tokens", "3"]),
        one(&[1, 2, 3, 5], "eos")
    );
    assert_eq!(
        run(&["--stop-tokens", "4,4", "--stop-tokens", "2,5"]),
        one(&[1, 2, 5], "stop_sequence")
    );
    // A stop sequence counts only once min-new-tokens tokens are out.
    assert_eq!(
        run(&[
            "--stop-tokens",
            "2",
            "--min-new-tokens",
            "3",
            "--max-new-tokens",
            "3"
        ]),
        one(&[1, 2, 5], "max_new_tokens")
    );
    assert_eq!(
        run(&["--stop-tokens", "5", "--min-new-tokens", "2"]),
        one(&[1, 2, 5], "stop_sequence")
    );
    assert_eq!(
        run(&["--max-new-tokens", "4"]),
        one(&[1, 2, 5, 4], "max_new_tokens")
    );
    assert_eq!(run(&["--max-new-tokens", "0"]), one(&[], "max_new_tokens"));
    // Row 4 has no candidates: the row stops with the sampler's status.
    assert_eq!(
        run(&["--max-new-tokens", "9"]),
        one(&[1, 2, 5, 4], "no_candidates")
    );
    // Default: 16 new tokens; --batch gives one sequence per row.
    let rows = generate_both(&[
        "--bigram",
        f,
        "--start",
        "5",
        "--temperature=0",
        "--batch",
        "3",
    ]);
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r, (vec![4], "no_candidates".to_string()));
    }
}

#[test]
fn generate_gpu_equals_cpu_token_for_token() {
    let s = Scratch::new("gen-gpu");
    let v = 64usize;
    let table: Vec<f32> = (0..v * v)
        .map(|i| ((i * 7919 % 1009) as f32) * 0.006 - 3.0)
        .collect();
    let f = s.file("b.npy", &npy_bigram(&table, v));
    let f = f.as_str();
    let configs: [&[&str]; 6] = [
        &["--temperature", "0", "--max-new-tokens", "12"],
        &["--seed", "7", "--max-new-tokens", "20"],
        &[
            "--seed",
            "3",
            "--top-k",
            "20",
            "--top-p",
            "0.9",
            "--temperature",
            "0.8",
            "--eos",
            "5",
            "--eos",
            "9",
        ],
        &[
            "--seed",
            "5",
            "--min-p",
            "0.1",
            "--repetition-penalty",
            "1.3",
            "--stop-tokens",
            "3,4",
            "--stop-tokens",
            "11",
            "--eos",
            "2",
            "--min-new-tokens",
            "4",
            "--max-new-tokens",
            "40",
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
            "--eos",
            "4",
            "--max-new-tokens",
            "30",
        ],
        &[
            "--seed",
            "11",
            "--temperature",
            "1.5",
            "--allow",
            "1,2,3,5,8,13,21,34,55",
            "--stop-tokens",
            "13,21",
            "--eos",
            "55",
        ],
    ];
    let mut reasons = std::collections::BTreeSet::new();
    for extra in configs {
        let mut a = vec!["--bigram", f, "--start", "1", "--batch", "5"];
        a.extend_from_slice(extra);
        let rows = generate_both(&a);
        assert_eq!(rows.len(), 5);
        for (toks, why) in rows {
            assert!(toks.iter().all(|&t| (t as usize) < v));
            reasons.insert(why);
        }
    }
    for why in ["eos", "stop_sequence", "max_new_tokens"] {
        assert!(
            reasons.contains(why),
            "no row ended with {why}: {reasons:?}"
        );
    }
}

#[test]
fn generate_row_r_gets_seed_s_plus_r() {
    let s = Scratch::new("gen-seed");
    let v = 32usize;
    let table: Vec<f32> = (0..v * v).map(|i| ((i * 31) % 17) as f32 * 0.3).collect();
    let f = s.file("b.npy", &npy_bigram(&table, v));
    let f = f.as_str();
    let base = [
        "generate",
        "--bigram",
        f,
        "--start",
        "2",
        "--max-new-tokens",
        "10",
    ];
    let mut batch = base.to_vec();
    batch.extend_from_slice(&["--batch", "3", "--seed", "40"]);
    let rows = generate_rows(&ok_json(&batch));
    assert_eq!(rows.len(), 3);
    for (r, row) in rows.iter().enumerate() {
        let seed = (40 + r).to_string();
        let mut single = base.to_vec();
        single.extend_from_slice(&["--seed", &seed]);
        assert_eq!(&generate_rows(&ok_json(&single))[0], row, "row {r}");
    }
    assert_ne!(rows[0].0, rows[1].0);
}

#[test]
fn generate_and_beam_bad_input() {
    let s = Scratch::new("gen-bad");
    let good = s.file("g.npy", &npy_bigram(&chain_table(), 6));
    // Leaked so the argument lists below can be built by plain closures.
    let g: &'static str = good.leak();
    let nonsq = s.file(
        "n.npy",
        &npy_with(1, "<f4", &[2, 3], false, &f32_bytes(&[0.0; 6])),
    );
    let flat = s.file("f.npy", &npy_f32_vec(&[0.0; 4]));
    let raw = s.file("r.bin", &f32_bytes(&[0.0; 4]));
    let (nonsq, flat, raw): (&'static str, &'static str, &'static str) =
        (nonsq.leak(), flat.leak(), raw.leak());
    for cmd in ["generate", "beam"] {
        let head: &[&str] = if cmd == "beam" {
            &["beam", "--beams", "2"]
        } else {
            &["generate"]
        };
        let with = |extra: &[&'static str]| joined(head, extra);
        bad(&with(&["--bigram", nonsq, "--start", "0"]), "square");
        bad(&with(&["--bigram", flat, "--start", "0"]), "square");
        bad(&with(&["--bigram", raw, "--start", "0"]), "not a .npy");
        bad(
            &with(&["--bigram", "/nonexistent/b.npy", "--start", "0"]),
            "cannot read",
        );
        bad(&with(&["--bigram", g, "--start", "6"]), "--start 6");
        bad(&with(&["--bigram", g, "--start", "x"]), "--start");
        bad(&with(&["--bigram", g, "--start", "-1"]), "--start");
        bad(&with(&["--start", "0"]), "--bigram");
        bad(&with(&["--bigram", g]), "--start");
        bad(
            &with(&["--bigram", g, "--start", "0", "--max-new-tokens", "1.5"]),
            "--max-new-tokens",
        );
        bad(&with(&["--bigram", g, "--start", "0", "--eos", "6"]), "6");
        bad(
            &with(&["--bigram", g, "--start", "0", "--logits", g]),
            "--logits",
        );
        bad(
            &with(&["--bigram", g, "--start", "0", "--backend", "tpu"]),
            "tpu",
        );
        bad(
            &with(&["--bigram", g, "--start", "0", "--start", "1"]),
            "more than once",
        );
    }
    let generate_args =
        |extra: &[&'static str]| joined(&["generate", "--bigram", g, "--start", "0"], extra);
    bad(&generate_args(&["--batch", "0"]), "--batch");
    bad(&generate_args(&["--batch", "many"]), "--batch");
    bad(&generate_args(&["--temperature", "hot"]), "--temperature");
    bad(&generate_args(&["--top-p", "2"]), "top_p");
    bad(&generate_args(&["--stop-tokens", "1,6"]), "--stop-tokens");
    bad(&generate_args(&["--stop-tokens", ""]), "--stop-tokens");
    bad(&generate_args(&["--stop-tokens", "1,,2"]), "--stop-tokens");
    bad(&generate_args(&["--ban", "7"]), "banned_tokens");
    bad(&generate_args(&["--beams", "2"]), "--beams");
    bad(&generate_args(&["--prompt-tokens", "1"]), "--prompt-tokens");
    bad(
        &generate_args(&["--top-p", "2", "--backend", "gpu"]),
        "top_p",
    );
    let beam = |extra: &[&'static str]| joined(&["beam", "--bigram", g, "--start", "0"], extra);
    bad(&beam(&[]), "--beams");
    bad(&beam(&["--beams", "0"]), "--beams");
    bad(
        &beam(&["--beams", "2", "--num-return-sequences", "3"]),
        "--num-return-sequences",
    );
    bad(
        &beam(&["--beams", "2", "--early-stopping", "sometimes"]),
        "sometimes",
    );
    bad(
        &beam(&["--beams", "2", "--length-penalty", "nan"]),
        "--length-penalty",
    );
    bad(
        &beam(&["--beams", "2", "--length-penalty", "abc"]),
        "--length-penalty",
    );
    bad(
        &beam(&["--beams", "2", "--max-new-tokens", "0"]),
        "max_new_tokens",
    );
    bad(&beam(&["--beams", "2", "--top-k", "3"]), "--top-k");
    bad(&beam(&["--beams", "2", "--batch", "3"]), "--batch");
}
