//! A KMIP 1.x client over mutual TLS (rustls with the aws-lc-rs provider) and the TTLV codec
//! it needs; no maintained Rust crate supports KMIP Secret Data, so both are written here.
//!
//! - [`ttlv`]: the binary Tag-Type-Length-Value encoding, strict on input.
//! - [`tags`]: the tags and enumerations the client uses.
//! - [`messages`]: request building and response parsing, pure functions.
//! - [`KmipClient`]: Register (Secret Data, Password), Locate by Name, Get, Get Attributes
//!   (State), Activate, Revoke, Destroy and a Query probe, one connection per request.
//!
//! The unit tests check the codec and messages against the byte vectors of the KMIP 1.2
//! specification (section 9.1.2) and the KMIP 1.1 Test Cases, and the client against an
//! in-process TLS 1.2 responder with PyKMIP's cipher suites and state rules.
//!
//! PyKMIP 0.11 behaviour the client relies on (read from its source, checked by hand):
//! - it accepts Protocol Version 1.0 to 1.4 and 2.0 and answers in the request's version;
//! - it owns objects by the client certificate's CN: Locate only finds the caller's objects;
//! - Locate by Name matches Name Value *and* Name Type, so both are sent;
//! - Register leaves an object Pre-Active; Revoke with any reason but Key Compromise needs
//!   an Active object; Destroy refuses Active objects;
//! - a Get of Secret Data that names a Key Format Type fails (Key Format Type Not
//!   Supported), so none is sent;
//! - an empty or missing Unique Identifier means "the object of the previous request", so
//!   the client refuses empty identifiers before sending anything.

mod client;
mod error;
pub mod messages;
pub mod tags;
#[cfg(test)]
mod testing;
mod tls;
pub mod ttlv;

pub use client::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, KmipClient, KmipClientConfig,
    RequestObserver, RequestOutcome,
};
pub use error::KmipError;
pub use messages::{Failure, ServerInfo};
pub use tags::{ResultReason, RevocationReasonCode, State};
pub use tls::DEFAULT_PORT;
