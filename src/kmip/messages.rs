//! KMIP 1.x messages: building Request Messages (one batch item each) and reading Response
//! Messages and the response payloads of the operations the client uses.
//!
//! Layout (KMIP 1.2 specification, sections 6 and 7): a Request Message is a Request Header
//! (Protocol Version, Batch Count) and Batch Items (Operation, Request Payload); a Response
//! Message is a Response Header (Protocol Version, Time Stamp, Batch Count) and Batch Items
//! (Operation, Result Status, Result Reason, Result Message, Response Payload).

use std::fmt;

use super::tags::{
    KeyFormatType, NameType, ObjectType, Operation, QueryFunction, ResultReason, ResultStatus,
    RevocationReasonCode, SecretDataType, State, Tag, attribute_name,
};
use super::ttlv::{ItemType, Ttlv, TtlvError, Value};
use crate::material::SecretBytes;

/// The protocol version the client sends: KMIP 1.2. PyKMIP 0.11 accepts 1.0 to 1.4 and 2.0
/// and answers in the version of the request; 1.2 is the newest version every KMIP 1.x
/// server in the field (and PyKMIP's default) speaks.
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion { major: 1, minor: 2 };

/// Longest Result Message of a server that is kept (in characters).
const MAX_RESULT_MESSAGE_CHARS: usize = 400;

/// A KMIP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolVersion {
    /// Protocol Version Major.
    pub major: i32,
    /// Protocol Version Minor.
    pub minor: i32,
}

impl ProtocolVersion {
    /// The Protocol Version structure.
    pub fn to_ttlv(self) -> Ttlv {
        Ttlv::structure(
            Tag::PROTOCOL_VERSION,
            vec![
                Ttlv::integer(Tag::PROTOCOL_VERSION_MAJOR, self.major),
                Ttlv::integer(Tag::PROTOCOL_VERSION_MINOR, self.minor),
            ],
        )
    }

    /// Reads a Protocol Version structure.
    pub fn from_ttlv(item: &Ttlv) -> Result<Self, MessageError> {
        expect_type(item, ItemType::Structure)?;
        Ok(Self {
            major: integer(required(item, Tag::PROTOCOL_VERSION_MAJOR)?)?,
            minor: integer(required(item, Tag::PROTOCOL_VERSION_MINOR)?)?,
        })
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a response is not what a KMIP 1.x server must send. Messages name tags and values of
/// enumerations, never the content of a Byte String.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The bytes are not valid TTLV.
    #[error(transparent)]
    Ttlv(#[from] TtlvError),
    /// An item has another tag than the one required at its place.
    #[error("expected {expected} but found {found}")]
    UnexpectedTag {
        /// The tag required.
        expected: Tag,
        /// The tag found.
        found: Tag,
    },
    /// A required item is missing.
    #[error("{parent} has no {child}")]
    Missing {
        /// The Structure.
        parent: Tag,
        /// The missing item.
        child: Tag,
    },
    /// An item has another type than the specification gives it.
    #[error("{tag} is a {found}, not a {expected}")]
    WrongType {
        /// The item.
        tag: Tag,
        /// The type it must have.
        expected: ItemType,
        /// The type it has.
        found: ItemType,
    },
    /// An Enumeration has a value the client does not know.
    #[error("{tag} has the unknown value {value:#x}")]
    UnknownValue {
        /// The item.
        tag: Tag,
        /// Its value.
        value: u32,
    },
    /// The response does not fit the request (described in words, without secret data).
    #[error("{0}")]
    Unexpected(String),
}

/// A failed operation as the server reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The operation that failed.
    pub operation: Operation,
    /// Result Status (never Success).
    pub status: ResultStatus,
    /// Result Reason as sent (unknown reasons keep their number).
    pub reason_code: Option<u32>,
    /// Result Message, stripped of control characters and shortened.
    pub message: Option<String>,
}

impl Failure {
    /// The Result Reason, if the server sent one the client knows.
    pub fn reason(&self) -> Option<ResultReason> {
        self.reason_code.and_then(ResultReason::from_value)
    }

    /// Replaces every occurrence of `secret` in the server's message, so a server that
    /// echoes request data cannot leak it into logs or a status.
    pub fn redact(&mut self, secret: &SecretBytes) {
        let Ok(secret) = std::str::from_utf8(secret.expose()) else {
            return;
        };
        if let Some(message) = &mut self.message
            && !secret.is_empty()
            && message.contains(secret)
        {
            *message = message.replace(secret, "<redacted>");
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.reason(), self.reason_code) {
            (Some(reason), _) => write!(f, "{} ({})", reason.name(), reason.message())?,
            (None, Some(code)) => write!(f, "{} (result reason {code:#x})", self.status)?,
            (None, None) if self.status == ResultStatus::OperationPending => write!(
                f,
                "the server answered asynchronously (Operation Pending), which keysmith does not support"
            )?,
            (None, None) => write!(f, "{}", self.status)?,
        }
        match &self.message {
            Some(message) => write!(f, "; the server says: {message}"),
            None => Ok(()),
        }
    }
}

/// The outcome of a request's one batch item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Result Status Success, with the Response Payload if there was one.
    Success(Option<Ttlv>),
    /// The server reports a failure.
    Failure(Failure),
}

/// What a Query answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// The operations the server supports (values the client does not know are left out).
    pub operations: Vec<Operation>,
    /// Vendor Identification, e.g. `PyKMIP 0.11.0 Software Server`.
    pub vendor_identification: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// A Request Message with one batch item: `operation` with a Request Payload of `payload`.
pub fn request(version: ProtocolVersion, operation: Operation, payload: Vec<Ttlv>) -> Ttlv {
    let header = Ttlv::structure(
        Tag::REQUEST_HEADER,
        vec![version.to_ttlv(), Ttlv::integer(Tag::BATCH_COUNT, 1)],
    );
    let item = Ttlv::structure(
        Tag::BATCH_ITEM,
        vec![
            Ttlv::enumeration(Tag::OPERATION, operation.value()),
            Ttlv::structure(Tag::REQUEST_PAYLOAD, payload),
        ],
    );
    Ttlv::structure(Tag::REQUEST_MESSAGE, vec![header, item])
}

/// An Attribute structure: Attribute Name and Attribute Value (`value` is re-tagged).
pub fn attribute(name: &str, value: Value) -> Ttlv {
    Ttlv::structure(
        Tag::ATTRIBUTE,
        vec![
            Ttlv::text(Tag::ATTRIBUTE_NAME, name),
            Ttlv {
                tag: Tag::ATTRIBUTE_VALUE,
                value,
            },
        ],
    )
}

/// The Name attribute with an uninterpreted text string. PyKMIP compares Name Value *and*
/// Name Type when it locates by Name, so the type must be sent in Locate too.
pub fn name_attribute(name: &str) -> Ttlv {
    attribute(
        attribute_name::NAME,
        Value::Structure(vec![
            Ttlv::text(Tag::NAME_VALUE, name),
            Ttlv::enumeration(Tag::NAME_TYPE, NameType::UninterpretedTextString.value()),
        ]),
    )
}

/// Register payload of a Secret Data object: Object Type, a Template-Attribute with the
/// Cryptographic Usage Mask and the Name, and the Secret Data (Secret Data Type and a Key
/// Block of Key Format Type Opaque whose Key Value holds the bytes as Key Material).
pub fn register_secret_data_payload(
    name: &str,
    data_type: SecretDataType,
    secret: &SecretBytes,
    usage_mask: i32,
) -> Vec<Ttlv> {
    let template = Ttlv::structure(
        Tag::TEMPLATE_ATTRIBUTE,
        vec![
            attribute(
                attribute_name::CRYPTOGRAPHIC_USAGE_MASK,
                Value::Integer(usage_mask),
            ),
            name_attribute(name),
        ],
    );
    let key_block = Ttlv::structure(
        Tag::KEY_BLOCK,
        vec![
            Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, KeyFormatType::Opaque.value()),
            Ttlv::structure(
                Tag::KEY_VALUE,
                vec![Ttlv::bytes(Tag::KEY_MATERIAL, secret.clone())],
            ),
        ],
    );
    let secret_data = Ttlv::structure(
        Tag::SECRET_DATA,
        vec![
            Ttlv::enumeration(Tag::SECRET_DATA_TYPE, data_type.value()),
            key_block,
        ],
    );
    vec![
        Ttlv::enumeration(Tag::OBJECT_TYPE, ObjectType::SecretData.value()),
        template,
        secret_data,
    ]
}

/// Locate payload: objects of `object_type` (if given) that carry the Name `name`.
pub fn locate_by_name_payload(object_type: Option<ObjectType>, name: &str) -> Vec<Ttlv> {
    let mut payload = Vec::with_capacity(2);
    if let Some(object_type) = object_type {
        payload.push(attribute(
            attribute_name::OBJECT_TYPE,
            Value::Enumeration(object_type.value()),
        ));
    }
    payload.push(name_attribute(name));
    payload
}

/// Payload with just a Unique Identifier (Get, Activate, Destroy).
pub fn unique_identifier_payload(unique_identifier: &str) -> Vec<Ttlv> {
    vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, unique_identifier)]
}

/// Revoke payload. The specification asks for a Compromise Occurrence Date with the reasons
/// Key Compromise and CA Compromise; pass it (seconds since the epoch) for those.
pub fn revoke_payload(
    unique_identifier: &str,
    reason: RevocationReasonCode,
    compromise_occurrence_date: Option<i64>,
) -> Vec<Ttlv> {
    let mut payload = vec![
        Ttlv::text(Tag::UNIQUE_IDENTIFIER, unique_identifier),
        Ttlv::structure(
            Tag::REVOCATION_REASON,
            vec![Ttlv::enumeration(
                Tag::REVOCATION_REASON_CODE,
                reason.value(),
            )],
        ),
    ];
    if let Some(date) = compromise_occurrence_date {
        payload.push(Ttlv::date_time(Tag::COMPROMISE_OCCURRENCE_DATE, date));
    }
    payload
}

/// Query payload asking for `functions`.
pub fn query_payload(functions: &[QueryFunction]) -> Vec<Ttlv> {
    functions
        .iter()
        .map(|f| Ttlv::enumeration(Tag::QUERY_FUNCTION, f.value()))
        .collect()
}

/// Get Attributes payload for the attributes `names` of one object.
pub fn get_attributes_payload(unique_identifier: &str, names: &[&str]) -> Vec<Ttlv> {
    std::iter::once(Ttlv::text(Tag::UNIQUE_IDENTIFIER, unique_identifier))
        .chain(names.iter().map(|n| Ttlv::text(Tag::ATTRIBUTE_NAME, *n)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// Reads a Response Message to a request for `expected`: checks the header (KMIP 1.x, one
/// batch item) and returns the item's outcome.
pub fn parse_response(message: Ttlv, expected: Operation) -> Result<Reply, MessageError> {
    expect_tag(&message, Tag::RESPONSE_MESSAGE)?;
    expect_type(&message, ItemType::Structure)?;
    check_header(required(&message, Tag::RESPONSE_HEADER)?)?;
    let item = single_batch_item(message)?;
    parse_batch_item(item, expected)
}

/// Checks a Response Header: a 1.x Protocol Version and a Batch Count of one.
fn check_header(header: &Ttlv) -> Result<(), MessageError> {
    expect_type(header, ItemType::Structure)?;
    let version = ProtocolVersion::from_ttlv(required(header, Tag::PROTOCOL_VERSION)?)?;
    if version.major != 1 {
        return Err(MessageError::Unexpected(format!(
            "the server answered with KMIP {version}, but keysmith speaks KMIP 1.x"
        )));
    }
    let count = integer(required(header, Tag::BATCH_COUNT)?)?;
    if count != 1 {
        return Err(MessageError::Unexpected(format!(
            "the response has a Batch Count of {count}, but the request had one batch item"
        )));
    }
    Ok(())
}

/// Takes the one Batch Item out of a Response Message.
fn single_batch_item(message: Ttlv) -> Result<Ttlv, MessageError> {
    let Value::Structure(items) = message.value else {
        return Err(MessageError::Unexpected(
            "the response is not a Structure".into(),
        ));
    };
    let mut batch_items = items.into_iter().filter(|i| i.tag == Tag::BATCH_ITEM);
    match (batch_items.next(), batch_items.next()) {
        (Some(item), None) => Ok(item),
        (None, _) => Err(MessageError::Missing {
            parent: Tag::RESPONSE_MESSAGE,
            child: Tag::BATCH_ITEM,
        }),
        (Some(_), Some(_)) => Err(MessageError::Unexpected(
            "the response has more than one Batch Item".into(),
        )),
    }
}

/// Reads a response Batch Item.
fn parse_batch_item(item: Ttlv, expected: Operation) -> Result<Reply, MessageError> {
    expect_type(&item, ItemType::Structure)?;
    // PyKMIP leaves the Operation out of error responses to requests it could not parse.
    if let Some(operation) = item.find(Tag::OPERATION) {
        let operation = known(operation, Operation::from_value)?;
        if operation != expected {
            return Err(MessageError::Unexpected(format!(
                "the response is for {operation}, but the request was {expected}"
            )));
        }
    }
    let status = known(
        required(&item, Tag::RESULT_STATUS)?,
        ResultStatus::from_value,
    )?;
    if status == ResultStatus::Success {
        let Value::Structure(items) = item.value else {
            return Ok(Reply::Success(None));
        };
        let payload = items.into_iter().find(|i| i.tag == Tag::RESPONSE_PAYLOAD);
        if let Some(payload) = &payload {
            expect_type(payload, ItemType::Structure)?;
        }
        return Ok(Reply::Success(payload));
    }
    let reason_code = item.find(Tag::RESULT_REASON).map(enumeration).transpose()?;
    let message = item.find(Tag::RESULT_MESSAGE).map(text).transpose()?;
    Ok(Reply::Failure(Failure {
        operation: expected,
        status,
        reason_code,
        message: message.map(sanitize),
    }))
}

/// A server message fit for a log line or a status: control characters become spaces and
/// it is cut to [`MAX_RESULT_MESSAGE_CHARS`].
fn sanitize(message: &str) -> String {
    let mut out: String = message
        .chars()
        .take(MAX_RESULT_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if message.chars().nth(MAX_RESULT_MESSAGE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// The Unique Identifier of a Register, Activate, Revoke or Destroy response payload.
pub fn parse_unique_identifier(payload: Option<&Ttlv>) -> Result<String, MessageError> {
    let payload = payload.ok_or(MessageError::Missing {
        parent: Tag::BATCH_ITEM,
        child: Tag::RESPONSE_PAYLOAD,
    })?;
    Ok(text(required(payload, Tag::UNIQUE_IDENTIFIER)?)?.to_owned())
}

/// The Unique Identifiers of a Locate response payload (none when there is no payload).
pub fn parse_locate(payload: Option<&Ttlv>) -> Result<Vec<String>, MessageError> {
    payload
        .map(|p| p.find_all(Tag::UNIQUE_IDENTIFIER))
        .into_iter()
        .flatten()
        .map(|uid| text(uid).map(str::to_owned))
        .collect()
}

/// The bytes of the Secret Data object of a Get response payload. Refuses other object
/// types and wrapped or structured key values.
pub fn parse_secret_data(payload: Option<Ttlv>) -> Result<SecretBytes, MessageError> {
    let payload = payload.ok_or(MessageError::Missing {
        parent: Tag::BATCH_ITEM,
        child: Tag::RESPONSE_PAYLOAD,
    })?;
    let object_type = known(
        required(&payload, Tag::OBJECT_TYPE)?,
        ObjectType::from_value,
    )?;
    if object_type != ObjectType::SecretData {
        return Err(MessageError::Unexpected(format!(
            "the object is a {object_type}, not Secret Data"
        )));
    }
    let secret_data = required(&payload, Tag::SECRET_DATA)?;
    let key_block = required(secret_data, Tag::KEY_BLOCK)?;
    if key_block.find(Tag::KEY_WRAPPING_DATA).is_some() {
        return Err(MessageError::Unexpected(
            "the server returned the secret wrapped, which keysmith does not unwrap".into(),
        ));
    }
    let key_value = required(key_block, Tag::KEY_VALUE)?;
    expect_type(key_value, ItemType::Structure)?;
    let material = required(key_value, Tag::KEY_MATERIAL)?;
    material.as_bytes().cloned().ok_or(MessageError::WrongType {
        tag: Tag::KEY_MATERIAL,
        expected: ItemType::ByteString,
        found: material.value.item_type(),
    })
}

/// What a Query response payload says about the server.
pub fn parse_query(payload: Option<&Ttlv>) -> Result<ServerInfo, MessageError> {
    let Some(payload) = payload else {
        return Ok(ServerInfo::default());
    };
    let operations = payload
        .find_all(Tag::OPERATION)
        .map(enumeration)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(Operation::from_value)
        .collect();
    let vendor_identification = payload
        .find(Tag::VENDOR_IDENTIFICATION)
        .map(text)
        .transpose()?
        .map(sanitize);
    Ok(ServerInfo {
        operations,
        vendor_identification,
    })
}

/// The State attribute of a Get Attributes response payload.
pub fn parse_state(payload: Option<&Ttlv>) -> Result<State, MessageError> {
    let state = payload
        .into_iter()
        .flat_map(|p| p.find_all(Tag::ATTRIBUTE))
        .find(|a| {
            a.find(Tag::ATTRIBUTE_NAME).and_then(Ttlv::as_text) == Some(attribute_name::STATE)
        })
        .ok_or_else(|| MessageError::Unexpected("the server returned no State attribute".into()))?;
    known(required(state, Tag::ATTRIBUTE_VALUE)?, State::from_value)
}

// ---------------------------------------------------------------------------------------
// Reading items
// ---------------------------------------------------------------------------------------

/// The first item with `child` in the Structure `parent`.
fn required(parent: &Ttlv, child: Tag) -> Result<&Ttlv, MessageError> {
    parent.find(child).ok_or(MessageError::Missing {
        parent: parent.tag,
        child,
    })
}

/// Fails unless `item` has `tag`.
fn expect_tag(item: &Ttlv, tag: Tag) -> Result<(), MessageError> {
    if item.tag == tag {
        Ok(())
    } else {
        Err(MessageError::UnexpectedTag {
            expected: tag,
            found: item.tag,
        })
    }
}

/// Fails unless `item` has type `expected`.
fn expect_type(item: &Ttlv, expected: ItemType) -> Result<(), MessageError> {
    let found = item.value.item_type();
    if found == expected {
        Ok(())
    } else {
        Err(MessageError::WrongType {
            tag: item.tag,
            expected,
            found,
        })
    }
}

/// The value of an Integer item.
fn integer(item: &Ttlv) -> Result<i32, MessageError> {
    expect_type(item, ItemType::Integer)?;
    Ok(item.as_integer().unwrap_or_default())
}

/// The value of an Enumeration item.
fn enumeration(item: &Ttlv) -> Result<u32, MessageError> {
    expect_type(item, ItemType::Enumeration)?;
    Ok(item.as_enumeration().unwrap_or_default())
}

/// The value of a Text String item.
fn text(item: &Ttlv) -> Result<&str, MessageError> {
    expect_type(item, ItemType::TextString)?;
    Ok(item.as_text().unwrap_or_default())
}

/// An Enumeration item read as one of the client's enumerations.
fn known<T>(item: &Ttlv, from_value: fn(u32) -> Option<T>) -> Result<T, MessageError> {
    let value = enumeration(item)?;
    from_value(value).ok_or(MessageError::UnknownValue {
        tag: item.tag,
        value,
    })
}

#[cfg(test)]
mod tests;
