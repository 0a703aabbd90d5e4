//! Where the URPC rings between cores lie, and each core's ends of them.
//!
//! Every ordered pair of cores has a ring. The ring from core `s` to core
//! `r` lives in core `r`'s channel region, memory carved from the top of
//! `r`'s span at boot (so it is local to the core that polls it), zeroed by
//! the boot core before any other core starts, and then attached by each
//! core to its own ends. After the ring comes one spare cache line that
//! `urpc bench` uses for its shared-memory baseline between the same pair.

use crate::boot::BootFacts;
use alloc::vec::Vec;
use atoll_frames::FRAME_SIZE;
use atoll_urpc::{Receiver, RingHeader, SLOT_SIZE, Sender};

/// Slots per ring.
pub const RING_SLOTS: usize = 8;
const LINE: u64 = 64;
const HEADER_BYTES: u64 = core::mem::size_of::<RingHeader>() as u64;
/// One ring and its baseline line.
const RING_BYTES: u64 = HEADER_BYTES + (RING_SLOTS * SLOT_SIZE) as u64 + LINE;

/// Bytes of one core's channel region on a machine of `cores` cores.
pub fn region_bytes(cores: usize) -> u64 {
    (RING_BYTES * cores.saturating_sub(1) as u64).next_multiple_of(FRAME_SIZE)
}

/// Where the ring from `sender` to `receiver` starts: its header, then its
/// slots, then the baseline line.
pub struct RingPlace {
    pub header: u64,
    pub slots: u64,
    pub baseline_line: u64,
}

pub fn ring_place(facts: &BootFacts, sender: usize, receiver: usize) -> RingPlace {
    debug_assert_ne!(sender, receiver);
    let index = if sender < receiver {
        sender
    } else {
        sender - 1
    };
    let header = facts.cores[receiver].channels.0 + index as u64 * RING_BYTES;
    let slots = header + HEADER_BYTES;
    RingPlace {
        header,
        slots,
        baseline_line: slots + (RING_SLOTS * SLOT_SIZE) as u64,
    }
}

/// One core's ends: a sender to and a receiver from every other core,
/// indexed by core id (`None` at its own id).
pub struct Channels {
    pub senders: Vec<Option<Sender<'static>>>,
    pub receivers: Vec<Option<Receiver<'static>>>,
}
