//! The hosted wake path: a futex word on a cache line of its own, which a
//! receiver sleeps on and a sender rings when the ring's sleep handshake
//! answers [`Wake::Needed`].
//!
//! It is an event count. The receiver reads the count (its ticket) *before*
//! it announces that it sleeps, then sleeps only while the count still
//! equals the ticket; FUTEX_WAIT compares and sleeps atomically. A sender
//! that owes a wake-up bumps the count and then wakes. The handshake
//! guarantees that a sender owing the wake-up saw the announcement, so its
//! bump comes after the ticket was read: either the receiver's FUTEX_WAIT
//! sees a changed count and returns at once, or it is asleep when the wake
//! arrives. Spurious wake-ups are harmless: the receiver looks at the ring
//! again. [`Doorbell::wait_for`] is that wait, for every end that sleeps.
//! The futex is not process-private, so a forked peer can share it.

use std::sync::atomic::{AtomicU32, Ordering};

use atoll_urpc::Wake;

#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct Doorbell {
    rings: AtomicU32,
}

impl Doorbell {
    /// The count to pass to [`wait`](Self::wait); read it before announcing sleep.
    pub fn ticket(&self) -> u32 {
        self.rings.load(Ordering::Acquire)
    }

    /// Sleeps while nobody has rung since `ticket` was taken. Returns on a
    /// ring, at once if one already happened, or spuriously (a signal).
    pub fn wait(&self, ticket: u32) {
        // SAFETY: the futex word is a live AtomicU32 that outlives the call;
        // the kernel only reads it, atomically, and a null timeout means none.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.rings.as_ptr(),
                libc::FUTEX_WAIT,
                ticket,
                std::ptr::null::<libc::timespec>(),
            )
        };
    }

    /// Polls `end` with `poll` up to `spins` times, then sleeps on this
    /// doorbell until it is rung, and so on until `poll` gives something.
    /// The ticket is taken before `prepare_to_sleep` announces the sleep
    /// (and looks once more); `woken` withdraws the announcement.
    pub(crate) fn wait_for<E, T>(
        &self,
        end: &mut E,
        spins: u32,
        poll: impl Fn(&mut E) -> Option<T>,
        prepare_to_sleep: impl Fn(&mut E) -> bool,
        woken: impl Fn(&E),
    ) -> T {
        loop {
            for _ in 0..spins {
                if let Some(item) = poll(end) {
                    return item;
                }
                std::hint::spin_loop();
            }
            let ticket = self.ticket();
            if prepare_to_sleep(end) {
                self.wait(ticket);
                woken(end);
            }
            if let Some(item) = poll(end) {
                return item;
            }
        }
    }

    /// Rings if `wake`, a flush's answer, says that the other side sleeps;
    /// returns `wake`.
    #[inline]
    pub(crate) fn ring_if_needed(&self, wake: Wake) -> Wake {
        if wake == Wake::Needed {
            self.ring();
        }
        wake
    }

    /// Wakes the receiver sleeping on this doorbell, or makes its next
    /// [`wait`](Self::wait) with an older ticket return at once.
    pub fn ring(&self) {
        self.rings.fetch_add(1, Ordering::Release);
        // SAFETY: as in `wait`; FUTEX_WAKE does not touch the word.
        unsafe { libc::syscall(libc::SYS_futex, self.rings.as_ptr(), libc::FUTEX_WAKE, 1) };
    }
}
