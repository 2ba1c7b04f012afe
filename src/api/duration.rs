//! Durations as Kubernetes writes them (`90m`, `2160h`, `1h30m`), read without panicking.
//!
//! kube's `Duration` parser panics when a value overflows (`876111111111111100h`). The API
//! server refuses such a value at admission (CEL's `duration()` holds at most 2^63-1 ns), but
//! `keysmith generate` and the command-line flags read text that no API server has checked,
//! so every duration keysmith reads goes through [`parse`] first.

use kube::core::Duration;
use serde::{Deserialize, Deserializer, de::Error as _};

/// The longest duration accepted, in nanoseconds: what Go's `time.ParseDuration`, and so CEL
/// at admission, can hold (2^63-1 ns, 2562047h and a bit, about 292 years).
const LONGEST_NANOS: f64 = i64::MAX as f64;

/// Parses a duration such as `2160h` or `1h30m`, refusing one longer than about 292 years.
pub fn parse(text: &str) -> Result<Duration, String> {
    if nanos(text)? > LONGEST_NANOS {
        return Err(format!(
            "duration {text:?} is too long: at most 2562047h (about 292 years)"
        ));
    }
    text.parse()
        .map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// The length of `text` in nanoseconds, approximately (an optional sign, then numbers with
/// units: ns, us, µs, ms, s, m, h).
fn nanos(text: &str) -> Result<f64, String> {
    let invalid = || format!("invalid duration {text:?}");
    let mut rest = text.strip_prefix(['+', '-']).unwrap_or(text);
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let is_number = |c: char| c.is_ascii_digit() || c == '.';
        let number_end = rest.find(|c| !is_number(c)).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let unit_end = after.find(is_number).unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit_nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        total += value * unit_nanos;
        rest = next;
    }
    Ok(total)
}

/// Serde `deserialize_with` for a duration field.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(D::Error::custom)
}

/// Serde `deserialize_with` for an optional duration field.
pub fn deserialize_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| parse(&text))
        .transpose()
        .map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn kubernetes_durations_parse_as_kube_parses_them() {
        for text in [
            "2160h", "1h30m", "90m", "1.5h", "500ms", "10us", "1µs", "2562047h",
        ] {
            let expected: kube::core::Duration = text.parse().expect("kube parses it");
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn a_duration_beyond_what_go_holds_is_refused_without_panicking() {
        for text in ["876111111111111100h", "2562048h", "1e400h"] {
            let error = parse(text).expect_err(text);
            assert!(error.contains(text), "{error}");
        }
        assert!(parse("2562048h").is_err_and(|e| e.contains("too long")));
    }

    #[test]
    fn malformed_durations_are_errors() {
        for text in ["", "h", "1", "1d", "1..2h", "-"] {
            assert!(parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn a_spec_with_an_overflowing_duration_fails_to_deserialize() {
        let yaml = "commonName: a\nduration: 876111111111111100h\n";
        let spec: Result<crate::api::certificate_key_pair::CertificateKeyPairSpec, _> =
            serde_norway::from_str(yaml);
        let error = spec.expect_err("deserialized").to_string();
        assert!(error.contains("too long"), "{error}");
    }
}
