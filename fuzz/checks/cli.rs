//! The checks behind the CLI's fuzz targets (`npy`, `args`), one
//! `pub fn <target>(&[u8])` each; the library's are in `mod.rs` beside
//! this file.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/{npy,args}.rs`)
//! and by the CLI's regression test (`cli/tests/fuzz_seeds.rs`), which
//! replays every committed seed in `fuzz/seeds/{npy,args}/`. The CLI is a
//! library (`wgsample_cli`) with a one-line binary, so its `.npy` reader
//! and argument parser are called here directly; the fuzzer's bytes are
//! decoded by hand (`input.rs`), not with `arbitrary`.

#![allow(dead_code)]

#[path = "input.rs"]
pub mod input;

use input::Reader;
use std::path::{Path, PathBuf};
use wgsample_cli::{args, npy};

// ---------------------------------------------------------------------------
// 1. The .npy reader (cli/src/npy.rs).
// ---------------------------------------------------------------------------

/// Fuzz target `npy`. The first byte picks what the rest is:
/// 0 a whole file for `read_logits` / `read_bigram`; 1 raw f32 data for
/// `read_logits` with a decoded `--vocab`; 2 a header text for
/// `checked_shape` (and as a whole file);
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
        2 => npy_header_text(&String::from_utf8_lossy(r.rest())),
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
    let mut out = npy::NPY_MAGIC.to_vec();
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
fn stored_bytes(data: &npy::LogitData) -> Vec<u8> {
    match data {
        npy::LogitData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        npy::LogitData::F16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
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
    let res = npy::read_logits(&path, None);
    let magic = bytes.starts_with(npy::NPY_MAGIC);
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
                assert_eq!(matches!(b.data, npy::LogitData::F16(_)), w.f16, "dtype");
            }
        }
    }
    // The same file as a `--vocab V` input must agree with the plain read.
    if let Ok(b) = &res {
        let again = npy::read_logits(&path, Some(b.vocab));
        assert_eq!(
            again.as_ref().ok().map(|x| (x.batch, x.vocab)),
            Some((b.batch, b.vocab)),
            "with --vocab {}",
            b.vocab
        );
        assert!(
            npy::read_logits(&path, Some(b.vocab + 1)).is_err(),
            "--vocab {} accepted for rows of {}",
            b.vocab + 1,
            b.vocab
        );
    }
    let big = npy::read_bigram(&path);
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
                npy::LogitData::F32(x) => x.iter().map(|f| f.to_bits()).collect(),
                npy::LogitData::F16(x) => x.iter().map(|h| h.to_f32().to_bits()).collect(),
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
    if bytes.starts_with(npy::NPY_MAGIC) {
        return; // a .npy file: npy_file's business
    }
    let path = write_scratch(bytes);
    let res = npy::read_logits(&path, Some(vocab));
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
                matches!(b.data, npy::LogitData::F32(_)),
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
        npy::read_bigram(&path).is_err(),
        "read_bigram accepted a file without the magic"
    );
}

/// `checked_shape` (the guard in front of npyz's shape arithmetic): no
/// panic; an accepted shape's size fits in a `u64`. Then the same text as
/// the header of a file: no panic either (the nesting guard in front of
/// npyz's parser).
fn npy_header_text(text: &str) {
    if let Ok(shape) = npy::checked_shape(text) {
        assert!(
            shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .is_some(),
            "accepted shape {shape:?} overflows"
        );
    }
    npy_file(&build_npy((1, 0), text.as_bytes(), &[], None), None);
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
    // Python 2's long suffix (`3L`): npyz's literal parser does not take it.
    let mut long_suffix = false;
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
        long_suffix |= !suffix.is_empty();
        dim_texts.push(format!("{d}{suffix}"));
    }
    let shape = match (ndims, flags & 1) {
        (1, 0) => format!("({},)", dim_texts[0]),
        (1, _) => format!("[{}]", dim_texts[0]), // a list (npyz takes it too)
        _ => format!("({})", dim_texts.join(", ")),
    };
    let shape_ok = (ndims == 2 || ndims == 1) && !long_suffix;
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
// 2. The CLI argument parser (cli/src/args.rs).
// ---------------------------------------------------------------------------

/// The switches of the CLI: flags without a value.
pub const SWITCH_NAMES: &[&str] = &["--explain"];

/// Every flag of the CLI that takes a value, in a fixed order: the decoder
/// below maps bytes to these words, so the committed seeds keep their
/// meaning. `cli/tests/fuzz_seeds.rs` checks that this table and
/// [`SWITCH_NAMES`] list exactly the flags clap declares
/// (`args::flag_names`).
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
    "--top-logprobs",
    "--target",
    "--draft-tokens",
    "--draft-probs",
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
    "verify",
    "1,2;3,4",
    "1;",
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

/// Fuzz target `args`: `args::parse` never panics, never reports its
/// own "a bug in wgsample" error, words its errors as one short line, keeps
/// the documented invariants of each command, and gives the same result for
/// `--flag=VALUE` as for `--flag VALUE`.
pub fn args(data: &[u8]) {
    use args::Command;
    let mut r = Reader::new(data);
    let args = decode_args(&mut r);
    let res = args::parse(&args);
    // Compared through Debug: a parsed NaN (`--min-p NaN`) is not equal to
    // itself under PartialEq.
    let shown = format!("{res:?}");
    assert_eq!(
        shown,
        format!("{:?}", args::parse(&args)),
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
                    Some(&d.sampling)
                }
                Command::Sample(s) => {
                    assert_eq!(first, "sample");
                    assert!(
                        !s.explain || s.backend == args::Backend::Gpu,
                        "--explain without --backend gpu: {s:?}"
                    );
                    Some(&s.sampling)
                }
                Command::Generate(g) => {
                    assert_eq!(first, "generate");
                    assert!(g.batch >= 1, "generate with batch 0");
                    assert!(
                        g.stop_tokens.iter().all(|s| !s.0.is_empty()),
                        "empty stop sequence"
                    );
                    Some(&g.sampling)
                }
                Command::Beam(b) => {
                    assert_eq!(first, "beam");
                    assert!(b.beams >= 1 && b.num_return_sequences >= 1);
                    assert!(b.num_return_sequences <= b.beams, "{b:?}");
                    assert!(b.length_penalty.is_finite(), "{b:?}");
                    None
                }
                Command::Verify(v) => {
                    assert_eq!(first, "verify");
                    let d = &v.draft_tokens;
                    assert!(d.k >= 1 && !d.tokens.is_empty(), "{d:?}");
                    assert!(d.tokens.len().is_multiple_of(d.k), "ragged drafts {d:?}");
                    Some(&v.sampling)
                }
                Command::Help => unreachable!(),
            };
            if let Some(p) = p {
                // The library's validation of whatever the CLI parsed must
                // not panic either.
                for v in [1usize, 7, 64] {
                    let _ = p.params().validate(0, v);
                    if let Some(a) = &p.allow {
                        let _ = wgsample::allowed_mask(v, &a.0);
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
        let res2 = args::parse(&split);
        match (&res, &res2) {
            (Ok(_), Ok(_)) => assert_eq!(shown, format!("{res2:?}"), "{args:?} vs {split:?}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{args:?} gives {res:?} but {split:?} gives {res2:?}"),
        }
    }
}
