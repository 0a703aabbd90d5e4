//! The messages of the `skb` service.

use atoll_iface::Bytes;

/// Bytes of program text per `SkbFacts` message (it takes several slots).
pub const BATCH_BYTES: usize = 480;

atoll_iface::interface! {
    /// Filling the knowledge base replicas.
    pub interface SkbMessage {
        /// Measure `samples` round trips to every other running core, send
        /// each of them this core's own facts (CPUID, the round trips'
        /// medians), and report how many `SkbFacts` batches each was sent.
        SkbGather { samples: u32 } -> SkbGathered { batches: u32 }
        /// Facts for the receiver's replica, as program text.
        SkbFacts { text: Bytes<BATCH_BYTES> }
        /// Once `batches` batches of facts have come, report the replica.
        SkbReady { batches: u32 } -> SkbLoaded { facts: u32, hash: u64 }
        /// With `install`, install the multicast plan this replica gives if
        /// its hash is `hash`, and say whether it did; without, go back to
        /// no plan (planned rounds go unicast), because some core could not.
        SkbInstall { hash: u64, install: bool } -> SkbInstalled { installed: bool }
    }
}
