//! The messages of catching up: a core that comes back asks a member for
//! its replicas, and the member sends them.

use atoll_iface::{Bytes, Field, FieldError};

use crate::skb::messages::BATCH_BYTES;
use atoll_proto::membership::Members;

/// A set of cores as one field: its 256 bits, little-endian words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreSet(pub Members);

impl Field for CoreSet {
    type Wire = [u8; 32];

    fn to_wire(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.0.words()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    fn from_wire(bytes: [u8; 32]) -> Result<Self, FieldError> {
        let mut words = [0; 4];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        }
        Ok(CoreSet(Members::from_words(words)))
    }
}

atoll_iface::interface! {
    /// A joining core's catching up with the members' replicas.
    pub interface CatchUpMessage {
        /// From a core that joins a running system: send me your replicas
        /// once every round that leaves me out is decided here.
        CatchUpAsk {}
        /// Facts of the sender's knowledge base, as program text: sent to a
        /// core that asks the sender to join, before the view that takes it
        /// in (so before it can relay any round).
        CatchUpFacts { text: Bytes<BATCH_BYTES> }
        /// The end of the facts: `facts` batches came before it; whether the
        /// sender's mappings route by its knowledge base's trees, which the
        /// joiner then derives from its own replica, which holds the same
        /// facts now.
        CatchUpPlan { facts: u32, planned: bool }
        /// One committed mapping of the sender's replica.
        CatchUpEntry { space: u32, vaddr: u64, paddr: u64, flags: u64 }
        /// The end of a snapshot: `entries` mappings came before it, whose
        /// replica hashes to `hash` (`Replica::hash`); the test space's
        /// span, the cores that may hold spaces, and whether the sender
        /// holds the test space (if not, its replica has none of it).
        CatchUpDone {
            entries: u32,
            hash: u64,
            first: u16,
            last: u16,
            holders: CoreSet,
            holds_test_space: bool
        }
    }
}
