//! The messages of the `bench` service, and the measurements only a host
//! can make.

use alloc::vec::Vec;

use atoll_proto::CoreId;

/// Round trips per measurement of `urpc bench`.
pub const ROUNDS: u32 = 64;
/// Messages per throughput stream.
pub const STREAM_MESSAGES: u32 = 512;
/// How long a benchmark call may wait, in ticks.
pub(crate) const TIMEOUT: u64 = 3000;
/// `Fig3Run::method`.
pub const FIG3_SHARED_MEMORY: u8 = 0;
pub const FIG3_MESSAGES: u8 = 1;
/// The lines of the structure `bench fig3` updates.
pub const FIG3_LINES: usize = 8;
/// `BenchShootdown::method`, in the order `bench shootdown` prints them.
pub const SHOOTDOWN_METHODS: [&str; 4] = ["ipi-broadcast", "unicast", "flat-multicast", "skb-tree"];

/// `BenchReport::status` and `BenchShot::status`.
pub const BENCH_DONE: u8 = 0;
pub const BENCH_PEER_NOT_RUNNING: u8 = 1;
pub const BENCH_NO_ANSWER: u8 = 2;
pub const BENCH_INCOMPLETE: u8 = 3;
pub const BENCH_BAD_REQUEST: u8 = 4;

/// What a status means, in words.
pub fn status_text(status: u8) -> &'static str {
    match status {
        BENCH_DONE => "done",
        BENCH_PEER_NOT_RUNNING => "the peer is not running",
        BENCH_NO_ANSWER => "the peer stopped answering",
        BENCH_INCOMPLETE => "some targets did not confirm",
        BENCH_BAD_REQUEST => "the request names no such measurement here",
        _ => "unknown status",
    }
}

atoll_iface::interface! {
    /// The benchmarks' messages.
    pub interface BenchMessage {
        /// Run every `urpc bench` measurement from the receiving core to
        /// `peer`. Medians in TSC cycles; the stream figure is cycles per
        /// one-way message.
        BenchPeer { peer: u16 } -> BenchReport {
            status: u8,
            urpc_round_trip: u64,
            ipi_round_trip: u64,
            shared_line_round_trip: u64,
            stream_per_message: u64
        }
        /// Join a ping-pong of `rounds` on the spare line of the ring from
        /// the sender to this core.
        SharedLine { rounds: u32 }
        /// One message of a throughput stream.
        Stream {}
        /// The end of a stream: how many `Stream` messages came from the
        /// sender since its last `StreamEnd`.
        StreamEnd {} -> StreamCount { received: u32 }
        /// As a client of `bench fig3`: make `updates` updates of `lines`
        /// lines by `method` and report the cycles per update.
        Fig3Run { method: u8, lines: u8, updates: u32 } -> Fig3Done { cycles_per_update: u64 }
        /// Update `lines` lines of the owner's own copy of the structure.
        Fig3Update { lines: u8 } -> Fig3Updated {}
        /// On the boot core: invalidate a page in the TLBs of `targets`
        /// other cores by `method` (`SHOOTDOWN_METHODS`), and report the
        /// cycles it took.
        BenchShootdown { method: u8, targets: u16 } -> BenchShot { status: u8, cycles: u64 }
    }
}

/// What the host measures for the benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measure {
    /// `rounds` IPI round trips to `peer`, interrupt handler to interrupt
    /// handler: the median.
    IpiRoundTrips { peer: CoreId, rounds: u32 },
    /// `rounds` round trips on the spare line of the ring from this core to
    /// `peer`, which both write: the median.
    SharedLine { peer: CoreId, rounds: u32 },
    /// The peer's side of `SharedLine`: answer `rounds` times on the spare
    /// line of the ring from `lead` to this core. Its result is not used.
    SharedLineAnswer { lead: CoreId, rounds: u32 },
    /// `updates` updates of `lines` lines of the shared structure, each
    /// under the structure's lock: cycles per update.
    LockedUpdates { lines: u8, updates: u32 },
    /// Invalidate the benchmark's page in `targets`' TLBs by an IPI to
    /// each and one acknowledgement counter they all increment: cycles.
    IpiShootdown { targets: Vec<CoreId> },
}
