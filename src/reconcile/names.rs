//! Every name keysmith writes on the objects it manages, in one place: its field manager,
//! labels, annotations, finalizers and the suffix of kept-previous data keys. Plain
//! constants, importing nothing, so any module can use them without depending on another.

/// Field manager of every write keysmith makes.
pub const FIELD_MANAGER: &str = "keysmith";
/// Label on every Secret keysmith writes; the operator watches only Secrets carrying it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "keysmith";
/// `<Kind>/<name>` of the owning resource.
pub const OWNER_ANNOTATION: &str = "keysmith.dev/owner";
/// uid of the owning resource: the ownership test.
pub const OWNER_UID_ANNOTATION: &str = "keysmith.dev/owner-uid";
/// Namespace of the owning resource: a Secret copied into another namespace is never taken
/// for one of that namespace's resources.
pub const OWNER_NAMESPACE_ANNOTATION: &str = "keysmith.dev/owner-namespace";
/// The status fingerprint of the material, so anyone can match a Secret to its owner.
pub const FINGERPRINT_ANNOTATION: &str = "keysmith.dev/fingerprint";
/// How many times the material was generated (status.revision is read from here).
pub const REVISION_ANNOTATION: &str = "keysmith.dev/revision";
/// The `keysmith.dev/rotate` value the current material answers (status.lastRotationToken).
pub const ROTATION_TOKEN_ANNOTATION: &str = "keysmith.dev/rotation-token";
/// The uid a Secret was written for before keysmith took it back (a restore); kept while the
/// material is the one taken back, so the resource keeps reporting `Restored`.
pub const RESTORED_FROM_ANNOTATION: &str = "keysmith.dev/restored-from-uid";
/// When the material was generated (RFC 3339), on Secrets of material rotated by age:
/// `rotation.every` counts from here.
pub const GENERATED_AT_ANNOTATION: &str = "keysmith.dev/generated-at";
/// The random key of the fingerprint of secret material (a PSK, a password, a KMIP
/// passphrase), on the target Secret: only readers of the Secret can test guesses against
/// the fingerprint.
pub const FINGERPRINT_SALT_ANNOTATION: &str = "keysmith.dev/fingerprint-salt";
/// Annotation on a resource that requests a rotation when its value changes.
pub const ROTATE_ANNOTATION: &str = "keysmith.dev/rotate";
/// The keyring id, on a KeyringSecret's target Secret.
pub const KEYRING_ID_ANNOTATION: &str = "keysmith.dev/keyring-id";
/// `spec.note` of a KeyringSecret, on its target Secret.
pub const NOTE_ANNOTATION: &str = "keysmith.dev/note";
/// The key id of a replaced KMIP key whose server objects are destroyed once the new key is
/// registered, on the Secret (it survives a restart and a server that is down).
pub const RETIRED_KEY_ANNOTATION: &str = "keysmith.dev/retired-key-id";
/// Label marking the Secrets of non-exportable keys (value `true`).
pub const KEY_LABEL: &str = "keysmith.dev/private-key";
/// `<Kind>/<namespace>/<name>` of the resource a key Secret belongs to.
pub const KEY_OWNER_ANNOTATION: &str = "keysmith.dev/key-owner";
/// The finalizer of CertificateKeyPairs, SshKeys and KeyringSecrets: it carries out
/// `deletionPolicy`.
pub const MATERIAL_FINALIZER: &str = "keysmith.dev/material";
/// The finalizer of KmsAuthKeys: it destroys their objects on the KMIP servers, then
/// carries out `deletionPolicy`.
pub const SERVER_OBJECTS_FINALIZER: &str = "keysmith.dev/server-objects";
/// Suffix of the Secret keys of the previous material (`rotation.keepPrevious`).
pub const PREVIOUS_SUFFIX: &str = ".previous";
