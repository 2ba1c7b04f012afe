//! The report of `keysmith inspect secret` as text for people.

use std::fmt::Write as _;

use super::{CertificateView, Field, Report, Section};

/// The report as aligned `Name: value` lines, one block per section.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "Secret {}/{} ({})\n",
        report.namespace, report.name, report.type_
    );
    let mut head = Vec::new();
    let owner = match (&report.owner, report.managed_by_keysmith) {
        (Some(owner), _) => owner.clone(),
        (None, true) => "none named (managed-by keysmith, no keysmith.dev/owner)".to_owned(),
        (None, false) => "none: not a keysmith Secret".to_owned(),
    };
    head.push(Field::new("Owner", owner));
    head.extend(report.metadata.iter().cloned());
    if let Some(check) = &report.fingerprint {
        let verdict = match &check.computed {
            Some(computed) if *computed == check.annotation => "matches the data".to_owned(),
            Some(computed) => format!("DIFFERS from the data's {computed}"),
            None => "not computed from the data".to_owned(),
        };
        head.push(Field::new(
            "Fingerprint",
            format!("{} ({verdict})", check.annotation),
        ));
    }
    let keys: Vec<String> = report
        .data
        .iter()
        .map(|k| {
            let note = if k.described || report.sections.is_empty() {
                ""
            } else {
                ", not described"
            };
            format!("{} ({} bytes{note})", k.key, k.bytes)
        })
        .collect();
    head.push(Field::new("Data", keys.join(", ")));
    fields(&mut out, "  ", &head);
    if report.sections.is_empty() {
        out.push_str("\nkeysmith does not know the shape of this Secret: only its keys and sizes are shown.\n");
    }
    for section in &report.sections {
        render_section(&mut out, section);
    }
    out
}

fn render_section(out: &mut String, section: &Section) {
    let _ = writeln!(out, "\n{}", section.title);
    fields(out, "  ", &section.fields);
    let count = section.certificates.len();
    for (i, cert) in section.certificates.iter().enumerate() {
        let _ = writeln!(out, "  [{}/{count}] {}", i + 1, cert.source);
        fields(out, "      ", &certificate_fields(cert));
    }
}

fn certificate_fields(cert: &CertificateView) -> Vec<Field> {
    let mut out = vec![
        Field::new("Subject", cert.subject.clone()),
        Field::new("Issuer", cert.issuer.clone()),
        Field::new("Serial", cert.serial.clone()),
        Field::new("Not before", cert.not_before.clone()),
        Field::new(
            "Not after",
            format!("{} ({})", cert.not_after, cert.expires),
        ),
    ];
    if !cert.names.is_empty() {
        out.push(Field::new("Names", cert.names.join(", ")));
    }
    out.push(Field::new("Key", cert.key.clone()));
    let ca = match (cert.is_ca, cert.max_path_length) {
        (true, Some(n)) => format!("yes (path length {n})"),
        (true, None) => "yes".to_owned(),
        (false, _) => "no".to_owned(),
    };
    out.push(Field::new("CA", ca));
    if !cert.usages.is_empty() {
        out.push(Field::new("Usages", cert.usages.join(", ")));
    }
    out.push(Field::new("SHA-256", cert.sha256.clone()));
    out.push(Field::new("SHA-1", cert.sha1.clone()));
    out.push(Field::new("Signed by", cert.signed_by.clone()));
    out
}

/// `indent Name:   value` lines, values aligned.
fn fields(out: &mut String, indent: &str, fields: &[Field]) {
    let width = fields
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    for field in fields {
        let label = format!("{}:", field.name);
        let _ = writeln!(
            out,
            "{indent}{label:<width$} {}",
            field.value,
            width = width
        );
    }
}
