use std::time::{Duration, Instant};

use super::{EventKey, Publication, RecentEvents};

const TTL: Duration = Duration::from_secs(360);

fn key(uid: &str, reason: &str) -> EventKey {
    EventKey::new(uid, "Normal", reason, "note")
}

fn named(name: &str) -> impl FnOnce() -> String + '_ {
    move || name.to_owned()
}

fn create(name: &str) -> Publication {
    Publication::Create {
        name: name.to_owned(),
    }
}

fn repeat(name: &str, count: i32) -> Publication {
    Publication::Repeat {
        name: name.to_owned(),
        count,
    }
}

#[test]
fn a_repeat_is_counted_on_the_first_event() {
    let mut recent = RecentEvents::new(TTL, 100);
    let t0 = Instant::now();
    let k = key("uid-a", "Issued");
    assert_eq!(recent.publish(t0, k, "uid-a", named("a.1")), create("a.1"));
    assert_eq!(
        recent.publish(t0, k, "uid-a", named("a.2")),
        repeat("a.1", 2)
    );
    assert_eq!(
        recent.publish(t0 + Duration::from_secs(10), k, "uid-a", named("a.3")),
        repeat("a.1", 3)
    );
}

#[test]
fn another_object_reason_type_or_note_is_another_event() {
    let mut recent = RecentEvents::new(TTL, 100);
    let t0 = Instant::now();
    let variants = [
        ("uid-a", EventKey::new("uid-a", "Normal", "Issued", "n")),
        ("uid-b", EventKey::new("uid-b", "Normal", "Issued", "n")),
        ("uid-a", EventKey::new("uid-a", "Warning", "Issued", "n")),
        ("uid-a", EventKey::new("uid-a", "Normal", "Renewed", "n")),
        ("uid-a", EventKey::new("uid-a", "Normal", "Issued", "other")),
    ];
    for (i, (uid, k)) in variants.into_iter().enumerate() {
        let name = format!("e.{i}");
        assert_eq!(recent.publish(t0, k, uid, named(&name)), create(&name));
    }
    assert_eq!(recent.len(), 5);
}

#[test]
fn an_entry_expires_ttl_after_its_last_use() {
    let mut recent = RecentEvents::new(TTL, 100);
    let t0 = Instant::now();
    let k = key("uid-a", "Failed");
    recent.publish(t0, k, "uid-a", named("a.1"));
    let later = t0 + TTL - Duration::from_secs(1);
    assert_eq!(
        recent.publish(later, k, "uid-a", named("a.2")),
        repeat("a.1", 2)
    );
    // TTL after the first use but not after the last: still a repeat.
    assert_eq!(
        recent.publish(t0 + TTL + Duration::from_secs(1), k, "uid-a", named("a.3")),
        repeat("a.1", 3)
    );
    let quiet = t0 + TTL + Duration::from_secs(1) + TTL;
    assert_eq!(
        recent.publish(quiet, k, "uid-a", named("a.4")),
        create("a.4")
    );
}

#[test]
fn expiry_drops_unused_entries_of_other_objects() {
    let mut recent = RecentEvents::new(TTL, 100);
    let t0 = Instant::now();
    for i in 0..10 {
        let uid = format!("uid-{i}");
        recent.publish(t0, key(&uid, "Issued"), &uid, || format!("e.{i}"));
    }
    assert_eq!(recent.len(), 10);
    recent.publish(t0 + TTL, key("uid-x", "Issued"), "uid-x", named("x.1"));
    assert_eq!(recent.len(), 1);
}

#[test]
fn the_least_recently_used_goes_beyond_capacity() {
    let mut recent = RecentEvents::new(TTL, 3);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    recent.publish(at(0), key("a", "R"), "a", named("a.1"));
    recent.publish(at(1), key("b", "R"), "b", named("b.1"));
    recent.publish(at(2), key("c", "R"), "c", named("c.1"));
    // "a" used again: "b" is now the least recently used.
    assert_eq!(
        recent.publish(at(3), key("a", "R"), "a", named("a.2")),
        repeat("a.1", 2)
    );
    recent.publish(at(4), key("d", "R"), "d", named("d.1"));
    assert_eq!(recent.len(), 3);
    assert_eq!(
        recent.publish(at(5), key("b", "R"), "b", named("b.2")),
        create("b.2")
    );
    assert_eq!(
        recent.publish(at(6), key("a", "R"), "a", named("a.3")),
        repeat("a.1", 3)
    );
}

#[test]
fn the_queue_stays_proportional_to_the_entries() {
    let mut recent = RecentEvents::new(TTL, 100);
    let t0 = Instant::now();
    let k = key("uid-a", "Failed");
    for i in 0..10_000u64 {
        recent.publish(t0 + Duration::from_millis(i), k, "uid-a", || {
            format!("a.{i}")
        });
    }
    assert_eq!(recent.len(), 1);
    assert!(recent.order.len() <= 2 + 64 + 1, "{}", recent.order.len());
    assert_eq!(
        recent.publish(t0 + Duration::from_secs(11), k, "uid-a", named("x")),
        repeat("a.0", 10_001)
    );
}

#[test]
fn forget_drops_only_the_named_event() {
    let mut recent = RecentEvents::new(TTL, 100);
    let t0 = Instant::now();
    let k = key("uid-a", "Issued");
    recent.publish(t0, k, "uid-a", named("a.1"));
    recent.forget(k, "a.other");
    assert_eq!(
        recent.publish(t0, k, "uid-a", named("a.2")),
        repeat("a.1", 2)
    );
    recent.forget(k, "a.1");
    assert!(recent.is_empty());
    assert_eq!(recent.publish(t0, k, "uid-a", named("a.3")), create("a.3"));
}

#[test]
fn a_key_collision_with_another_object_creates_a_new_event() {
    let mut recent = RecentEvents::new(TTL, 100);
    let t0 = Instant::now();
    let k = key("uid-a", "Issued");
    recent.publish(t0, k, "uid-a", named("a.1"));
    assert_eq!(recent.publish(t0, k, "uid-b", named("b.1")), create("b.1"));
    assert_eq!(
        recent.publish(t0, k, "uid-b", named("b.2")),
        repeat("b.1", 2)
    );
}
