//! The TLS side of the client: a rustls configuration (aws-lc-rs provider) that trusts only
//! the KeyManager's CA and presents the client certificate, plus address and server name
//! parsing. Errors are plain sentences that never quote key material.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::material::SecretBytes;

/// The IANA port of KMIP over TLS.
pub const DEFAULT_PORT: u16 = 5696;

/// A rustls client configuration for mutual TLS: TLS 1.3 and 1.2 (KMIP 1.x servers such as
/// PyKMIP speak only 1.2), server certificates verified against `ca_pem` only, and the
/// certificate chain `cert_pem` with the key `key_pem` (PKCS#8, SEC1 or PKCS#1) as the
/// client's identity.
pub(crate) fn client_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &SecretBytes,
) -> Result<ClientConfig, String> {
    let roots = root_store(ca_pem)?;
    let chain = certificate_chain(cert_pem)?;
    let key = private_key(key_pem)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("the TLS provider cannot be set up: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("the client certificate and key cannot be used: {e}"))
}

/// The CA certificates of `ca_pem` as the only trust anchors.
fn root_store(ca_pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| format!("the CA bundle is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("a CA certificate cannot be used as a trust anchor: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the CA bundle holds no PEM certificate".to_owned());
    }
    Ok(roots)
}

/// The client certificate chain, leaf first.
fn certificate_chain(cert_pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the client certificate is not valid PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the client certificate holds no PEM certificate".to_owned());
    }
    Ok(chain)
}

/// The client's private key. The PEM error is not quoted: it could contain key text.
fn private_key(key_pem: &SecretBytes) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(key_pem.expose())
        .map_err(|_| "the client key is not a PEM private key (PKCS#8, SEC1 or PKCS#1)".to_owned())
}

/// Splits `host:port` (`[v6]:port`, or a host without port for [`DEFAULT_PORT`]).
pub(crate) fn split_address(address: &str) -> Result<(String, u16), String> {
    let address = address.trim();
    if address.is_empty() {
        return Err("the server address is empty".to_owned());
    }
    if let Ok(socket) = address.parse::<SocketAddr>() {
        return Ok((
            socket.ip().to_string(),
            nonzero_port(socket.port(), address)?,
        ));
    }
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok((ip.to_string(), DEFAULT_PORT));
    }
    if let Some(inner) = address.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("{address:?} is not an IPv6 address in brackets"))?;
        return Ok((ip.to_string(), DEFAULT_PORT));
    }
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("the port of {address:?} is not a number from 1 to 65535"))?;
            (host, nonzero_port(port, address)?)
        }
        None => (address, DEFAULT_PORT),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_';
    if host.is_empty() || !host.chars().all(valid) {
        return Err(format!("{address:?} is not a host:port address"));
    }
    Ok((host.to_owned(), port))
}

/// Rejects port 0.
fn nonzero_port(port: u16, address: &str) -> Result<u16, String> {
    if port == 0 {
        Err(format!("the port of {address:?} is 0"))
    } else {
        Ok(port)
    }
}

/// The name the server certificate must carry (a DNS name or an IP address SAN).
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    let name = name.trim();
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(name.to_owned()).map_err(|_| {
        format!("the TLS server name {name:?} is neither a DNS name nor an IP address")
    })
}

#[cfg(test)]
mod tests;
