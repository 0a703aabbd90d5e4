//! The sleep announcement that both channel kinds use: a line on which a
//! side that waits for messages says it is about to sleep, and which the
//! other side checks after publishing, so that no wake-up is lost.

use crate::sync::{AtomicU64, Ordering};

/// A counter alone on its cache line, so that writes to it disturb nothing else.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct Line(pub(crate) AtomicU64);

impl Line {
    pub(crate) fn new() -> Self {
        Self(AtomicU64::new(0))
    }
}

/// Whether the side that published must wake the other, which announced
/// that it sleeps.
#[must_use = "a side that sleeps and is not woken misses the message"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Needed,
    NotNeeded,
}

/// The line where a waiting side announces that it sleeps. Both sides change
/// it only with read-modify-writes, so all changes are totally ordered:
///
/// - the waiting side publishes what it has to (its acknowledgements), then
///   [`prepare_to_sleep`](Self::prepare_to_sleep): announces, looks for work
///   once more, and sleeps only if it finds none;
/// - the publishing side stores its message, then [`claim`](Self::claim)s.
///
/// If the claim comes second it reads the announcement and the publisher
/// wakes the sleeper. If the announcement comes second it reads from the
/// claim, a release, so the sleeper's second look sees the message. Either
/// way the message is not stranded (`docs/urpc.md`, and the loom models).
#[derive(Debug)]
pub(crate) struct SleepLine(Line);

impl SleepLine {
    pub(crate) fn new() -> Self {
        Self(Line::new())
    }

    /// Back to nobody asleep, for a ring started afresh (`ring::reset`).
    pub(crate) fn reset(&self) {
        self.0.0.store(0, Ordering::Release);
    }

    /// The waiting side is about to sleep: announces it, then looks for work
    /// once more with `has_work`. `true`: none came, and the other side's
    /// next [`claim`](Self::claim) will say [`Wake::Needed`]; the caller may
    /// sleep. `false`: work came in the meantime; the announcement is
    /// withdrawn.
    pub(crate) fn prepare_to_sleep(&self, has_work: impl FnOnce() -> bool) -> bool {
        self.0.0.swap(1, Ordering::AcqRel);
        if has_work() {
            self.withdraw();
            return false;
        }
        true
    }

    /// The waiting side is awake again, whatever woke it.
    pub(crate) fn withdraw(&self) {
        // A swap, not a store: a claim that found no announcement may have
        // swapped this line just before, and the sleeper's next announcement
        // must still synchronise with that claim through this write. An RMW
        // continues the claim's release sequence; a plain store would end
        // it, and the next announcement could then miss the published
        // message while the claim missed the announcement (the loom model
        // `a_receiver_that_sleeps_twice_is_woken_each_time`).
        self.0.0.swap(0, Ordering::Relaxed);
    }

    /// Called by the publishing side after its stores: whether the waiting
    /// side announced that it sleeps. Only one claim gets a given
    /// announcement.
    pub(crate) fn claim(&self) -> Wake {
        if self.0.0.swap(0, Ordering::AcqRel) != 0 {
            Wake::Needed
        } else {
            Wake::NotNeeded
        }
    }
}
