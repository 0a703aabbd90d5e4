//! A deterministic simulator and an exhaustive model checker for Atoll's
//! protocols, replicated state and monitors (`docs/architecture.md` §2.3).
//!
//! Two worlds run the real code unchanged, on one thread:
//! - [`World`] runs the replicators of `atoll-replica` (and through them the
//!   protocols of `atoll-proto`) with the channels between cores (in order
//!   per pair of cores, as URPC rings are), each core's page table and TLB,
//!   crashes, and the invariants. [`random::run`] walks one schedule that a
//!   seed picks; [`explore::explore`] walks every schedule of a small
//!   scenario.
//! - [`monitors::World`] runs whole `atoll-monitor` monitors over their
//!   links, with shells that make the kernel shell's calls;
//!   [`monitors::run`] walks one seeded schedule.
//!
//! A third, [`latency`], runs the replicators on modelled machines of up to 1024
//!   cores and charges every message and effect its cycles.
//!
//! [`seeded`] holds what seeded runs share. Nothing here reads a clock or
//! iterates a hash map, so a seed replays bit for bit.
//!
//! This crate is a host program: it uses `std` and depends on
//! `atoll-replica`, `atoll-proto`, `atoll-monitor` (with its `testing`
//! feature), `atoll-skb` and `atoll-urpc`; nothing depends on it.

pub mod explore;
pub mod latency;
mod memory;
pub mod monitors;
pub mod random;
pub mod seeded;
pub mod world;

pub use seeded::Violation;
pub use world::{Action, Scenario, Tally, World};
