use super::*;
use crate::kmip::tags::usage_mask;
use crate::kmip::testing::hex;

/// KMIP 1.1, the version of the requests in the KMIP 1.1 Test Cases document.
const V1_1: ProtocolVersion = ProtocolVersion { major: 1, minor: 1 };

/// Request header of the KMIP 1.1 Test Cases: Protocol Version 1.1, Batch Count 1.
const TEST_CASE_REQUEST_HEADER: &str = "
    42 00 77 | 01 | 00 00 00 38
      42 00 69 | 01 | 00 00 00 20
        42 00 6A | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
        42 00 6B | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
      42 00 0D | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00";

/// `49a1ca88-6bea-4fb2-b450-7e58802c3038` as a padded Text String value.
const UID_49A1: &str = "34 39 61 31 63 61 38 38 2D 36 62 65 61 2D 34 66 62 32 2D 62 34 35 30 2D
                        37 65 35 38 38 30 32 63 33 30 33 38 00 00 00 00";

/// Encodes a request and compares it with the wire bytes.
fn assert_request(request: &Ttlv, wire: &str) {
    let expected = hex(wire);
    let encoded = request.encode().expect("encodes");
    assert_eq!(encoded.as_slice(), expected.as_slice());
}

#[test]
fn locate_by_name_matches_kmip_1_1_test_case_3_1_3() {
    // KMIP Test Cases v1.1, section 3.1.3 (Create / Locate / Get / Destroy), Locate
    // request: Object Type Symmetric Key and Name "Key1" (Uninterpreted Text String).
    let wire = format!(
        "42 00 78 | 01 | 00 00 00 D0 {TEST_CASE_REQUEST_HEADER}
         42 00 0F | 01 | 00 00 00 88
           42 00 5C | 05 | 00 00 00 04 | 00 00 00 08 00 00 00 00
           42 00 79 | 01 | 00 00 00 70
             42 00 08 | 01 | 00 00 00 28
               42 00 0A | 07 | 00 00 00 0B | 4F 62 6A 65 63 74 20 54 79 70 65 00 00 00 00 00
               42 00 0B | 05 | 00 00 00 04 | 00 00 00 02 00 00 00 00
             42 00 08 | 01 | 00 00 00 38
               42 00 0A | 07 | 00 00 00 04 | 4E 61 6D 65 00 00 00 00
               42 00 0B | 01 | 00 00 00 20
                 42 00 55 | 07 | 00 00 00 04 | 4B 65 79 31 00 00 00 00
                 42 00 54 | 05 | 00 00 00 04 | 00 00 00 01 00 00 00 00"
    );
    let payload = locate_by_name_payload(Some(ObjectType::SymmetricKey), "Key1");
    assert_request(&request(V1_1, Operation::Locate, payload), &wire);
}

#[test]
fn get_matches_kmip_1_1_test_case_3_1_3() {
    // KMIP Test Cases v1.1, section 3.1.3, Get request of the located key.
    let wire = format!(
        "42 00 78 | 01 | 00 00 00 90 {TEST_CASE_REQUEST_HEADER}
         42 00 0F | 01 | 00 00 00 48
           42 00 5C | 05 | 00 00 00 04 | 00 00 00 0A 00 00 00 00
           42 00 79 | 01 | 00 00 00 30
             42 00 94 | 07 | 00 00 00 24 | {UID_49A1}"
    );
    let payload = unique_identifier_payload("49a1ca88-6bea-4fb2-b450-7e58802c3038");
    assert_request(&request(V1_1, Operation::Get, payload), &wire);
}

#[test]
fn destroy_matches_kmip_1_1_test_case_3_1_1() {
    // KMIP Test Cases v1.1, section 3.1.1 (Create / Destroy), Destroy request.
    let wire = format!(
        "42 00 78 | 01 | 00 00 00 90 {TEST_CASE_REQUEST_HEADER}
         42 00 0F | 01 | 00 00 00 48
           42 00 5C | 05 | 00 00 00 04 | 00 00 00 14 00 00 00 00
           42 00 79 | 01 | 00 00 00 30
             42 00 94 | 07 | 00 00 00 24 | 66 62 34 62 35 62 39 63 2D 36 31 38 38 2D 34 63
                                           36 33 2D 38 31 34 32 2D 66 65 39 63 33 32 38 31
                                           32 39 66 63 00 00 00 00"
    );
    let payload = unique_identifier_payload("fb4b5b9c-6188-4c63-8142-fe9c328129fc");
    assert_request(&request(V1_1, Operation::Destroy, payload), &wire);
}

#[test]
fn locate_response_of_kmip_1_1_test_case_3_1_3_parses() {
    // KMIP Test Cases v1.1, section 3.1.3, Locate response: one Unique Identifier.
    let wire = format!(
        "42 00 7B | 01 | 00 00 00 B0
           42 00 7A | 01 | 00 00 00 48
             42 00 69 | 01 | 00 00 00 20
               42 00 6A | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
               42 00 6B | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
             42 00 92 | 09 | 00 00 00 08 | 00 00 00 00 4F 9A 54 E6
             42 00 0D | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
           42 00 0F | 01 | 00 00 00 58
             42 00 5C | 05 | 00 00 00 04 | 00 00 00 08 00 00 00 00
             42 00 7F | 05 | 00 00 00 04 | 00 00 00 00 00 00 00 00
             42 00 7C | 01 | 00 00 00 30
               42 00 94 | 07 | 00 00 00 24 | {UID_49A1}"
    );
    let message = Ttlv::decode(&hex(&wire)).expect("decodes");
    let Reply::Success(payload) = parse_response(message, Operation::Locate).expect("parses")
    else {
        panic!("not a success");
    };
    assert_eq!(
        parse_locate(payload.as_ref()).expect("uids"),
        ["49a1ca88-6bea-4fb2-b450-7e58802c3038"]
    );
}

/// KMIP Test Cases v1.1, section 3.1.3, Get response: a Symmetric Key (AES-168 bits of
/// Key Material in a Raw key block).
fn test_case_get_response() -> Ttlv {
    let wire = format!(
        "42 00 7B | 01 | 00 00 01 28
           42 00 7A | 01 | 00 00 00 48
             42 00 69 | 01 | 00 00 00 20
               42 00 6A | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
               42 00 6B | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
             42 00 92 | 09 | 00 00 00 08 | 00 00 00 00 4F 9A 54 E7
             42 00 0D | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
           42 00 0F | 01 | 00 00 00 D0
             42 00 5C | 05 | 00 00 00 04 | 00 00 00 0A 00 00 00 00
             42 00 7F | 05 | 00 00 00 04 | 00 00 00 00 00 00 00 00
             42 00 7C | 01 | 00 00 00 A8
               42 00 57 | 05 | 00 00 00 04 | 00 00 00 02 00 00 00 00
               42 00 94 | 07 | 00 00 00 24 | {UID_49A1}
               42 00 8F | 01 | 00 00 00 60
                 42 00 40 | 01 | 00 00 00 58
                   42 00 42 | 05 | 00 00 00 04 | 00 00 00 01 00 00 00 00
                   42 00 45 | 01 | 00 00 00 20
                     42 00 43 | 08 | 00 00 00 18 | 73 67 57 80 51 01 2A 6D 13 4A 85 5E
                                                   25 C8 CD 5E 4C A1 31 45 57 29 D3 C8
                   42 00 28 | 05 | 00 00 00 04 | 00 00 00 02 00 00 00 00
                   42 00 2A | 02 | 00 00 00 04 | 00 00 00 A8 00 00 00 00"
    );
    Ttlv::decode(&hex(&wire)).expect("decodes")
}

#[test]
fn get_of_a_symmetric_key_is_refused_as_secret_data() {
    let Reply::Success(payload) =
        parse_response(test_case_get_response(), Operation::Get).expect("parses")
    else {
        panic!("not a success");
    };
    let error = parse_secret_data(payload).expect_err("not secret data");
    assert_eq!(
        error.to_string(),
        "the object is a Symmetric Key, not Secret Data"
    );
}

#[test]
fn a_response_for_another_operation_is_malformed() {
    let error = parse_response(test_case_get_response(), Operation::Locate).expect_err("wrong");
    assert_eq!(
        error.to_string(),
        "the response is for Get, but the request was Locate"
    );
}

#[test]
fn register_request_carries_secret_data_password_with_name_and_usage_mask() {
    let secret = SecretBytes::new(b"0123456789abcdefghij=".to_vec());
    let payload = register_secret_data_payload(
        "a1b2",
        SecretDataType::Password,
        &secret,
        usage_mask::VERIFY,
    );
    let message = request(PROTOCOL_VERSION, Operation::Register, payload);
    // Built by hand from KMIP 1.2 sections 2.1.1 (Attribute), 2.2.7 (Secret Data),
    // 3.2 (Name), 3.19 (Cryptographic Usage Mask) and 4.3 (Register).
    let wire = "
        42 00 78 | 01 | 00 00 01 48
          42 00 77 | 01 | 00 00 00 38
            42 00 69 | 01 | 00 00 00 20
              42 00 6A | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
              42 00 6B | 02 | 00 00 00 04 | 00 00 00 02 00 00 00 00
            42 00 0D | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00
          42 00 0F | 01 | 00 00 01 00
            42 00 5C | 05 | 00 00 00 04 | 00 00 00 03 00 00 00 00
            42 00 79 | 01 | 00 00 00 E8
              42 00 57 | 05 | 00 00 00 04 | 00 00 00 07 00 00 00 00
              42 00 91 | 01 | 00 00 00 78
                42 00 08 | 01 | 00 00 00 30
                  42 00 0A | 07 | 00 00 00 18 | 43 72 79 70 74 6F 67 72 61 70 68 69 63 20 55 73
                                                61 67 65 20 4D 61 73 6B
                  42 00 0B | 02 | 00 00 00 04 | 00 00 00 02 00 00 00 00
                42 00 08 | 01 | 00 00 00 38
                  42 00 0A | 07 | 00 00 00 04 | 4E 61 6D 65 00 00 00 00
                  42 00 0B | 01 | 00 00 00 20
                    42 00 55 | 07 | 00 00 00 04 | 61 31 62 32 00 00 00 00
                    42 00 54 | 05 | 00 00 00 04 | 00 00 00 01 00 00 00 00
              42 00 85 | 01 | 00 00 00 50
                42 00 86 | 05 | 00 00 00 04 | 00 00 00 01 00 00 00 00
                42 00 40 | 01 | 00 00 00 38
                  42 00 42 | 05 | 00 00 00 04 | 00 00 00 02 00 00 00 00
                  42 00 45 | 01 | 00 00 00 20
                    42 00 43 | 08 | 00 00 00 15 | 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66
                                                  67 68 69 6A 3D 00 00 00";
    assert_request(&message, wire);
}

#[test]
fn revoke_payload_adds_the_compromise_date_only_when_given() {
    let plain = revoke_payload("7", RevocationReasonCode::CessationOfOperation, None);
    assert_eq!(
        plain,
        vec![
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, "7"),
            Ttlv::structure(
                Tag::REVOCATION_REASON,
                vec![Ttlv::enumeration(Tag::REVOCATION_REASON_CODE, 6)]
            ),
        ]
    );
    let compromised = revoke_payload("7", RevocationReasonCode::KeyCompromise, Some(1_700_000));
    assert_eq!(
        compromised.last(),
        Some(&Ttlv::date_time(Tag::COMPROMISE_OCCURRENCE_DATE, 1_700_000))
    );
}

#[test]
fn query_and_get_attributes_payloads() {
    assert_eq!(
        query_payload(&[
            QueryFunction::QueryOperations,
            QueryFunction::QueryServerInformation
        ]),
        vec![
            Ttlv::enumeration(Tag::QUERY_FUNCTION, 1),
            Ttlv::enumeration(Tag::QUERY_FUNCTION, 3),
        ]
    );
    assert_eq!(
        get_attributes_payload("12", &["State"]),
        vec![
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, "12"),
            Ttlv::text(Tag::ATTRIBUTE_NAME, "State"),
        ]
    );
}

/// A KMIP 1.2 Response Message with one batch item of `items`.
fn response(items: Vec<Ttlv>) -> Ttlv {
    let header = Ttlv::structure(
        Tag::RESPONSE_HEADER,
        vec![
            PROTOCOL_VERSION.to_ttlv(),
            Ttlv::date_time(Tag::TIME_STAMP, 1_700_000_000),
            Ttlv::integer(Tag::BATCH_COUNT, 1),
        ],
    );
    Ttlv::structure(
        Tag::RESPONSE_MESSAGE,
        vec![header, Ttlv::structure(Tag::BATCH_ITEM, items)],
    )
}

/// A successful response to `operation` with a payload of `payload`.
fn success(operation: Operation, payload: Vec<Ttlv>) -> Ttlv {
    response(vec![
        Ttlv::enumeration(Tag::OPERATION, operation.value()),
        Ttlv::enumeration(Tag::RESULT_STATUS, ResultStatus::Success.value()),
        Ttlv::structure(Tag::RESPONSE_PAYLOAD, payload),
    ])
}

/// Encodes and decodes `message`, then parses it as a response to `operation`.
fn round_trip(message: &Ttlv, operation: Operation) -> Result<Reply, MessageError> {
    let decoded = Ttlv::decode(&message.encode().expect("encodes")).expect("decodes");
    parse_response(decoded, operation)
}

/// The payload of a successful reply.
fn payload_of(reply: Reply) -> Option<Ttlv> {
    match reply {
        Reply::Success(payload) => payload,
        Reply::Failure(failure) => panic!("unexpected failure: {failure}"),
    }
}

#[test]
fn get_response_with_secret_data_round_trips_to_the_secret() {
    let secret = SecretBytes::new(b"s3cr3t passphrase with = sign".to_vec());
    let register = register_secret_data_payload("n", SecretDataType::Password, &secret, 2);
    let secret_data = register
        .into_iter()
        .find(|i| i.tag == Tag::SECRET_DATA)
        .expect("secret data");
    let message = success(
        Operation::Get,
        vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, ObjectType::SecretData.value()),
            Ttlv::text(Tag::UNIQUE_IDENTIFIER, "1"),
            secret_data,
        ],
    );
    let payload = payload_of(round_trip(&message, Operation::Get).expect("parses"));
    assert_eq!(parse_secret_data(payload).expect("secret"), secret);
}

#[test]
fn wrapped_or_structured_key_values_are_refused() {
    let key_block = |value: Ttlv, wrapped: bool| {
        let mut items = vec![Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, 2), value];
        if wrapped {
            items.push(Ttlv::structure(Tag::KEY_WRAPPING_DATA, vec![]));
        }
        Some(Ttlv::structure(
            Tag::RESPONSE_PAYLOAD,
            vec![
                Ttlv::enumeration(Tag::OBJECT_TYPE, 7),
                Ttlv::text(Tag::UNIQUE_IDENTIFIER, "1"),
                Ttlv::structure(
                    Tag::SECRET_DATA,
                    vec![
                        Ttlv::enumeration(Tag::SECRET_DATA_TYPE, 1),
                        Ttlv::structure(Tag::KEY_BLOCK, items),
                    ],
                ),
            ],
        ))
    };
    let opaque = || SecretBytes::new(vec![9; 16]);
    let wrapped = key_block(Ttlv::bytes(Tag::KEY_VALUE, opaque()), true);
    assert!(
        parse_secret_data(wrapped)
            .expect_err("wrapped")
            .to_string()
            .contains("wrapped")
    );
    let byte_value = key_block(Ttlv::bytes(Tag::KEY_VALUE, opaque()), false);
    assert!(matches!(
        parse_secret_data(byte_value),
        Err(MessageError::WrongType {
            tag: Tag::KEY_VALUE,
            ..
        })
    ));
    let structured = key_block(
        Ttlv::structure(
            Tag::KEY_VALUE,
            vec![Ttlv::structure(Tag::KEY_MATERIAL, vec![])],
        ),
        false,
    );
    let error = parse_secret_data(structured).expect_err("structured");
    assert_eq!(
        error.to_string(),
        "Key Material is a Structure, not a Byte String"
    );
    assert!(matches!(
        parse_secret_data(None),
        Err(MessageError::Missing { .. })
    ));
}

#[test]
fn failure_reports_reason_name_meaning_and_sanitized_server_message() {
    let message = response(vec![
        Ttlv::enumeration(Tag::OPERATION, Operation::Destroy.value()),
        Ttlv::enumeration(Tag::RESULT_STATUS, 1),
        Ttlv::enumeration(Tag::RESULT_REASON, 0x0C),
        Ttlv::text(
            Tag::RESULT_MESSAGE,
            "Object is active\nand cannot be destroyed.",
        ),
    ]);
    let Reply::Failure(failure) = round_trip(&message, Operation::Destroy).expect("parses") else {
        panic!("not a failure");
    };
    assert_eq!(failure.reason(), Some(ResultReason::PermissionDenied));
    assert_eq!(failure.status, ResultStatus::OperationFailed);
    assert_eq!(
        failure.to_string(),
        "Permission Denied (the client may not perform this operation on the object); \
         the server says: Object is active and cannot be destroyed."
    );
}

#[test]
fn pykmip_error_response_without_operation_parses_as_failure() {
    // The shape PyKMIP 0.11 sends for a request it cannot parse (session.py): no
    // Operation, Result Status Operation Failed, Result Reason Invalid Message.
    let message = response(vec![
        Ttlv::enumeration(Tag::RESULT_STATUS, 1),
        Ttlv::enumeration(Tag::RESULT_REASON, 4),
        Ttlv::text(
            Tag::RESULT_MESSAGE,
            "Error parsing request message. See server logs for more information.",
        ),
    ]);
    let Reply::Failure(failure) = round_trip(&message, Operation::Register).expect("parses") else {
        panic!("not a failure");
    };
    assert_eq!(failure.operation, Operation::Register);
    assert_eq!(failure.reason(), Some(ResultReason::InvalidMessage));
}

#[test]
fn unknown_reasons_and_pending_status_are_described() {
    let failure = |status, reason_code| Failure {
        operation: Operation::Get,
        status,
        reason_code,
        message: None,
    };
    assert_eq!(
        failure(ResultStatus::OperationFailed, Some(0x4242)).to_string(),
        "Operation Failed (result reason 0x4242)"
    );
    assert!(
        failure(ResultStatus::OperationPending, None)
            .to_string()
            .contains("asynchronously")
    );
    assert_eq!(
        failure(ResultStatus::OperationUndone, None).to_string(),
        "Operation Undone"
    );
}

#[test]
fn redact_removes_the_secret_from_the_server_message() {
    let secret = SecretBytes::new(b"hunter2-hunter2-hunter2".to_vec());
    let mut failure = Failure {
        operation: Operation::Register,
        status: ResultStatus::OperationFailed,
        reason_code: Some(7),
        message: Some("bad key material 'hunter2-hunter2-hunter2'".into()),
    };
    failure.redact(&secret);
    assert_eq!(
        failure.message.as_deref(),
        Some("bad key material '<redacted>'")
    );
}

#[test]
fn long_server_messages_are_cut() {
    let message = response(vec![
        Ttlv::enumeration(Tag::RESULT_STATUS, 1),
        Ttlv::enumeration(Tag::RESULT_REASON, 0x100),
        Ttlv::text(Tag::RESULT_MESSAGE, "x".repeat(5000)),
    ]);
    let Reply::Failure(failure) = round_trip(&message, Operation::Query).expect("parses") else {
        panic!("not a failure");
    };
    let text = failure.message.expect("message");
    assert_eq!(text.chars().count(), MAX_RESULT_MESSAGE_CHARS + 1);
    assert!(text.ends_with('…'));
}

#[test]
fn malformed_responses_are_refused() {
    let ok_item = || {
        Ttlv::structure(
            Tag::BATCH_ITEM,
            vec![Ttlv::enumeration(Tag::RESULT_STATUS, 0)],
        )
    };
    let header = |major, count| {
        Ttlv::structure(
            Tag::RESPONSE_HEADER,
            vec![
                ProtocolVersion { major, minor: 0 }.to_ttlv(),
                Ttlv::integer(Tag::BATCH_COUNT, count),
            ],
        )
    };
    let cases = [
        (
            "a request message",
            Ttlv::structure(Tag::REQUEST_MESSAGE, vec![]),
            "expected Response Message but found Request Message",
        ),
        (
            "no header",
            Ttlv::structure(Tag::RESPONSE_MESSAGE, vec![ok_item()]),
            "Response Message has no Response Header",
        ),
        (
            "KMIP 2.0",
            Ttlv::structure(Tag::RESPONSE_MESSAGE, vec![header(2, 1), ok_item()]),
            "the server answered with KMIP 2.0, but keysmith speaks KMIP 1.x",
        ),
        (
            "two batch items announced",
            Ttlv::structure(Tag::RESPONSE_MESSAGE, vec![header(1, 2), ok_item()]),
            "the response has a Batch Count of 2, but the request had one batch item",
        ),
        (
            "no batch item",
            Ttlv::structure(Tag::RESPONSE_MESSAGE, vec![header(1, 1)]),
            "Response Message has no Batch Item",
        ),
        (
            "two batch items",
            Ttlv::structure(
                Tag::RESPONSE_MESSAGE,
                vec![header(1, 1), ok_item(), ok_item()],
            ),
            "the response has more than one Batch Item",
        ),
        (
            "unknown result status",
            Ttlv::structure(
                Tag::RESPONSE_MESSAGE,
                vec![
                    header(1, 1),
                    Ttlv::structure(
                        Tag::BATCH_ITEM,
                        vec![Ttlv::enumeration(Tag::RESULT_STATUS, 9)],
                    ),
                ],
            ),
            "Result Status has the unknown value 0x9",
        ),
        (
            "result status as an integer",
            Ttlv::structure(
                Tag::RESPONSE_MESSAGE,
                vec![
                    header(1, 1),
                    Ttlv::structure(Tag::BATCH_ITEM, vec![Ttlv::integer(Tag::RESULT_STATUS, 0)]),
                ],
            ),
            "Result Status is a Integer, not a Enumeration",
        ),
    ];
    for (scenario, message, expected) in cases {
        let error = parse_response(message, Operation::Get).expect_err(scenario);
        assert_eq!(error.to_string(), expected, "{scenario}");
    }
}

#[test]
fn register_locate_query_and_state_responses_parse() {
    let uid = |v: &str| Ttlv::text(Tag::UNIQUE_IDENTIFIER, v);
    let register = success(Operation::Register, vec![uid("42")]);
    let payload = payload_of(round_trip(&register, Operation::Register).expect("parses"));
    assert_eq!(
        parse_unique_identifier(payload.as_ref()).expect("uid"),
        "42"
    );
    assert!(parse_unique_identifier(None).is_err());

    let locate = success(Operation::Locate, vec![uid("3"), uid("1")]);
    let payload = payload_of(round_trip(&locate, Operation::Locate).expect("parses"));
    assert_eq!(parse_locate(payload.as_ref()).expect("uids"), ["3", "1"]);
    assert!(parse_locate(None).expect("none").is_empty());

    let query = success(
        Operation::Query,
        vec![
            Ttlv::enumeration(Tag::OPERATION, Operation::Register.value()),
            Ttlv::enumeration(Tag::OPERATION, 0x7777),
            Ttlv::enumeration(Tag::OPERATION, Operation::Locate.value()),
            Ttlv::text(Tag::VENDOR_IDENTIFICATION, "PyKMIP 0.11.0 Software Server"),
        ],
    );
    let payload = payload_of(round_trip(&query, Operation::Query).expect("parses"));
    assert_eq!(
        parse_query(payload.as_ref()).expect("info"),
        ServerInfo {
            operations: vec![Operation::Register, Operation::Locate],
            vendor_identification: Some("PyKMIP 0.11.0 Software Server".into()),
        }
    );

    let state = success(
        Operation::GetAttributes,
        vec![
            uid("42"),
            attribute("State", Value::Enumeration(State::PreActive.value())),
        ],
    );
    let payload = payload_of(round_trip(&state, Operation::GetAttributes).expect("parses"));
    assert_eq!(
        parse_state(payload.as_ref()).expect("state"),
        State::PreActive
    );
    assert!(parse_state(None).is_err());
}
