//! The program's global allocator: `talc` over pages it maps (`map`, by its
//! own space's capability, `SELF_SPACE`, which it must keep), from
//! [`HEAP_START`] up, more of them each time it runs out. A process that
//! spans cores has one heap for all its dispatchers, behind a lock whose
//! waiters give their core to others (`yield`).

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use talc::TalcLock;
use talc::base::Talc;
use talc::base::binning::Binning;
use talc::source::Source;

use crate::{USER_START, block_on_all, map, unmap};

/// Where the heap starts: 448 GiB into the user range, far from the image,
/// the stacks and the regions the programs map by hand.
pub const HEAP_START: u64 = USER_START + (7 << 36);
/// The most the heap grows to.
pub const HEAP_MAX: u64 = 1 << 30;
const PAGE: u64 = 4096;
/// Pages mapped at a time: each batch is agreed at once.
const BATCH: usize = 16;

/// Pages mapped for the heap on demand.
#[derive(Debug)]
pub struct MappedPages {
    /// The heap's end as `talc` knows it, once it has one.
    end: Option<NonNull<u8>>,
    /// Where the next page goes.
    mapped_to: u64,
}

// SAFETY: the pointer is only the heap's end, used by the allocator under
// its lock.
unsafe impl Send for MappedPages {}

/// Maps `BATCH` pages from `from`; whether all took effect. If some did
/// not, those that did are unmapped again, so that the range is whole or
/// free for the next try.
fn map_batch(from: u64) -> bool {
    let page = |index: usize| from + index as u64 * PAGE;
    let changes = core::array::from_fn::<_, BATCH, _>(|index| map(page(index), true));
    let mapped: [bool; BATCH] = if changes.iter().all(Result::is_ok) {
        block_on_all(changes.map(|change| change.expect("checked above"))).map(|end| end.is_ok())
    } else {
        changes.map(|change| change.is_ok_and(|change| crate::block_on(change).is_ok()))
    };
    if mapped.iter().all(|&took| took) {
        return true;
    }
    for index in (0..BATCH).filter(|&index| mapped[index]) {
        if let Ok(change) = unmap(page(index)) {
            let _ = crate::block_on(change);
        }
    }
    false
}

// SAFETY: `acquire` maps pages with system calls and touches no allocator.
unsafe impl Source for MappedPages {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        // Room for the allocation, its alignment and the allocator's tags.
        let wanted = (layout.size() + layout.align() + 64) as u64;
        let from = talc.source.mapped_to;
        let mut to = from;
        while to - from < wanted {
            if to + BATCH as u64 * PAGE > HEAP_START + HEAP_MAX || !map_batch(to) {
                break;
            }
            to += BATCH as u64 * PAGE;
        }
        if to == from {
            return Err(());
        }
        talc.source.mapped_to = to;
        talc.source.end = match talc.source.end {
            // SAFETY: `[from, to)` is this process's, mapped writable just
            // now, and nothing else uses it.
            None => unsafe { talc.claim(from as *mut u8, (to - from) as usize) },
            // SAFETY: the new pages continue the heap, which ends at `from`.
            Some(end) => Some(unsafe { talc.extend(end, to as *mut u8) }),
        };
        match talc.source.end {
            Some(_) => Ok(()),
            None => Err(()),
        }
    }
}

/// The heap's lock: a flag its waiters take in turn, giving their core to
/// others while they wait. (Written here rather than taken from `spin`: a
/// program of `user/` has that crate's name, which the build's package
/// names cannot tell apart.)
pub struct YieldingLock(AtomicBool);

// SAFETY: `lock` returns only once this caller set the flag from false
// (Acquire), and `unlock` clears it (Release): one holder at a time, and
// what it wrote is seen by the next.
unsafe impl lock_api::RawMutex for YieldingLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = YieldingLock(AtomicBool::new(false));
    type GuardMarker = lock_api::GuardSend;

    fn lock(&self) {
        while !self.try_lock() {
            crate::yield_now();
        }
    }

    fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    unsafe fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

#[global_allocator]
static ALLOCATOR: TalcLock<YieldingLock, MappedPages> = TalcLock::new(MappedPages {
    end: None,
    mapped_to: HEAP_START,
});
