//! GPU backend
