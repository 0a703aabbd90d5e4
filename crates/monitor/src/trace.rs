//! Trace events: what a monitor (and its host) records of the message flow
//! while tracing is on.
//!
//! The monitor emits an event for every message it sends and receives (with
//! its peer, call id, name and the link's sequence number), for every call
//! it makes (start and end: the operations of the trace), for protocol
//! phases, and for replies it drops. The host adds the events only it
//! sees: IPIs and faults. The host keeps them in a fixed-size ring on its
//! own core, stamped with the time the monitor was given (`tsc`).
//!
//! Sequence numbers make a send and its receive one flow: the `n`-th
//! message a core sends on the link to a peer is the `n`-th that peer
//! receives on the link from it, since links deliver in order. The
//! counters run whether tracing is on or not, so cores that turn tracing on
//! at different moments still agree; [`crate::Monitor::trace_start`] says
//! from which sequence number a core's sends were recorded.

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceKind {
    /// A message sent to `peer` (`call`, `name`, `seq`).
    Send,
    /// A message received from `peer` (`call`, `name`, `seq`).
    Receive,
    /// A call to `peer` started (`call`, `name`: the request).
    CallStart,
    /// A call ended (`call`, `name`: the request; `detail`: 0 answered,
    /// 1 no answer in time, 2 the core stopped, 3 the core was not running).
    CallEnd,
    /// A protocol phase (`name`), of operation `detail` (a protocol
    /// operation id: origin core in the top 32 bits, sequence below).
    Phase,
    /// A reply or slot from `peer` dropped on arrival (`call`, `name`:
    /// why).
    Drop,
    /// An inter-processor interrupt sent to `peer` (`detail`: the vector).
    Ipi,
    /// An exception on this core (`detail`: the vector).
    Fault,
}

impl TraceKind {
    pub fn name(self) -> &'static str {
        match self {
            TraceKind::Send => "send",
            TraceKind::Receive => "recv",
            TraceKind::CallStart => "call",
            TraceKind::CallEnd => "end",
            TraceKind::Phase => "phase",
            TraceKind::Drop => "drop",
            TraceKind::Ipi => "ipi",
            TraceKind::Fault => "fault",
        }
    }
}

/// One recorded event. Fixed in size, so that a ring of them needs no
/// allocation per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceEvent {
    /// The time of the step that produced it (TSC cycles in the kernel).
    pub tsc: u64,
    pub kind: TraceKind,
    pub peer: u16,
    pub call: u32,
    pub seq: u32,
    pub name: &'static str,
    pub detail: u64,
}

impl TraceEvent {
    pub fn new(tsc: u64, kind: TraceKind, name: &'static str) -> Self {
        Self {
            tsc,
            kind,
            peer: 0,
            call: 0,
            seq: 0,
            name,
            detail: 0,
        }
    }
}

/// Codes of `CallEnd`'s `detail`.
pub const ANSWERED: u64 = 0;
pub const NO_ANSWER: u64 = 1;
pub const STOPPED: u64 = 2;
pub const NOT_RUNNING: u64 = 3;
