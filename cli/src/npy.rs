//! Reading logits from a file: NumPy `.npy` (float32 `<f4` or float16
//! `<f2`, shape `[V]` or `[B, V]`, C order, format versions 1.0, 2.0 and
//! 3.0) or raw little-endian float32 with a vocabulary size given on the
//! command line.
//!
//! Why it is shaped this way: the crate takes no dependency for this, so the
//! reader is written by hand and kept to exactly what the CLI accepts. Only
//! regular files are read, and nothing is read blindly: the `.npy` header
//! is read and checked first, the file's length (from its metadata) must
//! be exactly what the header's shape needs, and then exactly those bytes
//! are read and converted chunk by chunk (a raw f32 file's length is
//! checked the same way), so `/dev/zero`, a FIFO or a huge sparse file
//! with a small shape cost nothing. Every step uses checked arithmetic, so
//! a truncated or hostile file is always an [`InputError`] with one line
//! of text, never a panic. The
//! header's Python-literal dict is parsed by a tiny recursive-descent
//! parser ([`parse_literal`]) that accepts the general literal syntax
//! (strings, integers, booleans, `None`, tuples, lists, dicts) so that an
//! unsupported header, such as a structured dtype, can still be named in
//! the error message instead of being reported as "malformed".

use half::f16;
use std::fmt;
use std::io::{Read, Seek as _};
use std::path::Path;

/// The magic string every `.npy` file starts with.
pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Headers larger than this are refused (NumPy itself refuses headers over
/// 10 000 bytes unless told otherwise); it bounds the work done on a
/// hostile file.
const MAX_HEADER_LEN: usize = 1 << 20;

/// Nesting depth limit of the header literal parser, so that a header of
/// nested brackets cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

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
/// Only regular files are read ([`open_regular`]), and the size is checked
/// before the data is read: a `.npy` file's header is read and checked
/// first, then exactly the bytes its shape needs (a file longer or shorter
/// than that is refused before any data is read); a raw file's length must
/// be a multiple of `4 * vocab`.
pub fn read_logits(path: &Path, vocab: Option<usize>) -> Result<LogitBatch, InputError> {
    let shown = path.display();
    let (mut file, len) = open_regular(path)?;
    let in_file = |e: InputError| InputError(format!("{shown}: {e}"));
    let batch = if starts_with_magic(&mut file).map_err(in_file)? {
        let (b, _) = read_npy(&mut file, len).map_err(in_file)?;
        if let Some(v) = vocab
            && v != b.vocab
        {
            return err(format!(
                "--vocab {v} does not match {shown}, whose rows have {} values",
                b.vocab
            ));
        }
        b
    } else {
        let Some(v) = vocab else {
            return err(format!(
                "{shown} is not a .npy file (it does not start with \\x93NUMPY); \
                 give --vocab V to read it as raw little-endian f32"
            ));
        };
        read_raw_f32(&mut file, len, v).map_err(in_file)?
    };
    Ok(batch)
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

/// Bytes read per `read` call while converting the data.
const READ_CHUNK: usize = 1 << 16;

/// Reads exactly `count` values of `dtype` (the caller checked that the
/// input holds exactly that many bytes from here), converting them while
/// reading so that only the result is held in memory, then checks that the
/// input ends there.
fn read_data(r: &mut impl Read, dtype: Dtype, count: usize) -> Result<LogitData, InputError> {
    fn fill<T>(
        r: &mut impl Read,
        count: usize,
        size: usize,
        conv: impl Fn(&[u8]) -> T,
    ) -> Result<Vec<T>, InputError> {
        let mut out: Vec<T> = Vec::new();
        if out.try_reserve_exact(count).is_err() {
            return err(format!(
                "cannot allocate memory for {count} values ({} bytes)",
                count.saturating_mul(size)
            ));
        }
        let mut left = count * size;
        let mut buf = vec![0u8; READ_CHUNK.min(left)];
        while left > 0 {
            let n = left.min(buf.len());
            if let Err(e) = r.read_exact(&mut buf[..n]) {
                return err(format!("cannot read the data: {e}"));
            }
            out.extend(buf[..n].chunks_exact(size).map(&conv));
            left -= n;
        }
        Ok(out)
    }
    let data = match dtype {
        Dtype::F32 => LogitData::F32(fill(r, count, 4, |c| {
            f32::from_le_bytes([c[0], c[1], c[2], c[3]])
        })?),
        Dtype::F16 => LogitData::F16(fill(r, count, 2, |c| {
            f16::from_bits(u16::from_le_bytes([c[0], c[1]]))
        })?),
    };
    if read_up_to(r, &mut [0u8; 1])? != 0 {
        return err("the file grew while it was being read");
    }
    Ok(data)
}

/// Parses raw little-endian f32 data as rows of `vocab` values. (for the unit tests;
/// the CLI reads files with [`read_logits`]).
#[cfg(test)]
pub fn parse_raw_f32(bytes: &[u8], vocab: usize) -> Result<LogitBatch, InputError> {
    read_raw_f32(&mut &bytes[..], bytes.len() as u64, vocab)
}

/// Reads `len` bytes of raw little-endian f32 data as rows of `vocab`
/// values; the length is checked before anything is read.
fn read_raw_f32(r: &mut impl Read, len: u64, vocab: usize) -> Result<LogitBatch, InputError> {
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
    let data = read_data(r, Dtype::F32, count)?;
    Ok(LogitBatch {
        batch: count / vocab,
        vocab,
        data,
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
}

/// Parses a whole `.npy` file held in memory. (for the unit tests;
/// the CLI reads files with [`read_logits`]).
#[cfg(test)]
pub fn parse_npy(bytes: &[u8]) -> Result<LogitBatch, InputError> {
    read_npy(&mut &bytes[..], bytes.len() as u64).map(|(b, _)| b)
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
    let (batch, shape) = read_npy(&mut file, len).map_err(in_file)?;
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

/// Reads a `.npy` file of `len` bytes from its start: the header first,
/// checked (version, dtype, order, shape, and that the file holds exactly
/// the bytes the shape needs), then exactly those bytes. Returns the batch
/// and the shape as the header gives it.
fn read_npy(r: &mut impl Read, len: u64) -> Result<(LogitBatch, Vec<usize>), InputError> {
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
    let mut header_bytes = vec![0u8; header_len];
    if let Err(e) = r.read_exact(&mut header_bytes) {
        return err(format!("cannot read the .npy header: {e}"));
    }
    let Ok(header) = std::str::from_utf8(&header_bytes) else {
        return err(".npy header is not valid text");
    };
    let (dtype, shape) = parse_header(header)?;
    let (batch, vocab) = match shape.as_slice() {
        [v] => (1usize, *v),
        [b, v] => (*b, *v),
        _ => {
            return err(format!(
                "unsupported shape {} (expected [V] or [B, V])",
                show_shape(&shape)
            ));
        }
    };
    if batch == 0 || vocab == 0 {
        return err(format!(
            "shape {} has no logits (every dimension must be at least 1)",
            show_shape(&shape)
        ));
    }
    // The size check, from the length alone: a file longer or shorter than
    // the shape says is refused before any data is read.
    let data_len = len - header_end;
    let count = batch.checked_mul(vocab);
    let expected = count.and_then(|n| n.checked_mul(dtype.size()));
    if expected.map(|n| n as u64) != Some(data_len) {
        let need = match expected {
            Some(n) => format!("{n} bytes"),
            None => "more bytes than fit in memory".to_string(),
        };
        return err(format!(
            "shape {} of {} needs {need} of data but the file has {data_len} bytes after the header",
            show_shape(&shape),
            match dtype {
                Dtype::F32 => "'<f4'",
                Dtype::F16 => "'<f2'",
            },
        ));
    }
    let data = read_data(r, dtype, count.unwrap_or(0))?;
    Ok((LogitBatch { batch, vocab, data }, shape))
}

fn show_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Reads `descr`, `fortran_order` and `shape` from the header dict and
/// checks them against what the CLI supports.
fn parse_header(header: &str) -> Result<(Dtype, Vec<usize>), InputError> {
    let value = match parse_literal(header) {
        Ok(v) => v,
        Err(e) => return err(format!("malformed .npy header ({e})")),
    };
    let Literal::Dict(entries) = value else {
        return err("malformed .npy header (it is not a dict)");
    };
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| matches!(k, Literal::Str(s) if s == key))
            .map(|(_, v)| v)
    };
    let dtype = match get("descr") {
        Some(Literal::Str(d)) => match d.as_str() {
            "<f4" => Dtype::F32,
            "<f2" => Dtype::F16,
            other if other.starts_with('>') => {
                return err(format!(
                    "big-endian dtype '{other}' is not supported (expected little-endian '<f4' or '<f2')"
                ));
            }
            other => {
                return err(format!(
                    "unsupported dtype '{other}' (expected '<f4' float32 or '<f2' float16)"
                ));
            }
        },
        Some(other) => {
            return err(format!(
                "unsupported dtype {other} (expected '<f4' float32 or '<f2' float16)"
            ));
        }
        None => return err("malformed .npy header (no 'descr')"),
    };
    match get("fortran_order") {
        Some(Literal::Bool(false)) => {}
        Some(Literal::Bool(true)) => {
            return err("fortran_order: True is not supported (save the array in C order)");
        }
        Some(other) => {
            return err(format!(
                "malformed .npy header ('fortran_order' is {other}, expected True or False)"
            ));
        }
        None => return err("malformed .npy header (no 'fortran_order')"),
    }
    let shape = match get("shape") {
        Some(Literal::Tuple(dims)) => {
            let mut shape = Vec::with_capacity(dims.len());
            for d in dims {
                match d {
                    Literal::Int(n) => match usize::try_from(*n) {
                        Ok(n) => shape.push(n),
                        Err(_) => {
                            return err(format!("malformed .npy header (bad dimension {n})"));
                        }
                    },
                    other => {
                        return err(format!("malformed .npy header (bad dimension {other})"));
                    }
                }
            }
            shape
        }
        Some(other) => {
            return err(format!(
                "malformed .npy header ('shape' is {other}, expected a tuple)"
            ));
        }
        None => return err("malformed .npy header (no 'shape')"),
    };
    Ok((dtype, shape))
}

/// A Python literal, the subset `repr` produces for `.npy` headers.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A quoted string (no escape sequences other than `\\` and quotes).
    Str(String),
    /// An integer.
    Int(i128),
    /// `True` / `False`.
    Bool(bool),
    /// `None`.
    None,
    /// `( ... )`.
    Tuple(Vec<Literal>),
    /// `[ ... ]`.
    List(Vec<Literal>),
    /// `{ key: value, ... }`.
    Dict(Vec<(Literal, Literal)>),
}

impl fmt::Display for Literal {
    /// Python-like rendering, for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, items: &[Literal]) -> fmt::Result {
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        }
        match self {
            Literal::Str(s) => write!(f, "'{s}'"),
            Literal::Int(n) => write!(f, "{n}"),
            Literal::Bool(true) => f.write_str("True"),
            Literal::Bool(false) => f.write_str("False"),
            Literal::None => f.write_str("None"),
            Literal::Tuple(xs) => {
                f.write_str("(")?;
                seq(f, xs)?;
                if xs.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            Literal::List(xs) => {
                f.write_str("[")?;
                seq(f, xs)?;
                f.write_str("]")
            }
            Literal::Dict(kv) => {
                f.write_str("{")?;
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Parses one Python literal that makes up the whole of `text` (surrounding
/// whitespace allowed). The error is a short description for a message.
pub fn parse_literal(text: &str) -> Result<Literal, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(format!("unexpected text at byte {}", p.pos));
    }
    Ok(v)
}

/// Recursive-descent parser over the header bytes.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Literal, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".to_string());
        }
        self.skip_ws();
        match self.peek() {
            None => Err("unexpected end".to_string()),
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'(') => {
                self.pos += 1;
                let (items, trailing_comma) = self.items(b')', depth)?;
                // `(x)` is just `x` in Python; `(x,)` is a 1-tuple.
                if items.len() == 1 && !trailing_comma {
                    Ok(items.into_iter().next().unwrap_or(Literal::None))
                } else {
                    Ok(Literal::Tuple(items))
                }
            }
            Some(b'[') => {
                self.pos += 1;
                Ok(Literal::List(self.items(b']', depth)?.0))
            }
            Some(b'{') => {
                self.pos += 1;
                self.dict(depth)
            }
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(Literal::Bool(true)),
                    b"False" => Ok(Literal::Bool(false)),
                    b"None" => Ok(Literal::None),
                    w => Err(format!(
                        "unknown word '{}' at byte {start}",
                        String::from_utf8_lossy(w)
                    )),
                }
            }
            Some(_) => Err(format!("unexpected character at byte {}", self.pos)),
        }
    }

    fn string(&mut self, quote: u8) -> Result<Literal, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated string at byte {start}")),
                Some(c) if c == quote => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        None => return Err(format!("unterminated string at byte {start}")),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        Ok(Literal::Str(String::from_utf8_lossy(&out).into_owned()))
    }

    fn int(&mut self) -> Result<Literal, String> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
        }
        // Python 2 era headers may write long integers as `3L`.
        let end = self.pos;
        if self.peek() == Some(b'L') {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.s[start..end]).unwrap_or("");
        text.parse::<i128>()
            .map(Literal::Int)
            .map_err(|_| format!("bad integer at byte {start}"))
    }

    /// Comma-separated values up to `close`; returns them and whether the
    /// last one was followed by a comma.
    fn items(&mut self, close: u8, depth: usize) -> Result<(Vec<Literal>, bool), String> {
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, trailing_comma));
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing_comma = true;
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok((items, false));
                }
                Some(_) => return Err(format!("expected ',' at byte {}", self.pos)),
                None => return Err("unexpected end".to_string()),
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Literal, String> {
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Literal::Dict(entries));
            }
            let key = self.value(depth + 1)?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(format!("expected ':' at byte {}", self.pos));
            }
            self.pos += 1;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Literal::Dict(entries));
                }
                Some(_) => return Err(format!("expected ',' at byte {}", self.pos)),
                None => return Err("unexpected end".to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(version: u8, descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
        let dict = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        let prefix = if version == 1 { 10 } else { 12 };
        let mut header = dict.into_bytes();
        while !(prefix + header.len() + 1).is_multiple_of(64) {
            header.push(b' ');
        }
        header.push(b'\n');
        let mut out = NPY_MAGIC.to_vec();
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

    #[test]
    fn reads_f32_vector_and_matrix() {
        let b = parse_npy(&npy(1, "<f4", "(3,)", false, &f32_bytes(&[1.0, 2.0, 3.0]))).unwrap();
        assert_eq!((b.batch, b.vocab), (1, 3));
        assert_eq!(b.data, LogitData::F32(vec![1.0, 2.0, 3.0]));
        let b = parse_npy(&npy(
            3,
            "<f4",
            "(2, 2)",
            false,
            &f32_bytes(&[1.0, 2.0, 3.0, 4.0]),
        ))
        .unwrap();
        assert_eq!((b.batch, b.vocab), (2, 2));
    }

    #[test]
    fn reads_f16() {
        let data: Vec<u8> = [f16::from_f32(1.5), f16::from_f32(-2.0)]
            .iter()
            .flat_map(|x| x.to_bits().to_le_bytes())
            .collect();
        let b = parse_npy(&npy(2, "<f2", "(1, 2)", false, &data)).unwrap();
        assert_eq!(
            b.data,
            LogitData::F16(vec![f16::from_f32(1.5), f16::from_f32(-2.0)])
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let d = f32_bytes(&[1.0, 2.0]);
        let e = parse_npy(&npy(1, "<f8", "(1,)", false, &d)).unwrap_err();
        assert!(e.0.contains("'<f8'"), "{e}");
        let e = parse_npy(&npy(1, ">f4", "(2,)", false, &d)).unwrap_err();
        assert!(e.0.contains("big-endian"), "{e}");
        let e = parse_npy(&npy(1, "<f4", "(2,)", true, &d)).unwrap_err();
        assert!(e.0.contains("fortran_order"), "{e}");
        let e = parse_npy(&npy(1, "<f4", "(1, 1, 2)", false, &d)).unwrap_err();
        assert!(e.0.contains("shape"), "{e}");
        let e = parse_npy(&npy(1, "<f4", "(3,)", false, &d)).unwrap_err();
        assert!(e.0.contains("needs 12 bytes"), "{e}");
        let e = parse_npy(&npy(4, "<f4", "(2,)", false, &d)).unwrap_err();
        assert!(e.0.contains("version 4.0"), "{e}");
        let full = npy(1, "<f4", "(2,)", false, &d);
        for cut in 0..full.len() - d.len() {
            assert!(parse_npy(&full[..cut]).is_err());
        }
    }

    #[test]
    fn literal_parser() {
        assert_eq!(
            parse_literal("{'a': (1,), \"b\": [True, None], 'c': (2)}").unwrap(),
            Literal::Dict(vec![
                (
                    Literal::Str("a".into()),
                    Literal::Tuple(vec![Literal::Int(1)])
                ),
                (
                    Literal::Str("b".into()),
                    Literal::List(vec![Literal::Bool(true), Literal::None])
                ),
                (Literal::Str("c".into()), Literal::Int(2)),
            ])
        );
        assert!(parse_literal(&"[".repeat(1000)).is_err());
        assert!(parse_literal("{'a': 1} x").is_err());
    }

    #[test]
    fn raw_f32() {
        let b = parse_raw_f32(&f32_bytes(&[1.0, 2.0, 3.0, 4.0]), 2).unwrap();
        assert_eq!((b.batch, b.vocab), (2, 2));
        assert!(parse_raw_f32(&f32_bytes(&[1.0, 2.0, 3.0]), 2).is_err());
        assert!(parse_raw_f32(&[], 2).is_err());
        assert!(parse_raw_f32(&f32_bytes(&[1.0]), 0).is_err());
    }
}
