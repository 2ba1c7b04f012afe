//! The inverse of issuance: read TLS material from Secret data and tell whether it satisfies
//! a spec (idempotency and `existingSecret: Adopt`).

use std::collections::BTreeSet;
use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS, OID_PKIX_ACCESS_DESCRIPTOR_OCSP,
};

use crate::api::certificate_key_pair::{CertificateKeyPairSpec, KeyUsage};

use super::MaterialError;
use super::pkey::{KeyKind, PrivateKey};
use super::x509::{
    Certificate, SubjectField, TlsMaterial, expected_usages, is_self_signed, parse_certificate,
    signature_oid, subject_attributes, verify_signed_by,
};

/// Every certificate in a PEM bundle, in order.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Certificate>, MaterialError> {
    let blocks =
        pem::parse_many(pem).map_err(|_| MaterialError::Invalid("not valid PEM".to_owned()))?;
    if blocks.is_empty() {
        return Err(MaterialError::Invalid(
            "holds no PEM CERTIFICATE block".to_owned(),
        ));
    }
    blocks
        .into_iter()
        .enumerate()
        .map(|(i, block)| {
            if block.tag() != "CERTIFICATE" {
                return Err(MaterialError::Invalid(format!(
                    "PEM block {} is not a CERTIFICATE",
                    i + 1
                )));
            }
            parse_certificate(block.contents())
                .map_err(|e| MaterialError::Invalid(format!("certificate {}: {e}", i + 1)))?;
            Ok(Certificate::from_der(block.into_contents()))
        })
        .collect()
}

/// Reads `tls.crt` (certificate first, then intermediates), `tls.key` and optionally
/// `ca.crt`, and checks that the key belongs to the certificate and that each certificate
/// is signed by the next. Without `ca.crt` the root is the last certificate of `tls.crt` if it
/// is self-signed, else the material is invalid.
///
/// A self-signed root at the end of a longer `tls.crt` is moved to [`TlsMaterial::ca`] (the
/// chain never holds the root). With `ca.crt`, the root is the self-signed certificate in it
/// that signed the end of `tls.crt` (or, when `tls.crt` ends with its root, `ca.crt` must
/// hold that root). Errors are `Invalid` and name the Secret key at fault.
pub fn read_tls(
    tls_crt: &[u8],
    key: PrivateKey,
    ca_crt: Option<&[u8]>,
) -> Result<TlsMaterial, MaterialError> {
    let mut chain = certificates_from_pem(tls_crt)
        .map_err(|e| MaterialError::Invalid(format!("tls.crt: {e}")))?;
    check_key_matches(&key, &chain[0])?;
    check_chain_links(&chain)?;
    let ca_candidates = match ca_crt {
        Some(pem) => Some(
            certificates_from_pem(pem)
                .map_err(|e| MaterialError::Invalid(format!("ca.crt: {e}")))?,
        ),
        None => None,
    };
    let last = chain
        .last()
        .cloned()
        .ok_or_else(|| MaterialError::Invalid("tls.crt: holds no certificate".to_owned()))?;
    let ca = if self_signed(&last)? {
        if chain.len() > 1 {
            chain.pop();
        }
        if let Some(candidates) = &ca_candidates
            && !candidates.contains(&last)
        {
            return Err(MaterialError::Invalid(
                "ca.crt does not hold the self-signed root that tls.crt ends with".to_owned(),
            ));
        }
        last
    } else {
        let candidates = ca_candidates.ok_or_else(|| {
            MaterialError::Invalid(
                "tls.crt does not end with a self-signed root certificate and ca.crt is missing"
                    .to_owned(),
            )
        })?;
        root_of(&last, candidates)?
    };
    Ok(TlsMaterial { key, chain, ca })
}

fn self_signed(cert: &Certificate) -> Result<bool, MaterialError> {
    Ok(is_self_signed(&parse_certificate(cert.der())?))
}

fn check_key_matches(key: &PrivateKey, cert: &Certificate) -> Result<(), MaterialError> {
    let parsed = parse_certificate(cert.der())
        .map_err(|e| MaterialError::Invalid(format!("tls.crt: {e}")))?;
    if parsed.public_key().raw != key.public_key_der()?.as_slice() {
        return Err(MaterialError::Invalid(
            "tls.key does not belong to the first certificate of tls.crt".to_owned(),
        ));
    }
    Ok(())
}

fn check_chain_links(chain: &[Certificate]) -> Result<(), MaterialError> {
    for (i, pair) in chain.windows(2).enumerate() {
        let child = parse_certificate(pair[0].der())?;
        let parent = parse_certificate(pair[1].der())?;
        if !verify_signed_by(&child, parent.public_key()) {
            return Err(MaterialError::Invalid(format!(
                "tls.crt: certificate {} is not signed by certificate {} (the chain must go from the certificate up to its CA)",
                i + 1,
                i + 2
            )));
        }
    }
    Ok(())
}

/// The self-signed certificate of `ca.crt` that signed `end` (the last of `tls.crt`).
fn root_of(end: &Certificate, candidates: Vec<Certificate>) -> Result<Certificate, MaterialError> {
    let end = parse_certificate(end.der())?;
    let mut issuer_not_root = false;
    for candidate in candidates {
        let parsed = parse_certificate(candidate.der())?;
        if verify_signed_by(&end, parsed.public_key()) {
            if is_self_signed(&parsed) {
                return Ok(candidate);
            }
            issuer_not_root = true;
        }
    }
    Err(MaterialError::Invalid(if issuer_not_root {
        "ca.crt holds the issuer of tls.crt, but not a self-signed root: add the missing intermediates to tls.crt and put the root in ca.crt".to_owned()
    } else {
        "tls.crt is not signed by the certificate in ca.crt".to_owned()
    }))
}

/// Why existing material does not satisfy a spec, in words (never containing material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch(pub String);

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn mismatch(message: impl Into<String>) -> Mismatch {
    Mismatch(message.into())
}

/// Checks the material against everything in `spec` that is baked into the certificate or
/// key: key algorithm and size, subject, SANs, usages, CA constraints, digest, AIA/CRL URLs,
/// validity length, and the issuer (signed by `issuer`'s certificate, or self-signed when
/// `None`). Expiry is not checked here (that is the decide step's clock).
///
/// With an issuer, the issuer's current certificate must be byte-identical to the one in the
/// material's chain and the material's `ca` must be the issuer's `ca`: a renewed or re-keyed
/// CA makes every certificate it signed a mismatch.
pub fn check_against_spec(
    material: &TlsMaterial,
    spec: &CertificateKeyPairSpec,
    issuer: Option<&TlsMaterial>,
) -> Result<(), Mismatch> {
    let leaf = material
        .chain
        .first()
        .ok_or_else(|| mismatch("the certificate chain is empty"))?;
    let cert = parse_certificate(leaf.der())
        .map_err(|_| mismatch("the certificate is not a valid X.509 certificate"))?;
    check_key(material, spec, &cert)?;
    check_issuer(material, issuer, &cert)?;
    check_subject(spec, &cert)?;
    check_sans(spec, &cert)?;
    check_constraints(spec, &cert)?;
    check_usages(spec, &cert)?;
    check_digest(material, spec, issuer, &cert)?;
    check_urls(spec, &cert)?;
    check_validity(spec, &cert)
}

/// `ECDSA 256`, `RSA 2048`, `Ed25519`: how the spec names a key type.
fn spec_words(kind: KeyKind) -> String {
    match kind {
        KeyKind::Ed25519 => "Ed25519".to_owned(),
        other => format!("{:?} {}", other.algorithm(), other.size()),
    }
}

fn check_key(
    material: &TlsMaterial,
    spec: &CertificateKeyPairSpec,
    cert: &X509Certificate<'_>,
) -> Result<(), Mismatch> {
    let wanted = KeyKind::from_spec(spec.private_key.algorithm, spec.private_key.size)
        .map_err(|e| mismatch(e.to_string()))?;
    let have = material.key.kind();
    if have != wanted {
        return Err(mismatch(format!(
            "key is {}, spec asks for {}",
            spec_words(have),
            spec_words(wanted)
        )));
    }
    let public = material
        .key
        .public_key_der()
        .map_err(|_| mismatch("the key cannot be read"))?;
    if cert.public_key().raw != public.as_slice() {
        return Err(mismatch("the key does not belong to the certificate"));
    }
    Ok(())
}

fn check_issuer(
    material: &TlsMaterial,
    issuer: Option<&TlsMaterial>,
    cert: &X509Certificate<'_>,
) -> Result<(), Mismatch> {
    let own_root = material.chain.len() == 1 && material.ca == material.chain[0];
    let self_signed = own_root && is_self_signed(cert);
    let Some(issuer) = issuer else {
        return if self_signed {
            Ok(())
        } else {
            Err(mismatch(
                "the certificate is signed by a CA, spec asks for a self-signed certificate",
            ))
        };
    };
    if self_signed {
        return Err(mismatch(
            "the certificate is self-signed, spec names an issuer",
        ));
    }
    let issuer_cert = issuer
        .chain
        .first()
        .ok_or_else(|| mismatch("the issuer has no certificate"))?;
    let issuer_is_root = *issuer_cert == issuer.ca;
    let ours = if issuer_is_root {
        (material.chain.len() == 1).then_some(&material.ca)
    } else {
        material.chain.get(1)
    };
    if ours != Some(issuer_cert) {
        return Err(mismatch(if same_subject(ours, issuer_cert) {
            "issued by a previous certificate of the CA"
        } else {
            "issued by a different CA"
        }));
    }
    if material.ca != issuer.ca {
        return Err(mismatch("ca.crt is not the root of the issuer's chain"));
    }
    let intermediates: Vec<&Certificate> =
        issuer.chain.iter().filter(|c| **c != issuer.ca).collect();
    if material.chain.iter().skip(1).collect::<Vec<_>>() != intermediates {
        return Err(mismatch(
            "the intermediate certificates differ from the issuer's chain",
        ));
    }
    let signer = parse_certificate(issuer_cert.der())
        .map_err(|_| mismatch("the issuer's certificate is not valid"))?;
    if !verify_signed_by(cert, signer.public_key()) {
        return Err(mismatch("issued by a different CA"));
    }
    Ok(())
}

fn same_subject(ours: Option<&Certificate>, theirs: &Certificate) -> bool {
    let Some(ours) = ours else {
        return false;
    };
    match (
        parse_certificate(ours.der()),
        parse_certificate(theirs.der()),
    ) {
        (Ok(a), Ok(b)) => a.subject().as_raw() == b.subject().as_raw(),
        _ => false,
    }
}

const SUBJECT_FIELDS: [SubjectField; 9] = [
    SubjectField::CommonName,
    SubjectField::Organization,
    SubjectField::OrganizationalUnit,
    SubjectField::Country,
    SubjectField::Province,
    SubjectField::Locality,
    SubjectField::Street,
    SubjectField::PostalCode,
    SubjectField::SerialNumber,
];

fn check_subject(
    spec: &CertificateKeyPairSpec,
    cert: &X509Certificate<'_>,
) -> Result<(), Mismatch> {
    let expected = subject_attributes(spec).map_err(|e| mismatch(e.to_string()))?;
    let actual: Vec<(String, String)> = cert
        .subject()
        .iter_attributes()
        .map(|a| {
            let value = a
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| String::from_utf8_lossy(a.as_slice()).into_owned());
            (a.attr_type().to_id_string(), value)
        })
        .collect();
    for field in SUBJECT_FIELDS {
        let want: Vec<&str> = expected
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, v)| v.as_str())
            .collect();
        let have: Vec<&str> = actual
            .iter()
            .filter(|(oid, _)| oid == field.oid())
            .map(|(_, v)| v.as_str())
            .collect();
        if want != have {
            let verb = if field == SubjectField::CommonName || field == SubjectField::SerialNumber {
                "differs"
            } else {
                "differ"
            };
            return Err(mismatch(format!("{} {verb}", field.spec_field())));
        }
    }
    if actual
        .iter()
        .any(|(oid, _)| !SUBJECT_FIELDS.iter().any(|f| f.oid() == oid))
    {
        return Err(mismatch(
            "the subject has attributes the spec cannot express",
        ));
    }
    Ok(())
}

/// The SANs of a certificate, by type.
#[derive(Default, PartialEq, Eq)]
struct Sans {
    dns: BTreeSet<String>,
    ips: BTreeSet<IpAddr>,
    emails: BTreeSet<String>,
    uris: BTreeSet<String>,
    other: bool,
}

fn cert_sans(cert: &X509Certificate<'_>) -> Result<Sans, Mismatch> {
    let mut sans = Sans::default();
    let ext = cert
        .subject_alternative_name()
        .map_err(|_| mismatch("the subject alternative names cannot be read"))?;
    for name in ext.iter().flat_map(|e| e.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(n) => {
                sans.dns.insert((*n).to_owned());
            }
            GeneralName::RFC822Name(n) => {
                sans.emails.insert((*n).to_owned());
            }
            GeneralName::URI(n) => {
                sans.uris.insert((*n).to_owned());
            }
            GeneralName::IPAddress(bytes) => match ip_from_bytes(bytes) {
                Some(ip) => {
                    sans.ips.insert(ip);
                }
                None => sans.other = true,
            },
            _ => sans.other = true,
        }
    }
    Ok(sans)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

fn check_sans(spec: &CertificateKeyPairSpec, cert: &X509Certificate<'_>) -> Result<(), Mismatch> {
    let have = cert_sans(cert)?;
    let ips = spec
        .ip_addresses
        .iter()
        .map(|ip| ip.parse::<IpAddr>())
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|_| mismatch("ipAddresses holds an entry that is not an IP address"))?;
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    if have.dns != set(&spec.dns_names) {
        return Err(mismatch("dnsNames differ"));
    }
    if have.ips != ips {
        return Err(mismatch("ipAddresses differ"));
    }
    if have.emails != set(&spec.email_addresses) {
        return Err(mismatch("emailAddresses differ"));
    }
    if have.uris != set(&spec.uris) {
        return Err(mismatch("uris differ"));
    }
    if have.other {
        return Err(mismatch(
            "the certificate has subject alternative names the spec cannot express",
        ));
    }
    Ok(())
}

fn check_constraints(
    spec: &CertificateKeyPairSpec,
    cert: &X509Certificate<'_>,
) -> Result<(), Mismatch> {
    let bc = cert
        .basic_constraints()
        .map_err(|_| mismatch("basicConstraints cannot be read"))?;
    let (is_ca, path_len) = bc.map_or((false, None), |b| (b.value.ca, b.value.path_len_constraint));
    if is_ca != spec.is_ca {
        return Err(mismatch("isCA differs"));
    }
    if is_ca && path_len != spec.max_path_length.map(u32::from) {
        return Err(mismatch("maxPathLength differs"));
    }
    Ok(())
}

/// keyUsage bits (x509-parser numbers bit 0 = digitalSignature) the API can name.
const KEY_USAGE_BITS: [(u16, KeyUsage); 5] = [
    (0, KeyUsage::DigitalSignature),
    (2, KeyUsage::KeyEncipherment),
    (4, KeyUsage::KeyAgreement),
    (5, KeyUsage::CertSign),
    (6, KeyUsage::CRLSign),
];

/// The usages of a certificate, or `None` when it has usages the API cannot name.
fn cert_usages(cert: &X509Certificate<'_>) -> Result<Option<BTreeSet<KeyUsage>>, Mismatch> {
    let unreadable = |_| mismatch("the key usages cannot be read");
    let mut usages = BTreeSet::new();
    let flags = cert
        .key_usage()
        .map_err(unreadable)?
        .map_or(0, |ku| ku.value.flags);
    let mut known_mask = 0u16;
    for (bit, usage) in KEY_USAGE_BITS {
        known_mask |= 1 << bit;
        if flags & (1 << bit) != 0 {
            usages.insert(usage);
        }
    }
    if flags & !known_mask != 0 {
        return Ok(None);
    }
    if let Some(eku) = cert.extended_key_usage().map_err(unreadable)? {
        let eku = eku.value;
        if eku.any || !eku.other.is_empty() {
            return Ok(None);
        }
        for (present, usage) in [
            (eku.server_auth, KeyUsage::ServerAuth),
            (eku.client_auth, KeyUsage::ClientAuth),
            (eku.code_signing, KeyUsage::CodeSigning),
            (eku.email_protection, KeyUsage::EmailProtection),
            (eku.ocsp_signing, KeyUsage::OCSPSigning),
            (eku.time_stamping, KeyUsage::TimeStamping),
        ] {
            if present {
                usages.insert(usage);
            }
        }
    }
    Ok(Some(usages))
}

fn check_usages(spec: &CertificateKeyPairSpec, cert: &X509Certificate<'_>) -> Result<(), Mismatch> {
    if cert_usages(cert)? != Some(expected_usages(spec)) {
        return Err(mismatch("usages differ"));
    }
    Ok(())
}

fn check_digest(
    material: &TlsMaterial,
    spec: &CertificateKeyPairSpec,
    issuer: Option<&TlsMaterial>,
    cert: &X509Certificate<'_>,
) -> Result<(), Mismatch> {
    let signer = issuer.map_or(material.key.kind(), |i| i.key.kind());
    let expected = signature_oid(signer, spec.digest).map_err(|e| mismatch(e.to_string()))?;
    if cert.signature_algorithm.algorithm != expected {
        return Err(mismatch("digest differs"));
    }
    Ok(())
}

/// OCSP, caIssuers and CRL distribution point URLs of a certificate.
fn cert_urls(cert: &X509Certificate<'_>) -> [BTreeSet<String>; 3] {
    let mut ocsp = BTreeSet::new();
    let mut ca_issuers = BTreeSet::new();
    let mut crl = BTreeSet::new();
    for ext in cert.iter_extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in aia.iter() {
                    let GeneralName::URI(uri) = desc.access_location else {
                        continue;
                    };
                    if desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_OCSP {
                        ocsp.insert(uri.to_owned());
                    } else if desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS {
                        ca_issuers.insert(uri.to_owned());
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        crl.extend(names.iter().filter_map(|n| match n {
                            GeneralName::URI(uri) => Some((*uri).to_owned()),
                            _ => None,
                        }));
                    }
                }
            }
            _ => {}
        }
    }
    [ocsp, ca_issuers, crl]
}

fn check_urls(spec: &CertificateKeyPairSpec, cert: &X509Certificate<'_>) -> Result<(), Mismatch> {
    let [ocsp, ca_issuers, crl] = cert_urls(cert);
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    if ocsp != set(&spec.ocsp_servers) {
        return Err(mismatch("ocspServers differ"));
    }
    if ca_issuers != set(&spec.issuing_certificate_urls) {
        return Err(mismatch("issuingCertificateUrls differ"));
    }
    if crl != set(&spec.crl_distribution_points) {
        return Err(mismatch("crlDistributionPoints differ"));
    }
    Ok(())
}

fn check_validity(
    spec: &CertificateKeyPairSpec,
    cert: &X509Certificate<'_>,
) -> Result<(), Mismatch> {
    let validity = cert.validity();
    let length = validity.not_after.timestamp() - validity.not_before.timestamp();
    let wanted = std::time::Duration::from(spec.duration).as_secs_f64();
    if spec.duration.is_negative() || (length as f64 - wanted).abs() > 1.0 {
        return Err(mismatch("duration differs"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
