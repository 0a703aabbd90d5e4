//! The monitor: each core's OS node as one sans-IO event loop.
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
//! The services, each behind the one [`Service`] interface and each with
//! its own messages ([`wire`] multiplexes them):
//! - [`control`]: round trips, tracing, stalls;
//! - [`vm`]: the replicated mappings of the test address space
//!   (`atoll-replica`, two-phase commit and TLB shootdown);
//! - [`skb`]: this core's replica of the system knowledge base;
//! - [`bench`]: the benchmarks' own messages and measurements.
//!
//! It depends on `atoll-iface` (framing), `atoll-urpc` (the slot type),
//! `atoll-replica` and `atoll-proto` (the mappings and their protocols) and
//! `atoll-skb`; it touches no hardware, clock or channel.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod bench;
mod calls;
pub mod control;
mod links;
pub mod skb;
pub mod trace;
pub mod vm;
pub mod wire;

pub use atoll_proto::CoreId;
pub use calls::{CallError, Strays, Ticket};
pub use trace::{TraceEvent, TraceKind};
pub use wire::{ServiceId, Wire};

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use atoll_iface::{Interface, Role};
use atoll_replica::Completion;
use atoll_urpc::Payload;

use bench::Bench;
use calls::{Calls, Owner, Pending, Stray};
use control::Control;
use links::Links;
use skb::Skb;
use vm::{Mappings, Vm};

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

/// One input for [`Monitor::step`].
#[derive(Debug)]
pub enum Input<'a> {
    /// A slot from the ring `from` sends this core on.
    Slot { from: CoreId, slot: &'a Payload },
    /// One timer tick passed (10 ms in the kernel).
    Tick,
    /// The host saw `core` running.
    CoreUp(CoreId),
    /// The host saw `core` stop (a fault or a panic) or never start.
    CoreDown(CoreId),
    /// The result of a [`Deferred::Measure`]: cycles, or `None` if the
    /// measurement could not be made (no answer in time).
    Measured { op: OpRef, cycles: Option<u64> },
}

/// What the host does on this core, in order, before it sends the step's
/// slots (they may acknowledge it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A change to this core's page tables or TLB from the mappings.
    Mapping(atoll_replica::Effect),
    /// Print the trace events this core's host recorded.
    DumpTrace,
}

/// What the host does once the step's slots are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferred {
    /// Stop polling for `ms` milliseconds, as a slow core would.
    Stall { ms: u32 },
    /// Measure something only the host can (it spins on shared memory or
    /// waits for interrupts), then feed the result back as
    /// [`Input::Measured`] with `op`.
    Measure { op: OpRef, measure: bench::Measure },
}

/// What one step produced. The host acts on it in field order: effects,
/// then sends, then deferred work; completions go to their tickets' owners
/// and trace events to the host's ring. It may reuse the output after
/// draining every field.
#[derive(Debug, Default)]
pub struct Output {
    pub effects: Vec<Effect>,
    /// Slots to put in the rings, in order per peer; never to this core.
    pub sends: Vec<(CoreId, Payload)>,
    pub deferred: Vec<Deferred>,
    pub completions: Vec<(Ticket, Result<Wire, CallError>)>,
    /// Only while tracing is on.
    pub trace: Vec<TraceEvent>,
    /// Lines for the console about this core's monitor (dropped messages,
    /// rejected facts), without the `atoll: core N:` prefix.
    pub notices: Vec<String>,
}

/// Names an operation of a service, for the host to return a measurement
/// to. Opaque outside the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpRef {
    service: ServiceId,
    key: u32,
}

/// Who asked a service for something it answers later: a core (this one
/// included) and the call id of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Requester {
    pub core: CoreId,
    pub call: u32,
}

/// What reaches an operation of a service after it started.
#[derive(Debug)]
pub(crate) enum OpEvent {
    /// The reply to one of its calls, or the call's failure.
    Reply(Result<Wire, CallError>),
    /// A mapping request it submitted completed.
    Mapping(Completion),
    /// A measurement it asked the host for.
    Measured(Option<u64>),
}

/// The one interface every service implements.
pub(crate) trait Service {
    /// The service's own messages.
    type Message;
    /// A request (`call` non-zero) or one-way message (`call` 0) from
    /// `from`, which may be this core.
    fn receive(&mut self, cx: &mut Cx, from: CoreId, call: u32, message: Self::Message);
    /// Something for operation `op`, which the service started.
    fn event(&mut self, cx: &mut Cx, op: u32, event: OpEvent);
    /// A timer tick, for services with timeouts of their own.
    fn tick(&mut self, _cx: &mut Cx) {}
}

/// Something for a service, queued until the step's input is handled.
enum Event {
    Op { op: OpRef, event: OpEvent },
}

/// What every service may use: the links, the calls, the mappings, the
/// membership as the host sees it, the time and the output.
pub(crate) struct Base {
    me: CoreId,
    cores: u16,
    boot_core: CoreId,
    now: u64,
    tick: u64,
    up: Vec<bool>,
    links: Links,
    calls: Calls,
    mappings: Mappings,
    tracing: bool,
    /// Each link's send counter when tracing was last turned on.
    trace_start: Vec<u32>,
    strays: Strays,
    events: VecDeque<Event>,
    next_key: u32,
    next_ticket: u32,
}

/// A service's handle on its monitor for one step.
pub(crate) struct Cx<'a> {
    base: &'a mut Base,
    out: &'a mut Output,
}

impl Cx<'_> {
    pub fn me(&self) -> CoreId {
        self.base.me
    }

    pub fn cores(&self) -> u16 {
        self.base.cores
    }

    pub fn boot_core(&self) -> CoreId {
        self.base.boot_core
    }

    pub fn now(&self) -> u64 {
        self.base.now
    }

    pub fn tick(&self) -> u64 {
        self.base.tick
    }

    pub fn is_up(&self, core: CoreId) -> bool {
        self.base.is_up(core)
    }

    /// The cores running, by the host's word, in id order.
    pub fn up_cores(&self) -> Vec<CoreId> {
        self.base.up_cores()
    }

    /// A new operation of `service`.
    pub fn new_op(&mut self, service: ServiceId) -> OpRef {
        let key = self.base.next_key;
        self.base.next_key = self.base.next_key.wrapping_add(1);
        OpRef { service, key }
    }

    /// Calls `to` for operation `op`: the reply, or the call's failure,
    /// comes to the service as an [`OpEvent::Reply`] in a later step or
    /// later in this one.
    pub fn call(&mut self, to: CoreId, request: impl Into<Wire>, op: OpRef, timeout: u64) {
        self.base
            .call(to, request.into(), Owner::Op(op), timeout, self.out);
    }

    /// Sends a one-way message.
    pub fn send(&mut self, to: CoreId, message: impl Into<Wire>) {
        self.base.transmit(to, 0, &message.into(), self.out);
    }

    /// Answers `requester`'s request.
    pub fn reply(&mut self, requester: Requester, reply: impl Into<Wire>) {
        self.base
            .transmit(requester.core, requester.call, &reply.into(), self.out);
    }

    pub fn effect(&mut self, effect: Effect) {
        self.out.effects.push(effect);
    }

    pub fn defer(&mut self, deferred: Deferred) {
        self.out.deferred.push(deferred);
    }

    pub fn notice(&mut self, line: String) {
        self.out.notices.push(line);
    }

    /// Turns tracing on or off; turning it on records where each link's
    /// sends start.
    pub fn set_tracing(&mut self, on: bool) {
        if on && !self.base.tracing {
            self.base.trace_start = self.base.links.sent();
        }
        self.base.tracing = on;
    }

    pub fn mappings(&mut self) -> (&mut Mappings, MappingCx<'_>) {
        let Base {
            mappings,
            now,
            tracing,
            links,
            events,
            ..
        } = &mut *self.base;
        (
            mappings,
            MappingCx {
                now: *now,
                tracing: *tracing,
                links,
                events,
                out: self.out,
            },
        )
    }
}

/// What the mappings may use while they run a step: the links to send
/// their protocol messages on, the events for completions, the output.
pub(crate) struct MappingCx<'a> {
    now: u64,
    tracing: bool,
    links: &'a mut Links,
    events: &'a mut VecDeque<Event>,
    out: &'a mut Output,
}

impl MappingCx<'_> {
    pub fn effect(&mut self, effect: Effect) {
        self.out.effects.push(effect);
    }

    pub fn send(&mut self, to: CoreId, message: Wire) {
        transmit(
            self.links,
            self.now,
            self.tracing,
            to,
            0,
            &message,
            self.out,
        );
    }

    pub fn complete(&mut self, op: OpRef, completion: Completion) {
        self.events.push_back(Event::Op {
            op,
            event: OpEvent::Mapping(completion),
        });
    }

    pub fn phase(&mut self, name: &'static str, detail: u64) {
        if self.tracing {
            self.out.trace.push(TraceEvent {
                detail,
                ..TraceEvent::new(self.now, TraceKind::Phase, name)
            });
        }
    }
}

/// Frames and sends one message, recording it in the trace.
fn transmit(
    links: &mut Links,
    now: u64,
    tracing: bool,
    to: CoreId,
    call: u32,
    message: &Wire,
    out: &mut Output,
) {
    let seq = links.send(to, call, message, &mut out.sends);
    if tracing {
        out.trace.push(TraceEvent {
            peer: to.0,
            call,
            seq,
            ..TraceEvent::new(now, TraceKind::Send, message.label())
        });
    }
}

impl Base {
    fn is_up(&self, core: CoreId) -> bool {
        self.up.get(usize::from(core.0)).copied().unwrap_or(false)
    }

    fn up_cores(&self) -> Vec<CoreId> {
        (0..self.cores)
            .map(CoreId)
            .filter(|&core| self.is_up(core))
            .collect()
    }

    fn transmit(&mut self, to: CoreId, call: u32, message: &Wire, out: &mut Output) {
        transmit(
            &mut self.links,
            self.now,
            self.tracing,
            to,
            call,
            message,
            out,
        );
    }

    /// Makes a call, or fails it at once (through the event queue, so that
    /// the owner hears of it as of any other failure) if `to` is not up.
    fn call(&mut self, to: CoreId, request: Wire, owner: Owner, timeout: u64, out: &mut Output) {
        let Role::Request { reply } = request.link_role() else {
            panic!("{} is not a request", request.label());
        };
        let name = request.label();
        if !self.is_up(to) {
            self.trace_call_end(out, to, 0, name, trace::NOT_RUNNING);
            self.finish(owner, Err(CallError::NotRunning { core: to }), out);
            return;
        }
        let call = self.calls.issue(Pending {
            to,
            owner,
            reply_kind: reply,
            name,
            issued: self.tick,
            deadline: self.tick + timeout.max(1),
        });
        if self.tracing {
            out.trace.push(TraceEvent {
                peer: to.0,
                call,
                ..TraceEvent::new(self.now, TraceKind::CallStart, name)
            });
        }
        self.transmit(to, call, &request, out);
    }

    fn trace_call_end(
        &self,
        out: &mut Output,
        to: CoreId,
        call: u32,
        name: &'static str,
        how: u64,
    ) {
        if self.tracing {
            out.trace.push(TraceEvent {
                peer: to.0,
                call,
                detail: how,
                ..TraceEvent::new(self.now, TraceKind::CallEnd, name)
            });
        }
    }

    /// Hands a call's outcome to its owner.
    fn finish(&mut self, owner: Owner, reply: Result<Wire, CallError>, out: &mut Output) {
        match owner {
            Owner::Local(ticket) => out.completions.push((ticket, reply)),
            Owner::Op(op) => self.events.push_back(Event::Op {
                op,
                event: OpEvent::Reply(reply),
            }),
        }
    }

    fn drop_stray(
        &mut self,
        out: &mut Output,
        from: CoreId,
        call: u32,
        message: &Wire,
        stray: Stray,
    ) {
        self.strays.count(stray);
        let why = match stray {
            Stray::Late => "its call had ended",
            Stray::Unknown => "no such call was made",
            Stray::WrongSender { .. } => "its call waits on another core",
            Stray::WrongKind => "its call expects another reply",
        };
        out.notices.push(alloc::format!(
            "dropped reply {} (call {call}) from core {}: {why}",
            message.label(),
            from.0
        ));
        if self.tracing {
            out.trace.push(TraceEvent {
                peer: from.0,
                call,
                ..TraceEvent::new(self.now, TraceKind::Drop, why)
            });
        }
    }
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
    /// The monitor of core `config.me`. Cores count as down until the host
    /// says they are up ([`Input::CoreUp`]), this one included.
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

    pub fn me(&self) -> CoreId {
        self.base.me
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
            Input::Measured { op, cycles } => self.base.events.push_back(Event::Op {
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

    pub fn up_cores(&self) -> Vec<CoreId> {
        self.base.up_cores()
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
            self.base.strays.malformed += 1;
            out.notices.push(alloc::format!(
                "dropped a slot from core {}, which does not exist",
                from.0
            ));
            return;
        }
        let (envelope, seq) = match self.base.links.receive(from, slot) {
            Ok(Some(whole)) => whole,
            Ok(None) => return,
            Err(rejected) => {
                self.base.strays.malformed += 1;
                out.notices.push(alloc::format!(
                    "dropped a message from core {}: {rejected}",
                    from.0
                ));
                return;
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
                self.base.strays.malformed += 1;
                out.notices.push(alloc::format!(
                    "dropped request {} from core {}: it has no call id",
                    message.label(),
                    from.0
                ));
            }
            Role::OneWay if call != 0 => {
                self.base.strays.malformed += 1;
                out.notices.push(alloc::format!(
                    "dropped one-way message {} from core {}: it has call id {call}",
                    message.label(),
                    from.0
                ));
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

    /// Hands a request or one-way message to its service.
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
        Mappings::tick(cx);
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
            if let Some(Event::Op { op, event }) = self.base.events.pop_front() {
                let cx = &mut Cx {
                    base: &mut self.base,
                    out,
                };
                match op.service {
                    ServiceId::Control => self.control.event(cx, op.key, event),
                    ServiceId::Vm => self.vm.event(cx, op.key, event),
                    ServiceId::Skb => self.skb.event(cx, op.key, event),
                    ServiceId::Bench => self.bench.event(cx, op.key, event),
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
