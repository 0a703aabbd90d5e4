//! Monitors on an in-memory network: links in order per pair of cores,
//! delivered when a test says so.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use std::string::String;

extern crate std;

use atoll_iface::{Bytes, encode};

use crate::bench::BenchMessage;
use crate::bench::{
    BENCH_DONE, BenchPeer, BenchReport, BenchShootdown, BenchShot, FIG3_MESSAGES,
    FIG3_SHARED_MEMORY, Fig3Done, Fig3Run, Measure, STREAM_MESSAGES,
};
use crate::control::ControlMessage;
use crate::control::{
    PING_DONE, PING_PEER_NOT_RUNNING, PING_TO_ITSELF, Ping, PingPeer, PingReport, Pong, Stall,
    Stalled, TraceDump, TraceSet,
};
use crate::skb::SkbMessage;
use crate::skb::{SkbFacts, SkbGather, SkbGathered, SkbInstall, SkbInstalled, SkbLoaded, SkbReady};
use crate::vm::VmMessage;
use crate::vm::{
    Change, OUTCOME_COMMITTED, OUTCOME_NOT_PROPOSED, OUTCOME_REFUSED, OUTCOME_TIMED_OUT, VmDone,
    VmHash, VmHashReply, VmPropose, VmStorm, VmStormDone,
};
use crate::wire::Inline;
use crate::*;

/// Cycles each delivery advances the clock by.
const CYCLES_PER_STEP: u64 = 10;

struct Net {
    monitors: Vec<Monitor>,
    /// Cores that take no more input: crashed, or never started.
    stopped: Vec<bool>,
    /// Cores whose slots are not delivered for now: they run, but the
    /// others hear nothing from them.
    muted: Vec<bool>,
    /// Slots in flight on link `from * n + to`.
    links: Vec<VecDeque<Payload>>,
    now: u64,
    completions: Vec<(CoreId, Ticket, Result<Wire, CallError>)>,
    effects: Vec<(CoreId, Effect)>,
    deferred: Vec<(CoreId, Deferred)>,
    notices: Vec<(CoreId, String)>,
    trace: Vec<(CoreId, TraceEvent)>,
    /// Ends of the changes proposed for process spaces, with their tokens.
    changes: Vec<(CoreId, u64, atoll_replica::Completion)>,
}

impl Net {
    /// `cores` monitors whose view has formed: every core a member.
    fn new(cores: u16) -> Net {
        Self::without(cores, &[])
    }

    /// `cores` monitors, of which those of `withheld` never start; the
    /// others' view has formed.
    /// (With the `mutants` feature, the mutant `ATOLL_MUTANT` names is
    /// switched on, so that a mutant can be run against these tests.)
    fn without(cores: u16, withheld: &[u16]) -> Net {
        let mutant = std::env::var("ATOLL_MUTANT").ok().map(|name| {
            atoll_proto::mutants::Mutant::from_name(&name)
                .unwrap_or_else(|| panic!("ATOLL_MUTANT={name} names no mutant"))
        });
        atoll_proto::mutants::set(mutant).expect("ATOLL_MUTANT needs the mutants feature");
        let mut net = Net {
            monitors: Vec::new(),
            stopped: (0..cores).map(|core| withheld.contains(&core)).collect(),
            muted: vec![false; usize::from(cores)],
            links: vec![VecDeque::new(); usize::from(cores) * usize::from(cores)],
            now: 0,
            completions: Vec::new(),
            effects: Vec::new(),
            deferred: Vec::new(),
            changes: Vec::new(),
            notices: Vec::new(),
            trace: Vec::new(),
        };
        let nodes: Vec<u16> = (0..cores).map(|core| core % 2).collect();
        let mut outputs = Vec::new();
        for (monitor, out) in testing::start(&nodes) {
            net.monitors.push(monitor);
            outputs.push(out);
        }
        for (core, out) in outputs.into_iter().enumerate() {
            if !withheld.contains(&(core as u16)) {
                net.absorb(CoreId(core as u16), out);
            }
        }
        net.settle();
        let members: Members = (0..cores)
            .filter(|core| !withheld.contains(core))
            .map(CoreId)
            .collect();
        for core in (0..cores).filter(|core| !withheld.contains(core)) {
            assert_eq!(net.view(core).members, members, "core {core}'s view");
        }
        net.notices.clear();
        net
    }

    fn view(&self, core: u16) -> View {
        self.monitors[usize::from(core)].view()
    }

    /// The epoch every core's slots are stamped with now (core 0's view).
    fn epoch(&self) -> u32 {
        self.view(0).epoch
    }

    /// Core `core` stops: it takes no more input. What it sent stays in the
    /// links, as in a ring.
    fn crash(&mut self, core: u16) {
        self.stopped[usize::from(core)] = true;
    }

    /// `ticks` ticks on every running core, each followed by delivering
    /// everything.
    /// A new kernel starts on core `core`, which stopped and which every
    /// running monitor left out: the links to and from it start afresh, as
    /// the kernel's hosts reset the rings, and it asks `sponsor` to join.
    fn restart(&mut self, core: u16, sponsor: u16) {
        let n = self.n();
        for other in 0..n {
            self.links[usize::from(core) * n + other].clear();
            self.links[other * n + usize::from(core)].clear();
            if other != usize::from(core) && !self.stopped[other] {
                assert!(
                    self.monitors[other].reset_link(CoreId(core)),
                    "core {other} refused to reset its link to core {core}"
                );
            }
        }
        let nodes: Vec<u16> = (0..n as u16).map(|core| core % 2).collect();
        let (monitor, out) = testing::restart(core, &nodes, Some(CoreId(sponsor)));
        self.monitors[usize::from(core)] = monitor;
        self.stopped[usize::from(core)] = false;
        self.absorb(CoreId(core), out);
    }

    fn run_ticks(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.tick_all();
            self.settle();
        }
    }

    fn n(&self) -> usize {
        self.monitors.len()
    }

    fn absorb(&mut self, core: CoreId, out: Output) {
        let n = self.n();
        for effect in out.effects {
            self.effects.push((core, effect));
        }
        for (to, slot) in out.sends {
            assert_ne!(to, core, "a monitor sent its host a slot for itself");
            self.links[usize::from(core.0) * n + usize::from(to.0)].push_back(slot);
        }
        for deferred in out.deferred {
            self.deferred.push((core, deferred));
        }
        for (ticket, result) in out.completions {
            self.completions.push((core, ticket, result));
        }
        for line in out.notices {
            self.notices.push((core, line));
        }
        for event in out.trace {
            self.trace.push((core, event));
        }
        for (token, completion) in out.changes {
            self.changes.push((core, token, completion));
        }
    }

    fn step(&mut self, core: CoreId, input: Input<'_>) {
        if self.stopped[usize::from(core.0)] {
            return;
        }
        let mut out = Output::default();
        self.now += CYCLES_PER_STEP;
        self.monitors[usize::from(core.0)].step(self.now, input, &mut out);
        self.absorb(core, out);
        self.drain_for(core);
    }

    /// Carries out the drains `core` asked for, as its host would: every
    /// slot waiting from the core, then `Drained`.
    fn drain_for(&mut self, core: CoreId) {
        while let Some(at) = self
            .deferred
            .iter()
            .position(|(c, work)| *c == core && matches!(work, Deferred::Drain { .. }))
        {
            let (_, Deferred::Drain { core: from }) = self.deferred.remove(at) else {
                unreachable!("matched above");
            };
            while self.deliver(from.0, core.0) {}
            self.step(core, Input::Drained(from));
        }
    }

    fn call(&mut self, core: u16, to: u16, request: impl Into<Wire>, timeout: u64) -> Ticket {
        let mut out = Output::default();
        let ticket =
            self.monitors[usize::from(core)].call(self.now, CoreId(to), request, timeout, &mut out);
        self.absorb(CoreId(core), out);
        self.drain_for(CoreId(core));
        ticket
    }

    /// Delivers the oldest slot on the link from `from` to `to`; whether
    /// there was one (never to a stopped core, nor from a muted one).
    fn deliver(&mut self, from: u16, to: u16) -> bool {
        self.deliver_slot(from, to).is_some()
    }

    /// Delivers the oldest slot on the link from `from` to `to`, and
    /// returns it.
    fn deliver_slot(&mut self, from: u16, to: u16) -> Option<Payload> {
        if self.stopped[usize::from(to)] || self.muted[usize::from(from)] {
            return None;
        }
        let n = self.n();
        let slot = self.links[usize::from(from) * n + usize::from(to)].pop_front()?;
        self.step(
            CoreId(to),
            Input::Slot {
                from: CoreId(from),
                slot: &slot,
            },
        );
        Some(slot)
    }

    /// Delivers everything, link by link in turn, until nothing is left.
    fn settle(&mut self) {
        let n = self.n() as u16;
        while (0..n)
            .flat_map(|from| (0..n).map(move |to| (from, to)))
            .fold(false, |any, (from, to)| self.deliver(from, to) | any)
        {}
    }

    fn tick_all(&mut self) {
        for core in 0..self.n() as u16 {
            self.step(CoreId(core), Input::Tick);
        }
    }

    /// The completion of `ticket` on `core`, taken.
    fn completion(&mut self, core: u16, ticket: Ticket) -> Option<Result<Wire, CallError>> {
        let index = self
            .completions
            .iter()
            .position(|&(c, t, _)| c == CoreId(core) && t == ticket)?;
        Some(self.completions.remove(index).2)
    }

    fn reply(&mut self, core: u16, ticket: Ticket) -> Wire {
        match self.completion(core, ticket) {
            Some(Ok(reply)) => reply,
            other => panic!("call {ticket:?} on core {core} ended {other:?}"),
        }
    }

    fn vm_done(&mut self, core: u16, ticket: Ticket) -> VmDone {
        match self.reply(core, ticket) {
            Wire::Vm(Inline(VmMessage::VmDone(done))) => done,
            other => panic!("expected VmDone, got {other:?}"),
        }
    }

    fn propose(&mut self, shell: u16, core: u16, change: Change, page: u32) -> VmDone {
        let ticket = self.call(
            shell,
            core,
            VmPropose {
                change: change as u8,
                page,
            },
            1000,
        );
        self.settle();
        self.vm_done(shell, ticket)
    }

    /// Every running core's replica hash, asked from `shell` by `VmHash`
    /// calls.
    fn hashes(&mut self, shell: u16) -> Vec<u64> {
        let running: Vec<u16> = (0..self.n() as u16)
            .filter(|&core| !self.stopped[usize::from(core)])
            .collect();
        let tickets: Vec<Ticket> = running
            .into_iter()
            .map(|core| self.call(shell, core, VmHash {}, 100))
            .collect();
        self.settle();
        tickets
            .into_iter()
            .map(|ticket| match self.reply(shell, ticket) {
                Wire::Vm(Inline(VmMessage::VmHashReply(VmHashReply { hash, .. }))) => hash,
                other => panic!("expected VmHashReply, got {other:?}"),
            })
            .collect()
    }

    /// Runs what the monitors deferred as a host would, with `cycles` for
    /// every measurement.
    fn run_deferred(&mut self, cycles: u64) -> Vec<(CoreId, Deferred)> {
        let deferred = core::mem::take(&mut self.deferred);
        for (core, work) in &deferred {
            if let Deferred::Measure { op, .. } = work {
                self.step(
                    *core,
                    Input::Measured {
                        op: *op,
                        cycles: Some(cycles),
                    },
                );
            }
        }
        deferred
    }
}

#[test]
fn a_call_to_this_core_goes_through_the_loopback_in_the_same_step() {
    let mut net = Net::new(2);
    let ticket = net.call(0, 0, Ping {}, 10);
    assert_eq!(net.reply(0, ticket), Wire::from(Pong {}));
    assert!(
        net.links.iter().all(VecDeque::is_empty),
        "nothing left core 0"
    );
}

#[test]
fn a_call_to_another_core_completes_when_its_reply_arrives() {
    let mut net = Net::new(3);
    let ticket = net.call(0, 2, Ping {}, 10);
    assert!(net.completion(0, ticket).is_none());
    assert!(net.deliver(0, 2));
    assert!(net.completion(0, ticket).is_none());
    assert!(net.deliver(2, 0));
    assert_eq!(net.reply(0, ticket), Wire::from(Pong {}));
}

#[test]
fn a_call_to_a_core_outside_the_view_fails_at_once() {
    let mut net = Net::without(3, &[2]);
    let ticket = net.call(0, 2, Ping {}, 10);
    assert_eq!(
        net.completion(0, ticket),
        Some(Err(CallError::NotRunning { core: CoreId(2) }))
    );
    assert!(net.links.iter().all(VecDeque::is_empty));
}

#[test]
fn calls_waiting_on_a_core_left_out_of_the_view_fail() {
    let mut net = Net::new(3);
    net.crash(1);
    let ticket = net.call(0, 1, Ping {}, 10_000);
    net.run_ticks(Detector::DEFAULT.suspect_after + 5);
    assert_eq!(
        net.view(0).members,
        [0, 2].map(CoreId).into_iter().collect()
    );
    assert_eq!(
        net.completion(0, ticket),
        Some(Err(CallError::Down { core: CoreId(1) }))
    );
}

#[test]
fn a_late_reply_is_dropped_and_never_answers_the_next_call() {
    let mut net = Net::new(3);
    let first = net.call(0, 2, VmPropose { change: 0, page: 5 }, 3);
    net.deliver(0, 2);
    // Core 2 answers nothing yet: its votes and reply stay in the links.
    for _ in 0..3 {
        net.step(CoreId(0), Input::Tick);
    }
    assert_eq!(
        net.completion(0, first),
        Some(Err(CallError::NoAnswer {
            core: CoreId(2),
            ticks: 3
        }))
    );
    let second = net.call(0, 2, VmPropose { change: 0, page: 6 }, 1000);
    net.settle();
    let done = net.vm_done(0, second);
    assert_eq!((done.page, done.outcome), (6, OUTCOME_COMMITTED));
    assert_eq!(net.monitors[0].strays().late, 1);
    assert!(
        net.notices.iter().any(|(core, line)| core.0 == 0
            && line.contains("dropped reply VmDone")
            && line.contains("its call had ended")),
        "{:?}",
        net.notices
    );
    assert!(net.completions.is_empty(), "{:?}", net.completions);
}

#[test]
fn replies_nobody_asked_for_are_dropped_and_counted() {
    let mut net = Net::new(2);
    let forged = encode(&Wire::from(Pong {}), 77, net.epoch())
        .next()
        .unwrap();
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(1),
            slot: &forged,
        },
    );
    assert_eq!(net.monitors[0].strays().unknown, 1);

    // A reply from the wrong core leaves the real call waiting.
    let ticket = net.call(0, 1, Ping {}, 10);
    net.deliver(0, 1);
    let from_itself = encode(&Wire::from(Pong {}), 1, net.epoch()).next().unwrap();
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(0),
            slot: &from_itself,
        },
    );
    assert_eq!(net.monitors[0].strays().mismatched, 1);
    assert!(net.completion(0, ticket).is_none());
    net.deliver(1, 0);
    assert_eq!(net.reply(0, ticket), Wire::from(Pong {}));

    // A second copy of that reply is late.
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(1),
            slot: &from_itself,
        },
    );
    assert_eq!(net.monitors[0].strays().late, 1);
    assert!(net.completions.is_empty());
}

#[test]
fn malformed_slots_are_dropped_with_the_sender_named() {
    let mut net = Net::new(2);
    let mut slot = encode(&Wire::from(Ping {}), 3, net.epoch()).next().unwrap();
    slot[0] = 0xE0;
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(1),
            slot: &slot,
        },
    );
    // A request without a call id, and a one-way message with one.
    let no_id = encode(&Wire::from(Ping {}), 0, net.epoch()).next().unwrap();
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(1),
            slot: &no_id,
        },
    );
    let facts = SkbFacts {
        text: Bytes::new(b"x(1).").unwrap(),
    };
    let with_id = encode(&Wire::from(facts), 9, net.epoch()).next().unwrap();
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(1),
            slot: &with_id,
        },
    );
    // A slot from a core the machine does not have.
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(9),
            slot: &no_id,
        },
    );
    assert_eq!(net.monitors[0].strays().malformed, 4);
    let lines: Vec<&str> = net.notices.iter().map(|(_, line)| line.as_str()).collect();
    assert!(
        lines[0].starts_with("dropped a message from core 1: call 3: unknown message kind 224"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("Ping from core 1: it has no call id"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("SkbFacts from core 1: it has call id 9"),
        "{lines:?}"
    );
    assert!(
        lines[3].contains("core 9, which does not exist"),
        "{lines:?}"
    );
    assert!(
        net.links.iter().all(VecDeque::is_empty),
        "nothing was answered"
    );
}

#[test]
fn a_bad_replication_message_is_rejected_by_the_link() {
    let mut net = Net::new(2);
    let mut slot = encode(
        &Wire::from(crate::vm::Replicate {
            message: crate::vm::Protocol(atoll_replica::Message::Agreement(
                atoll_proto::two_phase::TwoPhaseMsg::Abort {
                    id: atoll_replica::OpId {
                        origin: CoreId(1),
                        seq: 0,
                    },
                },
            )),
        }),
        0,
        net.epoch(),
    )
    .next()
    .unwrap();
    slot[12] = 0x7F; // no such protocol message tag
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(1),
            slot: &slot,
        },
    );
    assert_eq!(net.monitors[0].strays().malformed, 1);
    assert!(
        net.notices[0]
            .1
            .contains("field Replicate.message: not a valid replication protocol message"),
        "{:?}",
        net.notices
    );
}

#[test]
fn proposals_commit_everywhere_from_this_core_and_from_others() {
    let mut net = Net::new(4);
    let local = net.propose(0, 0, Change::Map, 3);
    let remote = net.propose(0, 2, Change::Map, 5);
    for done in [&local, &remote] {
        assert_eq!(
            (done.outcome, done.acked, done.unreached),
            (OUTCOME_COMMITTED, 4, 0)
        );
        assert_eq!(
            done.describe(),
            "committed: 4 holders applied it, 0 unreached"
        );
    }
    let maps = net
        .effects
        .iter()
        .filter(|(_, effect)| {
            matches!(
                effect,
                Effect::Mapping(atoll_replica::Effect::MapPage { .. })
            )
        })
        .count();
    assert_eq!(maps, 8, "each of 4 cores mapped 2 pages");
    let hashes = net.hashes(1);
    assert!(hashes.iter().all(|&hash| hash == hashes[0]), "{hashes:x?}");
}

#[test]
fn an_abort_reason_reads_the_same_from_this_core_and_from_another() {
    let mut net = Net::new(4);
    assert!(net.propose(0, 1, Change::Map, 3).committed());
    let local = net.propose(1, 1, Change::Map, 3);
    let remote = net.propose(0, 1, Change::Map, 3);
    assert_eq!(local.outcome, OUTCOME_REFUSED);
    assert_eq!(local, remote);
    assert!(
        local.describe().starts_with("aborted: core "),
        "{}",
        local.describe()
    );
    assert!(
        local
            .describe()
            .ends_with("refused (the page is already mapped)")
    );
    let unmapped = net.propose(2, 3, Change::Unmap, 9);
    assert!(
        unmapped
            .describe()
            .ends_with("refused (the page is not mapped)")
    );
    let outside = net.propose(0, 3, Change::Map, 4096);
    assert_eq!(outside.outcome, OUTCOME_NOT_PROPOSED);
    assert_eq!(
        outside.describe(),
        "not proposed: page 4096 is outside the test space (pages 0 to 4095)"
    );
}

#[test]
fn a_silent_holder_times_the_vote_out_and_the_reason_names_it() {
    let mut net = Net::new(3);
    // Core 2 stays a member: the vote times out before it is suspected.
    for monitor in &mut net.monitors {
        monitor.set_detector(Detector {
            heartbeat: 10,
            suspect_after: 10_000,
        });
    }
    let ticket = net.call(0, 1, VmPropose { change: 0, page: 1 }, 10_000);
    net.deliver(0, 1);
    // Core 1 proposes; core 2 never gets its messages delivered.
    for _ in 0..250 {
        net.deliver(1, 0);
        net.deliver(0, 1);
        net.tick_all();
    }
    while net.deliver(1, 0) {}
    let done = net.vm_done(0, ticket);
    assert_eq!((done.outcome, done.core), (OUTCOME_TIMED_OUT, 2));
    assert_eq!(done.describe(), "aborted: no vote from core 2 in time");
}

/// A storm of `operations` on each of 4 cores (on shared pages, or each
/// core's own); the committed and aborted counts in all, with every
/// replica equal and no call left.
fn storm_on_four_cores(operations: u32, own: bool) -> (u32, u32) {
    let mut net = Net::new(4);
    let tickets: Vec<Ticket> = (0..4)
        .map(|core| {
            let storm = VmStorm {
                operations,
                pages: 3,
                seed: 0x5eed,
                own,
            };
            net.call(0, core, storm, 100_000)
        })
        .collect();
    net.settle();
    let (mut committed, mut aborted) = (0, 0);
    for ticket in tickets {
        match net.reply(0, ticket) {
            Wire::Vm(Inline(VmMessage::VmStormDone(VmStormDone {
                committed: c,
                aborted: a,
                ..
            }))) => {
                committed += c;
                aborted += a;
            }
            other => panic!("expected VmStormDone, got {other:?}"),
        }
    }
    let hashes = net.hashes(3);
    assert!(hashes.iter().all(|&hash| hash == hashes[0]), "{hashes:x?}");
    assert!(
        net.monitors
            .iter()
            .all(|monitor| monitor.calls_in_flight() == 0)
    );
    (committed, aborted)
}

#[test]
fn a_storm_on_every_core_finishes_every_proposal_and_leaves_equal_replicas() {
    let (committed, aborted) = storm_on_four_cores(12, false);
    assert_eq!(committed + aborted, 48);
    assert!(
        committed > 0 && aborted > 0,
        "{committed} committed, {aborted} aborted"
    );
}

#[test]
fn a_storm_on_pages_of_each_cores_own_commits_every_proposal() {
    assert_eq!(storm_on_four_cores(12, true), (48, 0));
}

#[test]
fn a_storm_past_the_test_space_is_refused_whole() {
    let mut net = Net::new(2);
    let storm = VmStorm {
        operations: 5,
        pages: 4000,
        seed: 1,
        own: true,
    };
    let ticket = net.call(0, 1, storm, 100_000);
    net.settle();
    match net.reply(0, ticket) {
        Wire::Vm(Inline(VmMessage::VmStormDone(done))) => {
            assert_eq!((done.committed, done.aborted), (0, 5));
        }
        other => panic!("expected VmStormDone, got {other:?}"),
    }
    assert_eq!(net.hashes(1)[0], net.hashes(1)[1]);
}

#[test]
fn ping_peer_times_round_trips_with_the_host_clock() {
    let mut net = Net::new(3);
    let ticket = net.call(0, 1, PingPeer { peer: 2, rounds: 5 }, 1000);
    net.settle();
    match net.reply(0, ticket) {
        Wire::Control(Inline(ControlMessage::PingReport(PingReport {
            status,
            median,
            min,
            max,
        }))) => {
            assert_eq!(status, PING_DONE);
            // Each round trip is two deliveries: core 2's, then core 1's.
            assert_eq!((min, median, max), (20, 20, 20));
        }
        other => panic!("expected PingReport, got {other:?}"),
    }
    for (peer, status) in [(1, PING_TO_ITSELF), (9, PING_PEER_NOT_RUNNING)] {
        let ticket = net.call(0, 1, PingPeer { peer, rounds: 5 }, 1000);
        net.settle();
        let Wire::Control(Inline(ControlMessage::PingReport(report))) = net.reply(0, ticket) else {
            panic!("expected PingReport");
        };
        assert_eq!(report.status, status);
    }
}

#[test]
fn a_stall_is_answered_first_and_carried_out_after_the_sends() {
    let mut net = Net::new(2);
    let ticket = net.call(0, 1, Stall { ms: 300 }, 10);
    net.settle();
    assert_eq!(net.reply(0, ticket), Wire::from(Stalled {}));
    assert_eq!(net.deferred, [(CoreId(1), Deferred::Stall { ms: 300 })]);
}

#[test]
fn tracing_pairs_each_send_with_its_receive_by_sequence_number() {
    let mut net = Net::new(3);
    // Traffic before tracing moves the links' counters on.
    net.propose(0, 1, Change::Map, 1);
    for core in 0..3 {
        let ticket = net.call(0, core, TraceSet { on: true }, 100);
        net.settle();
        net.reply(0, ticket);
    }
    net.trace.clear();
    net.propose(0, 2, Change::Map, 2);
    let sends: Vec<(u16, u16, u32, &str)> = net
        .trace
        .iter()
        .filter(|(_, e)| e.kind == TraceKind::Send)
        .map(|(core, e)| (core.0, e.peer, e.seq, e.name))
        .collect();
    let receives: Vec<(u16, u16, u32, &str)> = net
        .trace
        .iter()
        .filter(|(_, e)| e.kind == TraceKind::Receive)
        .map(|(core, e)| (e.peer, core.0, e.seq, e.name))
        .collect();
    let mut sorted_sends = sends.clone();
    sorted_sends.sort();
    let mut sorted_receives = receives.clone();
    sorted_receives.sort();
    assert_eq!(
        sorted_sends, sorted_receives,
        "every send received, every receive sent"
    );
    for name in [
        "VmPropose",
        "Prepare",
        "Vote",
        "Commit",
        "CommitAck",
        "VmDone",
    ] {
        assert!(sends.iter().any(|s| s.3 == name), "no {name} in {sends:?}");
    }
    let calls = net
        .trace
        .iter()
        .filter(|(_, e)| e.kind == TraceKind::CallStart)
        .count();
    let ends = net
        .trace
        .iter()
        .filter(|(_, e)| e.kind == TraceKind::CallEnd)
        .count();
    assert_eq!((calls, ends), (1, 1), "the shell's one call, start and end");
    assert!(
        net.trace
            .iter()
            .any(|(core, e)| core.0 == 2 && e.name == "2pc committed")
    );
    assert!(
        net.monitors[1].trace_start()[0] > 0,
        "core 1 had sent to core 0 before"
    );

    let ticket = net.call(0, 1, TraceDump {}, 10);
    net.settle();
    net.reply(0, ticket);
    assert!(
        net.effects
            .iter()
            .any(|&(core, ref e)| core.0 == 1 && *e == Effect::DumpTrace)
    );
}

#[test]
fn the_knowledge_base_replicas_fill_and_install_the_same_plan() {
    let mut net = Net::new(3);
    let mut sent = Vec::new();
    for core in 0..3 {
        let ticket = net.call(0, core, SkbGather { samples: 3 }, 1000);
        net.settle();
        match net.reply(0, ticket) {
            Wire::Skb(gathered) => match *gathered {
                SkbMessage::SkbGathered(SkbGathered { batches }) => sent.push(batches),
                other => panic!("expected SkbGathered, got {other:?}"),
            },
            other => panic!("expected SkbGathered, got {other:?}"),
        }
    }
    assert!(sent.iter().all(|&batches| batches >= 1), "{sent:?}");
    let total: u32 = sent.iter().sum();
    let mut loaded = Vec::new();
    for core in 0..3u16 {
        let ready = SkbReady {
            batches: total - sent[usize::from(core)],
        };
        let ticket = net.call(0, core, ready, 1000);
        net.settle();
        match net.reply(0, ticket) {
            Wire::Skb(reply) => match *reply {
                SkbMessage::SkbLoaded(SkbLoaded { facts, hash }) => loaded.push((facts, hash)),
                other => panic!("expected SkbLoaded, got {other:?}"),
            },
            other => panic!("expected SkbLoaded, got {other:?}"),
        }
    }
    assert!(loaded.iter().all(|&l| l == loaded[0]), "{loaded:?}");
    let rtts = net.monitors[1].knowledge().facts(Some("urpc_rtt")).unwrap();
    assert_eq!(rtts.len(), 6, "every ordered pair measured: {rtts:?}");
    for core in 0..3 {
        let install = SkbInstall {
            hash: loaded[0].1,
            install: true,
        };
        let ticket = net.call(0, core, install, 100);
        net.settle();
        assert_eq!(
            net.reply(0, ticket),
            Wire::from(SkbInstalled { installed: true })
        );
    }
    // A hash that is not the replica's installs nothing.
    let ticket = net.call(
        0,
        2,
        SkbInstall {
            hash: 1,
            install: true,
        },
        100,
    );
    net.settle();
    assert_eq!(
        net.reply(0, ticket),
        Wire::from(SkbInstalled { installed: false })
    );
}

#[test]
fn a_ready_whose_facts_never_come_answers_at_its_timeout() {
    let mut net = Net::new(2);
    let ticket = net.call(0, 1, SkbReady { batches: 4 }, 5000);
    net.settle();
    assert!(net.completion(0, ticket).is_none());
    net.run_ticks(1000);
    assert!(matches!(net.reply(0, ticket), Wire::Skb(_)));
    assert!(
        net.notices
            .iter()
            .any(|(core, line)| core.0 == 1 && line == "skb: 0 of 4 batches of facts came in time")
    );
}

#[test]
fn urpc_bench_runs_every_measurement_of_a_pair() {
    let mut net = Net::new(2);
    let ticket = net.call(0, 0, BenchPeer { peer: 1 }, 10_000);
    net.settle();
    // The IPI round trips, then the shared line, whose peer spins too.
    let mut measured = Vec::new();
    for _ in 0..2 {
        measured.extend(net.run_deferred(777));
        net.settle();
    }
    let measures: Vec<(u16, Measure)> = measured
        .into_iter()
        .filter_map(|(core, deferred)| match deferred {
            Deferred::Measure { measure, .. } => Some((core.0, measure)),
            Deferred::Stall { .. }
            | Deferred::Drain { .. }
            | Deferred::Scribble { .. }
            | Deferred::Process { .. }
            | Deferred::ProcessNote(_) => None,
        })
        .collect();
    assert_eq!(
        measures,
        [
            (
                0,
                Measure::IpiRoundTrips {
                    peer: CoreId(1),
                    rounds: 64
                }
            ),
            (
                0,
                Measure::SharedLine {
                    peer: CoreId(1),
                    rounds: 64
                }
            ),
            (
                1,
                Measure::SharedLineAnswer {
                    lead: CoreId(0),
                    rounds: 64
                }
            ),
        ]
    );
    match net.reply(0, ticket) {
        Wire::Bench(Inline(BenchMessage::BenchReport(BenchReport {
            status,
            urpc_round_trip,
            ipi_round_trip,
            shared_line_round_trip,
            stream_per_message,
        }))) => {
            assert_eq!(status, BENCH_DONE);
            assert_eq!((ipi_round_trip, shared_line_round_trip), (777, 777));
            assert!(urpc_round_trip > 0 && stream_per_message > 0);
        }
        other => panic!("expected BenchReport, got {other:?}"),
    }
    assert!(net.trace.is_empty(), "tracing is off");
    let streams = net
        .notices
        .iter()
        .filter(|(_, line)| line.contains("Stream"))
        .count();
    assert_eq!(
        streams, 0,
        "all {STREAM_MESSAGES} stream messages were taken: {:?}",
        net.notices
    );
}

#[test]
fn fig3_clients_update_by_lock_or_by_message() {
    let mut net = Net::new(3);
    let by_message = net.call(
        0,
        1,
        Fig3Run {
            method: FIG3_MESSAGES,
            lines: 4,
            updates: 10,
        },
        10_000,
    );
    let by_lock = net.call(
        0,
        2,
        Fig3Run {
            method: FIG3_SHARED_MEMORY,
            lines: 4,
            updates: 10,
        },
        10_000,
    );
    net.settle();
    net.run_deferred(500);
    net.settle();
    let cycles = |wire: Wire| match wire {
        Wire::Bench(Inline(BenchMessage::Fig3Done(Fig3Done { cycles_per_update }))) => {
            cycles_per_update
        }
        other => panic!("expected Fig3Done, got {other:?}"),
    };
    assert_eq!(cycles(net.reply(0, by_lock)), 500);
    // Each update is a round trip of two deliveries, and a few steps of
    // the other client's go between them.
    let per_update = cycles(net.reply(0, by_message));
    assert!(
        (2 * CYCLES_PER_STEP..4 * CYCLES_PER_STEP).contains(&per_update),
        "{per_update}"
    );
}

#[test]
fn bench_shootdown_measures_each_method_from_the_boot_core_only() {
    let mut net = Net::new(4);
    for method in 1..4 {
        let ticket = net.call(0, 0, BenchShootdown { method, targets: 3 }, 1000);
        net.settle();
        match net.reply(0, ticket) {
            Wire::Bench(Inline(BenchMessage::BenchShot(BenchShot { status, cycles }))) => {
                assert_eq!(status, BENCH_DONE, "method {method}");
                assert!(cycles > 0);
            }
            other => panic!("expected BenchShot, got {other:?}"),
        }
    }
    let invalidations = net
        .effects
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Effect::Mapping(atoll_replica::Effect::InvalidateTlb { .. })
            )
        })
        .count();
    assert_eq!(
        invalidations,
        3 * 4,
        "3 methods, each on the boot core and 3 targets"
    );
    let ticket = net.call(
        0,
        0,
        BenchShootdown {
            method: 0,
            targets: 2,
        },
        1000,
    );
    let ipi = net.deferred.iter().any(|(_, d)| {
        matches!(d, Deferred::Measure { measure: Measure::IpiShootdown { targets }, .. } if *targets == [CoreId(1), CoreId(2)])
    });
    assert!(ipi, "{:?}", net.deferred);
    net.run_deferred(99);
    assert_eq!(
        net.reply(0, ticket),
        Wire::from(BenchShot {
            status: BENCH_DONE,
            cycles: 99
        })
    );
    let elsewhere = net.call(
        0,
        1,
        BenchShootdown {
            method: 1,
            targets: 2,
        },
        1000,
    );
    net.settle();
    assert_ne!(
        net.reply(0, elsewhere),
        Wire::from(BenchShot {
            status: BENCH_DONE,
            cycles: 0
        })
    );
}

#[test]
fn a_monitor_alone_with_nothing_in_flight_wants_no_ticks_and_a_member_does() {
    let mut net = Net::without(2, &[1]);
    assert!(!net.monitors[0].wants_ticks());
    let ticket = net.call(0, 0, Ping {}, 10);
    net.reply(0, ticket);
    assert!(!net.monitors[0].wants_ticks());
    let net = Net::new(2);
    assert!(net.monitors[0].wants_ticks(), "it watches core 1");
}

mod membership;
mod spaces;

/// The token of the request core `core`'s host was asked to carry out.
fn process_token(net: &Net, core: u16, wanted: &crate::process::ProcessRequest) -> u32 {
    match net.deferred.iter().find_map(|(at, work)| match work {
        Deferred::Process { token, request } if at.0 == core && request == wanted => Some(*token),
        _ => None,
    }) {
        Some(token) => token,
        None => panic!(
            "core {core}'s host was not asked {wanted:?}: {:?}",
            net.deferred
        ),
    }
}

#[test]
fn a_core_asked_to_run_a_program_has_its_host_run_it_and_answers_once_it_ended() {
    use crate::process::{ENDED_EXIT, ListProcesses, ProcessRequest, ProgramEnded, RunProgram};
    let mut net = Net::new(2);
    let name = atoll_iface::Bytes::new(b"hello").unwrap();
    let args = atoll_iface::Bytes::new(b"a b").unwrap();
    let cores = crate::process::CoreSet(Members::one(CoreId(1)));
    let first = net.call(0, 1, RunProgram { cores, name, args }, 1000);
    net.settle();
    let request = ProcessRequest::Run {
        cores: Members::one(CoreId(1)),
        name: "hello".into(),
        args: "a b".into(),
    };
    let token = process_token(&net, 1, &request);
    assert!(
        net.completion(0, first).is_none(),
        "answered before the program ended"
    );
    // Another request meanwhile is the host's to answer too, by its own token.
    let second = net.call(0, 1, ListProcesses {}, 1000);
    net.settle();
    let list_token = process_token(&net, 1, &ProcessRequest::List);
    assert_ne!(token, list_token);
    let mut out = Output::default();
    let ended = ProgramEnded {
        status: 7,
        ..ProgramEnded::only(ENDED_EXIT, 1025)
    };
    net.monitors[1].process_answer(net.now, token, ended.clone(), &mut out);
    // A token answered twice (or never given) is dropped.
    net.monitors[1].process_answer(net.now, token, ended.clone(), &mut out);
    net.absorb(CoreId(1), out);
    net.settle();
    assert_eq!(net.reply(0, first), Wire::from(ended));
    assert!(
        net.completion(0, second).is_none(),
        "the list is not answered yet"
    );
}

/// The protocols' timeouts follow the failure detector when it is set at
/// run time (`view detector`), not only at boot: a vote still waits twice
/// the time a member takes to be suspected.
#[test]
fn the_protocols_timeouts_follow_the_detector_set_at_run_time() {
    use crate::membership::SetDetector;
    let mut net = Net::new(2);
    let before = net.monitors[1].mappings().timeouts();
    assert_eq!(
        before.vote,
        2 * u32::try_from(Detector::DEFAULT.suspect_after).unwrap()
    );
    let ticket = net.call(
        0,
        1,
        SetDetector {
            heartbeat: 50,
            suspect_after: 700,
        },
        100,
    );
    net.settle();
    net.reply(0, ticket);
    let after = net.monitors[1].mappings().timeouts();
    assert_eq!((after.vote, after.round, after.relay), (1400, 1400, 700));
}
