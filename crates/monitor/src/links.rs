//! One link per peer, this core included: the framing of what goes out and
//! the reassembly of what comes in, with the per-link sequence numbers the
//! trace pairs sends and receives by.
//!
//! A link is bidirectional: requests go out under this monitor's call ids
//! and their replies come back on the same link, while the peer's requests
//! come in under its ids. The link to this core itself is the loopback:
//! what is sent on it is received in the same step, through the same
//! reassembly and dispatch as any other message, so local and remote
//! requests take one path.
//!
//! Every message goes out stamped with the epoch of the view this core
//! sends in. Only the messages that cross views (`Wire::crosses_views`:
//! the membership protocol's, and a joiner's welcome) go to cores outside
//! that view; the others are dropped and counted (`Strays::unsent`), so
//! that nothing piles up for a core that is not there. A link starts
//! afresh when the core at its other end stops and a new kernel is about
//! to start there (`reset`): its generation counts how often, so that an
//! answer owed to the old kernel is not sent to the new one.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use atoll_iface::{Envelope, Reassembler, Rejected, encode};
use atoll_urpc::Payload;

use atoll_proto::CoreId;

use crate::output::Output;
use crate::trace::{TraceEvent, TraceKind};
use crate::wire::Wire;
use atoll_proto::membership::Members;

struct Link {
    /// One message at a time is in reassembly: a sender sends each
    /// message's slots back to back.
    reassembler: Reassembler<Wire>,
    /// Messages sent on the link so far.
    sent: u32,
    /// Messages received on the link so far.
    received: u32,
    /// The tick of the last message sent on the link.
    last_sent: u64,
    /// How many times the link was started afresh (`reset`).
    generation: u32,
}

impl Link {
    fn new() -> Self {
        Link {
            reassembler: Reassembler::new(1),
            sent: 0,
            received: 0,
            last_sent: 0,
            generation: 0,
        }
    }
}

pub(crate) struct Links {
    me: CoreId,
    links: Vec<Link>,
    /// The epoch messages go out in, and the cores the services' messages
    /// may go to.
    epoch: u32,
    reachable: Members,
    /// The services' messages dropped for going to a non-member (and any
    /// message for a core the machine does not have).
    pub(crate) unsent: u64,
    /// Slots sent on the loopback, to be received within the step.
    loopback: VecDeque<Payload>,
}

impl Links {
    pub fn new(me: CoreId, cores: u16) -> Self {
        Self {
            me,
            links: (0..cores).map(|_| Link::new()).collect(),
            epoch: 0,
            reachable: Members::one(me),
            unsent: 0,
            loopback: VecDeque::new(),
        }
    }

    /// Sends in `epoch` from now on, the services' messages to `reachable`.
    pub fn send_in(&mut self, epoch: u32, reachable: Members) {
        self.epoch = epoch;
        self.reachable = reachable;
    }

    /// The tick of the last message sent to `core`.
    pub fn last_sent(&self, core: CoreId) -> u64 {
        self.links
            .get(usize::from(core.0))
            .map_or(0, |link| link.last_sent)
    }

    /// Frames `message` under `call` for `to`, in this core's epoch, and returns its sequence
    /// number on the link; its slots go to `sends` (or the loopback).
    pub fn send(
        &mut self,
        to: CoreId,
        call: u32,
        message: &Wire,
        sends: &mut Vec<(CoreId, Payload)>,
    ) -> u32 {
        let link = &mut self.links[usize::from(to.0)];
        let seq = link.sent;
        link.sent = link.sent.wrapping_add(1);
        for slot in encode(message, call, self.epoch) {
            if to == self.me {
                self.loopback.push_back(slot);
            } else {
                sends.push((to, slot));
            }
        }
        seq
    }

    /// Takes one slot from `from`: a whole message with its sequence number
    /// on the link, `None` while a message is in reassembly, or the error
    /// that dropped it.
    pub fn receive(
        &mut self,
        from: CoreId,
        slot: &Payload,
    ) -> Result<Option<(Envelope<Wire>, u32)>, Rejected> {
        let link = &mut self.links[usize::from(from.0)];
        let envelope = link.reassembler.push(slot)?;
        Ok(envelope.map(|envelope| {
            let seq = link.received;
            link.received = link.received.wrapping_add(1);
            (envelope, seq)
        }))
    }

    /// Frames and sends one message, recording it in the trace, unless it
    /// is a service's message for a core outside the view.
    #[allow(clippy::too_many_arguments)]
    pub fn transmit(
        &mut self,
        now: u64,
        tick: u64,
        tracing: bool,
        to: CoreId,
        call: u32,
        message: &Wire,
        out: &mut Output,
    ) {
        if usize::from(to.0) >= self.links.len()
            || !message.crosses_views() && !self.reachable.contains(to)
        {
            self.unsent += 1;
            if tracing {
                out.trace.push(TraceEvent {
                    peer: to.0,
                    call,
                    ..TraceEvent::new(now, TraceKind::Drop, "to a non-member")
                });
            }
            return;
        }
        self.links[usize::from(to.0)].last_sent = tick;
        let seq = self.send(to, call, message, &mut out.sends);
        if tracing {
            out.trace.push(TraceEvent {
                peer: to.0,
                call,
                seq,
                ..TraceEvent::new(now, TraceKind::Send, message.label())
            });
        }
    }

    /// Starts the link to `core` afresh: nothing in reassembly, no message
    /// sent or received on it, as the rings under it are; whether `core`
    /// exists.
    pub fn reset(&mut self, core: CoreId) -> bool {
        let Some(link) = self.links.get_mut(usize::from(core.0)) else {
            return false;
        };
        *link = Link {
            generation: link.generation.wrapping_add(1),
            ..Link::new()
        };
        true
    }

    /// How many times the link to `core` was started afresh.
    pub fn generation(&self, core: CoreId) -> u32 {
        self.links
            .get(usize::from(core.0))
            .map_or(0, |link| link.generation)
    }

    /// The next slot sent on the loopback, if any.
    pub fn next_loopback(&mut self) -> Option<Payload> {
        self.loopback.pop_front()
    }

    /// Messages sent so far on each link, by peer.
    pub fn sent(&self) -> Vec<u32> {
        self.links.iter().map(|link| link.sent).collect()
    }

    /// Whether `core` is a core of the machine.
    pub fn exists(&self, core: CoreId) -> bool {
        usize::from(core.0) < self.links.len()
    }
}
