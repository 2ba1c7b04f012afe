//! Generated material of a KeyringSecret: read what the Secret holds, decide, generate (a
//! slow generation as a tracked task), write, report. One flow for every type whose
//! material is made from nothing but the spec (and, for cert_chain, copied from the
//! pkey_cert).

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::reconcile::events::EventType;
use kube::ResourceExt;

use crate::api::common::{ConditionStatus, ExistingSecretPolicy, reason};
use crate::api::keyring_secret::KeyringSecret;
use crate::material::keyring::{Material, Recipe};
use crate::material::parse::{Mismatch, certificates_from_pem};
use crate::material::progress::Progress;
use crate::material::random;
use crate::material::ssh::{SshKeyKind, SshKeyPair, SshMaterial, SshOutput};
use crate::material::ssh::{read_ssh_secret, ssh_secret_data};
use crate::material::x509::{Certificate, TlsMaterial};
use crate::material::{MaterialError, SecretBytes};
use crate::reconcile::context::Context;
use crate::reconcile::error::Error;
use crate::reconcile::outcome::Outcome;
use crate::reconcile::resource::{namespace, publish, rotate_request};
use crate::reconcile::secret::{
    GENERATED_AT_ANNOTATION, Ownership, ROTATION_TOKEN_ANNOTATION, TargetContent, annotation,
    data_of, generated_at, material_data, read_target, write_target,
};
use crate::reconcile::slow::{Poll, timed_generation, tracked};
use crate::reconcile::status::time;

use super::decide::{Decision, Found, Inputs, Why, decide};
use super::{FINGERPRINT_SALT_ANNOTATION, KIND, KeyringMaterial};

/// Suffix of the previous material's keys (rotation.keepPrevious).
use crate::reconcile::names::PREVIOUS_SUFFIX;

/// Material a KeyringSecret generates from its spec.
pub trait Generated: Clone + Send + Sync + 'static {
    /// The material.
    type M: Clone + Send + 'static;
    /// Reads the material from Secret data (errors name the Secret key).
    fn read(&self, data: &BTreeMap<String, Vec<u8>>) -> Result<Self::M, MaterialError>;
    /// Whether `material` satisfies the spec.
    fn check(&self, material: &Self::M) -> Result<(), Mismatch>;
    /// Makes new material (on a blocking thread; slow ones as a tracked task).
    fn make(&self, progress: &Progress) -> Result<Self::M, MaterialError>;
    /// The Secret data of `material`.
    fn secret_data(
        &self,
        material: &Self::M,
    ) -> Result<BTreeMap<String, SecretBytes>, MaterialError>;
    /// The Secret type.
    fn secret_type(&self) -> &'static str;
    /// Whether making it is slow enough for a tracked task.
    fn is_slow(&self) -> bool;
    /// Whether making it costs less than an API round trip (see `absent_guesses`).
    fn is_quick(&self) -> bool;
    /// What is made, in words.
    fn describe(&self) -> String;
    /// The metric label of the algorithm.
    fn algorithm(&self) -> String;
    /// Whether rotation (`rotation.every`, `keysmith.dev/rotate`) makes new material (not for
    /// a chain copied from its pkey_cert: that follows the pkey_cert's rotation).
    fn rotates(&self) -> bool {
        true
    }
    /// Whether the fingerprint is keyed with a salt kept on the Secret (secret material).
    fn salted(&self) -> bool {
        false
    }
    /// For the status; `salt` keys the fingerprint of secret material.
    fn wrap(material: Self::M, salt: &str) -> KeyringMaterial;
}

impl Generated for Recipe {
    type M = Material;

    fn read(&self, data: &BTreeMap<String, Vec<u8>>) -> Result<Material, MaterialError> {
        Recipe::read(self, data)
    }

    fn check(&self, material: &Material) -> Result<(), Mismatch> {
        Recipe::check(self, material)
    }

    fn make(&self, progress: &Progress) -> Result<Material, MaterialError> {
        Recipe::make(self, progress)
    }

    fn secret_data(
        &self,
        material: &Material,
    ) -> Result<BTreeMap<String, SecretBytes>, MaterialError> {
        material.secret_data()
    }

    fn secret_type(&self) -> &'static str {
        Recipe::secret_type(self)
    }

    fn is_slow(&self) -> bool {
        Recipe::is_slow(self)
    }

    fn is_quick(&self) -> bool {
        Recipe::is_quick(self)
    }

    fn describe(&self) -> String {
        Recipe::describe(self)
    }

    fn algorithm(&self) -> String {
        self.algorithm_label()
    }

    fn salted(&self) -> bool {
        true
    }

    fn wrap(material: Material, salt: &str) -> KeyringMaterial {
        KeyringMaterial::Simple(material, salt.to_owned())
    }
}

/// ssh_private: an unencrypted OpenSSH key, as an SshKey writes it.
#[derive(Clone, Debug)]
pub struct SshPlan {
    /// The key type.
    pub kind: SshKeyKind,
    /// The key comment.
    pub comment: String,
}

impl Generated for SshPlan {
    type M = SshKeyPair;

    fn read(&self, data: &BTreeMap<String, Vec<u8>>) -> Result<SshKeyPair, MaterialError> {
        Ok(read_ssh_secret(data, None)?.key.with_comment(&self.comment))
    }

    fn check(&self, key: &SshKeyPair) -> Result<(), Mismatch> {
        if key.kind() == self.kind {
            Ok(())
        } else {
            Err(Mismatch(format!(
                "the key is {:?} {}, spec asks for {:?} {}",
                key.kind().algorithm(),
                key.kind().size(),
                self.kind.algorithm(),
                self.kind.size()
            )))
        }
    }

    fn make(&self, _: &Progress) -> Result<SshKeyPair, MaterialError> {
        SshKeyPair::generate(self.kind, &self.comment)
    }

    fn secret_data(
        &self,
        key: &SshKeyPair,
    ) -> Result<BTreeMap<String, SecretBytes>, MaterialError> {
        let material = SshMaterial {
            key: key.clone(),
            certificate: None,
        };
        ssh_secret_data(&material, &SshOutput::default())
    }

    fn secret_type(&self) -> &'static str {
        "kubernetes.io/ssh-auth"
    }

    fn is_slow(&self) -> bool {
        false
    }

    fn is_quick(&self) -> bool {
        self.kind.is_quick()
    }

    fn describe(&self) -> String {
        format!("an SSH {:?} key", self.kind)
    }

    fn algorithm(&self) -> String {
        format!("ssh-{:?}-{}", self.kind.algorithm(), self.kind.size())
    }

    fn wrap(key: SshKeyPair, _: &str) -> KeyringMaterial {
        KeyringMaterial::Ssh(Box::new(key))
    }
}

/// cert_chain: the pkey_cert's certificate chain, leaf to root, as `chain.pem`.
#[derive(Clone, Debug)]
pub struct ChainPlan {
    chain: Vec<Certificate>,
}

/// Secret key of a cert_chain.
pub const CHAIN_PEM: &str = "chain.pem";

impl ChainPlan {
    /// The chain of `material`: its certificate, the intermediates, then the root.
    pub fn of(material: &TlsMaterial) -> Self {
        let mut chain = material.chain.clone();
        if chain.last() != Some(&material.ca) {
            chain.push(material.ca.clone());
        }
        Self { chain }
    }
}

impl Generated for ChainPlan {
    type M = Vec<Certificate>;

    fn read(&self, data: &BTreeMap<String, Vec<u8>>) -> Result<Vec<Certificate>, MaterialError> {
        let pem = data
            .get(CHAIN_PEM)
            .ok_or_else(|| MaterialError::Invalid(format!("{CHAIN_PEM} is missing")))?;
        certificates_from_pem(pem).map_err(|e| MaterialError::Invalid(format!("{CHAIN_PEM}: {e}")))
    }

    fn check(&self, chain: &Vec<Certificate>) -> Result<(), Mismatch> {
        if *chain == self.chain {
            Ok(())
        } else {
            Err(Mismatch(
                "the pkey_cert's certificate chain has changed".to_owned(),
            ))
        }
    }

    fn make(&self, _: &Progress) -> Result<Vec<Certificate>, MaterialError> {
        Ok(self.chain.clone())
    }

    fn secret_data(
        &self,
        chain: &Vec<Certificate>,
    ) -> Result<BTreeMap<String, SecretBytes>, MaterialError> {
        let pem: String = chain.iter().map(Certificate::to_pem).collect();
        Ok(BTreeMap::from([(
            CHAIN_PEM.to_owned(),
            SecretBytes::new(pem.into_bytes()),
        )]))
    }

    fn secret_type(&self) -> &'static str {
        "Opaque"
    }

    fn is_slow(&self) -> bool {
        false
    }

    fn is_quick(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "the certificate chain".to_owned()
    }

    fn algorithm(&self) -> String {
        "chain".to_owned()
    }

    fn rotates(&self) -> bool {
        false
    }

    fn wrap(chain: Vec<Certificate>, _: &str) -> KeyringMaterial {
        KeyringMaterial::Chain(chain)
    }
}

/// What the reconcile settled on, to write and report.
pub(super) struct Settled<M> {
    /// The material.
    pub(super) material: M,
    /// Its generation count.
    pub(super) revision: i64,
    /// The rotate token it answers.
    pub(super) rotation_token: Option<String>,
    /// When it was generated.
    pub(super) generated_at: SystemTime,
    /// The previous material's data (rotation.keepPrevious).
    pub(super) previous: BTreeMap<String, Vec<u8>>,
    /// The key of its fingerprint.
    pub(super) salt: String,
}

/// Decides, generates and writes the material of `plan`.
pub async fn reconcile<G: Generated>(
    krs: &KeyringSecret,
    ctx: &Context,
    plan: G,
    annotations: BTreeMap<String, String>,
) -> Result<(Outcome, Option<KeyringMaterial>), Error> {
    let ns = namespace(krs);
    let (ownership, qualified) = read_target(ctx, krs, plan.is_quick()).await?;
    let now = ctx.clock.now();
    let decision = decide_off_thread(krs, &plan, &ownership, &qualified, now).await?;
    let existing_data = material_data(&ownership).unwrap_or_default();
    let kept_previous = previous_entries(&existing_data);
    let (settled, event) = match decision {
        Decision::Conflict(message) => {
            return Ok((Outcome::not_ready(reason::SECRET_CONFLICT, message), None));
        }
        Decision::Keep(material) => {
            let settled = Settled {
                material,
                revision: ownership.revision(),
                rotation_token: ownership.rotation_token(),
                generated_at: generated_at(ownership.secret()).unwrap_or(now),
                previous: kept_previous,
                salt: kept_salt(&ownership)?,
            };
            (settled, None)
        }
        Decision::Adopt(material) => {
            let settled = Settled {
                material,
                revision: 0,
                rotation_token: rotate_request(krs).map(str::to_owned),
                generated_at: now,
                previous: BTreeMap::new(),
                salt: new_salt()?,
            };
            let note = format!("adopted the existing material of Secret {qualified}");
            (settled, Some(("Adopted", note)))
        }
        Decision::Generate { why, current } => {
            let material = match generate(krs, ctx, &plan).await? {
                Generation::Done(material) => material,
                Generation::Running(progress) => {
                    return Ok(still_generating::<G>(krs, &ownership, current, progress));
                }
            };
            let rotation = matches!(why, Why::RotationDue | Why::RotationRequested);
            let previous = if keep_previous(krs) && rotation {
                current_entries(&existing_data)
            } else {
                BTreeMap::new()
            };
            let settled = Settled {
                material,
                revision: ownership.revision() + 1,
                // New material answers whatever rotation was requested so far.
                rotation_token: rotate_request(krs).map(str::to_owned),
                generated_at: now,
                previous,
                salt: new_salt()?,
            };
            let note = format!(
                "generated {} into Secret {qualified}: {}",
                plan.describe(),
                why.describe()
            );
            (settled, Some((why.event_reason(), note)))
        }
    };
    write(krs, ctx, &plan, &ownership, &settled, annotations).await?;
    if let Some((event, note)) = event {
        publish(ctx, krs, EventType::Normal, event, note);
        tracing::info!(name = %krs.name_any(), namespace = %ns, secret = %qualified, revision = settled.revision, "keyring secret written");
    }
    Ok(ready::<G>(krs, settled))
}

/// Reads the Secret and decides on a blocking thread: checking remote_access credentials
/// costs a bcrypt verification.
async fn decide_off_thread<G: Generated>(
    krs: &KeyringSecret,
    plan: &G,
    ownership: &Ownership,
    qualified: &str,
    now: SystemTime,
) -> Result<Decision<G::M>, Error> {
    let prepared = Prepared::of(krs, plan, ownership);
    let plan = plan.clone();
    let qualified = qualified.to_owned();
    tokio::task::spawn_blocking(move || prepared.decide(&plan, &qualified, now))
        .await
        .map_err(|e| Error::Generate(MaterialError::Crypto(format!("decide task failed: {e}"))))
}

/// Everything decide needs from the resource and its Secret, owned (to cross to a blocking
/// thread).
pub(super) struct Prepared {
    state: SecretSnapshot,
    rotate: Option<String>,
    rotate_at: Option<SystemTime>,
    existing_secret: ExistingSecretPolicy,
}

impl Prepared {
    /// What decide needs of `krs` and its Secret `ownership` for `plan`.
    pub(super) fn of<G: Generated>(krs: &KeyringSecret, plan: &G, ownership: &Ownership) -> Self {
        let rotates = plan.rotates();
        Self {
            state: SecretSnapshot::of(ownership, plan.secret_type()),
            rotate: rotate_request(krs).filter(|_| rotates).map(str::to_owned),
            rotate_at: rotation_every(krs)
                .filter(|_| rotates)
                .and_then(|every| Some(generated_at(ownership.secret())? + every)),
            existing_secret: krs.spec.target.existing_secret,
        }
    }

    /// Reads the material and decides (`qualified`: the Secret, for messages).
    pub(super) fn decide<G: Generated>(
        self,
        plan: &G,
        qualified: &str,
        now: SystemTime,
    ) -> Decision<G::M> {
        let found = self.state.read(plan);
        decide(
            Inputs {
                found,
                rotate_request: self.rotate.as_deref(),
                rotate_at: self.rotate_at,
                existing_secret: self.existing_secret,
                now,
                secret_name: qualified,
            },
            |m| plan.check(m),
        )
    }
}

/// The parts of the target Secret decide needs, owned (to cross to a blocking thread).
enum SecretSnapshot {
    Absent,
    Owned {
        data: BTreeMap<String, Vec<u8>>,
        rotation_token: Option<String>,
        generated_at: Option<SystemTime>,
        restored: bool,
    },
    Foreign {
        data: BTreeMap<String, Vec<u8>>,
        owner: Option<String>,
    },
}

impl SecretSnapshot {
    fn of(ownership: &Ownership, secret_type: &str) -> Self {
        match ownership {
            Ownership::Absent => Self::Absent,
            Ownership::Owned(secret) | Ownership::Restored { secret, .. } => Self::Owned {
                data: data_of(secret),
                rotation_token: annotation(secret, ROTATION_TOKEN_ANNOTATION),
                generated_at: generated_at(Some(secret)),
                restored: ownership.is_restored(),
            },
            Ownership::Foreign { secret, owner } => Self::Foreign {
                // Only a Secret of the type keysmith writes can be adopted (a type cannot
                // change without deleting the Secret).
                data: if secret.type_.as_deref().unwrap_or("Opaque") == secret_type {
                    data_of(secret)
                } else {
                    BTreeMap::new()
                },
                owner: owner.clone(),
            },
        }
    }

    fn read<G: Generated>(self, plan: &G) -> Found<G::M> {
        match self {
            Self::Absent => Found::Absent,
            Self::Owned {
                data,
                rotation_token,
                generated_at,
                restored,
            } => Found::Owned {
                material: plan.read(&data).map_err(|e| e.to_string()),
                rotation_token,
                generated_at,
                restored,
            },
            Self::Foreign { data, owner } => Found::Foreign {
                owner,
                material: plan.read(&data).ok(),
            },
        }
    }
}

/// New material, or the progress of a slow generation still running.
enum Generation<M> {
    Done(M),
    Running(String),
}

/// Makes the material: a slow one as a tracked task (collected by a later reconcile), the
/// others on a blocking thread now.
async fn generate<G: Generated>(
    krs: &KeyringSecret,
    ctx: &Context,
    plan: &G,
) -> Result<Generation<G::M>, Error> {
    let work = plan.clone();
    if !plan.is_slow() {
        let material = timed_generation(ctx, KIND, plan.algorithm(), move || {
            work.make(&Progress::default())
        })
        .await?;
        return Ok(Generation::Done(material));
    }
    match tracked(ctx, krs, &plan.describe(), plan.algorithm(), move |p| {
        work.make(p)
    }) {
        Poll::Running(progress) => Ok(Generation::Running(progress)),
        Poll::Finished(result) => result.map(Generation::Done).map_err(Error::Generate),
    }
}

/// A slow generation is running: Ready stays True on valid current material (a rotation),
/// else Ready=False with reason Generating; either way Generating=True with the progress.
fn still_generating<G: Generated>(
    krs: &KeyringSecret,
    ownership: &Ownership,
    current: Option<G::M>,
    progress: String,
) -> (Outcome, Option<KeyringMaterial>) {
    let Some(material) = current else {
        return (Outcome::generating(progress), None);
    };
    let settled = Settled {
        material,
        revision: ownership.revision(),
        rotation_token: ownership.rotation_token(),
        generated_at: generated_at(ownership.secret()).unwrap_or_else(SystemTime::now),
        previous: BTreeMap::new(),
        salt: kept_salt(ownership).unwrap_or_default(),
    };
    let (mut outcome, material) = ready::<G>(krs, settled);
    outcome.generating = Some(progress);
    (outcome, material)
}

/// Ready with the settled material; rotated next at `generatedAt + rotation.every`.
fn ready<G: Generated>(
    krs: &KeyringSecret,
    settled: Settled<G::M>,
) -> (Outcome, Option<KeyringMaterial>) {
    let material = G::wrap(settled.material, &settled.salt);
    let (reason, message) = match (&material, settled.revision) {
        (_, 0) => (reason::ADOPTED, "adopted".to_owned()),
        (KeyringMaterial::Chain(chain), _) => (
            reason::ISSUED,
            format!("certificate chain of {} certificates", chain.len()),
        ),
        _ => (reason::GENERATED, "generated".to_owned()),
    };
    let mut outcome = Outcome::ready(reason, message);
    outcome.ready.status = ConditionStatus::True;
    outcome.revision = Some(settled.revision);
    outcome.rotation_token = settled.rotation_token;
    outcome.generated_at = Some(settled.generated_at);
    let copied = matches!(material, KeyringMaterial::Chain(_));
    outcome.next_rotation = rotation_every(krs)
        .filter(|_| !copied)
        .map(|every| settled.generated_at + every);
    // A copied chain expires with its leaf: the same time status.notAfter shows.
    outcome.expires = material.not_after();
    (outcome, Some(material))
}

fn rotation_every(krs: &KeyringSecret) -> Option<std::time::Duration> {
    let every = krs.spec.rotation.as_ref()?.every.as_ref()?;
    Some(std::time::Duration::from(*every))
}

fn keep_previous(krs: &KeyringSecret) -> bool {
    krs.spec.rotation.as_ref().is_some_and(|r| r.keep_previous)
}

/// A new fingerprint salt: 16 random bytes, hex.
pub(super) fn new_salt() -> Result<String, Error> {
    random::fingerprint_salt().map_err(Error::Generate)
}

/// The fingerprint salt on our Secret, or a new one.
fn kept_salt(ownership: &Ownership) -> Result<String, Error> {
    match ownership
        .secret()
        .and_then(|s| annotation(s, FINGERPRINT_SALT_ANNOTATION))
    {
        Some(salt) => Ok(salt),
        None => new_salt(),
    }
}

/// The `<key>.previous` entries of existing data, without the suffix.
fn previous_entries(data: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    data.iter()
        .filter_map(|(k, v)| Some((k.strip_suffix(PREVIOUS_SUFFIX)?.to_owned(), v.clone())))
        .collect()
}

/// The current material's entries, kept as `.previous` after a rotation.
fn current_entries(data: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    data.iter()
        .filter(|(k, _)| !k.ends_with(PREVIOUS_SUFFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Writes the Secret unless it already holds exactly this.
async fn write<G: Generated>(
    krs: &KeyringSecret,
    ctx: &Context,
    plan: &G,
    ownership: &Ownership,
    settled: &Settled<G::M>,
    annotations: BTreeMap<String, String>,
) -> Result<(), Error> {
    let content = target_content(plan, settled, annotations).map_err(Error::Generate)?;
    write_target(ctx, krs, ownership, content).await
}

/// What a KeyringSecret writes to its target Secret for generated material: its data and
/// the `.previous` copies, the type, the fingerprint, when it was generated and the salt of
/// a keyed fingerprint, besides the kind's `annotations`.
pub(super) fn target_content<G: Generated>(
    plan: &G,
    settled: &Settled<G::M>,
    mut annotations: BTreeMap<String, String>,
) -> Result<TargetContent, MaterialError> {
    let mut data = plan.secret_data(&settled.material)?;
    for (key, value) in &settled.previous {
        data.insert(
            format!("{key}{PREVIOUS_SUFFIX}"),
            SecretBytes::new(value.clone()),
        );
    }
    annotations.insert(
        GENERATED_AT_ANNOTATION.to_owned(),
        time(settled.generated_at).0.to_string(),
    );
    if plan.salted() {
        annotations.insert(FINGERPRINT_SALT_ANNOTATION.to_owned(), settled.salt.clone());
    }
    Ok(TargetContent {
        type_: plan.secret_type(),
        fingerprint: G::wrap(settled.material.clone(), &settled.salt).fingerprint(),
        revision: settled.revision,
        rotation_token: settled.rotation_token.clone(),
        annotations,
        data,
    })
}
