//! The crate's error type.

use crate::aws::{AwsError, ErrorKind};
use crate::manifest::LoadError;

/// Everything that can go wrong in ecsop, by kind; the kind decides the CLI exit code and the
/// controller's backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifests are invalid or unreadable.
    #[error(transparent)]
    Manifest(#[from] LoadError),
    /// Invalid input that is not a manifest problem (flags, environment).
    #[error("{0}")]
    Usage(String),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A Kubernetes API call failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Measuring a rollout's analysis failed (a metrics source refused or could not be reached).
    #[error("analysis: {0}")]
    Analysis(String),
    /// Writing output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The CLI exit code for this error (docs/cli.md): 2 invalid input, 4 AWS or permission.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Manifest(_) | Error::Usage(_) => 2,
            Error::Aws(_) | Error::Kube(_) | Error::Finalizer(_) | Error::Analysis(_) => 4,
            Error::Output(_) => 1,
        }
    }

    /// A short label per kind, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Manifest(_) | Error::Usage(_) => "invalid_spec",
            Error::Aws(e) if e.kind == ErrorKind::AccessDenied => "access_denied",
            Error::Aws(e) if e.kind == ErrorKind::Throttled => "throttled",
            Error::Aws(_) => "aws",
            Error::Kube(_) | Error::Finalizer(_) => "kubernetes",
            Error::Analysis(_) => "analysis",
            Error::Output(_) => "output",
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
