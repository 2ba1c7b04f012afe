//! Helpers shared by the fuzz targets: the framing that turns fuzz bytes into named
//! entries (Secret data keys and their values), which the seed corpus is written in
//! (`fuzz/make-seeds.py` writes it too).

/// The frame of one entry: a one-byte name length, the name, a two-byte big-endian value
/// length, the value. A value cut short by the end of the input is what remains.
pub fn entries(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((&name_len, rest)) = data.split_first() {
        let (name, rest) = rest.split_at(usize::from(name_len).min(rest.len()));
        let (value_len, rest) = match rest {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => (0, &[][..]),
        };
        let (value, rest) = rest.split_at(value_len.min(rest.len()));
        out.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
        data = rest;
    }
    out
}

/// The text of `bytes`, with invalid UTF-8 replaced (the text parsers take `&str`).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::entries;

    #[test]
    fn frames_split_into_entries_and_a_short_value_is_what_remains() {
        let data = b"\x03abc\x00\x02xy\x01z\x00\x09short";
        assert_eq!(
            entries(data),
            [
                ("abc".to_owned(), b"xy".to_vec()),
                ("z".to_owned(), b"short".to_vec())
            ]
        );
    }
}
