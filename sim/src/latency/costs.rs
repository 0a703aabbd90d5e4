//! What each event costs, in cycles, on top of the line transfers the
//! [`Topology`](super::topology::Topology) gives.
//!
//! Table 1 of the multikernel paper gives the transfers; the rest is not
//! in it and is assumed here, each with its reason. They are one struct so
//! that a reader can change one and see what moves.

/// The model's parameters beyond Table 1's transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Costs {
    /// Software per message received: the monitor's dispatch, decoding
    /// and the protocol's step. Assumed; with it a one-way URPC message
    /// models at 440 cycles within a die, 560 one hop and 700 two hops
    /// away, against the 448, 545 and 558 the SOSP'09 paper measured on
    /// its 4 × 4-core AMD machine (its table of URPC latency).
    pub handle: u64,
    /// Software per message sent, before the line's transfer: encoding and
    /// the ring's bookkeeping. Assumed.
    pub send: u64,
    /// Writing a page-table entry: a line in this core's L2 (Table 1).
    pub pte_write: u64,
    /// `invlpg` of one page. Assumed.
    pub invlpg: u64,
    /// Sending one IPI through the xAPIC: the ICR write and the wait for
    /// its delivery status, paid per target by the sender. Assumed.
    pub ipi_send: u64,
    /// From the ICR write until the target takes the interrupt. Assumed.
    pub ipi_latency: u64,
    /// Taking an interrupt and returning from it, on the target. Assumed.
    pub interrupt: u64,
}

impl Costs {
    /// The parameters `docs/benchmarks.md` states and every recorded
    /// result used.
    pub const DEFAULT: Costs = Costs {
        handle: 150,
        send: 30,
        pte_write: 15,
        invlpg: 100,
        ipi_send: 500,
        ipi_latency: 1000,
        interrupt: 1400,
    };
}
