//! Reconciles asked for from outside the watches: per kind, a channel of the resources
//! (`namespace`, `name`) to reconcile again, which `run.rs` plugs into that kind's
//! controller (`reconcile_on`). Slow generations use it when they finish, the Secret echo
//! tracking when someone changed a Secret while keysmith wrote it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};

/// Per kind, where to send the resources to reconcile again.
#[derive(Debug, Default)]
pub struct Wakeups {
    senders: Mutex<HashMap<&'static str, UnboundedSender<(String, String)>>>,
}

impl Wakeups {
    /// The `(namespace, name)` of every resource of `kind` woken from now on (a second call
    /// for the same kind replaces the first receiver).
    pub fn receiver(&self, kind: &'static str) -> UnboundedReceiver<(String, String)> {
        let (sender, receiver) = unbounded();
        self.lock().insert(kind, sender);
        receiver
    }

    /// A handle that wakes resources of `kind` later (e.g. from a spawned task); `None`
    /// while no controller of that kind listens.
    pub fn sender(&self, kind: &'static str) -> Option<UnboundedSender<(String, String)>> {
        self.lock().get(kind).cloned()
    }

    /// Asks for another reconcile of `namespace/name` of `kind`.
    pub fn wake(&self, kind: &'static str, namespace: &str, name: &str) {
        if let Some(sender) = self.sender(kind) {
            // A closed receiver means the controller is gone: nothing to wake.
            let _ = sender.unbounded_send((namespace.to_owned(), name.to_owned()));
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<&'static str, UnboundedSender<(String, String)>>> {
        self.senders.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use futures::{FutureExt, StreamExt};

    use super::Wakeups;

    #[test]
    fn a_wake_reaches_the_receiver_of_its_kind_only() {
        let wakeups = Wakeups::default();
        wakeups.wake("SshKey", "a", "early"); // nobody listens yet: dropped
        let mut keys = wakeups.receiver("SshKey");
        let mut certificates = wakeups.receiver("CertificateKeyPair");
        wakeups.wake("SshKey", "a", "host");
        let later = wakeups.sender("SshKey").expect("a listener");
        let _ = later.unbounded_send(("b".to_owned(), "user".to_owned()));
        let received: Vec<(String, String)> =
            std::iter::from_fn(|| keys.next().now_or_never().flatten()).collect();
        assert_eq!(
            received,
            [
                ("a".to_owned(), "host".to_owned()),
                ("b".to_owned(), "user".to_owned())
            ]
        );
        assert!(certificates.next().now_or_never().is_none());
    }
}
