//! The operator process: every controller, the HTTP endpoints, and one graceful shutdown on
//! SIGTERM/SIGINT for all of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Predicate, PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use crate::api::certificate_key_pair::CertificateKeyPair;
use crate::api::key_manager::KeyManager;
use crate::api::keyring_secret::{KeyringSecret, KeyringSecretType};
use crate::api::kms_auth_key::KmsAuthKey;
use crate::api::ssh_key::{SshKey, SshKeyType};
use crate::http::{self, Probes};
use crate::metrics::Metrics;

use super::certificate_key_pair::key_store::{self, KEY_OWNER_ANNOTATION};
use super::certificate_key_pair::{self as ckp, chain_reaches, issuer_key};
use super::context::{Context, Settings};
use super::echoes::SecretEchoes;
use super::key_manager as km;
use super::keyring_secret::{self as krs, decide::IssuerChoice, decide::issuer_choice, refers_to};
use super::kms_auth_key as kms;
use super::leader::{self, LeaderElection, LeaderError};
use super::namespaces::WatchedNamespaces;
use super::outcome::{error_policy, reconcile};
use super::secret::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_ANNOTATION};
use super::slow::TaskOwner;
use super::ssh_key as ssh;
use super::watch_merge;

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Settings shared with the reconciles, among them the watched namespaces: with a list,
    /// every watch is namespaced (no cluster-wide request at all).
    pub settings: Settings,
    /// Most reconciles running at once per controller.
    pub concurrency: u16,
    /// Address of `/metrics`.
    pub metrics_addr: SocketAddr,
    /// Address of `/healthz` and `/readyz` (may equal `metrics_addr`).
    pub health_addr: SocketAddr,
    /// Run the controllers only while holding this Lease; `None`: always.
    pub leader_election: Option<LeaderElection>,
}

/// Errors that stop the operator.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("connecting to the Kubernetes API: {0}")]
    Client(#[from] kube::Error),
    /// An endpoint address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Leader election could not be set up.
    #[error(transparent)]
    Leader(#[from] LeaderError),
    /// Another replica took the Lease: this one stopped its controllers.
    #[error("leadership lost: stopped so that only one replica writes")]
    LeadershipLost,
}

/// Runs every controller until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(config: RunConfig) -> Result<(), RunError> {
    let client = Client::try_default().await?;
    run_until(client, config, async {
        wait_for_signal().await;
        tracing::info!("shutting down");
    })
    .await
}

/// Runs every controller until `stop` resolves, then shuts down gracefully: running
/// reconciles finish, the endpoints close. With leader election the controllers start once
/// this replica holds the Lease; losing it stops the operator with
/// [`RunError::LeadershipLost`].
pub async fn run_until(
    client: Client,
    config: RunConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::new());
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics.clone(),
        config.settings.clone(),
    ));
    let probes = Arc::new(Probes {
        metrics,
        ready: AtomicBool::new(false),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let endpoints = serve_endpoints(&config, probes.clone(), stopped.clone()).await?;
    let external = async {
        stop.await;
        let _ = stop_tx.send(true);
    };
    let work = async {
        let leadership = match &config.leader_election {
            None => None,
            Some(election) => {
                // A follower is healthy and ready to take over.
                probes.ready.store(true, Ordering::Relaxed);
                match leader::lead(&client, election, stopped()).await {
                    Ok(Some(leadership)) => Some(leadership),
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        let _ = stop_tx.send(true);
                        return Err(RunError::Leader(e));
                    }
                }
            }
        };
        let guard = async {
            match leadership {
                None => {
                    stopped().await;
                    Ok(None)
                }
                Some(mut leadership) => tokio::select! {
                    () = leadership.lost() => {
                        tracing::error!("leadership lost; stopping");
                        let _ = stop_tx.send(true);
                        Err(RunError::LeadershipLost)
                    }
                    () = stopped() => Ok(Some(leadership)),
                },
            }
        };
        let ((), held) = tokio::join!(operate(&client, &config, &ctx, &probes, &stopped), guard);
        if let Some(leadership) = held? {
            leadership.release().await;
        }
        Ok(())
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), namespaces = %config.settings.namespaces, "keysmith started");
    let (result, (), ()) = tokio::join!(work, endpoints, external);
    tracing::info!("keysmith stopped");
    result
}

/// Runs every controller and the housekeeping around them until `stopped` resolves.
async fn operate<F, Fut>(
    client: &Client,
    config: &RunConfig,
    ctx: &Arc<Context>,
    probes: &Arc<Probes>,
    stopped: &F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    let client = client.clone();
    let ctx = ctx.clone();
    let (ckp_controller, ckp_store) = certificate_key_pair_controller(&client, config, &ctx);
    let (ssh_controller, ssh_store) = ssh_key_controller(&client, config, &ctx);
    let (krs_controller, krs_store) = keyring_secret_controller(&client, config, &ctx);
    let _ = ctx.keyring_cache.set(krs_store.clone());
    let (kms_controller, kms_store) = kms_auth_key_controller(&client, config, &ctx);
    let (km_controller, km_store) = key_manager_controller(&client, config);
    let stores = Stores {
        certificates: ckp_store,
        ssh_keys: ssh_store,
        keyring: krs_store,
        kms_keys: kms_store,
        key_managers: km_store,
    };
    let kmip = futures::future::join(
        drive(
            kms_controller,
            reconcile::<KmsAuthKey>,
            error_policy,
            &ctx,
            stopped,
        ),
        drive(
            km_controller,
            km::reconcile,
            km::error_policy,
            &ctx,
            stopped,
        ),
    );
    let controllers = futures::future::join3(
        drive(
            ckp_controller,
            reconcile::<CertificateKeyPair>,
            error_policy,
            &ctx,
            stopped,
        ),
        drive(
            ssh_controller,
            reconcile::<SshKey>,
            error_policy,
            &ctx,
            stopped,
        ),
        drive(
            krs_controller,
            reconcile::<KeyringSecret>,
            error_policy,
            &ctx,
            stopped,
        ),
    );
    let pruning = prune_deleted(ctx.clone(), stores.clone(), stopped());
    let orphans = cancel_orphaned_tasks(ctx.clone(), stores.clone(), stopped());
    let readiness = {
        let probes = probes.clone();
        let stores = stores.clone();
        async move {
            let synced = futures::future::join5(
                stores.certificates.wait_until_ready(),
                stores.ssh_keys.wait_until_ready(),
                stores.keyring.wait_until_ready(),
                stores.kms_keys.wait_until_ready(),
                stores.key_managers.wait_until_ready(),
            )
            .await;
            if synced.0.is_ok()
                && synced.1.is_ok()
                && synced.2.is_ok()
                && synced.3.is_ok()
                && synced.4.is_ok()
            {
                probes.ready.store(true, Ordering::Relaxed);
                tracing::info!("caches synced; ready");
            }
        }
    };
    let sweeper = sweep_key_secrets(client.clone(), config.settings.clone(), stopped());

    let closing = {
        let ctx = ctx.clone();
        async move {
            stopped().await;
            // Nothing half-generated is ever written: a restart starts slow generations
            // again. Reconciles still finishing start no new ones.
            ctx.slow.close();
        }
    };
    tokio::join!(
        controllers,
        kmip,
        readiness,
        sweeper,
        pruning,
        orphans,
        closing
    );
}

/// Runs a controller until its stream ends: after `stopped`, its graceful shutdown lets the
/// running reconciles finish. A controller stopped before its cache was first filled has
/// started no reconcile (kube-runtime holds them until then), but kube-runtime would wait
/// for that cache forever, as its watch is no longer read: it is dropped instead.
async fn drive<K, ReconcilerFut, F, Fut>(
    controller: Controller<K>,
    reconciler: impl FnMut(Arc<K>, Arc<Context>) -> ReconcilerFut,
    error_policy: impl Fn(Arc<K>, &ReconcilerFut::Error, Arc<Context>) -> controller::Action,
    ctx: &Arc<Context>,
    stopped: &F,
) where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + std::fmt::Debug + Unpin,
    ReconcilerFut: futures::TryFuture<Ok = controller::Action> + Send + 'static,
    ReconcilerFut::Error: std::error::Error + Send + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    let store = controller.store();
    let run = controller
        .graceful_shutdown_on(stopped())
        .run(reconciler, error_policy, ctx.clone())
        .for_each(log_stream_error);
    tokio::pin!(run);
    tokio::select! {
        () = &mut run => return,
        () = stopped() => {}
    }
    if futures::FutureExt::now_or_never(store.wait_until_ready()).is_some() {
        run.await;
    }
}

/// Logs what a controller's stream reports besides successful reconciles (watch errors,
/// missing objects); reconcile errors are already logged by the error policy.
fn log_stream_error<T, E: std::fmt::Display>(item: Result<T, E>) -> std::future::Ready<()> {
    if let Err(e) = item {
        tracing::debug!(error = %e, "controller stream");
    }
    std::future::ready(())
}

/// Binds the endpoints now (so a bad address fails start-up) and returns their server.
async fn serve_endpoints<F, Fut>(
    config: &RunConfig,
    probes: Arc<Probes>,
    stopped: F,
) -> Result<impl std::future::Future<Output = ()>, RunError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let bind = |addr: SocketAddr| async move {
        http::bind(addr)
            .await
            .map_err(|source| RunError::Bind { addr, source })
    };
    let metrics_listener = bind(config.metrics_addr).await?;
    let health_listener = if config.health_addr == config.metrics_addr {
        None
    } else {
        Some(bind(config.health_addr).await?)
    };
    let metrics_server = http::serve(metrics_listener, probes.clone(), stopped());
    let health_server = async move {
        if let Some(listener) = health_listener {
            http::serve(listener, probes, stopped()).await;
        }
    };
    Ok(async move {
        tokio::join!(metrics_server, health_server);
    })
}

/// The CertificateKeyPair controller: its own resources, the Secrets it writes (metadata
/// only, label-filtered), and its issuers (a CA change reaches every certificate it signed).
fn certificate_key_pair_controller(
    client: &Client,
    config: &RunConfig,
    ctx: &Context,
) -> (Controller<CertificateKeyPair>, Store<CertificateKeyPair>) {
    let namespaces = &config.settings.namespaces;
    let (primary, store) = primary::<CertificateKeyPair>(client, namespaces);
    // Issuers may live in other watched namespaces (the same watches as the primary's).
    let issuers = watch_objects::<CertificateKeyPair>(client, namespaces);
    let controller = Controller::for_stream(primary, store.clone())
        .with_config(controller::Config::default().concurrency(config.concurrency));
    let dependents_store = store.clone();
    let controller = controller
        .watches_stream(
            owned_secrets(client, namespaces),
            changed_by_others(&ctx.secret_echoes, ckp::KIND),
        )
        .reconcile_on(woken(ctx.secret_echoes.changed_meanwhile(ckp::KIND)))
        .watches_stream(issuers, move |ca| signed_by(&dependents_store, &ca))
        .reconcile_on(woken(ctx.slow.finished(ckp::KIND)));
    (controller, store)
}

/// The SshKey controller: its own resources, the Secrets it writes, and the CA keys that
/// sign its certificates (a rotated CA key re-certifies every key it signed).
fn ssh_key_controller(
    client: &Client,
    config: &RunConfig,
    ctx: &Context,
) -> (Controller<SshKey>, Store<SshKey>) {
    let namespaces = &config.settings.namespaces;
    let (primary, store) = primary::<SshKey>(client, namespaces);
    let authorities = watch_objects::<SshKey>(client, namespaces);
    let dependents_store = store.clone();
    let controller = Controller::for_stream(primary, store.clone())
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .watches_stream(
            owned_secrets(client, namespaces),
            changed_by_others(&ctx.secret_echoes, ssh::KIND),
        )
        .reconcile_on(woken(ctx.secret_echoes.changed_meanwhile(ssh::KIND)))
        .watches_stream(authorities, move |ca| certified_by(&dependents_store, &ca));
    (controller, store)
}

/// The KeyringSecret controller: its own resources, the Secrets it writes, the pkey_certs its
/// cert_single/cert_chain resources name (any change, status included: they become Ready
/// as soon as the pkey_cert does), the CAs that sign its certificates, and the end of its
/// slow generations.
fn keyring_secret_controller(
    client: &Client,
    config: &RunConfig,
    ctx: &Context,
) -> (Controller<KeyringSecret>, Store<KeyringSecret>) {
    let namespaces = &config.settings.namespaces;
    let (primary, store) = primary::<KeyringSecret>(client, namespaces);
    let references = watch_objects::<KeyringSecret>(client, namespaces);
    let issuers = watch_objects::<CertificateKeyPair>(client, namespaces);
    let finished = woken(ctx.slow.finished(krs::KIND));
    let (dependents, signed) = (store.clone(), store.clone());
    let default_issuer = config.settings.default_issuer.clone();
    let controller = Controller::for_stream(primary, store.clone())
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .watches_stream(
            owned_secrets(client, namespaces),
            changed_by_others(&ctx.secret_echoes, krs::KIND),
        )
        .reconcile_on(woken(ctx.secret_echoes.changed_meanwhile(krs::KIND)))
        .watches_stream(references, move |pkey| referring_to(&dependents, &pkey))
        .watches_stream(issuers, move |ca| {
            keyring_signed_by(&signed, &ca, default_issuer.as_ref())
        })
        .reconcile_on(finished);
    (controller, store)
}

/// The resources a wake-up channel (`wakeups`) names, for a controller's `reconcile_on`:
/// those whose slow generation finished ([`super::slow::SlowTasks::finished`]), those whose Secret
/// someone changed while keysmith wrote it ([`SecretEchoes::changed_meanwhile`]).
fn woken<K>(
    resources: UnboundedReceiver<(String, String)>,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + 'static,
{
    resources.map(|(namespace, name)| ObjectRef::new(&name).within(&namespace))
}

/// The cert_single and cert_chain KeyringSecrets that refer to `pkey`.
fn referring_to(
    store: &Store<KeyringSecret>,
    pkey: &KeyringSecret,
) -> Vec<ObjectRef<KeyringSecret>> {
    if pkey.spec.type_ != KeyringSecretType::pkey_cert {
        return Vec::new();
    }
    store
        .state()
        .iter()
        .filter(|k| refers_to(k, pkey))
        .map(|k| ObjectRef::from(k.as_ref()))
        .collect()
}

/// The KeyringSecret certificates `ca` signs: by issuerRef, or as the operator's default CA.
fn keyring_signed_by(
    store: &Store<KeyringSecret>,
    ca: &CertificateKeyPair,
    default_issuer: Option<&(String, String)>,
) -> Vec<ObjectRef<KeyringSecret>> {
    if !ca.spec.is_ca {
        return Vec::new();
    }
    let (ca_namespace, ca_name) = (ca.namespace().unwrap_or_default(), ca.name_any());
    store
        .state()
        .iter()
        .filter(|k| {
            matches!(
                k.spec.type_,
                KeyringSecretType::pkey_cert | KeyringSecretType::cert_single
            )
        })
        .filter(|k| {
            let own = k.namespace().unwrap_or_default();
            match issuer_choice(k.spec.issuer_ref.as_ref(), &own, default_issuer) {
                IssuerChoice::Referenced(ns, name) | IssuerChoice::OperatorDefault(ns, name) => {
                    ns == ca_namespace && name == ca_name
                }
                IssuerChoice::SelfSigned => false,
            }
        })
        .map(|k| ObjectRef::from(k.as_ref()))
        .collect()
}

/// The KmsAuthKey controller: its own resources, the Secrets it writes, and its KeyManagers
/// (a manager enabled, given servers or a higher limit reaches every key that refers to it;
/// so does a key of the same manager going away, which may make room for another).
fn kms_auth_key_controller(
    client: &Client,
    config: &RunConfig,
    ctx: &Context,
) -> (Controller<KmsAuthKey>, Store<KmsAuthKey>) {
    let namespaces = &config.settings.namespaces;
    let (primary, store) = primary::<KmsAuthKey>(client, namespaces);
    let managers = watch_objects::<KeyManager>(client, namespaces);
    let siblings = watch_objects::<KmsAuthKey>(client, namespaces);
    let (by_manager, by_sibling) = (store.clone(), store.clone());
    let controller = Controller::for_stream(primary, store.clone())
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .watches_stream(
            owned_secrets(client, namespaces),
            changed_by_others(&ctx.secret_echoes, kms::KIND),
        )
        .reconcile_on(woken(ctx.secret_echoes.changed_meanwhile(kms::KIND)))
        .watches_stream(managers, move |manager| {
            keys_of(&by_manager, &manager.namespace(), &manager.name_any())
        })
        .watches_stream(
            siblings,
            // Only a key going away can make room for another: status writes of the other
            // keys must not re-run this one (that would bypass its backoff).
            move |key: KmsAuthKey| {
                if key.metadata.deletion_timestamp.is_none() {
                    return Vec::new();
                }
                keys_of(
                    &by_sibling,
                    &key.namespace(),
                    &key.spec.key_manager_ref.name,
                )
                .into_iter()
                .filter(|k| k.name != key.name_any())
                .collect::<Vec<_>>()
            },
        );
    (controller, store)
}

/// The KmsAuthKeys of `namespace` that refer to KeyManager `manager`.
fn keys_of(
    store: &Store<KmsAuthKey>,
    namespace: &Option<String>,
    manager: &str,
) -> Vec<ObjectRef<KmsAuthKey>> {
    store
        .state()
        .iter()
        .filter(|k| k.namespace() == *namespace && k.spec.key_manager_ref.name == manager)
        .map(|k| ObjectRef::from(k.as_ref()))
        .collect()
}

/// The KeyManager controller: its own resources (rechecked every minute) and the KmsAuthKeys
/// that refer to them (the count in the status).
fn key_manager_controller(
    client: &Client,
    config: &RunConfig,
) -> (Controller<KeyManager>, Store<KeyManager>) {
    let namespaces = &config.settings.namespaces;
    let (primary, store) = primary::<KeyManager>(client, namespaces);
    let keys = watch_objects::<KmsAuthKey>(client, namespaces);
    let controller = Controller::for_stream(primary, store.clone())
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .watches_stream(keys, |key: KmsAuthKey| {
            // The count changes when a key appears (no status yet) or goes away; the keys'
            // own status writes must not re-probe the servers.
            let counted = key.status.is_none() || key.metadata.deletion_timestamp.is_some();
            counted.then(|| {
                ObjectRef::new(&key.spec.key_manager_ref.name)
                    .within(&key.namespace().unwrap_or_default())
            })
        });
    (controller, store)
}

/// The SshKeys whose certificate.authorityRef names `ca`.
fn certified_by(store: &Store<SshKey>, ca: &SshKey) -> Vec<ObjectRef<SshKey>> {
    if ca.spec.key_type != SshKeyType::CA {
        return Vec::new();
    }
    let namespace = ca.namespace();
    store
        .state()
        .iter()
        .filter(|key| key.namespace() == namespace)
        .filter(|key| {
            key.spec
                .certificate
                .as_ref()
                .is_some_and(|c| c.authority_ref.name == ca.name_any())
        })
        .map(|key| ObjectRef::from(key.as_ref()))
        .collect()
}

/// The watch of a controller's own resources, cached in the returned store, passing on only
/// changes of the spec (generation; a deletion raises it too) or of annotations
/// (`keysmith.dev/rotate`). keysmith's finalizer is added by the reconcile that wrote the
/// material, which has nothing left to do, so its change starts no other. The status
/// keysmith writes does not trigger another reconcile, so a failing resource is retried
/// with its backoff rather than by its own status write. The store is ready once every
/// watched namespace has been listed.
fn primary<K>(
    client: &Client,
    namespaces: &WatchedNamespaces,
) -> (
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    Store<K>,
)
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    // managedFields are most of a cached object and keysmith never reads them there.
    let stream = watch_events::<K>(client, namespaces)
        .modify(|object| object.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::annotations),
            PredicateConfig::default(),
        );
    (stream, store)
}

/// The watch events of `K` in the watched namespaces as ONE watch's events, fit for one
/// reflector: a single watch for all namespaces or for one, else one watch per namespace
/// merged by [`watch_merge::merge`].
fn watch_events<K>(
    client: &Client,
    namespaces: &WatchedNamespaces,
) -> BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let mut watches = per_namespace(namespaces, |namespace| {
        watcher(
            scoped::<K>(client, namespace),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .boxed()
    });
    if watches.len() == 1 {
        return watches.remove(0);
    }
    watch_merge::merge(watches).boxed()
}

/// Every object of `K` that changes in the watched namespaces (one watch per namespace, or
/// one for all), for a controller's secondary watches.
fn watch_objects<K>(
    client: &Client,
    namespaces: &WatchedNamespaces,
) -> BoxStream<'static, Result<K, watcher::Error>>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let watches = per_namespace(namespaces, |namespace| {
        watcher(
            scoped::<K>(client, namespace),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .touched_objects()
        .boxed()
    });
    futures::stream::select_all(watches).boxed()
}

/// A metadata-only watch of the Secrets keysmith wrote: the operator never caches the
/// cluster's Secrets or their data.
fn owned_secrets(
    client: &Client,
    namespaces: &WatchedNamespaces,
) -> BoxStream<'static, Result<PartialObjectMeta<Secret>, watcher::Error>> {
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
    let watches = per_namespace(namespaces, |namespace| {
        watcher(
            scoped::<PartialObjectMeta<Secret>>(client, namespace),
            watcher::Config::default().labels(&selector).any_semantic(),
        )
        .default_backoff()
        .touched_objects()
        .boxed()
    });
    futures::stream::select_all(watches).boxed()
}

/// One stream per watched namespace from `watch(Some(namespace))`, or the one
/// `watch(None)` for all namespaces.
fn per_namespace<T>(namespaces: &WatchedNamespaces, watch: impl Fn(Option<&str>) -> T) -> Vec<T> {
    match namespaces.list() {
        None => vec![watch(None)],
        Some(list) => list.iter().map(|ns| watch(Some(ns))).collect(),
    }
}

/// An Api over one namespace, or all.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Maps a changed Secret to its `kind` owner, unless the change is that owner's own write
/// coming back ([`SecretEchoes`]): only the owner's watch settles an echo, so the other
/// kinds' watches of the same Secret cannot take it away first.
fn changed_by_others<K>(
    echoes: &Arc<SecretEchoes>,
    kind: &'static str,
) -> impl Fn(PartialObjectMeta<Secret>) -> Option<ObjectRef<K>> + Send + Sync + 'static
where
    K: kube::Resource<DynamicType = ()>,
{
    let echoes = Arc::clone(echoes);
    move |secret| owner_of(&secret, kind).filter(|_| !echoes.is_own_echo(&secret))
}

/// The resource of `kind` a Secret belongs to: its `keysmith.dev/owner` annotation
/// (`<Kind>/<name>`, same namespace), or for a key Secret its `keysmith.dev/key-owner`
/// annotation (`<Kind>/<namespace>/<name>`).
fn owner_of<K>(secret: &PartialObjectMeta<Secret>, kind: &str) -> Option<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()>,
{
    let annotations = secret.annotations();
    if let Some(owner) = annotations.get(OWNER_ANNOTATION) {
        let (owner_kind, name) = owner.split_once('/')?;
        return (owner_kind == kind)
            .then(|| ObjectRef::new(name).within(&secret.namespace().unwrap_or_default()));
    }
    let owner = annotations.get(KEY_OWNER_ANNOTATION)?;
    let mut parts = owner.splitn(3, '/');
    let (owner_kind, namespace, name) = (parts.next()?, parts.next()?, parts.next()?);
    (owner_kind == kind).then(|| ObjectRef::new(name).within(namespace))
}

/// How often per-object metric series of deleted resources are dropped.
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The caches of every controller's own resources.
#[derive(Clone)]
struct Stores {
    certificates: Store<CertificateKeyPair>,
    ssh_keys: Store<SshKey>,
    keyring: Store<KeyringSecret>,
    kms_keys: Store<KmsAuthKey>,
    key_managers: Store<KeyManager>,
}

impl Stores {
    /// The uids of every cached resource of every kind.
    fn uids(&self) -> std::collections::HashSet<String> {
        fn of<K>(store: &Store<K>) -> impl Iterator<Item = String>
        where
            K: kube::Resource<DynamicType = ()> + Clone + 'static,
        {
            store.state().into_iter().filter_map(|o| o.uid())
        }
        of(&self.certificates)
            .chain(of(&self.ssh_keys))
            .chain(of(&self.keyring))
            .chain(of(&self.kms_keys))
            .chain(of(&self.key_managers))
            .collect()
    }
}

fn cached<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace))
}

/// Drops what is kept per resource for resources that are no longer in the controllers'
/// caches: their metric series, their written-status memory and their refuted absence
/// guesses (a deleted resource is never reconciled again, so nothing else would remove
/// them).
async fn prune_deleted(
    ctx: Arc<Context>,
    stores: Stores,
    stopped: impl std::future::Future<Output = ()>,
) {
    let pruning = async {
        loop {
            tokio::time::sleep(PRUNE_INTERVAL).await;
            let metrics = &ctx.metrics;
            metrics.prune(ckp::KIND, |o| {
                cached(&stores.certificates, &o.namespace, &o.name).is_some()
            });
            metrics.prune(ssh::KIND, |o| {
                cached(&stores.ssh_keys, &o.namespace, &o.name).is_some()
            });
            metrics.prune(krs::KIND, |o| {
                cached(&stores.keyring, &o.namespace, &o.name).is_some()
            });
            metrics.prune(kms::KIND, |o| {
                cached(&stores.kms_keys, &o.namespace, &o.name).is_some()
            });
            let live = stores.uids();
            ctx.written_statuses.retain(|uid| live.contains(uid));
            ctx.absent_guesses.retain(|uid| live.contains(uid));
        }
    };
    tokio::select! {
        () = stopped => {},
        () = pruning => {},
    }
}

/// How often slow generations are checked for a deleted resource.
const ORPHAN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Cancels the slow generations of deleted resources (a deleted resource is never
/// reconciled again; its generation would otherwise run to the end for nothing).
async fn cancel_orphaned_tasks(
    ctx: Arc<Context>,
    stores: Stores,
    stopped: impl std::future::Future<Output = ()>,
) {
    let watching = async {
        loop {
            tokio::time::sleep(ORPHAN_INTERVAL).await;
            if ctx.slow.is_empty() {
                continue;
            }
            ctx.slow.cancel_orphans(|owner: &TaskOwner, uid: &str| {
                let (ns, name) = (owner.namespace.as_str(), owner.name.as_str());
                let uid_of = |uid_now: Option<String>| uid_now.as_deref() == Some(uid);
                match owner.kind {
                    krs::KIND => uid_of(cached(&stores.keyring, ns, name).and_then(|k| k.uid())),
                    ckp::KIND => {
                        uid_of(cached(&stores.certificates, ns, name).and_then(|k| k.uid()))
                    }
                    _ => true,
                }
            });
        }
    };
    tokio::select! {
        () = stopped => {},
        () = watching => {},
    }
}

/// How often key Secrets no longer needed are looked for.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes key Secrets no longer needed ([`key_store::sweep`]): at start, then every
/// [`SWEEP_INTERVAL`].
async fn sweep_key_secrets(
    client: Client,
    settings: Settings,
    stopped: impl std::future::Future<Output = ()>,
) {
    let key_namespace = settings.key_namespace.as_str();
    let sweeping = async {
        loop {
            if let Err(e) = key_store::sweep(&client, key_namespace, &settings.namespaces).await {
                tracing::warn!(namespace = %key_namespace, error = %e, "sweeping key Secrets failed");
            }
            tokio::time::sleep(SWEEP_INTERVAL).await;
        }
    };
    tokio::select! {
        () = stopped => {},
        () = sweeping => {},
    }
}

/// The CertificateKeyPairs whose issuerRef names `ca`, except those `ca` itself is issued by
/// (directly or up its chain): in an issuer loop (refused as InvalidSpec), each member's
/// status write would otherwise wake the next one, round and round without backoff.
fn signed_by(
    store: &Store<CertificateKeyPair>,
    ca: &CertificateKeyPair,
) -> Vec<ObjectRef<CertificateKeyPair>> {
    if !ca.spec.is_ca {
        return Vec::new();
    }
    let ca_key = (ca.namespace().unwrap_or_default(), ca.name_any());
    let issuer_of = |(namespace, name): &(String, String)| {
        store
            .get(&ObjectRef::new(name).within(namespace))
            .and_then(|o| issuer_key(&o))
    };
    store
        .state()
        .iter()
        .filter(|leaf| issuer_key(leaf).as_ref() == Some(&ca_key))
        .filter(|leaf| {
            let leaf_key = (leaf.namespace().unwrap_or_default(), leaf.name_any());
            !chain_reaches(issuer_key(ca), &leaf_key, issuer_of)
        })
        .map(|leaf| ObjectRef::from(leaf.as_ref()))
        .collect()
}

async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}
