//! The ping interface: round trips of one slot and of several, for tests,
//! benchmarks and the shell's `urpc ping`.

use crate::Bytes;

crate::interface! {
    /// Messages of the ping service.
    pub interface Ping {
        /// One-way: a core says it is there.
        Hello { from_core: u32 }
        /// A round trip of one full slot each way: `pad` fills the request's slot.
        Echo { value: u64, pad: [u8; 40] } -> EchoReply { value: u64 }
        /// A request of up to five slots.
        Put { id: u32, data: Bytes<200> } -> PutAck { id: u32 }
    }
}
