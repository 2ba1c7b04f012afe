//! The KMIP TTLV decoder and the response readers: bytes a KMIP server (or anything that
//! answers on its port) sends. A decoded message must encode back to the same bytes (the
//! decoder is strict, so TTLV has one encoding), and every response reader must return a
//! result, not panic.
#![no_main]

use keysmith::kmip::messages::{
    Reply, parse_locate, parse_query, parse_response, parse_secret_data, parse_state,
    parse_unique_identifier,
};
use keysmith::kmip::tags::Operation;
use keysmith::kmip::ttlv::{HEADER_LEN, Header, Ttlv};
use libfuzzer_sys::fuzz_target;

/// The operations whose responses the client reads.
const OPERATIONS: [Operation; 8] = [
    Operation::Register,
    Operation::Locate,
    Operation::Get,
    Operation::GetAttributes,
    Operation::Activate,
    Operation::Revoke,
    Operation::Destroy,
    Operation::Query,
];

fuzz_target!(|data: &[u8]| {
    if let Some(header) = data.get(..HEADER_LEN).and_then(|h| h.try_into().ok()) {
        let _ = Header::parse(header);
    }
    let Ok(message) = Ttlv::decode(data) else {
        return;
    };
    round_trip(data, &message);
    for operation in OPERATIONS {
        if let Ok(Reply::Success(payload)) = parse_response(message.clone(), operation) {
            read_payload(payload);
        }
    }
});

/// Encoding a decoded item gives back the input, and decoding that gives the same item.
fn round_trip(data: &[u8], message: &Ttlv) {
    let encoded = message.encode().expect("a decoded item encodes");
    assert_eq!(
        encoded.as_slice(),
        data,
        "TTLV re-encoding differs from the input"
    );
    assert_eq!(message.encoded_len(), data.len());
    let again = Ttlv::decode(&encoded).expect("an encoded item decodes");
    assert_eq!(&again, message);
}

/// Every payload reader of the client.
fn read_payload(payload: Option<Ttlv>) {
    let _ = parse_unique_identifier(payload.as_ref());
    let _ = parse_locate(payload.as_ref());
    let _ = parse_query(payload.as_ref());
    let _ = parse_state(payload.as_ref());
    let _ = parse_secret_data(payload);
}
