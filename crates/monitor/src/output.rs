//! What a host feeds a monitor and what a monitor asks of its host.

use alloc::string::String;
use alloc::vec::Vec;

use atoll_proto::CoreId;
use atoll_urpc::Payload;

use crate::bench::messages::Measure;
use crate::calls::{CallError, OpRef, Ticket};
use crate::trace::TraceEvent;
use crate::wire::Wire;

/// One input for [`Monitor::step`](crate::Monitor::step).
#[derive(Debug)]
pub enum Input<'a> {
    /// A slot from the ring `from` sends this core on.
    Slot { from: CoreId, slot: &'a Payload },
    /// One timer tick passed (10 ms in the kernel).
    Tick,
    /// The host has read every slot waiting in `core`'s ring to this one
    /// ([`Deferred::Drain`]).
    Drained(CoreId),
    /// The result of a [`Deferred::Measure`]: cycles, or `None` if the
    /// measurement could not be made (no answer in time).
    Measured { op: OpRef, cycles: Option<u64> },
}

/// What the host does on this core, in order, before it sends the step's
/// slots (they may acknowledge it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A change to this core's page tables or TLB from the mappings.
    Mapping(atoll_replica::Effect),
    /// A change to the page tables or TLB of process `pid`'s address space
    /// on this core, from its replicated mappings (`process::spaces`).
    ProcessMapping {
        pid: u32,
        effect: atoll_replica::Effect,
    },
    /// Print the trace events this core's host recorded.
    DumpTrace,
    /// This core was left out of view `epoch` while it still runs (it was
    /// suspected wrongly): stop it, as the members already count it
    /// stopped.
    Excluded { epoch: u32 },
    /// Start the rings between this core and `core` afresh (all-zero, as
    /// at boot) with new ends: `core` has stopped and is not a member, and
    /// its next kernel is about to start.
    ResetChannels { core: CoreId },
}

/// What the host does once the step's slots are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferred {
    /// Stop polling for `ms` milliseconds, as a slow core would.
    Stall { ms: u32 },
    /// Measure something only the host can (it spins on shared memory or
    /// waits for interrupts), then feed the result back as
    /// [`Input::Measured`] with `op`.
    Measure { op: OpRef, measure: Measure },
    /// Write a byte at `address`, another core's memory, as a stray pointer
    /// would: the host's page tables must make it fault.
    Scribble { address: u64 },
    /// Another core asks about this core's processes: carry out `request`
    /// (out of the step), then answer with `Monitor::process_answer` and
    /// `token`.
    Process {
        token: u32,
        request: crate::process::messages::ProcessRequest,
    },
    /// Another core tells this one about processes; no answer is owed.
    ProcessNote(crate::process::messages::ProcessNote),
    /// Read every slot waiting in `core`'s ring to this core, feeding each
    /// as an [`Input::Slot`], then say so with [`Input::Drained`]. `core`
    /// is being left out of the view, so it sends nothing more that counts.
    Drain { core: CoreId },
}

/// What one step produced. The host acts on it in field order: effects,
/// then sends, then deferred work; completions go to their tickets' owners
/// and trace events to the host's ring. It may reuse the output after
/// draining every field.
#[derive(Debug, Default)]
pub struct Output {
    pub effects: Vec<Effect>,
    /// Slots to put in the rings, in order per peer; never to this core.
    pub sends: Vec<(CoreId, Payload)>,
    pub deferred: Vec<Deferred>,
    pub completions: Vec<(Ticket, Result<Wire, CallError>)>,
    /// Only while tracing is on.
    pub trace: Vec<TraceEvent>,
    /// Lines for the console about this core's monitor (dropped messages,
    /// rejected facts), without the `atoll: core N:` prefix.
    pub notices: Vec<String>,
    /// The ends of the changes the host proposed for its processes'
    /// spaces (`Monitor::propose_change`), with the host's tokens.
    pub changes: Vec<(u64, atoll_replica::Completion)>,
}
