//! The command line itself: `--help`, and bad arguments (exit code 2 and
//! one `error: ` line).

mod support;

use support::*;

#[test]
fn help_prints_usage_and_exits_zero() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["dist", "--help"],
        &["sample", "-h"],
    ] {
        let r = wgsample(args);
        assert_eq!(r.code, Some(0), "{args:?}");
        assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
        assert!(r.stdout.contains("Usage:"), "{}", r.stdout);
        for word in [
            "wgsample dist",
            "wgsample sample",
            "--logits",
            "--vocab",
            "--row",
            "--steps",
            "--backend",
            "--temperature",
            "--top-k",
            "--top-p",
            "--min-p",
            "--repetition-penalty",
            "--presence-penalty",
            "--frequency-penalty",
            "--logit-bias",
            "--ban",
            "--allow",
            "--eos",
            "--min-new-tokens",
            "--seed",
            "--prompt-tokens",
            "--output-tokens",
            "--top-logprobs",
            "top_logprobs",
            "ranks",
        ] {
            assert!(r.stdout.contains(word), "usage lacks {word}");
        }
    }
}

#[test]
fn help_lists_generate_and_beam() {
    let r = wgsample(&["--help"]);
    assert_eq!(r.code, Some(0));
    for word in [
        "wgsample generate",
        "wgsample beam",
        "--bigram",
        "--start",
        "--max-new-tokens",
        "--stop-tokens",
        "--batch",
        "--beams",
        "--length-penalty",
        "--early-stopping",
        "--num-return-sequences",
        "stop_reason",
        "score",
    ] {
        assert!(r.stdout.contains(word), "usage lacks {word}");
    }
    let r = wgsample(&["generate", "--help"]);
    assert_eq!(r.code, Some(0));
}

#[test]
fn help_lists_verify() {
    let r = wgsample(&["--help"]);
    assert_eq!(r.code, Some(0));
    for word in [
        "wgsample verify",
        "--target",
        "--draft-tokens",
        "--draft-probs",
        "[k+1, V]",
        "[B, k+1, V]",
        "\"accepted\"",
        "seed S + r",
        "at most 32",
    ] {
        assert!(r.stdout.contains(word), "usage lacks {word}");
    }
    let r = wgsample(&["verify", "--help"]);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.contains("wgsample verify"));
    bad(
        &["verify"],
        "`verify` needs --target FILE and --draft-tokens",
    );
    bad(&["vrfy"], "a similar one exists: 'verify'");
}

#[test]
fn bad_command_lines() {
    let s = Scratch::new("bad-args");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    let f = f.as_str();
    bad(&[], "no command");
    bad(&["frobnicate"], "unknown command");
    bad(&["--logits", f], "command");
    bad(&["dist"], "--logits");
    bad(&["sample", "--top-k", "2"], "--logits");
    bad(&["dist", "--logits", f, "--bogus", "1"], "--bogus");
    bad(&["dist", "--logits", f, "--bogus=1"], "--bogus");
    bad(&["dist", "--logits", f, "-x"], "-x");
    bad(&["dist", "--logits", f, "stray"], "stray");
    bad(&["dist", "--logits"], "--logits needs a value");
    bad(&["dist", "--logits", f, "--top-k"], "--top-k needs a value");
    bad(
        &["dist", "--logits", f, "--top-k", "--seed", "1"],
        "--top-k needs a value",
    );
    bad(&["dist", "--logits", f, "--steps", "2"], "--steps");
    bad(&["dist", "--logits", f, "--backend", "cpu"], "--backend");
    bad(&["sample", "--logits", f, "--row", "0"], "--row");
    bad(
        &["dist", "--logits", f, "--seed", "1", "--seed", "2"],
        "more than once",
    );
    bad(&["sample", "--logits", f, "--backend", "tpu"], "tpu");
}

#[test]
fn bad_numbers() {
    let s = Scratch::new("bad-numbers");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    let f = f.as_str();
    bad(&["dist", "--logits", f, "--temperature", "warm"], "warm");
    bad(&["dist", "--logits", f, "--top-p="], "--top-p");
    bad(&["dist", "--logits", f, "--top-k", "1.5"], "1.5");
    bad(&["dist", "--logits", f, "--top-k", "-1"], "--top-k");
    bad(&["dist", "--logits", f, "--top-k", "4294967296"], "--top-k");
    bad(&["dist", "--logits", f, "--seed", "0x10"], "--seed");
    bad(&["dist", "--logits", f, "--row", "one"], "--row");
    bad(&["dist", "--logits", f, "--vocab", "-4"], "--vocab");
    bad(&["sample", "--logits", f, "--steps", "many"], "--steps");
    bad(
        &["dist", "--logits", f, "--min-new-tokens", "x"],
        "--min-new-tokens",
    );
    bad(&["dist", "--logits", f, "--ban", "two"], "--ban");
    bad(&["dist", "--logits", f, "--eos", ""], "--eos");
    bad(&["dist", "--logits", f, "--allow", "1,,2"], "--allow");
    bad(
        &["dist", "--logits", f, "--prompt-tokens", "1;2"],
        "--prompt-tokens",
    );
    bad(
        &["dist", "--logits", f, "--output-tokens", "a"],
        "--output-tokens",
    );
    bad(&["dist", "--logits", f, "--logit-bias", "3"], "TOKEN=BIAS");
    bad(
        &["dist", "--logits", f, "--logit-bias", "x=1"],
        "--logit-bias",
    );
    bad(&["dist", "--logits", f, "--logit-bias", "1=big"], "big");
}

#[test]
fn bad_parameter_ranges_name_the_field() {
    let s = Scratch::new("bad-ranges");
    let f = s.file("l.npy", &npy_f32_mat(&[ln_1234(), ln_1234()]));
    let f = f.as_str();
    for cmd in ["dist", "sample"] {
        bad(&[cmd, "--logits", f, "--temperature", "-1"], "temperature");
        bad(&[cmd, "--logits", f, "--temperature", "inf"], "temperature");
        bad(&[cmd, "--logits", f, "--top-p", "1.5"], "top_p");
        bad(&[cmd, "--logits", f, "--top-p=0"], "top_p");
        bad(&[cmd, "--logits", f, "--min-p", "1"], "min_p");
        bad(
            &[cmd, "--logits", f, "--repetition-penalty", "0"],
            "repetition_penalty",
        );
        bad(
            &[cmd, "--logits", f, "--presence-penalty", "nan"],
            "presence_penalty",
        );
        bad(
            &[cmd, "--logits", f, "--frequency-penalty", "-inf"],
            "frequency_penalty",
        );
        bad(&[cmd, "--logits", f, "--logit-bias", "1=nan"], "logit_bias");
        bad(
            &[
                cmd,
                "--logits",
                f,
                "--logit-bias",
                "1=1",
                "--logit-bias",
                "1=2",
            ],
            "logit_bias",
        );
    }
}

#[test]
fn bad_token_ids() {
    let s = Scratch::new("bad-tokens");
    let f = s.file("l.npy", &npy_f32_mat(&[ln_1234(), ln_1234()]));
    let f = f.as_str();
    for cmd in ["dist", "sample"] {
        bad(&[cmd, "--logits", f, "--ban", "4"], "banned_tokens");
        bad(&[cmd, "--logits", f, "--eos", "9"], "eos_token_ids");
        bad(&[cmd, "--logits", f, "--logit-bias", "4=1"], "logit_bias");
        bad(&[cmd, "--logits", f, "--allow", "0,4"], "allowed_tokens");
        bad(
            &[cmd, "--logits", f, "--prompt-tokens", "1,4"],
            "prompt_tokens",
        );
        bad(
            &[cmd, "--logits", f, "--output-tokens", "5"],
            "output_tokens",
        );
        bad(&[cmd, "--logits", f, "--ban", "4294967295"], "token id");
    }
}

#[test]
fn empty_token_lists_are_errors_for_every_list_flag() {
    let s = Scratch::new("empty-lists");
    let f = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    let g = s.file("g.npy", &npy_bigram(&chain_table(), 6));
    for flag in ["--allow", "--prompt-tokens", "--output-tokens"] {
        for cmd in ["dist", "sample"] {
            bad(
                &[cmd, "--logits", &f, flag, ""],
                &format!("{flag} needs at least one token id"),
            );
            let eq = format!("{flag}=");
            bad(
                &[cmd, "--logits", &f, &eq],
                &format!("{flag} needs at least one token id"),
            );
        }
    }
    for flag in ["--allow", "--stop-tokens"] {
        bad(
            &["generate", "--bigram", &g, "--start", "0", flag, " "],
            &format!("{flag} needs at least one token id"),
        );
    }
    assert!(
        wgsample(&["--help"])
            .stdout
            .contains("needs\nat least one id")
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_argument_is_an_error() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_wgsample"))
        .arg("dist")
        .arg("--logits")
        .arg(std::ffi::OsStr::from_bytes(b"\xff.npy"))
        .output()
        .expect("run wgsample");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.starts_with("error: ") && stderr.matches('\n').count() == 1);
    assert!(stderr.contains("UTF-8"), "{stderr}");
}
