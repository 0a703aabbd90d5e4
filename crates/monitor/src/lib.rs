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
//! flight is dropped and counted ([`Strays`]). Every message carries its
//! sender's epoch: a service's message is handled only in the view it was
//! sent in, or dropped (`membership` says why that loses nothing). Nothing waits: a service
//! that needs other cores makes calls and goes on when their replies, or
//! their failures, arrive as events. The local core is a peer like any
//! other: a call to it goes through the loopback link and the same
//! dispatch, so local and remote requests take one path and give one
//! result.
//!
//! The services, each behind the one `Service` interface and each with
//! its own messages ([`wire`] multiplexes them):
//! - [`membership`]: the view of which cores are members, the failure
//!   detector, and the agreement on each new view;
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
pub mod catchup;
pub mod control;
mod links;
mod mappings;
pub mod membership;
mod output;
pub mod process;
pub mod skb;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;
pub mod vm;
pub mod wire;

pub use atoll_proto::membership::{Detector, Members, View};
pub use atoll_proto::{CoreId, square_growth};
pub use calls::{CallError, OpRef, Strays, Ticket};
pub use mappings::Mappings;
pub use output::{Deferred, Effect, Input, Output};
pub use trace::{TraceEvent, TraceKind};
pub use wire::{ServiceId, Wire};

use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec;
use atoll_iface::{Envelope, Interface, Role};
use atoll_urpc::Payload;

use atoll_proto::membership::Gate;
use base::{Base, Cx, Service};
use bench::Bench;
use calls::{Calls, Event, OpEvent, Owner};
use catchup::CatchUp;
use control::Control;
use links::Links;
use membership::{Installed, MembershipService};
use process::Process;
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
    /// When to send heartbeats and suspect a silent member.
    pub detector: Detector,
    /// The member this core asks to join the view, or `None` when a
    /// member admits it ([`Monitor::admit`]): at boot, the boot core admits
    /// every core it started, so that the first view holds them all. A core
    /// with a sponsor joins a running system: it catches up with the
    /// members' replicas before it serves (`catchup`).
    pub sponsor: Option<CoreId>,
}

/// The most messages sent in a newer epoch than this core's view that wait
/// for it to install that view; past this, the oldest are dropped.
pub const MAX_HELD: usize = 4096;

/// One core's monitor.
pub struct Monitor {
    base: Base,
    membership: MembershipService,
    /// Services' messages sent in a newer epoch than the installed view's,
    /// with their sender, until it is installed.
    held: VecDeque<(CoreId, Envelope<Wire>)>,
    catch_up: CatchUp,
    control: Control,
    vm: Vm,
    skb: Skb,
    bench: Bench,
    process: Process,
}

impl Monitor {
    /// The monitor of core `config.me`, alone in view 0; it asks its
    /// sponsor, if it has one, to join the sponsor's view.
    pub fn new(config: Config, out: &mut Output) -> Self {
        let cores = config.cores;
        let me = config.me;
        let alone = View {
            epoch: 0,
            members: Members::one(me),
        };
        let mut monitor = Monitor {
            base: Base {
                me,
                cores,
                boot_core: config.boot_core,
                now: 0,
                tick: 0,
                view: alone,
                installed_at: 0,
                stamp: alone,
                heard: vec![0; usize::from(cores)],
                counters: (0, 0),
                links: Links::new(me, cores),
                calls: Calls::new(),
                mappings: Mappings::new(
                    config.me,
                    cores,
                    config.boot_core,
                    config.frame,
                    config.detector,
                ),
                tracing: false,
                trace_start: vec![0; usize::from(cores)],
                strays: Strays::default(),
                events: VecDeque::new(),
                next_key: 0,
                next_ticket: 0,
            },
            membership: MembershipService::new(me, cores, config.detector),
            held: VecDeque::new(),
            catch_up: CatchUp::new(config.sponsor),
            control: Control::new(),
            vm: Vm::new(),
            skb: Skb::new(config.facts, out),
            bench: Bench::new(),
            process: Process::new(),
        };
        if let Some(sponsor) = config.sponsor {
            let cx = &mut Cx {
                base: &mut monitor.base,
                out,
            };
            monitor.membership.join(cx, sponsor);
        }
        monitor
    }

    /// Takes `cores` into this core's view, by agreement, as if each had
    /// asked to join; they must run monitors that have no sponsor.
    pub fn admit(&mut self, now: u64, cores: Members, out: &mut Output) {
        self.base.now = now;
        let cx = &mut Cx {
            base: &mut self.base,
            out,
        };
        self.membership.admit(cx, cores);
        self.settle(out);
    }

    /// Has `core` leave this core's view, by agreement (`core off`): the
    /// leader proposes a view without it, if that keeps a quorum; `core`
    /// stops when the commit reaches it.
    pub fn remove(&mut self, now: u64, core: CoreId, out: &mut Output) {
        self.base.now = now;
        let cx = &mut Cx {
            base: &mut self.base,
            out,
        };
        self.membership.remove(cx, core);
        self.settle(out);
    }

    /// Handles one input and everything it sets off on this core.
    pub fn step(&mut self, now: u64, input: Input<'_>, out: &mut Output) {
        self.base.now = now;
        match input {
            Input::Slot { from, slot } => self.receive_slot(from, slot, out),
            Input::Tick => self.tick(out),
            Input::Drained(core) => {
                let cx = &mut Cx {
                    base: &mut self.base,
                    out,
                };
                self.membership.drained(cx, core);
            }
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

    /// Whether `core` is a member of this core's view (or of the view it
    /// is installing).
    pub fn is_member(&self, core: CoreId) -> bool {
        self.base.is_member(core)
    }

    /// Whether this core joined a running system and still waits for a
    /// member's snapshot of the replicas (`catchup`): until then it holds
    /// the messages of the services that use them.
    pub fn catching_up(&self) -> bool {
        self.catch_up.catching_up()
    }

    /// Starts the link to `core` afresh, as its host does the rings between
    /// them: `core` stopped and its next kernel is about to start, so
    /// nothing of the old one's may be read by the new one. Refused
    /// (`false`) for this core and for a member.
    pub fn reset_link(&mut self, core: CoreId) -> bool {
        self.base.reset_link(core)
    }

    /// The installed view.
    pub fn view(&self) -> View {
        self.base.view
    }

    /// The tick (of this monitor's count, [`ticks`](Self::ticks)) at which
    /// the view was installed.
    pub fn view_installed_at(&self) -> u64 {
        self.base.installed_at
    }

    /// Ticks this monitor has been fed.
    pub fn ticks(&self) -> u64 {
        self.base.tick
    }

    /// The members this core's detector suspects now.
    pub fn suspects(&self) -> Members {
        self.membership.protocol().suspects()
    }

    pub fn detector(&self) -> Detector {
        self.membership.protocol().detector()
    }

    /// This core did not run for `ticks` ticks (its host was stalled, or
    /// not scheduled): the silence of the others over them is not theirs,
    /// so the detector does not count it.
    pub fn resumed(&mut self, ticks: u64) {
        for heard in &mut self.base.heard {
            *heard = heard.saturating_add(ticks);
        }
    }

    /// The host's count of timer ticks and of free frames, which this
    /// monitor reports when asked (`CoreReport`).
    pub fn note_counters(&mut self, ticks: u64, free_frames: u64) {
        self.base.counters = (ticks, free_frames);
    }

    /// The host's answer to the request of `token` (`Deferred::Process`):
    /// the core that asked is answered.
    pub fn process_answer(
        &mut self,
        now: u64,
        token: u32,
        answer: impl Into<Wire>,
        out: &mut Output,
    ) {
        self.in_process(now, out, |process, cx| {
            process.answer(cx, token, answer.into())
        });
    }

    /// Opens the replicated address space of process `pid`, held by
    /// `holders`, with `entries` (page address and mapping) mapped already
    /// on every holder.
    pub fn open_space(
        &mut self,
        now: u64,
        pid: u32,
        holders: Members,
        entries: &[(u64, atoll_replica::Mapping)],
        out: &mut Output,
    ) -> Result<(), process::SpaceError> {
        self.in_process(now, out, |process, cx| {
            process.spaces.open(cx, pid, holders, entries)
        })
    }

    /// The pages `pid`'s space has committed here (`Spaces::entries`).
    pub fn space_entries(
        &self,
        pid: u32,
    ) -> Option<alloc::vec::Vec<(u64, atoll_replica::Mapping)>> {
        self.process.spaces.entries(pid)
    }

    /// Whether `pid`'s space has no protocol state here (no round of it
    /// under way on this core); `false` if this core holds none.
    pub fn space_idle(&self, pid: u32) -> bool {
        self.process.spaces.idle(pid)
    }

    /// Makes `holders` the holders of `pid`'s space here, while no change
    /// of it is under way anywhere (`Spaces::regrow`).
    pub fn regrow_space(
        &mut self,
        now: u64,
        pid: u32,
        holders: Members,
        out: &mut Output,
    ) -> Result<(), process::SpaceError> {
        self.in_process(now, out, |process, cx| {
            process.spaces.regrow(cx, pid, holders)
        })
    }

    /// Runs `act` on the `process` service at `now`, and settles what it
    /// produced.
    fn in_process<R>(
        &mut self,
        now: u64,
        out: &mut Output,
        act: impl FnOnce(&mut process::Process, &mut Cx<'_>) -> R,
    ) -> R {
        self.base.now = now;
        let cx = &mut Cx {
            base: &mut self.base,
            out,
        };
        let result = act(&mut self.process, cx);
        self.settle(out);
        result
    }

    /// Sends `message` to `to`, needing no answer (the `process` service's
    /// notes between the cores of a process).
    pub fn send(&mut self, now: u64, to: CoreId, message: impl Into<Wire>, out: &mut Output) {
        self.in_process(now, out, |_, cx| cx.send(to, message));
    }

    /// This core's replica of `pid`'s space, hashed, if it holds one.
    pub fn space_hash(&self, pid: u32) -> Option<u64> {
        self.process.spaces.hash(pid)
    }

    /// Closes `pid`'s space here, unless a change of it is under way.
    pub fn close_space(&mut self, pid: u32) -> Result<(), process::SpaceError> {
        self.process.spaces.close(pid)
    }

    /// Whether this core routes `Planned` rounds by the knowledge base's
    /// multicast trees (every core installed them at boot, or none did).
    pub fn trees_installed(&self) -> bool {
        self.skb.planned()
    }

    /// The page `vaddr` of `pid`'s space as this core's replica has it
    /// committed, if it holds the space and the page is mapped.
    pub fn space_mapping(&self, pid: u32, vaddr: u64) -> Option<atoll_replica::Mapping> {
        self.process.spaces.mapping(pid, vaddr)
    }

    /// Proposes to its holders a change (map, unmap, protect) of the page
    /// at `vaddr` of `pid`'s space; the end comes in `out.changes` with
    /// `token`, in this step or a later one.
    pub fn propose_change(
        &mut self,
        now: u64,
        pid: u32,
        vaddr: u64,
        change: process::PageChange,
        token: u64,
        out: &mut Output,
    ) -> Result<(), process::SpaceError> {
        self.in_process(now, out, |process, cx| {
            process.spaces.propose(cx, pid, vaddr, change, token)
        })
    }

    /// Changes when heartbeats go and silence counts as a failure, on this
    /// core.
    pub fn set_detector(&mut self, detector: Detector) {
        self.membership.set_detector(detector);
    }

    /// Whether this core was left out of a view while running
    /// ([`Effect::Excluded`]).
    pub fn excluded(&self) -> bool {
        self.membership.protocol().excluded()
    }

    /// The view this core proposes as leader and waits for accepts of.
    pub fn proposing(&self) -> Option<View> {
        self.membership.protocol().proposing()
    }

    /// Whether a tick would do anything: the view has other members to
    /// watch and send heartbeats to, or [`has_timeouts`](Self::has_timeouts).
    pub fn wants_ticks(&self) -> bool {
        self.base.view.members.len() > 1 || self.has_timeouts()
    }

    /// Whether something waits for time to pass, besides the detector: a
    /// view change, calls or protocol rounds with timeouts, or a service
    /// waiting for something.
    pub fn has_timeouts(&self) -> bool {
        self.membership.protocol().changing()
            || self.base.calls.in_flight() > 0
            || self.base.mappings.has_timers()
            || self.process.spaces.has_timers()
            || self.skb.waits()
    }

    pub fn tracing(&self) -> bool {
        self.base.tracing
    }

    /// The sequence number, on each link (by peer), of the first send
    /// recorded since tracing was last turned on.
    pub fn trace_start(&self) -> &[u32] {
        &self.base.trace_start
    }

    /// Messages sent so far on each link, by peer: where a trace dump made
    /// now ends.
    pub fn sent(&self) -> alloc::vec::Vec<u32> {
        self.base.links.sent()
    }

    /// Replies and slots dropped on arrival so far, and messages not sent.
    pub fn strays(&self) -> Strays {
        Strays {
            unsent: self.base.links.unsent,
            ..self.base.strays
        }
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
        if self.base.tracing {
            out.trace.push(TraceEvent {
                peer: from.0,
                call: envelope.call,
                seq,
                ..TraceEvent::new(self.base.now, TraceKind::Receive, envelope.message.label())
            });
        }
        if let Some(heard) = self.base.heard.get_mut(usize::from(from.0)) {
            *heard = self.base.tick;
        }
        let held = !envelope.message.crosses_views()
            && self.membership.protocol().gate(from, envelope.epoch) == Gate::Hold;
        if !held {
            return self.accept(from, envelope, None, out);
        }
        // Sent in a view this core has not installed yet: handled once it
        // has, so that no message is handled in another view than its own.
        if self.held.len() == MAX_HELD {
            let (sender, oldest) = self.held.pop_front().expect("full");
            self.base.strays.overflow += 1;
            out.notices.push(format!(
                "dropped {} from core {}: {MAX_HELD} messages from newer views wait already",
                oldest.message.label(),
                sender.0
            ));
        }
        self.held.push_back((from, envelope));
    }

    /// Takes a whole message in the view it was sent in, or drops it: a
    /// service's message from an older view, or from a core outside this
    /// one. `released` is the epoch of the view this core left when it
    /// installed the one a held message waited for.
    fn accept(
        &mut self,
        from: CoreId,
        envelope: Envelope<Wire>,
        released: Option<u32>,
        out: &mut Output,
    ) {
        let Envelope {
            call,
            epoch,
            message,
        } = envelope;
        if !message.crosses_views() {
            let view = self.base.view;
            let protocol = self.membership.protocol();
            let gate = match released {
                Some(old) => protocol.gate_released(from, epoch, old),
                None => protocol.gate(from, epoch),
            };
            let why = match gate {
                Gate::Deliver => "",
                Gate::Hold => unreachable!("held messages are kept before they get here"),
                Gate::OldEpoch => {
                    self.base.strays.old_epoch += 1;
                    "sent in an older view"
                }
                Gate::NonMember => {
                    self.base.strays.non_member += 1;
                    "not a member"
                }
            };
            if !why.is_empty() {
                out.notices.push(format!(
                    "dropped {} (call {call}) from core {}: {why} (epoch {epoch}, view {})",
                    message.label(),
                    from.0,
                    view.epoch
                ));
                self.base.trace_drop(out, from, call, why);
                let cx = &mut Cx {
                    base: &mut self.base,
                    out,
                };
                return self.membership.tell_left_out(cx, from);
            }
        }
        let role = message.link_role();
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
            Wire::Vm(message) => {
                if let Some(Wire::Vm(message)) =
                    self.catch_up.hold(cx, from, call, Wire::Vm(message))
                {
                    self.vm.receive(cx, from, call, message.0);
                }
            }
            Wire::CatchUp(message) => {
                let held = self.catch_up.receive(cx, &mut self.skb, from, *message);
                for (from, call, message) in held {
                    self.dispatch(from, call, message, out);
                }
            }
            Wire::Skb(message) => self.skb.receive(cx, from, call, *message),
            Wire::Bench(message) => self.bench.receive(cx, from, call, message.0),
            Wire::Process(message) => self.process.receive(cx, from, call, *message),
            Wire::Membership(message) => {
                if message.0.is_join_of(from) {
                    self.catch_up.welcome(cx, &mut self.skb, from);
                }
                self.membership.receive(cx, from, call, message.0)
            }
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
        self.process.tick(cx);
        self.membership.tick(cx);
    }

    /// Acts on a view this core installed: the calls to cores it leaves
    /// out fail, the mappings' protocols hear that they are down (every
    /// message from them has been handled: their rings were drained), the
    /// knowledge base derives the trees again, and the messages that waited
    /// for the view are handled.
    fn installed(&mut self, Installed { old, new }: Installed, out: &mut Output) {
        let left = old.members.minus(new.members);
        let joined = new.members.minus(old.members);
        for core in left.iter() {
            for (call, pending) in self.base.calls.waiting_on(core) {
                self.base
                    .trace_call_end(out, core, call, pending.name, trace::STOPPED);
                self.base
                    .finish(pending.owner, Err(CallError::Down { core }), out);
            }
        }
        let cx = &mut Cx {
            base: &mut self.base,
            out,
        };
        {
            let (mappings, mut mapping_cx) = cx.mappings();
            mappings.view_installed(&mut mapping_cx, new.members);
        }
        self.process.spaces.view_installed(cx, new.members);
        let mut line = format!("view {}: cores {}", new.epoch, new.members);
        if !joined.is_empty() && old.epoch > 0 {
            line += &format!("; joined: {joined}");
        }
        if !left.is_empty() {
            line += &format!("; left: {left}");
        }
        cx.notice(line);
        // Before the messages sent in the new view are handled: the locks
        // held now are those of rounds that leave the joiners out.
        self.catch_up.installed(cx, old, new);
        let (ready, waiting): (VecDeque<_>, VecDeque<_>) = core::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, envelope)| envelope.epoch <= new.epoch);
        self.held = waiting;
        for (from, envelope) in ready {
            self.accept(from, envelope, Some(old.epoch), out);
        }
    }

    /// Runs until nothing is left to do in this step: queued events for
    /// services, and slots sent on the loopback.
    fn settle(&mut self, out: &mut Output) {
        loop {
            let installed = self.membership.take_installed();
            if !installed.is_empty() {
                installed
                    .into_iter()
                    .for_each(|view| self.installed(view, out));
            } else if let Some(Event { op, event }) = self.base.events.pop_front() {
                let cx = &mut Cx {
                    base: &mut self.base,
                    out,
                };
                match op.service {
                    ServiceId::Control => self.control.event(cx, op, event),
                    ServiceId::Vm => self.vm.event(cx, op, event),
                    ServiceId::Skb => self.skb.event(cx, op, event),
                    ServiceId::Bench => self.bench.event(cx, op, event),
                    ServiceId::Process => self.process.event(cx, op, event),
                    ServiceId::Membership => self.membership.event(cx, op, event),
                    // Catching up makes no calls.
                    ServiceId::CatchUp => {}
                }
            } else if let Some(slot) = self.base.links.next_loopback() {
                let me = self.base.me;
                self.receive_slot(me, &slot, out);
            } else {
                let cx = &mut Cx {
                    base: &mut self.base,
                    out,
                };
                return self.catch_up.answer(cx);
            }
        }
    }
}

#[cfg(test)]
mod tests;
