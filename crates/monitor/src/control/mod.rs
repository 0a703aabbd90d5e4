//! The `control` service: URPC round trips, tracing, stalls, and stray
//! writes to show isolation.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use atoll_proto::CoreId;

pub use self::messages::*;
use crate::base::{Cx, Requester, Service};
use crate::calls::{CallError, OpEvent, OpRef};
use crate::output::{Deferred, Effect};
use crate::wire::{ServiceId, Wire};

pub(crate) mod messages;

/// How long a round trip may take before the peer counts as not answering,
/// in ticks.
pub const PEER_TIMEOUT: u64 = 200;

/// The median, least and greatest of `samples`; zeros for none.
pub fn summary(mut samples: Vec<u64>) -> (u64, u64, u64) {
    samples.sort_unstable();
    (
        samples.get(samples.len() / 2).copied().unwrap_or(0),
        samples.first().copied().unwrap_or(0),
        samples.last().copied().unwrap_or(0),
    )
}

/// Round trips to one peer, one after another, each timed from its call to
/// its reply.
pub(crate) struct RoundTrips {
    peer: CoreId,
    rounds: u32,
    started: u64,
    samples: Vec<u64>,
}

impl RoundTrips {
    /// Starts `rounds` (at least one) round trips to `peer` for `op`.
    pub fn start(cx: &mut Cx<'_>, op: OpRef, peer: CoreId, rounds: u32) -> Self {
        let mut trips = RoundTrips {
            peer,
            rounds: rounds.max(1),
            started: 0,
            samples: Vec::new(),
        };
        trips.next(cx, op);
        trips
    }

    pub fn peer(&self) -> CoreId {
        self.peer
    }

    fn next(&mut self, cx: &mut Cx<'_>, op: OpRef) {
        self.started = cx.now();
        cx.call(self.peer, Ping {}, op, PEER_TIMEOUT);
    }

    /// Takes one call's outcome: the samples once all round trips are done,
    /// `None` while the next is on its way, or the error that ended them.
    pub fn reply(
        &mut self,
        cx: &mut Cx<'_>,
        op: OpRef,
        reply: Result<Wire, CallError>,
    ) -> Result<Option<Vec<u64>>, CallError> {
        reply?;
        self.samples.push(cx.now() - self.started);
        if self.samples.len() < self.rounds as usize {
            self.next(cx, op);
            return Ok(None);
        }
        Ok(Some(core::mem::take(&mut self.samples)))
    }
}

pub(crate) struct Control {
    pings: BTreeMap<u32, (Requester, RoundTrips)>,
}

impl Control {
    pub fn new() -> Self {
        Self {
            pings: BTreeMap::new(),
        }
    }
}

impl Service for Control {
    type Message = ControlMessage;

    fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, call: u32, message: ControlMessage) {
        let requester = cx.requester(from, call);
        match message {
            ControlMessage::Ping(Ping {}) => cx.reply(requester, Pong {}),
            ControlMessage::PingPeer(PingPeer { peer, rounds }) => {
                let peer = CoreId(peer);
                if peer == cx.me() {
                    return cx.reply(requester, PingReport::refused(PING_TO_ITSELF));
                }
                if !cx.is_member(peer) {
                    return cx.reply(requester, PingReport::refused(PING_PEER_NOT_RUNNING));
                }
                if rounds == 0 {
                    return cx.reply(requester, PingReport::refused(PING_DONE));
                }
                let op = cx.new_op(ServiceId::Control);
                let trips = RoundTrips::start(cx, op, peer, rounds);
                self.pings.insert(op.key, (requester, trips));
            }
            ControlMessage::TraceSet(TraceSet { on }) => {
                cx.set_tracing(on);
                cx.reply(requester, TraceSetDone {});
            }
            ControlMessage::TraceDump(TraceDump {}) => {
                cx.effect(Effect::DumpTrace);
                cx.reply(requester, TraceDumped {});
            }
            ControlMessage::Stall(Stall { ms }) => {
                cx.reply(requester, Stalled {});
                cx.defer(Deferred::Stall { ms });
            }
            ControlMessage::Scribble(Scribble { address }) => {
                cx.reply(requester, Scribbled {});
                cx.defer(Deferred::Scribble { address });
            }
            ControlMessage::CoreReport(CoreReport {}) => {
                let (ticks, free_frames) = cx.base.counters;
                cx.reply(requester, CoreReported { ticks, free_frames });
            }
            ControlMessage::Pong(_)
            | ControlMessage::CoreReported(_)
            | ControlMessage::PingReport(_)
            | ControlMessage::TraceSetDone(_)
            | ControlMessage::TraceDumped(_)
            | ControlMessage::Stalled(_)
            | ControlMessage::Scribbled(_) => {}
        }
    }

    fn event(&mut self, cx: &mut Cx<'_>, op: OpRef, event: OpEvent) {
        let OpEvent::Reply(reply) = event else {
            return;
        };
        let Some((requester, trips)) = self.pings.get_mut(&op.key) else {
            return;
        };
        let report = match trips.reply(cx, op, reply) {
            Ok(None) => return,
            Ok(Some(samples)) => {
                let (median, min, max) = summary(samples);
                PingReport {
                    status: PING_DONE,
                    median,
                    min,
                    max,
                }
            }
            Err(CallError::NoAnswer { .. }) => PingReport::refused(PING_NO_ANSWER),
            Err(CallError::NotRunning { .. } | CallError::Down { .. }) => {
                PingReport::refused(PING_PEER_NOT_RUNNING)
            }
        };
        let requester = *requester;
        self.pings.remove(&op.key);
        cx.reply(requester, report);
    }
}
