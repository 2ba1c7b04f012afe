//! Secrets as users or other tools may have written them, read back the ways keysmith reads
//! them: `keysmith inspect secret` (every section: TLS, keystores, SSH, keyring types, KMIP
//! keys, `.previous` copies), the adoption and idempotency checks of each controller (TLS
//! material against a spec, keystores, SSH keys with a passphrase, keyring material against
//! its recipe, KMIP authentication keys).
//!
//! The input is a list of entries (`keysmith_fuzz::entries`): data keys and their values,
//! plus `@salt` (the fingerprint-salt annotation), `@passphrase` (the SSH passphrase) and
//! `@password` (the keystore password).
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use keysmith::api::certificate_key_pair::CertificateKeyPairSpec;
use keysmith::api::ssh_key::SshKeySpec;
use keysmith::cli::inspect;
use keysmith::material::SecretString;
use keysmith::material::encode::{KeyExport, tls_secret_data_is_current};
use keysmith::material::keyring::{DhRecipe, Recipe};
use keysmith::material::parse::check_against_spec;
use keysmith::material::pkey::KeyKind;
use keysmith::material::ssh::{SshOutput, read_ssh_secret, ssh_secret_data_is_current};
use keysmith::reconcile::certificate_key_pair::{decide::renewal_time, tls_material_from_secret};
use keysmith::reconcile::kms_auth_key::read_key;
use keysmith::reconcile::ssh_key::decide::key_matches;
use keysmith_fuzz::{entries, text};
use libfuzzer_sys::fuzz_target;

/// A fixed clock: 2027-01-15.
const NOW: Duration = Duration::from_secs(1_800_000_000);

fuzz_target!(|data: &[u8]| {
    let input = Input::from(data);
    let now = SystemTime::UNIX_EPOCH + NOW;
    let secret = input.secret();
    let _ = inspect::text::render(&inspect::report(&secret, &Ok(input.password.clone()), now));
    tls(&secret, &input);
    ssh(&input);
    keyring(&input.data);
    let _ = read_key(&input.data);
});

/// What the fuzz input says.
struct Input {
    data: BTreeMap<String, Vec<u8>>,
    salt: Option<String>,
    passphrase: Option<SecretString>,
    password: Option<SecretString>,
}

impl From<&[u8]> for Input {
    fn from(bytes: &[u8]) -> Self {
        let mut input = Self {
            data: BTreeMap::new(),
            salt: None,
            passphrase: None,
            password: None,
        };
        for (name, value) in entries(bytes) {
            match name.as_str() {
                "@salt" => input.salt = Some(text(&value)),
                "@passphrase" => input.passphrase = Some(SecretString::new(text(&value))),
                "@password" => input.password = Some(SecretString::new(text(&value))),
                _ => {
                    input.data.insert(name, value);
                }
            }
        }
        input
    }
}

impl Input {
    /// The Secret: the data, and the salt annotation when there is one.
    fn secret(&self) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.name = Some("fuzz".to_owned());
        secret.metadata.namespace = Some("fuzz".to_owned());
        secret.metadata.annotations = self.salt.as_ref().map(|salt| {
            BTreeMap::from([("keysmith.dev/fingerprint-salt".to_owned(), salt.clone())])
        });
        let data = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.clone())));
        secret.data = Some(data.collect());
        secret
    }
}

/// A CertificateKeyPair spec with both keystores.
fn tls_spec() -> &'static CertificateKeyPairSpec {
    static SPEC: OnceLock<CertificateKeyPairSpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_json::from_value(serde_json::json!({
            "commonName": "fuzz",
            "dnsNames": ["fuzz.example"],
            "keystores": {"pkcs12": {"passwordSecretRef": {"name": "p", "key": "password"}}},
            "additionalOutputFormats": ["DER", "CombinedPEM"],
        }))
        .expect("the fixed CertificateKeyPair spec parses")
    })
}

/// An SshKey spec (Ed25519).
fn ssh_spec() -> &'static SshKeySpec {
    static SPEC: OnceLock<SshKeySpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_json::from_value(serde_json::json!({"key": {"algorithm": "Ed25519"}}))
            .expect("the fixed SshKey spec parses")
    })
}

/// TLS material as a CertificateKeyPair adopts it, then checked against a spec and its
/// Secret data (keystores included) compared with what keysmith would write.
fn tls(secret: &Secret, input: &Input) {
    let Ok(material) = tls_material_from_secret(secret, None) else {
        return;
    };
    let spec = tls_spec();
    let _ = check_against_spec(&material, spec, None);
    let _ = check_against_spec(&material, spec, Some(&material));
    let _ = renewal_time(spec, &material);
    let _ = tls_secret_data_is_current(
        &input.data,
        &material,
        spec,
        KeyExport::Included,
        input.password.as_ref(),
    );
}

/// SSH material as an SshKey adopts it, and its Secret data compared with what keysmith
/// would write.
fn ssh(input: &Input) {
    let Ok(material) = read_ssh_secret(&input.data, input.passphrase.as_ref()) else {
        return;
    };
    let _ = key_matches(ssh_spec(), &material.key);
    let hostnames = ["fuzz.example".to_owned()];
    let output = SshOutput {
        passphrase: input.passphrase.as_ref(),
        hostnames: &hostnames,
        previous: None,
    };
    let _ = ssh_secret_data_is_current(&input.data, &material, &output);
}

/// Keyring material of every non-certificate type, read and checked against its recipe.
fn keyring(data: &BTreeMap<String, Vec<u8>>) {
    let recipes = [
        Recipe::Psk { length: 32 },
        Recipe::Dh(DhRecipe::Group(
            keysmith::api::keyring_secret::DhGroup::ffdhe2048,
        )),
        Recipe::Dh(DhRecipe::Generate(2048)),
        Recipe::OpenVpn,
        Recipe::RemoteAccess {
            username: "fuzz".to_owned(),
            password_length: 24,
        },
        Recipe::Uftp(KeyKind::EcdsaP256),
    ];
    for recipe in recipes {
        if let Ok(material) = recipe.read(data) {
            let _ = recipe.check(&material);
        }
    }
}
