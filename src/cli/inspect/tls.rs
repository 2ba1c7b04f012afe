//! TLS material: the certificate chain (`tls.crt` then `ca.crt`, or a cert_chain's
//! `chain.pem`), the private key's type, the DER and combined copies, PKCS#12 files.

use crate::material::describe::{self, PrivateKeyDetails};
use crate::material::encode::{
    CA_CRT, KEYSTORE_P12, TLS_COMBINED_PEM, TLS_CRT, TLS_CRT_DER, TLS_KEY, TLS_KEY_DER,
    TRUSTSTORE_P12,
};
use crate::material::fingerprint::sha256_tagged;
use crate::material::parse::certificates_from_pem;
use crate::material::pkcs12::{self, Pkcs12Entry};
use crate::material::x509::Certificate;

use super::{CertificateView, Context, Data, Section, expires, timestamp, yes_no};

/// Secret key of a cert_chain KeyringSecret.
const CHAIN_PEM: &str = "chain.pem";

/// The sections of the TLS material in `data`.
pub(super) fn sections(data: &Data, ctx: &Context<'_>) -> Vec<Section> {
    let chain = Chain::read(data);
    let mut out: Vec<Section> = chain.section(data, ctx).into_iter().collect();
    let first = chain.certificates.first().map(|(_, c)| c);
    if let Some(pem) = data.get(TLS_KEY) {
        out.push(key_section(
            "Private key (tls.key)",
            TLS_KEY,
            describe::private_key_pem(pem),
            first,
        ));
    }
    if let Some(der) = data.get(TLS_KEY_DER) {
        out.push(key_section(
            "Private key, DER (tls.key.der)",
            TLS_KEY_DER,
            describe::private_key_der(der),
            first,
        ));
    }
    out.extend(der_certificate(data, first));
    out.extend(combined(data, &chain));
    for key in [KEYSTORE_P12, TRUSTSTORE_P12] {
        if let Some(p12) = data.get(key) {
            out.push(pkcs12_section(key, p12, &chain, ctx));
        }
    }
    out
}

/// The certificates of `tls.crt` (or `chain.pem`) and `ca.crt`, in order, each with where
/// it comes from.
struct Chain {
    certificates: Vec<(String, Certificate)>,
    sources: Vec<&'static str>,
    problems: Vec<String>,
}

impl Chain {
    fn read(data: &Data) -> Self {
        let mut chain = Self {
            certificates: Vec::new(),
            sources: Vec::new(),
            problems: Vec::new(),
        };
        for key in [TLS_CRT, CHAIN_PEM, CA_CRT] {
            let Some(pem) = data.get(key) else {
                continue;
            };
            chain.sources.push(key);
            match certificates_from_pem(pem) {
                Ok(certificates) => chain.add(key, certificates),
                Err(e) => chain.problems.push(format!("{key}: {e}")),
            }
        }
        chain
    }

    fn add(&mut self, key: &str, certificates: Vec<Certificate>) {
        for (i, certificate) in certificates.into_iter().enumerate() {
            let already = self
                .certificates
                .iter()
                .find(|(_, c)| *c == certificate)
                .map(|(source, _)| source.clone());
            match already {
                Some(source) => self.problems.push(format!(
                    "{key} #{}: the same certificate as {source}",
                    i + 1
                )),
                None => self
                    .certificates
                    .push((format!("{key} #{}", i + 1), certificate)),
            }
        }
    }

    fn section(&self, data: &Data, ctx: &Context<'_>) -> Option<Section> {
        if self.sources.is_empty() {
            return None;
        }
        let title = match self.sources.as_slice() {
            [CA_CRT] => "CA certificate (ca.crt)".to_owned(),
            sources => format!("Certificate chain ({})", sources.join(", then ")),
        };
        let mut section = Section::new(title, &self.sources);
        for problem in &self.problems {
            section.field("Note", problem.clone());
        }
        section.certificates = self.views(ctx);
        section.field("Chain", self.summary());
        if data.contains_key(TLS_CRT) && !data.contains_key(TLS_KEY) {
            section.field("Private key", "not in this Secret");
        }
        if self.sources.first() != Some(&CA_CRT) {
            section.canonical = self
                .certificates
                .first()
                .map(|(_, c)| sha256_tagged(c.der()));
        }
        Some(section)
    }

    fn views(&self, ctx: &Context<'_>) -> Vec<CertificateView> {
        let certs = &self.certificates;
        certs
            .iter()
            .enumerate()
            .filter_map(|(i, (source, cert))| {
                let next = certs.get(i + 1);
                view(source, cert, next, ctx).ok()
            })
            .collect()
    }

    /// Whether each certificate is signed by the next and the last is a root.
    fn summary(&self) -> String {
        let certs = &self.certificates;
        if certs.is_empty() {
            return "no readable certificate".to_owned();
        }
        let linked = certs
            .windows(2)
            .all(|pair| describe::signed_by(&pair[0].1, &pair[1].1));
        let root = certs
            .last()
            .and_then(|(_, c)| c.info().ok())
            .is_some_and(|i| i.self_signed);
        let count = format!("{} certificates", certs.len());
        match (linked, root) {
            _ if certs.len() == 1 && root => "1 certificate, self-signed".to_owned(),
            _ if certs.len() == 1 => "1 certificate; its issuer is not in this Secret".to_owned(),
            (true, true) => {
                format!("{count}, each signed by the next, ending in a self-signed root")
            }
            (true, false) => {
                format!("{count}, each signed by the next; the root is not in this Secret")
            }
            (false, _) => format!("{count}; BROKEN: a certificate is not signed by the next"),
        }
    }
}

/// One certificate, with who signed it as far as the chain tells.
fn view(
    source: &str,
    cert: &Certificate,
    next: Option<&(String, Certificate)>,
    ctx: &Context<'_>,
) -> Result<CertificateView, crate::material::MaterialError> {
    let details = describe::certificate(cert)?;
    let info = &details.info;
    let signed_by = match next {
        Some((next_source, next_cert)) if describe::signed_by(cert, next_cert) => {
            format!("the next certificate ({next_source}): signature verified")
        }
        Some((next_source, _)) => {
            format!("NOT the next certificate ({next_source}): the signature does not verify")
        }
        None if info.self_signed => "itself (self-signed root)".to_owned(),
        None => format!("{} (not in this Secret)", info.issuer),
    };
    Ok(CertificateView {
        source: source.to_owned(),
        subject: info.subject.clone(),
        issuer: info.issuer.clone(),
        serial: info.serial_hex.clone(),
        not_before: timestamp(info.not_before),
        not_after: timestamp(info.not_after),
        expires: expires(ctx.now, info.not_after),
        names: details.names.clone(),
        key: details.key.clone(),
        is_ca: info.is_ca,
        max_path_length: details.max_path_length,
        usages: details.usages.clone(),
        sha256: info.sha256.clone(),
        sha1: info.sha1.clone(),
        signed_by,
    })
}

/// A private key: its type and encoding, and whether it belongs to the first certificate.
fn key_section(
    title: &str,
    key: &str,
    details: Result<PrivateKeyDetails, crate::material::MaterialError>,
    first: Option<&Certificate>,
) -> Section {
    let mut section = Section::new(title, &[key]);
    match details {
        Ok(details) => {
            section.field("Type", details.kind.to_string());
            section.field("Encoding", details.encoding);
            if let Some(cert) = first {
                let matches = describe::key_matches(&details, cert);
                section.field("Belongs to the first certificate", yes_no(matches));
            }
        }
        Err(e) => section.field("Problem", e.to_string()),
    }
    section
}

/// `tls.crt.der`: whether it is the first certificate.
fn der_certificate(data: &Data, first: Option<&Certificate>) -> Option<Section> {
    let der = data.get(TLS_CRT_DER)?;
    let mut section = Section::new("Certificate, DER (tls.crt.der)", &[TLS_CRT_DER]);
    let cert = Certificate::from_der(der.clone());
    match cert.info() {
        Ok(info) => {
            section.field("Subject", info.subject);
            section.field("SHA-256", info.sha256);
            section.field(
                "Same as the first certificate",
                yes_no(first == Some(&cert)),
            );
        }
        Err(e) => section.field("Problem", e.to_string()),
    }
    Some(section)
}

/// `tls-combined.pem`: the key's type and whether the certificates are the chain's.
fn combined(data: &Data, chain: &Chain) -> Option<Section> {
    let pem = data.get(TLS_COMBINED_PEM)?;
    let mut section = Section::new(
        "Key and chain in one file (tls-combined.pem)",
        &[TLS_COMBINED_PEM],
    );
    match describe::private_key_pem(pem) {
        Ok(key) => section.field("Private key", format!("{} ({})", key.kind, key.encoding)),
        Err(e) => section.field("Private key", e.to_string()),
    }
    match describe::certificates_among(pem) {
        Ok(certs) => {
            let ours: Vec<&Certificate> = chain
                .certificates
                .iter()
                .filter(|(source, _)| source.starts_with(TLS_CRT))
                .map(|(_, c)| c)
                .collect();
            section.field("Certificates", certs.len().to_string());
            section.field(
                "Same certificates as tls.crt",
                yes_no(certs.iter().collect::<Vec<_>>() == ours),
            );
        }
        Err(e) => section.field("Certificates", e.to_string()),
    }
    Some(section)
}

/// A PKCS#12 file: its profile and, when the password could be read, its entries.
fn pkcs12_section(key: &str, p12: &[u8], chain: &Chain, ctx: &Context<'_>) -> Section {
    let mut section = Section::new(format!("PKCS#12 file ({key})"), &[key]);
    let password = match ctx.pkcs12_password {
        Ok(password) => password.as_ref(),
        Err(why) => {
            section.field("Contents", format!("not opened: {why}"));
            None
        }
    };
    let contents = match pkcs12::contents(p12, password) {
        Ok(contents) => contents,
        Err(e) => {
            section.field("Problem", e.to_string());
            return section;
        }
    };
    let profile = match (contents.profile, contents.mac_digest) {
        (Some(profile), _) => format!("{profile:?}"),
        (None, Some(oid)) => format!("unknown (MAC digest {oid})"),
        (None, None) => "unknown (no MAC)".to_owned(),
    };
    section.field("Profile", profile);
    let Some(entries) = contents.entries else {
        if ctx.pkcs12_password.as_ref().is_ok_and(Option::is_none) {
            section.field(
                "Contents",
                "not opened: the owner names no keystore password",
            );
        }
        return section;
    };
    for entry in entries {
        let (name, value) = match entry {
            Pkcs12Entry::Key { alias, kind } => (
                alias_of(alias.as_deref()),
                format!(
                    "private key, {}",
                    kind.map_or_else(|| "unknown type".to_owned(), |k| k.to_string())
                ),
            ),
            Pkcs12Entry::Certificate {
                alias,
                trusted,
                certificate,
            } => (
                alias_of(alias.as_deref()),
                certificate_entry(&certificate, trusted, chain),
            ),
        };
        section.field(&name, value);
    }
    section
}

fn alias_of(alias: Option<&str>) -> String {
    format!("Entry {:?}", alias.unwrap_or(""))
}

fn certificate_entry(cert: &Certificate, trusted: bool, chain: &Chain) -> String {
    let what = if trusted {
        "trusted certificate"
    } else {
        "certificate"
    };
    let subject = cert.info().map_or_else(|e| e.to_string(), |i| i.subject);
    let same = chain
        .certificates
        .iter()
        .find(|(_, c)| c == cert)
        .map_or_else(
            || " (not in this Secret's chain)".to_owned(),
            |(s, _)| format!(" (= {s})"),
        );
    format!("{what} {subject}{same}")
}
