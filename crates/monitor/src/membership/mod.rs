//! The `membership` service: which cores are members of the machine's
//! view, how a failed member is found, and how the members agree on each
//! new view.
//!
//! A view is an epoch number and a member set, replicated on every core.
//! Every message a monitor sends carries its epoch (the framing's header),
//! and the monitor drops the other services' messages sent in an older
//! epoch than its view's, or by a core its view does not hold (`lib.rs`).
//! A core starts alone in view 0 and asks to join (`ViewJoin`); a core
//! that never starts never asks, so it is never a member.
//!
//! Detection: each member sends every other a `Heartbeat` when it has sent
//! it nothing else for a heartbeat period (any message counts), and
//! suspects a member it has heard nothing from for `suspect_after` ticks.
//! A core that suspects another tells the leader: the lowest member of its
//! newest view that it does not suspect.
//!
//! Agreement: the leader proposes the next view (its newest view, with the
//! cores asking to join and without the suspects) to every proposed member
//! (`ViewPropose`). A core accepts a proposal whose epoch is past every
//! view it accepted or knows of, and refuses the others, saying the newest
//! epoch it knows, so that the leader proposes past it. When every
//! proposed member accepted, the leader commits the view (`ViewCommit`). A
//! member that does not accept within `suspect_after` ticks is suspected in
//! turn, and the leader proposes again without it, under a new epoch.
//! Epochs only grow, and a core accepts one proposal per epoch, so two
//! different views never commit under one epoch. A leader that fails
//! mid-change is suspected like any member; the next leader proposes past
//! whatever epoch the members accepted.
//!
//! Installation (the flush): on a commit, a member sends `ViewFlush` to
//! every other member of the new view and from then on stamps its messages
//! with the new epoch. It installs the view once every other member's
//! flush has come and it has read every message still waiting from the
//! cores the view leaves out (the host drains their rings,
//! [`Deferred::Drain`](crate::Deferred::Drain)). Links keep order, so by
//! then every message a member sent in an older view has been handled, and
//! dropping what comes later in an older epoch loses nothing of a member.
//! Only then do the protocols hear that the cores left out are down
//! (`atoll_replica::Input::CoreDown`): every round in flight then ends, and
//! no lock of theirs is left behind. A core that learns it is left out of
//! a view while it still runs (it was suspected wrongly) fences itself
//! ([`Effect::Excluded`](crate::Effect::Excluded)): its host stops it. It
//! learns from the commit, which the leader sends the cores it leaves out
//! too, or from a member that drops its messages.

pub(crate) mod messages;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;

use atoll_proto::CoreId;
use atoll_proto::mutants::{self, Mutant};

pub use self::messages::*;
use crate::base::{Cx, Service};
use crate::calls::{OpEvent, OpRef};
use crate::output::{Deferred, Effect};
use crate::view::{Members, View};

/// The failure detector's settings, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Detector {
    /// Send a heartbeat to a member after this long without sending it
    /// anything.
    pub heartbeat: u64,
    /// Suspect a member after this long without hearing from it, and a
    /// proposed member that has not accepted after this long.
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
}

/// A proposal this core leads.
#[derive(Debug)]
struct Leading {
    view: View,
    /// Proposed members that have not accepted.
    waiting: Members,
    /// The tick it was proposed at.
    since: u64,
}

/// A committed view this core is installing.
#[derive(Debug)]
struct Flushing {
    view: View,
    /// Members whose flush has not come.
    waiting: Members,
    /// Cores the view leaves out whose rings are not yet drained.
    draining: Members,
}

/// A view this core installed, for the monitor to act on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Installed {
    pub old: View,
    pub new: View,
}

pub(crate) struct Membership {
    detector: Detector,
    /// Members this core suspects, and joiners it gave up on.
    suspects: Members,
    /// The newest view this core knows to be committed: the installed one,
    /// or the one it is installing.
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
    /// Views installed and not yet acted on by the monitor.
    installed: alloc::vec::Vec<Installed>,
}

impl Membership {
    pub fn new(me: CoreId, detector: Detector) -> Self {
        Self {
            detector,
            suspects: Members::new(),
            committed: View {
                epoch: 0,
                members: Members::one(me),
            },
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
            installed: alloc::vec::Vec::new(),
        }
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
    #[cfg(test)]
    pub fn changing_as_leader(&self) -> Option<View> {
        self.leading.as_ref().map(|leading| leading.view)
    }

    /// Whether a view change is under way here.
    pub fn changing(&self) -> bool {
        self.leading.is_some() || self.flushing.is_some() || !self.joining.is_empty()
    }

    /// The views installed since the last call.
    pub fn take_installed(&mut self) -> alloc::vec::Vec<Installed> {
        core::mem::take(&mut self.installed)
    }

    /// Asks to join: a new kernel's first message, to `sponsor`.
    pub fn join(&mut self, cx: &mut Cx<'_>, sponsor: CoreId) {
        cx.send(sponsor, ViewJoin { core: cx.me().0 });
    }

    /// Takes `cores` in, as if each had asked to join.
    pub fn admit(&mut self, cx: &mut Cx<'_>, cores: Members) {
        for core in cores.iter() {
            if usize::from(core.0) < usize::from(cx.cores()) && !cx.is_member(core) {
                self.suspects.remove(core);
                self.joining.insert(core);
            }
        }
        self.lead_or_tell(cx);
    }

    /// The host has read every slot waiting from `core`.
    pub fn drained(&mut self, cx: &mut Cx<'_>, core: CoreId) {
        self.drained.insert(core);
        if let Some(flushing) = &mut self.flushing {
            flushing.draining.remove(core);
        }
        self.install_if_flushed(cx);
    }

    /// Tells `core`, which sent something this core dropped because it is
    /// not a member, that it is left out; once per core and view, and only
    /// to cores that were members (a new kernel asks to join instead).
    pub fn tell_left_out(&mut self, cx: &mut Cx<'_>, core: CoreId) {
        if !cx.base.ever.contains(core) || self.fenced.contains(core) || cx.is_member(core) {
            return;
        }
        self.fenced.insert(core);
        let epoch = cx.base.view.epoch;
        cx.send(
            core,
            ViewRefuse {
                epoch,
                newest: epoch,
                leader: cx.me().0,
                excluded: true,
            },
        );
    }

    /// The lowest member of the newest view this core does not suspect.
    fn leader(&self) -> Option<CoreId> {
        self.committed.members.minus(self.suspects).first()
    }

    fn suspect(&mut self, cx: &mut Cx<'_>, core: CoreId, why: String) {
        if core == cx.me() || self.suspects.contains(core) {
            return;
        }
        self.suspects.insert(core);
        cx.notice(format!("suspects core {}: {why}", core.0));
        self.lead_or_tell(cx);
    }

    /// Proposes a view if this core leads and the view should change;
    /// otherwise passes its suspicions and the joiners on to the leader.
    fn lead_or_tell(&mut self, cx: &mut Cx<'_>) {
        let me = cx.me();
        if !self.committed.members.contains(me) {
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
                cx.send(leader, ViewSuspect { core: core.0 });
            }
            self.told.1 = self.told.1.union(untold);
            for core in self.joining.iter() {
                cx.send(leader, ViewJoin { core: core.0 });
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
        if wanted == self.committed.members || cx.tick() < self.quiet_until {
            return;
        }
        let epoch = self.newest_known().max(self.newest_seen) + 1;
        let view = View {
            epoch,
            members: wanted,
        };
        self.accepted = Some((view, me));
        let waiting = wanted.minus(Members::one(me));
        for core in waiting.iter() {
            cx.send(
                core,
                ViewPropose {
                    epoch,
                    members: wanted.to_bytes(),
                },
            );
        }
        self.leading = Some(Leading {
            view,
            waiting,
            since: cx.tick(),
        });
        self.commit_if_accepted(cx);
    }

    /// The newest epoch this core accepted, installs or installed.
    fn newest_known(&self) -> u32 {
        let accepted = self.accepted.map_or(0, |(view, _)| view.epoch);
        self.committed.epoch.max(accepted)
    }

    fn commit_if_accepted(&mut self, cx: &mut Cx<'_>) {
        let Some(leading) = self.leading.take_if(|leading| leading.waiting.is_empty()) else {
            return;
        };
        let view = leading.view;
        let me = cx.me();
        // The cores left out hear it too: one that still runs (it was
        // suspected wrongly) fences itself, and a dead one never reads it.
        let told = view.members.union(self.committed.members);
        for core in told.iter().filter(|&core| core != me) {
            cx.send(
                core,
                ViewCommit {
                    epoch: view.epoch,
                    members: view.members.to_bytes(),
                },
            );
        }
        self.joining = self.joining.minus(view.members);
        self.on_commit(cx, view);
    }

    fn on_propose(&mut self, cx: &mut Cx<'_>, from: CoreId, view: View) {
        let installed = cx.base.view;
        let known = installed.members.union(self.committed.members);
        let newest = self.newest_known();
        let refuse = |excluded| ViewRefuse {
            epoch: view.epoch,
            newest,
            leader: self.accepted.map_or(from, |(_, leader)| leader).0,
            excluded,
        };
        if installed.epoch > 0 && !known.contains(from) {
            return cx.send(from, refuse(true));
        }
        if view.epoch <= newest || !view.members.contains(cx.me()) {
            return cx.send(from, refuse(false));
        }
        self.accepted = Some((view, from));
        cx.send(from, ViewAccept { epoch: view.epoch });
    }

    fn on_refuse(&mut self, cx: &mut Cx<'_>, refusal: ViewRefuse) {
        if refusal.excluded {
            return self.exclude(cx, refusal.newest);
        }
        self.newest_seen = self.newest_seen.max(refusal.newest);
        if self
            .leading
            .take_if(|leading| leading.view.epoch == refusal.epoch)
            .is_none()
        {
            return;
        }
        let preferred = CoreId(refusal.leader);
        if preferred.0 < cx.me().0 && !self.suspects.contains(preferred) {
            // A lower core leads too (this one suspects it wrongly, or it
            // suspects this one): give its proposal time to commit.
            self.quiet_until = cx.tick() + self.detector.suspect_after;
        }
    }

    fn on_commit(&mut self, cx: &mut Cx<'_>, view: View) {
        let current = self.flushing.as_ref().map_or(cx.base.view, |f| f.view);
        if view.epoch <= current.epoch {
            return;
        }
        let me = cx.me();
        if !view.members.contains(me) {
            return self.exclude(cx, view.epoch);
        }
        self.committed = view;
        self.leading = self
            .leading
            .take()
            .filter(|leading| leading.view.epoch > view.epoch);
        cx.base.stamp(view);
        let others = view.members.minus(Members::one(me));
        for core in others.iter() {
            cx.send(core, ViewFlush { epoch: view.epoch });
        }
        let flushed = self.early_flushes.remove(&view.epoch).unwrap_or_default();
        let left_out = cx.base.view.members.minus(view.members);
        for core in left_out.minus(self.drains_asked).iter() {
            cx.defer(Deferred::Drain { core });
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
        self.install_if_flushed(cx);
        self.lead_or_tell(cx);
    }

    fn on_flush(&mut self, cx: &mut Cx<'_>, from: CoreId, epoch: u32) {
        match &mut self.flushing {
            Some(flushing) if flushing.view.epoch == epoch => {
                flushing.waiting.remove(from);
                self.install_if_flushed(cx);
            }
            _ if epoch > cx.base.view.epoch => {
                self.early_flushes.entry(epoch).or_default().insert(from);
            }
            _ => {}
        }
    }

    fn install_if_flushed(&mut self, cx: &mut Cx<'_>) {
        let Some(flushing) = self
            .flushing
            .take_if(|f| f.waiting.is_empty() && f.draining.is_empty())
        else {
            return;
        };
        let old = cx.base.view;
        let new = flushing.view;
        cx.base.install(new);
        self.early_flushes.retain(|&epoch, _| epoch > new.epoch);
        self.drains_asked = Members::new();
        self.drained = Members::new();
        self.fenced = Members::new();
        self.suspects = self.suspects.intersect(new.members);
        self.joining = self.joining.minus(new.members);
        self.installed.push(Installed { old, new });
    }

    fn exclude(&mut self, cx: &mut Cx<'_>, epoch: u32) {
        if cx.base.excluded {
            return;
        }
        cx.base.excluded = true;
        cx.notice(format!(
            "left out of view {epoch} while running; stopping (fenced)"
        ));
        cx.effect(Effect::Excluded { epoch });
    }
}

impl Service for Membership {
    type Message = MembershipMessage;

    fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, _call: u32, message: MembershipMessage) {
        match message {
            MembershipMessage::Heartbeat(Heartbeat {}) => self.tell_left_out(cx, from),
            MembershipMessage::ViewJoin(ViewJoin { core }) => {
                self.admit(cx, Members::one(CoreId(core)))
            }
            MembershipMessage::ViewSuspect(ViewSuspect { core }) => {
                let core = CoreId(core);
                if self.committed.members.contains(core) {
                    self.suspect(cx, core, format!("core {} suspects it", from.0));
                }
            }
            MembershipMessage::ViewPropose(ViewPropose { epoch, members }) => {
                let members = Members::from_bytes(members);
                self.on_propose(cx, from, View { epoch, members });
            }
            MembershipMessage::ViewAccept(ViewAccept { epoch }) => {
                if let Some(leading) = &mut self.leading
                    && leading.view.epoch == epoch
                {
                    leading.waiting.remove(from);
                    self.commit_if_accepted(cx);
                }
            }
            MembershipMessage::ViewRefuse(refusal) => self.on_refuse(cx, refusal),
            MembershipMessage::ViewCommit(ViewCommit { epoch, members }) => {
                let members = Members::from_bytes(members);
                self.on_commit(cx, View { epoch, members });
            }
            MembershipMessage::ViewFlush(ViewFlush { epoch }) => self.on_flush(cx, from, epoch),
        }
    }

    fn event(&mut self, _cx: &mut Cx<'_>, _op: OpRef, _event: OpEvent) {}

    /// Heartbeats, suspicions, and proposals that wait too long.
    fn tick(&mut self, cx: &mut Cx<'_>) {
        let me = cx.me();
        let tick = cx.tick();
        let installed = cx.base.view.members;
        let sent_to = installed.union(self.committed.members);
        for core in sent_to.iter().filter(|&core| core != me) {
            if tick.saturating_sub(cx.base.sent_at(core)) >= self.detector.heartbeat
                && !mutants::active(Mutant::NoHeartbeats)
            {
                cx.send(core, Heartbeat {});
            }
        }
        // Joiners are heard from only once they are installed: until then
        // they answer the proposal, or are suspected for not answering.
        for core in installed.iter().filter(|&core| core != me) {
            let silent = tick.saturating_sub(cx.base.heard_at(core));
            if silent > self.detector.suspect_after && !mutants::active(Mutant::NeverSuspect) {
                self.suspect(cx, core, format!("nothing heard for {silent} ticks"));
            }
        }
        if let Some(leading) = &self.leading
            && tick.saturating_sub(leading.since) > self.detector.suspect_after
        {
            let (waiting, epoch) = (leading.waiting, leading.view.epoch);
            for core in waiting.iter() {
                self.joining.remove(core);
                self.suspect(cx, core, format!("no answer to proposal {epoch}"));
            }
        }
        self.lead_or_tell(cx);
    }
}
