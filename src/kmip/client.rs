//! The KMIP client: one mutual-TLS connection per request (PyKMIP closes idle connections,
//! and a fresh connection never inherits a half-read response), each request a KMIP 1.2
//! Request Message with one batch item.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroizing;

use super::error::KmipError;
use super::messages::{self, MessageError, PROTOCOL_VERSION, Reply, ServerInfo};
use super::tags::{
    ObjectType, Operation, QueryFunction, RevocationReasonCode, SecretDataType, State, Tag,
    attribute_name, usage_mask,
};
use super::tls;
use super::ttlv::{HEADER_LEN, Header, ItemType, MAX_MESSAGE_LEN, Ttlv, TtlvError};
use crate::material::SecretBytes;

/// Default limit for the TCP connect plus the TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default limit for sending a request and reading its response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long closing a connection politely (TLS close_notify) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How to reach one KMIP server.
#[derive(Clone)]
pub struct KmipClientConfig {
    /// `host:port` (`[v6]:port`; the port defaults to 5696).
    pub address: String,
    /// The name the server certificate must carry; default: the host of `address`.
    pub server_name: Option<String>,
    /// PEM CA certificates that sign the server certificate (the only trust anchors).
    pub ca_pem: Vec<u8>,
    /// PEM client certificate chain, leaf first (the server needs the clientAuth EKU).
    pub client_cert_pem: Vec<u8>,
    /// PEM private key of the client certificate: PKCS#8, SEC1 or PKCS#1.
    pub client_key_pem: SecretBytes,
    /// Limit for the TCP connect plus the TLS handshake.
    pub connect_timeout: Duration,
    /// Limit for sending a request and reading its response.
    pub request_timeout: Duration,
    /// Told the operation and outcome of every request (for metrics); none by default.
    pub observer: Option<RequestObserver>,
}

/// Receives the operation and outcome of every request a client sends.
pub type RequestObserver = Arc<dyn Fn(Operation, RequestOutcome) + Send + Sync>;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The server performed the operation.
    Success,
    /// The server answered with a failure (Result Status not Success).
    Failure,
    /// No usable answer: connection, TLS, timeout or a malformed message.
    Error,
}

impl RequestOutcome {
    /// `success`, `failure` or `error` (the `result` label of the request metric).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Error => "error",
        }
    }

    fn of<T>(result: &Result<T, KmipError>) -> Self {
        match result {
            Ok(_) => Self::Success,
            Err(KmipError::OperationFailed { .. }) => Self::Failure,
            Err(_) => Self::Error,
        }
    }
}

impl KmipClientConfig {
    /// A configuration with the default server name and timeouts.
    pub fn new(
        address: impl Into<String>,
        ca_pem: Vec<u8>,
        client_cert_pem: Vec<u8>,
        client_key_pem: SecretBytes,
    ) -> Self {
        Self {
            address: address.into(),
            server_name: None,
            ca_pem,
            client_cert_pem,
            client_key_pem,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            observer: None,
        }
    }
}

impl fmt::Debug for KmipClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmipClientConfig")
            .field("address", &self.address)
            .field("server_name", &self.server_name)
            .field("ca_pem", &format_args!("<{} bytes>", self.ca_pem.len()))
            .field(
                "client_cert_pem",
                &format_args!("<{} bytes>", self.client_cert_pem.len()),
            )
            .field("client_key_pem", &self.client_key_pem)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// A KMIP 1.x client for one server. Cheap to clone; holds no connection between calls.
#[derive(Clone)]
pub struct KmipClient {
    /// The address as configured, for messages.
    address: String,
    /// Host to connect to.
    host: String,
    /// Port to connect to.
    port: u16,
    /// Name the server certificate is verified against (and sent as SNI).
    server_name: rustls::pki_types::ServerName<'static>,
    /// The TLS configuration.
    connector: TlsConnector,
    /// Limit for connect plus handshake.
    connect_timeout: Duration,
    /// Limit for one request/response exchange.
    request_timeout: Duration,
    /// Told about every request.
    observer: Option<RequestObserver>,
}

impl fmt::Debug for KmipClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmipClient")
            .field("address", &self.address)
            .field("server_name", &self.server_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl KmipClient {
    /// Checks the configuration and prepares the TLS setup; does not connect.
    pub fn new(config: &KmipClientConfig) -> Result<Self, KmipError> {
        let (host, port) = tls::split_address(&config.address).map_err(KmipError::Config)?;
        let server_name = tls::server_name(config.server_name.as_deref().unwrap_or(&host))
            .map_err(KmipError::Config)?;
        let tls_config = tls::client_config(
            &config.ca_pem,
            &config.client_cert_pem,
            &config.client_key_pem,
        )
        .map_err(KmipError::Config)?;
        Ok(Self {
            address: config.address.trim().to_owned(),
            host,
            port,
            server_name,
            connector: TlsConnector::from(Arc::new(tls_config)),
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            observer: config.observer.clone(),
        })
    }

    /// The server address, as configured.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A cheap reachability check: a Query for the supported operations and the vendor.
    /// Proves the TLS setup and that the server speaks KMIP 1.x.
    pub async fn probe(&self) -> Result<ServerInfo, KmipError> {
        let functions = [
            QueryFunction::QueryOperations,
            QueryFunction::QueryServerInformation,
        ];
        let payload = self
            .call(Operation::Query, messages::query_payload(&functions))
            .await?;
        messages::parse_query(payload.as_ref()).map_err(|e| self.malformed(Operation::Query, e))
    }

    /// Registers `secret` as a Secret Data object of type Password named `name` and returns
    /// its Unique Identifier. The object starts Pre-Active; see [`KmipClient::activate`].
    ///
    /// The Cryptographic Usage Mask is Verify: PyKMIP requires a mask only for Create, but
    /// other servers insist on one for every object, and Verify is what an authentication
    /// passphrase is for. A server message that quotes the secret is redacted.
    pub async fn register_secret_password(
        &self,
        name: &str,
        secret: &SecretBytes,
    ) -> Result<String, KmipError> {
        not_empty(name, "the object name is empty")?;
        let payload = messages::register_secret_data_payload(
            name,
            SecretDataType::Password,
            secret,
            usage_mask::VERIFY,
        );
        let reply = self
            .call(Operation::Register, payload)
            .await
            .map_err(|e| e.redacted(secret))?;
        messages::parse_unique_identifier(reply.as_ref())
            .map_err(|e| self.malformed(Operation::Register, e))
    }

    /// The Unique Identifiers of the Secret Data objects named `name` that this client may
    /// see (on PyKMIP: the objects owned by its certificate's CN, newest first at one-second
    /// resolution). The Name is sent with its Name Type: PyKMIP matches both.
    pub async fn locate_by_name(&self, name: &str) -> Result<Vec<String>, KmipError> {
        not_empty(name, "the object name is empty")?;
        let payload = messages::locate_by_name_payload(Some(ObjectType::SecretData), name);
        let reply = self.call(Operation::Locate, payload).await?;
        messages::parse_locate(reply.as_ref()).map_err(|e| self.malformed(Operation::Locate, e))
    }

    /// The bytes of the Secret Data object `unique_identifier`.
    pub async fn get_secret(&self, unique_identifier: &str) -> Result<SecretBytes, KmipError> {
        let reply = self.call_on(Operation::Get, unique_identifier).await?;
        messages::parse_secret_data(reply).map_err(|e| self.malformed(Operation::Get, e))
    }

    /// The State of object `unique_identifier` (Get Attributes).
    pub async fn state(&self, unique_identifier: &str) -> Result<State, KmipError> {
        not_empty(unique_identifier, "the unique identifier is empty")?;
        let payload = messages::get_attributes_payload(unique_identifier, &[attribute_name::STATE]);
        let reply = self.call(Operation::GetAttributes, payload).await?;
        messages::parse_state(reply.as_ref())
            .map_err(|e| self.malformed(Operation::GetAttributes, e))
    }

    /// Activates a Pre-Active object.
    pub async fn activate(&self, unique_identifier: &str) -> Result<(), KmipError> {
        self.call_on(Operation::Activate, unique_identifier)
            .await
            .map(drop)
    }

    /// Revokes an object. PyKMIP revokes with a reason other than Key Compromise only an
    /// Active object (it becomes Deactivated); Key Compromise works in any state.
    pub async fn revoke(
        &self,
        unique_identifier: &str,
        reason: RevocationReasonCode,
    ) -> Result<(), KmipError> {
        not_empty(unique_identifier, "the unique identifier is empty")?;
        let compromised = matches!(
            reason,
            RevocationReasonCode::KeyCompromise | RevocationReasonCode::CaCompromise
        );
        let date = compromised.then(|| jiff::Timestamp::now().as_second());
        let payload = messages::revoke_payload(unique_identifier, reason, date);
        self.call(Operation::Revoke, payload).await.map(drop)
    }

    /// Destroys an object. Servers refuse to destroy an Active object: revoke it first
    /// (a Pre-Active or Compromised object is destroyed directly).
    pub async fn destroy(&self, unique_identifier: &str) -> Result<(), KmipError> {
        self.call_on(Operation::Destroy, unique_identifier)
            .await
            .map(drop)
    }

    /// Calls an operation whose payload is one Unique Identifier. An empty identifier is
    /// refused: PyKMIP would apply the operation to the object of its previous request.
    async fn call_on(
        &self,
        operation: Operation,
        unique_identifier: &str,
    ) -> Result<Option<Ttlv>, KmipError> {
        not_empty(unique_identifier, "the unique identifier is empty")?;
        let payload = messages::unique_identifier_payload(unique_identifier);
        self.call(operation, payload).await
    }

    /// Sends one request, tells the observer how it ended, and returns the payload of a
    /// successful response.
    async fn call(
        &self,
        operation: Operation,
        payload: Vec<Ttlv>,
    ) -> Result<Option<Ttlv>, KmipError> {
        let result = self.send(operation, payload).await;
        if let Some(observer) = &self.observer {
            observer(operation, RequestOutcome::of(&result));
        }
        result
    }

    /// Sends one request and returns the payload of a successful response.
    async fn send(
        &self,
        operation: Operation,
        payload: Vec<Ttlv>,
    ) -> Result<Option<Ttlv>, KmipError> {
        let request = messages::request(PROTOCOL_VERSION, operation, payload)
            .encode()
            .map_err(|source| KmipError::Encode { operation, source })?;
        let response = self.exchange(operation, &request).await?;
        drop(request);
        let message = Ttlv::decode(&response).map_err(|e| self.malformed(operation, e.into()))?;
        drop(response);
        match messages::parse_response(message, operation)
            .map_err(|e| self.malformed(operation, e))?
        {
            Reply::Success(payload) => Ok(payload),
            Reply::Failure(failure) => Err(KmipError::OperationFailed {
                address: self.address.clone(),
                failure,
            }),
        }
    }

    /// Connects, sends `request`, reads one Response Message and closes the connection.
    async fn exchange(
        &self,
        operation: Operation,
        request: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmipError> {
        let mut stream = self.connect().await?;
        let result = timeout(
            self.request_timeout,
            self.round_trip(operation, &mut stream, request),
        )
        .await;
        // Best effort: the response (or the failure) is what matters.
        let _closed = timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
        result.map_err(|_| KmipError::RequestTimeout {
            address: self.address.clone(),
            operation,
            after: self.request_timeout,
        })?
    }

    /// Opens the TCP connection and runs the TLS handshake, within the connect timeout.
    async fn connect(&self) -> Result<TlsStream<TcpStream>, KmipError> {
        let attempt = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|source| KmipError::Connect {
                    address: self.address.clone(),
                    source,
                })?;
            // Requests are single small writes; a failure here only costs latency.
            let _nodelay = tcp.set_nodelay(true);
            self.connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|source| KmipError::Tls {
                    address: self.address.clone(),
                    source,
                })
        };
        timeout(self.connect_timeout, attempt)
            .await
            .map_err(|_| KmipError::ConnectTimeout {
                address: self.address.clone(),
                after: self.connect_timeout,
            })?
    }

    /// Writes the request and reads the response: the 8-byte header first, then exactly the
    /// Length it announces (bounded by [`MAX_MESSAGE_LEN`]).
    async fn round_trip(
        &self,
        operation: Operation,
        stream: &mut TlsStream<TcpStream>,
        request: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmipError> {
        let io = |source| KmipError::Io {
            address: self.address.clone(),
            operation,
            source,
        };
        stream.write_all(request).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let mut header_bytes = [0u8; HEADER_LEN];
        stream.read_exact(&mut header_bytes).await.map_err(io)?;
        let length = self.response_length(operation, Header::parse(header_bytes))?;
        let mut message = Zeroizing::new(vec![0u8; HEADER_LEN + length]);
        let (head, body) = message.split_at_mut(HEADER_LEN);
        head.copy_from_slice(&header_bytes);
        stream.read_exact(body).await.map_err(io)?;
        Ok(message)
    }

    /// Checks that a header starts a Response Message of acceptable size; returns its Length.
    fn response_length(&self, operation: Operation, header: Header) -> Result<usize, KmipError> {
        if header.tag != Tag::RESPONSE_MESSAGE {
            let found = header.tag;
            let expected = Tag::RESPONSE_MESSAGE;
            return Err(self.malformed(operation, MessageError::UnexpectedTag { expected, found }));
        }
        if header.type_byte != ItemType::Structure.byte() {
            return Err(self.malformed(
                operation,
                MessageError::Unexpected("the Response Message is not a Structure".into()),
            ));
        }
        let length = usize::try_from(header.length).unwrap_or(usize::MAX);
        if length > MAX_MESSAGE_LEN - HEADER_LEN {
            let length = length.saturating_add(HEADER_LEN);
            return Err(self.malformed(operation, TtlvError::TooLarge { length }.into()));
        }
        Ok(length)
    }

    /// A [`KmipError::MalformedResponse`] from this server.
    fn malformed(&self, operation: Operation, source: MessageError) -> KmipError {
        KmipError::MalformedResponse {
            address: self.address.clone(),
            operation,
            source,
        }
    }
}

/// Refuses an empty name or identifier.
fn not_empty(value: &str, problem: &'static str) -> Result<(), KmipError> {
    if value.is_empty() {
        Err(KmipError::InvalidRequest(problem))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
