//! The ring: slots, the two lines the receiver owns, and the two endpoints.

use crate::prefetch::prefetch_for_write;
use crate::sleep::{Line, SleepLine, Wake};
use crate::sync::{AtomicU64, Ordering, ProtocolCell};
use crate::{PAYLOAD_SIZE, Payload, SLOT_SIZE};

/// One cache line: the payload, then the control word that hands it over,
/// stored last. In a ring the control word is the sequence number of the
/// message in the slot, and only the sender writes the slot; in a call
/// channel ([`crate::call`]) it says whose turn it is, and the client and
/// the server take turns writing it.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Slot {
    pub(crate) payload: ProtocolCell<Payload>,
    /// 0 while the slot is fresh; then written by the side that hands the
    /// slot over, after the payload (Release), and polled by the other side
    /// (Acquire) before it touches the payload.
    pub(crate) control: AtomicU64,
}

// SAFETY: the payload is touched by one side at a time, as the protocol of
// the channel that owns the slot says: the side that hands the slot over
// writes the payload before it stores the control word (Release), and the
// other side touches the payload only after it has loaded that value
// (Acquire), while the first waits for a control word from the second before
// it writes again. `channel` and `call_channel` hand out exactly one end of
// each kind, and `attach` asks the caller to keep it so.
unsafe impl Sync for Slot {}

// Loom's atomics and cells carry bookkeeping, so the layout holds only for the real ones.
#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<Slot>() == SLOT_SIZE);
const _: () = assert!(PAYLOAD_SIZE + 8 == SLOT_SIZE);

impl Slot {
    pub fn new() -> Self {
        Self {
            payload: ProtocolCell::new([0; PAYLOAD_SIZE]),
            control: AtomicU64::new(0),
        }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

/// The receiver's two lines: how many messages it has consumed (written every
/// half ring, read by the sender only when the ring looks full), and whether
/// it sleeps (written when it goes to sleep; swapped by the sender that wakes it).
#[repr(C)]
#[derive(Debug)]
pub struct RingHeader {
    consumed: Line,
    sleeping: SleepLine,
}

impl RingHeader {
    pub fn new() -> Self {
        Self {
            consumed: Line::new(),
            sleeping: SleepLine::new(),
        }
    }
}

impl Default for RingHeader {
    fn default() -> Self {
        Self::new()
    }
}

/// The ring is full: the receiver has not yet acknowledged enough messages.
/// The message was not sent; the caller still has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// How many messages ahead a sender claims the line of a free slot
/// ([`Sender::try_send_with`]). In paired measurements (`docs/urpc.md`),
/// four streamed 8-byte messages 16-24 % and 56-byte ones 1-10 % faster
/// than none, and cost round trips over a pair of rings about 2 %; two and
/// eight did no better than four.
const CLAIM_AHEAD: usize = 4;

/// The slot after `index` in a ring of `capacity` slots.
#[inline]
pub(crate) fn next_index(index: usize, capacity: usize) -> usize {
    if index + 1 == capacity { 0 } else { index + 1 }
}

/// The slot before `index` in a ring of `capacity` slots.
#[inline]
pub(crate) fn previous_index(index: usize, capacity: usize) -> usize {
    if index == 0 { capacity - 1 } else { index - 1 }
}

/// Sets up a ring over `slots` and returns its two ends. The exclusive
/// borrows make sure there is only one of each.
///
/// # Panics
/// If `slots` is empty.
pub fn channel<'m>(
    header: &'m mut RingHeader,
    slots: &'m mut [Slot],
) -> (Sender<'m>, Receiver<'m>) {
    assert!(!slots.is_empty(), "a URPC ring needs at least one slot");
    *header = RingHeader::new();
    slots.iter_mut().for_each(|slot| *slot = Slot::new());
    // SAFETY: the ring was just reset, and the exclusive borrows end here,
    // so these are the only two ends.
    unsafe {
        (
            Sender::attach(header, slots),
            Receiver::attach(header, slots),
        )
    }
}

/// Makes a ring that was in use fresh again, as all-zero memory is: the
/// receiver's lines and every slot's control word go back to zero, so that
/// ends attached afterwards ([`Sender::attach`], [`Receiver::attach`])
/// start a new stream and read nothing of the old one. The payloads keep
/// their bytes, which a fresh control word makes unreadable.
///
/// # Safety
/// No end may be attached to the ring, nor attached until this returns: its
/// old ends are dropped (on every core or process that held one), so that
/// nobody reads or writes a slot while its control word changes under it.
pub unsafe fn reset(header: &RingHeader, slots: &[Slot]) {
    header.consumed.0.store(0, Ordering::Release);
    header.sleeping.reset();
    for slot in slots {
        slot.control.store(0, Ordering::Release);
    }
}

/// The sending end. Only this side writes the slots.
///
/// Each end is aligned to 128 bytes (a line pair, which x86 prefetchers
/// fetch together) so that its counters, written on every message, never
/// share a line with the other end's, wherever the host keeps the two: in
/// hosted mode two ends allocated one after the other made every message
/// pay for an extra line transfer (see `docs/urpc.md`).
#[derive(Debug)]
#[repr(align(128))]
pub struct Sender<'m> {
    header: &'m RingHeader,
    slots: &'m [Slot],
    /// Sequence number of the next message.
    next: u64,
    /// The slot of the next message, `(next - 1) % capacity`, kept rather
    /// than computed: a division costs more than the rest of a send.
    index: usize,
    /// The receiver's consumed count as last read; refreshed only when the
    /// ring looks full, so that the sender rarely reads the receiver's line.
    consumed_seen: u64,
}

impl<'m> Sender<'m> {
    /// The sending end of a ring whose receiving end lives elsewhere (on
    /// another core, or in another process sharing the memory).
    ///
    /// # Safety
    /// The ring must be fresh (as [`RingHeader::new`] and [`Slot::new`] make
    /// it: all-zero memory), and at most one sender may exist for it.
    ///
    /// # Panics
    /// If `slots` is empty.
    pub unsafe fn attach(header: &'m RingHeader, slots: &'m [Slot]) -> Self {
        assert!(!slots.is_empty(), "a URPC ring needs at least one slot");
        Self {
            header,
            slots,
            next: 1,
            index: 0,
            consumed_seen: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn in_flight(&self) -> u64 {
        self.next - 1 - self.consumed_seen
    }

    /// Free slots, reading the receiver's acknowledgements afresh.
    #[inline]
    pub fn free_slots(&mut self) -> usize {
        self.consumed_seen = self.header.consumed.0.load(Ordering::Acquire);
        self.slots.len() - self.in_flight() as usize
    }

    /// Writes one message, without checking whether the receiver sleeps:
    /// call [`flush`](Self::flush) after a batch, before waiting on anything.
    ///
    /// A payload built just before the call is copied from where it was
    /// built; [`try_send_with`](Self::try_send_with) builds it in the slot.
    #[inline]
    pub fn try_send(&mut self, payload: &Payload) -> Result<(), Full> {
        self.try_send_with(|slot| *slot = *payload)
    }

    /// Writes one message in place: `fill` gets the slot's payload, which
    /// holds what the slot's previous message left there, and writes the
    /// new message into it. Otherwise as [`try_send`](Self::try_send);
    /// `fill` is not called when the ring is full.
    ///
    /// This spares the copy from a payload built elsewhere, and with it a
    /// stall: the copy reads back what the caller has just stored, and where
    /// it reads in wider pieces than the caller stored (16 bytes over two
    /// 8-byte stores, say), the processor cannot forward the stores and the
    /// read waits until every earlier store has reached the cache, those
    /// into slots of earlier messages too, which wait for their lines. In
    /// the hosted benchmark 8-byte messages padded into a payload on the
    /// stack streamed at 27-28 M messages/s through `try_send`, and at
    /// 58-127 M/s written in place in the same runs (`docs/urpc.md`).
    #[inline]
    pub fn try_send_with(&mut self, fill: impl FnOnce(&mut Payload)) -> Result<(), Full> {
        if self.in_flight() == self.slots.len() as u64 && self.free_slots() == 0 {
            return Err(Full);
        }
        let slot = &self.slots[self.index];
        // SAFETY: the receiver has acknowledged the message this slot held
        // (checked above), so it no longer reads the payload; only this
        // sender writes slots, and `fill` cannot reach this sender.
        unsafe { slot.payload.with_mut(fill) };
        slot.control.store(self.next, Ordering::Release);
        self.next += 1;
        self.index = next_index(self.index, self.slots.len());
        self.claim_ahead();
        Ok(())
    }

    /// Asks for the line of the slot [`CLAIM_AHEAD`] messages on, so that
    /// its transfer overlaps the messages before it and the store that
    /// fills it finds the line here. Only when that slot is known to be
    /// free: the line of a slot the receiver has yet to read would be pulled
    /// away from it.
    #[inline]
    fn claim_ahead(&self) {
        let capacity = self.slots.len();
        if self.in_flight() as usize + CLAIM_AHEAD <= capacity {
            // The slot of message `next + CLAIM_AHEAD - 1`, at most
            // `capacity` slots on from the next one.
            let mut ahead = self.index + CLAIM_AHEAD - 1;
            if ahead >= capacity {
                ahead -= capacity;
            }
            prefetch_for_write(&self.slots[ahead]);
        }
    }

    /// Makes the messages sent so far count for the sleep handshake: if the
    /// receiver announced that it sleeps, the caller must wake it. Only one
    /// sender (this one) can claim a given announcement.
    #[inline]
    pub fn flush(&self) -> Wake {
        self.header.sleeping.claim()
    }

    /// [`try_send`](Self::try_send) then [`flush`](Self::flush).
    #[inline]
    pub fn send(&mut self, payload: &Payload) -> Result<Wake, Full> {
        self.try_send(payload)?;
        Ok(self.flush())
    }
}

/// The receiving end. It polls the sequence number of the slot it expects.
/// Aligned as [`Sender`] is, for the same reason.
#[derive(Debug)]
#[repr(align(128))]
pub struct Receiver<'m> {
    header: &'m RingHeader,
    slots: &'m [Slot],
    /// Sequence number of the next message expected.
    next: u64,
    /// Its slot, `(next - 1) % capacity`, kept as the sender keeps it.
    index: usize,
    /// The consumed count last published.
    acknowledged: u64,
    acknowledge_every: u64,
}

impl<'m> Receiver<'m> {
    /// The receiving end of a ring whose sending end lives elsewhere.
    ///
    /// # Safety
    /// As for [`Sender::attach`]: a fresh ring, and at most one receiver.
    ///
    /// # Panics
    /// If `slots` is empty.
    pub unsafe fn attach(header: &'m RingHeader, slots: &'m [Slot]) -> Self {
        assert!(!slots.is_empty(), "a URPC ring needs at least one slot");
        let acknowledge_every = (slots.len() as u64 / 2).max(1);
        Self {
            header,
            slots,
            next: 1,
            index: 0,
            acknowledged: 0,
            acknowledge_every,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn expected_slot(&self) -> &Slot {
        &self.slots[self.index]
    }

    /// Whether the next message has arrived.
    #[inline]
    pub fn has_message(&self) -> bool {
        self.expected_slot().control.load(Ordering::Acquire) == self.next
    }

    /// The next message, if it has arrived.
    #[inline]
    pub fn try_recv(&mut self) -> Option<Payload> {
        if !self.has_message() {
            self.publish_consumed();
            return None;
        }
        // SAFETY: the sequence number, stored by the sender after the
        // payload, has been seen with Acquire; the sender will not write the
        // slot again before this message is acknowledged, below or later.
        let payload = unsafe { self.expected_slot().payload.read() };
        self.next += 1;
        self.index = next_index(self.index, self.slots.len());
        if self.next - 1 - self.acknowledged >= self.acknowledge_every {
            self.publish_consumed();
        }
        Some(payload)
    }

    /// Tells the sender about every message consumed so far, if it does not
    /// know yet. Done every half ring, and whenever the ring runs dry, so
    /// that a sender waiting for space is never left waiting on a receiver
    /// with nothing to do.
    #[inline]
    fn publish_consumed(&mut self) {
        let consumed = self.next - 1;
        if consumed != self.acknowledged {
            self.header.consumed.0.store(consumed, Ordering::Release);
            self.acknowledged = consumed;
        }
    }

    /// Announces that this receiver is about to sleep, then looks at the
    /// ring once more. `true`: nothing came, and a sender that sends from now
    /// on will be told to wake it ([`Wake::Needed`]); the caller may sleep.
    /// `false`: a message came in the meantime; the announcement is withdrawn.
    pub fn prepare_to_sleep(&mut self) -> bool {
        self.publish_consumed();
        self.header.sleeping.prepare_to_sleep(|| self.has_message())
    }

    /// Withdraws a sleep announcement, after waking for whatever reason.
    pub fn woken(&self) {
        self.header.sleeping.withdraw();
    }
}

/// Also what the call channel's unit tests use.
#[cfg(all(test, not(loom)))]
pub(crate) mod tests {
    use super::*;
    use std::vec::Vec;

    pub(crate) fn message(value: u8) -> Payload {
        let mut payload = [0; PAYLOAD_SIZE];
        payload[0] = value;
        payload[PAYLOAD_SIZE - 1] = value.wrapping_mul(3);
        payload
    }

    pub(crate) fn fresh_slots(count: usize) -> Vec<Slot> {
        (0..count).map(|_| Slot::new()).collect()
    }

    fn ring(slots: usize) -> (RingHeader, Vec<Slot>) {
        (RingHeader::new(), fresh_slots(slots))
    }

    #[test]
    fn messages_arrive_in_order_across_wrap_around() {
        let (mut header, mut slots) = ring(3);
        let (mut sender, mut receiver) = channel(&mut header, &mut slots);
        for value in 0..20u8 {
            assert_eq!(sender.try_send(&message(value)), Ok(()));
            assert_eq!(receiver.try_recv(), Some(message(value)));
            assert_eq!(receiver.try_recv(), None);
        }
    }

    #[test]
    fn a_message_written_in_place_arrives_and_a_full_ring_fills_nothing() {
        let (mut header, mut slots) = ring(1);
        let (mut sender, mut receiver) = channel(&mut header, &mut slots);
        sender
            .try_send_with(|payload| *payload = message(1))
            .unwrap();
        assert_eq!(
            sender.try_send_with(|_| panic!("fill ran on a full ring")),
            Err(Full)
        );
        assert_eq!(receiver.try_recv(), Some(message(1)));
        // The slot still holds message 1; writing one byte changes one byte.
        sender.try_send_with(|payload| payload[0] = 2).unwrap();
        let mut second = message(1);
        second[0] = 2;
        assert_eq!(receiver.try_recv(), Some(second));
    }

    #[test]
    fn a_full_ring_refuses_until_the_receiver_consumes() {
        let (mut header, mut slots) = ring(4);
        let (mut sender, mut receiver) = channel(&mut header, &mut slots);
        for value in 0..4 {
            sender.try_send(&message(value)).unwrap();
        }
        assert_eq!(sender.try_send(&message(9)), Err(Full));
        assert_eq!(receiver.try_recv(), Some(message(0)));
        // One consumed is not yet half a ring: not acknowledged.
        assert_eq!(sender.try_send(&message(9)), Err(Full));
        assert_eq!(receiver.try_recv(), Some(message(1)));
        assert_eq!(sender.free_slots(), 2);
        sender.try_send(&message(4)).unwrap();
        let received: Vec<_> = core::iter::from_fn(|| receiver.try_recv()).collect();
        assert_eq!(received, [message(2), message(3), message(4)]);
    }

    #[test]
    fn a_receiver_that_runs_dry_acknowledges_everything() {
        let (mut header, mut slots) = ring(8);
        let (mut sender, mut receiver) = channel(&mut header, &mut slots);
        sender.try_send(&message(1)).unwrap();
        receiver.try_recv().unwrap();
        assert_eq!(sender.free_slots(), 7);
        assert_eq!(receiver.try_recv(), None);
        assert_eq!(sender.free_slots(), 8);
    }

    #[test]
    fn a_reset_ring_gives_new_ends_nothing_of_the_old_stream() {
        let (header, slots) = ring(4);
        // SAFETY: fresh, and these are its only ends.
        let (mut sender, mut receiver) = unsafe {
            (
                Sender::attach(&header, &slots),
                Receiver::attach(&header, &slots),
            )
        };
        for value in 0..3 {
            sender.try_send(&message(value)).unwrap();
            receiver.try_recv().unwrap();
        }
        // The old receiver sleeps with two messages on their way to it.
        assert!(receiver.prepare_to_sleep());
        assert_eq!(sender.send(&message(3)), Ok(Wake::Needed));
        sender.try_send(&message(4)).unwrap();
        let (_, _) = (sender, receiver);
        // SAFETY: both ends were given up above.
        unsafe { reset(&header, &slots) };
        // SAFETY: the ring is fresh again, and these are its only ends.
        let (mut sender, mut receiver) = unsafe {
            (
                Sender::attach(&header, &slots),
                Receiver::attach(&header, &slots),
            )
        };
        assert_eq!(receiver.try_recv(), None, "an old message was read");
        assert_eq!(sender.free_slots(), 4);
        assert_eq!(sender.send(&message(9)), Ok(Wake::NotNeeded));
        assert_eq!(receiver.try_recv(), Some(message(9)));
    }

    #[test]
    fn a_sleeping_receiver_is_woken_once() {
        let (mut header, mut slots) = ring(2);
        let (mut sender, mut receiver) = channel(&mut header, &mut slots);
        assert!(receiver.prepare_to_sleep());
        assert_eq!(sender.send(&message(1)), Ok(Wake::Needed));
        assert_eq!(sender.send(&message(2)), Ok(Wake::NotNeeded));
        assert_eq!(receiver.try_recv(), Some(message(1)));
        assert_eq!(receiver.try_recv(), Some(message(2)));
    }

    #[test]
    fn a_message_before_sleeping_cancels_the_sleep() {
        let (mut header, mut slots) = ring(2);
        let (mut sender, mut receiver) = channel(&mut header, &mut slots);
        sender.try_send(&message(1)).unwrap();
        assert!(!receiver.prepare_to_sleep());
        assert_eq!(sender.flush(), Wake::NotNeeded);
    }

    #[test]
    fn a_stale_slot_from_the_last_lap_is_not_fresh() {
        let (mut header, mut slots) = ring(1);
        let (mut sender, mut receiver) = channel(&mut header, &mut slots);
        sender.try_send(&message(1)).unwrap();
        assert_eq!(receiver.try_recv(), Some(message(1)));
        // The slot still holds message 1 with sequence 1; the receiver now
        // expects sequence 2 there.
        assert_eq!(receiver.try_recv(), None);
        sender.try_send(&message(2)).unwrap();
        assert_eq!(receiver.try_recv(), Some(message(2)));
    }
}
