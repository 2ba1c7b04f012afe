//! keysmith's finalizer: how `deletionPolicy: Delete` is carried out, and how a restored
//! resource is told from a new one.
//!
//! Target Secrets carry no ownerReference (see `docs/backup-restore.md` for the options
//! weighed). A backup holds every object as it was; restored with a stale ownerReference, a
//! Secret is deleted by the garbage collector before its resource is back, and keysmith
//! would then make new material: a silent CA rotation. So the resource carries a finalizer
//! instead, and when it is deleted keysmith deletes the Secrets it owns (`Delete`) or leaves
//! them (`Retain`), then removes the finalizer.
//!
//! The finalizer is added right after the material is first written, never before: a
//! resource that carries it has had material in some life. One that carries it but has no
//! status fingerprint and no target Secret is a restored resource whose Secret has not been
//! restored yet; keysmith waits [`Settings::restore_grace`] for it before generating
//! anything ([`awaiting_restore`]).
//!
//! kube-runtime's `finalizer` helper adds the finalizer before the first reconcile does any
//! work, which is exactly the order that would make every new resource look restored; it
//! is not used.
//!
//! [`Settings::restore_grace`]: super::context::Settings::restore_grace

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};

use crate::api::common::DeletionPolicy;

use super::context::Context;
use super::error::Error;
use super::resource::{KeysmithResource, namespace, target_secret_name};
use super::secret::{FIELD_MANAGER, Ownership};

pub use super::names::MATERIAL_FINALIZER;

/// Whether `object` carries its kind's finalizer, or this process added it a moment ago and
/// the cached copy does not show it yet.
pub fn has_finalizer<K: KeysmithResource>(ctx: &Context, object: &K) -> bool {
    let uid = object.uid().unwrap_or_default();
    if object.finalizers().iter().any(|f| f == K::FINALIZER) {
        ctx.finalizers_added.forget(&uid);
        return true;
    }
    ctx.finalizers_added.contains(&uid)
}

/// Adds the finalizer to `object` unless it has it. Called once the material is in the
/// target Secret. The patch tests the uid and the finalizers read, so a concurrent change
/// fails it (retried) rather than dropping another controller's finalizer. When the
/// resource turns out to be gone or being deleted, [`Error::Deleted`] tells the report step
/// to carry out `deletionPolicy` on what was just written, as the finalizer would have.
pub async fn ensure<K: KeysmithResource>(ctx: &Context, object: &K) -> Result<(), Error> {
    if has_finalizer(ctx, object) {
        return Ok(());
    }
    match patch_finalizers(ctx, object, Change::Add).await {
        Ok(()) => {
            ctx.finalizers_added
                .insert(object.uid().unwrap_or_default());
            Ok(())
        }
        // 422 is also a failed test (another finalizer list, another uid): only a fresh
        // read tells a deletion from a change.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {
            if is_deleted(ctx, object).await? {
                Err(Error::Deleted)
            } else {
                Err(Error::Finalizer(kube::Error::Api(s)))
            }
        }
        Err(e) => Err(Error::Finalizer(e)),
    }
}

/// Whether `object` is gone, or is being deleted (same uid, deletionTimestamp set), as the
/// API server has it now. A list by name, not a get: the operator may list every kind but
/// get only those it reads as references.
async fn is_deleted<K: KeysmithResource>(ctx: &Context, object: &K) -> Result<bool, Error> {
    let ns = namespace(object);
    let name = object.name_any();
    let params = ListParams::default().fields(&format!("metadata.name={name}"));
    let live = Api::<K>::namespaced(ctx.client.clone(), &ns)
        .list_metadata(&params)
        .await
        .map_err(|source| Error::Read {
            what: format!("{} {ns}/{name}", K::KIND),
            source,
        })?;
    Ok(match live.items.first() {
        None => true,
        Some(live) => {
            live.metadata.uid != object.uid() || live.metadata.deletion_timestamp.is_some()
        }
    })
}

/// Carries out `deletionPolicy` on the target Secret of a resource being deleted and removes
/// the finalizer. The kind's own clean-up (key Secrets, key server objects) runs first, in
/// [`super::outcome::MaterialController::clean_up`].
pub async fn finish_deletion<K: KeysmithResource>(ctx: &Context, object: &K) -> Result<(), Error> {
    if !object.finalizers().iter().any(|f| f == K::FINALIZER) {
        return Ok(());
    }
    delete_target(ctx, object).await?;
    match patch_finalizers(ctx, object, Change::Remove).await {
        Ok(()) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(Error::Finalizer(e)),
    }
    ctx.finalizers_added
        .forget(&object.uid().unwrap_or_default());
    tracing::info!(kind = K::KIND, name = %object.name_any(), namespace = %namespace(object), "finalizer removed");
    Ok(())
}

/// Deletes the target Secret of `object` if `deletionPolicy` is `Delete` and the Secret is
/// this resource's (its uid annotation): with uid and resourceVersion preconditions, so a
/// Secret replaced meanwhile is never deleted.
pub async fn delete_target<K: KeysmithResource>(ctx: &Context, object: &K) -> Result<(), Error> {
    if object.target().deletion_policy != DeletionPolicy::Delete {
        return Ok(());
    }
    let ns = namespace(object);
    let name = target_secret_name(object);
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &ns);
    let existing = api.get_opt(&name).await.map_err(|source| Error::Read {
        what: format!("Secret {ns}/{name}"),
        source,
    })?;
    let uid = object.uid().unwrap_or_default();
    let Some(secret) = existing.filter(|s| Ownership::is_owned_by(s, &uid)) else {
        return Ok(());
    };
    delete_exactly(&api, &secret)
        .await
        .map_err(|source| Error::WriteSecret {
            secret: format!("{ns}/{name}"),
            source,
        })?;
    tracing::info!(kind = K::KIND, name = %object.name_any(), namespace = %ns, secret = %name, "deleted the Secret of a deleted resource (deletionPolicy: Delete)");
    Ok(())
}

/// Deletes `secret` if it is still the object read (uid and resourceVersion); a Secret
/// already gone is fine.
pub async fn delete_exactly(api: &Api<Secret>, secret: &Secret) -> Result<(), kube::Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: secret.metadata.uid.clone(),
            resource_version: secret.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(&secret.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Adding or removing the kind's finalizer.
#[derive(Clone, Copy, Debug)]
enum Change {
    Add,
    Remove,
}

/// The JSON patch that makes `change` to `finalizers` (`None`: nothing to remove). It first
/// tests that the list is the one read, so a concurrent change of the finalizers fails it
/// (retried) rather than being lost, while a status write meanwhile (a new resourceVersion)
/// does not.
fn finalizer_patch(
    uid: &str,
    finalizers: &[String],
    finalizer: &str,
    change: Change,
) -> Option<json_patch::Patch> {
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{AddOperation, PatchOperation, RemoveOperation, TestOperation};
    let path = |p: &str| PointerBuf::parse(p).ok();
    let same_object = PatchOperation::Test(TestOperation {
        path: path("/metadata/uid")?,
        value: serde_json::json!(uid),
    });
    let test = PatchOperation::Test(TestOperation {
        path: path("/metadata/finalizers")?,
        value: if finalizers.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(finalizers)
        },
    });
    let change = match change {
        Change::Add if finalizers.is_empty() => PatchOperation::Add(AddOperation {
            path: path("/metadata/finalizers")?,
            value: serde_json::json!([finalizer]),
        }),
        Change::Add => PatchOperation::Add(AddOperation {
            path: path("/metadata/finalizers/-")?,
            value: serde_json::json!(finalizer),
        }),
        Change::Remove => {
            let index = finalizers.iter().position(|f| f == finalizer)?;
            PatchOperation::Remove(RemoveOperation {
                path: path(&format!("/metadata/finalizers/{index}"))?,
            })
        }
    };
    Some(json_patch::Patch(vec![same_object, test, change]))
}

async fn patch_finalizers<K: KeysmithResource>(
    ctx: &Context,
    object: &K,
    change: Change,
) -> Result<(), kube::Error> {
    let uid = object.uid().unwrap_or_default();
    let Some(patch) = finalizer_patch(&uid, object.finalizers(), K::FINALIZER, change) else {
        return Ok(());
    };
    let api = Api::<K>::namespaced(ctx.client.clone(), &namespace(object));
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(&object.name_any(), &params, &Patch::<()>::Json(patch))
        .await
        .map(|_| ())
}

/// When a resource that looks restored stops waiting for its Secret: `Some(deadline)` while
/// it carries keysmith's finalizer (it had material in an earlier life), shows no
/// fingerprint (it has had none in this one), and `grace` since its creation has not passed.
/// The caller checks that the target Secret is absent.
pub fn awaiting_restore(
    has_finalizer: bool,
    has_fingerprint: bool,
    created: Option<SystemTime>,
    now: SystemTime,
    grace: Duration,
) -> Option<SystemTime> {
    if !has_finalizer || has_fingerprint {
        return None;
    }
    let deadline = created? + grace;
    (now < deadline).then_some(deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(120);

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn finalizer_patches_test_the_list_they_change() {
        let text =
            |p: Option<json_patch::Patch>| serde_json::to_string(&p.expect("patch")).expect("json");
        let first = text(finalizer_patch(
            "u1",
            &[],
            "keysmith.dev/material",
            Change::Add,
        ));
        assert_eq!(
            first,
            r#"[{"op":"test","path":"/metadata/uid","value":"u1"},{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["keysmith.dev/material"]}]"#
        );
        let others = vec!["other.io/x".to_owned(), "keysmith.dev/material".to_owned()];
        let removal = text(finalizer_patch(
            "u1",
            &others,
            "keysmith.dev/material",
            Change::Remove,
        ));
        assert!(removal.contains(r#""op":"test","path":"/metadata/finalizers","value":["other.io/x","keysmith.dev/material"]"#), "{removal}");
        assert!(
            removal.contains(r#"{"op":"remove","path":"/metadata/finalizers/1"}"#),
            "{removal}"
        );
        assert!(
            finalizer_patch("u1", &others[..1], "keysmith.dev/material", Change::Remove).is_none()
        );
    }

    #[test]
    fn a_restored_resource_waits_for_its_secret_until_the_grace_ends() {
        let created = Some(at(1000));
        assert_eq!(
            awaiting_restore(true, false, created, at(1010), GRACE),
            Some(at(1120))
        );
        assert_eq!(
            awaiting_restore(true, false, created, at(1120), GRACE),
            None
        );
    }

    #[test]
    fn a_new_resource_or_one_that_had_material_in_this_life_never_waits() {
        let created = Some(at(1000));
        // New: the finalizer comes only after the first material.
        assert_eq!(
            awaiting_restore(false, false, created, at(1001), GRACE),
            None
        );
        // Its Secret was deleted by someone: made again at once, as before.
        assert_eq!(awaiting_restore(true, true, created, at(1001), GRACE), None);
        // No creation time (never from an API server): nothing to wait for.
        assert_eq!(awaiting_restore(true, false, None, at(1001), GRACE), None);
    }
}
