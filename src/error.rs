//! The crate's one error type.
//!
//! Every fallible public call returns [`Error`]; nothing in the crate panics on
//! bad input. The variants say whose fault it is and what to do about it:
//! [`Error::InvalidParams`] and [`Error::InvalidArgument`] are the caller's
//! (fix the call), [`Error::Limit`] is the device's (ask for less, or a
//! device with a larger limit), [`Error::NoAdapter`] and the GPU variants
//! are the machine's. The `Display` text is one line meant for a user: it
//! names the row and field (for parameters), or the limit, its value and
//! what needed more, so a CLI can print it as is. wgpu's own errors are kept
//! whole as the [`source`](std::error::Error::source) of [`Error::Wgpu`] and
//! [`Error::Map`].
//!
//! The enum is `#[non_exhaustive]`: match the variants you handle and keep
//! a `_` arm.

/// Everything that can go wrong before or while sampling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A sampling parameter (or stop criterion) of one row is out of its
    /// range. Displayed as `row R: FIELD = VALUE REASON`.
    #[error("row {row}: {field} = {value} {reason}")]
    InvalidParams {
        /// Row of the batch (0-based).
        row: usize,
        /// Name of the `SamplingParams` field, e.g. `"top_p"`.
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the value must be, e.g. `"must be in (0, 1]"`.
        reason: String,
    },
    /// Misuse of the API: shapes or lengths that do not fit together,
    /// token ids outside the vocabulary, a buffer without the usage it
    /// needs, data that cannot be sampled (NaN in a beam-search row), or a
    /// call in the wrong order. The text names what and where.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Something needs more than one of the device's limits allows.
    #[error("{what} needs {needed}, more than this device's {limit_name} ({max}){hint}")]
    Limit {
        /// What needed it, e.g. `"the logits binding (64 rows x 128256)"`.
        what: String,
        /// How much it needs, in the limit's unit (bytes, workgroups,
        /// bindings).
        needed: u64,
        /// The `wgpu::Limits` field, e.g. `"max_storage_buffer_binding_size"`.
        limit_name: &'static str,
        /// The device's value of that limit.
        max: u64,
        /// What to do about it, as a `"; ..."` suffix, or empty.
        hint: String,
    },
    /// No usable wgpu adapter could be found (the text says how to install
    /// a driver).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// wgpu reported an error (validation, out of memory, internal) while
    /// the crate was doing `context`.
    #[error("GPU error: {context}: {source}")]
    Wgpu {
        /// What the crate was doing, e.g. `"sampler step"`.
        context: String,
        /// wgpu's error, whole.
        #[source]
        source: wgpu::Error,
    },
    /// Mapping a read-back buffer failed.
    #[error("GPU error: {context}: {source}")]
    Map {
        /// Which read-back.
        context: String,
        /// wgpu's error, whole.
        #[source]
        source: wgpu::BufferAsyncError,
    },
    /// Any other failure of the device: the device request, waiting for
    /// the queue, or a result the device wrote that cannot be valid.
    #[error("GPU error: {0}")]
    Gpu(String),
}

impl Error {
    /// [`Error::Limit`] for `what`, which needs `needed` of the limit
    /// `limit_name`, whose value is `max`.
    pub fn limit(what: impl Into<String>, needed: u64, limit_name: &'static str, max: u64) -> Self {
        Error::Limit {
            what: what.into(),
            needed,
            limit_name,
            max,
            hint: String::new(),
        }
    }

    /// Adds advice (`"; lower max_batch"`) to an [`Error::Limit`]; other
    /// variants are returned unchanged.
    pub fn with_hint(mut self, advice: impl Into<String>) -> Self {
        if let Error::Limit { hint, .. } = &mut self {
            *hint = advice.into();
        }
        self
    }
}

/// Shorthand for `Result<T, wgsample::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::Error;
    use std::error::Error as _;

    #[test]
    fn limit_names_what_the_limit_and_both_numbers() {
        let e = Error::limit(
            "the candidate buffer (bytes)",
            300,
            "max_storage_buffer_binding_size",
            256,
        )
        .with_hint("; lower max_batch");
        assert_eq!(
            e.to_string(),
            "the candidate buffer (bytes) needs 300, more than this device's \
             max_storage_buffer_binding_size (256); lower max_batch"
        );
        // A hint on another variant changes nothing.
        let a = Error::InvalidArgument("x".into()).with_hint("; y");
        assert_eq!(a.to_string(), "invalid argument: x");
    }

    #[test]
    fn wgpu_errors_stay_whole_as_the_source() {
        let e = Error::Map {
            context: "mapping the read-back buffer".into(),
            source: wgpu::BufferAsyncError,
        };
        let src = e.source().expect("the wgpu error is the source");
        assert_eq!(src.to_string(), wgpu::BufferAsyncError.to_string());
        assert!(
            e.to_string()
                .starts_with("GPU error: mapping the read-back buffer: ")
        );
        assert!(Error::Gpu("x".into()).source().is_none());
    }

    #[test]
    fn invalid_params_reads_as_one_line_naming_row_and_field() {
        let e = Error::InvalidParams {
            row: 3,
            field: "top_p",
            value: "1.5".into(),
            reason: "must be in (0, 1]".into(),
        };
        assert_eq!(e.to_string(), "row 3: top_p = 1.5 must be in (0, 1]");
    }
}
