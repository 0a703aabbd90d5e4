//! What every service of a monitor may use, and the one interface every
//! service implements.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use atoll_iface::Role;
use atoll_proto::CoreId;

use crate::calls::{CallError, Calls, Event, OpEvent, OpRef, Owner, Pending, Stray, Strays};
use crate::links::Links;
use crate::mappings::{MappingCx, Mappings};
use crate::output::{Deferred, Effect, Output};
use crate::trace::{self, TraceEvent, TraceKind};
use crate::wire::{ServiceId, Wire};
use atoll_proto::membership::View;

/// Who asked a service for something it answers later: a core (this one
/// included), the call id of its request, and which kernel on that core
/// asked (the link's generation: a core that stops and starts again is a
/// new kernel, which must not get the old one's answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Requester {
    pub core: CoreId,
    pub call: u32,
    generation: u32,
}

/// The one interface every service implements.
pub(crate) trait Service {
    /// The service's own messages.
    type Message;
    /// A request (`call` non-zero) or one-way message (`call` 0) from
    /// `from`, which may be this core.
    fn receive(&mut self, cx: &mut Cx, from: CoreId, call: u32, message: Self::Message);
    /// Something for operation `op`, which the service started.
    fn event(&mut self, cx: &mut Cx, op: OpRef, event: OpEvent);
    /// A timer tick, for services with timeouts of their own.
    fn tick(&mut self, _cx: &mut Cx) {}
}

/// What every service may use: the links, the calls, the mappings, the
/// view, the time and the output.
pub(crate) struct Base {
    pub(crate) me: CoreId,
    pub(crate) cores: u16,
    pub(crate) boot_core: CoreId,
    pub(crate) now: u64,
    pub(crate) tick: u64,
    /// The installed view: the members this core takes messages from.
    pub(crate) view: View,
    /// The tick it was installed at.
    pub(crate) installed_at: u64,
    /// The view this core sends in: the installed one, or the committed
    /// one it has sent its flush for (copies of the membership's, which
    /// every service reads).
    pub(crate) stamp: View,
    /// The tick of the last message from each core.
    pub(crate) heard: Vec<u64>,
    /// The host's timer ticks and free frames, as it last said.
    pub(crate) counters: (u64, u64),
    pub(crate) links: Links,
    pub(crate) calls: Calls,
    pub(crate) mappings: Mappings,
    pub(crate) tracing: bool,
    /// Each link's send counter when tracing was last turned on.
    pub(crate) trace_start: Vec<u32>,
    pub(crate) strays: Strays,
    pub(crate) events: VecDeque<Event>,
    pub(crate) next_key: u32,
    pub(crate) next_ticket: u32,
}

/// A service's handle on its monitor for one step.
pub(crate) struct Cx<'a> {
    pub(crate) base: &'a mut Base,
    pub(crate) out: &'a mut Output,
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

    /// Whether `core` is a member of the view this core is in or going to.
    pub fn is_member(&self, core: CoreId) -> bool {
        self.base.is_member(core)
    }

    /// The members of the installed view, in id order.
    pub fn members(&self) -> Vec<CoreId> {
        self.base.view.members.iter().collect()
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

    /// Who made the request `call` from `from` that this step handles.
    pub fn requester(&self, from: CoreId, call: u32) -> Requester {
        Requester {
            core: from,
            call,
            generation: self.base.links.generation(from),
        }
    }

    /// Answers `requester`'s request, unless the kernel that made it has
    /// stopped and another started on its core since (the answer is then
    /// not sent, and counted with `Strays::unsent`).
    pub fn reply(&mut self, requester: Requester, reply: impl Into<Wire>) {
        if self.base.links.generation(requester.core) != requester.generation {
            self.base.links.unsent += 1;
            return;
        }
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
            tick,
            tracing,
            links,
            events,
            ..
        } = &mut *self.base;
        (
            mappings,
            MappingCx {
                now: *now,
                tick: *tick,
                tracing: *tracing,
                links,
                events,
                out: self.out,
            },
        )
    }
}

impl Base {
    pub(crate) fn is_member(&self, core: CoreId) -> bool {
        self.view.members.union(self.stamp.members).contains(core)
    }

    /// From now on, sends in `view` (its flush is on its way). Its new
    /// members are heard from as of now, so that the detector watches them
    /// from here (a joiner that dies before it flushes must be found too).
    pub(crate) fn stamp(&mut self, view: View) {
        let known = self.view.members.union(self.stamp.members);
        for core in view.members.minus(known).iter() {
            if let Some(heard) = self.heard.get_mut(usize::from(core.0)) {
                *heard = self.tick;
            }
        }
        self.stamp = view;
        self.links
            .send_in(view.epoch, self.view.members.union(view.members));
    }

    /// Installs `view`: its members are heard from as of now.
    pub(crate) fn install(&mut self, view: View) {
        for core in view.members.minus(self.view.members).iter() {
            self.heard[usize::from(core.0)] = self.tick;
        }
        self.view = view;
        self.installed_at = self.tick;
        self.stamp(view);
    }

    /// Starts the link to `core` afresh (see `Monitor::reset_link`);
    /// whether it did.
    pub(crate) fn reset_link(&mut self, core: CoreId) -> bool {
        if core == self.me || self.is_member(core) || !self.links.reset(core) {
            return false;
        }
        if let Some(start) = self.trace_start.get_mut(usize::from(core.0)) {
            *start = 0;
        }
        true
    }

    /// The tick this core last sent to `core`.
    pub(crate) fn sent_at(&self, core: CoreId) -> u64 {
        self.links.last_sent(core)
    }

    /// The tick this core last heard from `core`.
    pub(crate) fn heard_at(&self, core: CoreId) -> u64 {
        self.heard.get(usize::from(core.0)).copied().unwrap_or(0)
    }

    pub(crate) fn transmit(&mut self, to: CoreId, call: u32, message: &Wire, out: &mut Output) {
        self.links
            .transmit(self.now, self.tick, self.tracing, to, call, message, out);
    }

    /// Makes a call, or fails it at once (through the event queue, so that
    /// the owner hears of it as of any other failure) if `to` is not up.
    pub(crate) fn call(
        &mut self,
        to: CoreId,
        request: Wire,
        owner: Owner,
        timeout: u64,
        out: &mut Output,
    ) {
        let Role::Request { reply } = request.link_role() else {
            panic!("{} is not a request", request.label());
        };
        let name = request.label();
        if !self.is_member(to) {
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

    pub(crate) fn trace_call_end(
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
    pub(crate) fn finish(
        &mut self,
        owner: Owner,
        reply: Result<Wire, CallError>,
        out: &mut Output,
    ) {
        match owner {
            Owner::Local(ticket) => out.completions.push((ticket, reply)),
            Owner::Op(op) => self.events.push_back(Event {
                op,
                event: OpEvent::Reply(reply),
            }),
        }
    }

    pub(crate) fn drop_stray(
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
        self.trace_drop(out, from, call, why);
    }

    /// Drops a malformed slot or message from `from` on arrival: counts
    /// it, says so (`notice`) and traces it with the reason `why`.
    pub(crate) fn drop_malformed(
        &mut self,
        out: &mut Output,
        from: CoreId,
        call: u32,
        why: &'static str,
        notice: String,
    ) {
        self.strays.malformed += 1;
        out.notices.push(notice);
        self.trace_drop(out, from, call, why);
    }

    pub(crate) fn trace_drop(&self, out: &mut Output, from: CoreId, call: u32, why: &'static str) {
        if self.tracing {
            out.trace.push(TraceEvent {
                peer: from.0,
                call,
                ..TraceEvent::new(self.now, TraceKind::Drop, why)
            });
        }
    }
}
