//! A world of cores' replicators, the channels between them, and the
//! invariants.
//!
//! The world is a value: every [`Action`] takes it from one state to the
//! next, and it derives `Hash` and `Clone`, so the random simulator walks
//! one path through its states and the explorer walks all of them, running
//! the same core code.
//!
//! Each host keeps what the kernel would keep for a core: a page table and
//! a TLB (`crate::memory`), its part in the membership
//! (`atoll_proto::membership`), and the protocol messages held for a view
//! it has not installed yet. Every protocol message carries its sender's
//! epoch, and a host hands it to its replicator only in the view it was
//! sent in, as the monitor does. A crash is announced to nobody: the
//! survivors' detectors notice it (a `Notice` action, at any moment after
//! the crash), and the membership agrees on a view without the crashed
//! core; only then does each replicator hear that it is down. Each core
//! ticks on its own clock, and cores may have timeouts of their own.

use atoll_proto::Shape;
use atoll_proto::membership::{
    Detector, Gate, Members, Membership, MembershipEvent, MembershipMsg, MembershipOutbox,
    Suspicion,
};
use atoll_proto::two_phase::AbortReason;
use atoll_replica::{
    Completion, Config, CoreId, Effect, Input, Mapping, MappingTable, Message, OpId, Replica,
    Replicator, Request, SpaceId, Timeouts, TreePlan,
};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use crate::memory::{Memory, replicas_agree};
use crate::seeded::{Simulation, Violation, violation};

/// The one address space of every scenario.
pub const SPACE: SpaceId = SpaceId(1);

/// A configuration and workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Domains of the cores, one per core (so also how many there are).
    /// `Planned` rounds route by [`TreePlan::from_domains`] of them.
    pub domains: Vec<u32>,
    /// The plan's fan-out ([`TreePlan::set_fan_out`]): with one, a domain
    /// of more cores than it plus one is a tree of subgroups.
    pub fan_out: Option<usize>,
    /// The cores that hold `SPACE`.
    pub holders: Vec<CoreId>,
    pub shape: Shape,
    /// Each core's timeouts, one per core.
    pub timeouts: Vec<Timeouts>,
    /// Whether ticks happen (they are what makes timeouts fire).
    pub ticks: bool,
    /// How many cores may crash.
    pub crashes: u8,
    /// Pages mapped (by core 0, to completion) before the run starts.
    pub preload: Vec<(u64, Mapping)>,
    /// What each core submits, in order, each at a moment of the
    /// schedule's choosing.
    pub scripts: Vec<Vec<Request>>,
}

/// One step of the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The core submits the next request of its script.
    Submit(CoreId),
    /// The oldest envelope on the channel from `from` to `to` arrives.
    Deliver { from: CoreId, to: CoreId },
    /// One tick passes on the core's clock.
    Tick(CoreId),
    /// The core crashes: it does nothing more, and messages to it are lost.
    /// Nobody is told.
    Crash(CoreId),
    /// Core `by`'s failure detector notices that `of` crashed.
    Notice { by: CoreId, of: CoreId },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Action::Submit(n) => write!(f, "submit on {}", n.0),
            Action::Deliver { from, to } => write!(f, "deliver {} -> {}", from.0, to.0),
            Action::Tick(n) => write!(f, "tick on {}", n.0),
            Action::Crash(n) => write!(f, "crash {}", n.0),
            Action::Notice { by, of } => write!(f, "{} notices that {} crashed", by.0, of.0),
        }
    }
}

/// A protocol message in its wire encoding.
type Bytes = [u8; atoll_replica::MESSAGE_BYTES];

/// What travels on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Envelope {
    /// A protocol message, and the epoch its sender sent it in.
    Message { bytes: Bytes, epoch: u32 },
    /// A membership message.
    Membership(MembershipMsg),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Host {
    replicator: Replicator,
    membership: Membership,
    /// Protocol messages sent in a view this core has not installed yet.
    held: VecDeque<(CoreId, u32, Bytes)>,
    up: bool,
    script: VecDeque<Request>,
    memory: Memory,
}

/// The model's detector: it never suspects by silence (that is the
/// `Notice` action's part), so its timeouts never run out.
const NO_TIMEOUT: Detector = Detector {
    heartbeat: u64::MAX / 4,
    suspect_after: u64::MAX / 4,
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct World {
    shape: Shape,
    ticks: bool,
    holders: Vec<CoreId>,
    hosts: Vec<Host>,
    /// Channel `from * n + to`.
    channels: Vec<VecDeque<Envelope>>,
    crashes_left: u8,
    submitted: BTreeMap<OpId, Request>,
    completed: BTreeMap<OpId, Completion>,
}

impl World {
    /// The world of `scenario`, with its preload done.
    pub fn new(scenario: &Scenario) -> Result<World, Violation> {
        crate::seeded::mutant_from_env()?;
        let n = scenario.domains.len();
        if scenario.timeouts.len() != n {
            return violation!("{} cores but {} timeouts", n, scenario.timeouts.len());
        }
        let mut plan = TreePlan::from_domains(&scenario.domains);
        plan.set_fan_out(scenario.fan_out);
        let hosts = (0..n)
            .map(|i| {
                let config = Config {
                    timeouts: scenario.timeouts[i],
                    plan: plan.clone(),
                };
                let mut replicator = Replicator::new(core_id(i), config, MappingTable::new());
                replicator.add_space(SPACE, &scenario.holders);
                Host {
                    replicator,
                    membership: Membership::new(core_id(i), n as u16, NO_TIMEOUT),
                    held: VecDeque::new(),
                    up: true,
                    script: VecDeque::new(),
                    memory: Memory::default(),
                }
            })
            .collect();
        let mut world = World {
            shape: scenario.shape,
            ticks: false,
            holders: scenario.holders.clone(),
            hosts,
            channels: vec![VecDeque::new(); n * n],
            crashes_left: 0,
            submitted: BTreeMap::new(),
            completed: BTreeMap::new(),
        };
        // The first view: core 0 admits every core, as the boot core does.
        let everyone: Members = (0..n).map(core_id).collect();
        world.membership(CoreId(0), |membership, out| {
            membership.admit(everyone, 0, out)
        })?;
        while let Some(&action) = world.actions().first() {
            world.act(action)?;
        }
        if let Some(i) = (0..n).find(|&i| world.hosts[i].membership.view().members != everyone) {
            return violation!("core {i} is not in a view of every core after starting");
        }
        world.hosts[0].script = scenario
            .preload
            .iter()
            .map(|&(vaddr, mapping)| Request::Map {
                space: SPACE,
                vaddr,
                mapping,
            })
            .collect();
        while let Some(&action) = world.actions().first() {
            world.act(action)?;
        }
        world.check_quiescent()?;
        for (host, script) in world.hosts.iter_mut().zip(&scenario.scripts) {
            host.script = script.iter().copied().collect();
        }
        world.ticks = scenario.ticks;
        world.crashes_left = scenario.crashes;
        Ok(world)
    }

    /// Acts on what `core` produced, as its host would: effects, then
    /// messages, then completions.
    fn absorb(&mut self, core: CoreId, out: atoll_replica::Actions) -> Result<(), Violation> {
        let n = self.hosts.len();
        let at = usize::from(core.0);
        for effect in out.effects {
            self.apply(core, effect)?;
        }
        let epoch = self.hosts[at].membership.stamp().epoch;
        for (to, message) in out.messages {
            if to == core {
                return violation!("core {} sent itself a message through its host", core.0);
            }
            if self.hosts[usize::from(to.0)].up {
                let channel = &mut self.channels[at * n + usize::from(to.0)];
                let bytes = message.to_bytes();
                channel.push_back(Envelope::Message { bytes, epoch });
            }
        }
        for completion in out.completions {
            self.complete(core, completion)?;
        }
        Ok(())
    }

    /// Runs `step` on `core`'s membership and acts on what it produced, as
    /// the monitor does: events first (they stamp what follows), then
    /// messages.
    fn membership(
        &mut self,
        core: CoreId,
        step: impl FnOnce(&mut Membership, &mut MembershipOutbox),
    ) -> Result<(), Violation> {
        let mut out = MembershipOutbox::default();
        step(&mut self.hosts[usize::from(core.0)].membership, &mut out);
        self.absorb_membership(core, out)
    }

    fn absorb_membership(&mut self, core: CoreId, out: MembershipOutbox) -> Result<(), Violation> {
        let at = usize::from(core.0);
        for event in out.events {
            match event {
                MembershipEvent::Suspects { .. } | MembershipEvent::Stamp(_) => {}
                MembershipEvent::Drain(from) => {
                    let n = self.hosts.len();
                    while !self.channels[usize::from(from.0) * n + at].is_empty() {
                        self.deliver(from, core)?;
                    }
                    let mut out = MembershipOutbox::default();
                    self.hosts[at].membership.drained(from, &mut out);
                    self.absorb_membership(core, out)?;
                }
                MembershipEvent::Installed { old, new } => {
                    for left in old.members.minus(new.members).iter() {
                        let mut actions = atoll_replica::Actions::default();
                        self.hosts[at]
                            .replicator
                            .handle(Input::CoreDown(left), &mut actions);
                        self.absorb(core, actions)?;
                    }
                    let held = std::mem::take(&mut self.hosts[at].held);
                    for (from, epoch, bytes) in held {
                        self.receive(from, core, epoch, bytes, Some(old.epoch))?;
                    }
                }
                MembershipEvent::Excluded { epoch } => {
                    return violation!("core {} was left out of view {epoch} while it ran", core.0);
                }
            }
        }
        let n = self.hosts.len();
        for (to, message) in out.sends {
            if self.hosts[usize::from(to.0)].up {
                self.channels[at * n + usize::from(to.0)].push_back(Envelope::Membership(message));
            }
        }
        Ok(())
    }

    /// Delivers the oldest envelope on the channel from `from` to `to`.
    fn deliver(&mut self, from: CoreId, to: CoreId) -> Result<(), Violation> {
        let n = self.hosts.len();
        let channel = &mut self.channels[usize::from(from.0) * n + usize::from(to.0)];
        match channel.pop_front().expect("deliver from an empty channel") {
            Envelope::Message { bytes, epoch } => self.receive(from, to, epoch, bytes, None),
            Envelope::Membership(message) => self.membership(to, |membership, out| {
                membership.on_message(from, message, 0, out)
            }),
        }
    }

    /// A protocol message from `from` sent in `epoch`: handed to `to`'s
    /// replicator, held, or dropped, as `to`'s view says. `released` is the
    /// epoch of the view `to` left when it installed the one a held message
    /// waited for.
    fn receive(
        &mut self,
        from: CoreId,
        to: CoreId,
        epoch: u32,
        bytes: Bytes,
        released: Option<u32>,
    ) -> Result<(), Violation> {
        let host = &mut self.hosts[usize::from(to.0)];
        let gate = match released {
            Some(old) => host.membership.gate_released(from, epoch, old),
            None => host.membership.gate(from, epoch),
        };
        match gate {
            Gate::Deliver => {}
            Gate::Hold => {
                host.held.push_back((from, epoch, bytes));
                return Ok(());
            }
            Gate::OldEpoch | Gate::NonMember => {
                if self.hosts[usize::from(from.0)].up {
                    return violation!(
                        "core {} dropped a message of core {}, which runs, for its view",
                        to.0,
                        from.0
                    );
                }
                return Ok(());
            }
        }
        let Some(message) = Message::from_bytes(&bytes) else {
            return violation!("undecodable message from {} to {}", from.0, to.0);
        };
        let mut out = atoll_replica::Actions::default();
        host.replicator
            .handle(Input::Message { from, message }, &mut out);
        self.absorb(to, out)
    }

    fn apply(&mut self, core: CoreId, effect: Effect) -> Result<(), Violation> {
        self.hosts[usize::from(core.0)].memory.apply(core.0, effect)
    }

    fn complete(&mut self, core: CoreId, completion: Completion) -> Result<(), Violation> {
        let id = completion.id();
        let Some(&request) = self.submitted.get(&id) else {
            return violation!("completion of unknown request {id:?}");
        };
        if id.origin != core {
            return violation!(
                "core {} completed {id:?}, which core {} submitted",
                core.0,
                id.origin.0
            );
        }
        if let Some(earlier) = self.completed.insert(id, completion) {
            return violation!("{id:?} completed twice: {earlier:?}, then {completion:?}");
        }
        match completion {
            Completion::Committed { report, .. } | Completion::ShootdownDone { report, .. } => {
                let targets = usize::from(report.acked + report.unreached);
                if targets != self.holders.len() {
                    return violation!(
                        "{id:?} accounts for {targets} of {} holders",
                        self.holders.len()
                    );
                }
                if report.is_complete() {
                    self.check_applied_everywhere(id, request)?;
                }
            }
            Completion::Aborted {
                reason:
                    AbortReason::Refused {
                        refusal: atoll_replica::Refusal::Conflict { with },
                        ..
                    },
                ..
            } => {
                let same_page = self
                    .submitted
                    .get(&with)
                    .is_some_and(|other| page(other) == page(&request));
                if with == id || !same_page {
                    return violation!(
                        "{id:?} aborted for a conflict with {with:?}, which is not a rival"
                    );
                }
            }
            Completion::Aborted { .. } => {}
        }
        Ok(())
    }

    /// A completion that every holder confirmed: each one that is up has
    /// decided the change, and none still caches a translation its page
    /// table dropped.
    fn check_applied_everywhere(&self, id: OpId, request: Request) -> Result<(), Violation> {
        let (space, vaddr) = page(&request);
        for &holder in &self.holders {
            let host = &self.hosts[usize::from(holder.0)];
            if !host.up {
                continue;
            }
            let entries = host.replicator.replica().entries();
            if entries
                .iter()
                .any(|e| e.pending.is_some_and(|(p, _)| p == id))
            {
                return violation!(
                    "{id:?} completed while core {} had not applied it",
                    holder.0
                );
            }
            if let Some((paddr, flags)) = host.memory.stale(space, vaddr) {
                return violation!(
                    "{id:?} completed while core {} still caches {vaddr:#x} -> {paddr:#x} (flags {flags:#x})",
                    holder.0
                );
            }
        }
        Ok(())
    }
}

/// Counts of what happened in runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub committed: usize,
    pub aborted: usize,
    /// Aborts because a vote did not come in time.
    pub timed_out: usize,
    pub shootdowns: usize,
    /// Commits and shootdowns that some holder did not confirm.
    pub partial: usize,
    pub crashes: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.committed += other.committed;
        self.aborted += other.aborted;
        self.timed_out += other.timed_out;
        self.shootdowns += other.shootdowns;
        self.partial += other.partial;
        self.crashes += other.crashes;
    }
}

fn core_id(index: usize) -> CoreId {
    CoreId(u16::try_from(index).expect("fewer than 65536 cores"))
}

fn page(request: &Request) -> (SpaceId, u64) {
    match *request {
        Request::Map { space, vaddr, .. }
        | Request::Unmap { space, vaddr }
        | Request::Protect { space, vaddr, .. }
        | Request::Shootdown { space, vaddr } => (space, vaddr),
    }
}

impl Simulation for World {
    type Action = Action;
    type Tally = Tally;
    /// The actions possible now; none means the run is over.
    fn actions(&self) -> Vec<Action> {
        let n = self.hosts.len();
        let mut actions = Vec::new();
        for (i, host) in self.hosts.iter().enumerate() {
            if host.up && !host.script.is_empty() {
                actions.push(Action::Submit(core_id(i)));
            }
        }
        for (c, channel) in self.channels.iter().enumerate() {
            if !channel.is_empty() {
                let (from, to) = (core_id(c / n), core_id(c % n));
                actions.push(Action::Deliver { from, to });
            }
        }
        if self.ticks {
            for (i, host) in self.hosts.iter().enumerate() {
                if host.up && host.replicator.has_timers() {
                    actions.push(Action::Tick(core_id(i)));
                }
            }
        }
        if self.crashes_left > 0 {
            let up = self.hosts.iter().enumerate().filter(|(_, h)| h.up);
            actions.extend(up.map(|(i, _)| Action::Crash(core_id(i))));
        }
        for (i, host) in self.hosts.iter().enumerate().filter(|(_, h)| h.up) {
            for (j, _) in self.hosts.iter().enumerate().filter(|(_, h)| !h.up) {
                let of = core_id(j);
                if host.membership.is_member(of) && !host.membership.suspects().contains(of) {
                    actions.push(Action::Notice { by: core_id(i), of });
                }
            }
        }
        actions
    }

    /// Takes `action` (one of `actions()`) and checks the invariants that
    /// hold after every step.
    fn act(&mut self, action: Action) -> Result<(), Violation> {
        let n = self.hosts.len();
        match action {
            Action::Submit(core) => {
                let host = &mut self.hosts[usize::from(core.0)];
                let request = host
                    .script
                    .pop_front()
                    .expect("submit with an empty script");
                let mut out = atoll_replica::Actions::default();
                let Ok(id) = host.replicator.submit(request, self.shape, &mut out) else {
                    return violation!("core {} refused request {request:?}", core.0);
                };
                self.submitted.insert(id, request);
                self.absorb(core, out)
            }
            Action::Deliver { from, to } => self.deliver(from, to),
            Action::Tick(core) => {
                let mut out = atoll_replica::Actions::default();
                self.hosts[usize::from(core.0)]
                    .replicator
                    .handle(Input::Tick, &mut out);
                self.absorb(core, out)
            }
            Action::Crash(core) => {
                let crashed = usize::from(core.0);
                self.crashes_left -= 1;
                self.hosts[crashed].up = false;
                self.hosts[crashed].script.clear();
                for other in 0..n {
                    self.channels[other * n + crashed].clear();
                }
                Ok(())
            }
            Action::Notice { by, of } => self.membership(by, |membership, out| {
                membership.suspect(of, Suspicion::Gone, 0, out)
            }),
        }
    }

    /// Checks a world with no action left: every request of a core that is
    /// up completed, no protocol state is left, and the replicas that are
    /// up agree with each other and with their page tables and TLBs.
    fn check_quiescent(&self) -> Result<(), Violation> {
        for (&id, request) in &self.submitted {
            let origin_up = self.hosts[usize::from(id.origin.0)].up;
            if origin_up && !self.completed.contains_key(&id) {
                return violation!("{request:?} ({id:?}) never completed");
            }
        }
        let running: Members = (0..self.hosts.len())
            .filter(|&i| self.hosts[i].up)
            .map(core_id)
            .collect();
        let mut hashes = Vec::new();
        for (i, host) in self.hosts.iter().enumerate().filter(|(_, h)| h.up) {
            let view = host.membership.view();
            if view.members != running || host.membership.changing() || !host.held.is_empty() {
                return violation!(
                    "core {i} is in view {view:?} (changing: {}, {} messages held), not one of the running cores {running:?}",
                    host.membership.changing(),
                    host.held.len()
                );
            }
            let entries = host.replicator.replica().entries();
            if !host.replicator.is_idle() || entries.iter().any(|e| e.pending.is_some()) {
                return violation!("core {i} is left with a proposal in progress: {entries:?}");
            }
            host.memory.agrees_with(i as u16, &entries)?;
            if !self.holders.contains(&core_id(i)) {
                if !entries.is_empty() {
                    return violation!("core {i} holds no replica but has entries {entries:?}");
                }
                continue;
            }
            hashes.push((i as u16, host.replicator.replica().hash()));
        }
        replicas_agree(hashes)?;
        Ok(())
    }

    /// What happened in the run so far.
    fn tally(&self) -> Tally {
        let mut tally = Tally {
            crashes: self.hosts.iter().filter(|h| !h.up).count(),
            ..Tally::default()
        };
        for completion in self.completed.values() {
            match *completion {
                Completion::Committed { report, .. } => {
                    tally.committed += 1;
                    tally.partial += usize::from(!report.is_complete());
                }
                Completion::ShootdownDone { report, .. } => {
                    tally.shootdowns += 1;
                    tally.partial += usize::from(!report.is_complete());
                }
                Completion::Aborted { reason, .. } => {
                    tally.aborted += 1;
                    tally.timed_out += usize::from(matches!(reason, AbortReason::Timeout { .. }));
                }
            }
        }
        tally
    }

    /// `action` in words, with the message it would deliver.
    fn describe(&self, action: Action) -> String {
        let Action::Deliver { from, to } = action else {
            return action.to_string();
        };
        let channel = &self.channels[usize::from(from.0) * self.hosts.len() + usize::from(to.0)];
        match channel.front() {
            Some(Envelope::Message { bytes, epoch }) => {
                format!(
                    "{action}: {:?} in epoch {epoch}",
                    Message::from_bytes(bytes)
                )
            }
            Some(Envelope::Membership(message)) => format!("{action}: {message:?}"),
            None => format!("{action}: nothing to deliver"),
        }
    }
}
