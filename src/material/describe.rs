//! What public material says, for people (`keysmith inspect`): certificates (names, key,
//! constraints, usages, who signed them), public keys, OpenSSH public keys, private key
//! files' envelopes and certificates. Only public parts are read out: a private key is
//! described by its type, an encrypted one by how it is encrypted.

use std::time::UNIX_EPOCH;

use ssh_key::public::KeyData;
use ssh_key::{EcdsaCurve, HashAlg, PrivateKey as SshPrivateKey, PublicKey};
use x509_parser::asn1_rs::FromDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::MaterialError;
use super::pkey::{KeyKind, PrivateKey, pem_encode};
use super::ssh::{SshCertificate, SshCertificateInfo, rsa_bits};
use super::x509::{Certificate, CertificateInfo, parse_certificate, verify_signed_by};

/// A certificate, described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateDetails {
    /// Subject, issuer, serial, validity, fingerprints, CA flag, self-signed.
    pub info: CertificateInfo,
    /// Subject alternative names as `openssl x509 -text` prints them (`DNS:…`,
    /// `IP Address:…`, `email:…`, `URI:…`).
    pub names: Vec<String>,
    /// The key type, e.g. `ECDSA P-256`, `RSA 4096`, `Ed25519`.
    pub key: String,
    /// basicConstraints pathLen, for CAs that set one.
    pub max_path_length: Option<u32>,
    /// keyUsage and extendedKeyUsage names (e.g. `Digital Signature`, `serverAuth`).
    pub usages: Vec<String>,
}

/// Describes `cert`.
pub fn certificate(cert: &Certificate) -> Result<CertificateDetails, MaterialError> {
    let info = cert.info()?;
    let parsed = parse_certificate(cert.der())?;
    let max_path_length = parsed
        .basic_constraints()
        .ok()
        .flatten()
        .and_then(|b| b.value.path_len_constraint);
    Ok(CertificateDetails {
        info,
        names: names(&parsed),
        key: key_kind(parsed.public_key().raw)
            .map_or_else(|_| "unknown key type".to_owned(), |k| k.to_string()),
        max_path_length,
        usages: usages(&parsed),
    })
}

/// The certificates of a PEM file that may hold other blocks too (a key, in a combined
/// PEM), in order; the other blocks' contents are cleared.
pub fn certificates_among(pem_text: &[u8]) -> Result<Vec<Certificate>, MaterialError> {
    let blocks = pem::parse_many(pem_text)
        .map_err(|_| MaterialError::Invalid("not valid PEM".to_owned()))?;
    let mut certificates = Vec::new();
    for block in blocks {
        if block.tag() == "CERTIFICATE" {
            certificates.push(Certificate::from_der(block.into_contents()));
        } else {
            drop(zeroize::Zeroizing::new(block.into_contents()));
        }
    }
    Ok(certificates)
}

/// True when `issuer`'s key verifies the signature of `cert` (and `cert` names `issuer`'s
/// subject as its issuer).
pub fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let (Ok(cert), Ok(issuer)) = (
        parse_certificate(cert.der()),
        parse_certificate(issuer.der()),
    ) else {
        return false;
    };
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && verify_signed_by(&cert, issuer.public_key())
}

/// The key type of a DER SubjectPublicKeyInfo.
pub fn key_kind(spki_der: &[u8]) -> Result<KeyKind, MaterialError> {
    let unknown = || MaterialError::Invalid("not a public key of a known type".to_owned());
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| unknown())?;
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_SIG_ED25519 {
        return Ok(KeyKind::Ed25519);
    }
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(unknown());
        };
        return Ok(KeyKind::Rsa(significant_bits(rsa.modulus)));
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(unknown)?;
        return match curve {
            c if c == OID_EC_P256 => Ok(KeyKind::EcdsaP256),
            c if c == OID_NIST_EC_P384 => Ok(KeyKind::EcdsaP384),
            c if c == OID_NIST_EC_P521 => Ok(KeyKind::EcdsaP521),
            _ => Err(unknown()),
        };
    }
    Err(unknown())
}

/// A private key, described by its type and encoding (and its public key); nothing of the
/// private key is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateKeyDetails {
    /// The key type.
    pub kind: KeyKind,
    /// `PKCS#8`, `PKCS#1` or `SEC1`.
    pub encoding: &'static str,
    /// The public key, DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
}

/// PEM labels of private keys and the encodings they stand for.
const KEY_LABELS: [(&str, &str); 3] = [
    ("PRIVATE KEY", "PKCS#8"),
    ("RSA PRIVATE KEY", "PKCS#1"),
    ("EC PRIVATE KEY", "SEC1"),
];

/// Describes a PEM private key ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"; the
/// first PEM block that is one).
pub fn private_key_pem(pem_text: &[u8]) -> Result<PrivateKeyDetails, MaterialError> {
    let blocks =
        pem::parse_many(pem_text).map_err(|_| MaterialError::Invalid("not PEM".to_owned()))?;
    let (label, encoding) = blocks
        .iter()
        .find_map(|b| KEY_LABELS.iter().find(|(label, _)| b.tag() == *label))
        .ok_or_else(|| MaterialError::Invalid("holds no private key PEM block".to_owned()))?;
    let block = blocks
        .iter()
        .find(|b| b.tag() == *label)
        .ok_or_else(|| MaterialError::Invalid("holds no private key PEM block".to_owned()))?;
    let single = zeroize::Zeroizing::new(pem_encode(label, block.contents()));
    // The parsed blocks hold copies of the key: clear them.
    for block in blocks {
        drop(zeroize::Zeroizing::new(block.into_contents()));
    }
    let key = PrivateKey::from_pem(single.as_bytes())?;
    Ok(PrivateKeyDetails {
        kind: key.kind(),
        encoding,
        public_key_der: key.public_key_der()?,
    })
}

/// Describes a DER private key (PKCS#8, PKCS#1 or SEC1).
pub fn private_key_der(der: &[u8]) -> Result<PrivateKeyDetails, MaterialError> {
    KEY_LABELS
        .iter()
        .find_map(|(label, _)| {
            let pem_text = zeroize::Zeroizing::new(pem_encode(label, der));
            private_key_pem(pem_text.as_bytes()).ok()
        })
        .ok_or_else(|| {
            MaterialError::Invalid("not a PKCS#8, PKCS#1 or SEC1 private key".to_owned())
        })
}

/// Whether `key` is the key of `cert`.
pub fn key_matches(key: &PrivateKeyDetails, cert: &Certificate) -> bool {
    parse_certificate(cert.der()).is_ok_and(|c| c.public_key().raw == key.public_key_der)
}

/// Bits of a big-endian unsigned number.
fn significant_bits(be: &[u8]) -> u32 {
    let digits: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    let Some(top) = digits.first() else {
        return 0;
    };
    let rest = u32::try_from(digits.len() - 1).unwrap_or(u32::MAX / 8);
    rest.saturating_mul(8) + (8 - top.leading_zeros())
}

fn names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(n) => format!("DNS:{n}"),
            GeneralName::RFC822Name(n) => format!("email:{n}"),
            GeneralName::URI(n) => format!("URI:{n}"),
            GeneralName::IPAddress(bytes) => match ip(bytes) {
                Some(ip) => format!("IP Address:{ip}"),
                None => "IP Address:<invalid>".to_owned(),
            },
            other => format!("{other}"),
        })
        .collect()
}

fn ip(bytes: &[u8]) -> Option<std::net::IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(v4.into());
    }
    <[u8; 16]>::try_from(bytes).ok().map(Into::into)
}

fn usages(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out: Vec<String> = match cert.key_usage() {
        Ok(Some(ku)) => ku
            .value
            .to_string()
            .split(", ")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let eku = eku.value;
        for (present, name) in [
            (eku.any, "anyExtendedKeyUsage"),
            (eku.server_auth, "serverAuth"),
            (eku.client_auth, "clientAuth"),
            (eku.code_signing, "codeSigning"),
            (eku.email_protection, "emailProtection"),
            (eku.time_stamping, "timeStamping"),
            (eku.ocsp_signing, "OCSPSigning"),
        ] {
            if present {
                out.push(name.to_owned());
            }
        }
        out.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    }
    out
}

/// An OpenSSH public key, described as `ssh-keygen -l` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshPublicKeyDetails {
    /// `ED25519`, `ECDSA`, `RSA` (what `ssh-keygen -l` prints in parentheses).
    pub key_type: String,
    /// Size in bits.
    pub bits: u32,
    /// `SHA256:<base64, no padding>`.
    pub fingerprint: String,
    /// The comment ("" when none).
    pub comment: String,
}

impl SshPublicKeyDetails {
    /// The line `ssh-keygen -l -f` prints: `<bits> <fingerprint> <comment> (<TYPE>)`, with
    /// `no comment` for an empty comment.
    pub fn keygen_line(&self) -> String {
        let comment = if self.comment.is_empty() {
            "no comment"
        } else {
            &self.comment
        };
        format!(
            "{} {} {comment} ({})",
            self.bits, self.fingerprint, self.key_type
        )
    }

    fn of(key: &KeyData, comment: &str) -> Self {
        let (key_type, bits) = match key {
            KeyData::Ed25519(_) => ("ED25519".to_owned(), 256),
            KeyData::Ecdsa(ec) => (
                "ECDSA".to_owned(),
                match ec.curve() {
                    EcdsaCurve::NistP256 => 256,
                    EcdsaCurve::NistP384 => 384,
                    EcdsaCurve::NistP521 => 521,
                },
            ),
            KeyData::Rsa(rsa) => ("RSA".to_owned(), rsa_bits(&rsa.n)),
            other => (
                other
                    .algorithm()
                    .as_str()
                    .trim_start_matches("ssh-")
                    .to_uppercase(),
                0,
            ),
        };
        Self {
            key_type,
            bits,
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            comment: comment.to_owned(),
        }
    }
}

/// Describes an authorized_keys line (`<algorithm> <base64> [comment]`).
pub fn ssh_public_key(line: &str) -> Result<SshPublicKeyDetails, MaterialError> {
    let key = PublicKey::from_openssh(line.trim()).map_err(|_| {
        MaterialError::Invalid(
            "not an OpenSSH public key line (<algorithm> <base64> [comment])".to_owned(),
        )
    })?;
    Ok(SshPublicKeyDetails::of(key.key_data(), key.comment()))
}

/// The envelope of an OpenSSH private key file, read without decrypting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshPrivateKeyEnvelope {
    /// The public key stored in the clear in the file (its comment is only known for
    /// unencrypted files).
    pub public: SshPublicKeyDetails,
    /// How it is encrypted, e.g. `aes256-ctr, bcrypt KDF`; `None` when it is not.
    pub encryption: Option<String>,
}

/// Reads the public key and the encryption of an "OPENSSH PRIVATE KEY" file. Nothing is
/// decrypted and nothing of the private key is returned.
pub fn ssh_private_key(pem: &[u8]) -> Result<SshPrivateKeyEnvelope, MaterialError> {
    let key = SshPrivateKey::from_openssh(pem)
        .map_err(|_| MaterialError::Invalid("not an OpenSSH private key file".to_owned()))?;
    let encryption = key.is_encrypted().then(|| {
        let kdf = match key.kdf() {
            ssh_key::Kdf::Bcrypt { .. } => "bcrypt",
            _ => "other",
        };
        format!("{}, {kdf} KDF", key.cipher().as_str())
    });
    Ok(SshPrivateKeyEnvelope {
        public: SshPublicKeyDetails::of(key.public_key().key_data(), key.comment()),
        encryption,
    })
}

/// An OpenSSH certificate, described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshCertificateDetails {
    /// Serial, key id, type, principals, validity, extensions, options, CA fingerprint.
    pub info: SshCertificateInfo,
    /// The certified key.
    pub key: SshPublicKeyDetails,
    /// The signing CA key.
    pub ca: SshPublicKeyDetails,
    /// Whether the CA key's signature over the certificate verifies.
    pub signature_valid: bool,
}

/// Describes a certificate line (`<type>-cert-v01@openssh.com <base64> [comment]`).
pub fn ssh_certificate(line: &str) -> Result<SshCertificateDetails, MaterialError> {
    let certificate = SshCertificate::parse(line)?;
    let info = certificate.info()?;
    let parsed = ssh_key::Certificate::from_openssh(certificate.line())
        .map_err(|_| MaterialError::Invalid("not an OpenSSH certificate line".to_owned()))?;
    let ca_fingerprint = parsed.signature_key().fingerprint(HashAlg::Sha256);
    let valid_after = info
        .valid_after
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let signature_valid = parsed.validate_at(valid_after, [&ca_fingerprint]).is_ok();
    Ok(SshCertificateDetails {
        key: SshPublicKeyDetails::of(parsed.public_key(), parsed.comment()),
        ca: SshPublicKeyDetails::of(parsed.signature_key(), ""),
        info,
        signature_valid,
    })
}

/// Whether `certificate` certifies the public key of the authorized_keys line `public`.
pub fn ssh_certificate_certifies(certificate: &str, public: &str) -> bool {
    let (Ok(cert), Ok(key)) = (
        ssh_key::Certificate::from_openssh(certificate.trim()),
        PublicKey::from_openssh(public.trim()),
    ) else {
        return false;
    };
    cert.public_key() == key.key_data()
}

#[cfg(test)]
#[path = "describe/tests.rs"]
mod tests;
