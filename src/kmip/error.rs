//! Failures of the KMIP client. Messages name the server and the operation and quote the
//! server's Result Message, never secret data (a Register failure is redacted).

use std::time::Duration;

use super::messages::{Failure, MessageError};
use super::tags::{Operation, ResultReason};
use super::ttlv::TtlvError;
use crate::material::SecretBytes;

/// A failed KMIP call.
#[derive(Debug, thiserror::Error)]
pub enum KmipError {
    /// The client configuration is unusable (CA bundle, client certificate or key, address,
    /// server name).
    #[error("invalid KMIP client configuration: {0}")]
    Config(String),
    /// The request cannot be sent as asked (e.g. an empty unique identifier).
    #[error("invalid KMIP request: {0}")]
    InvalidRequest(&'static str),
    /// The TCP connection could not be opened.
    #[error("connecting to KMIP server {address} failed: {source}")]
    Connect {
        /// `host:port` of the server.
        address: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TLS handshake failed (untrusted server certificate, name mismatch, no shared
    /// cipher suite, client certificate refused, ...).
    #[error("TLS handshake with KMIP server {address} failed: {source}")]
    Tls {
        /// `host:port` of the server.
        address: String,
        /// The TLS error (rustls' error inside an I/O error).
        source: std::io::Error,
    },
    /// Connecting and the TLS handshake took longer than the connect timeout.
    #[error("connecting to KMIP server {address} timed out after {after:?}")]
    ConnectTimeout {
        /// `host:port` of the server.
        address: String,
        /// The timeout.
        after: Duration,
    },
    /// Sending the request or reading the response failed.
    #[error("KMIP {operation} on {address}: the connection failed: {source}")]
    Io {
        /// `host:port` of the server.
        address: String,
        /// The operation.
        operation: Operation,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server did not answer within the request timeout.
    #[error("KMIP {operation} on {address} timed out after {after:?}")]
    RequestTimeout {
        /// `host:port` of the server.
        address: String,
        /// The operation.
        operation: Operation,
        /// The timeout.
        after: Duration,
    },
    /// The server reports that the operation failed.
    #[error("KMIP {} on {address} failed: {failure}", failure.operation)]
    OperationFailed {
        /// `host:port` of the server.
        address: String,
        /// Status, reason and message as the server sent them.
        failure: Failure,
    },
    /// The response is not valid TTLV or not what the specification prescribes.
    #[error("malformed KMIP {operation} response from {address}: {source}")]
    MalformedResponse {
        /// `host:port` of the server.
        address: String,
        /// The operation.
        operation: Operation,
        /// What is wrong.
        source: MessageError,
    },
    /// The request could not be encoded (an over-long name or identifier).
    #[error("encoding the KMIP {operation} request failed: {source}")]
    Encode {
        /// The operation.
        operation: Operation,
        /// What is wrong.
        source: TtlvError,
    },
}

impl KmipError {
    /// The server's Result Reason, when the server reported a failure.
    pub fn result_reason(&self) -> Option<ResultReason> {
        match self {
            Self::OperationFailed { failure, .. } => failure.reason(),
            _ => None,
        }
    }

    /// Whether the server could not be reached or the connection broke (as opposed to a
    /// server that answered with a failure or nonsense).
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Tls { .. }
                | Self::ConnectTimeout { .. }
                | Self::Io { .. }
                | Self::RequestTimeout { .. }
        )
    }

    /// This error with every occurrence of `secret` removed from the server's message.
    pub(crate) fn redacted(mut self, secret: &SecretBytes) -> Self {
        if let Self::OperationFailed { failure, .. } = &mut self {
            failure.redact(secret);
        }
        self
    }
}
