//! Certificate issuance: self-signed or CA-signed, with the full subject, SANs, usages,
//! basic constraints, AIA and CRL distribution points of a CertificateKeyPair spec.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA384_ASN1, ECDSA_P256_SHA512_ASN1, ECDSA_P384_SHA256_ASN1,
    ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA512_ASN1, ECDSA_P521_SHA256_ASN1, ECDSA_P521_SHA384_ASN1,
    ECDSA_P521_SHA512_ASN1, UnparsedPublicKey, VerificationAlgorithm,
};
use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType, SignatureAlgorithm,
};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_NIST_EC_P384, OID_NIST_EC_P521, OID_PKCS1_SHA256WITHRSA,
    OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256,
    OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512, OID_SIG_ED25519, Oid,
};
use x509_parser::time::ASN1Time;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::api::certificate_key_pair::{CertificateKeyPairSpec, Digest, KeyUsage};

use super::MaterialError;
use super::fingerprint::{sha1_colon, sha256_colon};
use super::pkey::{KeyKind, PrivateKey};

mod der;
mod rfc4514;
#[cfg(test)]
pub(crate) mod testing;

/// A DER-encoded X.509 certificate (public data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
}

impl Certificate {
    /// Wraps DER bytes (not validated; see [`Certificate::info`]).
    pub fn from_der(der: Vec<u8>) -> Self {
        Self { der }
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM "CERTIFICATE".
    pub fn to_pem(&self) -> String {
        super::pkey::pem_encode("CERTIFICATE", &self.der)
    }

    /// What the status reports about this certificate.
    ///
    /// `subject` and `issuer` are RFC 4514 strings as `openssl x509 -nameopt RFC2253`
    /// prints them (e.g. `CN=shop.example.com,O=Example Inc,C=DE`), except that non-ASCII
    /// UTF-8 is kept rather than escaped.
    pub fn info(&self) -> Result<CertificateInfo, MaterialError> {
        let cert = parse_certificate(&self.der)?;
        let validity = cert.validity();
        Ok(CertificateInfo {
            not_before: system_time(&validity.not_before),
            not_after: system_time(&validity.not_after),
            serial_hex: serial_hex(cert.raw_serial()),
            subject: rfc4514::format(cert.subject()),
            issuer: rfc4514::format(cert.issuer()),
            sha256: sha256_colon(&self.der),
            sha1: sha1_colon(&self.der),
            is_ca: cert.is_ca(),
            self_signed: is_self_signed(&cert),
        })
    }
}

/// What a certificate says, in the forms the status reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Serial number, uppercase hex without separators, as `openssl x509 -serial` prints it
    /// (two digits per byte; the DER sign byte is not shown).
    pub serial_hex: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// SHA-256 of the DER, uppercase colon hex.
    pub sha256: String,
    /// SHA-1 of the DER, uppercase colon hex.
    pub sha1: String,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// True when subject == issuer and the signature verifies with its own key.
    pub self_signed: bool,
}

/// A key with its certificate chain: what a `kubernetes.io/tls` Secret holds.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    /// The private key.
    pub key: PrivateKey,
    /// The certificate first, then the intermediates above it; never the root, unless the
    /// certificate is itself self-signed (then the chain is just that certificate).
    pub chain: Vec<Certificate>,
    /// The root of the chain (the certificate itself when self-signed).
    pub ca: Certificate,
}

impl TlsMaterial {
    /// The certificate itself (the first of the chain).
    pub fn certificate(&self) -> Result<&Certificate, MaterialError> {
        self.chain
            .first()
            .ok_or_else(|| MaterialError::Invalid("the certificate chain is empty".to_owned()))
    }
}

/// Issues a certificate for `key` as `spec` describes, valid from `now` for
/// `spec.duration`: self-signed when `issuer` is `None`, else signed by the issuer's key
/// (the issuer's chain and root are carried into the result).
///
/// The signature digest follows [`resolve_digest`] for the signing key (the issuer's key, or
/// `key` when self-signed). A CA-signed certificate gets an AuthorityKeyIdentifier equal to
/// the issuer's SubjectKeyIdentifier. Errors: `Unsupported` for what the spec asks but
/// cannot be produced (digest, a CA below a CA whose pathLen forbids it, a negative or
/// too long duration), `Invalid` for an unusable issuer.
pub fn issue(
    spec: &CertificateKeyPairSpec,
    key: PrivateKey,
    issuer: Option<&TlsMaterial>,
    now: SystemTime,
) -> Result<TlsMaterial, MaterialError> {
    let mut params = certificate_params(spec, now)?;
    match issuer {
        None => {
            let alg = signature_algorithm(key.kind(), spec.digest)?;
            let signer = rcgen_key_pair(&key, alg)?;
            let cert = params.self_signed(&signer).map_err(rcgen_error)?;
            let cert = Certificate::from_der(cert.der().to_vec());
            Ok(TlsMaterial {
                key,
                chain: vec![cert.clone()],
                ca: cert,
            })
        }
        Some(issuer) => {
            let issuer_cert = check_issuer(issuer, spec.is_ca)?;
            let alg = signature_algorithm(issuer.key.kind(), spec.digest)?;
            let signer = rcgen_key_pair(&issuer.key, alg)?;
            let signer = rcgen::Issuer::from_ca_cert_der(&issuer_cert.der().into(), signer)
                .map_err(rcgen_error)?;
            params.use_authority_key_identifier_extension = true;
            let subject = rcgen_key_pair(&key, subject_algorithm(key.kind()))?;
            let cert = params.signed_by(&subject, &signer).map_err(rcgen_error)?;
            let mut chain = vec![Certificate::from_der(cert.der().to_vec())];
            chain.extend(issuer.chain.iter().filter(|c| **c != issuer.ca).cloned());
            Ok(TlsMaterial {
                key,
                chain,
                ca: issuer.ca.clone(),
            })
        }
    }
}

/// The digest a certificate signed by a `signer` key uses when the spec asks for `digest`:
/// RSA signs with SHA256 (default), SHA384 or SHA512; ECDSA P-256 only with SHA256, P-384
/// only with SHA384, P-521 with SHA512 (default), SHA384 or SHA256; Ed25519 has no separate
/// digest (`None`; asking for one is `Unsupported`).
pub fn resolve_digest(
    signer: KeyKind,
    digest: Option<Digest>,
) -> Result<Option<Digest>, MaterialError> {
    use Digest::{SHA256, SHA384, SHA512};
    let (allowed, default, hint): (&[Digest], Option<Digest>, &str) = match signer {
        KeyKind::Rsa(_) => (&[SHA256, SHA384, SHA512], Some(SHA256), ""),
        KeyKind::EcdsaP256 => (&[SHA256], Some(SHA256), "ECDSA P-256 signs with SHA256"),
        KeyKind::EcdsaP384 => (&[SHA384], Some(SHA384), "ECDSA P-384 signs with SHA384"),
        KeyKind::EcdsaP521 => (&[SHA256, SHA384, SHA512], Some(SHA512), ""),
        KeyKind::Ed25519 => (
            &[],
            None,
            "Ed25519 signs without a separate digest; leave digest unset",
        ),
    };
    match digest {
        None => Ok(default),
        Some(d) if allowed.contains(&d) => Ok(Some(d)),
        Some(d) => Err(MaterialError::Unsupported(format!(
            "digest {d:?} is not available for an {signer} signing key; {hint}"
        ))),
    }
}

/// The rcgen signature algorithm for a signer and the spec's digest.
fn signature_algorithm(
    signer: KeyKind,
    digest: Option<Digest>,
) -> Result<&'static SignatureAlgorithm, MaterialError> {
    use Digest::{SHA256, SHA384, SHA512};
    Ok(match (signer, resolve_digest(signer, digest)?) {
        (KeyKind::Rsa(_), Some(SHA384)) => &rcgen::PKCS_RSA_SHA384,
        (KeyKind::Rsa(_), Some(SHA512)) => &rcgen::PKCS_RSA_SHA512,
        (KeyKind::Rsa(_), _) => &rcgen::PKCS_RSA_SHA256,
        (KeyKind::EcdsaP256, _) => &rcgen::PKCS_ECDSA_P256_SHA256,
        (KeyKind::EcdsaP384, _) => &rcgen::PKCS_ECDSA_P384_SHA384,
        (KeyKind::EcdsaP521, Some(SHA256)) => &rcgen::PKCS_ECDSA_P521_SHA256,
        (KeyKind::EcdsaP521, Some(SHA384)) => &rcgen::PKCS_ECDSA_P521_SHA384,
        (KeyKind::EcdsaP521, _) => &rcgen::PKCS_ECDSA_P521_SHA512,
        (KeyKind::Ed25519, _) => &rcgen::PKCS_ED25519,
    })
}

/// The signatureAlgorithm OID of a certificate signed by `signer` for the spec's digest.
pub(crate) fn signature_oid(
    signer: KeyKind,
    digest: Option<Digest>,
) -> Result<Oid<'static>, MaterialError> {
    use Digest::{SHA384, SHA512};
    let resolved = resolve_digest(signer, digest)?;
    Ok(match (signer, resolved) {
        (KeyKind::Ed25519, _) => OID_SIG_ED25519,
        (KeyKind::Rsa(_), Some(SHA384)) => OID_PKCS1_SHA384WITHRSA,
        (KeyKind::Rsa(_), Some(SHA512)) => OID_PKCS1_SHA512WITHRSA,
        (KeyKind::Rsa(_), _) => OID_PKCS1_SHA256WITHRSA,
        (_, Some(SHA384)) => OID_SIG_ECDSA_WITH_SHA384,
        (_, Some(SHA512)) => OID_SIG_ECDSA_WITH_SHA512,
        (_, _) => OID_SIG_ECDSA_WITH_SHA256,
    })
}

/// Any algorithm of the key's type: rcgen derives the SubjectPublicKeyInfo from it.
fn subject_algorithm(kind: KeyKind) -> &'static SignatureAlgorithm {
    match kind {
        KeyKind::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
        KeyKind::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyKind::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyKind::EcdsaP521 => &rcgen::PKCS_ECDSA_P521_SHA512,
        KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

fn rcgen_key_pair(
    key: &PrivateKey,
    alg: &'static SignatureAlgorithm,
) -> Result<rcgen::KeyPair, MaterialError> {
    rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key.pkcs8_der().into(), alg)
        .map_err(|_| MaterialError::Crypto(format!("loading the {} key failed", key.kind())))
}

fn rcgen_error(e: rcgen::Error) -> MaterialError {
    MaterialError::Crypto(format!("building the certificate failed: {e}"))
}

/// The issuer's certificate, after checking that the issuer can sign what the spec asks.
fn check_issuer(issuer: &TlsMaterial, new_is_ca: bool) -> Result<&Certificate, MaterialError> {
    let cert = issuer.certificate()?;
    let parsed = parse_certificate(cert.der())?;
    if !parsed.is_ca() {
        return Err(MaterialError::Invalid(
            "the issuer's certificate is not a CA (basicConstraints CA:TRUE is missing)".to_owned(),
        ));
    }
    if parsed.public_key().raw != issuer.key.public_key_der()?.as_slice() {
        return Err(MaterialError::Invalid(
            "the issuer's key does not belong to its certificate".to_owned(),
        ));
    }
    if new_is_ca {
        check_path_length_allows_ca(issuer)?;
    }
    Ok(cert)
}

/// A new CA below `issuer` adds one intermediate below every CA of the issuer's chain: each
/// pathLen must allow it, or every chain through the new CA fails verification.
fn check_path_length_allows_ca(issuer: &TlsMaterial) -> Result<(), MaterialError> {
    let mut above = issuer.chain.clone();
    if !above.contains(&issuer.ca) {
        above.push(issuer.ca.clone());
    }
    for (depth, cert) in above.iter().enumerate() {
        let parsed = parse_certificate(cert.der())?;
        let path_len = parsed
            .basic_constraints()
            .ok()
            .flatten()
            .and_then(|bc| bc.value.path_len_constraint);
        if let Some(limit) = path_len
            && (limit as usize) < depth + 1
        {
            return Err(MaterialError::Unsupported(format!(
                "the issuing CA chain allows no further CA below it: {} has maxPathLength {limit}",
                rfc4514::format(parsed.subject())
            )));
        }
    }
    Ok(())
}

/// Everything of the certificate that comes from the spec.
fn certificate_params(
    spec: &CertificateKeyPairSpec,
    now: SystemTime,
) -> Result<CertificateParams, MaterialError> {
    let (not_before, not_after) = validity(spec, now)?;
    let mut params = CertificateParams::default();
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial()?.to_vec().into());
    params.distinguished_name = distinguished_name(spec)?;
    params.subject_alt_names = subject_alt_names(spec)?;
    params.is_ca = if spec.is_ca {
        IsCa::Ca(match spec.max_path_length {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        })
    } else {
        IsCa::ExplicitNoCa
    };
    let usages = expected_usages(spec);
    params.key_usages = usages.iter().filter_map(|u| key_usage(*u)).collect();
    params.extended_key_usages = usages
        .iter()
        .filter_map(|u| extended_key_usage(*u))
        .collect();
    params.crl_distribution_points = spec
        .crl_distribution_points
        .iter()
        .map(|url| CrlDistributionPoint {
            uris: vec![url.clone()],
        })
        .collect();
    if !spec.ocsp_servers.is_empty() || !spec.issuing_certificate_urls.is_empty() {
        let aia = der::authority_info_access(&spec.ocsp_servers, &spec.issuing_certificate_urls)?;
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(der::AIA_OID, aia));
    }
    Ok(params)
}

/// notBefore = `now` in whole seconds; notAfter = notBefore + duration (whole seconds).
fn validity(
    spec: &CertificateKeyPairSpec,
    now: SystemTime,
) -> Result<(OffsetDateTime, OffsetDateTime), MaterialError> {
    if spec.duration.is_negative() {
        return Err(MaterialError::Unsupported(
            "duration must be positive".to_owned(),
        ));
    }
    let duration = Duration::from(spec.duration);
    let too_long = || MaterialError::Unsupported("duration is too long".to_owned());
    let not_before = whole_seconds(OffsetDateTime::from(now));
    let not_after = time::Duration::try_from(duration)
        .ok()
        .and_then(|d| not_before.checked_add(d))
        .ok_or_else(too_long)?;
    let not_after = whole_seconds(not_after);
    if not_after.year() > 9999 {
        return Err(too_long());
    }
    Ok((not_before, not_after))
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// 16 random bytes, positive and without a leading zero byte (so the DER INTEGER is exactly
/// 16 bytes long).
fn random_serial() -> Result<[u8; 16], MaterialError> {
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial)
        .map_err(|_| MaterialError::Crypto("the random generator failed".to_owned()))?;
    serial[0] = (serial[0] & 0x7f).max(1);
    Ok(serial)
}

/// A subject attribute the spec sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubjectField {
    /// C (2.5.4.6), `subject.countries`.
    Country,
    /// ST (2.5.4.8), `subject.provinces`.
    Province,
    /// L (2.5.4.7), `subject.localities`.
    Locality,
    /// street (2.5.4.9), `subject.streetAddresses`.
    Street,
    /// postalCode (2.5.4.17), `subject.postalCodes`.
    PostalCode,
    /// O (2.5.4.10), `subject.organizations`.
    Organization,
    /// OU (2.5.4.11), `subject.organizationalUnits`.
    OrganizationalUnit,
    /// CN (2.5.4.3), `commonName`.
    CommonName,
    /// serialNumber (2.5.4.5), `subject.serialNumber`.
    SerialNumber,
}

impl SubjectField {
    /// The attribute type OID, dotted.
    pub(crate) fn oid(self) -> &'static str {
        match self {
            Self::CommonName => "2.5.4.3",
            Self::SerialNumber => "2.5.4.5",
            Self::Country => "2.5.4.6",
            Self::Locality => "2.5.4.7",
            Self::Province => "2.5.4.8",
            Self::Street => "2.5.4.9",
            Self::Organization => "2.5.4.10",
            Self::OrganizationalUnit => "2.5.4.11",
            Self::PostalCode => "2.5.4.17",
        }
    }

    /// The spec field, as messages name it.
    pub(crate) fn spec_field(self) -> &'static str {
        match self {
            Self::CommonName => "commonName",
            Self::SerialNumber => "subject.serialNumber",
            Self::Country => "subject.countries",
            Self::Locality => "subject.localities",
            Self::Province => "subject.provinces",
            Self::Street => "subject.streetAddresses",
            Self::Organization => "subject.organizations",
            Self::OrganizationalUnit => "subject.organizationalUnits",
            Self::PostalCode => "subject.postalCodes",
        }
    }

    fn dn_type(self) -> DnType {
        match self {
            Self::CommonName => DnType::CommonName,
            Self::Country => DnType::CountryName,
            Self::Locality => DnType::LocalityName,
            Self::Province => DnType::StateOrProvinceName,
            Self::Organization => DnType::OrganizationName,
            Self::OrganizationalUnit => DnType::OrganizationalUnitName,
            Self::SerialNumber => DnType::CustomDnType(vec![2, 5, 4, 5]),
            Self::Street => DnType::CustomDnType(vec![2, 5, 4, 9]),
            Self::PostalCode => DnType::CustomDnType(vec![2, 5, 4, 17]),
        }
    }

    /// countryName and serialNumber are PrintableString in X.520; the rest UTF8String.
    fn dn_value(self, value: &str) -> DnValue {
        match self {
            Self::Country | Self::SerialNumber => PrintableString::try_from(value)
                .map(DnValue::PrintableString)
                .unwrap_or_else(|_| DnValue::Utf8String(value.to_owned())),
            _ => DnValue::Utf8String(value.to_owned()),
        }
    }
}

/// The subject attributes the spec asks for, in the order they are written (C, ST, L,
/// street, postalCode, O, OU, CN, serialNumber: the order Go's crypto/x509 uses).
pub(crate) fn subject_attributes(
    spec: &CertificateKeyPairSpec,
) -> Result<Vec<(SubjectField, String)>, MaterialError> {
    let subject = spec.subject.clone().unwrap_or_default();
    let lists: [(SubjectField, &[String]); 7] = [
        (SubjectField::Country, &subject.countries),
        (SubjectField::Province, &subject.provinces),
        (SubjectField::Locality, &subject.localities),
        (SubjectField::Street, &subject.street_addresses),
        (SubjectField::PostalCode, &subject.postal_codes),
        (SubjectField::Organization, &subject.organizations),
        (
            SubjectField::OrganizationalUnit,
            &subject.organizational_units,
        ),
    ];
    let mut out = Vec::new();
    for (field, values) in lists {
        match values {
            [] => {}
            [value] => out.push((field, value.clone())),
            _ => {
                return Err(MaterialError::Unsupported(format!(
                    "{} holds more than one value; a certificate carries one value per attribute",
                    field.spec_field()
                )));
            }
        }
    }
    if let Some(cn) = &spec.common_name {
        out.push((SubjectField::CommonName, cn.clone()));
    }
    if let Some(serial) = &subject.serial_number
        && !serial.is_empty()
    {
        out.push((SubjectField::SerialNumber, serial.clone()));
    }
    Ok(out)
}

fn distinguished_name(spec: &CertificateKeyPairSpec) -> Result<DistinguishedName, MaterialError> {
    let mut dn = DistinguishedName::new();
    for (field, value) in subject_attributes(spec)? {
        dn.push(field.dn_type(), field.dn_value(&value));
    }
    Ok(dn)
}

fn subject_alt_names(spec: &CertificateKeyPairSpec) -> Result<Vec<SanType>, MaterialError> {
    let ia5 = |value: &String, field: &str| {
        Ia5String::try_from(value.as_str()).map_err(|_| {
            MaterialError::Unsupported(format!(
                "{field} entries must be ASCII (IA5String); use punycode or percent-encoding"
            ))
        })
    };
    let mut sans = Vec::new();
    for name in &spec.dns_names {
        sans.push(SanType::DnsName(ia5(name, "dnsNames")?));
    }
    for ip in &spec.ip_addresses {
        let ip: IpAddr = ip.parse().map_err(|_| {
            MaterialError::Unsupported(
                "ipAddresses holds an entry that is not an IP address".to_owned(),
            )
        })?;
        sans.push(SanType::IpAddress(ip));
    }
    for email in &spec.email_addresses {
        sans.push(SanType::Rfc822Name(ia5(email, "emailAddresses")?));
    }
    for uri in &spec.uris {
        sans.push(SanType::URI(ia5(uri, "uris")?));
    }
    Ok(sans)
}

/// The spec's usages plus CertSign and CRLSign for a CA. Without usages in the spec: a leaf
/// gets DigitalSignature, KeyEncipherment and ServerAuth; a CA only DigitalSignature (no
/// extended key usage, which verifiers such as webpki and Go would apply to the whole chain).
pub(crate) fn expected_usages(spec: &CertificateKeyPairSpec) -> BTreeSet<KeyUsage> {
    let mut usages: BTreeSet<KeyUsage> = match (spec.usages.is_empty(), spec.is_ca) {
        (false, _) => spec.usages.iter().copied().collect(),
        (true, false) => [
            KeyUsage::DigitalSignature,
            KeyUsage::KeyEncipherment,
            KeyUsage::ServerAuth,
        ]
        .into(),
        (true, true) => [KeyUsage::DigitalSignature].into(),
    };
    if spec.is_ca {
        usages.insert(KeyUsage::CertSign);
        usages.insert(KeyUsage::CRLSign);
    }
    usages
}

fn key_usage(usage: KeyUsage) -> Option<KeyUsagePurpose> {
    Some(match usage {
        KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
        KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
        KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
        KeyUsage::CertSign => KeyUsagePurpose::KeyCertSign,
        KeyUsage::CRLSign => KeyUsagePurpose::CrlSign,
        _ => return None,
    })
}

fn extended_key_usage(usage: KeyUsage) -> Option<ExtendedKeyUsagePurpose> {
    Some(match usage {
        KeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
        KeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
        KeyUsage::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
        KeyUsage::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
        KeyUsage::OCSPSigning => ExtendedKeyUsagePurpose::OcspSigning,
        KeyUsage::TimeStamping => ExtendedKeyUsagePurpose::TimeStamping,
        _ => return None,
    })
}

/// Parses DER into x509-parser's view.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, MaterialError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(MaterialError::Invalid(
            "trailing data after the certificate".to_owned(),
        )),
        Err(_) => Err(MaterialError::Invalid(
            "not a valid X.509 certificate".to_owned(),
        )),
    }
}

/// True when `cert`'s signature verifies with `signer`'s public key. Uses x509-parser's
/// verification, and aws-lc-rs directly for the ECDSA combinations x509-parser does not map
/// (P-521, and SHA-512 on any curve).
pub(crate) fn verify_signed_by(
    cert: &X509Certificate<'_>,
    signer: &SubjectPublicKeyInfo<'_>,
) -> bool {
    match cert.verify_signature(Some(signer)) {
        Ok(()) => true,
        Err(X509Error::SignatureUnsupportedAlgorithm) => verify_ecdsa_fallback(cert, signer),
        Err(_) => false,
    }
}

fn verify_ecdsa_fallback(cert: &X509Certificate<'_>, signer: &SubjectPublicKeyInfo<'_>) -> bool {
    let sig = &cert.signature_algorithm.algorithm;
    let Some(curve) = signer
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
    else {
        return false;
    };
    let table: [(&Oid<'_>, &Oid<'_>, &'static dyn VerificationAlgorithm); 9] = [
        (
            &OID_EC_P256,
            &OID_SIG_ECDSA_WITH_SHA256,
            &ECDSA_P256_SHA256_ASN1,
        ),
        (
            &OID_EC_P256,
            &OID_SIG_ECDSA_WITH_SHA384,
            &ECDSA_P256_SHA384_ASN1,
        ),
        (
            &OID_EC_P256,
            &OID_SIG_ECDSA_WITH_SHA512,
            &ECDSA_P256_SHA512_ASN1,
        ),
        (
            &OID_NIST_EC_P384,
            &OID_SIG_ECDSA_WITH_SHA256,
            &ECDSA_P384_SHA256_ASN1,
        ),
        (
            &OID_NIST_EC_P384,
            &OID_SIG_ECDSA_WITH_SHA384,
            &ECDSA_P384_SHA384_ASN1,
        ),
        (
            &OID_NIST_EC_P384,
            &OID_SIG_ECDSA_WITH_SHA512,
            &ECDSA_P384_SHA512_ASN1,
        ),
        (
            &OID_NIST_EC_P521,
            &OID_SIG_ECDSA_WITH_SHA256,
            &ECDSA_P521_SHA256_ASN1,
        ),
        (
            &OID_NIST_EC_P521,
            &OID_SIG_ECDSA_WITH_SHA384,
            &ECDSA_P521_SHA384_ASN1,
        ),
        (
            &OID_NIST_EC_P521,
            &OID_SIG_ECDSA_WITH_SHA512,
            &ECDSA_P521_SHA512_ASN1,
        ),
    ];
    let Some((_, _, alg)) = table.iter().find(|(c, s, _)| **c == curve && *s == sig) else {
        return false;
    };
    UnparsedPublicKey::new(*alg, &signer.subject_public_key.data)
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .is_ok()
}

/// Subject == issuer and the certificate verifies with its own key.
pub(crate) fn is_self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw() && verify_signed_by(cert, cert.public_key())
}

fn system_time(t: &ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// The serial as `openssl x509 -serial` prints it: uppercase hex, two digits per byte, the
/// DER sign-padding zero byte dropped.
fn serial_hex(raw: &[u8]) -> String {
    let trimmed = match raw {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => raw,
    };
    super::fingerprint::lower_hex(trimmed).to_uppercase()
}

#[cfg(test)]
mod tests;
