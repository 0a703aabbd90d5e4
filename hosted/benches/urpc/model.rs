//! Bare channels, to test what makes round trips slower than the one-line
//! floor. They keep what a URPC message costs in cache lines (56 payload
//! bytes, then the control word, stored last, in the same line; the
//! receiving side polls the control word of the slot it expects) and drop
//! everything else: no acknowledgements (a round trip has one message in
//! flight, so no flow control is needed) and no sleep line.
//!
//! A bare ring ([`ModelRing`]) varies where the slots are (how many, in
//! which order the messages visit them, how far apart) and whether the
//! payload is written at all. A bare call channel ([`ModelCall`]) answers
//! each request in its own slot and varies one thing: whether every call
//! takes the next slot, or one call at a time keeps to one slot, as URPC's
//! call channel does.

use std::sync::atomic::{AtomicU64, Ordering};

use atoll_hosted::SharedMemory;

use crate::harness::{Inbound, Outbound, Part};

const WORDS_PER_LINE: usize = 8;

/// Where message `n` goes: slot `order[n % order.len()]`, and slot `s`
/// starts `s * stride` words into the mapping.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub slots: usize,
    /// Visit the slots in a scrambled order instead of one after the other,
    /// so that no prefetcher can predict the next one.
    pub scrambled: bool,
    /// Cache lines from one slot to the next (1: adjacent).
    pub stride_lines: usize,
    /// Write and read the 56 payload bytes; without them a message is its
    /// sequence number alone, one store.
    pub payload: bool,
}

pub struct ModelRing {
    memory: SharedMemory,
    order: Vec<usize>,
    layout: Layout,
}

impl ModelRing {
    pub fn new(layout: Layout) -> ModelRing {
        let memory = SharedMemory::new(layout.slots * layout.stride_lines * 64)
            .expect("cannot map a model ring");
        let mut order: Vec<usize> = (0..layout.slots).collect();
        if layout.scrambled {
            // Fisher–Yates with a fixed xorshift, so every run uses the same order.
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            for last in (1..order.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                order.swap(last, (state % (last as u64 + 1)) as usize);
            }
        }
        ModelRing {
            memory,
            order,
            layout,
        }
    }

    /// Resets the ring and returns its two ends.
    pub fn split(&mut self) -> (ModelSender<'_>, ModelReceiver<'_>) {
        self.memory
            .words()
            .iter()
            .for_each(|word| word.store(0, Ordering::Relaxed));
        (
            ModelSender {
                ring: self,
                sent: 0,
            },
            ModelReceiver {
                ring: self,
                received: 0,
            },
        )
    }

    fn slot(&self, message: u64) -> &[AtomicU64] {
        let slot = self.order[(message % self.order.len() as u64) as usize];
        let start = slot * self.layout.stride_lines * WORDS_PER_LINE;
        &self.memory.words()[start..start + WORDS_PER_LINE]
    }
}

pub struct ModelSender<'r> {
    ring: &'r ModelRing,
    sent: u64,
}

pub struct ModelReceiver<'r> {
    ring: &'r ModelRing,
    received: u64,
}

impl Outbound<56> for ModelSender<'_> {
    fn send(&mut self, message: &[u8; 56]) {
        let (payload, sequence) = self.ring.slot(self.sent).split_at(WORDS_PER_LINE - 1);
        if self.ring.layout.payload {
            for (word, bytes) in payload.iter().zip(message.chunks_exact(8)) {
                word.store(
                    u64::from_le_bytes(bytes.try_into().expect("8 bytes")),
                    Ordering::Relaxed,
                );
            }
        }
        self.sent += 1;
        sequence[0].store(self.sent, Ordering::Release);
    }
}

impl Inbound<56> for ModelReceiver<'_> {
    fn recv(&mut self) -> [u8; 56] {
        let (payload, sequence) = self.ring.slot(self.received).split_at(WORDS_PER_LINE - 1);
        self.received += 1;
        while sequence[0].load(Ordering::Acquire) != self.received {
            std::hint::spin_loop();
        }
        let mut message = [0; 56];
        if self.ring.layout.payload {
            for (bytes, word) in message.chunks_exact_mut(8).zip(payload) {
                bytes.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
        }
        message
    }
}

/// A bare call channel: the client writes a request (payload, then `2n`)
/// and polls the same slot for the reply (payload, then `2n + 1`), which
/// the server writes in place.
pub struct ModelCall {
    memory: SharedMemory,
    slots: usize,
    /// Every call in the next slot, round the ring; otherwise all in the first.
    next_slot_each_call: bool,
}

impl ModelCall {
    pub fn new(slots: usize, next_slot_each_call: bool) -> ModelCall {
        ModelCall {
            memory: SharedMemory::new(slots * 64).expect("cannot map a model call channel"),
            slots,
            next_slot_each_call,
        }
    }

    /// Resets the channel and returns its two ends.
    pub fn split(&mut self) -> (ModelCaller<'_>, ModelAnswerer<'_>) {
        self.memory
            .words()
            .iter()
            .for_each(|word| word.store(0, Ordering::Relaxed));
        (
            ModelCaller {
                channel: self,
                calls: 0,
            },
            ModelAnswerer {
                channel: self,
                calls: 0,
            },
        )
    }

    /// The slot of call `call` (1, 2, ...): its payload words and its control word.
    fn slot(&self, call: u64) -> (&[AtomicU64], &AtomicU64) {
        let slot = if self.next_slot_each_call {
            (call % self.slots as u64) as usize
        } else {
            0
        };
        let line = &self.memory.words()[slot * WORDS_PER_LINE..][..WORDS_PER_LINE];
        let (payload, control) = line.split_at(WORDS_PER_LINE - 1);
        (payload, &control[0])
    }
}

pub struct ModelCaller<'c> {
    channel: &'c ModelCall,
    calls: u64,
}

pub struct ModelAnswerer<'c> {
    channel: &'c ModelCall,
    calls: u64,
}

impl Part for ModelCaller<'_> {
    fn run(&mut self, exchanges: u64, _burst: u64) {
        for _ in 0..exchanges {
            self.calls += 1;
            let (payload, control) = self.channel.slot(self.calls);
            for word in payload {
                word.store(self.calls, Ordering::Relaxed);
            }
            control.store(2 * self.calls, Ordering::Release);
            while control.load(Ordering::Acquire) != 2 * self.calls + 1 {
                std::hint::spin_loop();
            }
            let reply: u64 = payload
                .iter()
                .map(|word| word.load(Ordering::Relaxed))
                .sum();
            std::hint::black_box(reply);
        }
    }
}

impl Part for ModelAnswerer<'_> {
    fn run(&mut self, exchanges: u64, _burst: u64) {
        for _ in 0..exchanges {
            self.calls += 1;
            let (payload, control) = self.channel.slot(self.calls);
            while control.load(Ordering::Acquire) != 2 * self.calls {
                std::hint::spin_loop();
            }
            let request: u64 = payload
                .iter()
                .map(|word| word.load(Ordering::Relaxed))
                .sum();
            for word in payload {
                word.store(request, Ordering::Relaxed);
            }
            control.store(2 * self.calls + 1, Ordering::Release);
        }
    }
}
