//! URPC: the message channels between Atoll's cores.
//!
//! A channel is a one-way ring of 64-byte, cache-line-aligned slots in memory
//! both cores reach. Each slot carries 56 payload bytes and an 8-byte
//! sequence number that the sender writes last; the receiver polls the
//! sequence number of the slot it expects next, so a stale slot from an
//! earlier lap can never pass for a fresh one. Flow control is by
//! acknowledgement: the receiver publishes how many messages it has consumed
//! on a line of its own, every half ring, and the sender reads that line only
//! when the ring looks full. In the steady state no line is written by both
//! cores. A duplex link is two rings.
//!
//! A receiver that wants to sleep announces it on a third line and checks the
//! ring once more; a sender that finds the announcement after publishing asks
//! its host to wake the receiver (an IPI in the kernel, a futex in hosted
//! mode). Both sides make their announcement with a read-modify-write of
//! that line, after their own store, so at least one of them sees the
//! other: no wake-up is lost (see `docs/urpc.md` and the loom model).
//!
//! This crate is, with the kernel's arch layer, where Atoll allows `unsafe`:
//! the payload bytes are plain memory whose exclusive use the protocol, not
//! the type system, guarantees. It depends on `core` only (and on `loom` when
//! built with `--cfg loom`), and touches no hardware: waking is the host's job.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(test)]
extern crate std;

mod ring;
mod sync;

pub use ring::{Full, Receiver, RingHeader, Sender, Slot, Wake, channel};

/// Bytes in one slot: one cache line.
pub const SLOT_SIZE: usize = 64;
/// Payload bytes in one slot; the rest is the sequence number.
pub const PAYLOAD_SIZE: usize = 56;
/// The payload of one message.
pub type Payload = [u8; PAYLOAD_SIZE];
