//! The monitor: each core's operating system as one sans-IO event loop.
//!
//! Every core runs one [`Monitor`]. Its host (the bare-metal kernel, or the
//! simulator) feeds it [`Input`]s, one at a time, each with the time:
//! slots received from a peer's ring, timer ticks, cores coming up and
//! going down, and the results of measurements it asked for. Local code
//! (the shell now, system calls later) makes calls with
//! [`Monitor::call`]. After each step the host carries out the [`Output`]:
//! the [`Effect`]s on this core (page tables, TLB), then the slots to send,
//! then the [`Deferred`] work (measurements, a stall), and hands the
//! completions to the local callers and the trace events to its ring.
//!
//! Inside, one link per peer carries real call ids (`links`); the calls in
//! flight are one table keyed by call id (`calls`), each owned by a local
//! caller or by an operation of a service; a reply that matches no call in
//! flight is dropped and counted ([`Strays`]). Nothing waits: a service
//! that needs other cores makes calls and goes on when their replies, or
//! their failures, arrive as events. The local core is a peer like any
//! other: a call to it goes through the loopback link and the same
//! dispatch, so local and remote requests take one path and give one
//! result.
//!
//! The services, each behind the one `Service` interface and each with
//! its own messages ([`wire`] multiplexes them):
//! - [`control`]: round trips, tracing, stalls;
//! - [`vm`]: the replicated mappings of the test address space
//!   (`atoll-replica`, two-phase commit and TLB shootdown);
//! - [`skb`]: this core's replica of the system knowledge base;
//! - [`bench`](mod@bench): the benchmarks' own messages and measurements.
//!
//! It depends on `atoll-iface` (framing), `atoll-urpc` (the slot type),
//! `atoll-replica` and `atoll-proto` (the mappings and their protocols) and
//! `atoll-skb`; it touches no hardware, clock or channel.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod base;
pub mod bench;
mod calls;
pub mod control;
mod links;
mod mappings;
mod output;
pub mod skb;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;
pub mod vm;
pub mod wire;

pub use atoll_proto::CoreId;
pub use calls::{CallError, OpRef, Strays, Ticket};
pub use mappings::Mappings;
pub use output::{Deferred, Effect, Input, Output};
pub use trace::{TraceEvent, TraceKind};
pub use wire::{ServiceId, Wire};

use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec;
use atoll_iface::{Interface, Role};
use atoll_urpc::Payload;

use base::{Base, Cx, Service};
use bench::Bench;
use calls::{Calls, Event, OpEvent, Owner};
use control::Control;
use links::Links;
use skb::Skb;
use vm::Vm;

/// What a monitor is told once, when its core starts.
pub struct Config {
    pub me: CoreId,
    /// Cores of the machine: ids `0..cores`.
    pub cores: u16,
    /// The core that booted the machine and runs the shell.
    pub boot_core: CoreId,
    /// The frame this core maps pages of the test address space to.
    pub frame: u64,
    /// The knowledge base's facts from the firmware (alike on every core)
    /// and this core's own (CPUID).
    pub facts: skb::Facts,
}

/// One core's monitor.
pub struct Monitor {
    base: Base,
    control: Control,
    vm: Vm,
    skb: Skb,
    bench: Bench,
}

impl Monitor {
    /// The monitor of core `config.me`. Other cores count as down until the
    /// host says they are up ([`Input::CoreUp`]).
    pub fn new(config: Config, out: &mut Output) -> Self {
        let cores = config.cores;
        let mut monitor = Monitor {
            base: Base {
                me: config.me,
                cores,
                boot_core: config.boot_core,
                now: 0,
                tick: 0,
                up: vec![false; usize::from(cores)],
                links: Links::new(config.me, cores),
                calls: Calls::new(),
                mappings: Mappings::new(config.me, cores, config.boot_core, config.frame),
                tracing: false,
                trace_start: vec![0; usize::from(cores)],
                strays: Strays::default(),
                events: VecDeque::new(),
                next_key: 0,
                next_ticket: 0,
            },
            control: Control::new(),
            vm: Vm::new(),
            skb: Skb::new(config.facts, out),
            bench: Bench::new(),
        };
        monitor.base.up[usize::from(config.me.0)] = true;
        monitor
    }

    /// Handles one input and everything it sets off on this core.
    pub fn step(&mut self, now: u64, input: Input<'_>, out: &mut Output) {
        self.base.now = now;
        match input {
            Input::Slot { from, slot } => self.receive_slot(from, slot, out),
            Input::Tick => self.tick(out),
            Input::CoreUp(core) => {
                if let Some(up) = self.base.up.get_mut(usize::from(core.0)) {
                    *up = true;
                }
            }
            Input::CoreDown(core) => self.core_down(core, out),
            Input::Measured { op, cycles } => self.base.events.push_back(Event {
                op,
                event: OpEvent::Measured(cycles),
            }),
        }
        self.settle(out);
    }

    /// Calls `to` (this core too) with `request` for local code; the reply
    /// or the call's failure comes in `out.completions` with the returned
    /// ticket, in this step or a later one. The call fails with
    /// [`CallError::NoAnswer`] after `timeout` ticks.
    pub fn call(
        &mut self,
        now: u64,
        to: CoreId,
        request: impl Into<Wire>,
        timeout: u64,
        out: &mut Output,
    ) -> Ticket {
        self.base.now = now;
        let ticket = Ticket(self.base.next_ticket);
        self.base.next_ticket = self.base.next_ticket.wrapping_add(1);
        self.base
            .call(to, request.into(), Owner::Local(ticket), timeout, out);
        self.settle(out);
        ticket
    }

    /// Whether the host has said `core` runs.
    pub fn is_up(&self, core: CoreId) -> bool {
        self.base.is_up(core)
    }

    /// Whether a tick would do anything: calls or protocol rounds with
    /// timeouts are in flight, or a service waits for something.
    pub fn wants_ticks(&self) -> bool {
        self.base.calls.in_flight() > 0 || self.base.mappings.has_timers() || self.skb.waits()
    }

    pub fn tracing(&self) -> bool {
        self.base.tracing
    }

    /// The sequence number, on each link (by peer), of the first send
    /// recorded since tracing was last turned on.
    pub fn trace_start(&self) -> &[u32] {
        &self.base.trace_start
    }

    /// Replies and slots dropped on arrival so far.
    pub fn strays(&self) -> Strays {
        self.base.strays
    }

    /// Calls in flight from this core.
    pub fn calls_in_flight(&self) -> usize {
        self.base.calls.in_flight()
    }

    /// This core's replica of the mappings, and the cores that hold the
    /// test space.
    pub fn mappings(&self) -> &Mappings {
        &self.base.mappings
    }

    /// This core's replica of the knowledge base, to query.
    pub fn knowledge(&mut self) -> &mut atoll_skb::KnowledgeBase {
        self.skb.knowledge()
    }

    fn receive_slot(&mut self, from: CoreId, slot: &Payload, out: &mut Output) {
        if !self.base.links.exists(from) {
            let notice = format!("dropped a slot from core {}, which does not exist", from.0);
            return self
                .base
                .drop_malformed(out, from, 0, "no such core", notice);
        }
        let (envelope, seq) = match self.base.links.receive(from, slot) {
            Ok(Some(whole)) => whole,
            Ok(None) => return,
            Err(rejected) => {
                let notice = format!("dropped a message from core {}: {rejected}", from.0);
                return self.base.drop_malformed(out, from, 0, "malformed", notice);
            }
        };
        let (call, message) = (envelope.call, envelope.message);
        let role = message.link_role();
        if self.base.tracing {
            out.trace.push(TraceEvent {
                peer: from.0,
                call,
                seq,
                ..TraceEvent::new(self.base.now, TraceKind::Receive, message.label())
            });
        }
        match role {
            Role::Reply => self.receive_reply(from, call, message, out),
            Role::Request { .. } if call == 0 => {
                let notice = format!(
                    "dropped request {} from core {}: it has no call id",
                    message.label(),
                    from.0
                );
                self.base
                    .drop_malformed(out, from, call, "request without a call id", notice);
            }
            Role::OneWay if call != 0 => {
                let notice = format!(
                    "dropped one-way message {} from core {}: it has call id {call}",
                    message.label(),
                    from.0
                );
                self.base
                    .drop_malformed(out, from, call, "one-way message with a call id", notice);
            }
            Role::Request { .. } | Role::OneWay => self.dispatch(from, call, message, out),
        }
    }

    fn receive_reply(&mut self, from: CoreId, call: u32, reply: Wire, out: &mut Output) {
        match self.base.calls.answer(from, call, reply.kind()) {
            Ok(pending) => {
                self.base
                    .trace_call_end(out, from, call, pending.name, trace::ANSWERED);
                self.base.finish(pending.owner, Ok(reply), out);
            }
            Err(stray) => self.base.drop_stray(out, from, call, &reply, stray),
        }
    }

    /// Hands a request or one-way message to its service. Never inlined,
    /// so that a debugger can break on each message a core handles
    /// (`docs/debugging.md`); one call per message costs nothing that shows.
    #[inline(never)]
    fn dispatch(&mut self, from: CoreId, call: u32, message: Wire, out: &mut Output) {
        let cx = &mut Cx {
            base: &mut self.base,
            out,
        };
        match message {
            Wire::Control(message) => self.control.receive(cx, from, call, message.0),
            Wire::Vm(message) => self.vm.receive(cx, from, call, message.0),
            Wire::Skb(message) => self.skb.receive(cx, from, call, *message),
            Wire::Bench(message) => self.bench.receive(cx, from, call, message.0),
        }
    }

    fn tick(&mut self, out: &mut Output) {
        self.base.tick += 1;
        let tick = self.base.tick;
        for (call, pending) in self.base.calls.expire(tick) {
            self.base
                .trace_call_end(out, pending.to, call, pending.name, trace::NO_ANSWER);
            let error = CallError::NoAnswer {
                core: pending.to,
                ticks: tick - pending.issued,
            };
            self.base.finish(pending.owner, Err(error), out);
        }
        let cx = &mut Cx {
            base: &mut self.base,
            out,
        };
        {
            let (mappings, mut mapping_cx) = cx.mappings();
            mappings.tick(&mut mapping_cx);
        }
        self.skb.tick(cx);
    }

    fn core_down(&mut self, core: CoreId, out: &mut Output) {
        let Some(up) = self.base.up.get_mut(usize::from(core.0)) else {
            return;
        };
        *up = false;
        for (call, pending) in self.base.calls.waiting_on(core) {
            self.base
                .trace_call_end(out, core, call, pending.name, trace::STOPPED);
            self.base
                .finish(pending.owner, Err(CallError::Down { core }), out);
        }
    }

    /// Runs until nothing is left to do in this step: queued events for
    /// services, and slots sent on the loopback.
    fn settle(&mut self, out: &mut Output) {
        loop {
            if let Some(Event { op, event }) = self.base.events.pop_front() {
                let cx = &mut Cx {
                    base: &mut self.base,
                    out,
                };
                match op.service {
                    ServiceId::Control => self.control.event(cx, op, event),
                    ServiceId::Vm => self.vm.event(cx, op, event),
                    ServiceId::Skb => self.skb.event(cx, op, event),
                    ServiceId::Bench => self.bench.event(cx, op, event),
                }
            } else if let Some(slot) = self.base.links.next_loopback() {
                let me = self.base.me;
                self.receive_slot(me, &slot, out);
            } else {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
