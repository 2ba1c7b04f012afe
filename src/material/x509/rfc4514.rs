//! Distinguished names as RFC 4514 strings, the way `openssl x509 -nameopt RFC2253` prints
//! them: last RDN first, `,` between RDNs, `+` inside a multi-valued RDN, OpenSSL's short
//! attribute names (`CN`, `O`, `OU`, `C`, `ST`, `L`, `street`, `postalCode`, `serialNumber`,
//! `DC`, `UID`, `emailAddress`), RFC 4514 escaping, and `<dotted OID>=#<hex DER>` for other
//! attribute types. UTF-8 is kept as is (OpenSSL would escape it as `\XX`).
//!
//! Hand-written because x509-parser's `Display` is not RFC 4514 (first RDN first, `", "`
//! separators, no escaping).

use x509_parser::asn1_rs::Any;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::der::tlv;
use crate::material::fingerprint::lower_hex;

/// The RFC 4514 string of `name`.
pub(super) fn format(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// OpenSSL's short name of a name attribute type.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.17" => "postalCode",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

fn attribute(attr: &AttributeTypeAndValue<'_>) -> String {
    let oid = attr.attr_type().to_id_string();
    match (short_name(&oid), attr.as_str()) {
        (Some(short), Ok(value)) => format!("{short}={}", escape(value)),
        (Some(short), Err(_)) => format!("{short}=#{}", hex_der(attr.attr_value())),
        (None, _) => format!("{oid}=#{}", hex_der(attr.attr_value())),
    }
}

/// RFC 4514 section 2.4 escaping.
fn escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_ascii_control() => out.push_str(&format!("\\{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Hex of the attribute value's DER (tag, length, content).
fn hex_der(value: &Any<'_>) -> String {
    let tag = value.tag().0;
    if tag >= 31 {
        return lower_hex(value.data);
    }
    let class = (value.class() as u8) << 6;
    let constructed = if value.header.is_constructed() {
        0x20
    } else {
        0
    };
    lower_hex(&tlv(class | constructed | tag as u8, value.data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_special_characters() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("x#y"), "x#y");
        assert_eq!(escape("Zürich"), "Zürich");
        assert_eq!(escape("a\"b\\c;<>"), "a\\\"b\\\\c\\;\\<\\>");
    }
}
