//! Faults on the real control plane: the operator SIGKILLed at random moments during
//! issuance, the API server stopped and started again under a running operator, KMIP
//! connections dropped mid-request. After each, everything converges, and nothing is lost,
//! regenerated without need, left without an owner or registered twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use keysmith::api::kms_auth_key::KmsAuthKey;
use keysmith::api::{CertificateKeyPair, KeyringSecret, SshKey};

use crate::bench::create_load;
use crate::kms;
use crate::support::operator::OperatorProcess;
use crate::support::proxy::CuttingProxy;
use crate::support::wait::HasCommonStatus;
use crate::support::{self, wait};

/// Resources of the kill test: 25% each of CertificateKeyPair, SshKey, KeyringSecret psk and
/// KeyringSecret pkey_cert.
const RESOURCES: usize = 500;
/// How many times the operator is killed.
const KILLS: usize = 20;
/// The longest an operator runs before it is killed (the moment is uniform below it).
const LONGEST_LIFE: Duration = Duration::from_millis(2500);
/// The most resources an operator may bring to Ready before it is killed (uniform from 1):
/// issuance is fast enough that a time limit alone would let the first few operators issue
/// everything, leaving the later kills nothing to interrupt.
const LONGEST_PROGRESS: u64 = (RESOURCES / KILLS) as u64;
/// How long everything may take to converge once the operator is left running.
const CONVERGENCE: Duration = Duration::from_secs(300);

/// A small deterministic generator (xorshift64*): a failing run is repeated by setting
/// `FAULT_SEED` to the seed it printed.
struct Random(u64);

impl Random {
    fn from_env_or_clock() -> Self {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("FAULT_SEED={seed}");
        Self(seed.max(1))
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// What the API server says of one resource.
#[derive(Debug)]
pub(crate) struct Observed {
    kind: &'static str,
    name: String,
    uid: String,
    ready: bool,
    revision: Option<i64>,
    fingerprint: Option<String>,
    secret_name: Option<String>,
}

async fn observe_kind<K>(client: &Client, namespace: &str, kind: &'static str) -> Vec<Observed>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + HasCommonStatus
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let list = Api::<K>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list {kind}: {e}"));
    list.items
        .iter()
        .map(|object| {
            let common = object.common();
            Observed {
                kind,
                name: object.name_any(),
                uid: object.uid().unwrap_or_default(),
                ready: wait::is_ready(object),
                revision: common.and_then(|c| c.revision),
                fingerprint: common.and_then(|c| c.fingerprint.clone()),
                secret_name: common.and_then(|c| c.secret_name.clone()),
            }
        })
        .collect()
}

/// Every CertificateKeyPair, SshKey and KeyringSecret of `namespace`.
pub(crate) async fn observe(client: &Client, namespace: &str) -> Vec<Observed> {
    let mut all = observe_kind::<CertificateKeyPair>(client, namespace, "CertificateKeyPair").await;
    all.extend(observe_kind::<SshKey>(client, namespace, "SshKey").await);
    all.extend(observe_kind::<KeyringSecret>(client, namespace, "KeyringSecret").await);
    all
}

/// Waits until all `expected` resources of `namespace` are Ready and returns them.
pub(crate) async fn converged(
    client: &Client,
    namespace: &str,
    expected: usize,
    diagnose: impl Fn(&[&str]) -> String,
) -> Vec<Observed> {
    let started = Instant::now();
    loop {
        let observed = observe(client, namespace).await;
        let ready = observed.iter().filter(|o| o.ready).count();
        if observed.len() == expected && ready == expected {
            return observed;
        }
        if started.elapsed() >= CONVERGENCE {
            let stuck: Vec<&Observed> = observed.iter().filter(|o| !o.ready).take(5).collect();
            let names: Vec<&str> = stuck.iter().map(|o| o.name.as_str()).collect();
            panic!(
                "{ready} of {expected} Ready after {CONVERGENCE:?}; not Ready: {stuck:?}\n{}",
                diagnose(&names)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How many resources in `namespace` are Ready.
async fn count_ready(client: &Client, namespace: &str) -> usize {
    observe(client, namespace)
        .await
        .iter()
        .filter(|o| o.ready)
        .count()
}

/// What the operator and the API server said of resources that did not become Ready: the
/// operator log's lines that name them and its last lines, and the lists and watches of
/// keysmith resources the API server audited for the operator (did a broken watch start
/// again?).
fn diagnosis(cp: &support::ControlPlane, operator_log: &str, stuck: &[&str]) -> String {
    let names_them = |line: &&str| stuck.iter().any(|name| line.contains(&format!("/{name}.")));
    let lines: Vec<&str> = operator_log.lines().collect();
    let about: Vec<&str> = lines.iter().copied().filter(names_them).take(20).collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    let watches: Vec<String> =
        support::audit::requests_by(cp.audit_log(), support::pki::OPERATOR_USER)
            .iter()
            .filter(|e| e.verb == "list" || e.verb == "watch")
            .map(|e| {
                let code = e.response_status.as_ref().and_then(|s| s.code);
                format!(
                    "{} {} {code:?} {}",
                    e.stage_timestamp, e.stage, e.request_u_r_i
                )
            })
            .collect();
    let recent = &watches[watches.len().saturating_sub(40)..];
    format!(
        "operator log on them:\n{}\noperator log ends:\n{}\nlast lists and watches of keysmith resources:\n{}",
        about.join("\n"),
        tail.join("\n"),
        recent.join("\n")
    )
}

/// The fingerprint of a Secret's material, computed here from its data by the definitions of
/// api.md (not by keysmith's code): SHA-256 of the leaf certificate's DER, OpenSSH's SHA256
/// of the public key blob, HMAC-SHA256 of a PSK keyed with the Secret's salt annotation.
fn fingerprint_of(secret: &Secret) -> Option<String> {
    let data = secret.data.as_ref()?;
    if let Some(crt) = data.get("tls.crt") {
        let der = pem::parse(&crt.0).ok()?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.contents());
        return Some(format!("SHA256:{}", hex(digest.as_ref())));
    }
    if let Some(public) = data.get("ssh-publickey") {
        let text = String::from_utf8_lossy(&public.0);
        let blob = base64::engine::general_purpose::STANDARD
            .decode(text.split_whitespace().nth(1)?)
            .ok()?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &blob);
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_ref());
        return Some(format!("SHA256:{b64}"));
    }
    if let Some(psk) = data.get("psk") {
        let salt = secret.annotations().get("keysmith.dev/fingerprint-salt")?;
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, salt.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, &psk.0);
        return Some(format!("HMAC-SHA256:{}", hex(tag.as_ref())));
    }
    None
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that nothing was lost, regenerated without need or orphaned: every resource has
/// revision 1 and a Secret whose material has the status fingerprint, and every Secret of
/// `namespace` is owned by one of the resources. Returns the failures, one line each.
pub(crate) async fn nothing_lost(
    client: &Client,
    namespace: &str,
    observed: &[Observed],
) -> Vec<String> {
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list Secrets")
        .items;
    let by_name: BTreeMap<String, &Secret> = secrets.iter().map(|s| (s.name_any(), s)).collect();
    let owners: BTreeSet<&str> = observed.iter().map(|o| o.uid.as_str()).collect();
    let mut failures = Vec::new();
    for o in observed {
        if o.revision != Some(1) {
            failures.push(format!(
                "{} {}: revision {:?}, expected 1",
                o.kind, o.name, o.revision
            ));
        }
        let secret = o.secret_name.as_deref().and_then(|n| by_name.get(n));
        let Some(secret) = secret else {
            failures.push(format!(
                "{} {}: no Secret {:?}",
                o.kind, o.name, o.secret_name
            ));
            continue;
        };
        let computed = fingerprint_of(secret);
        if computed.is_none() || computed != o.fingerprint {
            failures.push(format!(
                "{} {}: status fingerprint {:?}, the Secret's material has {computed:?}",
                o.kind, o.name, o.fingerprint
            ));
        }
    }
    for secret in &secrets {
        let owned = secret
            .annotations()
            .get("keysmith.dev/owner-uid")
            .is_some_and(|uid| owners.contains(uid.as_str()));
        if !owned {
            failures.push(format!(
                "Secret {} has no owner among the resources",
                secret.name_any()
            ));
        }
    }
    failures
}

#[tokio::test]
async fn operator_killed_at_random_moments_during_issuance_loses_nothing() {
    let cp = support::shared();
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, "faults-kill").await;
    let dir = tempfile::tempdir().expect("tempdir");
    create_load(&client, "mixed", RESOURCES, |_| ns.clone()).await;

    let mut random = Random::from_env_or_clock();
    let mut ready_at_kill = Vec::new();
    let mut ready = 0;
    for round in 0..KILLS {
        let log = dir.path().join(format!("run-{round}.log"));
        let operator = OperatorProcess::start_quiet(cp, &ns, &log);
        let life = Duration::from_millis(random.below(LONGEST_LIFE.as_millis() as u64));
        let progress = 1 + random.below(LONGEST_PROGRESS) as usize;
        let started = Instant::now();
        let ready_at_start = ready;
        while started.elapsed() < life && ready < ready_at_start + progress {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ready = count_ready(&client, &ns).await;
        }
        drop(operator); // SIGKILL, then reaped
        ready = count_ready(&client, &ns).await;
        ready_at_kill.push(ready);
    }
    let last_log = dir.path().join("last.log");
    let operator = OperatorProcess::start_quiet(cp, &ns, &last_log);
    let observed = converged(&client, &ns, RESOURCES, |stuck| {
        diagnosis(cp, &operator.log(), stuck)
    })
    .await;
    eprintln!("{KILLS} SIGKILLs; Ready resources at each: {ready_at_kill:?}");
    let failures = nothing_lost(&client, &ns, &observed).await;
    assert!(
        failures.is_empty(),
        "{} problems after {KILLS} kills:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The kills fell during the issuance, not after it.
    assert!(
        ready_at_kill.iter().filter(|&&r| r < RESOURCES).count() >= KILLS / 2,
        "most kills came after the issuance: {ready_at_kill:?}"
    );
    assert!(
        operator.terminate(),
        "clean exit after the faults; the log ends:\n{}",
        tail(&last_log, 30)
    );
}

/// The last `lines` lines of the log at `path`.
fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// CertificateKeyPairs `after-0..n`, created once the API server is back.
fn late_certificates(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "apiVersion: keysmith.dev/v1alpha1\nkind: CertificateKeyPair\nmetadata: {{name: after-{i}}}\nspec: {{commonName: after-{i}.example.com}}\n---\n"
            )
        })
        .collect()
}

#[tokio::test]
async fn operator_recovers_by_itself_when_the_api_server_restarts() {
    const BEFORE: usize = 200;
    const AFTER: usize = 10;
    let mut cp = support::ControlPlane::start().expect("control plane");
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, "faults-apiserver").await;
    let dir = tempfile::tempdir().expect("tempdir");
    create_load(&client, "mixed", BEFORE, |_| ns.clone()).await;
    let operator = OperatorProcess::start_quiet(&cp, &ns, &dir.path().join("keysmith.log"));

    // Mid-run: some resources are Ready, the rest are still being issued.
    let mut random = Random::from_env_or_clock();
    let started = Instant::now();
    let mut ready_before = 0;
    while ready_before < BEFORE / 10 && started.elapsed() < CONVERGENCE {
        tokio::time::sleep(Duration::from_millis(100 + random.below(200))).await;
        ready_before = count_ready(&client, &ns).await;
    }
    cp.restart_apiserver(Duration::from_secs(5))
        .await
        .expect("restart kube-apiserver");
    let client = cp.client();
    support::apply(&cp, &ns, &late_certificates(AFTER)).await;

    let observed = converged(&client, &ns, BEFORE + AFTER, |stuck| {
        diagnosis(&cp, &operator.log(), stuck)
    })
    .await;
    eprintln!("kube-apiserver restarted with {ready_before} of {BEFORE} Ready");
    assert!(ready_before < BEFORE, "the restart came after the issuance");
    let failures = nothing_lost(&client, &ns, &observed).await;
    assert!(
        failures.is_empty(),
        "after the restart:\n{}",
        failures.join("\n")
    );
    // The same process did it all, without a restart.
    let log = operator.log();
    assert!(!log.contains("panicked"), "the operator panicked");
    assert!(
        operator.terminate(),
        "clean exit after the API server came back"
    );
}

#[tokio::test]
async fn kmip_connections_cut_mid_request_leave_no_duplicate_on_the_servers() {
    const KEYS: usize = 8;
    const DELETED: usize = 3;
    let (a, b) = kms::two_servers("faults-kmip");
    let (proxy_a, proxy_b) = (
        CuttingProxy::start(a.port()).await,
        CuttingProxy::start(b.port()).await,
    );
    let (cp, client, ns, _operator) = support::setup("faults-kmip").await;
    kms::server_secrets(&client, &ns, &a).await;
    let servers = [(a.name(), proxy_a.address()), (b.name(), proxy_b.address())];
    support::apply(cp, &ns, &kms::key_manager_at(&servers, "")).await;
    for i in 0..KEYS {
        support::apply(
            cp,
            &ns,
            &kms::auth_key(&format!("cut-{i}"), &format!("Cut-Key-{i}")),
        )
        .await;
    }

    // Registered everywhere, each key exactly once on each server.
    let mut key_ids = Vec::new();
    for i in 0..KEYS {
        let name = format!("cut-{i}");
        let _ = kms::wait_reason(&client, &ns, &name, "Registered").await;
        let data = wait::secret_data(&client, &ns, &name).await;
        key_ids.push(String::from_utf8(data["key-id"].clone()).expect("utf-8"));
    }
    for server in [&a, &b] {
        for key_id in &key_ids {
            let found = server.python_locate(key_id);
            assert_eq!(found.len(), 1, "{key_id} on {}: {found:?}", server.name());
        }
    }

    // Deleted keys leave the servers, though Revoke and Destroy are cut as well.
    let keys = Api::<KmsAuthKey>::namespaced(client.clone(), &ns);
    for i in 0..DELETED {
        keys.delete(&format!("cut-{i}"), &DeleteParams::default())
            .await
            .expect("delete");
    }
    // A deletion is done only when one reconcile gets through every Locate, Revoke and
    // Destroy on both servers with a third of the connections cut: about one attempt in
    // seven, every 10 s once the backoff is at its top, so it gets the time every other
    // convergence here gets.
    for i in 0..DELETED {
        wait::gone::<KmsAuthKey>(&client, &ns, &format!("cut-{i}"), CONVERGENCE).await;
    }
    for server in [&a, &b] {
        for (i, key_id) in key_ids.iter().enumerate() {
            let expected = usize::from(i >= DELETED);
            assert_eq!(
                server.python_locate(key_id).len(),
                expected,
                "{key_id} on {}",
                server.name()
            );
        }
    }

    // The faults happened: replies were lost after the servers had done the work.
    let mut lost_replies = 0;
    for (name, proxy) in [(a.name(), &proxy_a), (b.name(), &proxy_b)] {
        let (connections, before_reply, earlier) = proxy.counts().get();
        eprintln!(
            "{name}: {connections} connections, {before_reply} cut just before the reply, {earlier} cut earlier"
        );
        lost_replies += before_reply;
    }
    assert!(lost_replies >= 2, "too few replies lost: {lost_replies}");
}
