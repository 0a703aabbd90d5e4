//! The messages of the `control` service.

atoll_iface::interface! {
    /// Round trips, tracing and stalls.
    pub interface ControlMessage {
        /// One URPC round trip.
        Ping {} -> Pong {}
        /// Measure `rounds` round trips from the receiving core to `peer`
        /// and report them in TSC cycles.
        PingPeer { peer: u16, rounds: u32 } -> PingReport {
            /// `PING_*`.
            status: u8,
            median: u64,
            min: u64,
            max: u64
        }
        /// Turn tracing on or off on the receiving core.
        TraceSet { on: bool } -> TraceSetDone {}
        /// Have the receiving core's host print its trace events, then
        /// answer.
        TraceDump {} -> TraceDumped {}
        /// Answer at once, then stop polling for `ms` milliseconds, as a
        /// slow core would.
        Stall { ms: u32 } -> Stalled {}
        /// Answer at once, then write a byte at `address` (another core's
        /// memory), as a stray pointer would: the write must fault.
        Scribble { address: u64 } -> Scribbled {}
        /// Report the receiving core's timer ticks and free frames, as its
        /// host last told its monitor (`Monitor::note_counters`).
        CoreReport {} -> CoreReported { ticks: u64, free_frames: u64 }
    }
}

/// `PingReport::status`.
pub const PING_DONE: u8 = 0;
pub const PING_PEER_NOT_RUNNING: u8 = 1;
pub const PING_NO_ANSWER: u8 = 2;
pub const PING_TO_ITSELF: u8 = 3;

impl PingReport {
    /// A report of no round trips, for `status`.
    pub fn refused(status: u8) -> Self {
        Self {
            status,
            median: 0,
            min: 0,
            max: 0,
        }
    }
}
