//! keysmith: a Kubernetes operator that generates secret material (X.509 key pairs, OpenSSH
//! keys, device keyring secrets and KMIP authentication keys) from custom resources, stores it
//! in Kubernetes Secrets, keeps it fresh and reports on it in each resource's status.
//!
//! The library is organised as the architecture document describes: `api` holds the CRD types,
//! `material` the pure key-material code, `reconcile` the controllers.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod http;
pub mod kmip;
pub mod material;
pub mod metrics;
pub mod reconcile;
pub mod telemetry;

/// The Kubernetes API group of every keysmith kind.
pub const API_GROUP: &str = "keysmith.dev";
