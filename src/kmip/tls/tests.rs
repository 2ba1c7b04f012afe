use super::*;
use crate::api::certificate_key_pair::KeyEncoding;
use crate::kmip::testing::TestPki;
use crate::material::pkey::PrivateKey;

#[test]
fn addresses_split_into_host_and_port() {
    let cases = [
        ("kmip-a.example.com:5696", "kmip-a.example.com", 5696),
        ("kmip-a.example.com", "kmip-a.example.com", DEFAULT_PORT),
        (" kmip_b-1.internal:15696 ", "kmip_b-1.internal", 15696),
        ("10.0.0.7:5697", "10.0.0.7", 5697),
        ("10.0.0.7", "10.0.0.7", DEFAULT_PORT),
        ("[::1]:5696", "::1", 5696),
        ("[fe80::1]", "fe80::1", DEFAULT_PORT),
        ("::1", "::1", DEFAULT_PORT),
    ];
    for (address, host, port) in cases {
        assert_eq!(
            split_address(address),
            Ok((host.to_owned(), port)),
            "{address}"
        );
    }
}

#[test]
fn bad_addresses_are_refused_with_a_reason() {
    let cases = [
        ("", "the server address is empty"),
        (
            "host:",
            "the port of \"host:\" is not a number from 1 to 65535",
        ),
        (
            "host:https",
            "the port of \"host:https\" is not a number from 1 to 65535",
        ),
        (
            "host:70000",
            "the port of \"host:70000\" is not a number from 1 to 65535",
        ),
        ("host:0", "the port of \"host:0\" is 0"),
        ("[::1]:0", "the port of \"[::1]:0\" is 0"),
        (":5696", "\":5696\" is not a host:port address"),
        ("a b:5696", "\"a b:5696\" is not a host:port address"),
        (
            "https://kmip:5696",
            "\"https://kmip:5696\" is not a host:port address",
        ),
        ("[nope]", "\"[nope]\" is not an IPv6 address in brackets"),
    ];
    for (address, message) in cases {
        assert_eq!(split_address(address), Err(message.to_owned()), "{address}");
    }
}

#[test]
fn server_names_are_dns_names_or_ip_addresses() {
    assert!(matches!(
        server_name("kmip-a.example.com"),
        Ok(ServerName::DnsName(_))
    ));
    assert!(matches!(
        server_name("127.0.0.1"),
        Ok(ServerName::IpAddress(_))
    ));
    assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
    assert_eq!(
        server_name("not a name!").map(|_| ()),
        Err("the TLS server name \"not a name!\" is neither a DNS name nor an IP address".into())
    );
}

/// The client key of `pki` re-encoded with `encoding` (PKCS#1 gives SEC1 for EC keys).
fn reencoded_key(pki: &TestPki, encoding: KeyEncoding) -> SecretBytes {
    let key = PrivateKey::from_pem(pki.client_key_pem.as_bytes()).expect("key parses");
    let pem = key.to_pem(encoding).expect("key encodes");
    SecretBytes::new(pem.expose().as_bytes().to_vec())
}

#[test]
fn client_keys_in_pkcs8_sec1_and_pkcs1_are_accepted() {
    let ec = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let rsa = TestPki::new(&rcgen::PKCS_RSA_SHA256);
    let cases = [
        ("EC PKCS#8", &ec, KeyEncoding::PKCS8, "BEGIN PRIVATE KEY"),
        ("EC SEC1", &ec, KeyEncoding::PKCS1, "BEGIN EC PRIVATE KEY"),
        ("RSA PKCS#8", &rsa, KeyEncoding::PKCS8, "BEGIN PRIVATE KEY"),
        (
            "RSA PKCS#1",
            &rsa,
            KeyEncoding::PKCS1,
            "BEGIN RSA PRIVATE KEY",
        ),
    ];
    for (scenario, pki, encoding, label) in cases {
        let key = reencoded_key(pki, encoding);
        assert!(
            String::from_utf8_lossy(key.expose()).contains(label),
            "{scenario}"
        );
        let config = client_config(pki.ca_pem.as_bytes(), pki.client_cert_pem.as_bytes(), &key);
        assert!(config.is_ok(), "{scenario}: {:?}", config.err());
    }
}

/// Scenario, CA PEM, client certificate PEM, client key PEM, expected message start.
type Case<'a> = (&'a str, &'a [u8], &'a [u8], &'a SecretBytes, &'a str);

#[test]
fn unusable_pem_input_is_refused_without_quoting_the_key() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let other = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let key = SecretBytes::new(pki.client_key_pem.clone().into_bytes());
    let ca = pki.ca_pem.as_bytes();
    let cert = pki.client_cert_pem.as_bytes();
    let garbage_key = SecretBytes::new(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n".to_vec());
    let other_key = SecretBytes::new(other.client_key_pem.clone().into_bytes());
    let cases: [Case<'_>; 6] = [
        (
            "no CA",
            b"",
            cert,
            &key,
            "the CA bundle holds no PEM certificate",
        ),
        (
            "a key as CA",
            pki.client_key_pem.as_bytes(),
            cert,
            &key,
            "the CA bundle holds no PEM certificate",
        ),
        (
            "no client certificate",
            ca,
            b"",
            &key,
            "the client certificate holds no PEM certificate",
        ),
        (
            "no key",
            ca,
            cert,
            &SecretBytes::default(),
            "the client key is not a PEM private key (PKCS#8, SEC1 or PKCS#1)",
        ),
        (
            "truncated key",
            ca,
            cert,
            &garbage_key,
            "the client key is not a PEM private key (PKCS#8, SEC1 or PKCS#1)",
        ),
        (
            "key of another certificate",
            ca,
            cert,
            &other_key,
            "the client certificate and key cannot be used",
        ),
    ];
    for (scenario, ca, cert, key, message) in cases {
        let error = client_config(ca, cert, key).expect_err(scenario);
        assert!(error.starts_with(message), "{scenario}: {error}");
        assert!(!error.contains("c2VjcmV0"), "{scenario}: {error}");
        assert!(!error.contains("MIG"), "{scenario}: {error}");
    }
}
