//! The shared-memory baselines, modelled with the same transfers and
//! costs as the protocols: a contended cache line is a resource that moves
//! from core to core, one transfer at a time.
//!
//! - [`ipi_shootdown`]: what Linux and Windows do. The initiator writes
//!   what to flush, sends an IPI to each target in turn, flushes its own
//!   entry and spins on a shared counter; each target takes the interrupt,
//!   reads what to flush (a transfer from the initiator), runs `invlpg`,
//!   increments the counter (the line comes to it from whoever incremented
//!   last) and returns.
//! - [`locked_unmap`]: an unmap that way: take the page table's lock (a
//!   line of its own), clear the entry, do the IPI shootdown, release.
//! - [`locked_map`]: a map that way: take the lock, write the entry,
//!   release; no core can hold a stale translation of an unmapped page, so
//!   nothing is shot down.
//! - [`line_broadcast`]: the SOSP'09 paper's "broadcast": the initiator
//!   writes one message line that every target polls; each target's read
//!   is a transfer from the initiator's cache, and the coherence protocol
//!   serves them one after another. Each target then runs `invlpg` and
//!   acknowledges on its own URPC channel, and the initiator handles the
//!   acknowledgements one by one.
//!
//! Targets are served in core order, which puts the initiator's node first.

use super::costs::Costs;
use super::topology::Topology;

/// A cache line that cores take one at a time.
struct Line {
    owner: usize,
    free_at: u64,
}

impl Line {
    /// `core` takes the line at `at` or once it is free; when it has it.
    fn take(&mut self, topology: &Topology, core: usize, at: u64) -> u64 {
        let done = at.max(self.free_at) + topology.transfer(self.owner, core);
        self.owner = core;
        self.free_at = done;
        done
    }
}

/// Cycles of an IPI shootdown from core 0 to cores `1..cores`, until core
/// 0 has seen every target's increment.
pub fn ipi_shootdown(topology: &Topology, costs: &Costs, cores: usize) -> u64 {
    ipi_shootdown_from(topology, costs, cores, costs.pte_write)
}

/// Cycles of an unmap under a lock with an IPI shootdown, on the first
/// `cores` cores (the lock's line last held by core 0).
pub fn locked_unmap(topology: &Topology, costs: &Costs, cores: usize) -> u64 {
    let mut lock = Line {
        owner: 0,
        free_at: 0,
    };
    let locked = lock.take(topology, 0, 0);
    let flushed = ipi_shootdown_from(topology, costs, cores, locked + costs.pte_write);
    // Releasing writes the line core 0 holds.
    flushed + topology.transfer(0, 0)
}

/// Cycles of a map under the page table's lock (its line last held by
/// core 0).
pub fn locked_map(topology: &Topology, costs: &Costs) -> u64 {
    let mut lock = Line {
        owner: 0,
        free_at: 0,
    };
    lock.take(topology, 0, 0) + costs.pte_write + topology.transfer(0, 0)
}

/// The IPI shootdown with core 0 starting at `start`.
fn ipi_shootdown_from(topology: &Topology, costs: &Costs, cores: usize, start: u64) -> u64 {
    // Writing what to flush: a line of core 0's.
    let mut now = start + costs.pte_write;
    let mut counter = Line {
        owner: 0,
        free_at: now,
    };
    let mut last = now;
    let mut taken = Vec::new();
    for target in 1..cores {
        now += costs.ipi_send;
        taken.push((now + costs.ipi_latency, target));
    }
    // Core 0 flushes its own entry once its IPIs are out.
    now += costs.invlpg;
    for (interrupted, target) in taken {
        let flushed =
            interrupted + costs.interrupt / 2 + topology.transfer(0, target) + costs.invlpg;
        last = last.max(counter.take(topology, target, flushed));
    }
    // Core 0 sees the last increment: the counter's line comes back.
    now.max(last) + topology.transfer(counter.owner, 0)
}

/// Cycles of a shootdown from core 0 to cores `1..cores` over one
/// broadcast line, until core 0 has handled every acknowledgement.
pub fn line_broadcast(topology: &Topology, costs: &Costs, cores: usize) -> u64 {
    // The initiator writes the line (every reader's copy is invalidated)
    // and flushes its own entry.
    let written = costs.send + topology.transfer(0, 0);
    let mut reads_free = written;
    let mut acks = Vec::new();
    for target in 1..cores {
        let read = reads_free + topology.transfer(0, target);
        reads_free = read;
        let acked = read + costs.handle + costs.invlpg + costs.send + topology.transfer(0, target);
        acks.push((acked, target));
    }
    acks.sort_unstable();
    let mut now = written + costs.invlpg;
    for (acked, target) in acks {
        now = now.max(acked) + topology.transfer(target, 0) + costs.handle;
    }
    now
}
