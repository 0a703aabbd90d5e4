//! Membership: the view of which cores take part, and the agreement on each
//! new view.
//!
//! A view is an epoch number and a member set, of which every core holds a
//! replica. A core starts alone in view 0 and joins by agreement; a core
//! that never starts never asks, so it is never a member. Every message a
//! host sends carries the epoch of the view it sends in ([`stamp`]), and a
//! host hands a protocol message to the protocols only in the view it was
//! sent in: [`Membership::gate`] says whether to deliver it, hold it until
//! this core installs a newer view, or drop it (sent in an older view, or
//! by a core outside this one).
//!
//! Agreement: the leader (the lowest member of this core's newest view that
//! it does not suspect) proposes the next view, with the cores asking to
//! join and without its suspects, to every proposed member. A core accepts
//! a proposal whose epoch is past every view it accepted or knows of, and
//! refuses the others, saying the newest epoch it knows, so that the leader
//! proposes past it. When every proposed member accepted, the leader
//! commits the view, to them and to the cores it leaves out. A proposed
//! member that does not accept within `suspect_after` ticks is suspected in
//! turn, and the leader proposes again without it, under a new epoch.
//! A leader proposes only a view that keeps a quorum of its newest view:
//! more than half of its members, or exactly half with the lowest of them.
//! Two quorums of one view share a member, and a core accepts one proposal
//! per epoch and epochs only grow, so two different views never commit
//! under one epoch, and a core cut off from the others (or stalled, and
//! suspecting them all) cannot make a view of its own. The price: when half
//! or more of the members fail at once (on 2 cores, core 0), the survivors
//! cannot leave them out, and the protocols go on waiting for them only
//! until their own timeouts. A leader that fails mid-change is suspected
//! like any member; the next proposes past whatever epoch was accepted. A
//! refused leader that sees a lower core's proposal preferred waits
//! `suspect_after` ticks before it proposes again.
//!
//! Installation (the flush): on a commit, a member sends `Flush` to every
//! other member of the new view and from then on stamps its messages with
//! the new epoch ([`MembershipEvent::Stamp`]). It asks its host to drain
//! the rings of the cores the view leaves out ([`MembershipEvent::Drain`]),
//! and installs the view once every other member's flush has come and every
//! drain is done ([`MembershipEvent::Installed`]). Channels keep order, so
//! by then every message a member sent in an older view has been handled,
//! and dropping what comes later in an older epoch loses nothing of a
//! member. The host then tells the other protocols that the cores left out
//! are down. A core left out of a view while it runs (suspected wrongly)
//! learns it from the commit or from a member that drops its messages, and
//! must stop ([`MembershipEvent::Excluded`]).
//!
//! Messages from other cores are checked before they count: a view naming a
//! core the machine does not have is ignored, and no epoch wraps.
//!
//! Failure detection is the host's: it tells this machine whom it suspects
//! ([`Membership::suspect`]), from heartbeats and silence in the monitor,
//! or from the model check's choice of when a crash is noticed.
//!
//! [`stamp`]: Membership::stamp

use alloc::collections::BTreeMap;
use core::fmt;

use crate::mutants::{self, Mutant};
use crate::{CoreId, Outbox};

/// A set of core ids, `0..256`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Members([u64; 4]);

impl Members {
    /// The most cores a set can hold.
    pub const CAPACITY: usize = 256;

    pub const fn new() -> Self {
        Self([0; 4])
    }

    pub fn one(core: CoreId) -> Self {
        let mut members = Self::new();
        members.insert(core);
        members
    }

    pub fn contains(&self, core: CoreId) -> bool {
        let core = usize::from(core.0);
        core < Self::CAPACITY && self.0[core / 64] & 1 << (core % 64) != 0
    }

    /// Adds `core`; ids past the capacity are ignored (no core has them).
    pub fn insert(&mut self, core: CoreId) {
        let core = usize::from(core.0);
        if core < Self::CAPACITY {
            self.0[core / 64] |= 1 << (core % 64);
        }
    }

    pub fn remove(&mut self, core: CoreId) {
        let core = usize::from(core.0);
        if core < Self::CAPACITY {
            self.0[core / 64] &= !(1 << (core % 64));
        }
    }

    pub fn union(self, other: Members) -> Members {
        Members(core::array::from_fn(|i| self.0[i] | other.0[i]))
    }

    pub fn intersect(self, other: Members) -> Members {
        Members(core::array::from_fn(|i| self.0[i] & other.0[i]))
    }

    /// The cores of `self` that are not in `other`.
    pub fn minus(self, other: Members) -> Members {
        Members(core::array::from_fn(|i| self.0[i] & !other.0[i]))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|word| word.count_ones() as usize).sum()
    }

    /// The lowest id in the set.
    pub fn first(&self) -> Option<CoreId> {
        self.iter().next()
    }

    /// The ids in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = CoreId> + '_ {
        (0..Self::CAPACITY as u16)
            .map(CoreId)
            .filter(|&core| self.contains(core))
    }

    /// The set as 4 words, bit `c % 64` of word `c / 64` for core `c`.
    pub fn words(self) -> [u64; 4] {
        self.0
    }

    pub fn from_words(words: [u64; 4]) -> Self {
        Self(words)
    }
}

impl FromIterator<CoreId> for Members {
    fn from_iter<T: IntoIterator<Item = CoreId>>(cores: T) -> Self {
        let mut members = Members::new();
        cores.into_iter().for_each(|core| members.insert(core));
        members
    }
}

/// The ids, space-separated, or "none".
impl fmt::Display for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (index, core) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", core.0)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

/// A view: an epoch and its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct View {
    pub epoch: u32,
    pub members: Members,
}

impl View {
    /// Whether `next` keeps a quorum of this view's members: more than
    /// half of them, or exactly half with the lowest of them. Any two
    /// quorums of one view share a member.
    pub fn keeps_quorum(&self, next: Members) -> bool {
        let kept = next.intersect(self.members).len();
        let total = self.members.len();
        2 * kept > total
            || 2 * kept == total
                && self
                    .members
                    .first()
                    .is_some_and(|first| next.contains(first))
    }
}

/// The failure detector's settings, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Detector {
    /// Send a heartbeat to a member after this long without sending it
    /// anything (the host's business).
    pub heartbeat: u64,
    /// Suspect a member after this long without hearing from it (the
    /// host's), and a proposed member that has not accepted after this long
    /// (this machine's).
    pub suspect_after: u64,
}

impl Detector {
    /// A heartbeat every 100 ms and suspicion after a second, in the
    /// kernel's 10 ms ticks: under emulation a core may not run for tens of
    /// milliseconds, so much shorter would suspect live cores.
    pub const DEFAULT: Detector = Detector {
        heartbeat: 10,
        suspect_after: 100,
    };

    /// The default for a machine of `cores` cores: [`Detector::DEFAULT`]
    /// with both periods longer by [`crate::square_growth`], so that the
    /// heartbeats of all cores to all others (a core sends one to each
    /// member it has sent nothing else) cost the machine no more than at 64
    /// cores. More cores detect a failure later: 4 s at 128 cores rather
    /// than 1 s.
    pub fn for_cores(cores: u64) -> Detector {
        let scale = crate::square_growth(cores);
        Detector {
            heartbeat: Self::DEFAULT.heartbeat * scale,
            suspect_after: Self::DEFAULT.suspect_after * scale,
        }
    }
}

/// A membership message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipMsg {
    /// I am alive: sent by the host to a member it has sent nothing else to
    /// for a heartbeat period.
    Heartbeat,
    /// Core `core` asks to become a member; passed on to the leader.
    Join { core: CoreId },
    /// The sender suspects `core`; to the leader.
    Suspect { core: CoreId },
    /// The leader proposes `view`.
    Propose { view: View },
    /// The sender accepted proposal `epoch`.
    Accept { epoch: u32 },
    /// The sender refused proposal `epoch`: it accepted or knows of view
    /// `newest`, proposed by `leader`; with `excluded`, the proposer is not
    /// in the sender's view at all, and must stop.
    Refuse {
        epoch: u32,
        newest: u32,
        leader: CoreId,
        excluded: bool,
    },
    /// Every proposed member accepted `view`: install it.
    Commit { view: View },
    /// The sender has sent everything it will send in views before `epoch`.
    Flush { epoch: u32 },
}

impl MembershipMsg {
    /// The message's name, for traces.
    pub fn label(&self) -> &'static str {
        match self {
            MembershipMsg::Heartbeat => "Heartbeat",
            MembershipMsg::Join { .. } => "ViewJoin",
            MembershipMsg::Suspect { .. } => "ViewSuspect",
            MembershipMsg::Propose { .. } => "ViewPropose",
            MembershipMsg::Accept { .. } => "ViewAccept",
            MembershipMsg::Refuse { .. } => "ViewRefuse",
            MembershipMsg::Commit { .. } => "ViewCommit",
            MembershipMsg::Flush { .. } => "ViewFlush",
        }
    }
}

/// Why this core suspects a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suspicion {
    /// The host heard nothing from it for `ticks` ticks.
    Silent { ticks: u64 },
    /// Core `by` suspects it.
    ToldBy { by: CoreId },
    /// It did not accept proposal `epoch` in time.
    NoAnswer { epoch: u32 },
    /// The host knows it is gone (in the model check: it crashed).
    Gone,
    /// It is asked to leave (`core off`).
    Leaving,
}

impl fmt::Display for Suspicion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Suspicion::Silent { ticks } => write!(f, "nothing heard for {ticks} ticks"),
            Suspicion::ToldBy { by } => write!(f, "core {} suspects it", by.0),
            Suspicion::NoAnswer { epoch } => write!(f, "no answer to proposal {epoch}"),
            Suspicion::Gone => f.write_str("it is gone"),
            Suspicion::Leaving => f.write_str("it is asked to leave"),
        }
    }
}

/// What the host does for this machine, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipEvent {
    /// This core suspects `core` now.
    Suspects { core: CoreId, why: Suspicion },
    /// From now on, stamp messages with `view`'s epoch; the protocols may
    /// send to its members (and the installed view's).
    Stamp(View),
    /// Hand this machine's monitor every message waiting from `core`, then
    /// call [`Membership::drained`].
    Drain(CoreId),
    /// This core installed `new` in place of `old`: tell the protocols that
    /// the cores `new` leaves out are down, and deliver the messages held
    /// for it.
    Installed { old: View, new: View },
    /// This core is left out of view `epoch` while it runs: stop it.
    Excluded { epoch: u32 },
}

pub type MembershipOutbox = Outbox<MembershipMsg, MembershipEvent>;

/// What a host does with a protocol message that came in epoch `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gate {
    /// Deliver it now.
    Deliver,
    /// Keep it until this core installs a view of its epoch.
    Hold,
    /// Drop it: it was sent in an older view.
    OldEpoch,
    /// Drop it: its sender is not in this core's view.
    NonMember,
}

/// A proposal this core leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Leading {
    view: View,
    /// Proposed members that have not accepted.
    waiting: Members,
    /// The tick it was proposed at.
    since: u64,
}

/// A committed view this core is installing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Flushing {
    view: View,
    /// Members whose flush has not come.
    waiting: Members,
    /// Cores the view leaves out whose rings are not yet drained.
    draining: Members,
}

/// One core's part in the membership.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Membership {
    me: CoreId,
    /// Cores of the machine: ids `0..cores`.
    cores: u16,
    detector: Detector,
    /// The installed view.
    view: View,
    /// The view this core sends in: the installed one, or the committed one
    /// it has sent its flush for.
    stamp: View,
    /// Every core that was ever a member of a view installed here.
    ever: Members,
    excluded: bool,
    /// Members this core suspects, and joiners it gave up on.
    suspects: Members,
    /// The newest view this core knows to be committed.
    committed: View,
    /// The last proposal this core accepted, and who proposed it.
    accepted: Option<(View, CoreId)>,
    /// The newest epoch another core said it knows of.
    newest_seen: u32,
    /// Cores asking to join, while this core leads.
    joining: Members,
    leading: Option<Leading>,
    flushing: Option<Flushing>,
    /// Flushes that came before their commit, by epoch.
    early_flushes: BTreeMap<u32, Members>,
    /// Cores left out whose rings the host was asked to drain, and those it
    /// drained, since the last install.
    drains_asked: Members,
    drained: Members,
    /// Non-members told they are left out, since the last install.
    fenced: Members,
    /// Suspicions sent to the leader, and which leader.
    told: (CoreId, Members),
    /// No proposals before this tick: another core's proposal was preferred.
    quiet_until: u64,
}

impl Membership {
    /// Core `me` of `cores`, alone in view 0.
    pub fn new(me: CoreId, cores: u16, detector: Detector) -> Self {
        let alone = View {
            epoch: 0,
            members: Members::one(me),
        };
        Self {
            me,
            cores,
            detector,
            view: alone,
            stamp: alone,
            ever: alone.members,
            excluded: false,
            suspects: Members::new(),
            committed: alone,
            accepted: None,
            newest_seen: 0,
            joining: Members::new(),
            leading: None,
            flushing: None,
            early_flushes: BTreeMap::new(),
            drains_asked: Members::new(),
            drained: Members::new(),
            fenced: Members::new(),
            told: (me, Members::new()),
            quiet_until: 0,
        }
    }

    /// The installed view.
    pub fn view(&self) -> View {
        self.view
    }

    /// The view this core sends in.
    pub fn stamp(&self) -> View {
        self.stamp
    }

    /// Whether `core` is in the view this core is in or going to: the
    /// protocols may send to it.
    pub fn is_member(&self, core: CoreId) -> bool {
        self.view.members.union(self.stamp.members).contains(core)
    }

    pub fn excluded(&self) -> bool {
        self.excluded
    }

    pub fn detector(&self) -> Detector {
        self.detector
    }

    pub fn set_detector(&mut self, detector: Detector) {
        self.detector = detector;
    }

    /// The cores this core suspects now.
    pub fn suspects(&self) -> Members {
        self.suspects
    }

    /// The view this core proposes and waits for accepts of, if any.
    pub fn proposing(&self) -> Option<View> {
        self.leading.as_ref().map(|leading| leading.view)
    }

    /// Whether a view change is under way here.
    pub fn changing(&self) -> bool {
        self.leading.is_some() || self.flushing.is_some() || !self.joining.is_empty()
    }

    /// What to do with a protocol message from `from` sent in `epoch`.
    pub fn gate(&self, from: CoreId, epoch: u32) -> Gate {
        if epoch > self.view.epoch {
            Gate::Hold
        } else if epoch < self.view.epoch {
            Gate::OldEpoch
        } else if !self.view.members.contains(from) {
            Gate::NonMember
        } else {
            Gate::Deliver
        }
    }

    /// What to do with a protocol message held for a newer view, now that
    /// this core installed `self.view()` in place of a view of epoch `old`:
    /// one sent by a member of the new view in an epoch this core skipped
    /// (it went from `old` straight past it) belongs before the install, as
    /// that member's flush came after it, so it is delivered.
    pub fn gate_released(&self, from: CoreId, epoch: u32, old: u32) -> Gate {
        if old < epoch && epoch <= self.view.epoch && self.view.members.contains(from) {
            Gate::Deliver
        } else {
            self.gate(from, epoch)
        }
    }

    /// Asks `sponsor` to let this core join: a new kernel's first message.
    pub fn join(&mut self, sponsor: CoreId, out: &mut MembershipOutbox) {
        out.send(sponsor, MembershipMsg::Join { core: self.me });
    }

    /// Takes `cores` in, by agreement, as if each had asked to join.
    pub fn admit(&mut self, cores: Members, tick: u64, out: &mut MembershipOutbox) {
        for core in cores.iter() {
            if core.0 < self.cores && !self.is_member(core) {
                self.suspects.remove(core);
                self.joining.insert(core);
            }
        }
        self.lead_or_tell(tick, out);
    }

    /// The host's detector suspects `core`.
    pub fn suspect(&mut self, core: CoreId, why: Suspicion, tick: u64, out: &mut MembershipOutbox) {
        if core == self.me || self.suspects.contains(core) {
            return;
        }
        self.suspects.insert(core);
        out.emit(MembershipEvent::Suspects { core, why });
        self.lead_or_tell(tick, out);
    }

    /// The host has handed over every message waiting from `core`.
    pub fn drained(&mut self, core: CoreId, out: &mut MembershipOutbox) {
        self.drained.insert(core);
        if let Some(flushing) = &mut self.flushing {
            flushing.draining.remove(core);
        }
        self.install_if_flushed(out);
    }

    /// Tells `core`, whose message the host dropped because it is not a
    /// member, that it is left out; once per core and view, and only to a
    /// core that was a member (a new kernel asks to join instead).
    pub fn tell_left_out(&mut self, core: CoreId, out: &mut MembershipOutbox) {
        if !self.ever.contains(core) || self.fenced.contains(core) || self.is_member(core) {
            return;
        }
        self.fenced.insert(core);
        let epoch = self.view.epoch;
        out.send(
            core,
            MembershipMsg::Refuse {
                epoch,
                newest: epoch,
                leader: self.me,
                excluded: true,
            },
        );
    }

    /// One tick passed: a proposed member that has not accepted in time is
    /// suspected, and the leader proposes what it should.
    pub fn on_tick(&mut self, tick: u64, out: &mut MembershipOutbox) {
        if let Some(leading) = &self.leading
            && tick.saturating_sub(leading.since) > self.detector.suspect_after
        {
            let (waiting, epoch) = (leading.waiting, leading.view.epoch);
            for core in waiting.iter() {
                self.joining.remove(core);
                self.suspect(core, Suspicion::NoAnswer { epoch }, tick, out);
            }
        }
        self.lead_or_tell(tick, out);
    }

    pub fn on_message(
        &mut self,
        from: CoreId,
        message: MembershipMsg,
        tick: u64,
        out: &mut MembershipOutbox,
    ) {
        let machine: Members = (0..self.cores).map(CoreId).collect();
        match message {
            MembershipMsg::Propose { view } | MembershipMsg::Commit { view }
                if !view.members.minus(machine).is_empty() =>
            {
                return;
            }
            _ => {}
        }
        match message {
            MembershipMsg::Heartbeat => self.tell_left_out(from, out),
            MembershipMsg::Join { core } => self.admit(Members::one(core), tick, out),
            MembershipMsg::Suspect { core } => {
                if self.committed.members.contains(core) {
                    self.suspect(core, Suspicion::ToldBy { by: from }, tick, out);
                }
            }
            MembershipMsg::Propose { view } => self.on_propose(from, view, out),
            MembershipMsg::Accept { epoch } => {
                if let Some(leading) = &mut self.leading
                    && leading.view.epoch == epoch
                {
                    leading.waiting.remove(from);
                    self.commit_if_accepted(tick, out);
                }
            }
            MembershipMsg::Refuse {
                epoch,
                newest,
                leader,
                excluded,
            } => self.on_refuse(epoch, newest, leader, excluded, tick, out),
            MembershipMsg::Commit { view } => self.on_commit(view, tick, out),
            MembershipMsg::Flush { epoch } => self.on_flush(from, epoch, out),
        }
    }

    /// The lowest member of the newest view this core does not suspect.
    fn leader(&self) -> Option<CoreId> {
        self.committed.members.minus(self.suspects).first()
    }

    /// Proposes a view if this core leads and the view should change;
    /// otherwise passes its suspicions and the joiners on to the leader.
    fn lead_or_tell(&mut self, tick: u64, out: &mut MembershipOutbox) {
        let me = self.me;
        if !self.committed.members.contains(me) || self.excluded {
            return;
        }
        let Some(leader) = self.leader() else {
            return;
        };
        if leader != me {
            if self.told.0 != leader {
                self.told = (leader, Members::new());
            }
            let untold = self.suspects.minus(self.told.1);
            for core in untold.iter() {
                out.send(leader, MembershipMsg::Suspect { core });
            }
            self.told.1 = self.told.1.union(untold);
            for core in self.joining.iter() {
                out.send(leader, MembershipMsg::Join { core });
            }
            self.joining = Members::new();
            self.leading = None;
            return;
        }
        let wanted = self
            .committed
            .members
            .union(self.joining)
            .minus(self.suspects);
        if let Some(leading) = &self.leading {
            if leading.view.members == wanted {
                return;
            }
            self.leading = None;
        }
        if wanted == self.committed.members
            || tick < self.quiet_until
            || !self.committed.keeps_quorum(wanted)
        {
            return;
        }
        let Some(epoch) = self.newest_known().max(self.newest_seen).checked_add(1) else {
            return;
        };
        let view = View {
            epoch,
            members: wanted,
        };
        self.accepted = Some((view, me));
        let waiting = wanted.minus(Members::one(me));
        for core in waiting.iter() {
            out.send(core, MembershipMsg::Propose { view });
        }
        self.leading = Some(Leading {
            view,
            waiting,
            since: tick,
        });
        self.commit_if_accepted(tick, out);
    }

    /// The newest epoch this core accepted, installs or installed.
    fn newest_known(&self) -> u32 {
        let accepted = self.accepted.map_or(0, |(view, _)| view.epoch);
        self.committed.epoch.max(accepted)
    }

    fn commit_if_accepted(&mut self, tick: u64, out: &mut MembershipOutbox) {
        let Some(leading) = self.leading.take_if(|leading| leading.waiting.is_empty()) else {
            return;
        };
        let view = leading.view;
        // The cores left out hear it too: one that still runs (it was
        // suspected wrongly) stops, and a dead one never reads it.
        let told = view.members.union(self.committed.members);
        for core in told.iter().filter(|&core| core != self.me) {
            out.send(core, MembershipMsg::Commit { view });
        }
        self.joining = self.joining.minus(view.members);
        self.on_commit(view, tick, out);
    }

    fn on_propose(&mut self, from: CoreId, view: View, out: &mut MembershipOutbox) {
        let known = self.view.members.union(self.committed.members);
        let newest = self.newest_known();
        let leader = self.accepted.map_or(from, |(_, leader)| leader);
        let refuse = |excluded| MembershipMsg::Refuse {
            epoch: view.epoch,
            newest,
            leader,
            excluded,
        };
        if self.view.epoch > 0 && !known.contains(from) {
            return out.send(from, refuse(true));
        }
        if view.epoch <= newest || !view.members.contains(self.me) {
            return out.send(from, refuse(false));
        }
        self.accepted = Some((view, from));
        out.send(from, MembershipMsg::Accept { epoch: view.epoch });
    }

    fn on_refuse(
        &mut self,
        epoch: u32,
        newest: u32,
        leader: CoreId,
        excluded: bool,
        tick: u64,
        out: &mut MembershipOutbox,
    ) {
        if excluded {
            return self.exclude(newest, out);
        }
        self.newest_seen = self.newest_seen.max(newest);
        if self
            .leading
            .take_if(|leading| leading.view.epoch == epoch)
            .is_none()
        {
            return;
        }
        if leader.0 < self.me.0 && !self.suspects.contains(leader) {
            // A lower core leads too (this one suspects it wrongly, or it
            // suspects this one): give its proposal time to commit.
            self.quiet_until = tick + self.detector.suspect_after;
        }
    }

    fn on_commit(&mut self, view: View, tick: u64, out: &mut MembershipOutbox) {
        let current = self.flushing.as_ref().map_or(self.view, |f| f.view);
        if view.epoch <= current.epoch {
            return;
        }
        if !view.members.contains(self.me) {
            return self.exclude(view.epoch, out);
        }
        self.committed = view;
        self.leading = self
            .leading
            .take()
            .filter(|leading| leading.view.epoch > view.epoch);
        self.stamp = view;
        out.emit(MembershipEvent::Stamp(view));
        let others = view.members.minus(Members::one(self.me));
        for core in others.iter() {
            out.send(core, MembershipMsg::Flush { epoch: view.epoch });
        }
        let flushed = self.early_flushes.remove(&view.epoch).unwrap_or_default();
        let left_out = self.view.members.minus(view.members);
        for core in left_out.minus(self.drains_asked).iter() {
            out.emit(MembershipEvent::Drain(core));
        }
        self.drains_asked = self.drains_asked.union(left_out);
        let mut flushing = Flushing {
            view,
            waiting: others.minus(flushed),
            draining: left_out.minus(self.drained),
        };
        if mutants::active(Mutant::InstallWithoutFlush) {
            flushing.waiting = Members::new();
        }
        self.flushing = Some(flushing);
        self.install_if_flushed(out);
        self.lead_or_tell(tick, out);
    }

    fn on_flush(&mut self, from: CoreId, epoch: u32, out: &mut MembershipOutbox) {
        match &mut self.flushing {
            Some(flushing) if flushing.view.epoch == epoch => {
                flushing.waiting.remove(from);
                self.install_if_flushed(out);
            }
            _ if epoch > self.view.epoch => {
                self.early_flushes.entry(epoch).or_default().insert(from);
            }
            _ => {}
        }
    }

    fn install_if_flushed(&mut self, out: &mut MembershipOutbox) {
        let Some(flushing) = self
            .flushing
            .take_if(|f| f.waiting.is_empty() && f.draining.is_empty())
        else {
            return;
        };
        let old = self.view;
        let new = flushing.view;
        self.view = new;
        self.stamp = new;
        self.ever = self.ever.union(new.members);
        self.early_flushes.retain(|&epoch, _| epoch > new.epoch);
        self.drains_asked = Members::new();
        self.drained = Members::new();
        self.fenced = Members::new();
        self.suspects = self.suspects.intersect(new.members);
        self.joining = self.joining.minus(new.members);
        out.emit(MembershipEvent::Installed { old, new });
    }

    fn exclude(&mut self, epoch: u32, out: &mut MembershipOutbox) {
        // A kernel that has installed no view yet (it is booting, or it
        // started again and asks to join) holds nothing the others moved on
        // from: news of a view without it, such as a commit sent to its
        // earlier incarnation or a member's refusal of what it sent before
        // it was let in, is no reason to stop. It waits to be let in.
        if self.view.epoch == 0 {
            return;
        }
        if !self.excluded {
            self.excluded = true;
            out.emit(MembershipEvent::Excluded { epoch });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(cores: &[u16]) -> Members {
        cores.iter().copied().map(CoreId).collect()
    }

    #[test]
    fn the_detector_slows_with_the_square_of_the_cores_past_64() {
        for cores in [0, 1, 4, 64] {
            assert_eq!(Detector::for_cores(cores), Detector::DEFAULT);
        }
        let at = |cores| Detector::for_cores(cores);
        assert_eq!((at(65).heartbeat, at(65).suspect_after), (40, 400));
        assert_eq!((at(128).heartbeat, at(128).suspect_after), (40, 400));
        assert_eq!((at(192).heartbeat, at(192).suspect_after), (90, 900));
        // Heartbeats per tick, all cores to all others, stay at most what
        // 64 cores send (counting each core's own too, for whole numbers).
        let load = |cores: u64| cores * cores / at(cores).heartbeat;
        assert!((65..=255).all(|cores| load(cores) <= load(64)));
    }

    #[test]
    fn members_are_a_set_of_ids() {
        let set = members(&[0, 1, 63, 64, 200, 255]);
        assert_eq!(Members::from_words(set.words()), set);
        assert_eq!(set.len(), 6);
        assert_eq!(alloc::format!("{set}"), "0 1 63 64 200 255");
        assert_eq!(alloc::format!("{}", Members::new()), "none");
        assert_eq!(set.minus(members(&[1, 255])), members(&[0, 63, 64, 200]));
    }

    #[test]
    fn a_quorum_is_more_than_half_or_half_with_the_lowest() {
        let view = |cores: &[u16]| View {
            epoch: 1,
            members: members(cores),
        };
        assert!(view(&[0, 1, 2]).keeps_quorum(members(&[1, 2])));
        assert!(!view(&[0, 1, 2]).keeps_quorum(members(&[2])));
        assert!(view(&[0, 1]).keeps_quorum(members(&[0])));
        assert!(!view(&[0, 1]).keeps_quorum(members(&[1])));
        assert!(view(&[0]).keeps_quorum(members(&[0, 1, 2, 3])));
        assert!(!view(&[3, 5, 6, 7]).keeps_quorum(members(&[6, 7])));
    }

    #[test]
    fn a_view_naming_a_core_the_machine_lacks_is_ignored() {
        let mut membership = Membership::new(CoreId(1), 2, Detector::DEFAULT);
        let mut out = MembershipOutbox::default();
        let view = View {
            epoch: 1,
            members: members(&[0, 1, 200]),
        };
        membership.on_message(CoreId(0), MembershipMsg::Propose { view }, 0, &mut out);
        membership.on_message(CoreId(0), MembershipMsg::Commit { view }, 0, &mut out);
        assert!(out.sends.is_empty() && out.events.is_empty(), "{out:?}");
        let refusal = MembershipMsg::Refuse {
            epoch: 1,
            newest: u32::MAX,
            leader: CoreId(0),
            excluded: false,
        };
        membership.on_message(CoreId(0), refusal, 0, &mut out);
        membership.admit(members(&[0]), 0, &mut out);
        assert!(out.sends.is_empty(), "no epoch past u32::MAX: {out:?}");
    }

    #[test]
    fn a_core_alone_among_suspects_makes_no_view_of_its_own() {
        let mut membership = Membership::new(CoreId(2), 3, Detector::DEFAULT);
        membership.committed = View {
            epoch: 1,
            members: members(&[0, 1, 2]),
        };
        membership.view = membership.committed;
        let mut out = MembershipOutbox::default();
        for core in [0, 1] {
            membership.suspect(CoreId(core), Suspicion::Gone, 0, &mut out);
        }
        assert!(
            out.sends
                .iter()
                .all(|(_, message)| matches!(message, MembershipMsg::Suspect { .. })),
            "it only tells what it suspects: {out:?}"
        );
        assert_eq!(membership.proposing(), None);
        assert_eq!(membership.view().epoch, 1);
    }

    /// A kernel that starts again hears of views from before it is let
    /// in: a commit of a view without it (its earlier incarnation was left
    /// out of it), and a member's refusal of what it sent meanwhile. Found
    /// by `core cycle` under a storm at 16 cores in QEMU: the new kernel
    /// stopped as fenced while the leader was letting it in.
    #[test]
    fn a_kernel_in_no_view_yet_is_not_fenced_by_views_without_it() {
        let mut membership = Membership::new(CoreId(1), 3, Detector::DEFAULT);
        let mut out = MembershipOutbox::default();
        let without_it = View {
            epoch: 2,
            members: members(&[0, 2]),
        };
        membership.on_message(
            CoreId(0),
            MembershipMsg::Commit { view: without_it },
            0,
            &mut out,
        );
        let left_out = |epoch| MembershipMsg::Refuse {
            epoch,
            newest: epoch,
            leader: CoreId(0),
            excluded: true,
        };
        membership.on_message(CoreId(2), left_out(2), 0, &mut out);
        assert!(!membership.excluded(), "{out:?}");
        assert!(out.events.is_empty(), "{out:?}");
        // Once in a view, the same news fences it.
        membership.view = View {
            epoch: 3,
            members: members(&[0, 1, 2]),
        };
        membership.committed = membership.view;
        membership.on_message(CoreId(2), left_out(4), 0, &mut out);
        assert!(membership.excluded());
        assert_eq!(out.events, [MembershipEvent::Excluded { epoch: 4 }]);
    }

    #[test]
    fn the_gate_delivers_only_in_the_view_a_message_was_sent_in() {
        let mut membership = Membership::new(CoreId(0), 3, Detector::DEFAULT);
        membership.view = View {
            epoch: 4,
            members: members(&[0, 2]),
        };
        assert_eq!(membership.gate(CoreId(2), 4), Gate::Deliver);
        assert_eq!(membership.gate(CoreId(2), 3), Gate::OldEpoch);
        assert_eq!(membership.gate(CoreId(1), 4), Gate::NonMember);
        assert_eq!(membership.gate(CoreId(1), 5), Gate::Hold);
    }
}
