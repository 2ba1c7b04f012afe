//! Polling helpers for resources driven by the operator.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use keysmith::api::common::{CommonStatus, Condition, ConditionStatus, condition};

/// Polls `check` every 200 ms until it holds; panics naming `what` once `timeout` passed.
pub async fn holds<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "not after {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Access to the common status of a keysmith resource.
pub trait HasCommonStatus {
    /// The common part of the status, if any.
    fn common(&self) -> Option<&CommonStatus>;
}

macro_rules! has_common_status {
    ($($kind:ty),*) => {$(
        impl HasCommonStatus for $kind {
            fn common(&self) -> Option<&CommonStatus> {
                self.status.as_ref().map(|s| &s.common)
            }
        }
    )*};
}
has_common_status!(
    keysmith::api::CertificateKeyPair,
    keysmith::api::SshKey,
    keysmith::api::KeyringSecret,
    keysmith::api::KmsAuthKey,
    keysmith::api::KeyManager
);

/// The Ready condition of `object`, if reported.
pub fn ready_condition<K: HasCommonStatus>(object: &K) -> Option<&Condition> {
    object
        .common()?
        .conditions
        .iter()
        .find(|c| c.type_ == condition::READY)
}

/// Polls `name` until `accept` holds (checked every 200 ms), panicking with the last status
/// after `timeout`.
pub async fn until<K, F>(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
    accept: F,
) -> K
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + HasCommonStatus,
    F: Fn(&K) -> bool,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + timeout;
    loop {
        let current = api.get_opt(name).await.expect("get resource");
        if let Some(object) = &current
            && accept(object)
        {
            return object.clone();
        }
        if Instant::now() > deadline {
            let status = current.as_ref().and_then(|o| o.common()).cloned();
            panic!(
                "{namespace}/{name}: condition not reached within {timeout:?}; status: {status:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether `object` is Ready=True.
pub fn is_ready<K: HasCommonStatus>(object: &K) -> bool {
    ready_condition(object).is_some_and(|c| c.status == ConditionStatus::True)
}

/// Waits until `name` is Ready=True.
pub async fn ready<K>(client: &Client, namespace: &str, name: &str) -> K
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + HasCommonStatus,
{
    until(client, namespace, name, Duration::from_secs(90), |o: &K| {
        ready_condition(o).is_some_and(|c| c.status == ConditionStatus::True)
    })
    .await
}

/// Waits until `name` reports Ready=False with `reason`.
pub async fn not_ready_with<K>(client: &Client, namespace: &str, name: &str, reason: &str) -> K
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + HasCommonStatus,
{
    until(client, namespace, name, Duration::from_secs(60), |o: &K| {
        ready_condition(o).is_some_and(|c| c.status == ConditionStatus::False && c.reason == reason)
    })
    .await
}

/// Waits until `name` no longer exists (finalizers done).
pub async fn gone<K>(client: &Client, namespace: &str, name: &str, timeout: Duration)
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + timeout;
    while api.get_opt(name).await.expect("get resource").is_some() {
        assert!(
            Instant::now() < deadline,
            "{namespace}/{name} still exists after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The data of Secret `name` (panics when absent).
pub async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> BTreeMap<String, Vec<u8>> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("Secret {namespace}/{name}: {e}"));
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// The Events of `namespace` once `enough` accepts them (the operator publishes Events in
/// the background, so they may land just after the status that reports the same thing).
pub async fn events(
    client: &Client,
    namespace: &str,
    enough: impl Fn(&[k8s_openapi::api::core::v1::Event]) -> bool,
) -> Vec<k8s_openapi::api::core::v1::Event> {
    let api = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = api
            .list(&kube::api::ListParams::default())
            .await
            .expect("list events")
            .items;
        if enough(&events) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "events of {namespace} never satisfied the test: {:?}",
            events.iter().map(|e| &e.reason).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
