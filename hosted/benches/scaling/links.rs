//! URPC rings between the threads of a team: `atoll-urpc`'s rings in
//! ordinary heap memory (threads share it; only processes would need
//! `atoll_hosted::Ring`'s shared mapping), polled, with no sleep
//! handshake: waits spin, and yield only in oversubscribed teams
//! ([`crate::team`]).

use atoll_urpc::{PAYLOAD_SIZE, Payload, Receiver, RingHeader, Sender, Slot};

use crate::team::Patience;

/// Slots per ring: the depth `docs/urpc.md` found to keep round trips at
/// the shallow-ring cost on this machine.
const RING_DEPTH: usize = 8;

/// One ring's memory. The header's lines are the receiver's; the 128-byte
/// alignment keeps them out of the line pair of whatever comes next.
#[repr(align(128))]
struct RingMemory {
    header: RingHeader,
    slots: Vec<Slot>,
}

/// The rings of a team: one from `from` to `to` for each pair asked for.
pub struct Links {
    pairs: Vec<(usize, usize)>,
    rings: Vec<RingMemory>,
}

/// A thread's ends of the team's rings, with the thread at the other end.
pub struct Ends<'m> {
    pub outbound: Vec<(usize, Sender<'m>)>,
    pub inbound: Vec<(usize, Receiver<'m>)>,
}

impl Links {
    /// A ring for each `(from, to)` pair of threads.
    pub fn new(pairs: Vec<(usize, usize)>) -> Links {
        let rings = pairs
            .iter()
            .map(|_| RingMemory {
                header: RingHeader::new(),
                slots: (0..RING_DEPTH).map(|_| Slot::new()).collect(),
            })
            .collect();
        Links { pairs, rings }
    }

    /// A ring from every thread to every other of `threads`.
    pub fn all_to_all(threads: usize) -> Links {
        Links::new(
            (0..threads)
                .flat_map(|from| (0..threads).map(move |to| (from, to)))
                .filter(|(from, to)| from != to)
                .collect(),
        )
    }

    /// Fresh rings, and each of `threads` threads' ends of them, by thread.
    pub fn split(&mut self, threads: usize) -> Vec<Ends<'_>> {
        let mut ends: Vec<Ends<'_>> = (0..threads)
            .map(|_| Ends {
                outbound: Vec::new(),
                inbound: Vec::new(),
            })
            .collect();
        for (&(from, to), ring) in self.pairs.iter().zip(&mut self.rings) {
            let (sender, receiver) = atoll_urpc::channel(&mut ring.header, &mut ring.slots);
            ends[from].outbound.push((to, sender));
            ends[to].inbound.push((from, receiver));
        }
        ends
    }
}

/// Sends `payload`; while the ring is full, calls `meanwhile` (typically:
/// take in this thread's own messages, which the receiver may be waiting
/// for before it can free a slot) and waits patiently.
pub fn send(sender: &mut Sender<'_>, payload: &Payload, mut meanwhile: impl FnMut()) {
    let mut patience = Patience::default();
    while sender.try_send(payload).is_err() {
        meanwhile();
        patience.wait();
    }
}

/// A payload of up to seven little-endian words, zeros after.
pub fn encode(words: &[u64]) -> Payload {
    let mut payload = [0; PAYLOAD_SIZE];
    for (bytes, word) in payload.chunks_exact_mut(8).zip(words) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
    payload
}

/// The `N` first words of a payload.
pub fn decode<const N: usize>(payload: &Payload) -> [u64; N] {
    std::array::from_fn(|index| {
        u64::from_le_bytes(
            payload[index * 8..index * 8 + 8]
                .try_into()
                .expect("8 bytes"),
        )
    })
}
