//! Skipping the read of a target Secret that almost certainly does not exist yet.
//!
//! A resource without a status has never been reconciled, so its Secret is almost never
//! there: reading it first is a round trip that only answers "not found", and on first
//! issuance it is one of three sequential requests. When making the material costs less
//! than that round trip (no RSA prime search, no bcrypt) and the resource does not ask to
//! adopt an existing Secret, the reconcile guesses the Secret absent and creates it
//! straight away (`secret::read_target` decides). If one is there after all (a
//! foreign one, another resource's, an operator killed between the Secret and the status),
//! the create fails with AlreadyExists, the guess is refuted here, and the reconcile runs
//! again at once, reading the Secret: nothing is overwritten, the material made for the
//! guess is dropped unwritten. A refuted guess is not made again while the resource still
//! has no status (its status write may be what keeps failing).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// The resources (by uid) whose target Secret was found to exist when created while they
/// had no status. The absence guess is not made again for such a resource until it shows a
/// status: a status write that keeps failing would otherwise cost a generation and an
/// AlreadyExists on every retry.
#[derive(Debug, Default)]
pub struct AbsentGuesses {
    refuted: Mutex<HashSet<String>>,
}

impl AbsentGuesses {
    /// Whether the target Secret of the resource `uid`, which has no status, may be taken
    /// as absent without reading it.
    pub fn may_guess(&self, uid: &str) -> bool {
        !self.lock().contains(uid)
    }

    /// Notes that the target Secret of the resource `uid` was there when its absence was
    /// assumed.
    pub fn refute(&self, uid: &str) {
        self.lock().insert(uid.to_owned());
    }

    /// Forgets the resource `uid`: it is no longer new (it shows a status, or adopts its
    /// Secret), so no guess is made for it any more.
    pub fn settled(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// Keeps only the resources whose uid is `live` (a deleted resource is never
    /// reconciled again, so nothing else would forget it).
    pub fn retain(&self, mut live: impl FnMut(&str) -> bool) {
        self.lock().retain(|uid| live(uid));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.refuted.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::AbsentGuesses;

    #[test]
    fn a_refuted_guess_is_not_made_again_until_the_resource_settles() {
        let guesses = AbsentGuesses::default();
        assert!(guesses.may_guess("uid-a"));
        guesses.refute("uid-a");
        assert!(!guesses.may_guess("uid-a"));
        assert!(guesses.may_guess("uid-b"));
        guesses.settled("uid-a");
        assert!(guesses.may_guess("uid-a"));
    }

    #[test]
    fn deleted_resources_are_forgotten() {
        let guesses = AbsentGuesses::default();
        guesses.refute("gone");
        guesses.refute("kept");
        guesses.retain(|uid| uid == "kept");
        assert!(guesses.may_guess("gone"));
        assert!(!guesses.may_guess("kept"));
    }
}
