//! Reading logits from a file: NumPy `.npy` (float32 `<f4` or float16
//! `<f2`, shape `[V]` or `[B, V]`, C order, format versions 1.0, 2.0 and
//! 3.0), read with the `npyz` crate, or raw little-endian float32 with a
//! vocabulary size given on the command line.
//!
//! Why it is shaped this way: npyz parses the header (its Python-literal
//! dict, the dtype, the order, the shape) and decodes the values; this
//! module decides what the CLI accepts and guards what npyz, a reader of
//! trusted files, does not. Only regular files are read, and nothing is
//! read blindly: the pre-header (magic, version, header length) is read and
//! checked here first, the header must fit in the file and in
//! [`MAX_HEADER_LEN`] before it is read, and it is checked for what would
//! make npyz's parser recurse deeply ([`MAX_DEPTH`]) or its shape
//! arithmetic overflow ([`checked_shape`]). Then the file's length (from
//! its metadata) must be exactly what the header's shape needs, and npyz
//! reads exactly those bytes, so `/dev/zero`, a FIFO or a huge sparse file
//! with a small shape cost nothing. Every failure is an [`InputError`] with
//! one line of text, never a panic.

use half::f16;
use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar};
use std::fmt;
use std::io::{BufReader, Read, Seek as _};
use std::path::Path;

/// The magic string every `.npy` file starts with.
pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Headers larger than this are refused (NumPy itself refuses headers over
/// 10 000 bytes unless told otherwise); it bounds the work done on a
/// hostile file.
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// Bracket nesting limit of a header, so that a header of nested brackets
/// cannot exhaust the stack of npyz's recursive-descent literal parser.
pub const MAX_DEPTH: usize = 32;

/// Why a logits file could not be used; `Display` is one line that names
/// the problem (the CLI prefixes it with `error: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, InputError> {
    Err(InputError(msg.into()))
}

/// Logit values as they were stored in the file; f16 stays f16 so that the
/// library widens it exactly as it would for any other caller.
#[derive(Debug, Clone, PartialEq)]
pub enum LogitData {
    /// float32 values, row-major.
    F32(Vec<f32>),
    /// float16 values, row-major.
    F16(Vec<f16>),
}

/// A `[batch, vocab]` batch of logits read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct LogitBatch {
    /// Number of rows `B` (1 for a `[V]` array).
    pub batch: usize,
    /// Vocabulary size `V` (the length of each row).
    pub vocab: usize,
    /// The `batch * vocab` values, row-major.
    pub data: LogitData,
}

impl LogitBatch {
    /// The logits of the whole batch as the library's borrowed type.
    pub fn logits(&self) -> wgsample::Logits<'_> {
        match &self.data {
            LogitData::F32(v) => wgsample::Logits::F32(v),
            LogitData::F16(v) => wgsample::Logits::F16(v),
        }
    }

    /// The logits of row `row`, or `None` when `row >= batch`.
    pub fn row(&self, row: usize) -> Option<wgsample::Logits<'_>> {
        if row >= self.batch {
            return None;
        }
        let start = row.checked_mul(self.vocab)?;
        let end = start.checked_add(self.vocab)?;
        match &self.data {
            LogitData::F32(v) => v.get(start..end).map(wgsample::Logits::F32),
            LogitData::F16(v) => v.get(start..end).map(wgsample::Logits::F16),
        }
    }
}

/// Reads a logits file. A file that starts with [`NPY_MAGIC`] is parsed as
/// `.npy` (and `vocab`, when given, must match its last dimension); any
/// other file is raw little-endian f32 and needs `vocab`.
///
/// Only regular files are read (`open_regular`), and the size is checked
/// before the data is read: a `.npy` file's header is read and checked
/// first, then exactly the bytes its shape needs (a file longer or shorter
/// than that is refused before any data is read); a raw file's length must
/// be a multiple of `4 * vocab`.
pub fn read_logits(path: &Path, vocab: Option<usize>) -> Result<LogitBatch, InputError> {
    let shown = path.display();
    let (mut file, len) = open_regular(path)?;
    let in_file = |e: InputError| InputError(format!("{shown}: {e}"));
    if starts_with_magic(&mut file).map_err(in_file)? {
        let (b, _) = read_npy(file, len).map_err(in_file)?;
        if let Some(v) = vocab
            && v != b.vocab
        {
            return err(format!(
                "--vocab {v} does not match {shown}, whose rows have {} values",
                b.vocab
            ));
        }
        Ok(b)
    } else {
        let Some(v) = vocab else {
            return err(format!(
                "{shown} is not a .npy file (it does not start with \\x93NUMPY); \
                 give --vocab V to read it as raw little-endian f32"
            ));
        };
        read_raw_f32(file, len, v).map_err(in_file)
    }
}

/// Reads a bigram table for `generate` / `beam`: a `.npy` file of shape
/// `[V, V]` (float32, or float16 widened exactly to float32). Returns the
/// `V * V` values, row-major, and `V`. The file is checked as
/// [`read_logits`] checks one.
pub fn read_bigram(path: &Path) -> Result<(Vec<f32>, usize), InputError> {
    let shown = path.display();
    let (mut file, len) = open_regular(path)?;
    let in_file = |e: InputError| InputError(format!("{shown}: {e}"));
    if !starts_with_magic(&mut file).map_err(in_file)? {
        return err(format!(
            "--bigram {shown} is not a .npy file (it does not start with \\x93NUMPY)"
        ));
    }
    let (batch, shape) = read_npy(file, len).map_err(in_file)?;
    if shape.len() != 2 || shape[0] != shape[1] {
        return err(format!(
            "--bigram {shown} has shape {}, a bigram table must be square [V, V]",
            show_shape(&shape)
        ));
    }
    let data = match batch.data {
        LogitData::F32(v) => v,
        LogitData::F16(v) => v.iter().map(|h| h.to_f32()).collect(),
    };
    Ok((data, batch.vocab))
}

/// Opens `path` for reading if it is a regular file, and returns the file
/// and its length. Anything else (a directory, a device such as
/// `/dev/zero`, a FIFO, a socket) is refused before it is opened: such a
/// "file" has no size to check and may never end, or block the open.
fn open_regular(path: &Path) -> Result<(std::fs::File, u64), InputError> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return err(format!("cannot read {shown}: {e}")),
    };
    if !meta.is_file() {
        return err(format!("cannot read {shown}: {}", not_regular(&meta)));
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return err(format!("cannot read {shown}: {e}")),
    };
    // Check what was opened, in case the path changed in between.
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return err(format!("cannot read {shown}: {e}")),
    };
    if !meta.is_file() {
        return err(format!("cannot read {shown}: {}", not_regular(&meta)));
    }
    Ok((file, meta.len()))
}

/// Names what a non-regular file is, for the error message.
fn not_regular(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "it is a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if t.is_fifo() {
            return "it is a FIFO (named pipe), not a regular file";
        }
        if t.is_char_device() {
            return "it is a character device, not a regular file";
        }
        if t.is_block_device() {
            return "it is a block device, not a regular file";
        }
        if t.is_socket() {
            return "it is a socket, not a regular file";
        }
    }
    "it is not a regular file"
}

/// True when the file starts with [`NPY_MAGIC`]; the file is rewound.
fn starts_with_magic(file: &mut std::fs::File) -> Result<bool, InputError> {
    let mut magic = [0u8; 6];
    let n = read_up_to(file, &mut magic)?;
    if let Err(e) = file.rewind() {
        return err(format!("cannot read: {e}"));
    }
    Ok(n == magic.len() && magic == *NPY_MAGIC)
}

/// Reads into `buf` until it is full or the input ends; returns the number
/// of bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, InputError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return err(format!("cannot read: {e}")),
        }
    }
    Ok(got)
}

/// Bytes buffered per read while the values are decoded.
const READ_CHUNK: usize = 1 << 16;

/// Reserves room for `count` values up front, so that a shape too large for
/// memory is an error rather than an abort.
fn reserve<T>(count: usize, size: usize) -> Result<Vec<T>, InputError> {
    let mut out = Vec::new();
    if out.try_reserve_exact(count).is_err() {
        return err(format!(
            "cannot allocate memory for {count} values ({} bytes)",
            count.saturating_mul(size)
        ));
    }
    Ok(out)
}

/// Reads `len` bytes of raw little-endian f32 data as rows of `vocab`
/// values; the length is checked before anything is read.
fn read_raw_f32(r: impl Read, len: u64, vocab: usize) -> Result<LogitBatch, InputError> {
    if vocab == 0 {
        return err("--vocab must be at least 1");
    }
    let Some(row_bytes) = vocab.checked_mul(4) else {
        return err(format!("--vocab {vocab} is too large"));
    };
    if len == 0 {
        return err("the file is empty (raw f32 input needs at least one row)");
    }
    if !len.is_multiple_of(row_bytes as u64) {
        return err(format!(
            "raw f32 file length {len} bytes is not a multiple of 4 * V = {row_bytes} (V = {vocab})"
        ));
    }
    let Ok(count) = usize::try_from(len / 4) else {
        return err(format!(
            "raw f32 file of {len} bytes does not fit in memory"
        ));
    };
    let mut data: Vec<f32> = reserve(count, 4)?;
    let mut r = BufReader::with_capacity(READ_CHUNK, r.take(len));
    let mut word = [0u8; 4];
    for _ in 0..count {
        if let Err(e) = r.read_exact(&mut word) {
            return err(format!("cannot read the data: {e}"));
        }
        data.push(f32::from_le_bytes(word));
    }
    Ok(LogitBatch {
        batch: count / vocab,
        vocab,
        data: LogitData::F32(data),
    })
}

/// Element type of a supported `.npy` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F16,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
        }
    }

    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "'<f4'",
            Dtype::F16 => "'<f2'",
        }
    }
}

/// Reads a `.npy` file of `len` bytes from its start: the pre-header and
/// header first, checked (version, header size and nesting, dtype, order,
/// shape, and that the file holds exactly the bytes the shape needs), then
/// exactly those bytes, decoded by npyz. Returns the batch and the shape as
/// the header gives it.
fn read_npy(file: impl Read, len: u64) -> Result<(LogitBatch, Vec<usize>), InputError> {
    let batch_vocab = |shape: &[usize]| match shape {
        [v] => Ok((1usize, *v)),
        [b, v] => Ok((*b, *v)),
        _ => err(format!(
            "unsupported shape {} (expected [V] or [B, V])",
            show_shape(shape)
        )),
    };
    let (data, shape) = read_npy_shaped(file, len, |shape| batch_vocab(shape).map(|_| ()))?;
    let (batch, vocab) = batch_vocab(&shape)?;
    Ok((LogitBatch { batch, vocab, data }, shape))
}

/// An array of any shape [`read_array`] accepts: its values, row-major,
/// and its shape as the header gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// The dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: LogitData,
}

impl Array {
    /// The values as the library's borrowed logits type.
    pub fn logits(&self) -> wgsample::Logits<'_> {
        match &self.data {
            LogitData::F32(v) => wgsample::Logits::F32(v),
            LogitData::F16(v) => wgsample::Logits::F16(v),
        }
    }
}

/// Reads a `.npy` file given by the flag `flag` (float32 or float16, C
/// order) whose shape `check` accepts (it returns the one-line message for
/// a shape it refuses). The file is checked as [`read_logits`] checks one:
/// only regular files, the header first, then exactly the bytes its shape
/// needs. Every dimension must be at least 1.
pub fn read_array(
    path: &Path,
    flag: &str,
    check: impl Fn(&[usize]) -> Result<(), InputError>,
) -> Result<Array, InputError> {
    let shown = path.display();
    let (mut file, len) = open_regular(path)?;
    let in_file = |e: InputError| InputError(format!("{flag} {shown}: {e}"));
    if !starts_with_magic(&mut file).map_err(in_file)? {
        return err(format!(
            "{flag} {shown} is not a .npy file (it does not start with \\x93NUMPY)"
        ));
    }
    let (data, shape) = read_npy_shaped(file, len, check).map_err(in_file)?;
    Ok(Array { shape, data })
}

/// The steps of [`read_npy`] for any shape `check` accepts: returns the
/// values and the shape.
fn read_npy_shaped(
    mut file: impl Read,
    len: u64,
    check: impl Fn(&[usize]) -> Result<(), InputError>,
) -> Result<(LogitData, Vec<usize>), InputError> {
    let head = read_header_bytes(&mut file, len)?;
    let header = match NpyHeader::from_reader(&head[..]) {
        Ok(h) => h,
        Err(e) => return err(format!("malformed .npy header ({e})")),
    };
    let dtype = supported_dtype(&header.dtype())?;
    if header.order() == Order::Fortran {
        return err("fortran_order: True is not supported (save the array in C order)");
    }
    // `checked_shape` already refused dimensions that overflow.
    let shape: Vec<usize> = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
        .collect();
    check(&shape)?;
    if shape.contains(&0) {
        return err(format!(
            "shape {} has no logits (every dimension must be at least 1)",
            show_shape(&shape)
        ));
    }
    // The size check, from the length alone: a file longer or shorter than
    // the shape says is refused before any data is read.
    let data_len = len - head.len() as u64;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let expected = count.and_then(|n| n.checked_mul(dtype.size()));
    let (Some(count), Some(expected)) = (count, expected) else {
        return err(format!(
            "shape {} of {} needs more bytes than fit in memory",
            show_shape(&shape),
            dtype.descr()
        ));
    };
    if expected as u64 != data_len {
        return err(format!(
            "shape {} of {} needs {expected} bytes of data but the file has {data_len} bytes \
             after the header",
            show_shape(&shape),
            dtype.descr(),
        ));
    }
    let data = BufReader::with_capacity(READ_CHUNK, file.take(data_len));
    let npy = NpyFile::with_header(header, data);
    let data = match dtype {
        Dtype::F32 => LogitData::F32(decode(npy, count, 4)?),
        Dtype::F16 => LogitData::F16(decode(npy, count, 2)?),
    };
    Ok((data, shape))
}

/// Decodes the `count` values of a checked file with npyz.
fn decode<T: npyz::Deserialize>(
    npy: NpyFile<impl Read>,
    count: usize,
    size: usize,
) -> Result<Vec<T>, InputError> {
    let mut out = reserve(count, size)?;
    let values = match npy.data::<T>() {
        Ok(v) => v,
        Err(e) => return err(format!("cannot read the data: {e}")),
    };
    for v in values {
        match v {
            Ok(x) => out.push(x),
            Err(e) => return err(format!("cannot read the data: {e}")),
        }
    }
    Ok(out)
}

/// Reads the pre-header (magic, version, header length) and the header,
/// after checking that the version is supported and that the header is at
/// most [`MAX_HEADER_LEN`] bytes and fits in the file; then checks the
/// header text with [`check_header_text`]. Returns all the bytes before the
/// data.
fn read_header_bytes(r: &mut impl Read, len: u64) -> Result<Vec<u8>, InputError> {
    let mut pre = [0u8; 12];
    let got = read_up_to(r, &mut pre[..8])?;
    if got < 6 || pre[..6] != NPY_MAGIC[..] {
        return err("not a .npy file (missing \\x93NUMPY magic)");
    }
    if got < 8 {
        return err("truncated .npy file (no format version)");
    }
    let (major, minor) = (pre[6], pre[7]);
    let len_bytes = match (major, minor) {
        (1, 0) => 2usize,
        (2, 0) | (3, 0) => 4,
        _ => {
            return err(format!(
                "unsupported .npy format version {major}.{minor} (expected 1.0, 2.0 or 3.0)"
            ));
        }
    };
    let header_start = 8 + len_bytes;
    if read_up_to(r, &mut pre[8..header_start])? < len_bytes {
        return err("truncated .npy file (no header length)");
    }
    let header_len = if len_bytes == 2 {
        usize::from(u16::from_le_bytes([pre[8], pre[9]]))
    } else {
        match usize::try_from(u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]])) {
            Ok(n) => n,
            Err(_) => return err("the .npy header length does not fit in memory"),
        }
    };
    if header_len > MAX_HEADER_LEN {
        return err(format!(
            ".npy header of {header_len} bytes is too large (limit {MAX_HEADER_LEN})"
        ));
    }
    let header_end = (header_start + header_len) as u64;
    if header_end > len {
        return err(format!(
            "truncated .npy file: the header claims {header_len} bytes but the file has {}",
            len.saturating_sub(header_start as u64)
        ));
    }
    let mut head = pre[..header_start].to_vec();
    head.resize(header_start + header_len, 0);
    if let Err(e) = r.read_exact(&mut head[header_start..]) {
        return err(format!("cannot read the .npy header: {e}"));
    }
    let Ok(text) = std::str::from_utf8(&head[header_start..]) else {
        return err(".npy header is not valid text");
    };
    check_header_text(text)?;
    Ok(head)
}

/// What npyz must not be handed: brackets nested deeper than
/// [`MAX_DEPTH`] (its literal parser recurses once per level), and a shape
/// whose dimensions or size overflow (its shape arithmetic is unchecked),
/// see [`checked_shape`].
fn check_header_text(text: &str) -> Result<(), InputError> {
    let (mut depth, mut quote, mut escaped) = (0usize, None, false);
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return err("malformed .npy header (nested too deeply)");
                    }
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    checked_shape(text).map(|_| ())
}

/// Reads the header's `shape` with npyz's literal parser and checks that
/// every dimension is a non-negative integer and that their product fits
/// in a `u64` (npyz multiplies them without checking). Returns the shape.
pub fn checked_shape(text: &str) -> Result<Vec<u64>, InputError> {
    use py_literal::Value;
    let body = text.strip_suffix('\n').unwrap_or(text);
    let value: Value = match body.parse() {
        Ok(v) => v,
        Err(e) => return err(format!("malformed .npy header ({e})")),
    };
    let Value::Dict(entries) = value else {
        return err("malformed .npy header (it is not a dict)");
    };
    let shape = entries
        .iter()
        .find(|(k, _)| matches!(k, Value::String(s) if s == "shape"))
        .map(|(_, v)| v);
    let dims = match shape {
        Some(Value::Tuple(d) | Value::List(d)) => d,
        Some(other) => {
            return err(format!(
                "malformed .npy header ('shape' is {other}, expected a tuple)"
            ));
        }
        None => return err("malformed .npy header (no 'shape')"),
    };
    let mut shape = Vec::with_capacity(dims.len());
    for d in dims {
        let n = match d {
            Value::Integer(n) => n.to_string().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) => shape.push(n),
            None => return err(format!("malformed .npy header (bad dimension {d})")),
        }
    }
    if shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .is_none()
    {
        let shown: Vec<String> = shape.iter().map(u64::to_string).collect();
        return err(format!(
            "shape [{}] has more values than fit in memory",
            shown.join(", ")
        ));
    }
    Ok(shape)
}

/// The CLI's dtypes: little-endian float32 and float16.
fn supported_dtype(dtype: &DType) -> Result<Dtype, InputError> {
    let DType::Plain(t) = dtype else {
        return err(format!(
            "unsupported dtype {} (expected '<f4' float32 or '<f2' float16)",
            dtype.descr()
        ));
    };
    let little = t.endianness() == npyz::Endianness::Little;
    match (t.type_char(), t.size_field(), little) {
        (TypeChar::Float, 4, true) => Ok(Dtype::F32),
        (TypeChar::Float, 2, true) => Ok(Dtype::F16),
        _ if t.endianness() == npyz::Endianness::Big => err(format!(
            "big-endian dtype '{t}' is not supported (expected little-endian '<f4' or '<f2')"
        )),
        _ => err(format!(
            "unsupported dtype '{t}' (expected '<f4' float32 or '<f2' float16)"
        )),
    }
}

/// A shape as `[d0, d1, ...]`, for messages.
pub fn show_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}
