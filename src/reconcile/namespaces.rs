//! Which namespaces the operator watches (`--namespaces`, api.md section 6): every one, or
//! only a list. With a list the operator makes no cluster-wide request at all, so that
//! namespaced Roles in those namespaces are all the permission it needs.

use std::fmt;

/// The namespaces the operator watches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WatchedNamespaces {
    /// Every namespace of the cluster (cluster-wide watches).
    #[default]
    All,
    /// Only these namespaces (sorted, without duplicates, never empty).
    Only(Vec<String>),
}

impl WatchedNamespaces {
    /// The namespaces of `list`; an empty list (or one of empty names only) means all.
    pub fn new<I, S>(list: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut names: Vec<String> = list
            .into_iter()
            .map(Into::into)
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            Self::All
        } else {
            Self::Only(names)
        }
    }

    /// Whether resources in `namespace` are watched.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.iter().any(|n| n == namespace),
        }
    }

    /// The listed namespaces; `None` for all.
    pub fn list(&self) -> Option<&[String]> {
        match self {
            Self::All => None,
            Self::Only(names) => Some(names),
        }
    }
}

impl fmt::Display for WatchedNamespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all namespaces"),
            Self::Only(names) => f.write_str(&names.join(",")),
        }
    }
}

/// Checks one namespace name given on the command line: a DNS label (RFC 1123: at most 63
/// lowercase letters, digits and '-', starting and ending with a letter or digit). The empty
/// string is accepted and ignored, so that `--namespaces=` (an empty Helm list) means all.
pub fn parse_namespace(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || is_dns_label(text) {
        return Ok(text.to_owned());
    }
    Err(format!(
        "{text:?} is not a namespace name (a DNS label: at most 63 lowercase letters, digits \
         and '-', starting and ending with a letter or digit)"
    ))
}

fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    let inner = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    bytes.len() <= 63 && bytes.iter().all(inner) && edge(bytes.first()) && edge(bytes.last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_means_all_namespaces() {
        assert_eq!(
            WatchedNamespaces::new(Vec::<String>::new()),
            WatchedNamespaces::All
        );
        assert_eq!(WatchedNamespaces::new([""]), WatchedNamespaces::All);
        assert!(WatchedNamespaces::All.contains("anything"));
        assert_eq!(WatchedNamespaces::All.list(), None);
    }

    #[test]
    fn a_list_is_sorted_deduplicated_and_exclusive() {
        let watched = WatchedNamespaces::new(["b", "a", "b", ""]);
        assert_eq!(watched.list(), Some(&["a".to_owned(), "b".to_owned()][..]));
        assert!(watched.contains("a") && watched.contains("b"));
        assert!(!watched.contains("c"));
        assert_eq!(watched.to_string(), "a,b");
    }

    #[test]
    fn namespace_names_must_be_dns_labels() {
        for good in ["a", "shop", "team-1", "0x", &"a".repeat(63)] {
            assert_eq!(parse_namespace(good).as_deref(), Ok(good), "{good}");
        }
        assert_eq!(parse_namespace("").as_deref(), Ok(""));
        for bad in ["Shop", "-a", "a-", "a.b", "a_b", "a/b", &"a".repeat(64)] {
            assert!(parse_namespace(bad).is_err(), "{bad} accepted");
        }
    }
}
