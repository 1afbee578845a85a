//! `wgsample beam`: beam search over a bigram model, on both backends.

mod support;

use support::*;

#[test]
fn beam_gpu_equals_cpu() {
    let s = Scratch::new("beam-gpu");
    let v = 48usize;
    let table: Vec<f32> = (0..v * v)
        .map(|i| ((i * 104_729 % 997) as f32) * 0.007 - 3.5)
        .collect();
    let f = s.file("b.npy", &npy_bigram(&table, v));
    let f = f.as_str();
    let configs: [&[&str]; 5] = [
        &["--beams", "1"],
        &[
            "--beams",
            "3",
            "--num-return-sequences",
            "3",
            "--max-new-tokens",
            "8",
        ],
        &[
            "--beams",
            "4",
            "--eos",
            "7",
            "--eos",
            "11",
            "--num-return-sequences",
            "2",
            "--early-stopping",
            "true",
        ],
        &[
            "--beams",
            "4",
            "--eos",
            "7",
            "--length-penalty",
            "2",
            "--early-stopping",
            "never",
            "--max-new-tokens",
            "12",
        ],
        &[
            "--beams",
            "5",
            "--eos",
            "3",
            "--length-penalty",
            "-0.5",
            "--early-stopping",
            "false",
            "--num-return-sequences",
            "5",
        ],
    ];
    for extra in configs {
        let mut a = vec!["beam", "--bigram", f, "--start", "2"];
        a.extend_from_slice(extra);
        let mut cpu = a.clone();
        cpu.extend_from_slice(&["--backend", "cpu"]);
        let mut gpu = a.clone();
        gpu.extend_from_slice(&["--backend", "gpu"]);
        let c = beam_rows(&json_any_stderr(&cpu));
        let g = beam_rows(&json_any_stderr(&gpu));
        assert!(!c.is_empty());
        assert_eq!(c.len(), g.len(), "{extra:?}");
        for ((tc, sc), (tg, sg)) in c.iter().zip(&g) {
            assert_eq!(tc, tg, "{extra:?}: tokens differ");
            assert!(
                (sc - sg).abs() <= 1e-4 * sc.abs().max(1.0),
                "{extra:?}: score {sc} vs {sg}"
            );
            assert!(tc.iter().all(|&t| (t as usize) < v));
        }
        // Best first.
        for w in c.windows(2) {
            assert!(w[0].1 >= w[1].1, "{extra:?}: not best first: {c:?}");
        }
    }
}

#[test]
fn beam_greedy_chain() {
    // With one beam, beam search is greedy: 0 -> 1 -> 2 -> 5 (EOS).
    let s = Scratch::new("beam-chain");
    let f = s.file("chain.npy", &npy_bigram(&chain_table(), 6));
    let rows = beam_rows(&ok_json(&[
        "beam", "--bigram", &f, "--start", "0", "--beams", "1", "--eos", "5",
    ]));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, [1, 2, 5]);
    assert!(rows[0].1 < 0.0);
}
