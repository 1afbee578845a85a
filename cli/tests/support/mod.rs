//! What the CLI tests share: scratch files, `.npy` files written with
//! npyz, running the binary, reading its JSON with serde_json, and the
//! expected values computed in f64 from the SPEC's definitions.
//!
//! Why it is shaped this way: the CLI's contract is its observable
//! behaviour (one JSON line on success, exactly one `error: ` line and exit
//! code 2 on bad input, never a panic), so the tests look only at that. The
//! `.npy` files are written by npyz's writer and the JSON is read by
//! serde_json's parser (with `preserve_order`, so key order is checked, and
//! `arbitrary_precision`, so each number is parsed from its own text), the
//! other halves of the crates whose reader and printer the binary uses; the
//! binary's own checks and formatting are not used here. Files that no
//! writer would produce (malformed headers, other format versions) get their
//! header text from [`npy_raw_header`]. Expected values are computed in f64
//! from the SPEC's definitions, on inputs chosen far from the SPEC's knife
//! edges.
//!
//! Each test file (`dist.rs`, `sample.rs`, ...) includes this module and
//! uses part of it.

#![allow(dead_code)]

pub use serde_json::Value;
pub use std::process::Command;

use npyz::WriterBuilder as _;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------
// Scratch files
// ---------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
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
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write scratch file");
        p.to_str().expect("utf-8 temp path").to_string()
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// .npy files
// ---------------------------------------------------------------------------

/// A `.npy` file of `values` with the given shape, written by npyz.
fn npyz_values<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    shape: &[u64],
    values: &[T],
) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .expect("npyz header");
    w.extend(values.iter().copied()).expect("npyz data");
    w.finish().expect("npyz finish");
    out.into_inner()
}

/// f32 `.npy` of shape `[V]`.
pub fn npy_f32_vec(v: &[f32]) -> Vec<u8> {
    npyz_values(&[v.len() as u64], v)
}

/// f32 `.npy` of shape `[B, V]` from rows of equal length.
pub fn npy_f32_mat(rows: &[Vec<f32>]) -> Vec<u8> {
    let v = rows.first().map_or(0, |r| r.len());
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    npyz_values(&[rows.len() as u64, v as u64], &flat)
}

/// f16 `.npy` of the given shape.
pub fn npy_f16(shape: &[u64], values: &[half::f16]) -> Vec<u8> {
    npyz_values(shape, values)
}

/// A `[V, V]` f32 `.npy` bigram table.
pub fn npy_bigram(table: &[f32], vocab: usize) -> Vec<u8> {
    assert_eq!(table.len(), vocab * vocab);
    npyz_values(&[vocab as u64, vocab as u64], table)
}

/// A `.npy` file whose header npyz writes for any dtype string, shape and
/// order, followed by `data` whatever its length, in format `version`
/// (npyz writes 1.0; other versions get npyz's header text re-wrapped by
/// [`npy_raw_header`]).
pub fn npy_with(version: u8, descr: &str, shape: &[u64], fortran: bool, data: &[u8]) -> Vec<u8> {
    let dtype = npyz::DType::Plain(descr.parse().expect("a dtype npyz can write"));
    let order = if fortran {
        npyz::Order::Fortran
    } else {
        npyz::Order::C
    };
    let header = npyz::WriteOptions::<f32>::new()
        .dtype(dtype)
        .shape(shape)
        .order(order)
        .writer(Vec::new())
        .write_header_only()
        .expect("npyz header");
    if version == 1 {
        return [header, data.to_vec()].concat();
    }
    let text = std::str::from_utf8(&header[10..]).expect("npyz writes text");
    npy_raw_header(version, text.trim_end(), data)
}

/// A `.npy` file whose header dict text is given verbatim, in format
/// `version`: the magic, the version, the header length (u16 for 1.0, u32
/// otherwise), the text padded with spaces to a multiple of 64 bytes and
/// ending in a newline (as NumPy lays it out), then `data`.
pub fn npy_raw_header(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
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

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn f16_bytes(v: &[half::f16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

// ---------------------------------------------------------------------------
// Reading the JSON
// ---------------------------------------------------------------------------

/// Parses one line of the binary's JSON.
pub fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Strict accessors of the JSON values the tests read (each panics with
/// the value when it is not what the test expects).
pub trait JsonExt {
    /// The value of `key` in an object.
    fn key(&self, key: &str) -> &Value;
    /// An object's keys, in order.
    fn keys(&self) -> Vec<&str>;
    /// An array's items.
    fn arr(&self) -> &[Value];
    /// A string's text.
    fn text(&self) -> &str;
    /// An array of token ids.
    fn u32s(&self) -> Vec<u32>;
    /// An array of floats, each parsed from its own text as f32.
    fn f32s(&self) -> Vec<f32>;
    /// A number parsed from its own text as f32.
    fn f32(&self) -> f32;
}

impl JsonExt for Value {
    fn key(&self, key: &str) -> &Value {
        match self {
            Value::Object(kv) => match kv.get(key) {
                Some(v) => v,
                None => panic!("no key {key:?} in {self:?}"),
            },
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Value::Object(kv) => kv.keys().map(String::as_str).collect(),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn arr(&self) -> &[Value] {
        match self {
            Value::Array(v) => v,
            _ => panic!("not an array: {self:?}"),
        }
    }

    fn text(&self) -> &str {
        match self {
            Value::String(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }

    fn u32s(&self) -> Vec<u32> {
        self.arr()
            .iter()
            .map(|x| match x {
                Value::Number(n) => n.to_string().parse::<u32>().expect("token id"),
                _ => panic!("not a number: {x:?}"),
            })
            .collect()
    }

    fn f32s(&self) -> Vec<f32> {
        self.arr().iter().map(JsonExt::f32).collect()
    }

    fn f32(&self) -> f32 {
        match self {
            Value::Number(n) => n.to_string().parse::<f32>().expect("float"),
            _ => panic!("not a number: {self:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Test inputs
// ---------------------------------------------------------------------------

/// `[0, ln 2, ln 3, ln 4]`: probabilities `[0.1, 0.2, 0.3, 0.4]`.
pub fn ln_1234() -> Vec<f32> {
    (1..=4).map(|i| (i as f32).ln()).collect()
}

/// A few rows of distinct, irregular logits with clear argmaxes.
pub fn test_rows(batch: usize, vocab: usize) -> Vec<Vec<f32>> {
    (0..batch)
        .map(|b| {
            (0..vocab)
                .map(|i| (((i * 37 + b * 11) % vocab) as f32) * 0.25 - 3.0)
                .collect()
        })
        .collect()
}

/// A greedy chain over V = 6: 0 -> 1 -> 2 -> 5 -> 4 -> (nothing: every
/// logit of row 4 is -inf), with 3 as row 2's second choice and 3 -> 5.
pub fn chain_table() -> Vec<f32> {
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

// ---------------------------------------------------------------------------
// Running the binary and checking its output
// ---------------------------------------------------------------------------

pub fn wgsample(args: &[&str]) -> Run {
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
pub fn ok_json(args: &[&str]) -> Value {
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
pub fn bad(args: &[&str], needle: &str) {
    bad_run(&wgsample(args), args, needle);
}

/// The checks of [`bad`] on a finished run.
pub fn bad_run(r: &Run, args: &[&str], needle: &str) {
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

/// Runs the binary under a 1 GiB address-space limit and a 60 s timeout, so
/// that a run that would read or allocate without bound fails fast (an
/// abort, or the timeout's exit 124) instead of eating the machine.
pub fn wgsample_limited(args: &[&str]) -> Run {
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

pub fn bad_limited(args: &[&str], needle: &str) {
    bad_run(&wgsample_limited(args), args, needle);
}

/// Runs a command that may print driver warnings on stderr, and returns
/// its JSON. For `--backend gpu` the run must really have used a GPU
/// adapter: the CPU fallback note fails the test with the install hint.
pub fn json_any_stderr(args: &[&str]) -> Value {
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

/// Runs `sample` and returns its rows, ignoring stderr (the software
/// Vulkan driver may print environment warnings there).
pub fn sample_json_any_stderr(args: &[&str]) -> Vec<(Vec<u32>, Vec<f32>, String)> {
    let r = wgsample(args);
    assert_eq!(r.code, Some(0), "args {args:?}\nstderr: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let j = parse_json(r.stdout.trim_end_matches('\n')).expect("valid JSON");
    sample_rows(&j)
}

/// `head` followed by `extra`.
pub fn joined<'a>(head: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(extra).copied().collect()
}

// ---------------------------------------------------------------------------
// Expected values, in f64 from the SPEC's definitions, and the output shapes
// ---------------------------------------------------------------------------

pub fn log_softmax(z: &[f32]) -> Vec<f64> {
    let m = z
        .iter()
        .fold(f64::NEG_INFINITY, |a, &x| a.max(f64::from(x)));
    let s: f64 = z.iter().map(|&x| (f64::from(x) - m).exp()).sum();
    z.iter().map(|&x| f64::from(x) - m - s.ln()).collect()
}

pub fn argmax(z: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in z.iter().enumerate() {
        if x > z[best] {
            best = i;
        }
    }
    best as u32
}

pub fn assert_close(got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (f64::from(*g) - w).abs() <= tol,
            "got {got:?}, want {want:?}"
        );
    }
}

/// Checks a `dist` line: keys in order, status, tokens and probabilities.
pub fn check_dist(j: &Value, status: &str, tokens: &[u32], probs: &[f64]) {
    assert_eq!(j.keys(), ["status", "tokens", "probs"]);
    assert_eq!(j.key("status").text(), status);
    assert_eq!(j.key("tokens").u32s(), tokens);
    assert_close(&j.key("probs").f32s(), probs, 1e-6);
}

/// The rows of a `sample` line, each checked for its keys, as
/// `(tokens, logprobs, status)`.
pub fn sample_rows(j: &Value) -> Vec<(Vec<u32>, Vec<f32>, String)> {
    assert_eq!(j.keys(), ["rows"]);
    j.key("rows")
        .arr()
        .iter()
        .map(|r| {
            assert_eq!(r.keys(), ["tokens", "logprobs", "status"]);
            let tokens = r.key("tokens").u32s();
            let logprobs = r.key("logprobs").f32s();
            assert_eq!(tokens.len(), logprobs.len());
            for lp in &logprobs {
                assert!(lp.is_finite() && *lp <= 0.0, "logprob {lp}");
            }
            (tokens, logprobs, r.key("status").text().to_string())
        })
        .collect()
}

/// `generate`'s sequences as (tokens, stop_reason).
pub fn generate_rows(j: &Value) -> Vec<(Vec<u32>, String)> {
    assert_eq!(j.keys(), ["sequences"]);
    j.key("sequences")
        .arr()
        .iter()
        .map(|s| {
            assert_eq!(s.keys(), ["tokens", "stop_reason"]);
            (
                s.key("tokens").u32s(),
                s.key("stop_reason").text().to_string(),
            )
        })
        .collect()
}

/// Runs `generate` with `args` on both backends, checks they agree and
/// returns the rows.
pub fn generate_both(args: &[&str]) -> Vec<(Vec<u32>, String)> {
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

/// `beam`'s sequences as (tokens, score).
pub fn beam_rows(j: &Value) -> Vec<(Vec<u32>, f32)> {
    assert_eq!(j.keys(), ["sequences"]);
    j.key("sequences")
        .arr()
        .iter()
        .map(|s| {
            assert_eq!(s.keys(), ["tokens", "score"]);
            let score = s.key("score").f32();
            (s.key("tokens").u32s(), score)
        })
        .collect()
}
