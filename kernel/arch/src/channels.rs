//! Where the URPC rings between cores lie, zeroing them before the other
//! cores start, and giving each core its own ends.
//!
//! Every ordered pair of cores has a ring. The ring from core `s` to core
//! `r` lives in core `r`'s channel region, memory the kernel carves from the
//! top of `r`'s span at boot (so it is local to the core that polls it).
//! After each ring comes one spare cache line that `urpc bench` uses for
//! its shared-memory baseline between the same pair.
//!
//! The boot core hands the regions over once, before any other core starts
//! ([`set_up`]), and they are zeroed then (all-zero memory is a fresh
//! ring); each core then takes its ends once, on itself ([`attach`]). That
//! is what makes every ring have exactly one sender and one receiver.
//!
//! When a core stops and is to start again as a new kernel, the rings to
//! and from it start afresh before it does: each running core zeroes its
//! pair with it and takes new ends on them in place of its old ones
//! ([`reattach`]), and the pairs between it and other stopped cores are
//! zeroed by the core that starts it ([`clear_pair`]). Both check that the
//! stopped cores are held in INIT (`smp::park`), so that no code that held
//! the old ends runs any more; the new kernel then attaches as at boot.

use alloc::vec::Vec;
use core::sync::atomic::AtomicU64;

use atoll_urpc::{Receiver, RingHeader, SLOT_SIZE, Sender, Slot};

use crate::{boot, percore, phys, smp};

/// Slots per ring.
pub const RING_SLOTS: usize = 8;
const LINE: u64 = 64;
const HEADER_BYTES: u64 = core::mem::size_of::<RingHeader>() as u64;
/// One ring and its spare line.
const RING_BYTES: u64 = HEADER_BYTES + (RING_SLOTS * SLOT_SIZE) as u64 + LINE;
/// The most cores with a channel region: one per core xAPIC can address.
const MAX_REGIONS: usize = crate::apic::MAX_CORES;

/// Bytes of one core's channel region on a machine of `cores` cores.
pub fn region_bytes(cores: usize) -> u64 {
    (RING_BYTES * cores.saturating_sub(1) as u64).next_multiple_of(4096)
}

/// Every core's channel region, by core id, once set up.
struct Regions {
    regions: [(u64, u64); MAX_REGIONS],
    count: usize,
}

static REGIONS: spin::Once<Regions> = spin::Once::new();

/// Takes `regions` (each core's, by core id) as the channel regions and
/// zeroes them. Call it once, on the boot core, before any other core
/// starts; it panics if called again, or for a region that is not a whole
/// number of rings in the identity map, outside the kernel image.
pub fn set_up(regions: &[(u64, u64)]) {
    assert!(
        regions.len() <= MAX_REGIONS,
        "more channel regions than cores"
    );
    let bytes = region_bytes(regions.len());
    let (image_start, image_end) = boot::kernel_image();
    let mut table = Regions {
        regions: [(0, 0); MAX_REGIONS],
        count: regions.len(),
    };
    for (slot, &(start, end)) in table.regions.iter_mut().zip(regions) {
        assert!(
            start % 4096 == 0
                && end - start == bytes
                && end <= phys::IDENTITY_MAPPED_END
                && (end <= image_start || start >= image_end),
            "channel region {start:#x}-{end:#x} is not {bytes} bytes of free mapped memory"
        );
        *slot = (start, end);
    }
    let mut fresh = false;
    REGIONS.call_once(|| {
        fresh = true;
        table
    });
    assert!(fresh, "the channel regions are set up once");
    for &(start, end) in regions {
        // SAFETY: each region was carved out of usable memory for the rings
        // alone (checked above to be mapped and outside the kernel), and no
        // other core runs yet to use it.
        unsafe { phys::claim_zeroed::<u8>(start, (end - start) as usize) };
    }
}

fn regions() -> &'static Regions {
    REGIONS
        .get()
        .expect("the channel regions are set up before any core uses them")
}

/// Where the ring from `sender` to `receiver` starts: its header, then its
/// slots, then the spare line.
fn ring_at(sender: usize, receiver: usize) -> u64 {
    assert_ne!(sender, receiver, "a core has no ring to itself");
    let regions = regions();
    assert!(sender < regions.count && receiver < regions.count);
    let index = if sender < receiver {
        sender
    } else {
        sender - 1
    };
    regions.regions[receiver].0 + index as u64 * RING_BYTES
}

fn header(ring: u64) -> &'static RingHeader {
    // SAFETY: `ring` is a ring's start inside a channel region (placed by
    // `ring_at`, 64-byte aligned), zeroed by `set_up`; all-zero bytes are a
    // valid `RingHeader`, and its fields are atomics, so shared references
    // from two cores are sound.
    unsafe { &*(ring as *const RingHeader) }
}

fn slots(ring: u64) -> &'static [Slot] {
    // SAFETY: as for `header`: `RING_SLOTS` zeroed, aligned slots after the
    // header; a slot's payload is only touched as the URPC protocol allows.
    unsafe { core::slice::from_raw_parts((ring + HEADER_BYTES) as *const Slot, RING_SLOTS) }
}

/// This core's ends of every ring it sends or receives on: a sender to and
/// a receiver from every other core, by core id (`None` at its own). Each
/// core takes them once; a second call panics.
pub fn attach() -> (Vec<Option<Sender<'static>>>, Vec<Option<Receiver<'static>>>) {
    let local = percore::current();
    assert!(
        !local.channels_attached.replace(true),
        "core {} takes its ring ends twice",
        local.id
    );
    let me = local.id;
    let cores = regions().count;
    let mut senders = Vec::with_capacity(cores);
    let mut receivers = Vec::with_capacity(cores);
    for other in 0..cores {
        if other == me {
            senders.push(None);
            receivers.push(None);
            continue;
        }
        let outgoing = ring_at(me, other);
        let incoming = ring_at(other, me);
        // SAFETY: the rings were zeroed by `set_up` before any other core
        // started; this core takes its ends once (checked above), so it is
        // the only sender on `me -> other` and the only receiver on
        // `other -> me`.
        unsafe {
            senders.push(Some(Sender::attach(header(outgoing), slots(outgoing))));
            receivers.push(Some(Receiver::attach(header(incoming), slots(incoming))));
        }
    }
    (senders, receivers)
}

/// Zeroes the ring from `sender` to `receiver`; see [`reattach`] and
/// [`clear_pair`] for who may, and when.
fn reset_ring(sender: usize, receiver: usize) {
    let ring = ring_at(sender, receiver);
    // SAFETY: the callers hold that no end of this ring is attached: one of
    // its cores is parked, and any end the other held was dropped.
    unsafe { atoll_urpc::reset(header(ring), slots(ring)) };
}

/// Starts the rings between this core and `other` afresh and returns this
/// core's new ends on them, in place of its ends until now, which it gives
/// up here. `other` must be held in INIT (`smp::park`) until this returns:
/// it panics if not, or if `other` is this core. The ends were this core's
/// alone, so with them dropped and `other` parked no end of either ring is
/// attached anywhere while they are zeroed.
pub fn reattach(
    other: usize,
    _old: (Option<Sender<'static>>, Option<Receiver<'static>>),
) -> (Sender<'static>, Receiver<'static>) {
    let me = percore::current().id;
    assert!(
        smp::is_parked(other),
        "core {me} resets its rings with core {other}, which is not parked"
    );
    reset_ring(me, other);
    reset_ring(other, me);
    let (outgoing, incoming) = (ring_at(me, other), ring_at(other, me));
    // SAFETY: both rings were just zeroed, the old ends dropped, and
    // `other` is parked: these are the only ends on this side, and the other
    // side has none until its next kernel attaches.
    unsafe {
        (
            Sender::attach(header(outgoing), slots(outgoing)),
            Receiver::attach(header(incoming), slots(incoming)),
        )
    }
}

/// Zeroes the rings between `a` and `b`, both held in INIT (`smp::park`):
/// neither runs, so no end of them is attached anywhere. Panics if either
/// is not parked.
pub fn clear_pair(a: usize, b: usize) {
    assert!(
        smp::is_parked(a) && smp::is_parked(b),
        "the rings between cores {a} and {b} are cleared while one of them may run"
    );
    reset_ring(a, b);
    reset_ring(b, a);
}

/// The spare line after the ring from `sender` to `receiver`, which both
/// write in `urpc bench`'s shared-memory ping-pong.
pub fn spare_line(sender: usize, receiver: usize) -> &'static AtomicU64 {
    let address = ring_at(sender, receiver) + HEADER_BYTES + (RING_SLOTS * SLOT_SIZE) as u64;
    // SAFETY: a 64-byte-aligned, zeroed line inside a channel region that
    // nothing else uses; an `AtomicU64` may be shared between cores.
    unsafe { &*(address as *const AtomicU64) }
}
