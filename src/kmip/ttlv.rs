//! The TTLV encoding of KMIP 1.x (specification section 9.1): every item is a 3-byte Tag,
//! a 1-byte Type, a 4-byte big-endian Length and the Value, padded with zero bytes to a
//! multiple of eight. A Structure's value is the concatenation of its items.
//!
//! Decoding is strict: fixed-size types must have their exact length, padding must be zero,
//! a Structure's items must fill it exactly, text must be UTF-8, and a depth and size limit
//! stop hostile input. Byte Strings (key material) and Big Integers are held in
//! [`SecretBytes`], so a decoded tree can be logged with `{:?}` without leaking them, and
//! [`Ttlv::encode`] returns a buffer that is zeroed when dropped.

use std::fmt;

use zeroize::Zeroizing;

use super::tags::Tag;
use crate::material::SecretBytes;

/// The largest TTLV message accepted (PyKMIP's own default limit).
pub const MAX_MESSAGE_LEN: usize = 1 << 20;

/// The deepest nesting of Structures accepted (KMIP 1.x messages need fewer than ten).
pub const MAX_DEPTH: usize = 24;

/// Bytes of Tag, Type and Length.
pub const HEADER_LEN: usize = 8;

/// The largest tag that fits in three bytes.
const MAX_TAG: u32 = 0x00FF_FFFF;

/// The Type byte of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemType {
    /// `0x01`: a sequence of items.
    Structure,
    /// `0x02`: a signed 32-bit integer.
    Integer,
    /// `0x03`: a signed 64-bit integer.
    LongInteger,
    /// `0x04`: a two's complement big-endian integer, a multiple of eight bytes long.
    BigInteger,
    /// `0x05`: an unsigned 32-bit enumeration value.
    Enumeration,
    /// `0x06`: a Boolean, encoded in eight bytes.
    Boolean,
    /// `0x07`: UTF-8 text.
    TextString,
    /// `0x08`: bytes.
    ByteString,
    /// `0x09`: seconds since the Unix epoch, signed 64-bit.
    DateTime,
    /// `0x0A`: a duration in seconds, unsigned 32-bit.
    Interval,
}

impl ItemType {
    /// The Type byte.
    pub const fn byte(self) -> u8 {
        match self {
            Self::Structure => 0x01,
            Self::Integer => 0x02,
            Self::LongInteger => 0x03,
            Self::BigInteger => 0x04,
            Self::Enumeration => 0x05,
            Self::Boolean => 0x06,
            Self::TextString => 0x07,
            Self::ByteString => 0x08,
            Self::DateTime => 0x09,
            Self::Interval => 0x0A,
        }
    }

    /// The type of a Type byte, if it is one KMIP 1.x defines.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x01 => Self::Structure,
            0x02 => Self::Integer,
            0x03 => Self::LongInteger,
            0x04 => Self::BigInteger,
            0x05 => Self::Enumeration,
            0x06 => Self::Boolean,
            0x07 => Self::TextString,
            0x08 => Self::ByteString,
            0x09 => Self::DateTime,
            0x0A => Self::Interval,
            _ => return None,
        })
    }

    /// The Length a value of this type must have, for the fixed-size types.
    const fn fixed_len(self) -> Option<usize> {
        match self {
            Self::Integer | Self::Enumeration | Self::Interval => Some(4),
            Self::LongInteger | Self::Boolean | Self::DateTime => Some(8),
            Self::Structure | Self::BigInteger | Self::TextString | Self::ByteString => None,
        }
    }
}

impl fmt::Display for ItemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Structure => "Structure",
            Self::Integer => "Integer",
            Self::LongInteger => "Long Integer",
            Self::BigInteger => "Big Integer",
            Self::Enumeration => "Enumeration",
            Self::Boolean => "Boolean",
            Self::TextString => "Text String",
            Self::ByteString => "Byte String",
            Self::DateTime => "Date-Time",
            Self::Interval => "Interval",
        })
    }
}

/// The value of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// The items of a Structure, in order.
    Structure(Vec<Ttlv>),
    /// An Integer.
    Integer(i32),
    /// A Long Integer.
    LongInteger(i64),
    /// A Big Integer: two's complement, big-endian, a non-zero multiple of eight bytes.
    BigInteger(SecretBytes),
    /// An Enumeration value.
    Enumeration(u32),
    /// A Boolean.
    Boolean(bool),
    /// A Text String.
    TextString(String),
    /// A Byte String (key material when it is a Key Material item).
    ByteString(SecretBytes),
    /// A Date-Time in seconds since the Unix epoch.
    DateTime(i64),
    /// An Interval in seconds.
    Interval(u32),
}

impl Value {
    /// The Type of this value.
    pub fn item_type(&self) -> ItemType {
        match self {
            Self::Structure(_) => ItemType::Structure,
            Self::Integer(_) => ItemType::Integer,
            Self::LongInteger(_) => ItemType::LongInteger,
            Self::BigInteger(_) => ItemType::BigInteger,
            Self::Enumeration(_) => ItemType::Enumeration,
            Self::Boolean(_) => ItemType::Boolean,
            Self::TextString(_) => ItemType::TextString,
            Self::ByteString(_) => ItemType::ByteString,
            Self::DateTime(_) => ItemType::DateTime,
            Self::Interval(_) => ItemType::Interval,
        }
    }
}

/// One TTLV item: a tag and its value (a Structure holds further items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttlv {
    /// The tag.
    pub tag: Tag,
    /// The value.
    pub value: Value,
}

/// Why bytes are not valid TTLV, or a tree cannot be encoded. Messages give the offset and
/// the tag, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlvError {
    /// The input ends inside an item.
    #[error(
        "TTLV item at offset {offset} is truncated: it needs {needed} bytes, {available} remain"
    )]
    Truncated {
        /// Where the item starts.
        offset: usize,
        /// Bytes the item needs (header, value and padding).
        needed: usize,
        /// Bytes left in the input (or in the enclosing Structure).
        available: usize,
    },
    /// The Type byte is not one KMIP 1.x defines.
    #[error("TTLV item {tag} at offset {offset} has the unknown type byte {type_byte:#04x}")]
    UnknownType {
        /// Where the item starts.
        offset: usize,
        /// Its tag.
        tag: Tag,
        /// The Type byte.
        type_byte: u8,
    },
    /// The Length does not fit the Type.
    #[error("TTLV {item_type} {tag} at offset {offset} has length {length}; it must be {expected}")]
    BadLength {
        /// Where the item starts.
        offset: usize,
        /// Its tag.
        tag: Tag,
        /// Its type.
        item_type: ItemType,
        /// The Length found.
        length: usize,
        /// What the Length must be.
        expected: &'static str,
    },
    /// A padding byte is not zero.
    #[error("TTLV item {tag} at offset {offset} has non-zero padding")]
    NonZeroPadding {
        /// Where the item starts.
        offset: usize,
        /// Its tag.
        tag: Tag,
    },
    /// A Boolean is neither 0 nor 1.
    #[error("TTLV Boolean {tag} at offset {offset} is neither 0 nor 1")]
    BadBoolean {
        /// Where the item starts.
        offset: usize,
        /// Its tag.
        tag: Tag,
    },
    /// A Text String is not UTF-8.
    #[error("TTLV Text String {tag} at offset {offset} is not valid UTF-8")]
    BadUtf8 {
        /// Where the item starts.
        offset: usize,
        /// Its tag.
        tag: Tag,
    },
    /// Structures are nested deeper than [`MAX_DEPTH`].
    #[error("TTLV Structures nested deeper than {MAX_DEPTH} levels at offset {offset}")]
    TooDeep {
        /// Where the too deep Structure starts.
        offset: usize,
    },
    /// The input is larger than [`MAX_MESSAGE_LEN`].
    #[error("TTLV message of {length} bytes exceeds the limit of {MAX_MESSAGE_LEN} bytes")]
    TooLarge {
        /// The size of the input.
        length: usize,
    },
    /// Bytes follow the item.
    #[error("{count} unexpected bytes follow the TTLV item at offset {offset}")]
    TrailingBytes {
        /// Where the unexpected bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// A tree cannot be encoded: a tag above `0xFFFFFF`, a Big Integer that is not a
    /// non-zero multiple of eight bytes, or a value longer than a Length can say.
    #[error("TTLV item {tag} cannot be encoded: {problem}")]
    Unencodable {
        /// The item's tag.
        tag: Tag,
        /// What is wrong.
        problem: &'static str,
    },
}

/// `len` rounded up to a multiple of eight.
const fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

impl Ttlv {
    /// A Structure of `items`.
    pub fn structure(tag: Tag, items: Vec<Ttlv>) -> Self {
        Self {
            tag,
            value: Value::Structure(items),
        }
    }

    /// An Integer.
    pub fn integer(tag: Tag, value: i32) -> Self {
        Self {
            tag,
            value: Value::Integer(value),
        }
    }

    /// A Long Integer.
    pub fn long_integer(tag: Tag, value: i64) -> Self {
        Self {
            tag,
            value: Value::LongInteger(value),
        }
    }

    /// A Big Integer from its two's complement big-endian bytes (a non-zero multiple of
    /// eight bytes, sign-extended).
    pub fn big_integer(tag: Tag, bytes: SecretBytes) -> Self {
        Self {
            tag,
            value: Value::BigInteger(bytes),
        }
    }

    /// An Enumeration.
    pub fn enumeration(tag: Tag, value: u32) -> Self {
        Self {
            tag,
            value: Value::Enumeration(value),
        }
    }

    /// A Boolean.
    pub fn boolean(tag: Tag, value: bool) -> Self {
        Self {
            tag,
            value: Value::Boolean(value),
        }
    }

    /// A Text String.
    pub fn text(tag: Tag, value: impl Into<String>) -> Self {
        Self {
            tag,
            value: Value::TextString(value.into()),
        }
    }

    /// A Byte String.
    pub fn bytes(tag: Tag, value: SecretBytes) -> Self {
        Self {
            tag,
            value: Value::ByteString(value),
        }
    }

    /// A Date-Time (seconds since the Unix epoch).
    pub fn date_time(tag: Tag, seconds: i64) -> Self {
        Self {
            tag,
            value: Value::DateTime(seconds),
        }
    }

    /// An Interval (seconds).
    pub fn interval(tag: Tag, seconds: u32) -> Self {
        Self {
            tag,
            value: Value::Interval(seconds),
        }
    }

    /// The items of a Structure (none for any other type).
    pub fn items(&self) -> &[Ttlv] {
        match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        }
    }

    /// The first item of this Structure with `tag`.
    pub fn find(&self, tag: Tag) -> Option<&Ttlv> {
        self.items().iter().find(|item| item.tag == tag)
    }

    /// Every item of this Structure with `tag`, in order.
    pub fn find_all(&self, tag: Tag) -> impl Iterator<Item = &Ttlv> {
        self.items().iter().filter(move |item| item.tag == tag)
    }

    /// The value of an Integer.
    pub fn as_integer(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a Long Integer.
    pub fn as_long_integer(&self) -> Option<i64> {
        match self.value {
            Value::LongInteger(v) => Some(v),
            _ => None,
        }
    }

    /// The value of an Enumeration.
    pub fn as_enumeration(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a Boolean.
    pub fn as_boolean(&self) -> Option<bool> {
        match self.value {
            Value::Boolean(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a Text String.
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a Byte String.
    pub fn as_bytes(&self) -> Option<&SecretBytes> {
        match &self.value {
            Value::ByteString(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a Date-Time.
    pub fn as_date_time(&self) -> Option<i64> {
        match self.value {
            Value::DateTime(v) => Some(v),
            _ => None,
        }
    }

    /// The value of an Interval.
    pub fn as_interval(&self) -> Option<u32> {
        match self.value {
            Value::Interval(v) => Some(v),
            _ => None,
        }
    }

    /// The Length field of this item: the size of the value without padding.
    fn value_len(&self) -> usize {
        match &self.value {
            Value::Structure(items) => items.iter().map(Ttlv::encoded_len).sum(),
            Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
            Value::LongInteger(_) | Value::Boolean(_) | Value::DateTime(_) => 8,
            Value::BigInteger(bytes) | Value::ByteString(bytes) => bytes.len(),
            Value::TextString(text) => text.len(),
        }
    }

    /// The size of this item on the wire: header, value and padding.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + padded(self.value_len())
    }

    /// Encodes this item. The buffer is allocated once at its final size and zeroed when
    /// dropped, so no copy of key material is left behind in freed memory.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, TtlvError> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.encoded_len()));
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends this item to `out`.
    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), TtlvError> {
        let unencodable = |problem| TtlvError::Unencodable {
            tag: self.tag,
            problem,
        };
        if self.tag.0 > MAX_TAG {
            return Err(unencodable("the tag does not fit in three bytes"));
        }
        let len = self.value_len();
        let length = u32::try_from(len).map_err(|_| unencodable("the value is too long"))?;
        out.extend_from_slice(&self.tag.0.to_be_bytes()[1..]);
        out.push(self.value.item_type().byte());
        out.extend_from_slice(&length.to_be_bytes());
        self.encode_value(out)?;
        out.resize(out.len() + padded(len) - len, 0);
        Ok(())
    }

    /// Appends the value (without padding) to `out`.
    fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), TtlvError> {
        match &self.value {
            Value::Structure(items) => {
                for item in items {
                    item.encode_into(out)?;
                }
            }
            Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::LongInteger(v) | Value::DateTime(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::BigInteger(bytes) => {
                if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
                    return Err(TtlvError::Unencodable {
                        tag: self.tag,
                        problem: "a Big Integer must be a non-zero multiple of eight bytes",
                    });
                }
                out.extend_from_slice(bytes.expose());
            }
            Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
            Value::TextString(text) => out.extend_from_slice(text.as_bytes()),
            Value::ByteString(bytes) => out.extend_from_slice(bytes.expose()),
        }
        Ok(())
    }

    /// Decodes exactly one item that spans all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, TtlvError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(TtlvError::TooLarge {
                length: bytes.len(),
            });
        }
        let (item, used) = decode_item(bytes, 0, 0)?;
        if used != bytes.len() {
            return Err(TtlvError::TrailingBytes {
                offset: used,
                count: bytes.len() - used,
            });
        }
        Ok(item)
    }
}

/// The header of an item: tag, type byte and Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The tag.
    pub tag: Tag,
    /// The Type byte (not necessarily a known type).
    pub type_byte: u8,
    /// The Length.
    pub length: u32,
}

impl Header {
    /// Splits the eight header bytes.
    pub fn parse(bytes: [u8; HEADER_LEN]) -> Self {
        let [t0, t1, t2, type_byte, l0, l1, l2, l3] = bytes;
        Self {
            tag: Tag(u32::from_be_bytes([0, t0, t1, t2])),
            type_byte,
            length: u32::from_be_bytes([l0, l1, l2, l3]),
        }
    }
}

/// Decodes the item at the start of `input`, which sits at `offset` in the message and at
/// `depth` levels of Structures; returns it and the bytes it occupies.
fn decode_item(input: &[u8], offset: usize, depth: usize) -> Result<(Ttlv, usize), TtlvError> {
    let truncated = |needed| TtlvError::Truncated {
        offset,
        needed,
        available: input.len(),
    };
    let header_bytes: [u8; HEADER_LEN] = input
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| truncated(HEADER_LEN))?;
    let header = Header::parse(header_bytes);
    let tag = header.tag;
    let item_type = ItemType::from_byte(header.type_byte).ok_or(TtlvError::UnknownType {
        offset,
        tag,
        type_byte: header.type_byte,
    })?;
    // A u32 Length always fits in usize on the 32- and 64-bit targets the operator runs on.
    let len = header.length as usize;
    check_length(item_type, len, offset, tag)?;
    let total = len
        .checked_next_multiple_of(8)
        .and_then(|padded| padded.checked_add(HEADER_LEN))
        .ok_or_else(|| truncated(usize::MAX))?;
    let body = input
        .get(HEADER_LEN..total)
        .ok_or_else(|| truncated(total))?;
    let (value_bytes, padding) = body.split_at(len);
    if padding.iter().any(|&b| b != 0) {
        return Err(TtlvError::NonZeroPadding { offset, tag });
    }
    let value = decode_value(item_type, value_bytes, offset, tag, depth)?;
    Ok((Ttlv { tag, value }, total))
}

/// Checks that a Length fits its Type.
fn check_length(item_type: ItemType, len: usize, offset: usize, tag: Tag) -> Result<(), TtlvError> {
    let expected = match item_type.fixed_len() {
        Some(4) if len != 4 => "4",
        Some(8) if len != 8 => "8",
        None if item_type == ItemType::Structure && !len.is_multiple_of(8) => "a multiple of 8",
        None if item_type == ItemType::BigInteger && (len == 0 || !len.is_multiple_of(8)) => {
            "a non-zero multiple of 8"
        }
        _ => return Ok(()),
    };
    Err(TtlvError::BadLength {
        offset,
        tag,
        item_type,
        length: len,
        expected,
    })
}

/// Decodes a value whose Length has been checked against its Type.
fn decode_value(
    item_type: ItemType,
    bytes: &[u8],
    offset: usize,
    tag: Tag,
    depth: usize,
) -> Result<Value, TtlvError> {
    Ok(match item_type {
        ItemType::Structure => Value::Structure(decode_items(bytes, offset + HEADER_LEN, depth)?),
        ItemType::Integer => Value::Integer(i32::from_be_bytes(fixed(bytes))),
        ItemType::LongInteger => Value::LongInteger(i64::from_be_bytes(fixed(bytes))),
        ItemType::BigInteger => Value::BigInteger(SecretBytes::new(bytes.to_vec())),
        ItemType::Enumeration => Value::Enumeration(u32::from_be_bytes(fixed(bytes))),
        ItemType::Boolean => match u64::from_be_bytes(fixed(bytes)) {
            0 => Value::Boolean(false),
            1 => Value::Boolean(true),
            _ => return Err(TtlvError::BadBoolean { offset, tag }),
        },
        ItemType::TextString => match std::str::from_utf8(bytes) {
            Ok(text) => Value::TextString(text.to_owned()),
            Err(_) => return Err(TtlvError::BadUtf8 { offset, tag }),
        },
        ItemType::ByteString => Value::ByteString(SecretBytes::new(bytes.to_vec())),
        ItemType::DateTime => Value::DateTime(i64::from_be_bytes(fixed(bytes))),
        ItemType::Interval => Value::Interval(u32::from_be_bytes(fixed(bytes))),
    })
}

/// The first `N` bytes of a value whose length has been checked (zeros if it is shorter,
/// which `check_length` rules out).
fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    let n = N.min(bytes.len());
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// Decodes the items of a Structure whose value is `bytes`, at `offset` in the message.
fn decode_items(bytes: &[u8], offset: usize, depth: usize) -> Result<Vec<Ttlv>, TtlvError> {
    if depth >= MAX_DEPTH {
        return Err(TtlvError::TooDeep {
            offset: offset - HEADER_LEN,
        });
    }
    let mut items = Vec::new();
    let mut pos = 0;
    while let Some(rest) = bytes.get(pos..).filter(|rest| !rest.is_empty()) {
        let (item, used) = decode_item(rest, offset + pos, depth + 1)?;
        items.push(item);
        pos += used;
    }
    Ok(items)
}

#[cfg(test)]
mod tests;
