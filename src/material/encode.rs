//! TLS material to the data of a `kubernetes.io/tls` Secret (api.md section 2).

use std::collections::BTreeMap;

use crate::api::certificate_key_pair::{CertificateKeyPairSpec, OutputFormat, Pkcs12Profile};

use super::x509::TlsMaterial;
use super::{MaterialError, SecretBytes, SecretString, pkcs12};

/// Secret key of the certificate chain (PEM).
pub const TLS_CRT: &str = "tls.crt";
/// Secret key of the private key (PEM, in the spec's encoding).
pub const TLS_KEY: &str = "tls.key";
/// Secret key of the root CA certificate (PEM).
pub const CA_CRT: &str = "ca.crt";
/// Secret key of the PKCS#12 keystore.
pub const KEYSTORE_P12: &str = "keystore.p12";
/// Secret key of the PKCS#12 truststore.
pub const TRUSTSTORE_P12: &str = "truststore.p12";
/// Secret key of the certificate (DER; the certificate alone, DER holds one).
pub const TLS_CRT_DER: &str = "tls.crt.der";
/// Secret key of the private key (DER, in the spec's encoding).
pub const TLS_KEY_DER: &str = "tls.key.der";
/// Secret key of the key followed by the chain (PEM).
pub const TLS_COMBINED_PEM: &str = "tls-combined.pem";

/// How the key is treated when writing the target Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyExport {
    /// Write `tls.key` (and keystores, DER key, combined PEM as the spec asks).
    Included,
    /// `privateKeyExport: Denied`: write certificates only.
    Omitted,
}

/// The data of the target Secret: `tls.crt`, `tls.key`, `ca.crt`, and as the spec asks
/// `keystore.p12`/`truststore.p12` (with `pkcs12_password`), `tls.crt.der`/`tls.key.der`,
/// `tls-combined.pem`.
///
/// With [`KeyExport::Omitted`] nothing holding the key is written (no `tls.key`,
/// `tls.key.der`, `keystore.p12`, `tls-combined.pem`); `truststore.p12` still is. Asking for
/// PKCS#12 without a password is `Invalid`.
pub fn tls_secret_data(
    material: &TlsMaterial,
    spec: &CertificateKeyPairSpec,
    export: KeyExport,
    pkcs12_password: Option<&SecretString>,
) -> Result<BTreeMap<String, SecretBytes>, MaterialError> {
    let mut data = plain_entries(material, spec, export)?;
    if let Some((profile, password)) = pkcs12_settings(spec, pkcs12_password)? {
        if export == KeyExport::Included {
            data.insert(
                KEYSTORE_P12.to_owned(),
                pkcs12::keystore(material, password, profile)?,
            );
        }
        data.insert(
            TRUSTSTORE_P12.to_owned(),
            pkcs12::truststore(material, password, profile)?,
        );
    }
    Ok(data)
}

/// True when `existing` Secret data is exactly what [`tls_secret_data`] would write for this
/// material, treating PKCS#12 files as equal when they open with the password and hold the
/// same key and certificates (their salts are random). Used to skip no-op writes.
///
/// PKCS#12 files written with the other profile's MAC are not current (a profile change is
/// rewritten). Any extra or missing Secret key makes the data not current.
pub fn tls_secret_data_is_current(
    existing: &BTreeMap<String, Vec<u8>>,
    material: &TlsMaterial,
    spec: &CertificateKeyPairSpec,
    export: KeyExport,
    pkcs12_password: Option<&SecretString>,
) -> Result<bool, MaterialError> {
    let plain = plain_entries(material, spec, export)?;
    let pkcs12 = pkcs12_settings(spec, pkcs12_password)?;
    let mut expected_keys: Vec<&str> = plain.keys().map(String::as_str).collect();
    if pkcs12.is_some() {
        if export == KeyExport::Included {
            expected_keys.push(KEYSTORE_P12);
        }
        expected_keys.push(TRUSTSTORE_P12);
    }
    expected_keys.sort_unstable();
    if !existing
        .keys()
        .map(String::as_str)
        .eq(expected_keys.iter().copied())
    {
        return Ok(false);
    }
    if plain
        .iter()
        .any(|(k, v)| existing.get(k).map(Vec::as_slice) != Some(v.expose()))
    {
        return Ok(false);
    }
    let Some((profile, password)) = pkcs12 else {
        return Ok(true);
    };
    let keystore_ok = match existing.get(KEYSTORE_P12) {
        Some(p12) => pkcs12::keystore_is_current(p12, material, password, profile),
        None => true,
    };
    let truststore_ok = existing
        .get(TRUSTSTORE_P12)
        .is_some_and(|p12| pkcs12::truststore_is_current(p12, material, password, profile));
    Ok(keystore_ok && truststore_ok)
}

/// Everything but the PKCS#12 files.
fn plain_entries(
    material: &TlsMaterial,
    spec: &CertificateKeyPairSpec,
    export: KeyExport,
) -> Result<BTreeMap<String, SecretBytes>, MaterialError> {
    let leaf = material.certificate()?;
    let chain_pem: String = material.chain.iter().map(|c| c.to_pem()).collect();
    let encoding = spec.private_key.encoding;
    let mut data = BTreeMap::new();
    data.insert(
        TLS_CRT.to_owned(),
        SecretBytes::new(chain_pem.clone().into_bytes()),
    );
    data.insert(
        CA_CRT.to_owned(),
        SecretBytes::new(material.ca.to_pem().into_bytes()),
    );
    let key_pem = match export {
        KeyExport::Included => Some(material.key.to_pem(encoding)?),
        KeyExport::Omitted => None,
    };
    if let Some(key_pem) = &key_pem {
        data.insert(TLS_KEY.to_owned(), SecretBytes::from(key_pem.clone()));
    }
    let formats = &spec.additional_output_formats;
    if formats.contains(&OutputFormat::DER) {
        data.insert(
            TLS_CRT_DER.to_owned(),
            SecretBytes::new(leaf.der().to_vec()),
        );
        if export == KeyExport::Included {
            data.insert(TLS_KEY_DER.to_owned(), material.key.to_der(encoding)?);
        }
    }
    if let Some(key_pem) = &key_pem
        && formats.contains(&OutputFormat::CombinedPEM)
    {
        let combined = SecretString::new(format!("{}{chain_pem}", key_pem.expose()));
        data.insert(TLS_COMBINED_PEM.to_owned(), SecretBytes::from(combined));
    }
    Ok(data)
}

/// The PKCS#12 profile and password, when the spec asks for keystores.
fn pkcs12_settings<'a>(
    spec: &CertificateKeyPairSpec,
    password: Option<&'a SecretString>,
) -> Result<Option<(Pkcs12Profile, &'a SecretString)>, MaterialError> {
    let Some(pkcs12) = spec.keystores.as_ref().and_then(|k| k.pkcs12.as_ref()) else {
        return Ok(None);
    };
    let password = password.ok_or_else(|| {
        MaterialError::Invalid("keystores.pkcs12 needs the keystore password".to_owned())
    })?;
    Ok(Some((pkcs12.profile, password)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::pkey::PrivateKey;
    use crate::material::x509::testing::{issue_new, openssl_ok, spec, write_file};
    use serde_json::json;

    fn p12_spec(extra: serde_json::Value) -> CertificateKeyPairSpec {
        let mut base = json!({
            "commonName": "web.example.com",
            "dnsNames": ["web.example.com"],
            "keystores": {"pkcs12": {"passwordSecretRef": {"name": "p", "key": "password"}}},
            "additionalOutputFormats": ["DER", "CombinedPEM"],
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        spec(base)
    }

    fn as_plain(data: &BTreeMap<String, SecretBytes>) -> BTreeMap<String, Vec<u8>> {
        data.iter()
            .map(|(k, v)| (k.clone(), v.expose().to_vec()))
            .collect()
    }

    fn pass() -> SecretString {
        SecretString::new("changeit".to_owned())
    }

    #[test]
    fn writes_every_key_and_openssl_reads_them() {
        let root = issue_new(&spec(json!({"commonName": "Root", "isCA": true})), None);
        let intermediate = issue_new(
            &spec(json!({"commonName": "Int", "isCA": true})),
            Some(&root),
        );
        let spec = p12_spec(json!({"privateKey": {"algorithm": "RSA", "encoding": "PKCS1"}}));
        let leaf = issue_new(&spec, Some(&intermediate));
        let data = tls_secret_data(&leaf, &spec, KeyExport::Included, Some(&pass())).unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                CA_CRT,
                KEYSTORE_P12,
                TLS_COMBINED_PEM,
                TLS_CRT,
                TLS_CRT_DER,
                TLS_KEY,
                TLS_KEY_DER,
                TRUSTSTORE_P12
            ]
        );
        let text = |k: &str| String::from_utf8(data[k].expose().to_vec()).unwrap();
        assert!(text(TLS_KEY).starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert_eq!(
            text(TLS_CRT),
            leaf.chain[0].to_pem() + &intermediate.chain[0].to_pem()
        );
        assert_eq!(text(CA_CRT), root.ca.to_pem());
        let combined = text(TLS_COMBINED_PEM);
        assert!(combined.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(combined.ends_with(&text(TLS_CRT)));
        assert_eq!(combined.matches("BEGIN CERTIFICATE").count(), 2);

        let dir = tempfile::tempdir().unwrap();
        let crt_der = write_file(&dir, "tls.crt.der", data[TLS_CRT_DER].expose());
        let subject = openssl_ok(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            crt_der.to_str().unwrap(),
            "-noout",
            "-subject",
        ]);
        assert!(subject.contains("web.example.com"), "{subject}");
        let key_der = write_file(&dir, "tls.key.der", data[TLS_KEY_DER].expose());
        openssl_ok(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            key_der.to_str().unwrap(),
            "-check",
            "-noout",
        ]);
        let combined_path = write_file(&dir, "combined.pem", combined.as_bytes());
        openssl_ok(&[
            "pkey",
            "-in",
            combined_path.to_str().unwrap(),
            "-check",
            "-noout",
        ]);
        openssl_ok(&["x509", "-in", combined_path.to_str().unwrap(), "-noout"]);
        // The key read back is the same key.
        let back = PrivateKey::from_pem(text(TLS_KEY).as_bytes()).unwrap();
        assert_eq!(
            back.public_key_der().unwrap(),
            leaf.key.public_key_der().unwrap()
        );
    }

    #[test]
    fn denied_export_writes_no_key_anywhere() {
        let spec = p12_spec(json!({"privateKeyExport": "Denied"}));
        let material = issue_new(&spec, None);
        let data = tls_secret_data(&material, &spec, KeyExport::Omitted, Some(&pass())).unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(keys, [CA_CRT, TLS_CRT, TLS_CRT_DER, TRUSTSTORE_P12]);
        for value in data.values() {
            let text = String::from_utf8_lossy(value.expose());
            assert!(!text.contains("PRIVATE KEY"));
        }
        assert!(
            tls_secret_data_is_current(
                &as_plain(&data),
                &material,
                &spec,
                KeyExport::Omitted,
                Some(&pass())
            )
            .unwrap()
        );
    }

    #[test]
    fn self_signed_ca_crt_is_the_certificate() {
        let spec = spec(json!({"commonName": "self"}));
        let material = issue_new(&spec, None);
        let data = tls_secret_data(&material, &spec, KeyExport::Included, None).unwrap();
        assert_eq!(data[TLS_CRT], data[CA_CRT]);
        assert_eq!(data.len(), 3);
    }

    #[test]
    fn pkcs12_without_password_is_invalid() {
        let spec = p12_spec(json!({}));
        let material = issue_new(&spec, None);
        let err = tls_secret_data(&material, &spec, KeyExport::Included, None).unwrap_err();
        assert!(matches!(err, MaterialError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn is_current_detects_every_change() {
        let spec = p12_spec(json!({}));
        let material = issue_new(&spec, None);
        let data = as_plain(
            &tls_secret_data(&material, &spec, KeyExport::Included, Some(&pass())).unwrap(),
        );
        let current = |d: &BTreeMap<String, Vec<u8>>| {
            tls_secret_data_is_current(d, &material, &spec, KeyExport::Included, Some(&pass()))
                .unwrap()
        };
        assert!(current(&data));
        // Freshly written again (new salts) is still current.
        let again = as_plain(
            &tls_secret_data(&material, &spec, KeyExport::Included, Some(&pass())).unwrap(),
        );
        assert_ne!(again[KEYSTORE_P12], data[KEYSTORE_P12]);
        assert!(current(&again));
        // One changed byte in any key.
        for key in data.keys() {
            let mut changed = data.clone();
            let bytes = changed.get_mut(key).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
            assert!(!current(&changed), "change of {key} not detected");
        }
        // A key added or removed.
        let mut added = data.clone();
        added.insert("extra".to_owned(), b"x".to_vec());
        assert!(!current(&added));
        for key in data.keys() {
            let mut removed = data.clone();
            removed.remove(key);
            assert!(!current(&removed), "removal of {key} not detected");
        }
        // Another keystore password.
        let other = SecretString::new("other".to_owned());
        assert!(
            !tls_secret_data_is_current(&data, &material, &spec, KeyExport::Included, Some(&other))
                .unwrap()
        );
        // Another profile.
        let legacy = p12_spec(
            json!({"keystores": {"pkcs12": {"passwordSecretRef": {"name": "p", "key": "password"}, "profile": "Legacy"}}}),
        );
        assert!(
            !tls_secret_data_is_current(
                &data,
                &material,
                &legacy,
                KeyExport::Included,
                Some(&pass())
            )
            .unwrap()
        );
        // Another key encoding.
        let pkcs1 = p12_spec(json!({"privateKey": {"encoding": "PKCS1"}}));
        assert!(
            !tls_secret_data_is_current(
                &data,
                &material,
                &pkcs1,
                KeyExport::Included,
                Some(&pass())
            )
            .unwrap()
        );
        // Export now denied: the key must go.
        assert!(
            !tls_secret_data_is_current(&data, &material, &spec, KeyExport::Omitted, Some(&pass()))
                .unwrap()
        );
    }
}
