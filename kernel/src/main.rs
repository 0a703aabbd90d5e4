//! Atoll's kernel: the CPU driver and OS node that every core runs, one
//! instance per core (design.md §1). The boot core brings the machine up and
//! runs the serial shell; after start-up all cores are peers that share
//! nothing but the few statics listed in [`shared`].
//!
//! It may depend on the host-testable crates (`atoll-firmware`,
//! `atoll-frames`, `atoll-shell`); they never depend on it.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

#[macro_use]
mod console;

/// The one architecture Atoll runs on; the path keeps room for others.
#[path = "arch/x86_64/mod.rs"]
mod arch;
mod boot;
mod channels;
mod fig3;
mod messages;
mod node;
mod shared;
mod shell;
mod shootdown;
mod skb;
mod trap;
mod vm;
