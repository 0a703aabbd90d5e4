//! URPC: the message channels between Atoll's cores.
//!
//! Two kinds of channel share one slot format, a 64-byte, cache-line-aligned
//! slot of 56 payload bytes and an 8-byte control word written last, in
//! memory both cores reach:
//!
//! - a **ring** ([`channel`], [`Sender`], [`Receiver`]), one-way, for
//!   messages and streams. The control word is the message's sequence
//!   number; the receiver polls the slot it expects next, so a stale slot
//!   from an earlier lap never passes for a fresh one. Flow control is by
//!   acknowledgement: the receiver publishes how many messages it has
//!   consumed on a line of its own, every half ring, and the sender reads
//!   that line only when the ring looks full, so in the steady state no line
//!   is written by both cores. A sender can write a message in place
//!   ([`Sender::try_send_with`]), and asks for the line of a slot a few
//!   messages ahead before it needs it.
//! - a **call channel** ([`call`]), for request and reply: the server writes
//!   its reply into the slot its request came in, so a call moves one line
//!   there and back, and one call at a time keeps to one slot.
//!
//! A side that wants to sleep announces it on a line of its own and looks
//! for work once more; the other side, after publishing, finds the
//! announcement and asks its host to wake the sleeper (an IPI in the kernel,
//! a futex in hosted mode). Both make their change to that line with a
//! read-modify-write, after their own store, so at least one of them sees
//! the other: no wake-up is lost (see `docs/urpc.md` and the loom models).
//!
//! The hot paths are `#[inline]`, so that hosts in other crates get them
//! without a call and without payloads copied through the stack.
//!
//! This crate is, with the kernel's arch layer, where Atoll allows `unsafe`:
//! the payload bytes are plain memory whose exclusive use the protocol, not
//! the type system, guarantees, and a prefetch is inline assembly. It
//! depends on `core` only (and on `loom` when built with `--cfg loom`), and
//! touches no device: waking is the host's job.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(test)]
extern crate std;

pub mod call;
mod prefetch;
mod ring;
mod sleep;
mod sync;

pub use call::{CallClient, CallHeader, CallServer, Request, call_channel};
pub use ring::{Full, Receiver, RingHeader, Sender, Slot, channel, reset};
pub use sleep::Wake;

/// Bytes in one slot: one cache line.
pub const SLOT_SIZE: usize = 64;
/// Payload bytes in one slot; the rest is the sequence number.
pub const PAYLOAD_SIZE: usize = 56;
/// The payload of one message.
pub type Payload = [u8; PAYLOAD_SIZE];
