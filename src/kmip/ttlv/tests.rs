use super::*;
use crate::kmip::testing::hex;

/// The tag of every example of KMIP 1.2 specification section 9.1.2 ("Examples").
const EXAMPLE: Tag = Tag(0x42_0020);

/// Asserts that `item` encodes to `wire` and `wire` decodes to `item`.
fn assert_wire(item: &Ttlv, wire: &str) {
    let bytes = hex(wire);
    assert_eq!(item.encode().expect("encodes").as_slice(), bytes.as_slice());
    assert_eq!(item.encoded_len(), bytes.len());
    assert_eq!(&Ttlv::decode(&bytes).expect("decodes"), item);
}

// Vectors of the KMIP 1.2 specification, section 9.1.2 "Examples" (the same examples are in
// sections 9.1.2 of KMIP 1.0, 1.1 and 1.4).

#[test]
fn spec_example_integer_8() {
    assert_wire(
        &Ttlv::integer(EXAMPLE, 8),
        "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00",
    );
}

#[test]
fn spec_example_long_integer() {
    assert_wire(
        &Ttlv::long_integer(EXAMPLE, 123_456_789_000_000_000),
        "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00",
    );
}

#[test]
fn spec_example_big_integer() {
    let bytes = hex("00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00");
    let value = i128::from_be_bytes(bytes.clone().try_into().expect("16 bytes"));
    assert_eq!(value, 1_234_567_890_000_000_000_000_000_000);
    assert_wire(
        &Ttlv::big_integer(EXAMPLE, SecretBytes::new(bytes)),
        "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
    );
}

#[test]
fn spec_example_enumeration_255() {
    assert_wire(
        &Ttlv::enumeration(EXAMPLE, 255),
        "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
    );
}

#[test]
fn spec_example_boolean_true() {
    assert_wire(
        &Ttlv::boolean(EXAMPLE, true),
        "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01",
    );
}

#[test]
fn spec_example_text_string_hello_world() {
    assert_wire(
        &Ttlv::text(EXAMPLE, "Hello World"),
        "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00",
    );
}

#[test]
fn spec_example_byte_string() {
    assert_wire(
        &Ttlv::bytes(EXAMPLE, SecretBytes::new(vec![1, 2, 3])),
        "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
    );
}

#[test]
fn spec_example_date_time_2008_03_14() {
    let when: jiff::Timestamp = "2008-03-14T11:56:40Z".parse().expect("timestamp");
    assert_wire(
        &Ttlv::date_time(EXAMPLE, when.as_second()),
        "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8",
    );
}

#[test]
fn spec_example_interval_10_days() {
    assert_wire(
        &Ttlv::interval(EXAMPLE, 10 * 24 * 3600),
        "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00",
    );
}

#[test]
fn spec_example_structure_of_enumeration_and_integer() {
    let item = Ttlv::structure(
        EXAMPLE,
        vec![
            Ttlv::enumeration(Tag(0x42_0004), 254),
            Ttlv::integer(Tag(0x42_0005), 255),
        ],
    );
    assert_wire(
        &item,
        "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 \
         | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
    );
}

#[test]
fn every_type_round_trips_in_a_nested_structure() {
    let tree = Ttlv::structure(
        Tag::REQUEST_MESSAGE,
        vec![
            Ttlv::integer(Tag(0x42_0001), -1),
            Ttlv::long_integer(Tag(0x42_0002), i64::MIN),
            Ttlv::big_integer(Tag(0x42_0003), SecretBytes::new(vec![0xFF; 16])),
            Ttlv::enumeration(Tag(0x42_0004), u32::MAX),
            Ttlv::boolean(Tag(0x42_0005), false),
            Ttlv::text(Tag(0x42_0006), "Grüße, 8 bytes!"),
            Ttlv::text(Tag(0x42_0007), ""),
            Ttlv::bytes(Tag(0x42_0008), SecretBytes::new(vec![0; 8])),
            Ttlv::bytes(Tag(0x42_0009), SecretBytes::default()),
            Ttlv::date_time(Tag(0x42_000A), -5),
            Ttlv::interval(Tag(0x42_000B), 0),
            Ttlv::structure(
                Tag(0x42_000C),
                vec![Ttlv::structure(Tag(0x42_000D), vec![])],
            ),
            Ttlv::structure(Tag(0x54_0000), vec![]),
        ],
    );
    let bytes = tree.encode().expect("encodes");
    assert_eq!(bytes.len(), tree.encoded_len());
    assert!(bytes.len().is_multiple_of(8));
    assert_eq!(Ttlv::decode(&bytes).expect("decodes"), tree);
}

#[test]
fn accessors_return_values_of_their_type_only() {
    let item = Ttlv::structure(
        EXAMPLE,
        vec![
            Ttlv::text(Tag::NAME_VALUE, "a"),
            Ttlv::enumeration(Tag::NAME_TYPE, 1),
            Ttlv::text(Tag::NAME_VALUE, "b"),
        ],
    );
    let texts: Vec<_> = item
        .find_all(Tag::NAME_VALUE)
        .filter_map(Ttlv::as_text)
        .collect();
    assert_eq!(texts, ["a", "b"]);
    let name_type = item.find(Tag::NAME_TYPE).expect("present");
    assert_eq!(name_type.as_enumeration(), Some(1));
    assert_eq!(name_type.as_integer(), None);
    assert_eq!(name_type.as_text(), None);
    assert!(name_type.items().is_empty());
    assert_eq!(item.find(Tag::UNIQUE_IDENTIFIER), None);
}

#[test]
fn debug_output_redacts_byte_strings_and_big_integers() {
    let secret = b"correct horse battery staple".to_vec();
    let item = Ttlv::structure(
        Tag::KEY_VALUE,
        vec![
            Ttlv::bytes(Tag::KEY_MATERIAL, SecretBytes::new(secret.clone())),
            Ttlv::big_integer(EXAMPLE, SecretBytes::new(vec![0x42; 8])),
        ],
    );
    let decoded = Ttlv::decode(&item.encode().expect("encodes")).expect("decodes");
    let shown = format!("{decoded:?} {decoded:#?}");
    assert!(!shown.contains("horse"), "{shown}");
    assert!(!shown.contains("99, 111"), "{shown}");
    assert!(!shown.contains("66, 66"), "{shown}");
    assert!(shown.contains("Key Material"), "{shown}");
}

#[test]
fn strict_decoding_rejects_malformed_input_with_a_clear_error() {
    let cases: &[(&str, &str, TtlvError)] = &[
        (
            "empty input",
            "",
            TtlvError::Truncated {
                offset: 0,
                needed: 8,
                available: 0,
            },
        ),
        (
            "header cut short",
            "42 00 20 | 02 | 00 00",
            TtlvError::Truncated {
                offset: 0,
                needed: 8,
                available: 6,
            },
        ),
        (
            "value cut short",
            "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08",
            TtlvError::Truncated {
                offset: 0,
                needed: 16,
                available: 12,
            },
        ),
        (
            "padding missing",
            "42 00 20 | 07 | 00 00 00 03 | 41 42 43",
            TtlvError::Truncated {
                offset: 0,
                needed: 16,
                available: 11,
            },
        ),
        (
            "unknown type 0x0B",
            "42 00 20 | 0B | 00 00 00 04 | 00 00 00 08 00 00 00 00",
            TtlvError::UnknownType {
                offset: 0,
                tag: EXAMPLE,
                type_byte: 0x0B,
            },
        ),
        (
            "integer of 8 bytes",
            "42 00 20 | 02 | 00 00 00 08 | 00 00 00 00 00 00 00 08",
            TtlvError::BadLength {
                offset: 0,
                tag: EXAMPLE,
                item_type: ItemType::Integer,
                length: 8,
                expected: "4",
            },
        ),
        (
            "boolean of 4 bytes",
            "42 00 20 | 06 | 00 00 00 04 | 00 00 00 01 00 00 00 00",
            TtlvError::BadLength {
                offset: 0,
                tag: EXAMPLE,
                item_type: ItemType::Boolean,
                length: 4,
                expected: "8",
            },
        ),
        (
            "big integer of 4 bytes",
            "42 00 20 | 04 | 00 00 00 04 | 00 00 00 01 00 00 00 00",
            TtlvError::BadLength {
                offset: 0,
                tag: EXAMPLE,
                item_type: ItemType::BigInteger,
                length: 4,
                expected: "a non-zero multiple of 8",
            },
        ),
        (
            "structure length not a multiple of 8",
            "42 00 20 | 01 | 00 00 00 04 | 00 00 00 00 00 00 00 00",
            TtlvError::BadLength {
                offset: 0,
                tag: EXAMPLE,
                item_type: ItemType::Structure,
                length: 4,
                expected: "a multiple of 8",
            },
        ),
        (
            "non-zero padding after an integer",
            "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 01",
            TtlvError::NonZeroPadding {
                offset: 0,
                tag: EXAMPLE,
            },
        ),
        (
            "non-zero padding after text",
            "42 00 20 | 07 | 00 00 00 01 | 41 00 20 00 00 00 00 00",
            TtlvError::NonZeroPadding {
                offset: 0,
                tag: EXAMPLE,
            },
        ),
        (
            "boolean 2",
            "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 02",
            TtlvError::BadBoolean {
                offset: 0,
                tag: EXAMPLE,
            },
        ),
        (
            "text that is not UTF-8",
            "42 00 20 | 07 | 00 00 00 02 | C3 28 00 00 00 00 00 00",
            TtlvError::BadUtf8 {
                offset: 0,
                tag: EXAMPLE,
            },
        ),
        (
            "child overruns its structure",
            "42 00 20 | 01 | 00 00 00 08 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00",
            TtlvError::Truncated {
                offset: 8,
                needed: 16,
                available: 8,
            },
        ),
        (
            "bytes after the item",
            "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00 | 42",
            TtlvError::TrailingBytes {
                offset: 16,
                count: 1,
            },
        ),
    ];
    for (scenario, wire, expected) in cases {
        let error = Ttlv::decode(&hex(wire)).expect_err(scenario);
        assert_eq!(&error, expected, "{scenario}");
        assert!(!error.to_string().is_empty(), "{scenario}");
    }
}

#[test]
fn error_messages_name_the_tag_and_offset() {
    let error = Ttlv::decode(&hex(
        "42 00 94 | 07 | 00 00 00 02 | C3 28 00 00 00 00 00 00",
    ))
    .expect_err("invalid UTF-8");
    assert_eq!(
        error.to_string(),
        "TTLV Text String Unique Identifier at offset 0 is not valid UTF-8"
    );
}

/// `depth` Structures nested in one another.
fn nested(depth: usize) -> Ttlv {
    (1..depth).fold(Ttlv::structure(EXAMPLE, vec![]), |inner, _| {
        Ttlv::structure(EXAMPLE, vec![inner])
    })
}

#[test]
fn nesting_is_limited_to_max_depth() {
    let deepest = nested(MAX_DEPTH).encode().expect("encodes");
    assert_eq!(Ttlv::decode(&deepest).expect("decodes"), nested(MAX_DEPTH));
    let too_deep = nested(MAX_DEPTH + 1).encode().expect("encodes");
    assert_eq!(
        Ttlv::decode(&too_deep),
        Err(TtlvError::TooDeep {
            offset: MAX_DEPTH * HEADER_LEN
        })
    );
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let huge = vec![0u8; MAX_MESSAGE_LEN + 8];
    assert_eq!(
        Ttlv::decode(&huge),
        Err(TtlvError::TooLarge {
            length: MAX_MESSAGE_LEN + 8
        })
    );
}

#[test]
fn a_length_beyond_the_input_is_truncation_not_allocation() {
    let error = Ttlv::decode(&hex("42 00 20 | 08 | FF FF FF FF | 00")).expect_err("truncated");
    assert!(
        matches!(error, TtlvError::Truncated { available: 9, .. }),
        "{error:?}"
    );
}

#[test]
fn unencodable_trees_are_refused() {
    let wide_tag = Ttlv::integer(Tag(0x0100_0000), 1);
    assert!(matches!(
        wide_tag.encode(),
        Err(TtlvError::Unencodable { .. })
    ));
    let short_big_integer = Ttlv::big_integer(EXAMPLE, SecretBytes::new(vec![1, 2, 3]));
    assert!(matches!(
        short_big_integer.encode(),
        Err(TtlvError::Unencodable { .. })
    ));
    let nested_bad = Ttlv::structure(EXAMPLE, vec![short_big_integer]);
    assert!(nested_bad.encode().is_err());
}

#[test]
fn header_parse_splits_tag_type_and_length() {
    assert_eq!(
        Header::parse([0x42, 0x00, 0x7B, 0x01, 0x00, 0x00, 0x01, 0x28]),
        Header {
            tag: Tag::RESPONSE_MESSAGE,
            type_byte: 0x01,
            length: 0x128,
        }
    );
}
