//! The messages of the `process` service.

use alloc::string::String;
use alloc::vec::Vec;

use atoll_iface::Bytes;
use atoll_proto::CoreId;
use atoll_proto::membership::Members;

pub use crate::catchup::messages::CoreSet;
use crate::vm::messages::Protocol;

/// The pages of a process one `ProcessPages` carries: 20 of 24 bytes each
/// (page, frame, flags; little-endian).
pub const PAGES_BYTES: usize = 480;
pub const PAGE_ENTRY_BYTES: usize = 24;

/// The longest program name a request carries (`atoll_programs::MAX_NAME`).
pub const PROGRAM_NAME_BYTES: usize = 32;
/// The most bytes of arguments a request carries (`atoll_abi::MAX_ARGS`).
pub const PROGRAM_ARGS_BYTES: usize = 256;
/// The most bytes of a capability on its way to another core's process
/// (`atoll_caps::Sent`, encoded).
pub const CAP_BYTES: usize = 90;
/// The most bytes of a core's process list in one answer.
pub const LIST_BYTES: usize = 480;

/// `ProgramEnded::outcome`: it called `exit` with `status`.
pub const ENDED_EXIT: u8 = 0;
/// It took exception `vector` (error code, instruction, address).
pub const ENDED_FAULT: u8 = 1;
/// It was killed (`KillProcess`).
pub const ENDED_KILLED: u8 = 2;
/// The core could not start it (no such program, a bad image, no memory,
/// or as many processes as it holds); its own line on the console says
/// why.
pub const ENDED_NOT_LOADED: u8 = 3;

/// `Spawned::outcome`: the process runs, as `pid`.
pub const SPAWNED: u8 = 0;
/// As `ENDED_NOT_LOADED`.
pub const SPAWN_FAILED: u8 = 1;

/// `Joined::outcome`: the core runs a dispatcher of the process, held.
pub const JOINED: u8 = 0;
/// It could not (no memory for its page tables, as many processes as it
/// holds); its own line says why.
pub const JOIN_FAILED: u8 = 1;

/// `ChannelFrame::outcome`: the channel's frame is `frame`, and the asker
/// its other end.
pub const CHANNEL_FOUND: u8 = 0;
/// No such channel, or it has its other end already.
pub const CHANNEL_NONE: u8 = 1;

/// `SpaceFrozen::outcome`: the core proposes no change of the space until
/// it hears `SpaceGrown`, and has none under way.
pub const FROZEN: u8 = 0;
/// It holds no dispatcher of that process.
pub const NOT_FROZEN: u8 = 1;

/// `Killed::outcome`: it was killed.
pub const KILLED: u8 = 0;
/// The core has no such process.
pub const KILL_NO_SUCH_PROCESS: u8 = 1;
/// It had ended already, and waits for its parent to wait for it.
pub const KILL_ENDED: u8 = 2;

atoll_iface::interface! {
    /// Processes of the receiving core: programs of the boot image it runs.
    pub interface ProcessMessage {
        /// Spawn program `name` with `args` on the receiving core, and say
        /// how it ended once it has.
        RunProgram { cores: CoreSet, name: Bytes<PROGRAM_NAME_BYTES>, args: Bytes<PROGRAM_ARGS_BYTES> } -> ProgramEnded {
            /// `ENDED_*`.
            outcome: u8,
            pid: u32,
            /// For a fault, the core it was taken on.
            core: u16,
            status: u64,
            vector: u64,
            error_code: u64,
            rip: u64,
            address: u64
        }
        /// Spawn program `name` with `args` on the receiving core, and say
        /// at once whether it runs; its end is reported on the console.
        SpawnProgram { cores: CoreSet, name: Bytes<PROGRAM_NAME_BYTES>, args: Bytes<PROGRAM_ARGS_BYTES> } -> Spawned {
            /// `SPAWNED` or `SPAWN_FAILED`.
            outcome: u8,
            pid: u32
        }
        /// Kill process `pid` of the receiving core.
        KillProcess { pid: u32 } -> Killed {
            /// `KILLED` or `KILL_*`.
            outcome: u8
        }
        /// The receiving core's processes, a line each.
        ListProcesses {} -> Processes { text: Bytes<LIST_BYTES> }
        /// A message of the replication protocols of process `pid`'s
        /// address space, between its holders' replicators.
        ReplicateSpace { pid: u32, message: Protocol }
        /// From a process's home core to a core it spans: pages of its
        /// space (as every holder maps them), before `JoinProcess`.
        ProcessPages { pid: u32, pages: Bytes<PAGES_BYTES> }
        /// From its home core: become one of the cores of process `pid`
        /// (program `name`, `args`), as dispatcher `index` of those in
        /// `cores`, with the pages sent before; its dispatcher waits for
        /// `StartProcess`.
        JoinProcess {
            pid: u32,
            index: u16,
            cores: CoreSet,
            entry: u64,
            name: Bytes<PROGRAM_NAME_BYTES>,
            args: Bytes<PROGRAM_ARGS_BYTES>
        } -> Joined {
            /// `JOINED` or `JOIN_FAILED`.
            outcome: u8
        }
        /// From its home core: every core has joined; run.
        StartProcess { pid: u32 }
        /// From its home core: end the dispatcher of `pid` here (the
        /// process is killed, or another dispatcher faulted).
        EndDispatcher { pid: u32 }
        /// To its home core: the dispatcher of `pid` here has ended as
        /// `outcome` says (`ENDED_*`, with the status or fault), and this
        /// core no longer maps the process's pages.
        DispatcherEnded {
            pid: u32,
            index: u16,
            outcome: u8,
            core: u16,
            status: u64,
            vector: u64,
            error_code: u64,
            rip: u64,
            address: u64
        }
        /// From its home core: no core maps `pid`'s pages any more; the
        /// frames of this core's pool it had are free.
        ProcessGone { pid: u32 }
        /// Process `by` (of the sending core) connects to the channel of
        /// process `pid` at `address`: the frame, or none.
        ChannelConnect { pid: u32, address: u64, by: u32 } -> ChannelFrame {
            /// `CHANNEL_FOUND` or `CHANNEL_NONE`.
            outcome: u8,
            frame: u64
        }
        /// Wake process `pid` of the receiving core if it waits for a
        /// notification (the other end of its channel sent to it).
        ChannelNotify { pid: u32 }
        /// The process that connected to `pid`'s channel at `address` (or
        /// asked to) lets go of it: it has ended and the sending core no
        /// longer maps its frame (`used` 1), or its connect did not take
        /// effect (0: the channel may take another other end).
        ChannelClosed { pid: u32, address: u64, used: u8 }
        /// Process `pid` of the sender, which created the channel at
        /// `address`, has ended: the process of the receiving core at its
        /// other end is alone.
        ChannelGone { pid: u32, address: u64 }
        /// Spawn `name` with `args` on the receiving core as a child of
        /// process `parent` of the sender, handing it the capability
        /// `handed` (none if empty), and say its id.
        SpawnChild {
            parent: u32,
            name: Bytes<PROGRAM_NAME_BYTES>,
            args: Bytes<PROGRAM_ARGS_BYTES>,
            handed: Bytes<CAP_BYTES>
        } -> ChildSpawned {
            /// `SPAWNED`, or `Error::NoSuchProgram`, `NotLoaded` or
            /// `TooManyProcesses` as its code (`atoll_abi`).
            outcome: u8,
            pid: u32
        }
        /// Process `child`, which process `parent` of the receiving core
        /// spawned on the sender, has ended as `ended` says.
        ChildEnded {
            parent: u32,
            child: u32,
            outcome: u8,
            core: u16,
            status: u64,
            vector: u64,
            error_code: u64,
            rip: u64,
            address: u64
        }
        /// A process of the sender grants process `pid` of the receiving
        /// core (the other end of its channel) the capability `cap`.
        CapGranted { pid: u32, cap: Bytes<CAP_BYTES> }
        /// Delete every capability made from the one of id `id` (its
        /// lineage holds it) in every process of the receiving core, and
        /// refuse any that arrives later; say how many were deleted.
        RevokeCaps { id: u64 } -> CapsRevoked { count: u32 }
        /// From its home core, before a core joins process `pid`: propose
        /// no change of its space from now on, and answer once none of
        /// this core's is under way.
        FreezeSpace { pid: u32 } -> SpaceFrozen {
            /// `FROZEN` or `NOT_FROZEN`.
            outcome: u8
        }
        /// From its home core: process `pid` spans `cores` now (its space's
        /// holders); propose changes again.
        SpaceGrown { pid: u32, cores: CoreSet }
    }
}

impl ProgramEnded {
    /// An outcome with no status or fault to report.
    pub fn only(outcome: u8, pid: u32) -> Self {
        Self {
            outcome,
            pid,
            core: 0,
            status: 0,
            vector: 0,
            error_code: 0,
            rip: 0,
            address: 0,
        }
    }
}

impl DispatcherEnded {
    /// Dispatcher `index` of `ended.pid` has ended as `ended` says.
    pub fn new(index: u16, ended: &ProgramEnded) -> Self {
        Self {
            pid: ended.pid,
            index,
            outcome: ended.outcome,
            core: ended.core,
            status: ended.status,
            vector: ended.vector,
            error_code: ended.error_code,
            rip: ended.rip,
            address: ended.address,
        }
    }

    /// The end it tells of.
    pub fn ended(&self) -> ProgramEnded {
        ProgramEnded {
            outcome: self.outcome,
            pid: self.pid,
            core: self.core,
            status: self.status,
            vector: self.vector,
            error_code: self.error_code,
            rip: self.rip,
            address: self.address,
        }
    }
}

impl ChildEnded {
    /// Child `ended.pid` of `parent` has ended as `ended` says.
    pub fn new(parent: u32, ended: &ProgramEnded) -> Self {
        Self {
            parent,
            child: ended.pid,
            outcome: ended.outcome,
            core: ended.core,
            status: ended.status,
            vector: ended.vector,
            error_code: ended.error_code,
            rip: ended.rip,
            address: ended.address,
        }
    }

    /// The end it tells of (its `pid` the child's).
    pub fn ended(&self) -> ProgramEnded {
        ProgramEnded {
            outcome: self.outcome,
            pid: self.child,
            core: self.core,
            status: self.status,
            vector: self.vector,
            error_code: self.error_code,
            rip: self.rip,
            address: self.address,
        }
    }
}

/// What another core asks of this core's processes, for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessRequest {
    /// Spawn `name` with `args` on `cores` (this one first); answer
    /// [`ProgramEnded`] when it ends.
    Run {
        cores: Members,
        name: String,
        args: String,
    },
    /// Spawn `name` with `args` on `cores`; answer [`Spawned`] once it
    /// runs.
    Spawn {
        cores: Members,
        name: String,
        args: String,
    },
    /// Join process `pid` of core `home` (`JoinProcess`); answer
    /// [`Joined`].
    Join {
        home: CoreId,
        pid: u32,
        index: u16,
        cores: Members,
        entry: u64,
        name: String,
        args: String,
    },
    /// Kill `pid`; answer [`Killed`].
    Kill { pid: u32 },
    /// Answer [`Processes`].
    List,
    /// Spawn `name` with `args` here as a child of process `parent` of core
    /// `from`; answer [`ChildSpawned`].
    SpawnChild {
        from: CoreId,
        parent: u32,
        name: String,
        args: String,
        /// The capability handed to it, as sent (empty: none).
        handed: Vec<u8>,
    },
    /// Delete the capabilities made from id `id`; answer
    /// [`CapsRevoked`].
    Revoke { id: u64 },
    /// Freeze `pid`'s space here; answer [`SpaceFrozen`] once no change of
    /// it from this core is under way.
    Freeze { pid: u32 },
    /// Process `by` of core `from` connects to `pid`'s channel at
    /// `address`; answer [`ChannelFrame`].
    Connect {
        from: CoreId,
        pid: u32,
        address: u64,
        by: u32,
    },
}

/// What another core tells this core about processes, needing no answer,
/// for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessNote {
    /// Pages of `pid`'s space (`ProcessPages`): page, frame, flags.
    Pages {
        pid: u32,
        pages: Vec<(u64, u64, u64)>,
    },
    /// `StartProcess`.
    Start { pid: u32 },
    /// `EndDispatcher`.
    End { pid: u32 },
    /// `DispatcherEnded`, from `from`.
    Ended {
        from: CoreId,
        index: u16,
        ended: ProgramEnded,
    },
    /// `ProcessGone`.
    ProcessGone { pid: u32 },
    /// `ChannelNotify`.
    Notify { pid: u32 },
    /// `ChannelClosed`.
    Closed { pid: u32, address: u64, used: bool },
    /// `ChannelGone`, from `from`.
    Gone {
        from: CoreId,
        pid: u32,
        address: u64,
    },
    /// `ChildEnded`: the child's end as `ProgramEnded` tells it (its `pid`
    /// the child's).
    ChildEnded { parent: u32, ended: ProgramEnded },
    /// `CapGranted`: the capability as sent.
    Granted { pid: u32, cap: Vec<u8> },
    /// `SpaceGrown`.
    Grown { pid: u32, cores: Members },
}

/// `pages` packed for `ProcessPages` (at most `PAGES_BYTES /
/// PAGE_ENTRY_BYTES` of them).
pub fn pack_pages(pages: &[(u64, u64, u64)]) -> Option<Bytes<PAGES_BYTES>> {
    let mut bytes = Vec::with_capacity(pages.len() * PAGE_ENTRY_BYTES);
    for &(page, frame, flags) in pages {
        for word in [page, frame, flags] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
    }
    Bytes::new(&bytes)
}

/// The pages `ProcessPages` carries; `None` if its length is not whole
/// entries.
pub fn unpack_pages(bytes: &[u8]) -> Option<Vec<(u64, u64, u64)>> {
    if !bytes.len().is_multiple_of(PAGE_ENTRY_BYTES) {
        return None;
    }
    let word = |chunk: &[u8]| u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    Some(
        bytes
            .chunks_exact(PAGE_ENTRY_BYTES)
            .map(|entry| (word(&entry[..8]), word(&entry[8..16]), word(&entry[16..])))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_pack_and_unpack_whole_and_a_torn_batch_is_refused() {
        let pages = [(1 << 39, 0x1000, 2), (u64::MAX, 0, u64::MAX)];
        let packed = pack_pages(&pages).expect("two entries fit");
        assert_eq!(packed.as_slice().len(), 2 * PAGE_ENTRY_BYTES);
        assert_eq!(unpack_pages(packed.as_slice()), Some(pages.to_vec()));
        assert_eq!(
            unpack_pages(&packed.as_slice()[..PAGE_ENTRY_BYTES + 1]),
            None
        );
        assert_eq!(unpack_pages(&[]), Some(Vec::new()));
        let most = PAGES_BYTES / PAGE_ENTRY_BYTES;
        assert!(pack_pages(&alloc::vec![(0, 0, 0); most]).is_some());
        assert!(pack_pages(&alloc::vec![(0, 0, 0); most + 1]).is_none());
    }
}
