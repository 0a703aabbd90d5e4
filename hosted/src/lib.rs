//! Atoll in hosted mode: URPC rings between Linux threads, or processes,
//! pinned to real cores, so that the channel's costs can be measured on real
//! hardware rather than on QEMU's emulated machine.
//!
//! A [`Ring`] lays one URPC ring out in a shared mapping (`MAP_SHARED`), so
//! the same ring works between two threads and between a process and a child
//! it forks ([`fork_peer`]). A receiver with nothing to do can sleep on a
//! futex; the sender wakes it when the ring's sleep handshake says so
//! ([`atoll_urpc::Wake::Needed`]) — the hosted stand-in for the kernel's IPI.
//!
//! It depends on `atoll-urpc` and `libc`. `unsafe` appears only where Linux
//! is asked for something: the mapping, the futex, CPU affinity and `fork`.
//! The benchmarks (`benches/urpc`, run by `cargo xtask bench urpc`) also live
//! here.
#![deny(unsafe_op_in_unsafe_fn)]

mod affinity;
mod futex;
mod process;
mod ring;
mod shared_memory;

pub use affinity::{allowed_cpus, pin_current_thread};
pub use process::{Peer, fork_peer};
pub use ring::{Receiver, Ring, Sender};
pub use shared_memory::SharedMemory;
