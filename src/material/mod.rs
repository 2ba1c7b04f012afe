//! The pure key-material library: generation, encodings, parsing and validation of keys and
//! certificates. No kube client, no tokio, no network; every function is tested here against
//! real tools (openssl).

pub mod describe;
pub mod dh;
pub mod encode;
pub mod fingerprint;
pub mod keyring;
pub mod kms;
pub mod parse;
pub mod pkcs12;
pub mod pkey;
pub mod progress;
pub mod random;
pub mod secret;
pub mod ssh;
pub mod x509;

pub use secret::{SecretBytes, SecretString};

/// Failures of the material library. Messages say what is wrong in words a person can act
/// on and never contain key material or Secret data.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// The spec asks for something that cannot be produced (e.g. a digest the issuing key
    /// cannot sign with). Reported as `InvalidSpec`.
    #[error("{0}")]
    Unsupported(String),
    /// Input is not valid material (names the Secret key or the part that is wrong).
    #[error("{0}")]
    Invalid(String),
    /// A cryptographic operation failed.
    #[error("{0}")]
    Crypto(String),
}
