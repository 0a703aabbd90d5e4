//! Call channels: request and reply in the same slot.
//!
//! A call channel is a ring of slots that a client and a server share. The
//! client writes a request into a free slot (the payload, then the control
//! word); the server polls that slot, takes the request, and later writes
//! its reply into the same slot (the payload, then the control word again,
//! now marked as a reply); the client polls the slot for the reply. A call
//! therefore moves one cache line from the client to the server and back,
//! as the one-line ping-pong does, where a request ring and a reply ring
//! move two lines, one per direction (`docs/urpc.md` has the numbers).
//! Both sides write every slot, but they take turns: the control word says
//! whose turn it is.
//!
//! Flow control needs no line of its own: a slot is free again once the
//! client has taken the reply in it, which only the client needs to know.
//! With `N` slots, up to `N` calls are outstanding. The server takes
//! requests in call order and may answer them in any order; the client
//! takes replies in call order.
//!
//! Calls that overlap take consecutive slots, as messages in a ring do. A
//! call made while none is outstanding instead reuses the slot of the call
//! before it, whose reply the client has just read: one call at a time then
//! keeps to one line, as the one-line ping-pong does. The server looks for
//! each request in both places, the slot after the previous call's and that
//! slot itself. Putting every call in the next slot cost 1.5 times as much
//! per round trip on the machine measured (`docs/urpc.md`): the server, as
//! soon as it has replied, polls the next slot and pulls that line from the
//! client, which must then take it back to write its request.
//!
//! Either side may sleep, the server while it waits for requests and the
//! client while it waits for a reply. Each announces it on a line of its own
//! in the [`CallHeader`], with the same read-modify-write argument as a
//! ring's receiver: the other side claims the announcement after publishing.
//!
//! Control words: 0 while a slot is fresh; for call `n` (1, 2, ...), `2n`
//! once the request is in the slot and `2n + 1` once the reply is. Call
//! numbers only grow, so a word left from an earlier call never passes for
//! either of a later call's.
//!
//! The hot functions are `#[inline]`: a call is a few stores and loads, and
//! calling them across crates (return values copied through the stack)
//! cost a third of a round trip in hosted measurements.

use core::ptr;

use crate::Payload;
use crate::ring::{Full, Slot, next_index, previous_index};
use crate::sleep::{SleepLine, Wake};
use crate::sync::Ordering;

/// The control word of call `call`'s request.
#[inline]
fn request_word(call: u64) -> u64 {
    call << 1
}

/// The control word of call `call`'s reply.
#[inline]
fn reply_word(call: u64) -> u64 {
    call << 1 | 1
}

/// The two sleep announcements, each on its own line: the server's (claimed
/// by the client after a call) and the client's (claimed by the server after
/// a reply).
#[repr(C)]
#[derive(Debug)]
pub struct CallHeader {
    server_sleeping: SleepLine,
    client_sleeping: SleepLine,
}

impl CallHeader {
    pub fn new() -> Self {
        Self {
            server_sleeping: SleepLine::new(),
            client_sleeping: SleepLine::new(),
        }
    }
}

impl Default for CallHeader {
    fn default() -> Self {
        Self::new()
    }
}

/// Sets up a call channel over `slots` and returns its two ends. The
/// exclusive borrows make sure there is only one of each.
///
/// # Panics
/// If `slots` is empty.
pub fn call_channel<'m>(
    header: &'m mut CallHeader,
    slots: &'m mut [Slot],
) -> (CallClient<'m>, CallServer<'m>) {
    assert!(!slots.is_empty(), "a call channel needs at least one slot");
    *header = CallHeader::new();
    slots.iter_mut().for_each(|slot| *slot = Slot::new());
    // SAFETY: the channel was just reset, and the exclusive borrows end
    // here, so these are the only two ends.
    unsafe {
        (
            CallClient::attach(header, slots),
            CallServer::attach(header, slots),
        )
    }
}

/// The calling end. It writes requests into free slots and takes the
/// replies, oldest call first.
///
/// Aligned to 128 bytes, as ring ends are, so that its counters never
/// share a line (or a prefetched line pair) with the server's.
#[derive(Debug)]
#[repr(align(128))]
pub struct CallClient<'m> {
    header: &'m CallHeader,
    slots: &'m [Slot],
    /// Number of the next call.
    next_call: u64,
    /// The slot after the last call's: the next call's if a call is still
    /// outstanding. The outstanding calls hold the slots from
    /// `oldest_index` up to (not including) this one, in call order.
    next_index: usize,
    /// Number of the oldest call whose reply has not been taken; equal to
    /// `next_call` when no call is outstanding.
    oldest: u64,
    /// Its slot; equal to `next_index` when no call is outstanding.
    oldest_index: usize,
}

impl<'m> CallClient<'m> {
    /// The client end of a call channel whose server lives elsewhere (on
    /// another core, or in another process sharing the memory).
    ///
    /// # Safety
    /// The channel must be fresh (as [`CallHeader::new`] and [`Slot::new`]
    /// make it: all-zero memory), and at most one client may exist for it.
    ///
    /// # Panics
    /// If `slots` is empty.
    pub unsafe fn attach(header: &'m CallHeader, slots: &'m [Slot]) -> Self {
        assert!(!slots.is_empty(), "a call channel needs at least one slot");
        Self {
            header,
            slots,
            next_call: 1,
            next_index: 0,
            oldest: 1,
            oldest_index: 0,
        }
    }

    /// The most calls that can be outstanding.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Calls made whose replies have not been taken.
    #[inline]
    pub fn outstanding(&self) -> usize {
        (self.next_call - self.oldest) as usize
    }

    /// Writes a request into the next slot, without checking whether the
    /// server sleeps: call [`flush`](Self::flush) after a batch, before
    /// waiting on anything. [`Full`] when [`capacity`](Self::capacity) calls
    /// are outstanding: take a reply first.
    #[inline]
    pub fn try_call(&mut self, request: &Payload) -> Result<(), Full> {
        match self.outstanding() {
            outstanding if outstanding == self.slots.len() => return Err(Full),
            // Reuse the last call's slot, whose line this client holds since
            // it read the reply there; the server looks there too.
            0 if self.next_call > 1 => {
                self.next_index = previous_index(self.next_index, self.slots.len());
                self.oldest_index = self.next_index;
            }
            _ => {}
        }
        let slot = &self.slots[self.next_index];
        // SAFETY: no outstanding call holds this slot (they hold the slots
        // from `oldest_index` to just before `next_index`, fewer than
        // `capacity`), so the call that used it last, if any, has been
        // answered and its reply taken, after this client saw the reply
        // word with Acquire; the server does not touch the slot again until
        // it sees the request word stored below, after the payload.
        unsafe { slot.payload.write(*request) };
        slot.control
            .store(request_word(self.next_call), Ordering::Release);
        self.next_call += 1;
        self.next_index = next_index(self.next_index, self.slots.len());
        Ok(())
    }

    /// Makes the calls made so far count for the sleep handshake: if the
    /// server announced that it sleeps, the caller must wake it.
    #[inline]
    pub fn flush(&self) -> Wake {
        self.header.server_sleeping.claim()
    }

    /// [`try_call`](Self::try_call) then [`flush`](Self::flush).
    #[inline]
    pub fn call(&mut self, request: &Payload) -> Result<Wake, Full> {
        self.try_call(request)?;
        Ok(self.flush())
    }

    #[inline]
    fn oldest_slot(&self) -> &Slot {
        &self.slots[self.oldest_index]
    }

    /// Whether the reply to the oldest outstanding call has arrived. With
    /// no call outstanding, `oldest` is the number of the next call, whose
    /// reply word no slot can hold yet.
    #[inline]
    pub fn has_reply(&self) -> bool {
        self.oldest_slot().control.load(Ordering::Acquire) == reply_word(self.oldest)
    }

    /// The reply to the oldest outstanding call, if it has arrived. Taking
    /// it frees the call's slot.
    #[inline]
    pub fn poll_reply(&mut self) -> Option<Payload> {
        if !self.has_reply() {
            return None;
        }
        // SAFETY: the reply word, stored by the server after the reply's
        // payload, has been seen with Acquire; the server does not touch the
        // slot again until this client writes its next request there.
        let reply = unsafe { self.oldest_slot().payload.read() };
        self.oldest += 1;
        self.oldest_index = next_index(self.oldest_index, self.slots.len());
        Some(reply)
    }

    /// Announces that this client is about to sleep until a reply comes,
    /// then looks for the reply once more. `true`: none came, and the
    /// server's next reply will say [`Wake::Needed`]; the caller may sleep.
    /// `false`: a reply came in the meantime; the announcement is withdrawn.
    pub fn prepare_to_sleep(&mut self) -> bool {
        self.header
            .client_sleeping
            .prepare_to_sleep(|| self.has_reply())
    }

    /// Withdraws a sleep announcement, after waking for whatever reason.
    pub fn woken(&self) {
        self.header.client_sleeping.withdraw();
    }
}

/// A request the server has taken and not yet answered. The client waits
/// for the reply, and its slot stays taken until then, so every request
/// must be answered, once, through [`CallServer::reply`].
#[must_use = "the client waits for a reply to every request"]
#[derive(Debug)]
pub struct Request<'m> {
    header: &'m CallHeader,
    slot: &'m Slot,
    call: u64,
    payload: Payload,
}

impl Request<'_> {
    pub fn payload(&self) -> &Payload {
        &self.payload
    }
}

/// The answering end. It polls the slot of the next call for its request,
/// and writes each reply into the slot its request came in.
/// Aligned as [`CallClient`] is, for the same reason.
#[derive(Debug)]
#[repr(align(128))]
pub struct CallServer<'m> {
    header: &'m CallHeader,
    slots: &'m [Slot],
    /// Number of the next call expected.
    next: u64,
    /// The slot after the previous call's: where the next call is if the
    /// client made it while the previous one was outstanding. Otherwise
    /// the client reused the previous call's slot, the one before this.
    index: usize,
}

impl<'m> CallServer<'m> {
    /// The server end of a call channel whose client lives elsewhere.
    ///
    /// # Safety
    /// As for [`CallClient::attach`]: a fresh channel, and at most one server.
    ///
    /// # Panics
    /// If `slots` is empty.
    pub unsafe fn attach(header: &'m CallHeader, slots: &'m [Slot]) -> Self {
        assert!(!slots.is_empty(), "a call channel needs at least one slot");
        Self {
            header,
            slots,
            next: 1,
            index: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The slot of the next call's request, if it has arrived: the
    /// previous call's slot (reused) or the one after it. Every call has its
    /// own number, so only the slot the client chose can hold its word.
    #[inline]
    fn request_slot(&self) -> Option<usize> {
        let word = request_word(self.next);
        let reused = previous_index(self.index, self.slots.len());
        [reused, self.index]
            .into_iter()
            .find(|&index| self.slots[index].control.load(Ordering::Acquire) == word)
    }

    /// Whether the next call's request has arrived.
    #[inline]
    pub fn has_request(&self) -> bool {
        self.request_slot().is_some()
    }

    /// The next call's request, if it has arrived.
    #[inline]
    pub fn try_recv(&mut self) -> Option<Request<'m>> {
        let index = self.request_slot()?;
        let slot = &self.slots[index];
        // SAFETY: the request word, stored by the client after the payload,
        // has been seen with Acquire; the client does not touch the slot
        // again until it sees the reply word, which only this request's
        // reply stores.
        let payload = unsafe { slot.payload.read() };
        let request = Request {
            header: self.header,
            slot,
            call: self.next,
            payload,
        };
        self.next += 1;
        self.index = next_index(index, self.slots.len());
        Some(request)
    }

    /// Writes the reply to `request` into its slot, without checking
    /// whether the client sleeps: call [`flush`](Self::flush) after a
    /// batch, before waiting on anything.
    ///
    /// # Panics
    /// If `request` came through another channel's server.
    #[inline]
    pub fn reply_unflushed(&self, request: Request<'m>, reply: &Payload) {
        assert!(
            ptr::eq(request.header, self.header),
            "a request is answered through the server that took it"
        );
        // SAFETY: the client stored the request word after writing the slot,
        // and `try_recv` saw it with Acquire (and copied the request out);
        // the client does not touch the slot again until it sees the reply
        // word stored below, after the payload. `request` is consumed here,
        // so the slot gets one reply.
        unsafe { request.slot.payload.write(*reply) };
        request
            .slot
            .control
            .store(reply_word(request.call), Ordering::Release);
    }

    /// Makes the replies written so far count for the sleep handshake: if
    /// the client announced that it sleeps, the caller must wake it.
    #[inline]
    pub fn flush(&self) -> Wake {
        self.header.client_sleeping.claim()
    }

    /// [`reply_unflushed`](Self::reply_unflushed) then [`flush`](Self::flush).
    ///
    /// # Panics
    /// If `request` came through another channel's server.
    #[inline]
    pub fn reply(&self, request: Request<'m>, reply: &Payload) -> Wake {
        self.reply_unflushed(request, reply);
        self.flush()
    }

    /// Announces that this server is about to sleep until a request comes,
    /// then looks once more. `true`: none came, and the client's next
    /// [`flush`](CallClient::flush) will say [`Wake::Needed`]; the caller may
    /// sleep. `false`: a request came in the meantime; the announcement is
    /// withdrawn.
    pub fn prepare_to_sleep(&mut self) -> bool {
        self.header
            .server_sleeping
            .prepare_to_sleep(|| self.has_request())
    }

    /// Withdraws a sleep announcement, after waking for whatever reason.
    pub fn woken(&self) {
        self.header.server_sleeping.withdraw();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ring::tests::{fresh_slots, message};
    use std::vec::Vec;

    fn answer(request: &Payload) -> Payload {
        request.map(|byte| !byte)
    }

    fn channel_memory(slots: usize) -> (CallHeader, Vec<Slot>) {
        (CallHeader::new(), fresh_slots(slots))
    }

    #[test]
    fn calls_are_answered_in_their_own_slot_across_wrap_around() {
        let (mut header, mut slots) = channel_memory(3);
        let (mut client, mut server) = call_channel(&mut header, &mut slots);
        for value in 0..20u8 {
            client.try_call(&message(value)).unwrap();
            assert_eq!(client.poll_reply(), None);
            let request = server.try_recv().unwrap();
            assert_eq!(request.payload(), &message(value));
            assert!(server.try_recv().is_none());
            server.reply_unflushed(request, &answer(&message(value)));
            assert_eq!(client.poll_reply(), Some(answer(&message(value))));
            assert_eq!(client.poll_reply(), None);
        }
    }

    #[test]
    fn one_call_at_a_time_keeps_to_one_slot_and_overlapping_calls_take_the_next() {
        let (mut header, mut slots) = channel_memory(4);
        {
            let (mut client, mut server) = call_channel(&mut header, &mut slots);
            for value in 1..=10 {
                client.try_call(&message(value)).unwrap();
                let request = server.try_recv().unwrap();
                server.reply_unflushed(request, &answer(&message(value)));
                assert_eq!(client.poll_reply(), Some(answer(&message(value))));
            }
            // Call 11 reuses the slot; call 12, made while 11 is
            // outstanding, takes the next one.
            client.try_call(&message(11)).unwrap();
            client.try_call(&message(12)).unwrap();
            for value in 11..=12 {
                let request = server.try_recv().unwrap();
                assert_eq!(request.payload(), &message(value));
                server.reply_unflushed(request, &answer(&message(value)));
            }
            assert_eq!(client.poll_reply(), Some(answer(&message(11))));
            assert_eq!(client.poll_reply(), Some(answer(&message(12))));
        }
        let words: Vec<u64> = slots
            .iter()
            .map(|slot| slot.control.load(Ordering::Relaxed))
            .collect();
        assert_eq!(words, [reply_word(11), reply_word(12), 0, 0]);
    }

    #[test]
    fn a_full_channel_refuses_until_a_reply_is_taken() {
        let (mut header, mut slots) = channel_memory(2);
        let (mut client, mut server) = call_channel(&mut header, &mut slots);
        client.try_call(&message(1)).unwrap();
        client.try_call(&message(2)).unwrap();
        assert_eq!(client.outstanding(), 2);
        assert_eq!(client.try_call(&message(3)), Err(Full));
        let first = server.try_recv().unwrap();
        server.reply_unflushed(first, &message(10));
        // Answered, but the slot is free only once the client takes the reply.
        assert_eq!(client.try_call(&message(3)), Err(Full));
        assert_eq!(client.poll_reply(), Some(message(10)));
        client.try_call(&message(3)).unwrap();
        // The server has not yet taken call 2, so call 3's request waits behind it.
        let second = server.try_recv().unwrap();
        assert_eq!(second.payload(), &message(2));
        let third = server.try_recv().unwrap();
        assert_eq!(third.payload(), &message(3));
        server.reply_unflushed(third, &message(30));
        server.reply_unflushed(second, &message(20));
        assert_eq!(client.poll_reply(), Some(message(20)));
        assert_eq!(client.poll_reply(), Some(message(30)));
        assert_eq!(client.outstanding(), 0);
    }

    #[test]
    fn replies_out_of_order_are_taken_in_call_order() {
        let (mut header, mut slots) = channel_memory(4);
        let (mut client, mut server) = call_channel(&mut header, &mut slots);
        for value in 1..=3 {
            client.try_call(&message(value)).unwrap();
        }
        let requests: Vec<_> = core::iter::from_fn(|| server.try_recv()).collect();
        let mut requests = requests.into_iter();
        let (first, second, third) = (
            requests.next().unwrap(),
            requests.next().unwrap(),
            requests.next().unwrap(),
        );
        server.reply_unflushed(third, &message(30));
        server.reply_unflushed(second, &message(20));
        // Call 1 is still unanswered, so nothing can be taken yet.
        assert_eq!(client.poll_reply(), None);
        server.reply_unflushed(first, &message(10));
        let replies: Vec<_> = core::iter::from_fn(|| client.poll_reply()).collect();
        assert_eq!(replies, [message(10), message(20), message(30)]);
    }

    #[test]
    fn a_sleeping_server_is_woken_by_a_call() {
        let (mut header, mut slots) = channel_memory(2);
        let (mut client, mut server) = call_channel(&mut header, &mut slots);
        assert!(server.prepare_to_sleep());
        assert_eq!(client.call(&message(1)), Ok(Wake::Needed));
        assert_eq!(client.call(&message(2)), Ok(Wake::NotNeeded));
        server.woken();
        let request = server.try_recv().unwrap();
        assert!(!server.prepare_to_sleep(), "call 2 is waiting");
        assert_eq!(server.reply(request, &message(10)), Wake::NotNeeded);
    }

    #[test]
    fn a_sleeping_client_is_woken_by_the_reply() {
        let (mut header, mut slots) = channel_memory(1);
        let (mut client, mut server) = call_channel(&mut header, &mut slots);
        let _ = client.call(&message(1));
        assert!(client.prepare_to_sleep());
        let request = server.try_recv().unwrap();
        assert_eq!(server.reply(request, &message(10)), Wake::Needed);
        client.woken();
        assert!(!client.prepare_to_sleep(), "the reply is waiting");
        assert_eq!(client.poll_reply(), Some(message(10)));
    }

    #[test]
    #[should_panic(expected = "answered through the server that took it")]
    fn a_request_cannot_be_answered_by_another_channel() {
        let (mut header, mut slots) = channel_memory(1);
        let (mut other_header, mut other_slots) = channel_memory(1);
        let (mut client, mut server) = call_channel(&mut header, &mut slots);
        let (_, other_server) = call_channel(&mut other_header, &mut other_slots);
        client.try_call(&message(1)).unwrap();
        let request = server.try_recv().unwrap();
        other_server.reply_unflushed(request, &message(10));
    }
}
