//! Each core's trace recorder: a fixed-size ring of trace events, stamped
//! with the TSC, kept on the core that recorded them.
//!
//! The monitor says what happened (messages sent and received, calls,
//! protocol phases); the host adds IPIs and faults. When the ring is full
//! the oldest events give way, and the dump says how many were lost. A dump
//! prints one line per event, in the format `cargo xtask trace` reads
//! (`docs/serial-protocol.md`):
//!
//! ```text
//! trace: core 3: 57 events, 0 lost, tsc_per_ms 2400000, first sends 0:5 1:3 2:0 3:0, sent 0:9 1:4 2:0 3:0
//! trace: 3 123456789 send 5 17 4 0 VmPropose
//! ```
//!
//! The fields of an event line: core, tsc, kind, peer, call, seq, detail,
//! then the name (which may hold spaces). "first sends" gives, per peer, the
//! sequence number of the first send to it recorded since tracing was
//! turned on, and "sent" the sequence number the next send to it will take
//! (so the dump holds the sends in between; one sent after the dump, which
//! a peer dumping later may have received, is not in it).

use alloc::collections::TryReserveError;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt::Write;

use atoll_arch::cpu;
use atoll_monitor::{TraceEvent, TraceKind};

/// Events a ring holds.
pub const RING_EVENTS: usize = 4096;

struct Ring {
    events: Vec<TraceEvent>,
    /// Where the next event goes once the ring is full.
    next: usize,
    /// Events recorded since tracing was turned on.
    recorded: u64,
}

pub struct Recorder {
    /// Whether events are recorded: what the monitor last asked for, if
    /// the ring could be had.
    on: Cell<bool>,
    /// What the monitor last asked for, so that a ring that could not be
    /// allocated is tried again only when tracing is next turned on.
    wanted: Cell<bool>,
    ring: RefCell<Ring>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            on: Cell::new(false),
            wanted: Cell::new(false),
            ring: RefCell::new(Ring {
                events: Vec::new(),
                next: 0,
                recorded: 0,
            }),
        }
    }

    pub fn is_on(&self) -> bool {
        self.on.get()
    }

    /// Follows the monitor's word: records from now on, or not. Turning it
    /// on empties the ring, allocating it the first time; if that fails,
    /// nothing is recorded until the monitor turns tracing off and on again.
    pub fn set(&self, on: bool) -> Result<(), TryReserveError> {
        if on == self.wanted.replace(on) {
            return Ok(());
        }
        self.on.set(false);
        if on {
            cpu::without_interrupts(|| {
                let mut ring = self.ring.borrow_mut();
                ring.events.clear();
                ring.events.try_reserve_exact(RING_EVENTS)?;
                ring.next = 0;
                ring.recorded = 0;
                Ok::<(), TryReserveError>(())
            })?;
        }
        self.on.set(on);
        Ok(())
    }

    /// Records `event` if tracing is on. From an interrupt handler that
    /// found the ring busy (it interrupted a dump), the event is dropped
    /// without being counted.
    pub fn record(&self, event: TraceEvent) {
        if !self.on.get() {
            return;
        }
        cpu::without_interrupts(|| {
            let Ok(mut ring) = self.ring.try_borrow_mut() else {
                return;
            };
            ring.recorded += 1;
            if ring.events.len() < RING_EVENTS {
                ring.events.push(event);
            } else {
                let next = ring.next;
                ring.events[next] = event;
                ring.next = (next + 1) % RING_EVENTS;
            }
        });
    }

    /// Records an IPI to `peer` on `vector`, sent now.
    pub fn ipi(&self, peer: usize, vector: u8) {
        if self.on.get() {
            self.record(TraceEvent {
                peer: peer as u16,
                detail: u64::from(vector),
                ..TraceEvent::new(cpu::rdtsc(), TraceKind::Ipi, "ipi")
            });
        }
    }

    /// Prints this core's events, oldest first. `first_sends` is the
    /// monitor's [`trace_start`](atoll_monitor::Monitor::trace_start).
    pub fn dump(&self, core: usize, tsc_per_ms: u64, first_sends: &[u32], sent: &[u32]) {
        // Interrupts stay on: printing thousands of lines must not hold off
        // the timer and wake-ups. A handler that records meanwhile finds
        // the ring borrowed and drops its event.
        let Ok(ring) = self.ring.try_borrow() else {
            println!("trace: core {core}: the ring is busy; nothing dumped");
            return;
        };
        let held = ring.events.len() as u64;
        let mut header = String::new();
        for (peer, seq) in first_sends.iter().enumerate() {
            let _ = write!(header, " {peer}:{seq}");
        }
        header.push_str(", sent");
        for (peer, seq) in sent.iter().enumerate() {
            let _ = write!(header, " {peer}:{seq}");
        }
        println!(
            "trace: core {core}: {held} events, {} lost, tsc_per_ms {tsc_per_ms}, first sends{header}",
            ring.recorded - held
        );
        let (newer, older) = ring.events.split_at(ring.next);
        for event in older.iter().chain(newer) {
            println!(
                "trace: {core} {} {} {} {} {} {} {}",
                event.tsc,
                event.kind.name(),
                event.peer,
                event.call,
                event.seq,
                event.detail,
                event.name
            );
        }
    }
}
