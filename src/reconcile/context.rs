//! What every reconcile shares: the client, the Event publisher, metrics, the clock, the
//! operator's settings and the per-object backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use kube::Client;

use super::absent_guesses::AbsentGuesses;
use super::echoes::SecretEchoes;
use super::events::EventPublisher;
use super::status::WrittenStatuses;
use kube::runtime::reflector::Store;

use crate::api::keyring_secret::KeyringSecret;
use crate::metrics::Metrics;

use super::namespaces::WatchedNamespaces;
use super::slow::SlowTasks;

/// Default of [`Settings::restore_grace`]: long enough for a restore that applies the
/// resources before their Secrets, short enough that a resource restored without its
/// Secret is not left without material for long.
pub const DEFAULT_RESTORE_GRACE: Duration = Duration::from_secs(120);

/// Operator settings (api.md section 6) that reconciles need.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of the Secrets holding non-exportable keys.
    pub key_namespace: String,
    /// Shortest retry delay after a failure.
    pub backoff_min: Duration,
    /// Longest retry delay after repeated failures.
    pub backoff_max: Duration,
    /// The CA CertificateKeyPair (`namespace`, `name`) that signs KeyringSecret certificates
    /// without an issuerRef; `None`: they are self-signed.
    pub default_issuer: Option<(String, String)>,
    /// Longest a slow generation (DH primes, RSA 8192) may run.
    pub generate_timeout: Duration,
    /// Most slow generations running at once.
    pub generate_slots: usize,
    /// The namespaces watched (`--namespaces`); references into others are refused.
    pub namespaces: WatchedNamespaces,
    /// How long a restored resource (keysmith's finalizer, no status) waits for its Secret
    /// to be restored before new material is made (`--restore-grace`).
    pub restore_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            key_namespace: "keysmith-system".to_owned(),
            backoff_min: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            default_issuer: None,
            generate_timeout: Duration::from_secs(3600),
            generate_slots: 1,
            namespaces: WatchedNamespaces::All,
            restore_grace: DEFAULT_RESTORE_GRACE,
        }
    }
}

/// A source of the current time, replaceable in tests.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Shared state of all controllers.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Publishes Events on resources.
    pub events: EventPublisher,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Operator settings.
    pub settings: Settings,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Per-object retry delays.
    pub backoff: Backoff,
    /// Slow generations in flight.
    pub slow: SlowTasks,
    /// The KeyringSecret controller's cache (set when it starts): cert_single and
    /// cert_chain find their pkey_cert here instead of listing from the API server.
    pub keyring_cache: OnceLock<Store<KeyringSecret>>,
    /// Statuses written that the cache may not show yet.
    pub written_statuses: WrittenStatuses,
    /// Secret versions written whose watch events have not come back yet.
    pub secret_echoes: Arc<SecretEchoes>,
    /// New resources whose target Secret was found to exist when created.
    pub absent_guesses: AbsentGuesses,
    /// Resources this process added the finalizer to that the cache may not show yet.
    pub finalizers_added: UidSet,
    /// Resources that took back a restored Secret in this reconcile, with the uid it was
    /// written for (the report step says so in the Ready condition).
    pub taken_back: Mutex<HashMap<String, String>>,
}

/// A set of resource uids shared by reconciles.
#[derive(Debug, Default)]
pub struct UidSet(Mutex<std::collections::HashSet<String>>);

impl UidSet {
    /// Adds `uid`.
    pub fn insert(&self, uid: String) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(uid);
        }
    }

    /// Whether `uid` is in the set.
    pub fn contains(&self, uid: &str) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(uid))
    }

    /// Removes `uid`.
    pub fn forget(&self, uid: &str) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(uid);
        }
    }
}

impl Context {
    /// A context for the operator process.
    pub fn new(client: Client, metrics: Arc<Metrics>, settings: Settings) -> Self {
        let instance = std::env::var("POD_NAME").unwrap_or_else(|_| "keysmith".to_owned());
        Self {
            events: EventPublisher::new(client.clone(), "keysmith", &instance),
            client,
            metrics,
            backoff: Backoff::new(settings.backoff_min, settings.backoff_max),
            slow: SlowTasks::new(settings.generate_slots, settings.generate_timeout),
            keyring_cache: OnceLock::new(),
            written_statuses: WrittenStatuses::default(),
            secret_echoes: Arc::default(),
            absent_guesses: AbsentGuesses::default(),
            finalizers_added: UidSet::default(),
            taken_back: Mutex::default(),
            settings,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Per-object exponential backoff: `min * 2^(failures-1)`, capped at `max`, forgotten on
/// success. Keyed by `kind/namespace/name`, so one failing resource never slows another.
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// A backoff between `min` and `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before the next attempt.
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        let factor = 2u32.saturating_pow(count.saturating_sub(1).min(16));
        self.min.saturating_mul(factor).min(self.max)
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));
        let delays: Vec<u64> = (0..9).map(|_| b.next_delay("a").as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        b.reset("a");
        assert_eq!(b.next_delay("a").as_secs(), 5);
    }

    #[test]
    fn backoff_is_per_object() {
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));
        b.next_delay("a");
        b.next_delay("a");
        assert_eq!(b.next_delay("b").as_secs(), 5);
    }
}
