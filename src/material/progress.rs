//! Progress and cancellation of a slow generation, shared between the thread doing the work
//! and whoever watches it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Steps done so far (e.g. prime candidates tested) and whether the work should stop.
#[derive(Debug, Default)]
pub struct Progress {
    cancelled: AtomicBool,
    steps: AtomicU64,
}

impl Progress {
    /// Asks the work to stop; it returns an error at its next check.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// True once [`Progress::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Records one more step.
    pub fn step(&self) {
        self.steps.fetch_add(1, Ordering::Relaxed);
    }

    /// Steps recorded so far.
    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }
}
