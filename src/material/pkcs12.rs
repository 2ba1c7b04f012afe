//! PKCS#12 keystores and truststores (p12-keystore), Modern and Legacy profiles.
//!
//! - `Modern`: key and certificates encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC),
//!   HMAC-SHA256 integrity MAC. What Java 8u301+/11.0.12+ write by default.
//! - `Legacy`: key and certificates encrypted with pbeWithSHAAnd3-KeyTripleDES-CBC,
//!   HMAC-SHA1 MAC, for old Java and Windows. OpenSSL 3 reads it without the legacy provider
//!   (RC2-40 for certificates, the classic OpenSSL default, would need it).
//!
//! Both use 10,000 iterations for the key derivation and the MAC (the JDK default).
//! The keystore holds one key entry, alias `certificate`, with the chain leaf, intermediates,
//! root (what `keytool -list` users expect; a self-signed certificate appears once). The
//! truststore holds the root as a trusted certificate entry, alias `ca` (with the Java
//! "trusted for any usage" attribute, so keytool lists it as `trustedCertEntry`).

use p12_keystore::{
    EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12Archive, PrivateKeyChain,
};
use x509_parser::asn1_rs::{Any, FromDer, Oid};

use crate::api::certificate_key_pair::Pkcs12Profile;

use super::fingerprint::sha1;
use super::x509::{Certificate, TlsMaterial};
use super::{MaterialError, SecretBytes, SecretString};

/// Alias of the key entry in `keystore.p12`.
pub const KEYSTORE_ALIAS: &str = "certificate";
/// Alias of the trusted CA entry in `truststore.p12`.
pub const TRUSTSTORE_ALIAS: &str = "ca";

/// Iterations of the password-based key derivation and of the MAC key derivation.
const ITERATIONS: u32 = 10_000;

/// `keystore.p12`: the key with its certificate chain (alias "certificate").
pub fn keystore(
    material: &TlsMaterial,
    password: &SecretString,
    profile: Pkcs12Profile,
) -> Result<SecretBytes, MaterialError> {
    let mut store = KeyStore::new();
    store.add_entry(
        KEYSTORE_ALIAS,
        KeyStoreEntry::PrivateKeyChain(key_chain(material)?),
    );
    write(&store, password, profile)
}

/// `truststore.p12`: the root CA certificate as a trusted entry (alias "ca").
pub fn truststore(
    material: &TlsMaterial,
    password: &SecretString,
    profile: Pkcs12Profile,
) -> Result<SecretBytes, MaterialError> {
    let mut store = KeyStore::new();
    store.add_entry(
        TRUSTSTORE_ALIAS,
        KeyStoreEntry::Certificate(p12_certificate(&material.ca)?),
    );
    write(&store, password, profile)
}

/// True when `existing` opens with `password`, was written with `profile`'s MAC, and holds
/// exactly what [`keystore`] writes for `material`: one key (alias "certificate", the same
/// key) and the same certificates in the same order. Salts and IVs are not compared.
pub fn keystore_is_current(
    existing: &[u8],
    material: &TlsMaterial,
    password: &SecretString,
    profile: Pkcs12Profile,
) -> bool {
    let Some(archive) = open(existing, password, profile) else {
        return false;
    };
    let Ok(leaf) = material.certificate() else {
        return false;
    };
    let local_key_id = sha1(leaf.der());
    let [key] = archive.keys.as_slice() else {
        return false;
    };
    let key_ok = key.friendly_name.as_deref() == Some(KEYSTORE_ALIAS)
        && key.local_key_id.as_ref().map(|id| id.as_ref()) == Some(local_key_id.as_slice())
        && key.key.as_der() == material.key.pkcs8_der();
    let certs: Vec<&[u8]> = archive
        .certs
        .iter()
        .filter(|c| !c.trusted)
        .map(|c| c.cert.as_der())
        .collect();
    let expected: Vec<&[u8]> = keystore_certificates(material)
        .into_iter()
        .map(Certificate::der)
        .collect();
    let leaf_bag_ok = archive
        .certs
        .first()
        .is_some_and(|c| c.local_key_id.as_deref() == Some(local_key_id.as_slice()));
    key_ok && leaf_bag_ok && certs == expected && certs.len() == archive.certs.len()
}

/// True when `existing` opens with `password`, was written with `profile`'s MAC, and holds
/// exactly the root of `material` as a trusted certificate with alias "ca" (nothing else).
pub fn truststore_is_current(
    existing: &[u8],
    material: &TlsMaterial,
    password: &SecretString,
    profile: Pkcs12Profile,
) -> bool {
    let Some(archive) = open(existing, password, profile) else {
        return false;
    };
    let [cert] = archive.certs.as_slice() else {
        return false;
    };
    archive.keys.is_empty()
        && archive.secrets.is_empty()
        && cert.trusted
        && cert.friendly_name.as_deref() == Some(TRUSTSTORE_ALIAS)
        && cert.cert.as_der() == material.ca.der()
}

/// The certificates of the key entry: leaf, intermediates, root (each once).
fn keystore_certificates(material: &TlsMaterial) -> Vec<&Certificate> {
    let mut certs: Vec<&Certificate> = material.chain.iter().collect();
    if !certs.contains(&&material.ca) {
        certs.push(&material.ca);
    }
    certs
}

fn key_chain(material: &TlsMaterial) -> Result<PrivateKeyChain, MaterialError> {
    let leaf = material.certificate()?;
    let key = p12_keystore::PrivateKey::from_der(material.key.pkcs8_der())
        .map_err(|_| MaterialError::Crypto("the key cannot be put in a keystore".to_owned()))?;
    let certs = keystore_certificates(material)
        .into_iter()
        .map(p12_certificate)
        .collect::<Result<Vec<_>, _>>()?;
    // The SHA-1 of the certificate, as OpenSSL sets the localKeyId.
    Ok(PrivateKeyChain::new(sha1(leaf.der()), key, certs))
}

fn p12_certificate(cert: &Certificate) -> Result<p12_keystore::Certificate, MaterialError> {
    p12_keystore::Certificate::from_der(cert.der())
        .map_err(|_| MaterialError::Invalid("a certificate cannot be put in a keystore".to_owned()))
}

/// Encryption and MAC algorithms of a profile.
fn algorithms(profile: Pkcs12Profile) -> (EncryptionAlgorithm, MacAlgorithm) {
    match profile {
        Pkcs12Profile::Modern => (
            EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
            MacAlgorithm::HmacSha256,
        ),
        Pkcs12Profile::Legacy => (
            EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
            MacAlgorithm::HmacSha1,
        ),
    }
}

/// DER OID of the MAC digest a profile uses (SHA-256 or SHA-1).
fn mac_digest_oid(profile: Pkcs12Profile) -> &'static str {
    match profile {
        Pkcs12Profile::Modern => "2.16.840.1.101.3.4.2.1",
        Pkcs12Profile::Legacy => "1.3.14.3.2.26",
    }
}

fn write(
    store: &KeyStore,
    password: &SecretString,
    profile: Pkcs12Profile,
) -> Result<SecretBytes, MaterialError> {
    let (encryption, mac) = algorithms(profile);
    store
        .writer(password.expose())
        .encryption_algorithm(encryption)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(mac)
        .mac_iterations(ITERATIONS)
        .write()
        .map(SecretBytes::new)
        .map_err(|_| MaterialError::Crypto("writing the PKCS#12 file failed".to_owned()))
}

/// What a PKCS#12 file holds, as far as it can be read without or with its password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs12Contents {
    /// The profile its MAC digest belongs to (SHA-256: Modern, SHA-1: Legacy), if any.
    pub profile: Option<Pkcs12Profile>,
    /// The MAC digest's OID, as `1.2.3…` (also when no profile uses it).
    pub mac_digest: Option<String>,
    /// The entries, when it was opened with a password.
    pub entries: Option<Vec<Pkcs12Entry>>,
}

/// One entry (bag) of a PKCS#12 file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pkcs12Entry {
    /// A private key: its alias and type (never the key).
    Key {
        /// The friendly name.
        alias: Option<String>,
        /// The key type, when keysmith knows it.
        kind: Option<super::pkey::KeyKind>,
    },
    /// A certificate.
    Certificate {
        /// The friendly name.
        alias: Option<String>,
        /// Whether it is marked trusted (a Java trustedCertEntry).
        trusted: bool,
        /// The certificate.
        certificate: Certificate,
    },
}

/// Reads the MAC of `data` and, with `password`, its entries. A password that does not
/// open it is `Invalid`; the password never appears in errors.
pub fn contents(
    data: &[u8],
    password: Option<&SecretString>,
) -> Result<Pkcs12Contents, MaterialError> {
    let digest = mac_digest(data).map(|oid| oid.to_id_string());
    let profile = [Pkcs12Profile::Modern, Pkcs12Profile::Legacy]
        .into_iter()
        .find(|p| digest.as_deref() == Some(mac_digest_oid(*p)));
    let entries = match password {
        None => None,
        Some(password) => {
            let archive = Pkcs12Archive::from_pkcs12(data, password.expose()).map_err(|_| {
                MaterialError::Invalid(
                    "the PKCS#12 file does not open with the password (or is damaged)".to_owned(),
                )
            })?;
            Some(entries(&archive))
        }
    };
    Ok(Pkcs12Contents {
        profile,
        mac_digest: digest,
        entries,
    })
}

fn entries(archive: &Pkcs12Archive) -> Vec<Pkcs12Entry> {
    let keys = archive.keys.iter().map(|bag| Pkcs12Entry::Key {
        alias: bag.friendly_name.clone(),
        kind: super::pkey::PrivateKey::from_pkcs8_der(bag.key.as_der())
            .ok()
            .map(|k| k.kind()),
    });
    let certs = archive.certs.iter().map(|bag| Pkcs12Entry::Certificate {
        alias: bag.friendly_name.clone(),
        trusted: bag.trusted,
        certificate: Certificate::from_der(bag.cert.as_der().to_vec()),
    });
    keys.chain(certs).collect()
}

/// The decrypted bags of `data`, when it opens with `password` and its MAC is `profile`'s.
fn open(data: &[u8], password: &SecretString, profile: Pkcs12Profile) -> Option<Pkcs12Archive> {
    if mac_digest(data)?.to_id_string() != mac_digest_oid(profile) {
        return None;
    }
    Pkcs12Archive::from_pkcs12(data, password.expose()).ok()
}

/// The digest algorithm of a PFX's MAC: `PFX { version, authSafe, macData { mac DigestInfo {
/// digestAlgorithm { algorithm OID, .. }, .. }, .. } }`. p12-keystore does not expose it.
fn mac_digest(data: &[u8]) -> Option<Oid<'_>> {
    let (_, pfx) = Any::from_der(data).ok()?;
    let (rest, _version) = Any::from_der(pfx.data).ok()?;
    let (rest, _auth_safe) = Any::from_der(rest).ok()?;
    let (_, mac_data) = Any::from_der(rest).ok()?;
    let (_, digest_info) = Any::from_der(mac_data.data).ok()?;
    let (_, algorithm) = Any::from_der(digest_info.data).ok()?;
    let (_, oid) = Oid::from_der(algorithm.data).ok()?;
    Some(oid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::x509::testing::{issue_new, openssl, openssl_ok, spec, write_file};
    use serde_json::json;

    fn password() -> SecretString {
        SecretString::new("s3cret-pass".to_owned())
    }

    /// root → intermediate → leaf.
    fn three_level() -> (TlsMaterial, TlsMaterial, TlsMaterial) {
        let root = issue_new(&spec(json!({"commonName": "Root CA", "isCA": true})), None);
        let intermediate = issue_new(
            &spec(json!({"commonName": "Intermediate CA", "isCA": true, "maxPathLength": 0})),
            Some(&root),
        );
        let leaf = issue_new(
            &spec(json!({"commonName": "leaf.example.com", "dnsNames": ["leaf.example.com"]})),
            Some(&intermediate),
        );
        (root, intermediate, leaf)
    }

    fn pkcs12_info(path: &std::path::Path, pass: &str) -> std::process::Output {
        openssl(&[
            "pkcs12",
            "-in",
            path.to_str().unwrap(),
            "-passin",
            &format!("pass:{pass}"),
            "-info",
            "-nodes",
        ])
    }

    #[test]
    fn contents_list_aliases_and_certificates_but_no_key() {
        let (root, _, leaf) = three_level();
        for profile in [Pkcs12Profile::Modern, Pkcs12Profile::Legacy] {
            let ks = keystore(&leaf, &password(), profile).unwrap();
            let closed = contents(ks.expose(), None).unwrap();
            assert_eq!(closed.profile, Some(profile));
            assert_eq!(closed.entries, None);
            let open = contents(ks.expose(), Some(&password())).unwrap();
            let entries = open.entries.unwrap();
            assert!(entries.contains(&Pkcs12Entry::Key {
                alias: Some(KEYSTORE_ALIAS.to_owned()),
                kind: Some(leaf.key.kind()),
            }));
            let certs: Vec<&Certificate> = entries
                .iter()
                .filter_map(|e| match e {
                    Pkcs12Entry::Certificate { certificate, .. } => Some(certificate),
                    Pkcs12Entry::Key { .. } => None,
                })
                .collect();
            assert_eq!(certs, keystore_certificates(&leaf));
            let wrong = SecretString::new("wrong".to_owned());
            let err = contents(ks.expose(), Some(&wrong)).unwrap_err().to_string();
            assert!(!err.contains("wrong") && !err.contains("s3cret"), "{err}");
            let ts = truststore(&leaf, &password(), profile).unwrap();
            let trust = contents(ts.expose(), Some(&password())).unwrap();
            assert_eq!(
                trust.entries.unwrap(),
                [Pkcs12Entry::Certificate {
                    alias: Some(TRUSTSTORE_ALIAS.to_owned()),
                    trusted: true,
                    certificate: root.ca.clone(),
                }]
            );
        }
    }

    #[test]
    fn keystore_and_truststore_open_with_openssl_in_both_profiles() {
        let (root, intermediate, leaf) = three_level();
        let dir = tempfile::tempdir().unwrap();
        for (profile, enc_marker, mac_marker) in [
            (
                Pkcs12Profile::Modern,
                "PBES2, PBKDF2, AES-256-CBC",
                "MAC: sha256",
            ),
            (
                Pkcs12Profile::Legacy,
                "pbeWithSHA1And3-KeyTripleDES-CBC",
                "MAC: sha1",
            ),
        ] {
            let ks = keystore(&leaf, &password(), profile).unwrap();
            let path = write_file(&dir, "keystore.p12", ks.expose());
            let out = pkcs12_info(&path, "s3cret-pass");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{profile:?}: {text}");
            assert!(text.contains(enc_marker), "{profile:?}: {text}");
            assert!(text.contains(mac_marker), "{profile:?}: {text}");
            assert!(text.contains("-----BEGIN PRIVATE KEY-----"), "{text}");
            assert!(text.contains("friendlyName: certificate"), "{text}");
            assert_eq!(
                text.matches("-----BEGIN CERTIFICATE-----").count(),
                3,
                "{text}"
            );
            for cert in [&leaf.chain[0], &intermediate.chain[0], &root.ca] {
                let pem = cert.to_pem();
                let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
                let text_body: String = text.lines().collect();
                assert!(
                    text_body.contains(&body),
                    "{profile:?}: a certificate is missing"
                );
            }
            // The key inside is ours: same public key as the leaf.
            let pkey_out = openssl_ok(&[
                "pkcs12",
                "-in",
                path.to_str().unwrap(),
                "-passin",
                "pass:s3cret-pass",
                "-nocerts",
                "-nodes",
            ]);
            let key_path = write_file(&dir, "k.pem", pkey_out.as_bytes());
            let pub_pem = openssl_ok(&["pkey", "-in", key_path.to_str().unwrap(), "-pubout"]);
            let ours = crate::material::pkey::pem_encode(
                "PUBLIC KEY",
                &leaf.key.public_key_der().unwrap(),
            );
            assert!(pub_pem.contains(ours.trim()), "{profile:?}");

            // A wrong password fails.
            assert!(!pkcs12_info(&path, "wrong").status.success());

            let ts = truststore(&leaf, &password(), profile).unwrap();
            let ts_path = write_file(&dir, "truststore.p12", ts.expose());
            let out = pkcs12_info(&ts_path, "s3cret-pass");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("friendlyName: ca"), "{text}");
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            assert_eq!(
                text.matches("-----BEGIN CERTIFICATE-----").count(),
                1,
                "{text}"
            );
            let root_body: String = root
                .ca
                .to_pem()
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            assert!(text.lines().collect::<String>().contains(&root_body));
            assert!(!pkcs12_info(&ts_path, "wrong").status.success());
        }
    }

    #[test]
    fn self_signed_keystore_holds_the_certificate_once() {
        let material = issue_new(&spec(json!({"commonName": "self"})), None);
        let ks = keystore(&material, &password(), Pkcs12Profile::Modern).unwrap();
        let archive = Pkcs12Archive::from_pkcs12(ks.expose(), "s3cret-pass").unwrap();
        assert_eq!(archive.keys.len(), 1);
        assert_eq!(archive.certs.len(), 1);
        let store = KeyStore::from_pkcs12(
            ks.expose(),
            "s3cret-pass",
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .unwrap();
        let (alias, chain) = store.private_key_chain().unwrap();
        assert_eq!(alias, "certificate");
        assert_eq!(chain.certs().len(), 1);
    }

    #[test]
    fn is_current_ignores_salts_but_not_content_password_or_profile() {
        let (root, _intermediate, leaf) = three_level();
        let pass = password();
        for profile in [Pkcs12Profile::Modern, Pkcs12Profile::Legacy] {
            let other = match profile {
                Pkcs12Profile::Modern => Pkcs12Profile::Legacy,
                Pkcs12Profile::Legacy => Pkcs12Profile::Modern,
            };
            let ks = keystore(&leaf, &pass, profile).unwrap();
            let ts = truststore(&leaf, &pass, profile).unwrap();
            // Fresh files differ byte-wise (random salts) but are current.
            assert_ne!(keystore(&leaf, &pass, profile).unwrap(), ks);
            assert!(keystore_is_current(ks.expose(), &leaf, &pass, profile));
            assert!(truststore_is_current(ts.expose(), &leaf, &pass, profile));
            let wrong = SecretString::new("other".to_owned());
            assert!(!keystore_is_current(ks.expose(), &leaf, &wrong, profile));
            assert!(!truststore_is_current(ts.expose(), &leaf, &wrong, profile));
            assert!(!keystore_is_current(ks.expose(), &leaf, &pass, other));
            assert!(!truststore_is_current(ts.expose(), &leaf, &pass, other));
            // Different material: the root's own keystore.
            assert!(!keystore_is_current(ks.expose(), &root, &pass, profile));
            assert!(!keystore_is_current(ts.expose(), &leaf, &pass, profile));
            assert!(!truststore_is_current(ks.expose(), &leaf, &pass, profile));
            assert!(!keystore_is_current(b"garbage", &leaf, &pass, profile));
        }
    }
}
