//! A URPC ring in a shared mapping, with the futex wake path attached.
//!
//! Layout, in cache lines: the ring header's two lines (the receiver's
//! consumed count and its sleep announcement), the doorbell, then the slots.
//! Every line is written by one side only, except the sleep line, which the
//! handshake swaps from both sides on purpose, and the doorbell, which only
//! the sender writes.

use std::io;

use atoll_urpc::{Payload, RingHeader, Wake};

use crate::futex::Doorbell;
use crate::shared_memory::ChannelMemory;

/// What precedes the slots.
#[repr(C)]
#[derive(Debug, Default)]
struct Control {
    header: RingHeader,
    doorbell: Doorbell,
}

/// One ring's memory: a shared mapping, so that a child forked after
/// [`split`](Ring::split) can use one end while this process uses the other.
#[derive(Debug)]
pub struct Ring {
    memory: ChannelMemory<Control>,
}

impl Ring {
    /// A ring of `depth` slots (messages in flight).
    pub fn new(depth: usize) -> io::Result<Ring> {
        Ok(Ring {
            memory: ChannelMemory::new(depth, "ring")?,
        })
    }

    /// Resets the ring and returns its two ends.
    pub fn split(&mut self) -> (Sender<'_>, Receiver<'_>) {
        let (Control { header, doorbell }, slots) = self.memory.parts();
        let doorbell = &*doorbell;
        let (sender, receiver) = atoll_urpc::channel(header, slots);
        (
            Sender {
                ring: sender,
                doorbell,
            },
            Receiver {
                ring: receiver,
                doorbell,
            },
        )
    }
}

/// The sending end, which wakes a receiver that sleeps.
#[derive(Debug)]
pub struct Sender<'m> {
    ring: atoll_urpc::Sender<'m>,
    doorbell: &'m Doorbell,
}

impl Sender<'_> {
    /// The sleep handshake for everything sent so far: wakes the receiver
    /// if it announced that it sleeps. Returns whether it did.
    #[inline]
    pub fn flush(&self) -> Wake {
        self.doorbell.ring_if_needed(self.ring.flush())
    }

    /// Sends one message, waiting while the ring is full, then flushes.
    #[inline]
    pub fn send(&mut self, payload: &Payload) -> Wake {
        self.send_with(|slot| *slot = *payload)
    }

    /// Sends one message written in place by `fill` (see
    /// [`atoll_urpc::Sender::try_send_with`]), waiting while the ring is
    /// full, then flushes. `fill` runs once, when there is room.
    #[inline]
    pub fn send_with(&mut self, fill: impl FnMut(&mut Payload)) -> Wake {
        self.send_unflushed_with(fill);
        self.flush()
    }

    /// Sends one message, waiting while the ring is full, without the
    /// handshake: for a batch that ends with [`flush`](Self::flush), or for
    /// a receiver that never sleeps.
    #[inline]
    pub fn send_unflushed(&mut self, payload: &Payload) {
        self.send_unflushed_with(|slot| *slot = *payload);
    }

    /// Sends one message if the ring has room, without the handshake;
    /// whether it did. For a host that queues what does not fit rather
    /// than wait (two senders waiting on each other's full rings would
    /// never stop).
    #[inline]
    pub fn try_send_unflushed(&mut self, payload: &Payload) -> bool {
        self.ring.try_send_with(|slot| *slot = *payload).is_ok()
    }

    /// [`send_with`](Self::send_with) without the handshake, as
    /// [`send_unflushed`](Self::send_unflushed).
    #[inline]
    pub fn send_unflushed_with(&mut self, mut fill: impl FnMut(&mut Payload)) {
        // `try_send_with` calls `fill` only when it sends.
        if self.ring.try_send_with(&mut fill).is_ok() {
            return;
        }
        // A receiver asleep on unflushed messages would never free a slot.
        let _ = self.flush();
        while self.ring.try_send_with(&mut fill).is_err() {
            std::hint::spin_loop();
        }
    }
}

/// The receiving end, which can sleep on the futex when the ring is empty.
#[derive(Debug)]
pub struct Receiver<'m> {
    ring: atoll_urpc::Receiver<'m>,
    doorbell: &'m Doorbell,
}

impl Receiver<'_> {
    #[inline]
    pub fn try_recv(&mut self) -> Option<Payload> {
        self.ring.try_recv()
    }

    /// Polls until a message arrives, never sleeping: the sender need not
    /// flush for this receiver.
    #[inline]
    pub fn recv_polling(&mut self) -> Payload {
        loop {
            if let Some(payload) = self.ring.try_recv() {
                return payload;
            }
            std::hint::spin_loop();
        }
    }

    /// Polls up to `spins` times, then sleeps until a sender's flush wakes
    /// it, and so on until a message arrives.
    pub fn recv(&mut self, spins: u32) -> Payload {
        self.doorbell.wait_for(
            &mut self.ring,
            spins,
            atoll_urpc::Receiver::try_recv,
            atoll_urpc::Receiver::prepare_to_sleep,
            atoll_urpc::Receiver::woken,
        )
    }
}
