//! Carrying typed errors through `std::io` and adding context to I/O results.

use super::{Error, Result};

/// An [`Error`] carried inside an `std::io::Error`.
#[derive(Debug)]
pub(crate) struct Boxed(pub(crate) Error);

impl std::fmt::Display for Boxed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Boxed {}

/// Adds a context to I/O results.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
