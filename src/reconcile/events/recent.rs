//! The Events published lately, remembered just enough to count a repeat instead of
//! creating a new Event each time (as `kubectl describe` shows: "x5 over 3m").
//!
//! Pure: the caller passes the time. Each entry keeps the regarding object's uid, the
//! Event's name and its count, nothing of the Event itself. Entries expire `ttl` after
//! their last use without walking the whole map: a queue in order of use says which to
//! look at, and the map stays under `capacity` entries (the least recently used goes).

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

/// What identifies a repeat: the same object, type, reason and note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventKey(u64);

impl EventKey {
    /// The key of an Event of `type_` with `reason` and `note` on the object with `uid`.
    pub fn new(uid: &str, type_: &str, reason: &str, note: &str) -> Self {
        let mut hasher = DefaultHasher::new();
        (uid, type_, reason, note).hash(&mut hasher);
        Self(hasher.finish())
    }
}

/// What to do with an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    /// Create a new Event with this name.
    Create {
        /// The new Event's name.
        name: String,
    },
    /// Count a repeat on the existing Event `name`: it has now been seen `count` times.
    Repeat {
        /// The existing Event's name.
        name: String,
        /// How many times it has been seen, this one included (at least 2).
        count: i32,
    },
}

/// One remembered Event.
#[derive(Debug)]
struct Recent {
    uid: Box<str>,
    name: Box<str>,
    count: i32,
    last_used: Instant,
}

/// The Events published in the last `ttl`, at most `capacity` of them.
#[derive(Debug)]
pub struct RecentEvents {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<EventKey, Recent>,
    /// Keys in order of use; a key used again appears again, and its older places are
    /// skipped when they come up (the entry's `last_used` is newer).
    order: VecDeque<(Instant, EventKey)>,
}

impl RecentEvents {
    /// Remembers Events for `ttl` after their last use, at most `capacity` at a time.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// How many Events are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no Event is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Decides how to publish the Event `key` on the object `uid` at `now`, and remembers
    /// it: a repeat of a remembered Event is counted on it, anything else is created under
    /// `new_name`.
    pub fn publish(
        &mut self,
        now: Instant,
        key: EventKey,
        uid: &str,
        new_name: impl FnOnce() -> String,
    ) -> Publication {
        self.expire(now);
        let publication = match self.entries.get_mut(&key) {
            Some(recent) if *recent.uid == *uid => {
                recent.count = recent.count.saturating_add(1);
                recent.last_used = now;
                Publication::Repeat {
                    name: recent.name.to_string(),
                    count: recent.count,
                }
            }
            _ => {
                let name = new_name();
                self.entries.insert(
                    key,
                    Recent {
                        uid: uid.into(),
                        name: name.as_str().into(),
                        count: 1,
                        last_used: now,
                    },
                );
                Publication::Create { name }
            }
        };
        self.order.push_back((now, key));
        self.evict_over_capacity();
        self.compact();
        publication
    }

    /// Forgets the Event `key` if it is still the one named `name` (its creation failed, or
    /// it no longer exists on the API server).
    pub fn forget(&mut self, key: EventKey, name: &str) {
        if self.entries.get(&key).is_some_and(|r| *r.name == *name) {
            self.entries.remove(&key);
        }
    }

    /// Drops the entries unused for `ttl`, looking only at the oldest places in the queue.
    fn expire(&mut self, now: Instant) {
        while let Some(&(used, key)) = self.order.front() {
            if now.saturating_duration_since(used) < self.ttl {
                break;
            }
            self.order.pop_front();
            self.remove_if_last_used(key, used);
        }
    }

    /// Drops the least recently used entries while there are more than `capacity`.
    fn evict_over_capacity(&mut self) {
        while self.entries.len() > self.capacity {
            let Some((used, key)) = self.order.pop_front() else {
                break;
            };
            self.remove_if_last_used(key, used);
        }
    }

    /// Drops the queue's places of reused keys once they outnumber the entries (so the
    /// queue stays within a constant factor of the map, and the walk is amortised).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(used, key)| entries.get(key).is_some_and(|r| r.last_used == *used));
        }
    }

    /// Removes `key` if `used` is its last use (an older place of a reused key is skipped).
    fn remove_if_last_used(&mut self, key: EventKey, used: Instant) {
        if self.entries.get(&key).is_some_and(|r| r.last_used <= used) {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests;
