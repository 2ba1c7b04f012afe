//! Prometheus metrics (api.md section 7), served at `/metrics`.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a reconcile outcome. `result` is `success` or a condition reason — never an
/// error text.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Kind of the resource.
    pub kind: String,
    /// `success` or a reason constant.
    pub result: String,
}

/// Labels naming a kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Kind of the resource.
    pub kind: String,
}

/// Labels of a generation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GenerateLabels {
    /// Kind of the resource.
    pub kind: String,
    /// Key algorithm and size, e.g. `RSA-4096`.
    pub algorithm: String,
}

/// Labels naming one resource.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Kind of the resource.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Labels of a request to a KMIP server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KmipLabels {
    /// The server's address, as in the KeyManager (`host:port`).
    pub server: String,
    /// KMIP operation, e.g. `Register`, `GetAttributes`.
    pub operation: String,
    /// `success`, `failure` (the server refused) or `error` (no usable answer).
    pub result: String,
}

/// Every metric of the operator.
pub struct Metrics {
    registry: Registry,
    /// `keysmith_reconcile_total{kind,result}`.
    pub reconcile_total: Family<ResultLabels, Counter>,
    /// `keysmith_reconcile_duration_seconds{kind}`.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// `keysmith_generate_duration_seconds{kind,algorithm}`.
    pub generate_duration: Family<GenerateLabels, Histogram>,
    /// `keysmith_ready{kind,namespace,name}`: 1 when Ready=True.
    pub ready: Family<ObjectLabels, Gauge>,
    /// `keysmith_expiration_timestamp_seconds{kind,namespace,name}`.
    pub expiration: Family<ObjectLabels, Gauge>,
    /// `keysmith_next_rotation_timestamp_seconds{kind,namespace,name}`.
    pub next_rotation: Family<ObjectLabels, Gauge>,
    /// `keysmith_kmip_requests_total{server,operation,result}`.
    pub kmip_requests: Family<KmipLabels, Counter>,
    /// Objects with per-object series, so the series of deleted objects can be dropped.
    objects: Mutex<HashSet<ObjectLabels>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `keysmith` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("keysmith");
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let generate_duration = Family::<GenerateLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 18))
        });
        let ready = Family::<ObjectLabels, Gauge>::default();
        let expiration = Family::<ObjectLabels, Gauge>::default();
        let next_rotation = Family::<ObjectLabels, Gauge>::default();
        let kmip_requests = Family::<KmipLabels, Counter>::default();
        registry.register(
            "reconcile",
            "Reconciles by kind and result",
            reconcile_total.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "generate_duration_seconds",
            "Time spent generating material",
            generate_duration.clone(),
        );
        registry.register("ready", "1 when the resource is Ready", ready.clone());
        registry.register(
            "expiration_timestamp_seconds",
            "When the current material expires (Unix time)",
            expiration.clone(),
        );
        registry.register(
            "next_rotation_timestamp_seconds",
            "When the operator renews or rotates next (Unix time)",
            next_rotation.clone(),
        );
        registry.register(
            "kmip_requests",
            "Requests to KMIP servers by server, operation and result",
            kmip_requests.clone(),
        );
        Self {
            registry,
            reconcile_total,
            reconcile_duration,
            generate_duration,
            ready,
            expiration,
            next_rotation,
            kmip_requests,
            objects: Mutex::new(HashSet::new()),
        }
    }

    /// Notes that `object` has per-object series (called when they are set).
    pub fn track(&self, object: &ObjectLabels) {
        let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        if !objects.contains(object) {
            objects.insert(object.clone());
        }
    }

    /// Drops the series of every tracked object of `kind` that `exists` says is gone.
    pub fn prune(&self, kind: &str, exists: impl Fn(&ObjectLabels) -> bool) {
        let gone: Vec<ObjectLabels> = {
            let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
            objects
                .iter()
                .filter(|o| o.kind == kind && !exists(o))
                .cloned()
                .collect()
        };
        for object in &gone {
            self.forget(object);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Drops the per-object series of a resource that no longer exists.
    pub fn forget(&self, object: &ObjectLabels) {
        self.ready.remove(object);
        self.expiration.remove(object);
        self.next_rotation.remove(object);
        let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        objects.remove(object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str) -> ObjectLabels {
        ObjectLabels {
            kind: "SshKey".into(),
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    #[test]
    fn series_of_objects_that_are_gone_are_pruned() {
        let metrics = Metrics::new();
        for name in ["kept", "deleted"] {
            metrics.ready.get_or_create(&object(name)).set(1);
            metrics.track(&object(name));
        }
        metrics.prune("SshKey", |o| o.name == "kept");
        let text = metrics.encode().expect("encode");
        assert!(text.contains("name=\"kept\""), "{text}");
        assert!(!text.contains("name=\"deleted\""), "{text}");
    }
}
