//! The messages of the `process` service.

use alloc::string::String;

use atoll_iface::Bytes;

use crate::vm::messages::Protocol;

/// The longest program name a request carries (`atoll_programs::MAX_NAME`).
pub const PROGRAM_NAME_BYTES: usize = 32;
/// The most bytes of arguments a request carries (`atoll_abi::MAX_ARGS`).
pub const PROGRAM_ARGS_BYTES: usize = 256;
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

/// `Killed::outcome`: it was killed.
pub const KILLED: u8 = 0;
/// The core has no such process.
pub const KILL_NO_SUCH_PROCESS: u8 = 1;
/// It had ended already, and waits for its parent to wait for it.
pub const KILL_ENDED: u8 = 2;
/// It is on the core now: the core kills only between turns.
pub const KILL_RUNNING: u8 = 3;

atoll_iface::interface! {
    /// Processes of the receiving core: programs of the boot image it runs.
    pub interface ProcessMessage {
        /// Spawn program `name` with `args` on the receiving core, and say
        /// how it ended once it has.
        RunProgram { name: Bytes<PROGRAM_NAME_BYTES>, args: Bytes<PROGRAM_ARGS_BYTES> } -> ProgramEnded {
            /// `ENDED_*`.
            outcome: u8,
            pid: u32,
            status: u64,
            vector: u64,
            error_code: u64,
            rip: u64,
            address: u64
        }
        /// Spawn program `name` with `args` on the receiving core, and say
        /// at once whether it runs; its end is reported on the console.
        SpawnProgram { name: Bytes<PROGRAM_NAME_BYTES>, args: Bytes<PROGRAM_ARGS_BYTES> } -> Spawned {
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
    }
}

impl ProgramEnded {
    /// An outcome with no status or fault to report.
    pub fn only(outcome: u8, pid: u32) -> Self {
        Self {
            outcome,
            pid,
            status: 0,
            vector: 0,
            error_code: 0,
            rip: 0,
            address: 0,
        }
    }
}

/// What another core asks of this core's processes, for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessRequest {
    /// Spawn `name` with `args`; answer [`ProgramEnded`] when it ends.
    Run { name: String, args: String },
    /// Spawn `name` with `args`; answer [`Spawned`] at once.
    Spawn { name: String, args: String },
    /// Kill `pid`; answer [`Killed`].
    Kill { pid: u32 },
    /// Answer [`Processes`].
    List,
}
