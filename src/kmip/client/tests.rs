//! The client against an in-process KMIP responder that behaves like PyKMIP 0.11 on the
//! operations keysmith uses: TLS 1.2 only, ECDHE-ECDSA AES-GCM suites only, a client
//! certificate required, objects owned per connection, PyKMIP's state rules.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rustls::crypto::aws_lc_rs::cipher_suite;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::kmip::messages::{Failure, ProtocolVersion, attribute};
use crate::kmip::tags::{NameType, ResultReason, ResultStatus};
use crate::kmip::testing::TestPki;
use crate::kmip::ttlv::Value;

/// What the responder does after reading a request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers like a KMIP server.
    Kmip,
    /// Never answers.
    Silent,
    /// Announces a response larger than any the client accepts.
    HugeLength,
}

/// One stored object: name, secret, state.
type Object = (String, SecretBytes, State);

/// The responder's objects, by unique identifier, and what it saw.
#[derive(Default)]
struct Store {
    /// Objects by unique identifier (numbers, like PyKMIP).
    objects: BTreeMap<u32, Object>,
    /// The TLS version and operation of every request.
    log: Vec<String>,
}

/// A running responder.
struct FakeServer {
    /// `127.0.0.1:<port>`.
    address: String,
    /// Its state.
    store: Arc<Mutex<Store>>,
}

/// The certificates of `pem`.
fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("certificates")
}

/// A server configuration like PyKMIP's.
fn pykmip_like_tls(pki: &TestPki) -> Arc<ServerConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ];
    let provider = Arc::new(provider);
    let mut roots = RootCertStore::empty();
    for cert in certs(&pki.ca_pem) {
        roots.add(cert).expect("CA");
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("verifier");
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).expect("key");
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pki.server_cert_pem), key)
        .expect("server config");
    Arc::new(config)
}

impl FakeServer {
    /// Starts a responder on a free port of 127.0.0.1.
    async fn start(pki: &TestPki, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let acceptor = TlsAcceptor::from(pykmip_like_tls(pki));
        let store = Arc::new(Mutex::new(Store::default()));
        let served = store.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, store) = (acceptor.clone(), served.clone());
                tokio::spawn(serve(acceptor, tcp, store, behaviour));
            }
        });
        Self { address, store }
    }

    /// The TLS versions and operations seen so far.
    fn log(&self) -> Vec<String> {
        self.store.lock().expect("lock").log.clone()
    }
}

/// Serves one connection: one request, one response.
async fn serve(acceptor: TlsAcceptor, tcp: TcpStream, store: Arc<Mutex<Store>>, how: Behaviour) {
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let version = tls.get_ref().1.protocol_version();
    let version = version.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"));
    let mut header = [0u8; HEADER_LEN];
    if tls.read_exact(&mut header).await.is_err() {
        return;
    }
    let mut message = vec![0u8; HEADER_LEN + Header::parse(header).length as usize];
    message[..HEADER_LEN].copy_from_slice(&header);
    if tls.read_exact(&mut message[HEADER_LEN..]).await.is_err() {
        return;
    }
    let response = match how {
        Behaviour::Silent => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        Behaviour::HugeLength => vec![0x42, 0x00, 0x7B, 0x01, 0x7F, 0xFF, 0xFF, 0xFF],
        Behaviour::Kmip => {
            let request = Ttlv::decode(&message).expect("the client sends valid TTLV");
            let mut store = store.lock().expect("lock");
            let response = store.handle(&request, &version);
            response.encode().expect("encodes").to_vec()
        }
    };
    let _ = tls.write_all(&response).await;
    let _ = tls.shutdown().await;
}

/// A Response Message with one batch item.
fn response(operation: Operation, outcome: Result<Vec<Ttlv>, (ResultReason, &str)>) -> Ttlv {
    let mut item = vec![Ttlv::enumeration(Tag::OPERATION, operation.value())];
    match outcome {
        Ok(payload) => item.extend([
            Ttlv::enumeration(Tag::RESULT_STATUS, ResultStatus::Success.value()),
            Ttlv::structure(Tag::RESPONSE_PAYLOAD, payload),
        ]),
        Err((reason, message)) => item.extend([
            Ttlv::enumeration(Tag::RESULT_STATUS, ResultStatus::OperationFailed.value()),
            Ttlv::enumeration(Tag::RESULT_REASON, reason.value()),
            Ttlv::text(Tag::RESULT_MESSAGE, message),
        ]),
    }
    let header = Ttlv::structure(
        Tag::RESPONSE_HEADER,
        vec![
            PROTOCOL_VERSION.to_ttlv(),
            Ttlv::date_time(Tag::TIME_STAMP, jiff::Timestamp::now().as_second()),
            Ttlv::integer(Tag::BATCH_COUNT, 1),
        ],
    );
    Ttlv::structure(
        Tag::RESPONSE_MESSAGE,
        vec![header, Ttlv::structure(Tag::BATCH_ITEM, item)],
    )
}

/// The value of the attribute `name` among `attributes`.
fn attribute_value<'a>(attributes: &'a Ttlv, name: &str) -> Option<&'a Ttlv> {
    attributes
        .find_all(Tag::ATTRIBUTE)
        .find(|a| a.find(Tag::ATTRIBUTE_NAME).and_then(Ttlv::as_text) == Some(name))
        .and_then(|a| a.find(Tag::ATTRIBUTE_VALUE))
}

/// The Name Value of a Name attribute among `attributes`, checking its Name Type.
fn name_of(attributes: &Ttlv) -> String {
    let name = attribute_value(attributes, attribute_name::NAME).expect("a Name");
    assert_eq!(
        name.find(Tag::NAME_TYPE).and_then(Ttlv::as_enumeration),
        Some(NameType::UninterpretedTextString.value())
    );
    let value = name.find(Tag::NAME_VALUE).and_then(Ttlv::as_text);
    value.expect("Name Value").to_owned()
}

/// Result of a fake operation.
type Outcome = Result<Vec<Ttlv>, (ResultReason, &'static str)>;

impl Store {
    /// Answers a request the way PyKMIP 0.11 would.
    fn handle(&mut self, request: &Ttlv, tls_version: &str) -> Ttlv {
        let header = request.find(Tag::REQUEST_HEADER).expect("header");
        assert_eq!(
            ProtocolVersion::from_ttlv(header.find(Tag::PROTOCOL_VERSION).expect("version")),
            Ok(PROTOCOL_VERSION)
        );
        assert_eq!(
            header.find(Tag::BATCH_COUNT).and_then(Ttlv::as_integer),
            Some(1)
        );
        let item = request.find(Tag::BATCH_ITEM).expect("batch item");
        let code = item.find(Tag::OPERATION).and_then(Ttlv::as_enumeration);
        let operation = code.and_then(Operation::from_value).expect("operation");
        let payload = item.find(Tag::REQUEST_PAYLOAD).expect("payload");
        self.log.push(format!("{tls_version} {operation}"));
        let uid = payload
            .find(Tag::UNIQUE_IDENTIFIER)
            .and_then(Ttlv::as_text)
            .and_then(|u| u.parse::<u32>().ok());
        let outcome = match (operation, uid) {
            (Operation::Query, _) => Ok(vec![
                Ttlv::enumeration(Tag::OPERATION, Operation::Register.value()),
                Ttlv::text(Tag::VENDOR_IDENTIFICATION, "fake KMIP"),
            ]),
            (Operation::Register, _) => self.register(payload),
            (Operation::Locate, _) => Ok(self.locate(payload)),
            (_, Some(uid)) if self.objects.contains_key(&uid) => self.on_object(operation, uid),
            _ => Err((ResultReason::ItemNotFound, "Could not locate object")),
        };
        response(operation, outcome)
    }

    /// Register: stores the Secret Data, Pre-Active.
    fn register(&mut self, payload: &Ttlv) -> Outcome {
        let object_type = payload
            .find(Tag::OBJECT_TYPE)
            .and_then(Ttlv::as_enumeration);
        assert_eq!(object_type, Some(ObjectType::SecretData.value()));
        let template = payload.find(Tag::TEMPLATE_ATTRIBUTE).expect("template");
        let mask = attribute_value(template, attribute_name::CRYPTOGRAPHIC_USAGE_MASK);
        assert_eq!(mask.and_then(Ttlv::as_integer), Some(usage_mask::VERIFY));
        let secret_data = payload.find(Tag::SECRET_DATA).expect("secret data");
        let data_type = secret_data.find(Tag::SECRET_DATA_TYPE);
        assert_eq!(data_type.and_then(Ttlv::as_enumeration), Some(1));
        let block = secret_data.find(Tag::KEY_BLOCK).expect("key block");
        let format = block
            .find(Tag::KEY_FORMAT_TYPE)
            .and_then(Ttlv::as_enumeration);
        assert_eq!(format, Some(2));
        let material = block
            .find(Tag::KEY_VALUE)
            .and_then(|v| v.find(Tag::KEY_MATERIAL))
            .and_then(Ttlv::as_bytes)
            .expect("key material");
        let uid = self.objects.keys().max().map_or(1, |last| last + 1);
        let object = (name_of(template), material.clone(), State::PreActive);
        self.objects.insert(uid, object);
        Ok(vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.to_string())])
    }

    /// Locate by Name (and Object Type), newest first.
    fn locate(&self, payload: &Ttlv) -> Vec<Ttlv> {
        let object_type = attribute_value(payload, attribute_name::OBJECT_TYPE);
        assert_eq!(
            object_type.and_then(Ttlv::as_enumeration),
            Some(ObjectType::SecretData.value())
        );
        let name = name_of(payload);
        let found = self.objects.iter().rev().filter(|(_, o)| o.0 == name);
        found
            .map(|(uid, _)| Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.to_string()))
            .collect()
    }

    /// Operations on one existing object, with PyKMIP's state rules.
    fn on_object(&mut self, operation: Operation, uid: u32) -> Outcome {
        let id = || Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.to_string());
        let Some((_, secret, state)) = self.objects.get_mut(&uid) else {
            return Err((ResultReason::ItemNotFound, "Could not locate object"));
        };
        match operation {
            Operation::Get => Ok(vec![
                Ttlv::enumeration(Tag::OBJECT_TYPE, ObjectType::SecretData.value()),
                id(),
                messages::register_secret_data_payload("", SecretDataType::Password, secret, 0)
                    .pop()
                    .expect("secret data"),
            ]),
            Operation::GetAttributes => Ok(vec![
                id(),
                attribute(attribute_name::STATE, Value::Enumeration(state.value())),
            ]),
            Operation::Activate if *state == State::PreActive => {
                *state = State::Active;
                Ok(vec![id()])
            }
            Operation::Activate => Err((ResultReason::PermissionDenied, "not pre-active")),
            Operation::Revoke if *state == State::Active => {
                *state = State::Deactivated;
                Ok(vec![id()])
            }
            Operation::Revoke => Err((ResultReason::IllegalOperation, "The object is not active")),
            Operation::Destroy if *state == State::Active => Err((
                ResultReason::PermissionDenied,
                "Object is active and cannot be destroyed.",
            )),
            Operation::Destroy => {
                self.objects.remove(&uid);
                Ok(vec![id()])
            }
            _ => Err((ResultReason::OperationNotSupported, "not supported")),
        }
    }
}

/// A client configuration for `address` with `pki`'s CA and client certificate.
fn config(pki: &TestPki, address: &str) -> KmipClientConfig {
    KmipClientConfig::new(
        address,
        pki.ca_pem.clone().into_bytes(),
        pki.client_cert_pem.clone().into_bytes(),
        SecretBytes::new(pki.client_key_pem.clone().into_bytes()),
    )
}

/// The Failure of an [`KmipError::OperationFailed`].
fn failure(error: KmipError) -> Failure {
    match error {
        KmipError::OperationFailed { failure, .. } => failure,
        other => panic!("expected an operation failure, got {other}"),
    }
}

#[tokio::test]
async fn full_lifecycle_over_mutual_tls_1_2_with_ecdsa_suites_only() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let server = FakeServer::start(&pki, Behaviour::Kmip).await;
    let client = KmipClient::new(&config(&pki, &server.address)).expect("client");
    let secret = SecretBytes::new(b"Zq8=vR2#pL5!wT9^kM3&nB6*hJ1$dF4@".to_vec());

    let info = client.probe().await.expect("probe");
    assert_eq!(info.vendor_identification.as_deref(), Some("fake KMIP"));
    assert!(
        client
            .locate_by_name("k1")
            .await
            .expect("locate")
            .is_empty()
    );
    let uid = client
        .register_secret_password("k1", &secret)
        .await
        .expect("register");
    assert_eq!(
        client.locate_by_name("k1").await.expect("locate"),
        [uid.as_str()]
    );
    assert_eq!(client.state(&uid).await.expect("state"), State::PreActive);
    client.activate(&uid).await.expect("activate");
    assert_eq!(client.get_secret(&uid).await.expect("get"), secret);

    let refused = client.destroy(&uid).await.expect_err("active");
    let text = refused.to_string();
    assert!(text.contains(&server.address), "{text}");
    assert!(text.starts_with("KMIP Destroy on"), "{text}");
    assert!(
        text.contains("Object is active and cannot be destroyed."),
        "{text}"
    );
    assert_eq!(
        failure(refused).reason(),
        Some(ResultReason::PermissionDenied)
    );

    let revoke = RevocationReasonCode::CessationOfOperation;
    client.revoke(&uid, revoke).await.expect("revoke");
    assert_eq!(client.state(&uid).await.expect("state"), State::Deactivated);
    client.destroy(&uid).await.expect("destroy");
    let gone = client.get_secret(&uid).await.expect_err("destroyed");
    assert_eq!(gone.result_reason(), Some(ResultReason::ItemNotFound));
    assert!(!gone.is_connection_failure());

    let log = server.log();
    assert_eq!(log.len(), 12, "{log:?}");
    assert!(log.iter().all(|l| l.starts_with("TLSv1_2 ")), "{log:?}");
}

#[tokio::test]
async fn empty_identifiers_and_names_are_refused_before_connecting() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let client = KmipClient::new(&config(&pki, "127.0.0.1:9")).expect("client");
    let secret = SecretBytes::new(b"x".to_vec());
    let errors = [
        client.get_secret("").await.map(drop),
        client.activate("").await,
        client.revoke("", RevocationReasonCode::KeyCompromise).await,
        client.destroy("").await,
        client.state("").await.map(drop),
        client.locate_by_name("").await.map(drop),
        client.register_secret_password("", &secret).await.map(drop),
    ];
    for error in errors {
        assert!(
            matches!(error, Err(KmipError::InvalidRequest(_))),
            "{error:?}"
        );
    }
}

/// Expects a TLS handshake failure naming `address` and mentioning `detail`.
fn assert_tls_failure(result: Result<ServerInfo, KmipError>, address: &str, detail: &str) {
    let error = result.expect_err("handshake fails");
    let text = error.to_string();
    assert!(matches!(error, KmipError::Tls { .. }), "{text}");
    assert!(error.is_connection_failure());
    assert!(text.contains(address) && text.contains(detail), "{text}");
}

#[tokio::test]
async fn an_untrusted_server_certificate_fails_the_handshake() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let stranger = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let server = FakeServer::start(&pki, Behaviour::Kmip).await;
    let mut config = config(&pki, &server.address);
    config.ca_pem = stranger.ca_pem.into_bytes();
    let client = KmipClient::new(&config).expect("client");
    // Both test CAs share a name, so webpki finds the wrong one and the signature fails.
    let detail = "invalid peer certificate";
    assert_tls_failure(client.probe().await, &server.address, detail);
}

#[tokio::test]
async fn the_server_name_must_match_the_certificate() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let server = FakeServer::start(&pki, Behaviour::Kmip).await;
    let mut config = config(&pki, &server.address);
    config.server_name = Some("kmip.example.com".into());
    let client = KmipClient::new(&config).expect("client");
    let detail = "certificate not valid for name \"kmip.example.com\"";
    assert_tls_failure(client.probe().await, &server.address, detail);
    config.server_name = Some("localhost".into());
    let client = KmipClient::new(&config).expect("client");
    client
        .probe()
        .await
        .expect("localhost is in the certificate");
}

#[tokio::test]
async fn a_client_certificate_of_another_ca_is_refused() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let stranger = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let server = FakeServer::start(&pki, Behaviour::Kmip).await;
    let mut config = config(&pki, &server.address);
    config.client_cert_pem = stranger.client_cert_pem.into_bytes();
    config.client_key_pem = SecretBytes::new(stranger.client_key_pem.into_bytes());
    let client = KmipClient::new(&config).expect("client");
    assert_tls_failure(client.probe().await, &server.address, "alert");
}

#[tokio::test]
async fn a_refused_connection_names_the_address() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    drop(listener);
    let client = KmipClient::new(&config(&pki, &address)).expect("client");
    let error = client.probe().await.expect_err("refused");
    assert!(matches!(error, KmipError::Connect { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("connecting to KMIP server {address} failed: "))
    );
}

#[tokio::test]
async fn a_server_that_never_handshakes_hits_the_connect_timeout() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let mut config = config(&pki, &address);
    config.connect_timeout = Duration::from_millis(200);
    let error = KmipClient::new(&config)
        .expect("client")
        .probe()
        .await
        .expect_err("timeout");
    assert!(matches!(error, KmipError::ConnectTimeout { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!("connecting to KMIP server {address} timed out after 200ms")
    );
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_request_timeout() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let server = FakeServer::start(&pki, Behaviour::Silent).await;
    let mut config = config(&pki, &server.address);
    config.request_timeout = Duration::from_millis(300);
    let client = KmipClient::new(&config).expect("client");
    let error = client.locate_by_name("k").await.expect_err("timeout");
    assert!(matches!(error, KmipError::RequestTimeout { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!("KMIP Locate on {} timed out after 300ms", server.address)
    );
}

#[tokio::test]
async fn an_oversized_response_is_refused_before_reading_it() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let server = FakeServer::start(&pki, Behaviour::HugeLength).await;
    let client = KmipClient::new(&config(&pki, &server.address)).expect("client");
    let error = client.get_secret("1").await.expect_err("too large");
    assert!(
        matches!(error, KmipError::MalformedResponse { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("exceeds the limit"), "{error}");
}

#[test]
fn debug_output_never_shows_the_client_key() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let config = config(&pki, "kmip.example.com:5696");
    let shown = format!("{config:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("kmip.example.com:5696"), "{shown}");
    let client = KmipClient::new(&config).expect("client");
    let shown = format!("{client:?}");
    assert!(shown.contains("kmip.example.com"), "{shown}");
}

#[test]
fn bad_configuration_is_reported_as_config_errors() {
    let pki = TestPki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut bad_address = config(&pki, "kmip:port");
    let error = KmipClient::new(&bad_address).expect_err("bad address");
    assert!(matches!(error, KmipError::Config(_)), "{error}");
    bad_address.address = "kmip:5696".into();
    bad_address.server_name = Some("bad name".into());
    assert!(KmipClient::new(&bad_address).is_err());
    let mut bad_ca = config(&pki, "kmip:5696");
    bad_ca.ca_pem = Vec::new();
    assert_eq!(
        KmipClient::new(&bad_ca).expect_err("no CA").to_string(),
        "invalid KMIP client configuration: the CA bundle holds no PEM certificate"
    );
}
