//! Finding the issuing CA of a CertificateKeyPair and reading its material.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};

use crate::api::certificate_key_pair::{CertificateKeyPair, PrivateKeyExport};
use crate::api::common::reason;

use super::decide::IssuerState;
use super::{Error, key_store, target_secret_name, tls_material_from_secret};
use crate::reconcile::context::Settings;
use crate::reconcile::namespaces::WatchedNamespaces;
use crate::reconcile::resource::is_ready_for_current_spec;
use crate::reconcile::secret::Ownership;

/// Where the CA of `ckp` lives: `(namespace, name)`, or `None` when self-signed.
pub fn issuer_key(ckp: &CertificateKeyPair) -> Option<(String, String)> {
    let reference = ckp.spec.issuer_ref.as_ref()?;
    let namespace = reference
        .namespace
        .clone()
        .or_else(|| ckp.namespace())
        .unwrap_or_default();
    Some((namespace, reference.name.clone()))
}

/// Looks up the CA named by `ckp.spec.issuerRef` and checks that it may and can sign.
/// `settings.key_namespace` holds the CA's key when it does not export it.
pub async fn resolve(
    client: &Client,
    settings: &Settings,
    ckp: &CertificateKeyPair,
) -> Result<IssuerState, Error> {
    let Some((namespace, name)) = issuer_key(ckp) else {
        return Ok(IssuerState::SelfSigned);
    };
    if let Some(refused) = unwatched(&settings.namespaces, &namespace, &name) {
        return Ok(refused);
    }
    let own_namespace = ckp.namespace().unwrap_or_default();
    let first = (namespace.clone(), name.clone());
    if let Some(message) = issuer_loop(client, &settings.namespaces, ckp, first).await? {
        return Ok(unavailable(reason::INVALID_SPEC, message));
    }
    resolve_ca(
        client,
        settings,
        &own_namespace,
        (namespace, name),
        NamespaceCheck::CaPolicy,
    )
    .await
}

/// Whether the CA's `ca.allowedNamespaces` applies to a requester in another namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceCheck {
    /// The CA's policy decides (an issuerRef written by a user).
    CaPolicy,
    /// The operator's configured default CA: the operator's administrator chose it for
    /// every namespace.
    OperatorDefault,
}

/// Looks up the CA CertificateKeyPair `(namespace, name)` for a requester in
/// `own_namespace` and checks that it may and can sign. A CA outside the watched
/// namespaces is refused without asking the API server (the operator may not read there).
pub async fn resolve_ca(
    client: &Client,
    settings: &Settings,
    own_namespace: &str,
    (namespace, name): (String, String),
    check: NamespaceCheck,
) -> Result<IssuerState, Error> {
    if let Some(refused) = unwatched(&settings.namespaces, &namespace, &name) {
        return Ok(refused);
    }
    let key_namespace = settings.key_namespace.as_str();
    let ca_ref = format!("{namespace}/{name}");
    let api = Api::<CertificateKeyPair>::namespaced(client.clone(), &namespace);
    let ca = api.get_opt(&name).await.map_err(|source| Error::Read {
        what: format!("issuer CertificateKeyPair {ca_ref}"),
        source,
    })?;
    let Some(ca) = ca else {
        return Ok(unavailable(
            reason::REFERENCE_NOT_FOUND,
            format!("issuer CertificateKeyPair {ca_ref} not found"),
        ));
    };
    if let Err(refused) = check_ca(&ca, &namespace, own_namespace, check) {
        return Ok(refused);
    }
    if !is_ready_for_current_spec(&ca) {
        return Ok(unavailable(
            reason::REFERENCE_NOT_READY,
            format!("issuer CertificateKeyPair {ca_ref} is not Ready"),
        ));
    }
    read_ca_material(client, key_namespace, &ca, &ca_ref).await
}

/// Whether `ca`, the CertificateKeyPair in `namespace` named by an issuerRef, may sign for
/// a requester in `own_namespace`: it must be a CA and, under [`NamespaceCheck::CaPolicy`],
/// list that namespace in `ca.allowedNamespaces` (or be in it). `Err` is the state to report.
pub fn check_ca(
    ca: &CertificateKeyPair,
    namespace: &str,
    own_namespace: &str,
    check: NamespaceCheck,
) -> Result<(), IssuerState> {
    let ca_ref = format!("{namespace}/{}", ca.name_any());
    if !ca.spec.is_ca {
        return Err(unavailable(
            reason::ISSUER_NOT_CA,
            format!("issuer CertificateKeyPair {ca_ref} is not a CA (isCA is false)"),
        ));
    }
    if check == NamespaceCheck::CaPolicy
        && namespace != own_namespace
        && !allows_namespace(ca, own_namespace)
    {
        return Err(unavailable(
            reason::NAMESPACE_NOT_ALLOWED,
            format!(
                "issuer CertificateKeyPair {ca_ref} does not allow namespace {own_namespace} (its ca.allowedNamespaces)"
            ),
        ));
    }
    Ok(())
}

async fn read_ca_material(
    client: &Client,
    key_namespace: &str,
    ca: &CertificateKeyPair,
    ca_ref: &str,
) -> Result<IssuerState, Error> {
    let namespace = ca.namespace().unwrap_or_default();
    let secret_name = target_secret_name(ca);
    let secrets = Api::<Secret>::namespaced(client.clone(), &namespace);
    let secret = secrets
        .get_opt(&secret_name)
        .await
        .map_err(|source| Error::Read {
            what: format!("Secret {namespace}/{secret_name} of issuer {ca_ref}"),
            source,
        })?;
    let uid = ca.uid().unwrap_or_default();
    let Some(secret) = secret.filter(|s| Ownership::is_owned_by(s, &uid)) else {
        return Ok(unavailable(
            reason::REFERENCE_NOT_READY,
            format!("issuer {ca_ref} has no Secret of its own yet"),
        ));
    };
    let key_secret = match ca.spec.private_key_export {
        PrivateKeyExport::Denied => key_store::find(client, key_namespace, ca, None)
            .await?
            .filter(|k| k.owner_uid == uid),
        PrivateKeyExport::Allowed => None,
    };
    match tls_material_from_secret(&secret, key_secret.as_ref().map(|k| &k.secret)) {
        Ok(material) => Ok(IssuerState::Ready(Box::new(material))),
        Err(why) => Ok(unavailable(
            reason::REFERENCE_NOT_READY,
            format!("issuer {ca_ref}'s Secret does not hold usable CA material: {why}"),
        )),
    }
}

/// How many issuers up the chain are followed looking for a loop.
const MAX_CHAIN: usize = 8;

/// Whether the issuer chain that starts at `first` (an issuerRef, as `(namespace, name)`)
/// reaches `target` within [`MAX_CHAIN`] steps; `issuer_of` gives the issuerRef of a
/// CertificateKeyPair, `None` when it has none or is unknown. Pure: the watch mapping uses
/// it with the cache, so that the members of an issuer loop do not wake each other forever.
pub fn chain_reaches(
    first: Option<(String, String)>,
    target: &(String, String),
    issuer_of: impl Fn(&(String, String)) -> Option<(String, String)>,
) -> bool {
    let mut next = first;
    for _ in 0..MAX_CHAIN {
        match next {
            Some(current) if &current == target => return true,
            Some(current) => next = issuer_of(&current),
            None => return false,
        }
    }
    false
}

/// `Some(message)` when the issuer chain starting at `first` comes back to `ckp` (itself as
/// issuer, or A -> B -> A): such a chain would re-issue forever. The chain is followed
/// within the `watched` namespaces only (the operator reads nothing elsewhere).
async fn issuer_loop(
    client: &Client,
    watched: &WatchedNamespaces,
    ckp: &CertificateKeyPair,
    first: (String, String),
) -> Result<Option<String>, Error> {
    let own = (ckp.namespace().unwrap_or_default(), ckp.name_any());
    let mut next = Some(first);
    for _ in 0..MAX_CHAIN {
        let Some(current) = next.take().filter(|(ns, _)| watched.contains(ns)) else {
            return Ok(None);
        };
        if current == own {
            return Ok(Some(issuer_loop_message(&own)));
        }
        let found = Api::<CertificateKeyPair>::namespaced(client.clone(), &current.0)
            .get_opt(&current.1)
            .await
            .map_err(|source| Error::Read {
                what: format!("issuer CertificateKeyPair {}/{}", current.0, current.1),
                source,
            })?;
        next = found.as_ref().and_then(issuer_key);
    }
    Ok(None)
}

/// `Forbidden` when the CA `namespace/name` lies outside the `watched` namespaces.
fn unwatched(watched: &WatchedNamespaces, namespace: &str, name: &str) -> Option<IssuerState> {
    (!watched.contains(namespace)).then(|| {
        unavailable(
            reason::FORBIDDEN,
            format!(
                "issuer CertificateKeyPair {namespace}/{name} is in namespace {namespace}, \
                 which this operator does not watch (--namespaces {watched}); add it there"
            ),
        )
    })
}

/// The InvalidSpec message of an issuer chain that leads back to `(namespace, name)`.
pub fn issuer_loop_message((namespace, name): &(String, String)) -> String {
    format!(
        "issuerRef leads back to this CertificateKeyPair ({namespace}/{name}): a CA cannot be signed by itself or by a certificate it signed"
    )
}

fn unavailable(reason: &'static str, message: String) -> IssuerState {
    IssuerState::Unavailable { reason, message }
}

fn allows_namespace(ca: &CertificateKeyPair, namespace: &str) -> bool {
    ca.spec
        .ca
        .iter()
        .flat_map(|policy| &policy.allowed_namespaces)
        .any(|allowed| allowed == "*" || allowed == namespace)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::chain_reaches;

    fn key(name: &str) -> (String, String) {
        ("pki".to_owned(), name.to_owned())
    }

    /// issuerRefs: name -> issuer name.
    fn chain_reaches_in(edges: &[(&str, &str)], first: &str, target: &str) -> bool {
        let issuers: BTreeMap<_, _> = edges.iter().map(|(a, b)| (key(a), key(b))).collect();
        chain_reaches(Some(key(first)), &key(target), |k| issuers.get(k).cloned())
    }

    #[test]
    fn a_chain_reaches_what_lies_on_it_and_nothing_else() {
        let edges = [("leaf", "inter"), ("inter", "root")];
        assert!(chain_reaches_in(&edges, "inter", "root"));
        assert!(chain_reaches_in(&edges, "inter", "inter"));
        assert!(!chain_reaches_in(&edges, "inter", "leaf"));
        assert!(!chain_reaches_in(&edges, "root", "inter"));
        assert!(!chain_reaches(None, &key("root"), |_| None));
    }

    #[test]
    fn loops_are_found_and_followed_a_bounded_number_of_steps() {
        // a -> b -> a: b's issuer chain (starting at a) comes back to b.
        assert!(chain_reaches_in(&[("a", "b"), ("b", "a")], "a", "b"));
        // A loop that does not contain the target ends after MAX_CHAIN steps.
        assert!(!chain_reaches_in(&[("x", "y"), ("y", "x")], "x", "z"));
    }
}
