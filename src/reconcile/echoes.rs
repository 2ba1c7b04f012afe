//! keysmith's own Secret writes coming back through its Secret watch.
//!
//! A reconcile that writes a target Secret has already reported what it wrote; the watch
//! event of that very version would only start another reconcile that reads the Secret
//! again and finds nothing to do (one GET per resource on first issuance and on every
//! renewal). So each write's `resourceVersion` is remembered until its watch event comes
//! back, and that one event is dropped. Any other version of the Secret — someone else's
//! change, a deletion — still reaches the controller, and so does the echo whose watch
//! event beat the write's response (the write was not remembered yet).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use kube::ResourceExt;

/// The versions of Secrets keysmith wrote whose watch events have not come back yet.
#[derive(Debug, Default)]
pub struct SecretEchoes {
    /// `namespace/name` → the resourceVersion keysmith's write returned.
    pending: Mutex<HashMap<String, String>>,
}

impl SecretEchoes {
    /// Remembers `secret` as just written by keysmith (as the API server returned it).
    pub fn wrote<S: ResourceExt>(&self, secret: &S) {
        let Some(version) = secret.resource_version() else {
            return;
        };
        self.lock().insert(key_of(secret), version);
    }

    /// Whether `secret` (a watch event's object) is keysmith's own last write coming back;
    /// either way the Secret's remembered write is settled once a version of it is seen.
    pub fn is_own_echo<S: ResourceExt>(&self, secret: &S) -> bool {
        let mut pending = self.lock();
        let key = key_of(secret);
        let Some(written) = pending.remove(&key) else {
            return false;
        };
        secret.resource_version().as_deref() == Some(written.as_str())
    }

    /// How many writes wait for their echo.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no write waits for its echo.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn key_of<S: ResourceExt>(secret: &S) -> String {
    format!(
        "{}/{}",
        secret.namespace().unwrap_or_default(),
        secret.name_any()
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::SecretEchoes;

    fn secret(namespace: &str, name: &str, version: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                resource_version: Some(version.to_owned()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }

    #[test]
    fn the_written_version_is_an_echo_once() {
        let echoes = SecretEchoes::default();
        echoes.wrote(&secret("a", "tls", "100"));
        assert!(echoes.is_own_echo(&secret("a", "tls", "100")));
        assert!(!echoes.is_own_echo(&secret("a", "tls", "100")));
        assert!(echoes.is_empty());
    }

    #[test]
    fn another_version_or_secret_is_not_an_echo() {
        let echoes = SecretEchoes::default();
        echoes.wrote(&secret("a", "tls", "100"));
        assert!(!echoes.is_own_echo(&secret("b", "tls", "100")));
        assert!(!echoes.is_own_echo(&secret("a", "other", "100")));
        assert_eq!(echoes.len(), 1);
        // A later change by someone else settles the write: it is not an echo, nor is the
        // written version if it shows up after it.
        assert!(!echoes.is_own_echo(&secret("a", "tls", "101")));
        assert!(!echoes.is_own_echo(&secret("a", "tls", "100")));
    }

    #[test]
    fn the_latest_write_is_the_one_expected() {
        let echoes = SecretEchoes::default();
        echoes.wrote(&secret("a", "tls", "100"));
        echoes.wrote(&secret("a", "tls", "105"));
        assert!(echoes.is_own_echo(&secret("a", "tls", "105")));
    }
}
