//! The crate's one error type.
//!
//! Every fallible public call returns [`Error`]; nothing in the crate panics on
//! bad input. The `Display` text is one line meant for a user: it names the
//! row and the field (for parameter errors) and the offending value, so a CLI
//! can print it as is.

use std::fmt;

/// Everything that can go wrong before or while sampling.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A sampling parameter of one row is out of its range.
    InvalidParam {
        /// Row of the batch (0-based).
        row: usize,
        /// Name of the `SamplingParams` field, e.g. `"top_p"`.
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the value must be, e.g. `"must be in (0, 1]"`.
        expected: String,
    },
    /// Shapes or lengths that do not fit together (batch, vocab, buffers).
    Shape(String),
    /// No usable wgpu adapter could be found.
    NoAdapter(String),
    /// The GPU refused something (device request, buffer mapping, limits).
    Gpu(String),
    /// Input data that could not be read (files, dtypes).
    Input(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidParam {
                row,
                field,
                value,
                expected,
            } => write!(f, "row {row}: {field} = {value} {expected}"),
            Error::Shape(s) => write!(f, "shape error: {s}"),
            Error::NoAdapter(s) => write!(f, "no GPU adapter: {s}"),
            Error::Gpu(s) => write!(f, "GPU error: {s}"),
            Error::Input(s) => write!(f, "bad input: {s}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for `Result<T, wgsample::Error>`.
pub type Result<T> = std::result::Result<T, Error>;
