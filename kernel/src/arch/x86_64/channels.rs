//! Turning the channel regions the boot core carved into rings: zeroing them
//! before the other cores start, and giving each core its own ends.

use super::phys;
use crate::boot::BootFacts;
use crate::channels::{Channels, RING_SLOTS, ring_place};
use alloc::vec::Vec;
use atoll_urpc::{Receiver, RingHeader, Sender, Slot};
use core::sync::atomic::AtomicU64;

/// Zeroes every core's channel region (all-zero memory is a fresh ring)
/// and the page `bench fig3` shares (an unlocked lock). Called by the boot
/// core once, before any other core starts.
pub fn reset_shared_memory(facts: &BootFacts) {
    let regions = facts.cores.iter().map(|core| core.channels);
    for (start, end) in regions.chain([(facts.fig3_page, facts.fig3_page + 4096)]) {
        // SAFETY: each region was carved out of usable memory for sharing
        // alone, lies in the identity map, and no core uses it yet.
        unsafe { phys::claim_zeroed::<u8>(start, (end - start) as usize) };
    }
}

fn header(address: u64) -> &'static RingHeader {
    // SAFETY: `address` is a ring header inside a channel region (placed by
    // `ring_place`, 64-byte aligned), zeroed by `reset_shared_memory`; all-zero bytes
    // are a valid `RingHeader`, and its fields are atomics, so shared
    // references from two cores are sound.
    unsafe { &*(address as *const RingHeader) }
}

fn slots(address: u64) -> &'static [Slot] {
    // SAFETY: as for `header`: `RING_SLOTS` zeroed, aligned slots; a slot's
    // payload is only touched as the URPC protocol allows.
    unsafe { core::slice::from_raw_parts(address as *const Slot, RING_SLOTS) }
}

/// This core's ends of every ring it sends or receives on.
///
/// # Safety
/// Called once per core, on that core, after `reset_shared_memory`: every ring then
/// has exactly one sender (core `s`) and one receiver (core `r`).
pub unsafe fn attach(facts: &BootFacts, me: usize) -> Channels {
    let cores = facts.cores.len();
    let mut senders = Vec::with_capacity(cores);
    let mut receivers = Vec::with_capacity(cores);
    for other in 0..cores {
        if other == me {
            senders.push(None);
            receivers.push(None);
            continue;
        }
        let outgoing = ring_place(facts, me, other);
        let incoming = ring_place(facts, other, me);
        // SAFETY: fresh rings (the caller's promise), and this core is the
        // only sender on `me -> other` and the only receiver on `other -> me`.
        unsafe {
            senders.push(Some(Sender::attach(
                header(outgoing.header),
                slots(outgoing.slots),
            )));
            receivers.push(Some(Receiver::attach(
                header(incoming.header),
                slots(incoming.slots),
            )));
        }
    }
    Channels { senders, receivers }
}

/// The spare line after the ring from `sender` to `receiver`, which both
/// write in `urpc bench`'s shared-memory ping-pong.
pub fn baseline_line(facts: &BootFacts, sender: usize, receiver: usize) -> &'static AtomicU64 {
    let address = ring_place(facts, sender, receiver).baseline_line;
    // SAFETY: a 64-byte-aligned, zeroed line inside a channel region that
    // nothing else uses; an `AtomicU64` may be shared between cores.
    unsafe { &*(address as *const AtomicU64) }
}
