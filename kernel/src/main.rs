//! Atoll's kernel: one instance per core, each the host of that core's
//! monitor (`atoll-monitor`). The boot core brings the machine up and runs
//! the serial shell; after start-up all cores are peers that share nothing
//! but the few things listed in [`shared`]. `docs/architecture.md` gives
//! the layers and what each part may touch.
//!
//! It may depend on arch (`atoll-arch`, which holds every `unsafe` of the
//! kernel), the monitor and the crates under it (`atoll-replica`,
//! `atoll-skb`, `atoll-iface`, `atoll-urpc`), and `atoll-firmware`,
//! `atoll-frames` and `atoll-shell`; nothing depends on it. It has no
//! `unsafe` of its own: the compiler holds it to that.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

#[macro_use]
mod console;

mod boot;
mod discover;
mod dispatch;
mod facts;
mod host;
mod knowledge;
mod measure;
mod process;
mod programs;
mod shared;
mod shell;
mod trace;
mod trap;

atoll_arch::entry!(boot::main);
