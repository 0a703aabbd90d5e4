//! The `bench` service: the benchmarks' own messages and operations, kept
//! out of the other services' interfaces.
//!
//! - `urpc bench` (`BenchPeer`): from one core to a peer, URPC round trips
//!   through the monitors, IPI round trips and round trips on one shared
//!   cache line (the floor for any message passing), and the cost per
//!   message of a one-way stream.
//! - `bench fig3` (`Fig3Run`, `Fig3Update`): the multikernel paper's
//!   Figure 3: k cache lines updated under a shared lock by each client,
//!   against one message per update to the core that owns them.
//! - `bench shootdown` (`BenchShootdown`): a TLB shootdown from the boot
//!   core to 1 up to all other cores, by an IPI to each target and a shared
//!   acknowledgement counter, or by the mappings' single-phase commit over
//!   unicast, a flat multicast, or the knowledge base's tree.
//!
//! What only the host can measure (IPIs, spinning on shared memory) it asks
//! for as a [`crate::Deferred::Measure`] and gets back as
//! [`Input::Measured`](crate::Input::Measured).

use alloc::collections::BTreeMap;

use atoll_proto::Shape;
use atoll_replica::{Completion, Request};

use atoll_proto::CoreId;

pub use self::messages::*;
use crate::base::{Cx, Requester, Service};
use crate::calls::{OpEvent, OpRef};
use crate::control::{RoundTrips, summary};
use crate::output::Deferred;
use crate::vm::messages::{TEST_SPACE_BASE, shootdown_space, shootdown_targets};
use crate::wire::{ServiceId, Wire};

pub(crate) mod messages;

/// Which measurement of `urpc bench` a pair run is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Urpc,
    Ipi,
    Line,
    Stream,
}

/// A `BenchPeer` in progress.
struct PairRun {
    requester: Requester,
    peer: CoreId,
    phase: Phase,
    trips: RoundTrips,
    started: u64,
    report: BenchReport,
}

/// A `bench fig3` client in progress.
struct Fig3Client {
    requester: Requester,
    lines: u8,
    left: u32,
    updates: u32,
    started: u64,
}

enum Run {
    Pair(PairRun),
    Fig3(Fig3Client),
    Shootdown { requester: Requester, started: u64 },
}

pub(crate) struct Bench {
    runs: BTreeMap<u32, Run>,
    /// `Stream` messages received from each core in its current stream.
    streamed: BTreeMap<CoreId, u32>,
    /// This core's own copy of `bench fig3`'s structure, as the owner of
    /// the message method keeps it.
    fig3_copy: [[u64; 8]; FIG3_LINES],
}

impl Bench {
    pub fn new() -> Self {
        Self {
            runs: BTreeMap::new(),
            streamed: BTreeMap::new(),
            fig3_copy: [[0; 8]; FIG3_LINES],
        }
    }

    fn start(&mut self, cx: &mut Cx<'_>, run: Run) -> OpRef {
        let op = cx.new_op(ServiceId::Bench);
        self.runs.insert(op.key, run);
        op
    }

    /// Carries a pair run on with what its current measurement gave; the
    /// run's status once it is over.
    fn pair_step(cx: &mut Cx<'_>, op: OpRef, run: &mut PairRun, event: OpEvent) -> Option<u8> {
        match (run.phase, event) {
            (Phase::Urpc, OpEvent::Reply(reply)) => match run.trips.reply(cx, op, reply) {
                Ok(None) => None,
                Ok(Some(samples)) => {
                    run.report.urpc_round_trip = summary(samples).0;
                    run.phase = Phase::Ipi;
                    let measure = Measure::IpiRoundTrips {
                        peer: run.peer,
                        rounds: ROUNDS,
                    };
                    cx.defer(Deferred::Measure { op, measure });
                    None
                }
                Err(_) => Some(BENCH_NO_ANSWER),
            },
            (Phase::Ipi, OpEvent::Measured(Some(cycles))) => {
                run.report.ipi_round_trip = cycles;
                run.phase = Phase::Line;
                cx.send(run.peer, SharedLine { rounds: ROUNDS });
                let measure = Measure::SharedLine {
                    peer: run.peer,
                    rounds: ROUNDS,
                };
                cx.defer(Deferred::Measure { op, measure });
                None
            }
            (Phase::Line, OpEvent::Measured(Some(cycles))) => {
                run.report.shared_line_round_trip = cycles;
                run.phase = Phase::Stream;
                run.started = cx.now();
                for _ in 0..STREAM_MESSAGES {
                    cx.send(run.peer, Stream {});
                }
                cx.call(run.peer, StreamEnd {}, op, TIMEOUT);
                None
            }
            (Phase::Stream, OpEvent::Reply(reply)) => {
                let count = reply.ok().and_then(Wire::take::<StreamCount>);
                if count.is_none_or(|count| count.received != STREAM_MESSAGES) {
                    return Some(BENCH_NO_ANSWER);
                }
                run.report.stream_per_message =
                    (cx.now() - run.started) / u64::from(STREAM_MESSAGES);
                Some(BENCH_DONE)
            }
            _ => Some(BENCH_NO_ANSWER),
        }
    }

    /// Sends a `bench fig3` client's next update by message; its cycles per
    /// update once it has made them all.
    fn fig3_next(cx: &mut Cx<'_>, op: OpRef, client: &mut Fig3Client) -> Option<u64> {
        if client.left == 0 {
            return Some((cx.now() - client.started) / u64::from(client.updates.max(1)));
        }
        client.left -= 1;
        let update = Fig3Update {
            lines: client.lines,
        };
        cx.call(client.requester.core, update, op, TIMEOUT);
        None
    }

    /// Carries a `bench fig3` client on; its cycles per update once it is
    /// done (`u64::MAX` if it failed).
    fn fig3_step(
        cx: &mut Cx<'_>,
        op: OpRef,
        client: &mut Fig3Client,
        event: OpEvent,
    ) -> Option<u64> {
        match event {
            OpEvent::Measured(cycles) => Some(cycles.unwrap_or(u64::MAX)),
            OpEvent::Reply(Ok(_)) => Self::fig3_next(cx, op, client),
            OpEvent::Reply(Err(_)) | OpEvent::Mapping(_) => Some(u64::MAX),
        }
    }
}

impl Service for Bench {
    type Message = BenchMessage;

    fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, call: u32, message: BenchMessage) {
        let requester = cx.requester(from, call);
        match message {
            BenchMessage::BenchPeer(BenchPeer { peer }) => {
                let peer = CoreId(peer);
                let mut report = BenchReport {
                    status: BENCH_DONE,
                    urpc_round_trip: 0,
                    ipi_round_trip: 0,
                    shared_line_round_trip: 0,
                    stream_per_message: 0,
                };
                if peer == cx.me() || !cx.is_member(peer) {
                    report.status = BENCH_PEER_NOT_RUNNING;
                    return cx.reply(requester, report);
                }
                // The trips' replies come to `event`, after this returns.
                let op = cx.new_op(ServiceId::Bench);
                let trips = RoundTrips::start(cx, op, peer, ROUNDS);
                let run = PairRun {
                    requester,
                    peer,
                    phase: Phase::Urpc,
                    trips,
                    started: 0,
                    report,
                };
                self.runs.insert(op.key, Run::Pair(run));
            }
            BenchMessage::SharedLine(SharedLine { rounds }) => {
                // The answer side has no operation here: its result is
                // not used.
                let op = cx.new_op(ServiceId::Bench);
                let measure = Measure::SharedLineAnswer { lead: from, rounds };
                cx.defer(Deferred::Measure { op, measure });
            }
            BenchMessage::Stream(Stream {}) => *self.streamed.entry(from).or_default() += 1,
            BenchMessage::StreamEnd(StreamEnd {}) => {
                let received = self.streamed.remove(&from).unwrap_or(0);
                cx.reply(requester, StreamCount { received });
            }
            BenchMessage::Fig3Run(Fig3Run {
                method,
                lines,
                updates,
            }) => {
                let lines = lines.min(FIG3_LINES as u8);
                let mut client = Fig3Client {
                    requester,
                    lines,
                    left: updates,
                    updates,
                    started: cx.now(),
                };
                let op = cx.new_op(ServiceId::Bench);
                let done = match method {
                    FIG3_SHARED_MEMORY => {
                        let measure = Measure::LockedUpdates { lines, updates };
                        cx.defer(Deferred::Measure { op, measure });
                        None
                    }
                    FIG3_MESSAGES => Self::fig3_next(cx, op, &mut client),
                    _ => Some(u64::MAX),
                };
                match done {
                    Some(cycles_per_update) => cx.reply(requester, Fig3Done { cycles_per_update }),
                    None => {
                        self.runs.insert(op.key, Run::Fig3(client));
                    }
                }
            }
            BenchMessage::Fig3Update(Fig3Update { lines }) => {
                for line in self.fig3_copy.iter_mut().take(usize::from(lines)) {
                    line[0] += 1;
                }
                cx.reply(requester, Fig3Updated {});
            }
            BenchMessage::BenchShootdown(BenchShootdown { method, targets }) => {
                let refused = |status| BenchShot { status, cycles: 0 };
                // The spaces' holders: a member that left stays one, and
                // counts unreached.
                let members: alloc::vec::Vec<CoreId> = cx.mappings().0.members().iter().collect();
                let others = members.len().saturating_sub(1) as u16;
                if cx.me() != cx.boot_core() || targets == 0 || targets > others {
                    return cx.reply(requester, refused(BENCH_BAD_REQUEST));
                }
                let started = cx.now();
                let op = self.start(cx, Run::Shootdown { requester, started });
                let shape = match method {
                    0 => {
                        let targets =
                            shootdown_targets(&members, cx.boot_core(), targets).collect();
                        let measure = Measure::IpiShootdown { targets };
                        return cx.defer(Deferred::Measure { op, measure });
                    }
                    1 => Shape::Unicast,
                    2 => Shape::Flat,
                    3 => Shape::Planned,
                    _ => {
                        self.runs.remove(&op.key);
                        return cx.reply(requester, refused(BENCH_BAD_REQUEST));
                    }
                };
                let request = Request::Shootdown {
                    space: shootdown_space(targets),
                    vaddr: TEST_SPACE_BASE,
                };
                let (mappings, mut mapping_cx) = cx.mappings();
                if mappings
                    .submit(&mut mapping_cx, request, shape, op)
                    .is_err()
                {
                    self.runs.remove(&op.key);
                    cx.reply(requester, refused(BENCH_BAD_REQUEST));
                }
            }
            BenchMessage::BenchReport(_)
            | BenchMessage::StreamCount(_)
            | BenchMessage::Fig3Done(_)
            | BenchMessage::Fig3Updated(_)
            | BenchMessage::BenchShot(_) => {}
        }
    }

    fn event(&mut self, cx: &mut Cx<'_>, op: OpRef, event: OpEvent) {
        let Some(run) = self.runs.get_mut(&op.key) else {
            return;
        };
        match run {
            Run::Pair(pair) => {
                if let Some(status) = Self::pair_step(cx, op, pair, event) {
                    let mut report = pair.report.clone();
                    report.status = status;
                    let requester = pair.requester;
                    self.runs.remove(&op.key);
                    cx.reply(requester, report);
                }
            }
            Run::Fig3(client) => {
                if let Some(cycles_per_update) = Self::fig3_step(cx, op, client, event) {
                    let requester = client.requester;
                    self.runs.remove(&op.key);
                    cx.reply(requester, Fig3Done { cycles_per_update });
                }
            }
            Run::Shootdown { requester, started } => {
                let (status, cycles) = match event {
                    OpEvent::Measured(Some(cycles)) => (BENCH_DONE, cycles),
                    OpEvent::Mapping(Completion::ShootdownDone { report, .. }) => {
                        let status = if report.is_complete() {
                            BENCH_DONE
                        } else {
                            BENCH_INCOMPLETE
                        };
                        (status, cx.now() - *started)
                    }
                    _ => (BENCH_NO_ANSWER, 0),
                };
                let requester = *requester;
                self.runs.remove(&op.key);
                cx.reply(requester, BenchShot { status, cycles });
            }
        }
    }
}
