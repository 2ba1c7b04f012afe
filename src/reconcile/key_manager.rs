//! The KeyManager controller (api.md section 5): checks that each KMIP server is reachable
//! (TLS handshake with the configured client certificate and a KMIP request), counts the
//! KmsAuthKeys that refer to the manager, and reports both in the status. Reachability is
//! checked again every [`RECHECK_INTERVAL`]; the status changes only when it does.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;

use crate::api::common::{ConditionStatus, condition, reason};
use crate::api::key_manager::{KeyManager, KeyManagerStatus, KmipServerStatus};
use crate::api::kms_auth_key::KmsAuthKey;

use super::context::Context;
use super::error::Error;
use super::kms_auth_key::probe;
use super::status::{ConditionUpdate, apply_if_changed, conditions, time};

/// The kind name.
pub const KIND: &str = "KeyManager";
/// How often reachability is checked again.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(60);
/// Ready reason: at least one server answered.
pub const REACHABLE: &str = "Reachable";
/// Ready=False reason: no server answered.
pub const UNREACHABLE: &str = "Unreachable";

/// Checks the servers and writes the status when something changed.
pub async fn reconcile(manager: Arc<KeyManager>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = manager.namespace().unwrap_or_default();
    let previous = manager.status.as_ref();
    let now = ctx.clock.now();
    let mut servers = Vec::with_capacity(manager.spec.servers.len());
    for server in &manager.spec.servers {
        let result = if manager.spec.enabled {
            probe(&ctx, &ns, server).await
        } else {
            Err("external key management is not enabled".to_owned())
        };
        let (reachable, message) = match result {
            Ok(()) => (true, String::new()),
            Err(message) => (false, message),
        };
        let before = previous.and_then(|p| p.servers.iter().find(|s| s.name == server.name));
        let changed = before.is_none_or(|b| b.reachable != reachable || b.message != message);
        servers.push(KmipServerStatus {
            name: server.name.clone(),
            reachable,
            last_checked_time: if changed {
                Some(time(now))
            } else {
                before.and_then(|b| b.last_checked_time.clone())
            },
            message,
        });
    }
    let auth_key_count = count_keys(&ctx, &manager).await?;
    let ready = ready_condition(&manager, &servers);
    let generation = manager.metadata.generation;
    let mut status = KeyManagerStatus {
        auth_key_count: Some(auth_key_count),
        servers,
        ..KeyManagerStatus::default()
    };
    status.common.observed_generation = generation;
    status.common.conditions = conditions(
        previous
            .map(|p| p.common.conditions.as_slice())
            .unwrap_or_default(),
        &[ready],
        generation,
        now,
    );
    let api = Api::<KeyManager>::namespaced(ctx.client.clone(), &ns);
    apply_if_changed(
        &api,
        manager.as_ref(),
        previous,
        &status,
        &ctx.written_statuses,
    )
    .await
    .map_err(Error::WriteStatus)?;
    Ok(Action::requeue(RECHECK_INTERVAL))
}

/// Ready: enabled, with servers, at least one of them reachable.
fn ready_condition(manager: &KeyManager, servers: &[KmipServerStatus]) -> ConditionUpdate {
    let reachable = servers.iter().filter(|s| s.reachable).count();
    let (status, reason, message) = if !manager.spec.enabled {
        (
            ConditionStatus::False,
            reason::KEY_MANAGER_DISABLED,
            "external key management is not enabled".to_owned(),
        )
    } else if servers.is_empty() {
        (
            ConditionStatus::False,
            reason::NO_KEY_SERVERS,
            "no key servers configured".to_owned(),
        )
    } else if reachable == 0 {
        (
            ConditionStatus::False,
            UNREACHABLE,
            format!("none of the {} key servers is reachable", servers.len()),
        )
    } else {
        (
            ConditionStatus::True,
            REACHABLE,
            format!("{reachable} of {} key servers reachable", servers.len()),
        )
    };
    ConditionUpdate {
        type_: condition::READY,
        status,
        reason,
        message,
    }
}

/// The KmsAuthKeys of the manager's namespace that refer to it (and are not being deleted).
async fn count_keys(ctx: &Context, manager: &KeyManager) -> Result<u32, Error> {
    let ns = manager.namespace().unwrap_or_default();
    let keys = Api::<KmsAuthKey>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Read {
            what: format!("the KmsAuthKeys of namespace {ns}"),
            source,
        })?;
    let count = keys
        .items
        .iter()
        .filter(|k| k.spec.key_manager_ref.name == manager.name_any())
        .filter(|k| k.metadata.deletion_timestamp.is_none())
        .count();
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// The error policy: the shared per-object backoff.
pub fn error_policy(manager: Arc<KeyManager>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "{KIND}/{}/{}",
        manager.namespace().unwrap_or_default(),
        manager.name_any()
    );
    tracing::warn!(kind = KIND, name = %manager.name_any(), %error, "reconcile failed");
    Action::requeue(ctx.backoff.next_delay(&key))
}
