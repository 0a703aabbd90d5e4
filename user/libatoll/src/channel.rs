//! Channels between processes: URPC rings in a page both map, sent and
//! received on with no system call, the same rings the kernel's cores use
//! (`atoll-urpc`).
//!
//! A channel's page holds two rings: the first half from its creator to the
//! other end, the second back. Sending writes a slot; receiving polls one.
//! A receiver with nothing to do announces that it sleeps on its ring and
//! waits in the kernel (`WaitNotify`); a sender that finds the announcement
//! after it sent asks the kernel to wake it (`Notify`), which for a process
//! on another core is a message that wakes that core only if it sleeps.
//! Neither side enters the kernel while the other is awake.
//!
//! Each end is named by an endpoint capability: the creator gets its own
//! when the channel is made, and the other end connects with the creator's
//! (or a copy of it with [`RIGHT_CONNECT`](crate::RIGHT_CONNECT), handed at
//! spawn or granted), and so gets its own.

use atoll_urpc::{Payload, Receiver, RingHeader, SLOT_SIZE, Sender, Slot, Wake};

use crate::{Call, Cap, Change, Error, answer, syscall};
use atoll_abi::CHANNEL_RING_BYTES;

/// Slots in each ring: what a half page holds after the ring's header.
const SLOTS: usize = (CHANNEL_RING_BYTES as usize - core::mem::size_of::<RingHeader>()) / SLOT_SIZE;

/// How many polls a receiver makes before it sleeps.
const SPIN_POLLS: u32 = 2_000;

/// Asks for a channel at `address` of this process; it is there once the
/// change has ended, whose value is this process's endpoint (with every
/// right): [`Channel::open`] it then, as the creator.
pub fn create(address: u64) -> Result<Change, Error> {
    let token = answer(syscall(Call::ChannelCreate, [address, 0, 0, 0]))?;
    Ok(Change::new(token))
}

/// Asks to connect to the channel whose creator's end the capability
/// `endpoint` names (with [`RIGHT_CONNECT`](crate::RIGHT_CONNECT)), mapped
/// at `mine` here; it is there once the change has ended, whose value is
/// this process's own endpoint: [`Channel::open`] it then, as the other
/// end. Refused if the channel has its other end already.
pub fn connect(endpoint: Cap, mine: u64) -> Result<Change, Error> {
    let token = answer(syscall(Call::ChannelConnect, [endpoint, mine, 0, 0]))?;
    Ok(Change::new(token))
}

/// One end of a channel.
pub struct Channel {
    /// This process's endpoint, for `Notify` and `ChannelState`.
    endpoint: Cap,
    sender: Sender<'static>,
    receiver: Receiver<'static>,
}

/// The header and slots of the ring at `base`.
fn ring(base: u64) -> (&'static RingHeader, &'static [Slot]) {
    // SAFETY: `base` is the start of one half of a channel's page, which
    // this process maps writable for as long as it runs (the kernel refuses
    // to unmap it), zeroed when the channel was made: a `RingHeader` (all
    // zeros is a fresh one) then `SLOTS` fresh slots fit in the half, at
    // their alignment (the page's start, and the header's size, are
    // multiples of 64). The other end reaches the same memory only through
    // the ring's protocol.
    unsafe {
        let header = &*(base as *const RingHeader);
        let slots = core::slice::from_raw_parts(
            (base + core::mem::size_of::<RingHeader>() as u64) as *const Slot,
            SLOTS,
        );
        (header, slots)
    }
}

impl Channel {
    /// This process's end of the channel mapped at `address`, once its
    /// change has ended: the creator's (`creator`) or the other, with this
    /// process's `endpoint` (the change's value). Open each end once: a
    /// ring has one sender and one receiver.
    pub fn open(address: u64, creator: bool, endpoint: Cap) -> Channel {
        let (first, second) = (address, address + CHANNEL_RING_BYTES);
        let (outgoing, incoming) = match creator {
            true => (first, second),
            false => (second, first),
        };
        let (out_header, out_slots) = ring(outgoing);
        let (in_header, in_slots) = ring(incoming);
        // SAFETY: the rings are fresh (zeroed at creation), and this end is
        // the only sender on `outgoing` and the only receiver on `incoming`
        // (each end opens once).
        let (sender, receiver) = unsafe {
            (
                Sender::attach(out_header, out_slots),
                Receiver::attach(in_header, in_slots),
            )
        };
        Channel {
            endpoint,
            sender,
            receiver,
        }
    }

    /// This process's endpoint of the channel (to grant over it).
    pub fn endpoint(&self) -> Cap {
        self.endpoint
    }

    /// Whether the other end is there (or may still come): `false` once it
    /// has ended.
    pub fn other_end(&self) -> bool {
        syscall(Call::ChannelState, [self.endpoint, 0, 0, 0]) == 0
    }

    /// Sends `payload`, waiting (yielding) while the ring is full, and wakes
    /// the other end if it sleeps; `Closed` if the other end has ended.
    pub fn send(&mut self, payload: &Payload) -> Result<(), Closed> {
        while self.sender.try_send(payload).is_err() {
            if !self.other_end() {
                return Err(Closed);
            }
            crate::yield_now();
        }
        if self.sender.flush() == Wake::Needed {
            // The other end announced that it sleeps.
            syscall(Call::Notify, [self.endpoint, 0, 0, 0]);
        }
        Ok(())
    }

    /// A message, if one is there.
    pub fn try_recv(&mut self) -> Option<Payload> {
        self.receiver.try_recv()
    }

    /// The next message if one comes before the time `deadline` (ns since
    /// the machine started, as [`time`](crate::time) says): polls, giving
    /// the core to others in between, and never sleeps in the kernel. For
    /// the first message of an end that may never connect (its process
    /// ended first), which [`recv`](Self::recv) would wait for for ever.
    pub fn recv_before(&mut self, deadline: u64) -> Option<Payload> {
        loop {
            if let Some(payload) = self.receiver.try_recv() {
                return Some(payload);
            }
            if crate::time() >= deadline || !self.other_end() {
                return self.receiver.try_recv();
            }
            crate::yield_now();
        }
    }

    /// The next message: polls for a while, then sleeps in the kernel until
    /// the other end wakes it; `None` once the other end has ended and
    /// everything it sent is taken. (As [`recv`](Self::recv) without an
    /// executor, and with no system call on the way to sleep but the wait.)
    pub fn recv_blocking(&mut self) -> Option<Payload> {
        loop {
            for _ in 0..SPIN_POLLS {
                if let Some(payload) = self.receiver.try_recv() {
                    return Some(payload);
                }
                core::hint::spin_loop();
            }
            if !self.other_end() {
                // It sent nothing after it ended: one last look.
                return self.receiver.try_recv();
            }
            if self.receiver.prepare_to_sleep() {
                // The kernel wakes it if the other end ends meanwhile.
                syscall(Call::WaitNotify, [0; 4]);
            }
            self.receiver.woken();
        }
    }
}

impl Channel {
    /// The next message as a future, for an executor (`recv().await`, or
    /// [`block_on`](crate::block_on)):
    /// ready with it, or with `None` once the other end has ended and
    /// everything it sent is taken. While it is pending, its end has
    /// announced on the ring that it sleeps, so the other end notifies it,
    /// and the executor sleeps in `WaitEvent`, which a notification ends as
    /// a change's end does.
    pub fn recv(&mut self) -> Recv<'_> {
        Recv {
            channel: self,
            sleeping: false,
        }
    }
}

/// [`Channel::recv`]'s future.
pub struct Recv<'a> {
    channel: &'a mut Channel,
    /// Whether it announced that it sleeps (withdrawn when polled again).
    sleeping: bool,
}

impl core::future::Future for Recv<'_> {
    type Output = Option<Payload>;

    fn poll(
        mut self: core::pin::Pin<&mut Self>,
        _context: &mut core::task::Context<'_>,
    ) -> core::task::Poll<Self::Output> {
        use core::task::Poll;
        if core::mem::take(&mut self.sleeping) {
            self.channel.receiver.woken();
        }
        loop {
            for _ in 0..SPIN_POLLS {
                if let Some(payload) = self.channel.receiver.try_recv() {
                    return Poll::Ready(Some(payload));
                }
                core::hint::spin_loop();
            }
            if !self.channel.other_end() {
                return Poll::Ready(self.channel.receiver.try_recv());
            }
            // A message that came while it announced is taken at once.
            if self.channel.receiver.prepare_to_sleep() {
                self.sleeping = true;
                return Poll::Pending;
            }
        }
    }
}

/// The other end of a channel has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;
