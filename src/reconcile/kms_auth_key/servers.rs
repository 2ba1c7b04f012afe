//! Talking to the KMIP servers of a KeyManager: a client from the server's Secrets, and the
//! idempotent push (Locate by name before Register), removal (Revoke, then Destroy) and
//! reachability probe the controllers need. Errors are messages for the status: they name
//! the server and the KMIP result, never the passphrase.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use crate::api::key_manager::KmipServer;
use crate::kmip::{
    KmipClient, KmipClientConfig, KmipError, RequestObserver, ResultReason, RevocationReasonCode,
    State,
};
use crate::material::SecretBytes;
use crate::metrics::KmipLabels;
use crate::reconcile::context::Context;
use crate::reconcile::secret::read_selector;

use super::decide::AuthKey;

/// A client for `server`, with the CA and client certificate from its Secrets in `ns`.
async fn client(ctx: &Context, ns: &str, server: &KmipServer) -> Result<KmipClient, String> {
    let ca = read_selector(&ctx.client, ns, &server.ca_secret_ref, "KMIP server CA")
        .await
        .map_err(|e| e.to_string())?;
    let tls_name = &server.client_certificate_secret_ref.name;
    let tls = Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .get_opt(tls_name)
        .await
        .map_err(|e| format!("reading the client certificate Secret {ns}/{tls_name}: {e}"))?
        .ok_or_else(|| format!("client certificate Secret {ns}/{tls_name} not found"))?;
    let field = |key: &str| {
        tls.data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.clone())
            .ok_or_else(|| format!("client certificate Secret {ns}/{tls_name} has no {key}"))
    };
    let mut config = KmipClientConfig::new(
        server.address.clone(),
        ca.expose().as_bytes().to_vec(),
        field("tls.crt")?,
        SecretBytes::new(field("tls.key")?),
    );
    config.server_name = server.server_name.clone();
    config.observer = Some(count_requests(ctx, &server.address));
    KmipClient::new(&config).map_err(|e| e.to_string())
}

/// Counts every request to the server at `address` in `keysmith_kmip_requests_total`.
fn count_requests(ctx: &Context, address: &str) -> RequestObserver {
    let metrics = ctx.metrics.clone();
    let server = address.trim().to_owned();
    Arc::new(move |operation, outcome| {
        let labels = KmipLabels {
            server: server.clone(),
            operation: format!("{operation:?}"),
            result: outcome.as_str().to_owned(),
        };
        metrics.kmip_requests.get_or_create(&labels).inc();
    })
}

/// Checks that `server` answers a KMIP request over mutual TLS.
pub async fn probe(ctx: &Context, ns: &str, server: &KmipServer) -> Result<(), String> {
    let client = client(ctx, ns, server).await?;
    client.probe().await.map(drop).map_err(|e| e.to_string())
}

/// Makes sure `key` is registered (and active) on `server` under its key id and returns the
/// object's unique identifier. An object of that name holding the same passphrase is taken
/// as is (a retry after a crash between Register and the status write). One holding another
/// passphrase is never replaced, unless it is the `retired` key of the same id (a fixed
/// `spec.keyId` whose passphrase changed: the name can hold one key, so the old object goes
/// first).
pub async fn push(
    ctx: &Context,
    ns: &str,
    server: &KmipServer,
    key: &AuthKey,
    retired: Option<&str>,
) -> Result<String, String> {
    let client = client(ctx, ns, server).await?;
    let passphrase = SecretBytes::new(key.passphrase.expose().as_bytes().to_vec());
    let found = client
        .locate_by_name(&key.key_id)
        .await
        .map_err(|e| e.to_string())?;
    for uid in &found {
        let stored = client.get_secret(uid).await.map_err(|e| e.to_string())?;
        if stored == passphrase {
            activate_if_pre_active(&client, uid).await?;
            return Ok(uid.clone());
        }
    }
    if !found.is_empty() {
        if retired != Some(key.key_id.as_str()) {
            return Err(format!(
                "server {} already holds an object named after key id {} with another passphrase; it is not replaced",
                server.name, key.key_id
            ));
        }
        destroy_all(&client, &found).await?;
    }
    let uid = client
        .register_secret_password(&key.key_id, &passphrase)
        .await
        .map_err(|e| e.to_string())?;
    client.activate(&uid).await.map_err(|e| e.to_string())?;
    Ok(uid)
}

/// Destroys the objects of the replaced key id `retired` on `server`.
pub async fn retire(
    ctx: &Context,
    ns: &str,
    server: &KmipServer,
    retired: &str,
) -> Result<(), String> {
    let client = client(ctx, ns, server).await?;
    let found = client
        .locate_by_name(retired)
        .await
        .map_err(|e| e.to_string())?;
    destroy_all(&client, &found).await
}

fn is_item_not_found(error: &KmipError) -> bool {
    matches!(error, KmipError::OperationFailed { failure, .. }
        if failure.reason() == Some(ResultReason::ItemNotFound))
}

async fn activate_if_pre_active(client: &KmipClient, uid: &str) -> Result<(), String> {
    match client.state(uid).await.map_err(|e| e.to_string())? {
        State::PreActive => client.activate(uid).await.map_err(|e| e.to_string()),
        _ => Ok(()),
    }
}

/// The unique identifiers of the objects named `key_id` on `server`.
pub async fn locate(
    ctx: &Context,
    ns: &str,
    server: &KmipServer,
    key_id: &str,
) -> Result<Vec<String>, String> {
    let client = client(ctx, ns, server).await?;
    client
        .locate_by_name(key_id)
        .await
        .map_err(|e| e.to_string())
}

/// Revokes (when active) and destroys `objects` on `server`.
pub async fn remove(
    ctx: &Context,
    ns: &str,
    server: &KmipServer,
    objects: &[String],
) -> Result<(), String> {
    if objects.is_empty() {
        return Ok(());
    }
    let client = client(ctx, ns, server).await?;
    destroy_all(&client, objects).await
}

async fn destroy_all(client: &KmipClient, objects: &[String]) -> Result<(), String> {
    for uid in objects {
        let state = match client.state(uid).await {
            Ok(state) => state,
            // Already gone (destroyed by an earlier attempt or by someone else).
            Err(e) if is_item_not_found(&e) => continue,
            Err(e) => return Err(e.to_string()),
        };
        if matches!(state, State::Destroyed | State::DestroyedCompromised) {
            continue;
        }
        if state == State::Active {
            client
                .revoke(uid, RevocationReasonCode::CessationOfOperation)
                .await
                .map_err(|e| e.to_string())?;
        }
        client.destroy(uid).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
