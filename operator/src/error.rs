//! The crate's error type.

use crate::manifest::LoadError;

/// Everything that can go wrong in ecsop, by kind; the kind decides the CLI exit code and the
/// controller's backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifests are invalid or unreadable.
    #[error(transparent)]
    Manifest(#[from] LoadError),
    /// Writing output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The CLI exit code for this error (DESIGN.md section 5): 2 invalid input, 4 AWS or permission.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Manifest(_) => 2,
            Error::Output(_) => 1,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
