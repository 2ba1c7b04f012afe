//! keysmith's own Secret writes coming back through its Secret watch.
//!
//! A reconcile that writes a target Secret has already reported what it wrote; the watch
//! event of that very version would only start another reconcile that reads the Secret
//! again and finds nothing to do (one GET per resource on first issuance and on every
//! renewal). So each write's `resourceVersion` is remembered until its watch event comes
//! back, and that one event is dropped. Any other version of the Secret — someone else's
//! change, a deletion — still reaches the controller.
//!
//! The watch event often arrives before the write's response, when the version is not
//! known yet. So a Secret is marked as being written before the request goes out: the
//! events that arrive meanwhile are held back (their versions noted) and judged when the
//! response comes: if they were all the written version, they were the echo; if one was
//! another version (someone changed the Secret right after the write), the owner is
//! reconciled again through [`SecretEchoes::changed_meanwhile`]. A write that fails (or
//! whose future is dropped) settles nothing and is forgotten: its reconcile is retried and
//! reads the Secret anyway.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use futures::channel::mpsc::UnboundedReceiver;
use kube::ResourceExt;

use super::wakeups::Wakeups;

/// What is known of keysmith's latest write of one Secret.
#[derive(Debug)]
enum Pending {
    /// The request is out: the versions of the Secret whose events arrived meanwhile.
    InFlight(Vec<String>),
    /// It returned this version, whose watch event has not come back yet.
    Written(String),
}

/// The Secrets keysmith is writing or wrote whose watch events have not come back yet.
#[derive(Debug, Default)]
pub struct SecretEchoes {
    /// `namespace/name` → the state of keysmith's latest write.
    pending: Mutex<HashMap<String, Pending>>,
    /// Per kind, the owners of Secrets changed by others during a write.
    wakeups: Wakeups,
}

/// The resource a written Secret belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Writer<'a> {
    /// The resource's kind.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
}

/// A write of a Secret that is out: settled by [`InFlight::wrote`]; dropped unsettled (the
/// write failed, or its future was dropped), it forgets the write, so that no later event
/// of the Secret is held back for a response that never comes. A failed write's reconcile
/// is retried and reads the Secret anyway.
#[must_use = "a write in flight is settled by `wrote` or forgotten when dropped"]
pub struct InFlight<'a> {
    echoes: &'a SecretEchoes,
    key: String,
    settled: bool,
}

impl InFlight<'_> {
    /// Settles the write with `secret` as the API server returned it, by `writer`: its
    /// echo is expected, or was already seen; if another version of the Secret was seen
    /// during the write, `writer` is reconciled again.
    pub fn wrote<S: ResourceExt>(mut self, secret: &S, writer: Writer<'_>) {
        self.settled = true;
        let version = secret.resource_version().unwrap_or_default();
        let mut pending = self.echoes.lock();
        let seen = match pending.remove(&self.key) {
            Some(Pending::InFlight(seen)) => seen,
            Some(Pending::Written(_)) | None => Vec::new(),
        };
        if seen.is_empty() {
            pending.insert(std::mem::take(&mut self.key), Pending::Written(version));
            return;
        }
        drop(pending);
        if seen.iter().any(|v| *v != version) {
            let echoes = self.echoes;
            echoes
                .wakeups
                .wake(writer.kind, writer.namespace, writer.name);
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.echoes.lock().remove(&self.key);
        }
    }
}

impl SecretEchoes {
    /// Marks Secret `namespace/name` as being written by keysmith, right before the request.
    pub fn writing(&self, namespace: &str, name: &str) -> InFlight<'_> {
        let key = format!("{namespace}/{name}");
        self.lock()
            .insert(key.clone(), Pending::InFlight(Vec::new()));
        InFlight {
            echoes: self,
            key,
            settled: false,
        }
    }

    /// Whether `secret` (a watch event's object) is keysmith's own write coming back (or
    /// arrives while a write is out, to be judged when it returns); a returned write is
    /// settled once a version of the Secret is seen.
    pub fn is_own_echo<S: ResourceExt>(&self, secret: &S) -> bool {
        let mut pending = self.lock();
        let key = key_of(secret);
        let version = secret.resource_version().unwrap_or_default();
        match pending.get_mut(&key) {
            None => false,
            Some(Pending::InFlight(seen)) => {
                seen.push(version);
                true
            }
            Some(Pending::Written(written)) => {
                let echo = *written == version;
                pending.remove(&key);
                echo
            }
        }
    }

    /// The `(namespace, name)` of every resource of `kind` whose Secret someone else changed
    /// while keysmith was writing it: the controller reconciles it again.
    pub fn changed_meanwhile(&self, kind: &'static str) -> UnboundedReceiver<(String, String)> {
        self.wakeups.receiver(kind)
    }

    /// How many writes are out or wait for their echo.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no write is out or waits for its echo.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
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
mod tests;
