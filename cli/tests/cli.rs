//! End-to-end tests of the `wgsample` binary: they write logits files to a
//! temporary directory, run the built binary on them and check its stdout,
//! stderr and exit code.
//!
//! Why they are shaped this way: the CLI's contract is its observable
//! behaviour (one JSON line on success, exactly one `error: ` line and exit
//! code 2 on bad input, never a panic), so the tests look only at that. The
//! `.npy` files are written here by an independent little writer, and the
//! JSON is read back by a small strict parser, so that a bug in the
//! binary's own reader or printer cannot hide itself. Expected values are
//! computed here in f64 from the SPEC's definitions, on inputs chosen far
//! from the SPEC's knife edges.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------
// Scratch files
// ---------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "wgsample-cli-test-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// Writes `bytes` to `name` in the scratch dir and returns its path as
    /// a string for the command line.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write scratch file");
        p.to_str().expect("utf-8 temp path").to_string()
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `.npy` file with the given version, dtype string, shape literal,
/// order and raw data bytes, laid out as NumPy writes it (header padded
/// with spaces to a multiple of 64 bytes, ending in a newline).
fn npy_with(version: u8, descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    npy_raw_header(version, &dict, data)
}

/// A `.npy` file whose header dict text is given verbatim.
fn npy_raw_header(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let prefix = if version == 1 { 10 } else { 12 };
    let mut header = dict.as_bytes().to_vec();
    while !(prefix + header.len() + 1).is_multiple_of(64) {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.push(version);
    out.push(0);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16_bytes(v: &[half::f16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}

/// f32 `.npy` of shape `[V]`.
fn npy_f32_vec(v: &[f32]) -> Vec<u8> {
    npy_with(1, "<f4", &format!("({},)", v.len()), false, &f32_bytes(v))
}

/// f32 `.npy` of shape `[B, V]` from rows of equal length.
fn npy_f32_mat(rows: &[Vec<f32>]) -> Vec<u8> {
    let v = rows.first().map_or(0, |r| r.len());
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    npy_with(
        1,
        "<f4",
        &format!("({}, {v})", rows.len()),
        false,
        &f32_bytes(&flat),
    )
}

/// `[0, ln 2, ln 3, ln 4]`: probabilities `[0.1, 0.2, 0.3, 0.4]`.
fn ln_1234() -> Vec<f32> {
    (1..=4).map(|i| (i as f32).ln()).collect()
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn wgsample(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_wgsample"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run wgsample");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs and expects success: exit 0, nothing on stderr, exactly one line
/// of valid JSON on stdout, which is returned parsed.
fn ok_json(args: &[&str]) -> Json {
    let r = wgsample(args);
    assert_eq!(
        r.code,
        Some(0),
        "args {args:?}\nstdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    assert!(r.stderr.is_empty(), "args {args:?}: stderr {:?}", r.stderr);
    assert!(
        r.stdout.ends_with('\n') && r.stdout.matches('\n').count() == 1,
        "args {args:?}: stdout is not one line: {:?}",
        r.stdout
    );
    match parse_json(r.stdout.trim_end_matches('\n')) {
        Ok(j) => j,
        Err(e) => panic!("args {args:?}: invalid JSON ({e}): {}", r.stdout),
    }
}

/// Runs and expects a clean bad-input failure: exit 2, nothing on stdout,
/// exactly one stderr line starting with `error: ` that contains `needle`
/// (case-insensitive), and no panic text.
fn bad(args: &[&str], needle: &str) {
    bad_run(&wgsample(args), args, needle);
}

/// The checks of [`bad`] on a finished run.
fn bad_run(r: &Run, args: &[&str], needle: &str) {
    assert_eq!(
        r.code,
        Some(2),
        "args {args:?}\nstdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.is_empty(), "args {args:?}: stdout {:?}", r.stdout);
    assert!(
        r.stderr.starts_with("error: ")
            && r.stderr.ends_with('\n')
            && r.stderr.matches('\n').count() == 1,
        "args {args:?}: stderr is not one `error: ` line: {:?}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("backtrace"),
        "args {args:?}: {:?}",
        r.stderr
    );
    assert!(
        r.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "args {args:?}: stderr {:?} does not mention {needle:?}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------
// A small strict JSON reader (numbers kept as text to check round-trips)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(kv) => match kv.iter().find(|(k, _)| k == key) {
                Some((_, v)) => v,
                None => panic!("no key {key:?} in {self:?}"),
            },
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(kv) => kv.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            _ => panic!("not an array: {self:?}"),
        }
    }

    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }

    fn u32s(&self) -> Vec<u32> {
        self.arr()
            .iter()
            .map(|x| match x {
                Json::Num(s) => s.parse::<u32>().expect("token id"),
                _ => panic!("not a number: {x:?}"),
            })
            .collect()
    }

    fn f32s(&self) -> Vec<f32> {
        self.arr()
            .iter()
            .map(|x| match x {
                Json::Num(s) => s.parse::<f32>().expect("float"),
                _ => panic!("not a number: {x:?}"),
            })
            .collect()
    }
}

fn parse_json(text: &str) -> Result<Json, String> {
    let b = text.as_bytes();
    let mut pos = 0;
    let v = json_value(b, &mut pos, 0)?;
    json_ws(b, &mut pos);
    if pos != b.len() {
        return Err(format!("trailing text at {pos}"));
    }
    Ok(v)
}

fn json_ws(b: &[u8], pos: &mut usize) {
    while matches!(b.get(*pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        *pos += 1;
    }
}

fn json_lit(b: &[u8], pos: &mut usize, word: &str, v: Json) -> Result<Json, String> {
    if b[*pos..].starts_with(word.as_bytes()) {
        *pos += word.len();
        Ok(v)
    } else {
        Err(format!("bad literal at {pos}"))
    }
}

fn json_value(b: &[u8], pos: &mut usize, depth: usize) -> Result<Json, String> {
    if depth > 64 {
        return Err("too deep".into());
    }
    json_ws(b, pos);
    match b.get(*pos) {
        None => Err("unexpected end".into()),
        Some(b'n') => json_lit(b, pos, "null", Json::Null),
        Some(b't') => json_lit(b, pos, "true", Json::Bool(true)),
        Some(b'f') => json_lit(b, pos, "false", Json::Bool(false)),
        Some(b'"') => json_string(b, pos).map(Json::Str),
        Some(b'[') => {
            *pos += 1;
            let mut items = Vec::new();
            json_ws(b, pos);
            if b.get(*pos) == Some(&b']') {
                *pos += 1;
                return Ok(Json::Arr(items));
            }
            loop {
                items.push(json_value(b, pos, depth + 1)?);
                json_ws(b, pos);
                match b.get(*pos) {
                    Some(b',') => *pos += 1,
                    Some(b']') => {
                        *pos += 1;
                        return Ok(Json::Arr(items));
                    }
                    _ => return Err(format!("expected , or ] at {pos}")),
                }
            }
        }
        Some(b'{') => {
            *pos += 1;
            let mut kv = Vec::new();
            json_ws(b, pos);
            if b.get(*pos) == Some(&b'}') {
                *pos += 1;
                return Ok(Json::Obj(kv));
            }
            loop {
                json_ws(b, pos);
                if b.get(*pos) != Some(&b'"') {
                    return Err(format!("expected key at {pos}"));
                }
                let k = json_string(b, pos)?;
                json_ws(b, pos);
                if b.get(*pos) != Some(&b':') {
                    return Err(format!("expected : at {pos}"));
                }
                *pos += 1;
                kv.push((k, json_value(b, pos, depth + 1)?));
                json_ws(b, pos);
                match b.get(*pos) {
                    Some(b',') => *pos += 1,
                    Some(b'}') => {
                        *pos += 1;
                        return Ok(Json::Obj(kv));
                    }
                    _ => return Err(format!("expected , or }} at {pos}")),
                }
            }
        }
        Some(_) => json_number(b, pos).map(Json::Num),
    }
}

fn json_string(b: &[u8], pos: &mut usize) -> Result<String, String> {
    *pos += 1;
    let mut out = String::new();
    loop {
        match b.get(*pos) {
            None => return Err("unterminated string".into()),
            Some(b'"') => {
                *pos += 1;
                return Ok(out);
            }
            Some(b'\\') => {
                let c = b.get(*pos + 1).ok_or("bad escape")?;
                match c {
                    b'"' | b'\\' | b'/' => out.push(*c as char),
                    b'n' => out.push('\n'),
                    b't' => out.push('\t'),
                    b'r' => out.push('\r'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'u' => {
                        let hex = b.get(*pos + 2..*pos + 6).ok_or("bad \\u")?;
                        let n = u32::from_str_radix(std::str::from_utf8(hex).unwrap(), 16)
                            .map_err(|_| "bad \\u")?;
                        out.push(char::from_u32(n).ok_or("bad \\u")?);
                        *pos += 4;
                    }
                    _ => return Err("bad escape".into()),
                }
                *pos += 2;
            }
            Some(&c) if c < 0x20 => return Err("control character in string".into()),
            Some(_) => {
                // Copy one UTF-8 character.
                let rest = std::str::from_utf8(&b[*pos..]).map_err(|_| "bad utf-8")?;
                let ch = rest.chars().next().ok_or("bad utf-8")?;
                out.push(ch);
                *pos += ch.len_utf8();
            }
        }
    }
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn json_number(b: &[u8], pos: &mut usize) -> Result<String, String> {
    let start = *pos;
    let digits = |pos: &mut usize| {
        let s = *pos;
        while matches!(b.get(*pos), Some(c) if c.is_ascii_digit()) {
            *pos += 1;
        }
        *pos - s
    };
    if b.get(*pos) == Some(&b'-') {
        *pos += 1;
    }
    let int_start = *pos;
    let n = digits(pos);
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return Err(format!("bad number at {start}"));
    }
    if b.get(*pos) == Some(&b'.') {
        *pos += 1;
        if digits(pos) == 0 {
            return Err(format!("bad fraction at {start}"));
        }
    }
    if matches!(b.get(*pos), Some(b'e' | b'E')) {
        *pos += 1;
        if matches!(b.get(*pos), Some(b'+' | b'-')) {
            *pos += 1;
        }
        if digits(pos) == 0 {
            return Err(format!("bad exponent at {start}"));
        }
    }
    Ok(String::from_utf8_lossy(&b[start..*pos]).into_owned())
}

#[test]
fn json_reader_is_strict() {
    assert!(parse_json(r#"{"a": [1, -0.5, 2e3, null], "b": "x\"y"}"#).is_ok());
    for bad in [
        "NaN",
        "[inf]",
        "[01]",
        "[1.]",
        "{\"a\" 1}",
        "[1,]",
        "[1] x",
        "-",
    ] {
        assert!(parse_json(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------
// Expected values, in f64 from the SPEC's definitions
// ---------------------------------------------------------------------------

fn log_softmax(z: &[f32]) -> Vec<f64> {
    let m = z
        .iter()
        .fold(f64::NEG_INFINITY, |a, &x| a.max(f64::from(x)));
    let s: f64 = z.iter().map(|&x| (f64::from(x) - m).exp()).sum();
    z.iter().map(|&x| f64::from(x) - m - s.ln()).collect()
}

fn argmax(z: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in z.iter().enumerate() {
        if x > z[best] {
            best = i;
        }
    }
    best as u32
}

fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (f64::from(*g) - w).abs() <= tol,
            "got {got:?}, want {want:?}"
        );
    }
}

/// Checks a `dist` line: keys in order, status, tokens and probabilities.
fn check_dist(j: &Json, status: &str, tokens: &[u32], probs: &[f64]) {
    assert_eq!(j.keys(), ["status", "tokens", "probs"]);
    assert_eq!(j.get("status").str(), status);
    assert_eq!(j.get("tokens").u32s(), tokens);
    assert_close(&j.get("probs").f32s(), probs, 1e-6);
}

/// The rows of a `sample` line, each checked for its keys, as
/// `(tokens, logprobs, status)`.
fn sample_rows(j: &Json) -> Vec<(Vec<u32>, Vec<f32>, String)> {
    assert_eq!(j.keys(), ["rows"]);
    j.get("rows")
        .arr()
        .iter()
        .map(|r| {
            assert_eq!(r.keys(), ["tokens", "logprobs", "status"]);
            let tokens = r.get("tokens").u32s();
            let logprobs = r.get("logprobs").f32s();
            assert_eq!(tokens.len(), logprobs.len());
            for lp in &logprobs {
                assert!(lp.is_finite() && *lp <= 0.0, "logprob {lp}");
            }
            (tokens, logprobs, r.get("status").str().to_string())
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------

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
        ] {
            assert!(r.stdout.contains(word), "usage lacks {word}");
        }
    }
}

// ---------------------------------------------------------------------------
// dist
// ---------------------------------------------------------------------------

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
    let f = s.file(
        "l.npy",
        &npy_with(1, "<f2", "(1, 4)", false, &f16_bytes(&h)),
    );
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
            &npy_with(version, "<f4", "(4,)", false, &f32_bytes(&ln_1234())),
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

// ---------------------------------------------------------------------------
// sample
// ---------------------------------------------------------------------------

/// A few rows of distinct, irregular logits with clear argmaxes.
fn test_rows(batch: usize, vocab: usize) -> Vec<Vec<f32>> {
    (0..batch)
        .map(|b| {
            (0..vocab)
                .map(|i| (((i * 37 + b * 11) % vocab) as f32) * 0.25 - 3.0)
                .collect()
        })
        .collect()
}

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
        &npy_with(3, "<f2", "(2, 40)", false, &f16_bytes(&h)),
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

// ---------------------------------------------------------------------------
// Bad input: exit code 2 and one `error: ` line
// ---------------------------------------------------------------------------

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

#[test]
fn bad_files() {
    let s = Scratch::new("bad-files");
    let missing = s.path().join("missing.npy");
    bad(
        &["dist", "--logits", missing.to_str().unwrap()],
        "missing.npy",
    );
    bad(
        &["dist", "--logits", s.path().to_str().unwrap()],
        "directory",
    );
    bad(&["dist", "--logits", ""], "--logits");
    let empty = s.file("empty.bin", b"");
    bad(&["dist", "--logits", &empty], "--vocab");
    bad(&["dist", "--logits", &empty, "--vocab", "4"], "empty");
    let raw = s.file("l.bin", &f32_bytes(&[1.0, 2.0, 3.0]));
    bad(&["sample", "--logits", &raw], "--vocab");
    bad(&["sample", "--logits", &raw, "--vocab", "2"], "multiple");
    bad(&["sample", "--logits", &raw, "--vocab", "0"], "--vocab");
    bad(
        &[
            "sample",
            "--logits",
            &raw,
            "--vocab",
            "18446744073709551615",
        ],
        "--vocab",
    );
    let npy = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    bad(&["dist", "--logits", &npy, "--vocab", "3"], "--vocab");
}

#[test]
fn bad_npy_files() {
    let s = Scratch::new("bad-npy");
    let d = f32_bytes(&ln_1234());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("good", npy_with(1, "<f4", "(4,)", false, &d), ""),
        ("f8", npy_with(1, "<f8", "(2,)", false, &d), "'<f8'"),
        ("i4", npy_with(1, "<i4", "(4,)", false, &d), "'<i4'"),
        ("bf16", npy_with(1, "<V2", "(8,)", false, &d), "'<V2'"),
        ("be", npy_with(1, ">f4", "(4,)", false, &d), "big-endian"),
        ("be16", npy_with(1, ">f2", "(8,)", false, &d), "'>f2'"),
        (
            "fortran",
            npy_with(1, "<f4", "(2, 2)", true, &d),
            "fortran_order",
        ),
        ("3d", npy_with(1, "<f4", "(1, 2, 2)", false, &d), "shape"),
        ("scalar", npy_with(1, "<f4", "()", false, &d[..4]), "shape"),
        ("zero", npy_with(1, "<f4", "(0, 4)", false, &[]), "shape"),
        (
            "short",
            npy_with(1, "<f4", "(5,)", false, &d),
            "needs 20 bytes",
        ),
        (
            "long",
            npy_with(1, "<f4", "(3,)", false, &d),
            "needs 12 bytes",
        ),
        (
            "huge",
            npy_with(1, "<f4", "(4294967296, 4294967296)", false, &d),
            "shape",
        ),
        (
            "negative",
            npy_with(1, "<f4", "(-4,)", false, &d),
            "dimension",
        ),
        (
            "version",
            npy_with(9, "<f4", "(4,)", false, &d),
            "version 9.0",
        ),
        (
            "structured",
            npy_raw_header(
                1,
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }",
                &d,
            ),
            "dtype",
        ),
        (
            "noshape",
            npy_raw_header(1, "{'descr': '<f4', 'fortran_order': False}", &d),
            "shape",
        ),
        ("garbage", npy_raw_header(1, "hello world", &d), "header"),
        (
            "unclosed",
            npy_raw_header(1, "{'descr': '<f4'", &d),
            "header",
        ),
        (
            "nesting",
            npy_raw_header(1, &"(".repeat(5000), &d),
            "header",
        ),
        ("magic-only", b"\x93NUMPY".to_vec(), "truncated"),
        ("no-len", b"\x93NUMPY\x01\x00".to_vec(), "truncated"),
        (
            "len-past-end",
            [&b"\x93NUMPY\x02\x00"[..], &u32::MAX.to_le_bytes(), b"{}"].concat(),
            "header",
        ),
        (
            "binary-header",
            [&b"\x93NUMPY\x01\x00\x04\x00"[..], &[0xff, 0xfe, 0x00, 0x80]].concat(),
            "header",
        ),
    ];
    for (name, bytes, needle) in cases {
        let f = s.file(&format!("{name}.npy"), &bytes);
        if needle.is_empty() {
            // The control case: a good file really is accepted.
            let r = wgsample(&["dist", "--logits", &f]);
            assert_eq!(r.code, Some(0), "{}", r.stderr);
            continue;
        }
        bad(&["dist", "--logits", &f], needle);
        bad(&["sample", "--logits", &f], needle);
    }
    // Every truncation of a good file is a clean error.
    let good = npy_with(2, "<f4", "(4,)", false, &d);
    for cut in 0..good.len() {
        let f = s.file("cut.npy", &good[..cut]);
        let r = wgsample(&["dist", "--logits", &f]);
        assert_eq!(r.code, Some(2), "cut at {cut}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("error: ") && r.stderr.matches('\n').count() == 1,
            "cut at {cut}: {:?}",
            r.stderr
        );
    }
}

/// Runs `sample` and returns its rows, ignoring stderr (the software
/// Vulkan driver may print environment warnings there).
fn sample_json_any_stderr(args: &[&str]) -> Vec<(Vec<u32>, Vec<f32>, String)> {
    let r = wgsample(args);
    assert_eq!(r.code, Some(0), "args {args:?}\nstderr: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let j = parse_json(r.stdout.trim_end_matches('\n')).expect("valid JSON");
    sample_rows(&j)
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

// ---------------------------------------------------------------------------
// generate and beam (bigram model)
// ---------------------------------------------------------------------------

/// A `[V, V]` f32 `.npy` bigram table.
fn npy_bigram(table: &[f32], vocab: usize) -> Vec<u8> {
    assert_eq!(table.len(), vocab * vocab);
    npy_with(
        1,
        "<f4",
        &format!("({vocab}, {vocab})"),
        false,
        &f32_bytes(table),
    )
}

/// Runs a command that may print driver warnings on stderr, and returns
/// its JSON. For `--backend gpu` the run must really have used a GPU
/// adapter: the CPU fallback note fails the test with the install hint.
fn json_any_stderr(args: &[&str]) -> Json {
    let r = wgsample(args);
    assert_eq!(
        r.code,
        Some(0),
        "args {args:?}\nstdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    if args.iter().any(|a| *a == "gpu" || *a == "--backend=gpu") {
        assert!(
            !r.stderr.contains("falling back"),
            "the GPU test ran on the CPU fallback ({}); to get a GPU adapter, {}",
            r.stderr.trim(),
            wgsample::gpu::INSTALL_HINT
        );
    }
    assert!(
        r.stdout.ends_with('\n') && r.stdout.matches('\n').count() == 1,
        "{:?}",
        r.stdout
    );
    parse_json(r.stdout.trim_end_matches('\n')).expect("valid JSON")
}

/// `generate`'s sequences as (tokens, stop_reason).
fn generate_rows(j: &Json) -> Vec<(Vec<u32>, String)> {
    assert_eq!(j.keys(), ["sequences"]);
    j.get("sequences")
        .arr()
        .iter()
        .map(|s| {
            assert_eq!(s.keys(), ["tokens", "stop_reason"]);
            (
                s.get("tokens").u32s(),
                s.get("stop_reason").str().to_string(),
            )
        })
        .collect()
}

/// Runs `generate` with `args` on both backends, checks they agree and
/// returns the rows.
fn generate_both(args: &[&str]) -> Vec<(Vec<u32>, String)> {
    let mut cpu = vec!["generate"];
    cpu.extend_from_slice(args);
    let mut gpu = cpu.clone();
    cpu.extend_from_slice(&["--backend", "cpu"]);
    gpu.extend_from_slice(&["--backend", "gpu"]);
    let c = generate_rows(&json_any_stderr(&cpu));
    let g = generate_rows(&json_any_stderr(&gpu));
    assert_eq!(c, g, "generate {args:?}: gpu differs from cpu");
    c
}

/// A greedy chain over V = 6: 0 -> 1 -> 2 -> 5 -> 4 -> (nothing: every
/// logit of row 4 is -inf), with 3 as row 2's second choice and 3 -> 5.
fn chain_table() -> Vec<f32> {
    let v = 6;
    let mut t = vec![-5.0f32; v * v];
    let mut set = |from: usize, to: usize, x: f32| t[from * v + to] = x;
    set(0, 1, 3.0);
    set(1, 2, 3.0);
    set(2, 5, 3.0);
    set(2, 3, 2.0);
    set(3, 5, 3.0);
    set(5, 4, 3.0);
    for x in &mut t[4 * v..5 * v] {
        *x = f32::NEG_INFINITY;
    }
    t
}

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

/// `head` followed by `extra`.
fn joined<'a>(head: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(extra).copied().collect()
}

#[test]
fn generate_and_beam_bad_input() {
    let s = Scratch::new("gen-bad");
    let good = s.file("g.npy", &npy_bigram(&chain_table(), 6));
    // Leaked so the argument lists below can be built by plain closures.
    let g: &'static str = good.leak();
    let nonsq = s.file(
        "n.npy",
        &npy_with(1, "<f4", "(2, 3)", false, &f32_bytes(&[0.0; 6])),
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

/// `beam`'s sequences as (tokens, score).
fn beam_rows(j: &Json) -> Vec<(Vec<u32>, f32)> {
    assert_eq!(j.keys(), ["sequences"]);
    j.get("sequences")
        .arr()
        .iter()
        .map(|s| {
            assert_eq!(s.keys(), ["tokens", "score"]);
            let score = match s.get("score") {
                Json::Num(x) => x.parse::<f32>().expect("score"),
                other => panic!("score is not a number: {other:?}"),
            };
            (s.get("tokens").u32s(), score)
        })
        .collect()
}

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

// ---------------------------------------------------------------------------
// Robustness: counts that size allocations, files that are not what they
// claim, empty lists, and the stderr of GPU runs
// ---------------------------------------------------------------------------

/// Runs the binary under a 1 GiB address-space limit and a 60 s timeout, so
/// that a run that would read or allocate without bound fails fast (an
/// abort, or the timeout's exit 124) instead of eating the machine.
fn wgsample_limited(args: &[&str]) -> Run {
    let out = Command::new("timeout")
        .args(["60", "sh", "-c", "ulimit -v 1048576 && exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_wgsample"))
        .args(args)
        .output()
        .expect("run wgsample under timeout and ulimit");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn bad_limited(args: &[&str], needle: &str) {
    bad_run(&wgsample_limited(args), args, needle);
}

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
fn files_are_checked_before_they_are_read() {
    let s = Scratch::new("file-checks");
    // Not regular files: refused before anything is read (or opened).
    for args in [
        &["dist", "--logits", "/dev/zero"][..],
        &["sample", "--logits", "/dev/zero", "--vocab", "4"],
        &["generate", "--bigram", "/dev/zero", "--start", "0"],
        &[
            "beam",
            "--bigram",
            "/dev/zero",
            "--start",
            "0",
            "--beams",
            "1",
        ],
    ] {
        bad_limited(
            args,
            "/dev/zero: it is a character device, not a regular file",
        );
    }
    let fifo = s.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let fifo = fifo.to_str().unwrap();
    bad_limited(&["dist", "--logits", fifo], "FIFO");
    bad_limited(&["generate", "--bigram", fifo, "--start", "0"], "FIFO");
    bad_limited(
        &["dist", "--logits", s.path().to_str().unwrap()],
        "directory",
    );

    // A 3 GiB sparse file whose header says [4]: refused from its length,
    // without reading it (the run is limited to 1 GiB of address space).
    let d = f32_bytes(&ln_1234());
    let small = npy_with(1, "<f4", "(4,)", false, &d);
    let header_len = (small.len() - d.len()) as u64;
    let sparse = s.file("sparse.npy", &small);
    let big = 3u64 << 30;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sparse)
        .and_then(|f| f.set_len(big))
        .expect("make a sparse file");
    let after_header = big - header_len;
    bad_limited(
        &["dist", "--logits", &sparse],
        &format!("needs 16 bytes of data but the file has {after_header} bytes after the header"),
    );
    bad_limited(
        &["sample", "--logits", &sparse, "--vocab", "4"],
        "needs 16 bytes",
    );
    // The same for a bigram table.
    let table = s.file("sparse-b.npy", &npy_with(1, "<f4", "(2, 2)", false, &d));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&table)
        .and_then(|f| f.set_len(big))
        .expect("make a sparse file");
    bad_limited(
        &["generate", "--bigram", &table, "--start", "0"],
        "needs 16 bytes",
    );
    // A raw f32 file's length is checked from its metadata: 3 GiB is not a
    // multiple of 4 * 5.
    let raw = s.file("sparse.bin", &d);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&raw)
        .and_then(|f| f.set_len(big))
        .expect("make a sparse file");
    bad_limited(
        &["dist", "--logits", &raw, "--vocab", "5"],
        "not a multiple",
    );

    // Too long by one byte, and too short by one byte.
    let mut long = npy_with(1, "<f4", "(4,)", false, &d);
    long.push(0);
    let long = s.file("long.npy", &long);
    bad(
        &["dist", "--logits", &long],
        "file has 17 bytes after the header",
    );
    let short = npy_with(1, "<f4", "(4,)", false, &d[..15]);
    let short = s.file("short.npy", &short);
    bad(
        &["dist", "--logits", &short],
        "file has 15 bytes after the header",
    );
    // The exact size is read.
    let good = s.file("good.npy", &npy_with(1, "<f4", "(4,)", false, &d));
    ok_json(&["dist", "--logits", &good]);
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
        let p = j.get("plan").clone();
        let passes = p.get("passes").arr().to_vec();
        let count = |k: &str| match p.get(k) {
            Json::Num(s) => s.parse::<usize>().unwrap(),
            other => panic!("{other:?}"),
        };
        let dense = passes
            .iter()
            .filter(|x| *x.get("dense") == Json::Bool(true))
            .count();
        assert_eq!(count("dispatches"), passes.len());
        assert_eq!(count("dense_passes"), dense);
        for x in &passes {
            let grid = x.get("grid").u32s();
            let want_x = if *x.get("dense") == Json::Bool(true) {
                9
            } else {
                1
            };
            assert_eq!(grid, [want_x, 2, 1], "{x:?}");
        }
        let labels: Vec<String> = passes
            .iter()
            .map(|x| x.get("label").str().to_string())
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
