//! The latency model: what the protocols cost on machines larger than any
//! this project can borrow, up to 1024 cores.
//!
//! TCG counts the emulator's instructions, not the caches', and the
//! development machines have two cores, so neither says how a shootdown or
//! a two-phase commit scales. The model runs the real protocol code (one
//! `atoll-replica` replicator per core, with `atoll-proto`'s two-phase
//! commit and multicast, as each monitor's `vm` service runs them) on a
//! machine described by knowledge-base facts ([`topology`]), and charges
//! every event its cycles: a message as the cache-line transfers Table 1
//! of the multikernel paper gives for the distance between sender and
//! receiver, plus the software costs of [`costs`]. The shared-memory
//! baselines are modelled with the same transfers ([`baselines`]).
//!
//! What it leaves out, and so cannot show: queueing in the interconnect
//! (transfers between different pairs never slow each other), cache
//! capacity (every line is where the last writer left it), prefetching and
//! the store buffer (a sender waits for each line it writes), and the
//! whole monitor around the replicator (its dispatch is one fixed cost per
//! message). `docs/benchmarks.md` states its parameters and what it found.

pub mod baselines;
pub mod costs;
pub mod plans;
pub mod protocols;
pub mod topology;

pub use costs::Costs;
pub use protocols::{Operation, Timed, run};
pub use topology::Topology;
