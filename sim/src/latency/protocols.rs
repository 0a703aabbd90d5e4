//! The protocols themselves, timed: one replicator of `atoll-replica` per
//! core (the code each monitor's `vm` service runs, with `atoll-proto`'s
//! two-phase commit and multicast inside), and a clock per core that the
//! model advances by what each step costs.
//!
//! A message leaves its sender once the sender has paid for writing it
//! (software, then the line's transfer from the receiver, who polled it
//! last), and its receiver, idle or once done with what it was doing,
//! pays for reading it (the line's transfer back) and for handling it.
//! Effects cost what writing a page-table entry and `invlpg` cost. A
//! core's sends leave one after another, in the order the protocol makes
//! them; messages travel in parallel. Each round runs alone: nothing else
//! loads the cores, the caches hold nothing else, and no timeout fires
//! (no tick is fed, as none would pass in a few microseconds).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use atoll_proto::Shape;
use atoll_replica::{
    Actions, Completion, Config, CoreId, Effect, Input, Mapping, MappingTable, Message, OpId,
    Replicator, Report, Request, SpaceId, Timeouts, TreePlan,
};

use super::costs::Costs;
use super::topology::Topology;

/// The one address space: every core of the run holds it.
const SPACE: SpaceId = SpaceId(1);
const PAGE: u64 = 0x4000;
const MAPPING: Mapping = Mapping {
    paddr: 0x9000,
    flags: 0x3,
};
/// Long enough never to matter: no tick is fed.
const TIMEOUTS: Timeouts = Timeouts {
    vote: 1_000,
    round: 1_000,
    relay: 500,
};

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A TLB shootdown of one page: a multicast round.
    Shootdown,
    /// Mapping a page no core maps: two-phase commit.
    Map,
    /// Unmapping a page every core maps: two-phase commit whose commit
    /// also invalidates each core's TLB entry.
    Unmap,
}

/// A run's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed {
    /// From the request on core 0 until its completion there.
    pub cycles: u64,
    /// Messages sent between cores.
    pub messages: u64,
}

/// Core 0 does `operation` on the first `cores` cores of `topology`, over
/// trees of `shape` (`plan` for [`Shape::Planned`]); how long it took.
/// Fails unless it completes, committed, with every core confirming.
pub fn run(
    topology: &Topology,
    costs: &Costs,
    cores: usize,
    operation: Operation,
    shape: Shape,
    plan: &TreePlan,
) -> Result<Timed, String> {
    if cores < 1 || cores > topology.cores() {
        return Err(format!(
            "{} has {} cores, not {cores}",
            topology.name,
            topology.cores()
        ));
    }
    let holders: Vec<CoreId> = (0..cores).map(|core| CoreId(core as u16)).collect();
    let config = Config {
        timeouts: TIMEOUTS,
        plan: plan.clone(),
    };
    let mut replicators: Vec<Replicator> = holders
        .iter()
        .map(|&core| {
            let mut replicator = Replicator::new(core, config.clone(), MappingTable::new());
            replicator.add_space(SPACE, &holders);
            if operation == Operation::Unmap {
                replicator.restore(&[(SPACE, PAGE, MAPPING)], &mut Actions::default());
            }
            replicator
        })
        .collect();
    let request = match operation {
        Operation::Shootdown => Request::Shootdown {
            space: SPACE,
            vaddr: PAGE,
        },
        Operation::Map => Request::Map {
            space: SPACE,
            vaddr: PAGE,
            mapping: MAPPING,
        },
        Operation::Unmap => Request::Unmap {
            space: SPACE,
            vaddr: PAGE,
        },
    };
    let mut clock = Clock {
        topology,
        costs,
        busy: vec![0; cores],
        queue: BinaryHeap::new(),
        in_flight: Vec::new(),
        sent: 0,
        ended: None,
    };
    let mut actions = Actions::default();
    // The request reaches core 0's monitor like any message.
    let id = replicators[0]
        .submit(request, shape, &mut actions)
        .map_err(|error| format!("core 0 refused the request: {error:?}"))?;
    clock.settle(0, costs.handle, id, &mut actions)?;
    while let Some(Reverse((visible, _, from, to, index))) = clock.queue.pop() {
        let message = clock.in_flight[index];
        let start = visible.max(clock.busy[to]);
        let read = start + topology.transfer(from, to) + costs.handle;
        replicators[to].handle(
            Input::Message {
                from: CoreId(from as u16),
                message,
            },
            &mut actions,
        );
        clock.settle(to, read, id, &mut actions)?;
    }
    let (cycles, completion) = clock
        .ended
        .ok_or_else(|| format!("{operation:?} on {cores} cores never completed"))?;
    let report = match completion {
        Completion::Committed { report, .. } | Completion::ShootdownDone { report, .. } => report,
        Completion::Aborted { reason, .. } => {
            return Err(format!(
                "{operation:?} on {cores} cores aborted: {reason:?}"
            ));
        }
    };
    let everyone = Report {
        acked: cores as u16,
        unreached: 0,
    };
    if report != everyone {
        return Err(format!(
            "{operation:?} on {cores} cores over {shape:?}: {report:?}, not {everyone:?}"
        ));
    }
    Ok(Timed {
        cycles,
        messages: clock.sent,
    })
}

/// A message on its way: `(visible, sent, from, to, index into
/// in_flight)`, ordered by the first two.
type InFlight = (u64, u64, usize, usize, usize);

/// The cores' clocks and the messages between them.
struct Clock<'a> {
    topology: &'a Topology,
    costs: &'a Costs,
    /// When each core is done with what it has handled so far.
    busy: Vec<u64>,
    /// Messages by the moment they become visible to their receiver, then
    /// by the order they were sent (so a pair's ring stays in order).
    queue: BinaryHeap<Reverse<InFlight>>,
    in_flight: Vec<Message>,
    sent: u64,
    /// When the request completed on core 0, and how.
    ended: Option<(u64, Completion)>,
}

impl Clock<'_> {
    /// Carries out what core `core` produced in a step it began handling
    /// at `at`: effects, then sends one after another; notes the request's
    /// completion.
    fn settle(
        &mut self,
        core: usize,
        at: u64,
        id: OpId,
        actions: &mut Actions,
    ) -> Result<(), String> {
        let mut now = at;
        for effect in actions.effects.drain(..) {
            now += match effect {
                Effect::MapPage { .. } | Effect::UnmapPage { .. } => self.costs.pte_write,
                Effect::InvalidateTlb { .. } => self.costs.invlpg,
            };
        }
        for (to, message) in actions.messages.drain(..) {
            let to = usize::from(to.0);
            now += self.costs.send + self.topology.transfer(to, core);
            self.queue
                .push(Reverse((now, self.sent, core, to, self.in_flight.len())));
            self.in_flight.push(message);
            self.sent += 1;
        }
        for completion in actions.completions.drain(..) {
            if completion.id() != id || core != 0 {
                return Err(format!(
                    "core {core} completed {completion:?}, not request {id:?}"
                ));
            }
            if self.ended.replace((now, completion)).is_some() {
                return Err(format!("request {id:?} completed twice"));
            }
        }
        self.busy[core] = now;
        Ok(())
    }
}
