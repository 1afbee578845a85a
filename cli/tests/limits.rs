//! Robustness: counts that size allocations are bounded, and GPU runs print
//! nothing on stderr when XDG_RUNTIME_DIR is unset.

mod support;

use support::*;

#[test]
fn huge_counts_are_errors_that_name_the_limit() {
    let s = Scratch::new("huge-counts");
    let g = s.file("g.npy", &npy_bigram(&chain_table(), 6));
    let g = g.as_str();
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    let f = f.as_str();
    let gen_ = |extra: &[&'static str]| {
        let mut a = vec!["generate", "--bigram", g, "--start", "0"];
        a.extend_from_slice(extra);
        a
    };
    for backend in ["cpu", "gpu"] {
        bad_limited(
            &gen_(&["--batch", "1000000000", "--backend", backend]),
            "--batch 1000000000 is above the limit of 65536",
        );
        bad_limited(
            &gen_(&["--max-new-tokens", "4294967295", "--backend", backend]),
            "--max-new-tokens 4294967295 is above the limit of 1000000",
        );
        bad_limited(
            &gen_(&[
                "--batch",
                "65536",
                "--max-new-tokens",
                "1000",
                "--backend",
                backend,
            ]),
            "limit of 10000000 tokens",
        );
        bad_limited(
            &[
                "sample",
                "--logits",
                f,
                "--steps",
                "4294967295",
                "--backend",
                backend,
            ],
            "--steps 4294967295 is above the limit of 1000000",
        );
        bad_limited(
            &[
                "beam",
                "--bigram",
                g,
                "--start",
                "0",
                "--beams",
                "2",
                "--max-new-tokens",
                "4294967295",
                "--backend",
                backend,
            ],
            "limit of 1000000",
        );
    }
    bad(&gen_(&["--batch", "99999999999999999999999"]), "--batch");
    // --steps times the file's rows is bounded too.
    let rows = test_rows(20, 8);
    let m = s.file("m.npy", &npy_f32_mat(&rows));
    bad_limited(
        &["sample", "--logits", &m, "--steps", "1000000"],
        "limit of 10000000 tokens",
    );
    // At the limits, runs work.
    // (Counted by hand: the test's JSON reader is slow on 16 MB.)
    let r = wgsample(&[
        "sample",
        "--logits",
        f,
        "--steps",
        "1000000",
        "--temperature",
        "0",
    ]);
    assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""));
    let tokens = r
        .stdout
        .split_once("\"tokens\": [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list.split(", ").filter(|t| *t == "3").count());
    assert_eq!(tokens, Some(1_000_000));
    let r = wgsample(&gen_(&["--batch", "65536", "--max-new-tokens", "2"]));
    assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""));
    assert_eq!(r.stdout.matches("\"stop_reason\"").count(), 65536);
    // The limits are in --help.
    let help = wgsample(&["--help"]).stdout;
    for word in ["1000000", "10000000", "65536"] {
        assert!(help.contains(word), "--help does not mention {word}");
    }
}

#[test]
fn gpu_runs_print_no_xdg_runtime_dir_line_when_it_is_unset() {
    let s = Scratch::new("xdg");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    let g = s.file("g.npy", &npy_bigram(&chain_table(), 6));
    let run = |args: &[&str]| {
        let child = Command::new(env!("CARGO_BIN_EXE_wgsample"))
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run wgsample");
        let pid = child.id();
        let out = child.wait_with_output().expect("wait for wgsample");
        // The private runtime directory is gone once the run ends.
        let dir = std::env::temp_dir().join(format!("wgsample-runtime-{pid}-0"));
        assert!(!dir.exists(), "{} was left behind", dir.display());
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    // A GPU run that succeeds prints nothing on stderr.
    let args = ["sample", "--logits", &f, "--backend", "gpu", "--steps", "3"];
    let r = run(&args);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stderr, "", "stderr of a GPU run");
    assert_eq!(r.stdout.matches('\n').count(), 1);
    // A GPU run whose error is found only on the GPU path (the device's
    // workgroup grid holds 65535 rows, not 65536) prints exactly its one
    // error line.
    let args = [
        "generate",
        "--bigram",
        &g,
        "--start",
        "0",
        "--batch",
        "65536",
        "--max-new-tokens",
        "1",
        "--backend",
        "gpu",
    ];
    let r = run(&args);
    assert!(!r.stderr.contains("XDG_RUNTIME_DIR"), "{:?}", r.stderr);
    if r.code == Some(0) {
        assert_eq!(r.stderr, "");
    } else {
        bad_run(&r, &args, "max_batch");
    }
    // The exit code of the re-run is the program's own.
    let r = run(&[
        "beam",
        "--bigram",
        &g,
        "--start",
        "0",
        "--beams",
        "0",
        "--backend",
        "gpu",
    ]);
    assert_eq!(r.code, Some(2));
    assert!(!r.stderr.contains("XDG_RUNTIME_DIR"), "{:?}", r.stderr);
}
