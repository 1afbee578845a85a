//! The checks behind the fuzz targets, one `pub fn <target>(&[u8])` each.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and by the
//! root crate's regression test (`tests/fuzz_seeds.rs`), which replays every
//! committed seed in `fuzz/seeds/<target>/`. A check panics when a property
//! fails (libFuzzer reports the panic as a crash); it returns normally for
//! every input that the library handles as documented.
//!
//! This file and everything it includes use only `wgsample` and `half`
//! (wgsample's own dependency), so that the root crate's tests can include it
//! without extra dev-dependencies: the fuzzer's bytes are decoded by hand
//! (`input.rs`), not with `arbitrary`.
//!
//! The CLI's `.npy` reader and argument parser live in the binary, not the
//! library, so they are compiled in here from their source files; the naive
//! oracle of SPEC.md comes from `tests/oracle/mod.rs` the same way.

#![allow(dead_code)]

#[path = "../../cli/src/args.rs"]
#[allow(dead_code, clippy::all)]
pub mod cli_args;
#[path = "../../cli/src/npy.rs"]
#[allow(dead_code, clippy::all)]
pub mod cli_npy;
#[path = "input.rs"]
pub mod input;
#[path = "../../tests/oracle/mod.rs"]
#[allow(dead_code, clippy::all)]
pub mod oracle;

use input::{Mode, Reader};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use wgsample::{CpuSampler, Logits, NO_TOKEN, RowOutput, RowState, SamplingParams, Status};

// ---------------------------------------------------------------------------
// 1. The .npy reader (src/cli/npy.rs).
// ---------------------------------------------------------------------------

/// Fuzz target `npy`. The first byte picks what the rest is:
/// 0 a whole file for `read_logits` / `read_bigram`; 1 raw f32 data for
/// `read_logits` with a decoded `--vocab`; 2 a header literal for `parse_literal`;
/// 3 a structured `.npy` file (descr, fortran_order, shape, version, data
/// length chosen from the bytes; the valid ones must be accepted); 4 a
/// `.npy` file built around a free-form header text.
pub fn npy(data: &[u8]) {
    let mut r = Reader::new(data);
    match r.u8() % 5 {
        0 => npy_file(r.rest(), None),
        1 => {
            let vocab = match r.u8() % 4 {
                0 => usize::from(r.u8()),
                1 => usize::from(r.u16()),
                2 => r.u64() as usize,
                _ => usize::MAX - usize::from(r.u8()),
            };
            npy_raw(r.rest(), vocab);
        }
        2 => npy_literal(&String::from_utf8_lossy(r.rest())),
        3 => npy_structured(&mut r),
        _ => {
            let version = npy_version(&mut r);
            let rest = r.rest();
            // The header is the text up to the first 0xff byte, the data the
            // bytes after it.
            let (header, payload) = match rest.iter().position(|&b| b == 0xff) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            let file = build_npy(version, header, payload, None);
            npy_file(&file, None);
        }
    }
}

fn npy_version(r: &mut Reader<'_>) -> (u8, u8) {
    match r.u8() % 8 {
        0..=2 => (1, 0),
        3 | 4 => (2, 0),
        5 => (3, 0),
        _ => (r.u8() % 5, r.u8() % 2),
    }
}

/// Assembles a `.npy` file: magic, version, header length (u16 for 1.0,
/// u32 otherwise, or `len_override`), header, data.
fn build_npy(
    version: (u8, u8),
    header: &[u8],
    payload: &[u8],
    len_override: Option<u32>,
) -> Vec<u8> {
    let mut out = cli_npy::NPY_MAGIC.to_vec();
    out.push(version.0);
    out.push(version.1);
    let len = len_override.unwrap_or(header.len() as u32);
    if version == (1, 0) {
        out.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    out
}

/// The path the npy checks write their input to: one per process and
/// thread, in /dev/shm when there is one (`parse_npy` and `parse_raw_f32`
/// are `#[cfg(test)]` in the CLI, so the public entry points `read_logits`
/// and `read_bigram`, which take a path, are what the fuzzer can reach).
fn scratch_path() -> PathBuf {
    thread_local! {
        static PATH: PathBuf = {
            let dir = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
            let n = SCRATCH_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            dir.join(format!("wgsample-fuzz-{}-{n}.npy", std::process::id()))
        };
    }
    PATH.with(|p| p.clone())
}

static SCRATCH_COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The scratch file holding one input; removed when dropped (also while
/// unwinding from a failed check), so no run leaves files behind.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn write_scratch(bytes: &[u8]) -> Scratch {
    let path = scratch_path();
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    Scratch(path)
}

/// The values of a batch as little-endian bytes, as stored in the file.
fn stored_bytes(data: &cli_npy::LogitData) -> Vec<u8> {
    match data {
        cli_npy::LogitData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        cli_npy::LogitData::F16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
    }
}

/// What a valid `.npy` file must read as: `[B, V]` (`ndims` 1 or 2) and
/// whether it is f16.
#[derive(Debug, Clone, Copy)]
struct Expect {
    batch: usize,
    vocab: usize,
    ndims: usize,
    f16: bool,
}

/// `read_logits(path, None)` and `read_bigram(path)` on a whole file: no
/// panic; a file without the magic is refused (it needs `--vocab`); an
/// accepted file is `[B, V]` with B, V >= 1 whose values are exactly the
/// file's last `B*V*size` bytes; a bigram table is square and holds the
/// same values widened to f32; `expect` (from the structured builder) says
/// what a valid file must read as.
fn npy_file(bytes: &[u8], expect: Option<Expect>) {
    let path = write_scratch(bytes);
    let res = cli_npy::read_logits(&path, None);
    let magic = bytes.starts_with(cli_npy::NPY_MAGIC);
    match (&res, expect) {
        (Err(e), Some(want)) => panic!("a valid .npy file {want:?} was refused: {e}"),
        (Err(e), None) => assert!(!e.0.is_empty(), "empty error message"),
        (Ok(b), _) => {
            assert!(magic, "read a file without the .npy magic and no --vocab");
            assert!(
                b.batch >= 1 && b.vocab >= 1,
                "accepted an empty shape: {}x{}",
                b.batch,
                b.vocab
            );
            let n = b.batch.checked_mul(b.vocab).expect("B*V overflows");
            let tail = stored_bytes(&b.data);
            assert_eq!(
                b.logits().len(),
                n,
                "{} values for shape [{}, {}]",
                b.logits().len(),
                b.batch,
                b.vocab
            );
            assert!(
                bytes.ends_with(&tail),
                "the values are not the file's last {} bytes",
                tail.len()
            );
            for row in [0, b.batch - 1] {
                assert_eq!(b.row(row).expect("row in range").len(), b.vocab);
            }
            assert!(
                b.row(b.batch).is_none(),
                "row {} of {} rows",
                b.batch,
                b.batch
            );
            if let Some(w) = expect {
                assert_eq!((b.batch, b.vocab), (w.batch, w.vocab), "shape");
                assert_eq!(matches!(b.data, cli_npy::LogitData::F16(_)), w.f16, "dtype");
            }
        }
    }
    // The same file as a `--vocab V` input must agree with the plain read.
    if let Ok(b) = &res {
        let again = cli_npy::read_logits(&path, Some(b.vocab));
        assert_eq!(
            again.as_ref().ok().map(|x| (x.batch, x.vocab)),
            Some((b.batch, b.vocab)),
            "with --vocab {}",
            b.vocab
        );
        assert!(
            cli_npy::read_logits(&path, Some(b.vocab + 1)).is_err(),
            "--vocab {} accepted for rows of {}",
            b.vocab + 1,
            b.vocab
        );
    }
    let big = cli_npy::read_bigram(&path);
    match &big {
        Ok((data, v)) => {
            let b = res
                .as_ref()
                .unwrap_or_else(|e| panic!("read_bigram accepted what read_logits refused: {e}"));
            assert_eq!(
                (b.batch, b.vocab),
                (*v, *v),
                "bigram table of {v} vs read_logits"
            );
            let widened: Vec<u32> = match &b.data {
                cli_npy::LogitData::F32(x) => x.iter().map(|f| f.to_bits()).collect(),
                cli_npy::LogitData::F16(x) => x.iter().map(|h| h.to_f32().to_bits()).collect(),
            };
            let got: Vec<u32> = data.iter().map(|f| f.to_bits()).collect();
            assert!(got == widened, "bigram values differ from read_logits'");
        }
        Err(e) => {
            assert!(!e.0.is_empty());
            if let Some(w) = expect {
                assert!(
                    !(w.ndims == 2 && w.batch == w.vocab),
                    "a valid square table {w:?} was refused: {e}"
                );
            }
        }
    }
}

/// `read_logits(path, Some(vocab))` on a raw file (no magic): accepted
/// exactly when `vocab >= 1`, the file is not empty and its length is a
/// multiple of `4 * vocab`; values bit-exact.
fn npy_raw(bytes: &[u8], vocab: usize) {
    if bytes.starts_with(cli_npy::NPY_MAGIC) {
        return; // a .npy file: npy_file's business
    }
    let path = write_scratch(bytes);
    let res = cli_npy::read_logits(&path, Some(vocab));
    let ok = vocab >= 1
        && !bytes.is_empty()
        && vocab
            .checked_mul(4)
            .is_some_and(|rb| bytes.len().is_multiple_of(rb));
    match res {
        Ok(b) => {
            assert!(ok, "accepted {} bytes with vocab {vocab}", bytes.len());
            assert_eq!(b.vocab, vocab);
            assert_eq!(b.batch * vocab * 4, bytes.len());
            assert!(
                matches!(b.data, cli_npy::LogitData::F32(_)),
                "raw data is not f32"
            );
            assert!(
                stored_bytes(&b.data) == bytes,
                "raw values are not the file's bytes"
            );
        }
        Err(e) => {
            assert!(!ok, "refused {} bytes with vocab {vocab}: {e}", bytes.len());
            assert!(!e.0.is_empty());
        }
    }
    assert!(
        cli_npy::read_bigram(&path).is_err(),
        "read_bigram accepted a file without the magic"
    );
}

/// `parse_literal`: no panic (nesting is bounded); an accepted literal
/// prints (Display) to text that parses back to the same value, when no
/// string in it holds a quote or a backslash (Display does not escape).
fn npy_literal(text: &str) {
    let Ok(v) = cli_npy::parse_literal(text) else {
        return;
    };
    fn plain(l: &cli_npy::Literal) -> bool {
        use cli_npy::Literal as L;
        match l {
            L::Str(s) => !s.contains(['\'', '\\']),
            L::Tuple(x) | L::List(x) => x.iter().all(plain),
            L::Dict(kv) => kv.iter().all(|(k, v)| plain(k) && plain(v)),
            _ => true,
        }
    }
    if plain(&v) {
        let shown = v.to_string();
        let back = cli_npy::parse_literal(&shown)
            .unwrap_or_else(|e| panic!("{v:?} displays as {shown:?}, which does not parse: {e}"));
        assert_eq!(back, v, "display round trip through {shown:?}");
    }
}

/// A `.npy` file put together from decoded parts, so that the fuzzer
/// reaches every branch of the header checks without guessing syntax.
fn npy_structured(r: &mut Reader<'_>) {
    let version = npy_version(r);
    let flags = r.u8();
    let (descr, dsize, f16): (String, usize, Option<bool>) = match r.u8() % 10 {
        0..=3 => ("'<f4'".into(), 4, Some(false)),
        4 | 5 => ("'<f2'".into(), 2, Some(true)),
        6 => ("'>f4'".into(), 4, None),
        7 => ("'<f8'".into(), 8, None),
        8 => (
            [
                "'|u1'",
                "'<i4'",
                "\"<f4\"",
                "'<f4 '",
                "'f4'",
                "4",
                "None",
                "('<f4',)",
                "[('a', '<f4')]",
                "''",
            ][usize::from(r.u8() % 10)]
            .into(),
            4,
            None,
        ),
        _ => (
            format!("'{}'", String::from_utf8_lossy(&[r.u8(), r.u8(), r.u8()])),
            4,
            None,
        ),
    };
    let (fortran, c_order) = match r.u8() % 8 {
        0..=4 => ("False", true),
        5 => ("True", false),
        6 => ("0", false),
        _ => (
            ["None", "'False'", "false", "(False,)"][usize::from(r.u8() % 4)],
            false,
        ),
    };
    let ndims = match r.u8() % 8 {
        0..=3 => 2,
        4 | 5 => 1,
        6 => 0,
        _ => 3 + usize::from(r.u8() % 3),
    };
    let mut dims: Vec<i128> = Vec::new();
    let mut dim_texts: Vec<String> = Vec::new();
    for _ in 0..ndims {
        let d: i128 = match r.u8() % 12 {
            0..=5 => i128::from(r.u8() % 9),
            6 => i128::from(r.u16()),
            7 => i128::from(r.u32()),
            8 => i128::from(r.u64()),
            9 => -i128::from(r.u8()),
            10 => 1i128 << (64 + r.u8() % 60),
            _ => i128::from(u64::MAX) + 1 + i128::from(r.u8()),
        };
        dims.push(d);
        let suffix = if r.u8().is_multiple_of(16) { "L" } else { "" };
        dim_texts.push(format!("{d}{suffix}"));
    }
    let shape = match (ndims, flags & 1) {
        (1, 0) => format!("({},)", dim_texts[0]),
        (1, _) => format!("[{}]", dim_texts[0]), // a list, not a tuple
        _ => format!("({})", dim_texts.join(", ")),
    };
    let shape_ok = ndims == 2 || (ndims == 1 && flags & 1 == 0);
    let mut entries = vec![
        format!("'descr': {descr}"),
        format!("'fortran_order': {fortran}"),
        format!("'shape': {shape}"),
    ];
    let drop = if flags & 2 != 0 {
        Some(usize::from(r.u8() % 3))
    } else {
        None
    };
    if let Some(i) = drop {
        entries.remove(i);
    }
    if flags & 4 != 0 {
        let k = usize::from(r.u8() % 3).min(entries.len());
        entries.rotate_left(k);
    }
    if flags & 8 != 0 {
        entries.push("'extra': [1, (2,), {'x': None}]".into());
    }
    let mut header = format!(
        "{{{}{}}}",
        entries.join(", "),
        if flags & 16 != 0 { ", " } else { "" }
    );
    // NumPy pads with spaces to a 64-byte boundary and ends with '\n'.
    let prefix = if version == (1, 0) { 10 } else { 12 };
    if flags & 32 == 0 {
        while (prefix + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
    }
    // Dimensions that fit and hold at most 4096 values get exactly their
    // data (give or take a few bytes when flag 64 is set).
    let valid_dims: Option<Vec<usize>> = dims.iter().map(|&d| usize::try_from(d).ok()).collect();
    let n_vals: Option<usize> = valid_dims
        .as_ref()
        .and_then(|v| v.iter().try_fold(1usize, |a, &d| a.checked_mul(d)))
        .filter(|&n| n <= 4096);
    let mut payload_len = n_vals.map_or(usize::from(r.u8()), |n| n * dsize);
    let exact = flags & 64 == 0;
    if !exact {
        let delta = usize::from(r.u8() % 9);
        payload_len = if r.bool() {
            payload_len + delta
        } else {
            payload_len.saturating_sub(delta)
        };
    }
    let payload: Vec<u8> = (0..payload_len).map(|i| r.u8() ^ (i as u8)).collect();
    let len_override = if flags & 128 != 0 {
        Some(r.u32())
    } else {
        None
    };
    let file = build_npy(version, header.as_bytes(), &payload, len_override);
    let supported_version = matches!(version, (1, 0) | (2, 0) | (3, 0));
    let header_fits = version != (1, 0) || header.len() <= usize::from(u16::MAX);
    let dims_pos = valid_dims
        .as_ref()
        .is_some_and(|v| v.iter().all(|&d| d >= 1));
    let expect = match (f16, &valid_dims) {
        (Some(is_f16), Some(v))
            if supported_version
                && header_fits
                && c_order
                && shape_ok
                && drop.is_none()
                && dims_pos
                && n_vals.is_some()
                && len_override.is_none()
                && payload_len == n_vals.unwrap_or(0) * dsize =>
        {
            let (batch, vocab) = if v.len() == 1 {
                (1, v[0])
            } else {
                (v[0], v[1])
            };
            Some(Expect {
                batch,
                vocab,
                ndims: v.len(),
                f16: is_f16,
            })
        }
        _ => None,
    };
    npy_file(&file, expect);
}

// ---------------------------------------------------------------------------
// 2. The CLI argument parser (src/cli/args.rs).
// ---------------------------------------------------------------------------

/// The switches of the CLI: flags without a value (handled before the
/// `FLAGS` table in args.rs).
pub const SWITCH_NAMES: &[&str] = &["--explain"];

/// Every flag of the CLI that takes a value (`FLAGS` in args.rs, which is
/// private).
pub const FLAG_NAMES: &[&str] = &[
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
    "--bigram",
    "--start",
    "--max-new-tokens",
    "--stop-tokens",
    "--batch",
    "--beams",
    "--length-penalty",
    "--early-stopping",
    "--num-return-sequences",
];

/// Words the argument decoder can emit with one byte.
const WORDS: &[&str] = &[
    "dist",
    "sample",
    "generate",
    "beam",
    "help",
    "-h",
    "--help",
    "cpu",
    "gpu",
    "true",
    "false",
    "never",
    "0",
    "1",
    "-1",
    "2",
    "3",
    "16",
    "0.5",
    "-0.5",
    "1e40",
    "NaN",
    "inf",
    "-inf",
    "3=-2",
    "1=2",
    "=",
    "1,2,3",
    "1,",
    ",",
    "",
    " ",
    "--",
    "-",
    "-x",
    "b.npy",
    "+7",
    " 3 ",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "0x10",
    "1.5e-45",
    "--unknown",
    "-0",
    "1e-40",
    "--top-k=",
    "--seed=1",
    "--logits=--seed",
    "é",
    "--explain",
    "--explain=1",
];

fn decode_args(r: &mut Reader<'_>) -> Vec<String> {
    let mut args = Vec::new();
    while !r.is_empty() && args.len() < 64 {
        let b = r.u8();
        let table = |i: u8| -> &str {
            let i = usize::from(i);
            if i < FLAG_NAMES.len() {
                FLAG_NAMES[i]
            } else {
                WORDS[(i - FLAG_NAMES.len()) % WORDS.len()]
            }
        };
        let word = match b {
            0..=0x7f => table(b).to_string(),
            0x80..=0xbf => format!("{}={}", table(b - 0x80), table(r.u8())),
            _ => {
                let n = usize::from(b - 0xc0);
                let bytes: Vec<u8> = (0..n).map(|_| r.u8()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        args.push(word);
    }
    args
}

fn is_known_flag(word: &str) -> bool {
    let name = word.split_once('=').map_or(word, |(n, _)| n);
    FLAG_NAMES.contains(&name) || SWITCH_NAMES.contains(&name)
}

/// Fuzz target `args`: `cli_args::parse` never panics, never reports its
/// own "a bug in wgsample" error, words its errors as one short line, keeps
/// the documented invariants of each command, and gives the same result for
/// `--flag=VALUE` as for `--flag VALUE`.
pub fn args(data: &[u8]) {
    use cli_args::Command;
    let mut r = Reader::new(data);
    let args = decode_args(&mut r);
    let res = cli_args::parse(&args);
    // Compared through Debug: a parsed NaN (`--min-p NaN`) is not equal to
    // itself under PartialEq.
    let shown = format!("{res:?}");
    assert_eq!(
        shown,
        format!("{:?}", cli_args::parse(&args)),
        "not deterministic"
    );
    let help = args.iter().any(|a| a == "-h" || a == "--help")
        || args.first().is_some_and(|a| a == "help");
    match &res {
        Err(e) => {
            assert!(!e.0.is_empty(), "empty usage error");
            assert!(!e.0.contains("a bug in wgsample"), "{args:?}: {e}");
            assert!(
                !e.0.contains(['\n', '\r']),
                "usage error over several lines: {:?}",
                e.0
            );
            // Values are quoted shortened to 40 characters (`shown`), so a
            // message never carries unbounded user text.
            assert!(
                e.0.chars().count() <= 600,
                "usage error of {} chars: {:?}",
                e.0.chars().count(),
                e.0
            );
            assert!(!help, "{args:?} asks for help but got {e}");
        }
        Ok(Command::Help) => assert!(help, "{args:?} parsed as Help"),
        Ok(cmd) => {
            assert!(!help, "{args:?} asks for help but parsed as {cmd:?}");
            let first = args[0].as_str();
            let p = match cmd {
                Command::Dist(d) => {
                    assert_eq!(first, "dist");
                    Some(&d.params)
                }
                Command::Sample(s) => {
                    assert_eq!(first, "sample");
                    assert!(
                        !s.explain || s.backend == cli_args::Backend::Gpu,
                        "--explain without --backend gpu: {s:?}"
                    );
                    Some(&s.params)
                }
                Command::Generate(g) => {
                    assert_eq!(first, "generate");
                    assert!(g.batch >= 1, "generate with batch 0");
                    assert!(
                        g.stop_tokens.iter().all(|s| !s.is_empty()),
                        "empty stop sequence"
                    );
                    Some(&g.params)
                }
                Command::Beam(b) => {
                    assert_eq!(first, "beam");
                    assert!(b.beams >= 1 && b.num_return_sequences >= 1);
                    assert!(b.num_return_sequences <= b.beams, "{b:?}");
                    assert!(b.length_penalty.is_finite(), "{b:?}");
                    None
                }
                Command::Help => unreachable!(),
            };
            if let Some(p) = p {
                // The library's validation of whatever the CLI parsed must
                // not panic either.
                for v in [1usize, 7, 64] {
                    let _ = p.params.validate(0, v);
                    if let Some(a) = &p.allow {
                        let _ = wgsample::allowed_mask(v, a);
                    }
                }
            }
        }
    }
    // `--flag=VALUE` and `--flag VALUE` are the same, unless VALUE is itself
    // a flag (then the split form reports a missing value) or either part is
    // a help word (a bare `--help` anywhere means help). Only words the
    // parser reads as a flag are split (a following value is left alone),
    // so the parse is followed as far as it goes.
    let mut flag_at = vec![false; args.len()];
    let mut i = 1;
    while let Some(a) = args.get(i) {
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        if SWITCH_NAMES.contains(&name) && !a.contains('=') {
            i += 1;
            continue;
        }
        if !a.starts_with("--") || !is_known_flag(name) {
            break; // the parse stops here with an error
        }
        flag_at[i] = true;
        if a.contains('=') {
            i += 1;
        } else if args.get(i + 1).is_some_and(|v| !is_known_flag(v)) {
            i += 2;
        } else {
            break; // "needs a value"
        }
    }
    let mut split = Vec::with_capacity(args.len() + 4);
    let mut changed = false;
    for (i, a) in args.iter().enumerate() {
        if flag_at[i]
            && let Some((n, v)) = a.split_once('=')
            && !is_known_flag(v)
            && v != "-h"
            && v != "--help"
        {
            split.push(n.to_string());
            split.push(v.to_string());
            changed = true;
        } else {
            split.push(a.clone());
        }
    }
    if changed {
        let res2 = cli_args::parse(&split);
        match (&res, &res2) {
            (Ok(_), Ok(_)) => assert_eq!(shown, format!("{res2:?}"), "{args:?} vs {split:?}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{args:?} gives {res:?} but {split:?} gives {res2:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// 3. SamplingParams validation, then the CPU backend.
// ---------------------------------------------------------------------------

/// SPEC.md's validation rules, written out independently of
/// `SamplingParams::validate` (plus the library's documented "each bias
/// token at most once" and the bitmask length).
pub fn spec_valid(p: &SamplingParams, vocab: usize) -> bool {
    let tok = |t: u32| (t as usize) < vocab;
    let mut bias_tokens: Vec<u32> = p.logit_bias.iter().map(|b| b.0).collect();
    bias_tokens.sort_unstable();
    let dup = bias_tokens.windows(2).any(|w| w[0] == w[1]);
    p.temperature.is_finite()
        && p.temperature >= 0.0
        && p.top_p > 0.0
        && p.top_p <= 1.0
        && p.min_p >= 0.0
        && p.min_p < 1.0
        && p.repetition_penalty.is_finite()
        && p.repetition_penalty > 0.0
        && p.presence_penalty.is_finite()
        && p.frequency_penalty.is_finite()
        && p.logit_bias.iter().all(|&(t, b)| tok(t) && b.is_finite())
        && !dup
        && p.banned_tokens.iter().all(|&t| tok(t))
        && p.eos_token_ids.iter().all(|&t| tok(t))
        && p.allowed_tokens
            .as_ref()
            .is_none_or(|m| m.len() == vocab.div_ceil(32))
}

fn state_valid(s: &RowState, vocab: usize) -> bool {
    s.prompt_tokens().iter().all(|&t| (t as usize) < vocab)
        && s.output_counts().all(|(t, _)| (t as usize) < vocab)
}

/// Whether an f32 logprob agrees with the oracle's f64 one: within
/// `1e-5 * max(1, |lp|)`, or both beyond f32's range on the same side.
fn logprob_close(got: f32, want: f64) -> bool {
    let g = got as f64;
    if (g - want).abs() <= 1e-5 * want.abs().max(1.0) {
        return true;
    }
    let big = f32::MAX as f64 * (1.0 - 1e-5);
    g.abs() >= big && want.abs() >= big && g.signum() == want.signum()
}

/// The oracle's answer for a row, or `None` when steps 2-4 produce a NaN
/// (e.g. `-inf - (-inf)` from an overflowing penalty): SPEC.md does not
/// define that case and the oracle refuses it.
fn oracle_for(row: &[f32], p: &SamplingParams, st: &RowState) -> Option<oracle::OracleOut> {
    let ost = oracle::OracleState::from_row_state(st);
    if row.iter().any(|x| x.is_nan() || *x == f32::INFINITY) {
        return Some(oracle::oracle_row(row, p, &ost));
    }
    if oracle::processed_logits(row, p, &ost)
        .iter()
        .any(|x| x.is_nan())
    {
        return None;
    }
    Some(oracle::oracle_row(row, p, &ost))
}

/// Checks one CPU output against the contract's invariants.
fn check_row_invariants(
    row: &[f32],
    p: &SamplingParams,
    before: &RowState,
    after: &RowState,
    out: &RowOutput,
) {
    let v = row.len();
    let invalid = row.iter().any(|x| x.is_nan() || *x == f32::INFINITY);
    assert_eq!(
        out.status == Status::InvalidLogits,
        invalid,
        "status {:?} for a row with NaN/+inf = {invalid}",
        out.status
    );
    if out.status != Status::Ok {
        assert_eq!(out.token, NO_TOKEN, "token of a {:?} row", out.status);
        assert!(
            out.logprob.is_nan(),
            "logprob {} of a {:?} row",
            out.logprob,
            out.status
        );
        assert_eq!(after, before, "state changed on a {:?} row", out.status);
        return;
    }
    let t = out.token;
    assert!((t as usize) < v, "token {t} >= V = {v}");
    assert!(!p.banned_tokens.contains(&t), "sampled banned token {t}");
    if let Some(m) = &p.allowed_tokens {
        assert!(
            (m[t as usize / 32] >> (t % 32)) & 1 == 1,
            "sampled token {t} outside the allowed mask"
        );
    }
    if before.generated_len() < p.min_new_tokens {
        assert!(
            !p.eos_token_ids.contains(&t),
            "sampled EOS {t} before min_new_tokens"
        );
    }
    assert!(
        row[t as usize] != f32::NEG_INFINITY,
        "sampled token {t} whose raw logit is -inf"
    );
    assert!(
        !out.logprob.is_nan() && out.logprob <= 1e-6,
        "logprob {}",
        out.logprob
    );
    let mut want = before.clone();
    want.record(t);
    assert_eq!(after, &want, "state after sampling {t}");
}

/// Fuzz target `params`: arbitrary `SamplingParams` (NaN, infinities,
/// extremes, out-of-range ids, lists of up to 70 000 entries) and vocab
/// sizes. `validate` returns Ok or Err (never panics), agrees with SPEC's
/// rules and words its error as one line; when Ok and V <= 64, the CPU
/// backend samples 1-3 rows (f32, f16 or bf16) without panicking, keeps
/// the contract's invariants and agrees with the naive oracle (token,
/// status, logprob, filtered distribution) except at SPEC's knife edges.
pub fn params(data: &[u8]) {
    let mut r = Reader::new(data);
    let vocab: usize = match r.u8() % 16 {
        0 => 0,
        1 => usize::from(r.u16()),
        2 => r.u32() as usize,
        3 => u32::MAX as usize + 1 + usize::from(r.u8()),
        4 => usize::MAX,
        _ => 1 + usize::from(r.u8() % 64),
    };
    let v32 = u32::try_from(vocab).unwrap_or(u32::MAX);
    let p = input::params(&mut r, v32, Mode::Wild);
    let row_id = usize::from(r.u8());
    let res = p.validate(row_id, vocab);
    let want = spec_valid(&p, vocab);
    match &res {
        Ok(()) => assert!(
            want,
            "validate accepted params SPEC refuses (V = {vocab}): {p:?}"
        ),
        Err(e) => {
            assert!(
                !want,
                "validate refused valid params (V = {vocab}): {e}; {p:?}"
            );
            let msg = e.to_string();
            assert!(
                !msg.contains(['\n', '\r']),
                "error over several lines: {msg:?}"
            );
            assert!(
                msg.contains(&format!("row {row_id}")),
                "error does not name the row: {msg}"
            );
        }
    }
    if res.is_err() || !(1..=64).contains(&vocab) {
        return;
    }
    let v = vocab;
    let b = 1 + usize::from(r.u8() % 3);
    let dtype = r.u8() % 4;
    let wild_state = r.u8().is_multiple_of(8);
    let states: Vec<RowState> = (0..b)
        .map(|_| input::row_state(&mut r, v32, wild_state))
        .collect();
    let mut x: Vec<f32> = (0..b * v).map(|_| r.logit()).collect();
    let h16: Vec<half::f16>;
    let hb16: Vec<half::bf16>;
    let logits = match dtype {
        0 => {
            h16 = x.iter().map(|&f| half::f16::from_f32(f)).collect();
            x = h16.iter().map(|h| h.to_f32()).collect();
            Logits::F16(&h16)
        }
        1 => {
            hb16 = x.iter().map(|&f| half::bf16::from_f32(f)).collect();
            x = hb16.iter().map(|h| h.to_f32()).collect();
            Logits::Bf16(&hb16)
        }
        _ => Logits::F32(&x),
    };
    let params = vec![p.clone(); b];
    let mut after = states.clone();
    let threads = if r.bool() { 1 } else { 2 };
    let mut cpu = CpuSampler::with_threads(threads);
    let res = cpu.sample(logits, v, &params, &mut after);
    let states_ok = states.iter().all(|s| state_valid(s, v));
    let outs = match res {
        Ok(o) => {
            assert!(
                states_ok,
                "sampled with a state holding ids >= V = {v}: {states:?}"
            );
            o
        }
        Err(e) => {
            assert!(
                !states_ok,
                "CPU sample refused valid params/states: {e}; {p:?} {states:?}"
            );
            return;
        }
    };
    assert_eq!(outs.len(), b);
    for i in 0..b {
        let row = &x[i * v..(i + 1) * v];
        let (st, out) = (&states[i], &outs[i]);
        check_row_invariants(row, &p, st, &after[i], out);
        // The filtered distribution of the same row (SPEC steps 1-9).
        let dist = wgsample::filtered_distribution(Logits::F32(row), &p, st)
            .unwrap_or_else(|e| panic!("filtered_distribution refused valid input: {e}"));
        assert_eq!(
            dist.status, out.status,
            "distribution status vs sample status"
        );
        assert_eq!(dist.tokens.len(), dist.probs.len());
        if out.status == Status::Ok {
            assert!(
                dist.tokens.contains(&out.token),
                "sampled token {} is not in the filtered distribution {:?}",
                out.token,
                dist.tokens
            );
            let total: f64 = dist.probs.iter().map(|&q| q as f64).sum();
            assert!((total - 1.0).abs() <= 1e-4, "distribution sums to {total}");
            assert!(
                dist.probs.iter().all(|q| q.is_finite() && *q >= 0.0),
                "probs {:?}",
                dist.probs
            );
        } else {
            assert!(dist.tokens.is_empty());
        }
        // Against the naive oracle.
        let Some(o) = oracle_for(row, &p, st) else {
            continue;
        };
        if o.knife() {
            continue;
        }
        assert_eq!(
            out.status, o.status,
            "status vs oracle; row {row:?} params {p:?} state {st:?}"
        );
        assert_eq!(
            out.token, o.token,
            "token vs oracle; row {row:?} params {p:?} state {st:?}"
        );
        if o.status == Status::Ok {
            assert!(
                logprob_close(out.logprob, o.logprob),
                "logprob {} vs oracle {}; row {row:?} params {p:?}",
                out.logprob,
                o.logprob
            );
        }
        if let Err(e) = oracle::check_distribution(&dist, &o) {
            panic!("distribution vs oracle: {e}; row {row:?} params {p:?} state {st:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// 4. GPU backend vs CPU backend.
// ---------------------------------------------------------------------------

/// One device for the whole process, and one sampler per vocabulary size
/// (max_batch 4), created on first use and reused by every input.
struct Gpu {
    ctx: wgsample::gpu::GpuContext,
    samplers: std::collections::HashMap<u32, wgsample::gpu::GpuSampler>,
}

static GPU: OnceLock<Mutex<Gpu>> = OnceLock::new();

fn gpu() -> &'static Mutex<Gpu> {
    GPU.get_or_init(|| {
        let ctx = wgsample::gpu::open_device().unwrap_or_else(|e| {
            panic!(
                "the gpu_cpu check needs a wgpu adapter: {e}. To get one, {}",
                wgsample::gpu::INSTALL_HINT
            )
        });
        Mutex::new(Gpu {
            ctx,
            samplers: Default::default(),
        })
    })
}

/// Fuzz target `gpu_cpu`: V <= 64, B <= 4, arbitrary logits (f32 bit
/// patterns, or f16 / bf16), arbitrary valid params and states per row.
/// The GPU sampler and the CPU backend must give the same status, token and
/// logprob (within `1e-5 * max(1, |lp|)`) for every row, except where the
/// naive oracle flags one of SPEC's knife edges; and the state the GPU
/// keeps on the device must equal the CPU's after the step. Inputs whose
/// params or states fail validation are skipped.
pub fn gpu_cpu(data: &[u8]) {
    let mut r = Reader::new(data);
    let v = 1 + usize::from(r.u8() % 64);
    let b = 1 + usize::from(r.u8() % 4);
    let dtype = r.u8() % 8;
    let v32 = v as u32;
    let params: Vec<SamplingParams> = (0..b)
        .map(|_| input::params(&mut r, v32, Mode::MostlyValid))
        .collect();
    let states: Vec<RowState> = (0..b)
        .map(|_| input::row_state(&mut r, v32, false))
        .collect();
    if params
        .iter()
        .enumerate()
        .any(|(i, p)| p.validate(i, v).is_err())
    {
        return;
    }
    let mut x: Vec<f32> = (0..b * v)
        .map(|_| {
            if dtype < 2 {
                f32::from_bits(r.u32())
            } else {
                r.logit()
            }
        })
        .collect();
    let h16: Vec<half::f16>;
    let hb16: Vec<half::bf16>;
    let logits = match dtype {
        2 => {
            h16 = x.iter().map(|&f| half::f16::from_f32(f)).collect();
            x = h16.iter().map(|h| h.to_f32()).collect();
            Logits::F16(&h16)
        }
        3 => {
            hb16 = x.iter().map(|&f| half::bf16::from_f32(f)).collect();
            x = hb16.iter().map(|h| h.to_f32()).collect();
            Logits::Bf16(&hb16)
        }
        _ => Logits::F32(&x),
    };

    let mut cpu_states = states.clone();
    let cpu_out = CpuSampler::with_threads(1)
        .sample(logits, v, &params, &mut cpu_states)
        .unwrap_or_else(|e| panic!("CPU refused valid input: {e}"));

    let mut g = gpu().lock().unwrap_or_else(|e| e.into_inner());
    let Gpu { ctx, samplers } = &mut *g;
    let s = samplers.entry(v32).or_insert_with(|| {
        wgsample::gpu::GpuSampler::new(ctx, wgsample::gpu::SamplerConfig::new(4, v32))
            .unwrap_or_else(|e| panic!("GpuSampler::new(4, {v}): {e}"))
    });
    for i in 0..b {
        s.set_params(i, &params[i])
            .unwrap_or_else(|e| panic!("set_params row {i}: {e}"));
        s.set_state(i, &states[i])
            .unwrap_or_else(|e| panic!("set_state row {i}: {e}"));
    }
    let gpu_out = s
        .sample_host(logits, b as u32)
        .unwrap_or_else(|e| panic!("GPU sample_host refused valid input: {e}"));
    assert_eq!(gpu_out.len(), b);

    for i in 0..b {
        let row = &x[i * v..(i + 1) * v];
        let (go, co) = (&gpu_out[i], &cpu_out[i]);
        let lp_ok = if co.status == Status::Ok {
            logprob_close(go.logprob, co.logprob as f64)
        } else {
            go.logprob.is_nan()
        };
        let agree = go.token == co.token && go.status == co.status && lp_ok;
        if agree {
            let gs = s
                .read_state(i)
                .unwrap_or_else(|e| panic!("read_state row {i}: {e}"));
            assert_eq!(
                gs, cpu_states[i],
                "row {i}: state after the step, GPU vs CPU (V {v}, B {b})"
            );
            continue;
        }
        let o = oracle_for(row, &params[i], &states[i]);
        if go.status == co.status && o.as_ref().is_some_and(|o| o.knife()) {
            continue;
        }
        panic!(
            "row {i} (V {v}, B {b}, dtype {}): gpu {go:?} cpu {co:?}; oracle {}; params {:?}; state {:?}; logits {:?}",
            ["f32", "f32", "f16", "bf16"]
                .get(usize::from(dtype))
                .unwrap_or(&"f32"),
            match &o {
                Some(o) => format!(
                    "token {} logprob {} status {:?} knife {:?}/{:?} dist {:?}",
                    o.token, o.logprob, o.status, o.filter_knife, o.sample_knife, o.dist_tokens
                ),
                None => "undefined (NaN in steps 2-4)".into(),
            },
            params[i],
            states[i],
            row
        );
    }
}
