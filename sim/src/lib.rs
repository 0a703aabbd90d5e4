//! A deterministic simulator and an exhaustive model checker for Atoll's
//! protocols and replicated state (`docs/architecture.md` §2.3).
//!
//! Both run the replicators of `atoll-replica` (and through them the protocols of
//! `atoll-proto`) unchanged, on one thread, in a [`World`] that holds the
//! cores, the channels between them (in order per pair of cores, as URPC
//! rings are), each core's page table and TLB, and the invariants.
//! [`random::run`] walks one schedule that a seed picks; [`explore::explore`]
//! walks every schedule of a small scenario. Nothing here reads a clock or
//! iterates a hash map, so a seed replays bit for bit.
//!
//! This crate is a host program: it uses `std` and depends on `atoll-replica`
//! and `atoll-proto`; nothing depends on it.

pub mod explore;
mod memory;
pub mod monitors;
pub mod random;
pub mod seeded;
pub mod world;

pub use seeded::Violation;
pub use world::{Action, Scenario, Tally, World};
