//! An example interface for the framing tests: messages of one slot and of
//! several, a one-way message, and rpcs.

use atoll_iface::Bytes;

atoll_iface::interface! {
    /// Messages of the ping service.
    pub interface Ping {
        /// One-way: a core says it is there.
        Hello { from_core: u32 }
        /// A round trip of one full slot each way: `pad` fills the request's slot.
        Echo { value: u64, pad: [u8; 36] } -> EchoReply { value: u64 }
        /// A request of up to five slots.
        Put { id: u32, data: Bytes<200> } -> PutAck { id: u32 }
    }
}
