//! The failures of a reconcile step. Messages name objects, never material.

use crate::api::common::reason;
use crate::material::MaterialError;

/// A failed step of a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading an object failed.
    #[error("reading {what}: {}", api_message(.source))]
    Read {
        /// What was read.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// Generating material failed, or the spec asks for material that cannot be made.
    #[error("generating: {0}")]
    Generate(MaterialError),
    /// A referenced Secret key is missing or unusable (a passphrase, a keystore password).
    #[error("{0}")]
    Reference(String),
    /// Writing a Secret failed.
    #[error("writing Secret {secret}: {}", api_message(.source))]
    WriteSecret {
        /// `<namespace>/<name>`.
        secret: String,
        /// The API error.
        source: kube::Error,
    },
    /// The target Secret cannot be taken over (e.g. an adopted Secret of another type,
    /// which could only be replaced, never updated).
    #[error("{0}")]
    Conflict(String),
    /// Writing the status failed.
    #[error("writing the status: {}", api_message(.0))]
    WriteStatus(kube::Error),
    /// Adding or removing keysmith's finalizer failed.
    #[error("updating the finalizers: {}", api_message(.0))]
    Finalizer(kube::Error),
    /// The resource turned out to be gone or being deleted before it got the finalizer.
    #[error("the resource is being deleted")]
    Deleted,
}

/// The API server's own message (without the Debug dump kube adds), or the error text.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => other.to_string(),
    }
}

impl Error {
    /// The Ready reason (and metric label) of this failure.
    pub fn reason(&self) -> &'static str {
        let forbidden = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 403);
        match self {
            Self::Read { source, .. } | Self::WriteSecret { source, .. } if forbidden(source) => {
                reason::FORBIDDEN
            }
            Self::WriteStatus(source) | Self::Finalizer(source) if forbidden(source) => {
                reason::FORBIDDEN
            }
            Self::Generate(MaterialError::Unsupported(_)) => reason::INVALID_SPEC,
            Self::Reference(_) => reason::REFERENCE_NOT_FOUND,
            Self::Conflict(_) => reason::SECRET_CONFLICT,
            Self::Generate(_) => reason::GENERATION_FAILED,
            Self::Read { .. }
            | Self::WriteSecret { .. }
            | Self::WriteStatus(_)
            | Self::Finalizer(_)
            | Self::Deleted => reason::SECRET_WRITE_FAILED,
        }
    }

    /// Whether this is a create of a Secret that turned out to exist (read as absent, or
    /// guessed absent, a moment before): the reconcile runs again at once and reads it.
    pub fn is_lost_create(&self) -> bool {
        matches!(self, Self::WriteSecret { source: kube::Error::Api(s), .. }
            if s.code == 409 && s.reason == "AlreadyExists")
    }

    /// Whether this failure is a passing API hiccup, retried with backoff and leaving the
    /// status as it is, rather than something to report.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Read { source, .. } => !matches!(source, kube::Error::Api(s) if s.code == 403),
            // The finalizer list or uid tested was not the stored one (422), the resource
            // was gone (404) or changed (409); a deletion is told apart by a fresh read
            // (`Error::Deleted`), so these are retried.
            Self::Finalizer(kube::Error::Api(s)) => matches!(s.code, 404 | 409 | 422),
            _ => false,
        }
    }
}
