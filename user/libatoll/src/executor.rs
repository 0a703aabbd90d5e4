//! Split-phase system calls as futures, and the executor that runs them on
//! the calling dispatcher.
//!
//! `map` and `unmap` (and a channel's create and connect) return at once
//! with a token; the change is agreed by the cores the process runs on, and
//! ends later. A [`Change`] is that token as a future: polling it asks the
//! kernel (`Poll`), and it is ready, with the change's value, once the
//! change has ended. [`block_on`] runs a future to its end on this
//! dispatcher: when it is pending, the dispatcher sleeps in `WaitEvent`
//! until one of its changes ends, rather than spinning. No waker is needed:
//! every future here is woken by the kernel's event, and the executor polls
//! again after each.

use core::future::Future;
use core::pin::{Pin, pin};
use core::task::{Context, Poll, Waker};

use crate::{Call, Cap, Error, SELF_SPACE, answer, syscall};

/// A change under way (a map, an unmap, a channel's create or connect):
/// ready once it took effect on every core of the process, with its value
/// (0 for a map or an unmap, the slot of this process's new endpoint for a
/// channel), or with `Refused`.
#[derive(Debug)]
#[must_use = "a change's end tells whether it took effect"]
pub struct Change {
    token: u64,
    done: Option<Result<u64, Error>>,
}

impl Change {
    /// The change of the kernel's `token`.
    pub(crate) fn new(token: u64) -> Self {
        Self { token, done: None }
    }

    /// The kernel's token for it.
    pub fn token(&self) -> u64 {
        self.token
    }
}

impl Future for Change {
    type Output = Result<u64, Error>;

    fn poll(mut self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(done) = self.done {
            return Poll::Ready(done);
        }
        match crate::poll(self.token) {
            Err(Error::Pending) => Poll::Pending,
            done => {
                self.done = Some(done);
                Poll::Ready(done)
            }
        }
    }
}

/// Asks for a fresh zeroed page at `address` of this process's space,
/// writable or not; the change is under way when this returns.
pub fn map(address: u64, writable: bool) -> Result<Change, Error> {
    map_in(SELF_SPACE, address, writable)
}

/// As [`map`], in the address space the capability `space` names (this
/// process's own, with [`RIGHT_MAP`](crate::RIGHT_MAP)).
pub fn map_in(space: Cap, address: u64, writable: bool) -> Result<Change, Error> {
    let flags = match writable {
        true => crate::MAP_WRITABLE,
        false => 0,
    };
    let token = answer(syscall(Call::Map, [space, address, flags, crate::NO_CAP]))?;
    Ok(Change::new(token))
}

/// As [`map`], mapping the frame the capability `frame` names (which needs
/// [`RIGHT_MAP`](crate::RIGHT_MAP), and [`RIGHT_WRITE`](crate::RIGHT_WRITE)
/// to map it writable) rather than a fresh one.
pub fn map_frame(frame: Cap, address: u64, writable: bool) -> Result<Change, Error> {
    let flags = match writable {
        true => crate::MAP_WRITABLE,
        false => 0,
    };
    let token = answer(syscall(Call::Map, [SELF_SPACE, address, flags, frame]))?;
    Ok(Change::new(token))
}

/// Asks for the page at `address` to be unmapped on every core of the
/// process.
pub fn unmap(address: u64) -> Result<Change, Error> {
    let token = answer(syscall(Call::Unmap, [SELF_SPACE, address, 0, 0]))?;
    Ok(Change::new(token))
}

/// Asks for the mapped page at `address` of this process's space to be
/// writable or read-only from now on, keeping its frame; once the change
/// has ended, no core of the process grants the old rights.
pub fn protect(address: u64, writable: bool) -> Result<Change, Error> {
    let flags = match writable {
        true => crate::MAP_WRITABLE,
        false => 0,
    };
    let token = answer(syscall(Call::Protect, [SELF_SPACE, address, flags, 0]))?;
    Ok(Change::new(token))
}

/// Runs `future` to its end on this dispatcher, sleeping in `WaitEvent`
/// while it is pending.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        // Nothing to wait for would mean the future waits on something
        // that is not a change: poll it again after the others had a turn.
        if crate::wait_event().is_err() {
            crate::yield_now();
        }
    }
}

/// Runs every change of `changes` to its end at once (they proceed
/// together), and says how each ended.
pub fn block_on_all<const N: usize>(changes: [Change; N]) -> [Result<u64, Error>; N] {
    let mut changes = changes;
    let mut context = Context::from_waker(Waker::noop());
    loop {
        let mut pending = false;
        for change in &mut changes {
            pending |= Pin::new(change).poll(&mut context).is_pending();
        }
        if !pending {
            return changes.map(|change| change.done.expect("every change is ready"));
        }
        if crate::wait_event().is_err() {
            crate::yield_now();
        }
    }
}
