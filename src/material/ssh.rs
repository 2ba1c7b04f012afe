//! OpenSSH keys and certificates: generation (RSA through aws-lc-rs), the OpenSSH private key
//! format (optionally passphrase-encrypted), authorized_keys and known_hosts lines,
//! fingerprints as `ssh-keygen -l` prints them, certificates signed by a CA key, and reading
//! all of it back from Secret data.

mod openssh;
mod rsa_keys;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair,
};
use md5::{Digest as _, Md5};
use ssh_key::certificate::{self, CertType};
use ssh_key::private::{EcdsaKeypair, Ed25519Keypair, KeypairData};
use ssh_key::rand_core::{OsRng, RngCore as _};
use ssh_key::{Cipher, EcdsaCurve, HashAlg, Kdf, LineEnding, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::api::ssh_key::{SSH_RSA_SIZES, SshKeyAlgorithm};

use super::fingerprint::colon_hex;
use super::{MaterialError, SecretBytes, SecretString};

/// Secret keys of a `kubernetes.io/ssh-auth` Secret (api.md section 3).
pub const SSH_PRIVATE_KEY: &str = "ssh-privatekey";
/// The authorized_keys line.
pub const SSH_PUBLIC_KEY: &str = "ssh-publickey";
/// known_hosts lines of a host key.
pub const KNOWN_HOSTS: &str = "known_hosts";
/// The OpenSSH certificate line.
pub const SSH_CERTIFICATE: &str = "ssh-certificate";

/// A concrete SSH key type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SshKeyKind {
    /// ssh-ed25519.
    Ed25519,
    /// ecdsa-sha2-nistp256.
    EcdsaP256,
    /// ecdsa-sha2-nistp384.
    EcdsaP384,
    /// ecdsa-sha2-nistp521.
    EcdsaP521,
    /// ssh-rsa with this many bits (2048, 3072 or 4096; a key read from a Secret may have
    /// any size from 2048 to 8192).
    Rsa(u32),
}

impl SshKeyKind {
    /// True when generating the key costs less than an API round trip (all but RSA).
    pub fn is_quick(self) -> bool {
        !matches!(self, Self::Rsa(_))
    }

    /// The key a spec asks for, with api.md's defaults (ECDSA 256, RSA 3072).
    pub fn from_spec(algorithm: SshKeyAlgorithm, size: Option<u32>) -> Result<Self, MaterialError> {
        match algorithm {
            SshKeyAlgorithm::Ed25519 => match size {
                None => Ok(Self::Ed25519),
                Some(_) => Err(MaterialError::Unsupported(
                    "Ed25519 keys have a fixed size; leave size unset".to_owned(),
                )),
            },
            SshKeyAlgorithm::ECDSA => match size.unwrap_or(256) {
                256 => Ok(Self::EcdsaP256),
                384 => Ok(Self::EcdsaP384),
                521 => Ok(Self::EcdsaP521),
                other => Err(MaterialError::Unsupported(format!(
                    "ECDSA key size {other} is not supported; use 256, 384 or 521"
                ))),
            },
            SshKeyAlgorithm::RSA => {
                let bits = size.unwrap_or(3072);
                if SSH_RSA_SIZES.contains(&bits) {
                    Ok(Self::Rsa(bits))
                } else {
                    Err(MaterialError::Unsupported(format!(
                        "RSA key size {bits} is not supported for SSH keys; use 2048, 3072 or 4096"
                    )))
                }
            }
        }
    }

    /// The algorithm as the API names it.
    pub fn algorithm(self) -> SshKeyAlgorithm {
        match self {
            Self::Ed25519 => SshKeyAlgorithm::Ed25519,
            Self::EcdsaP256 | Self::EcdsaP384 | Self::EcdsaP521 => SshKeyAlgorithm::ECDSA,
            Self::Rsa(_) => SshKeyAlgorithm::RSA,
        }
    }

    /// Size in bits (256 for Ed25519).
    pub fn size(self) -> u32 {
        match self {
            Self::Ed25519 | Self::EcdsaP256 => 256,
            Self::EcdsaP384 => 384,
            Self::EcdsaP521 => 521,
            Self::Rsa(bits) => bits,
        }
    }

    /// The kind of an ssh-key key pair, if keysmith supports it (RSA: 2048 to 8192 bits,
    /// the range aws-lc-rs accepts).
    fn of(key_data: &KeypairData) -> Result<Self, MaterialError> {
        match key_data {
            KeypairData::Ed25519(_) => Ok(Self::Ed25519),
            KeypairData::Ecdsa(pair) => Ok(match pair.curve() {
                EcdsaCurve::NistP256 => Self::EcdsaP256,
                EcdsaCurve::NistP384 => Self::EcdsaP384,
                EcdsaCurve::NistP521 => Self::EcdsaP521,
            }),
            KeypairData::Rsa(pair) => match rsa_bits(&pair.public.n) {
                bits @ 2048..=8192 => Ok(Self::Rsa(bits)),
                bits => Err(MaterialError::Invalid(format!(
                    "RSA keys of {bits} bits are not supported; use 2048 to 8192 bits"
                ))),
            },
            other => Err(MaterialError::Invalid(format!(
                "{} keys are not supported; use Ed25519, ECDSA or RSA",
                other
                    .algorithm()
                    .map_or_else(|_| "these".to_owned(), |a| a.as_str().to_owned())
            ))),
        }
    }

    /// The curve of an ECDSA kind.
    fn ecdsa_curve(self) -> Option<EcdsaCurve> {
        match self {
            Self::EcdsaP256 => Some(EcdsaCurve::NistP256),
            Self::EcdsaP384 => Some(EcdsaCurve::NistP384),
            Self::EcdsaP521 => Some(EcdsaCurve::NistP521),
            Self::Ed25519 | Self::Rsa(_) => None,
        }
    }
}

/// `Ed25519`, `ECDSA P-256`, `RSA 3072`: how messages name a key type.
impl fmt::Display for SshKeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::EcdsaP384 => f.write_str("ECDSA P-384"),
            Self::EcdsaP521 => f.write_str("ECDSA P-521"),
            Self::Rsa(bits) => write!(f, "RSA {bits}"),
        }
    }
}

/// Number of significant bits of an RSA modulus (what `ssh-keygen -l` prints).
pub(crate) fn rsa_bits(n: &ssh_key::Mpint) -> u32 {
    let mut digits = n
        .as_positive_bytes()
        .unwrap_or_default()
        .iter()
        .skip_while(|b| **b == 0);
    let Some(top) = digits.next() else {
        return 0;
    };
    let rest = u32::try_from(digits.count()).unwrap_or(u32::MAX / 8);
    rest.saturating_mul(8) + (8 - top.leading_zeros())
}

/// An OpenSSH key pair with its comment. The private part is zeroized on drop; `Debug`
/// shows only the kind and the public fingerprint.
#[derive(Clone)]
pub struct SshKeyPair {
    /// The decrypted key (never an encrypted ssh-key `PrivateKey`).
    inner: PrivateKey,
    kind: SshKeyKind,
    /// `<algorithm> <base64>` of the public key.
    public: String,
    /// The public key blob (SSH wire encoding), for the MD5 fingerprint.
    blob: Vec<u8>,
}

impl fmt::Debug for SshKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshKeyPair")
            .field("kind", &self.kind)
            .field("fingerprint", &self.fingerprint_sha256())
            .finish_non_exhaustive()
    }
}

impl SshKeyPair {
    /// Generates a new key with `comment`.
    pub fn generate(kind: SshKeyKind, comment: &str) -> Result<Self, MaterialError> {
        let failed = || MaterialError::Crypto(format!("generating an {kind} SSH key failed"));
        let key_data = match kind {
            SshKeyKind::Rsa(bits) => KeypairData::Rsa(rsa_keys::generate(bits)?),
            SshKeyKind::Ed25519 => KeypairData::Ed25519(Ed25519Keypair::random(&mut OsRng)),
            SshKeyKind::EcdsaP256 | SshKeyKind::EcdsaP384 | SshKeyKind::EcdsaP521 => {
                let curve = kind.ecdsa_curve().ok_or_else(failed)?;
                KeypairData::Ecdsa(EcdsaKeypair::random(&mut OsRng, curve).map_err(|_| failed())?)
            }
        };
        // `PrivateKey::new` derives the OpenSSH "checkint" from the key, so the unencrypted
        // encoding is deterministic.
        let inner = PrivateKey::new(key_data, comment).map_err(|_| failed())?;
        Self::from_private(inner)
    }

    /// Reads an OpenSSH private key ("OPENSSH PRIVATE KEY"), decrypting it with
    /// `passphrase` when it is encrypted.
    ///
    /// An empty passphrase means none (as `ssh-keygen -N ''`). A passphrase given for an
    /// unencrypted key is ignored. The private key is checked against its public key
    /// (aws-lc-rs), so a corrupted key is `Invalid`.
    pub fn from_openssh(
        pem: &[u8],
        passphrase: Option<&SecretString>,
    ) -> Result<Self, MaterialError> {
        let parsed = PrivateKey::from_openssh(pem)
            .ok()
            .or_else(|| openssh::parse_short_scalar_key(pem))
            .ok_or_else(|| {
                MaterialError::Invalid(
                    "not an OpenSSH private key (expected a \"-----BEGIN OPENSSH PRIVATE KEY-----\" block)"
                        .to_owned(),
                )
            })?;
        let inner = if parsed.is_encrypted() {
            decrypt(&parsed, passphrase)?
        } else {
            parsed
        };
        let pair = Self::from_private(inner)?;
        pair.check_private_key()?;
        Ok(pair)
    }

    /// Wraps a decrypted ssh-key private key of a supported kind.
    fn from_private(inner: PrivateKey) -> Result<Self, MaterialError> {
        let kind = SshKeyKind::of(inner.key_data())?;
        let failed = || MaterialError::Crypto(format!("encoding the {kind} public key failed"));
        let public_key = PublicKey::from(inner.public_key().key_data().clone());
        let public = public_key.to_openssh().map_err(|_| failed())?;
        let blob = public_key.to_bytes().map_err(|_| failed())?;
        Ok(Self {
            inner,
            kind,
            public,
            blob,
        })
    }

    /// Checks that the private key matches the public key (ssh-key checks only that the
    /// public copies in the file agree, not that the private scalar or primes fit).
    fn check_private_key(&self) -> Result<(), MaterialError> {
        let kind = self.kind;
        let inconsistent = || {
            MaterialError::Invalid(format!(
                "the {kind} private key does not match its public key"
            ))
        };
        match self.inner.key_data() {
            KeypairData::Ed25519(pair) => {
                let seed = Zeroizing::new(pair.private.to_bytes());
                Ed25519KeyPair::from_seed_and_public_key(seed.as_slice(), &pair.public.0)
                    .map(drop)
                    .map_err(|_| inconsistent())
            }
            KeypairData::Ecdsa(pair) => EcdsaKeyPair::from_private_key_and_public_key(
                ecdsa_signing(pair.curve()),
                pair.private_key_bytes(),
                pair.public_key_bytes(),
            )
            .map(drop)
            .map_err(|_| inconsistent()),
            KeypairData::Rsa(pair) => rsa_keys::aws_keypair(pair).map(drop),
            _ => Err(inconsistent()),
        }
    }

    /// The key's type.
    pub fn kind(&self) -> SshKeyKind {
        self.kind
    }

    /// The comment.
    pub fn comment(&self) -> &str {
        self.inner.comment()
    }

    /// The same key with another comment (a comment change never regenerates the key).
    pub fn with_comment(&self, comment: &str) -> Self {
        let mut key = self.clone();
        key.inner.set_comment(comment);
        key
    }

    /// The OpenSSH private key PEM, encrypted with `passphrase` (bcrypt-pbkdf, aes256-ctr)
    /// when given; unencrypted output is deterministic for a key. An empty passphrase means
    /// none.
    pub fn to_openssh(
        &self,
        passphrase: Option<&SecretString>,
    ) -> Result<SecretString, MaterialError> {
        let failed = || MaterialError::Crypto("encoding the OpenSSH private key failed".to_owned());
        let mut pem = match given(passphrase) {
            None => self.inner.to_openssh(LineEnding::LF),
            Some(passphrase) => self
                .inner
                .encrypt(&mut OsRng, passphrase.expose())
                .and_then(|encrypted| encrypted.to_openssh(LineEnding::LF)),
        }
        .map_err(|_| failed())?;
        Ok(SecretString::new(std::mem::take(&mut *pem)))
    }

    /// The authorized_keys line: `<algorithm> <base64> <comment>`.
    pub fn authorized_key(&self) -> String {
        match self.comment() {
            "" => self.public.clone(),
            comment => format!("{} {comment}", self.public),
        }
    }

    /// `SHA256:<base64 without padding>`, exactly as `ssh-keygen -l` prints it.
    pub fn fingerprint_sha256(&self) -> String {
        self.inner.fingerprint(HashAlg::Sha256).to_string()
    }

    /// `MD5:aa:bb:…`, as `ssh-keygen -l -E md5` prints it.
    pub fn fingerprint_md5(&self) -> String {
        format!("MD5:{}", colon_hex(&Md5::digest(&self.blob)).to_lowercase())
    }

    /// The public key (ssh-key form, without comment).
    fn key_data(&self) -> &ssh_key::public::KeyData {
        self.inner.public_key().key_data()
    }
}

/// The passphrase, unless it is absent or empty.
fn given(passphrase: Option<&SecretString>) -> Option<&SecretString> {
    passphrase.filter(|p| !p.expose().is_empty())
}

/// Decrypts an encrypted key; a missing or wrong passphrase is `Invalid`.
fn decrypt(
    encrypted: &PrivateKey,
    passphrase: Option<&SecretString>,
) -> Result<PrivateKey, MaterialError> {
    let passphrase = given(passphrase).ok_or_else(|| {
        MaterialError::Invalid(
            "the OpenSSH private key is encrypted and no passphrase was given".to_owned(),
        )
    })?;
    check_kdf_rounds(encrypted.kdf())?;
    let wrong = || {
        MaterialError::Invalid(
            "the passphrase does not decrypt the OpenSSH private key (wrong passphrase or corrupted key)"
                .to_owned(),
        )
    };
    match encrypted.decrypt(passphrase.expose()) {
        Ok(key) => Ok(key),
        // A decoding error after a successful decryption: maybe a short ECDSA scalar.
        Err(ssh_key::Error::Encoding(_)) if encrypted.algorithm().is_ecdsa() => {
            openssh::decrypt_short_scalar_key(encrypted, passphrase.expose().as_bytes()).map_err(
                |failure| match failure {
                    openssh::DecryptFailure::WrongPassphrase => wrong(),
                    openssh::DecryptFailure::Unreadable => MaterialError::Invalid(
                        "the decrypted OpenSSH private key is malformed".to_owned(),
                    ),
                },
            )
        }
        Err(_) => Err(wrong()),
    }
}

/// Most bcrypt-pbkdf rounds of an encrypted key that keysmith decrypts: about two seconds
/// of CPU (`ssh-keygen -a` defaults to 16; 100 is a common hardening). The rounds are read
/// from the key, which whoever writes the Secret chooses, up to 2^32 - 1: years.
pub const MAX_KDF_ROUNDS: u32 = 256;

/// Refuses a key whose key derivation would take too long.
fn check_kdf_rounds(kdf: &Kdf) -> Result<(), MaterialError> {
    match kdf {
        Kdf::Bcrypt { rounds, .. } if *rounds > MAX_KDF_ROUNDS => {
            Err(MaterialError::Invalid(format!(
                "the OpenSSH private key is encrypted with {rounds} bcrypt-pbkdf rounds; keysmith decrypts keys of at most {MAX_KDF_ROUNDS} (ssh-keygen -a)"
            )))
        }
        _ => Ok(()),
    }
}

/// The aws-lc-rs algorithm that loads keys of `curve`.
fn ecdsa_signing(curve: EcdsaCurve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        EcdsaCurve::NistP256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
        EcdsaCurve::NistP384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
        EcdsaCurve::NistP521 => &ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

/// A known_hosts line for `hostnames`: `host1,host2 <algorithm> <base64>`.
pub fn known_hosts_line(hostnames: &[String], key: &SshKeyPair) -> String {
    format!("{} {}", hostnames.join(","), key.public)
}

/// User or host certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateType {
    /// A user certificate.
    User,
    /// A host certificate.
    Host,
}

/// What an OpenSSH certificate certifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRequest {
    /// User or host.
    pub cert_type: CertificateType,
    /// Key id (shown by `ssh-keygen -L` and logged by sshd).
    pub key_id: String,
    /// Principals: user names or host names.
    pub principals: Vec<String>,
    /// Start of validity.
    pub valid_after: SystemTime,
    /// End of validity.
    pub valid_before: SystemTime,
    /// Extensions (user certificates); empty means OpenSSH's default set:
    /// permit-X11-forwarding, permit-agent-forwarding, permit-port-forwarding, permit-pty,
    /// permit-user-rc.
    pub extensions: Vec<String>,
    /// Critical options, e.g. `force-command` or `source-address`.
    pub critical_options: BTreeMap<String, String>,
}

/// An issued OpenSSH certificate (public data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshCertificate {
    line: String,
}

/// What a certificate says, for the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshCertificateInfo {
    /// Serial number.
    pub serial: u64,
    /// Key id.
    pub key_id: String,
    /// User or host.
    pub cert_type: CertificateType,
    /// Principals.
    pub principals: Vec<String>,
    /// Start of validity.
    pub valid_after: SystemTime,
    /// End of validity.
    pub valid_before: SystemTime,
    /// Extensions.
    pub extensions: Vec<String>,
    /// Critical options.
    pub critical_options: BTreeMap<String, String>,
    /// `SHA256:` fingerprint of the signing CA key.
    pub ca_fingerprint: String,
}

/// The extensions `ssh-keygen -s` puts in user certificates by default.
pub const DEFAULT_USER_EXTENSIONS: [&str; 5] = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// Length of the random certificate nonce (as OpenSSH).
const NONCE_LEN: usize = 32;

impl SshCertificate {
    /// Signs a certificate for `subject`'s public key with `ca`, with a random serial.
    ///
    /// The validity is truncated to whole seconds. User certificates get
    /// [`DEFAULT_USER_EXTENSIONS`] when the request lists none; host certificates take no
    /// extensions and no critical options (OpenSSH defines none, and `ssh` rejects host
    /// certificates carrying critical options): asking for them is `Unsupported`. An RSA CA
    /// signs with rsa-sha2-512. The certificate line carries the subject's comment.
    pub fn issue(
        subject: &SshKeyPair,
        ca: &SshKeyPair,
        request: &CertificateRequest,
    ) -> Result<Self, MaterialError> {
        let builder = certificate_builder(subject, request)?;
        let cert = match ca.inner.key_data() {
            KeypairData::Rsa(rsa) => rsa_keys::sign_certificate(builder, rsa, ca.key_data())?,
            _ => builder.sign(&ca.inner).map_err(|e| {
                MaterialError::Crypto(format!(
                    "signing the certificate with the {} CA key failed: {e}",
                    ca.kind
                ))
            })?,
        };
        let ca_fingerprint = ca.inner.fingerprint(HashAlg::Sha256);
        cert.validate_at(cert.valid_after(), [&ca_fingerprint])
            .map_err(|_| MaterialError::Crypto("the new certificate does not verify".to_owned()))?;
        let line = cert
            .to_openssh()
            .map_err(|_| MaterialError::Crypto("encoding the certificate failed".to_owned()))?;
        Ok(Self {
            line: match subject.comment() {
                "" => line,
                comment => format!("{line} {comment}"),
            },
        })
    }

    /// Parses a certificate line (`<type>-cert-v01@openssh.com <base64> [comment]`).
    pub fn parse(line: &str) -> Result<Self, MaterialError> {
        let line = line.trim();
        if line.contains(['\n', '\r']) {
            return Err(MaterialError::Invalid(
                "an OpenSSH certificate is a single line".to_owned(),
            ));
        }
        parse_certificate(line)?;
        Ok(Self {
            line: line.to_owned(),
        })
    }

    /// The certificate line, as written to `ssh-certificate` and to `*-cert.pub` files.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// What the certificate says.
    pub fn info(&self) -> Result<SshCertificateInfo, MaterialError> {
        let cert = parse_certificate(&self.line)?;
        Ok(SshCertificateInfo {
            serial: cert.serial(),
            key_id: cert.key_id().to_owned(),
            cert_type: match cert.cert_type() {
                CertType::User => CertificateType::User,
                CertType::Host => CertificateType::Host,
            },
            principals: cert.valid_principals().to_vec(),
            valid_after: cert.valid_after_time(),
            valid_before: cert.valid_before_time(),
            extensions: cert.extensions().keys().cloned().collect(),
            critical_options: cert.critical_options().0.clone(),
            ca_fingerprint: cert
                .signature_key()
                .fingerprint(HashAlg::Sha256)
                .to_string(),
        })
    }

    /// True when it certifies `subject`'s public key and carries a valid signature by `ca`.
    /// The validity window is not checked (see [`SshCertificateInfo`] for renewal).
    pub fn is_signed_for(&self, subject: &SshKeyPair, ca: &SshKeyPair) -> bool {
        let Ok(cert) = parse_certificate(&self.line) else {
            return false;
        };
        let ca_fingerprint = ca.inner.fingerprint(HashAlg::Sha256);
        cert.public_key() == subject.key_data()
            && cert.signature_key() == ca.key_data()
            && cert
                .validate_at(cert.valid_after(), [&ca_fingerprint])
                .is_ok()
    }

    /// True when it certifies `key`'s public key (the signature is not checked).
    fn certifies(&self, key: &SshKeyPair) -> bool {
        parse_certificate(&self.line).is_ok_and(|cert| cert.public_key() == key.key_data())
    }
}

fn parse_certificate(line: &str) -> Result<certificate::Certificate, MaterialError> {
    certificate::Certificate::from_openssh(line).map_err(|_| {
        MaterialError::Invalid(
            "not an OpenSSH certificate line (<type>-cert-v01@openssh.com <base64>)".to_owned(),
        )
    })
}

/// A certificate builder with everything but the signature: random nonce and serial,
/// validity, type, key id, principals, critical options and extensions.
fn certificate_builder(
    subject: &SshKeyPair,
    request: &CertificateRequest,
) -> Result<certificate::Builder, MaterialError> {
    let valid_after = unix_seconds(request.valid_after, "start")?;
    let valid_before = unix_seconds(request.valid_before, "end")?;
    if valid_before <= valid_after {
        return Err(MaterialError::Unsupported(
            "the certificate's validity must end at least one second after it starts".to_owned(),
        ));
    }
    if request.principals.is_empty() {
        return Err(MaterialError::Unsupported(
            "a certificate needs at least one principal (none would make it valid for everyone)"
                .to_owned(),
        ));
    }
    let extensions = certificate_extensions(request)?;
    let field =
        |e: ssh_key::Error| MaterialError::Unsupported(format!("invalid certificate request: {e}"));
    let mut nonce = vec![0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let mut builder =
        certificate::Builder::new(nonce, subject.key_data().clone(), valid_after, valid_before)
            .map_err(field)?;
    builder.serial(random_serial()).map_err(field)?;
    builder
        .cert_type(match request.cert_type {
            CertificateType::User => CertType::User,
            CertificateType::Host => CertType::Host,
        })
        .map_err(field)?;
    builder.key_id(request.key_id.as_str()).map_err(field)?;
    for principal in &request.principals {
        builder.valid_principal(principal.as_str()).map_err(field)?;
    }
    for (name, data) in &request.critical_options {
        builder
            .critical_option(name.as_str(), data.as_str())
            .map_err(field)?;
    }
    for name in extensions {
        builder.extension(name, "").map_err(field)?;
    }
    Ok(builder)
}

/// The extensions of the certificate (names, sorted, without duplicates).
fn certificate_extensions(request: &CertificateRequest) -> Result<BTreeSet<&str>, MaterialError> {
    match request.cert_type {
        CertificateType::User if request.extensions.is_empty() => {
            Ok(DEFAULT_USER_EXTENSIONS.into_iter().collect())
        }
        CertificateType::User => Ok(request.extensions.iter().map(String::as_str).collect()),
        CertificateType::Host if !request.extensions.is_empty() => Err(MaterialError::Unsupported(
            "certificate extensions apply to user certificates only".to_owned(),
        )),
        CertificateType::Host if !request.critical_options.is_empty() => {
            Err(MaterialError::Unsupported(
                "critical options apply to user certificates only (ssh rejects host certificates that carry any)"
                    .to_owned(),
            ))
        }
        CertificateType::Host => Ok(BTreeSet::new()),
    }
}

/// Whole seconds since the Unix epoch (truncated).
fn unix_seconds(time: SystemTime, which: &str) -> Result<u64, MaterialError> {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| {
            MaterialError::Unsupported(format!("the certificate's validity {which} is before 1970"))
        })
}

/// A random, non-zero serial number.
fn random_serial() -> u64 {
    loop {
        let serial = OsRng.next_u64();
        if serial != 0 {
            return serial;
        }
    }
}

/// Everything an `ssh-auth` Secret holds.
#[derive(Clone, Debug)]
pub struct SshMaterial {
    /// The key pair.
    pub key: SshKeyPair,
    /// The certificate, if one is issued.
    pub certificate: Option<SshCertificate>,
}

/// What goes into the Secret besides the key itself. `Debug` shows the names of the
/// previous data, never its content (it holds the previous private key).
#[derive(Clone, Default)]
pub struct SshOutput<'a> {
    /// Encrypts `ssh-privatekey` when set.
    pub passphrase: Option<&'a SecretString>,
    /// Host keys: names for the `known_hosts` entry (none: no `known_hosts`).
    pub hostnames: &'a [String],
    /// Data of the previous material to keep under `<key>.previous` (rotation.keepPrevious).
    pub previous: Option<&'a BTreeMap<String, Vec<u8>>>,
}

impl fmt::Debug for SshOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshOutput")
            .field("passphrase", &self.passphrase)
            .field("hostnames", &self.hostnames)
            .field(
                "previous",
                &self.previous.map(|data| data.keys().collect::<Vec<_>>()),
            )
            .finish()
    }
}

/// The data of a `kubernetes.io/ssh-auth` Secret: `ssh-privatekey`, `ssh-publickey`,
/// `known_hosts` (with hostnames), `ssh-certificate` (with a certificate), and the
/// `<key>.previous` copies of `output.previous`'s `ssh-privatekey`/`ssh-publickey`/
/// `ssh-certificate`.
///
/// `ssh-publickey`, `known_hosts` and `ssh-certificate` end with a newline. A certificate
/// for another key is `Invalid`.
pub fn ssh_secret_data(
    material: &SshMaterial,
    output: &SshOutput<'_>,
) -> Result<BTreeMap<String, SecretBytes>, MaterialError> {
    let mut data = public_entries(material, output)?;
    data.insert(
        SSH_PRIVATE_KEY.to_owned(),
        material.key.to_openssh(output.passphrase)?.into(),
    );
    Ok(data)
}

/// True when `existing` is exactly what [`ssh_secret_data`] would write; an encrypted
/// private key (random salt) counts as equal when it decrypts with the passphrase to the
/// same key with the same comment.
///
/// Precisely: every entry but `ssh-privatekey` must be byte-for-byte equal and no entry may
/// be missing or extra. Without a passphrase `ssh-privatekey` must be byte-for-byte equal;
/// with one it must be an aes256-ctr/bcrypt-pbkdf key of the default rounds, encoded as
/// keysmith encodes it, whose decrypted content equals this key's except for the random
/// check number.
pub fn ssh_secret_data_is_current(
    existing: &BTreeMap<String, Vec<u8>>,
    material: &SshMaterial,
    output: &SshOutput<'_>,
) -> Result<bool, MaterialError> {
    let expected = public_entries(material, output)?;
    let same_keys = existing.keys().map(String::as_str).eq(expected
        .keys()
        .map(String::as_str)
        .chain([SSH_PRIVATE_KEY])
        .collect::<BTreeSet<_>>());
    if !same_keys
        || expected
            .iter()
            .any(|(k, v)| existing.get(k).map(Vec::as_slice) != Some(v.expose()))
    {
        return Ok(false);
    }
    let Some(private) = existing.get(SSH_PRIVATE_KEY) else {
        return Ok(false);
    };
    match given(output.passphrase) {
        None => Ok(bytes_equal(
            private,
            material.key.to_openssh(None)?.expose().as_bytes(),
        )),
        Some(passphrase) => encrypted_key_is_current(private, &material.key, passphrase),
    }
}

/// Reads the key (decrypted with `passphrase` if needed) and certificate from Secret data,
/// checking that the public key and certificate belong to the private key.
///
/// `ssh-privatekey` is required; `ssh-publickey` and `ssh-certificate` are checked when
/// present (a Secret holding only `ssh-privatekey` can be adopted). Errors name the Secret
/// key that is wrong.
pub fn read_ssh_secret(
    data: &BTreeMap<String, Vec<u8>>,
    passphrase: Option<&SecretString>,
) -> Result<SshMaterial, MaterialError> {
    let pem = data
        .get(SSH_PRIVATE_KEY)
        .ok_or_else(|| MaterialError::Invalid(format!("the Secret has no {SSH_PRIVATE_KEY}")))?;
    let key =
        SshKeyPair::from_openssh(pem, passphrase).map_err(|e| in_secret_key(SSH_PRIVATE_KEY, e))?;
    if let Some(public) = data.get(SSH_PUBLIC_KEY) {
        check_public_key(public, &key)?;
    }
    let certificate = data
        .get(SSH_CERTIFICATE)
        .map(|line| read_certificate(line, &key))
        .transpose()?;
    Ok(SshMaterial { key, certificate })
}

/// Everything [`ssh_secret_data`] writes except `ssh-privatekey`.
fn public_entries(
    material: &SshMaterial,
    output: &SshOutput<'_>,
) -> Result<BTreeMap<String, SecretBytes>, MaterialError> {
    let key = &material.key;
    let line = |text: String| SecretBytes::new(format!("{text}\n").into_bytes());
    let mut data = BTreeMap::new();
    data.insert(SSH_PUBLIC_KEY.to_owned(), line(key.authorized_key()));
    if !output.hostnames.is_empty() {
        data.insert(
            KNOWN_HOSTS.to_owned(),
            line(known_hosts_line(output.hostnames, key)),
        );
    }
    if let Some(certificate) = &material.certificate {
        if !certificate.certifies(key) {
            return Err(MaterialError::Invalid(
                "the certificate certifies another key than the Secret's".to_owned(),
            ));
        }
        data.insert(SSH_CERTIFICATE.to_owned(), line(certificate.line.clone()));
    }
    for name in [SSH_PRIVATE_KEY, SSH_PUBLIC_KEY, SSH_CERTIFICATE] {
        if let Some(value) = output.previous.and_then(|previous| previous.get(name)) {
            data.insert(format!("{name}.previous"), SecretBytes::new(value.clone()));
        }
    }
    Ok(data)
}

/// Constant-time equality (the private key is compared with it).
fn bytes_equal(a: &[u8], b: &[u8]) -> bool {
    verify_slices_are_equal(a, b).is_ok()
}

/// Whether an encrypted `ssh-privatekey` is what [`SshKeyPair::to_openssh`] would write
/// with `passphrase`, up to its random salt and check number.
fn encrypted_key_is_current(
    existing: &[u8],
    key: &SshKeyPair,
    passphrase: &SecretString,
) -> Result<bool, MaterialError> {
    let Ok(parsed) = PrivateKey::from_openssh(existing) else {
        return Ok(false);
    };
    let as_written = matches!(parsed.kdf(), Kdf::Bcrypt { rounds, .. } if *rounds == BCRYPT_ROUNDS)
        && parsed.cipher() == Cipher::Aes256Ctr
        && parsed
            .to_openssh(LineEnding::LF)
            .is_ok_and(|pem| bytes_equal(pem.as_bytes(), existing));
    if !as_written {
        return Ok(false);
    }
    let Ok(decrypted) = parsed.decrypt(passphrase.expose()) else {
        return Ok(false);
    };
    let failed = || MaterialError::Crypto("encoding the OpenSSH private key failed".to_owned());
    let found = decrypted.to_bytes().map_err(|_| failed())?;
    let ours = key.inner.to_bytes().map_err(|_| failed())?;
    Ok(equal_but_checkint(&found, &ours))
}

/// ssh-key's bcrypt-pbkdf rounds (also `ssh-keygen`'s default).
const BCRYPT_ROUNDS: u32 = 16;

/// Whether two unencrypted OpenSSH private key encodings (binary) are equal except for the
/// random check number (two equal u32 at the start of the private section).
///
/// Layout (PROTOCOL.key): `"openssh-key-v1\0"`, `string cipher` ("none"), `string kdf`
/// ("none"), `string kdfoptions` (""), `uint32 nkeys`, `string publickey`,
/// `uint32 length`, then `uint32 checkint` twice.
fn equal_but_checkint(found: &[u8], ours: &[u8]) -> bool {
    const PUBLIC_KEY_LENGTH_AT: usize = 15 + 8 + 8 + 4 + 4;
    let Some(public_len) = ours
        .get(PUBLIC_KEY_LENGTH_AT..PUBLIC_KEY_LENGTH_AT + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .and_then(|b| usize::try_from(u32::from_be_bytes(b)).ok())
    else {
        return false;
    };
    let checkints = PUBLIC_KEY_LENGTH_AT + 4 + public_len + 4;
    let (Some(found_head), Some(ours_head), Some(found_tail), Some(ours_tail)) = (
        found.get(..checkints),
        ours.get(..checkints),
        found.get(checkints + 8..),
        ours.get(checkints + 8..),
    ) else {
        return false;
    };
    found.len() == ours.len()
        && bytes_equal(found_head, ours_head)
        && bytes_equal(found_tail, ours_tail)
}

/// Prefixes an `Invalid` message with the Secret key it is about.
fn in_secret_key(name: &str, error: MaterialError) -> MaterialError {
    match error {
        MaterialError::Invalid(message) => MaterialError::Invalid(format!("{name}: {message}")),
        other => other,
    }
}

/// Checks that `ssh-publickey` is an authorized_keys line of `key`.
fn check_public_key(bytes: &[u8], key: &SshKeyPair) -> Result<(), MaterialError> {
    let public = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| PublicKey::from_openssh(text.trim()).ok())
        .ok_or_else(|| {
            MaterialError::Invalid(format!(
                "{SSH_PUBLIC_KEY}: not an OpenSSH public key line (<algorithm> <base64> [comment])"
            ))
        })?;
    if public.key_data() == key.key_data() {
        Ok(())
    } else {
        Err(MaterialError::Invalid(format!(
            "{SSH_PUBLIC_KEY} is not the public key of {SSH_PRIVATE_KEY}"
        )))
    }
}

/// Parses `ssh-certificate` and checks that it certifies `key`.
fn read_certificate(bytes: &[u8], key: &SshKeyPair) -> Result<SshCertificate, MaterialError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        MaterialError::Invalid(format!(
            "{SSH_CERTIFICATE}: not an OpenSSH certificate line"
        ))
    })?;
    let certificate = SshCertificate::parse(text).map_err(|e| in_secret_key(SSH_CERTIFICATE, e))?;
    if certificate.certifies(key) {
        Ok(certificate)
    } else {
        Err(MaterialError::Invalid(format!(
            "{SSH_CERTIFICATE} certifies another key than {SSH_PRIVATE_KEY}"
        )))
    }
}
