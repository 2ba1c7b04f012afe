//! Spec → material: the input is a `keysmith generate` YAML stream (resources, Secrets,
//! KeyManagers), run through the controllers' offline steps (decide, generate, issue, adopt
//! the Secrets of the input, encode). Every generated Secret is then read back by
//! `keysmith inspect`.
//!
//! Bounded so an iteration stays fast: at most four resources, and none that makes RSA
//! keys, generates DH primes or hashes htpasswd lines (bcrypt); those paths are exercised
//! by the unit tests and, for reading, by the `secret` and `material` targets.
#![no_main]

use std::time::{Duration, SystemTime};

use keysmith::cli::generate::{Input, Options, Resource, generate, to_yaml};
use keysmith::cli::inspect;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// A fixed clock: 2027-01-15.
const NOW: Duration = Duration::from_secs(1_800_000_000);

/// Most resources generated per input.
const MAX_RESOURCES: usize = 4;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let input = Input::parse(text, "fuzz");
    if input.resources.len() > MAX_RESOURCES || input.resources.iter().any(is_slow) {
        return;
    }
    let now = SystemTime::UNIX_EPOCH + NOW;
    let options = Options {
        default_issuer: Some(("fuzz".to_owned(), "ca".to_owned())),
        now,
    };
    for generated in generate(&input, &options) {
        if let Ok(secret) = generated.result {
            let _ = to_yaml(&secret);
            let _ = inspect::report(&secret, &Ok(None), now);
        }
    }
});

/// Whether generating `resource` takes long: RSA keys, DH primes, bcrypt.
fn is_slow(resource: &Resource) -> bool {
    let spec = match resource {
        Resource::CertificateKeyPair(r) => serde_json::to_value(&r.spec),
        Resource::SshKey(r) => serde_json::to_value(&r.spec),
        Resource::KeyringSecret(r) => serde_json::to_value(&r.spec),
        Resource::KmsAuthKey(r) => serde_json::to_value(&r.spec),
    };
    spec.map_or(true, |spec| slow_value(&spec))
}

/// Whether a spec (as JSON) names an RSA algorithm, DH generation or remote-access
/// credentials anywhere.
fn slow_value(value: &Value) -> bool {
    match value {
        Value::String(s) => s.eq_ignore_ascii_case("rsa") || s == "Generate",
        Value::Array(items) => items.iter().any(slow_value),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key == "remote_access" || slow_value(value)),
        _ => false,
    }
}
