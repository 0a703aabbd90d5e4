//! The messages OS nodes exchange over URPC, declared once as an
//! `atoll-iface` interface: the layouts, encoding, decoding and the
//! fragment framing come from the declaration.

atoll_iface::interface! {
    /// Messages between the OS nodes of two cores.
    pub interface NodeMessage {
        /// A URPC round trip: answered with a `Pong` carrying the same token.
        Ping { token: u64 } -> Pong { token: u64 }
        /// From the shell's core: measure `rounds` URPC round trips to
        /// `peer` and answer with a `PingReport` (or `Refused`).
        PingPeer { peer: u32, rounds: u32 } -> PingReport { peer: u32, median: u64, min: u64, max: u64 }
        /// From the shell's core: run every `urpc bench` measurement against
        /// `peer` and answer with a `BenchReport` (or `Refused`). Medians in
        /// TSC cycles; the stream figure is cycles per one-way message.
        BenchPeer { peer: u32 } -> BenchReport {
            peer: u32,
            urpc_round_trip: u64,
            ipi_round_trip: u64,
            shared_line_round_trip: u64,
            stream_per_message: u64
        }
        /// One message of a throughput stream of `total`.
        Stream { index: u32, total: u32 }
        /// The receiver of a stream got all of it.
        StreamDone { received: u32 }
        /// Join a ping-pong of `rounds` on the spare line of the ring from
        /// the sender to this core.
        SharedLine { rounds: u32 }
        /// A measurement request could not be carried out.
        Refused { reason: u8 }
        /// A message of the agreement protocols (`atoll-node`), in its own
        /// fixed encoding.
        Protocol { body: [u8; 48] }
        /// From the shell's core: propose mapping (`change` 0) or unmapping
        /// (1) page `page` of the test space, and report how it ended.
        VmPropose { change: u8, page: u32 } -> VmDone { page: u32, outcome: u8, acked: u16, unreached: u16 }
        /// From the shell's core: propose `operations` random maps and
        /// unmaps of the first `pages` pages at once, wait for them all, and
        /// report.
        VmStorm { operations: u32, pages: u32, seed: u32 } -> VmStormDone { committed: u32, aborted: u32 }
        /// From the shell's core: report this core's replica.
                        VmHash { space: u32 } -> VmHashReply { hash: u64, mapped: u32 }
        /// From the shell's core: cores `first` to `last` now hold the test
        /// space (sent only while no core has anything mapped in it).
        VmSpan { first: u32, last: u32 }
        /// From the shell's core: make `updates` updates of `lines` cache
        /// lines, by `method` (0: under the shared lock; 1: by messages to
        /// the shell's core, which owns its copy), and report the cycles per
        /// update.
        Fig3Run { method: u8, lines: u8, updates: u32 } -> Fig3Done { cycles_per_update: u64 }
        /// Update `lines` lines of the owner's structure and answer.
        Fig3Update { lines: u8 } -> Fig3Updated { lines: u8 }
        /// From the boot core: measure `samples` round trips to every other
        /// running core, send each of them this core's own facts (CPUID,
        /// the round trips' medians) for its knowledge base replica, and
        /// report how many `SkbFacts` batches each was sent.
        SkbGather { samples: u32 } -> SkbGathered { batches: u32 }
        /// Facts for the receiver's knowledge base replica, as program text.
        SkbFacts { text: atoll_iface::Bytes<480> }
        /// From the boot core: once `batches` batches of facts have come,
        /// report the replica.
        SkbReady { batches: u32 } -> SkbLoaded { facts: u32, hash: u64 }
        /// From the boot core, once every replica reported the same `hash`:
        /// with `install`, install the multicast trees this replica gives if
        /// its hash is that one, and say whether it did; without, go back to
        /// no trees (planned rounds unicast), because some core could not.
        SkbInstall { hash: u64, install: bool } -> SkbInstalled { installed: bool }
    }
}

/// Why a measurement request was refused, in `Refused::reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Refusal {
    PeerNotRunning = 1,
    NoAnswer = 2,
}

impl Refusal {
    pub fn text(reason: u8) -> &'static str {
        match reason {
            r if r == Self::PeerNotRunning as u8 => "the peer is not running",
            r if r == Self::NoAnswer as u8 => "the peer stopped answering",
            _ => "refused for an unknown reason",
        }
    }
}

impl From<Refusal> for NodeMessage {
    fn from(reason: Refusal) -> Self {
        Refused {
            reason: reason as u8,
        }
        .into()
    }
}
