//! The little DER that no dependency writes for us: the Authority Information Access
//! extension (rcgen 0.14 has no AIA support and yasna, which it uses internally, is not
//! re-exported) and the tag/length header of a name attribute shown as `#hex`.

use super::MaterialError;

/// OID 1.3.6.1.5.5.7.1.1 (id-pe-authorityInfoAccess), as rcgen takes extension OIDs.
pub(super) const AIA_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];

/// DER of OID 1.3.6.1.5.5.7.48.1 (id-ad-ocsp).
const OCSP_METHOD: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
/// DER of OID 1.3.6.1.5.5.7.48.2 (id-ad-caIssuers).
const CA_ISSUERS_METHOD: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];

/// Universal SEQUENCE (constructed).
const SEQUENCE: u8 = 0x30;
/// GeneralName uniformResourceIdentifier: `[6] IMPLICIT IA5String`.
const URI_NAME: u8 = 0x86;

/// A DER tag-length-value with a one-byte tag.
pub(super) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    out.extend(length(content.len()));
    out.extend_from_slice(content);
    out
}

/// DER length octets: short form below 128, else long form with the fewest bytes.
fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// The value of an Authority Information Access extension (RFC 5280 4.2.2.1):
/// `SEQUENCE OF AccessDescription { accessMethod OID, accessLocation GeneralName }`, OCSP
/// responders first, then CA issuer URLs (the order Go's crypto/x509 uses).
pub(super) fn authority_info_access(
    ocsp: &[String],
    ca_issuers: &[String],
) -> Result<Vec<u8>, MaterialError> {
    let mut descriptions = Vec::new();
    let entries = ocsp
        .iter()
        .map(|url| (OCSP_METHOD, url, "ocspServers"))
        .chain(
            ca_issuers
                .iter()
                .map(|url| (CA_ISSUERS_METHOD, url, "issuingCertificateUrls")),
        );
    for (method, url, field) in entries {
        if !url.is_ascii() {
            return Err(MaterialError::Unsupported(format!(
                "{field} entries must be ASCII URLs (IA5String); percent-encode other characters"
            )));
        }
        let mut description = method.to_vec();
        description.extend(tlv(URI_NAME, url.as_bytes()));
        descriptions.extend(tlv(SEQUENCE, &description));
    }
    Ok(tlv(SEQUENCE, &descriptions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
    use x509_parser::prelude::FromDer;

    #[test]
    fn lengths_use_short_and_long_forms() {
        assert_eq!(length(0), vec![0]);
        assert_eq!(length(127), vec![127]);
        assert_eq!(length(128), vec![0x81, 0x80]);
        assert_eq!(length(300), vec![0x82, 0x01, 0x2c]);
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 0x02, 1, 2]);
    }

    #[test]
    fn aia_matches_a_known_encoding() {
        // Produced by `openssl req -addext "authorityInfoAccess=OCSP;URI:http://o"`.
        let der = authority_info_access(&["http://o".to_owned()], &[]).unwrap();
        let expected: &[u8] = &[
            0x30, 0x16, 0x30, 0x14, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01,
            0x86, 0x08, b'h', b't', b't', b'p', b':', b'/', b'/', b'o',
        ];
        assert_eq!(der, expected);
    }

    /// Wraps an extension value as a full `Extension` and parses it with x509-parser.
    fn parse_aia(value: &[u8]) -> Vec<(String, String)> {
        let mut ext = vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
        ext.extend(tlv(0x04, value));
        let ext = tlv(SEQUENCE, &ext);
        let (_, parsed) = X509Extension::from_der(&ext).unwrap();
        let ParsedExtension::AuthorityInfoAccess(aia) = parsed.parsed_extension() else {
            panic!("not parsed as AIA: {:?}", parsed.parsed_extension());
        };
        aia.iter()
            .map(|d| {
                let GeneralName::URI(uri) = d.access_location else {
                    panic!("not a URI");
                };
                (d.access_method.to_id_string(), uri.to_owned())
            })
            .collect()
    }

    #[test]
    fn aia_round_trips_through_x509_parser_with_long_urls() {
        let long = format!("http://ocsp.example.com/{}", "a".repeat(300));
        let der = authority_info_access(
            &[long.clone(), "http://ocsp2.example.com".to_owned()],
            &["http://ca.example.com/ca.crt".to_owned()],
        )
        .unwrap();
        assert_eq!(
            parse_aia(&der),
            vec![
                ("1.3.6.1.5.5.7.48.1".to_owned(), long),
                (
                    "1.3.6.1.5.5.7.48.1".to_owned(),
                    "http://ocsp2.example.com".to_owned()
                ),
                (
                    "1.3.6.1.5.5.7.48.2".to_owned(),
                    "http://ca.example.com/ca.crt".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn aia_rejects_non_ascii() {
        let err = authority_info_access(&["http://ö.example".to_owned()], &[]).unwrap_err();
        assert!(matches!(err, MaterialError::Unsupported(_)));
    }
}
