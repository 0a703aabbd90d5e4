//! Atoll in hosted mode: URPC rings between Linux threads, or processes,
//! pinned to real cores, so that the channel's costs can be measured on real
//! hardware rather than on QEMU's emulated machine.
//!
//! A [`Ring`] lays one URPC ring out in a shared mapping (`MAP_SHARED`), so
//! the same ring works between two threads and between a process and a child
//! it forks ([`fork_peer`]); a [`CallChannel`] does the same for a call
//! channel (request and reply in one slot). A side with nothing to do can
//! sleep on a futex; the other side wakes it when the sleep handshake says
//! so ([`atoll_urpc::Wake::Needed`]) — the hosted stand-in for the kernel's IPI.
//!
//! It depends on `atoll-urpc` and `libc`. `unsafe` appears only where Linux
//! is asked for something: the mapping, the futex, CPU affinity and `fork`.
//! The benchmarks (`benches/urpc`, run by `cargo xtask bench urpc`, and
//! `benches/scaling`, run by `cargo xtask bench fig3`, `replication` and
//! `sharing`) also live here.
#![deny(unsafe_op_in_unsafe_fn)]

mod affinity;
mod call;
mod futex;
mod process;
mod ring;
mod shared_memory;

pub use affinity::{allowed_cpus, pin_current_thread};
pub use call::{CallChannel, FutexCallClient, FutexCallServer};
pub use process::{Peer, fork_peer};
pub use ring::{Receiver, Ring, Sender};
pub use shared_memory::SharedMemory;
