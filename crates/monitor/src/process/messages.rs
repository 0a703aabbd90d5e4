//! The messages of the `process` service.

use atoll_iface::Bytes;

/// The longest program name a request carries (`atoll_programs::MAX_NAME`).
pub const PROGRAM_NAME_BYTES: usize = 32;

/// `ProgramEnded::outcome`: it called `exit` with `status`.
pub const ENDED_EXIT: u8 = 0;
/// It took exception `vector` (error code, instruction, address).
pub const ENDED_FAULT: u8 = 1;
/// The core runs another program already: this one did not start.
pub const ENDED_BUSY: u8 = 2;
/// The core could not load it (no such program, or a bad image); its own
/// line on the console says why.
pub const ENDED_NOT_LOADED: u8 = 3;

atoll_iface::interface! {
    /// Programs of the boot image, run on the receiving core.
    pub interface ProcessMessage {
        /// Run program `name` on the receiving core to its end, and say how
        /// it ended.
        RunProgram { name: Bytes<PROGRAM_NAME_BYTES> } -> ProgramEnded {
            /// `ENDED_*`.
            outcome: u8,
            status: u64,
            vector: u64,
            error_code: u64,
            rip: u64,
            address: u64
        }
    }
}

impl ProgramEnded {
    /// An outcome with no status or fault to report.
    pub fn only(outcome: u8) -> Self {
        Self {
            outcome,
            status: 0,
            vector: 0,
            error_code: 0,
            rip: 0,
            address: 0,
        }
    }
}
