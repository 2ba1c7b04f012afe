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
//! guess is dropped unwritten.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// The Secrets (`namespace/name`) whose absence was guessed wrongly and not read since.
#[derive(Debug, Default)]
pub struct AbsentGuesses {
    refuted: Mutex<HashSet<String>>,
}

impl AbsentGuesses {
    /// Whether the Secret `qualified` of a resource without a status may be taken as
    /// absent without reading it.
    pub fn may_guess(&self, qualified: &str) -> bool {
        !self.lock().contains(qualified)
    }

    /// Notes that the Secret `qualified` was there when its absence was assumed.
    pub fn refute(&self, qualified: &str) {
        self.lock().insert(qualified.to_owned());
    }

    /// Notes that the Secret `qualified` was read: the next reconcile decides afresh.
    pub fn read(&self, qualified: &str) {
        self.lock().remove(qualified);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.refuted.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::AbsentGuesses;

    #[test]
    fn a_refuted_guess_is_not_made_again_until_the_secret_is_read() {
        let guesses = AbsentGuesses::default();
        assert!(guesses.may_guess("a/tls"));
        guesses.refute("a/tls");
        assert!(!guesses.may_guess("a/tls"));
        assert!(guesses.may_guess("b/tls"));
        guesses.read("a/tls");
        assert!(guesses.may_guess("a/tls"));
    }
}
