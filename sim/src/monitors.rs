//! The simulator of whole monitors: N `atoll-monitor` monitors, the links
//! between them (in order per pair of cores, one slot at a time), a clock
//! per core, and shells on several cores that make the calls the kernel's
//! shell makes: `vm map`, `vm unmap`, `vm storm`, `vm hash`, round trips,
//! tracing on and off, some with call timeouts short enough that replies
//! come after them. Some scenarios stop cores at moments the schedule
//! picks: a core that crashes or hangs takes no more input and sends
//! nothing more (to the other monitors the two look the same; what it sent
//! stays in its links), and nobody announces it: the others' detectors
//! must find it and agree on a view without it. Some of those cores come
//! back once every running core's view has left them out: the links to
//! and from the core start afresh (as `core on` resets the rings) and a new
//! monitor on it asks a running core to join, then catches up from it
//! before it serves. A seed picks the scenario
//! and the schedule (which slot is delivered, which core's clock ticks,
//! when a shell calls, when a core stops), so a seed alone replays a run.
//! The clocks tick apart, but none runs more than `MAX_DRIFT` ticks ahead
//! of the slowest running one, as cores' timers do, and time passes only
//! while something waits for it.
//!
//! Each host keeps what the kernel keeps for a core: a page table and a TLB
//! that caches every mapping the moment it is entered. The invariants
//! checked after every step:
//! - no core maps a page over a mapping or unmaps an unmapped one;
//! - every call ends once, with a reply of the kind its request declares
//!   and about what it asked (a `VmDone` about its own page, a
//!   `VmStormDone` that counts its own proposals), or with a failure;
//! - no monitor drops a message as malformed, nor a reply as unknown or
//!   mismatched (only as late, after its call ended), and it says so for
//!   every drop; only once a core has stopped does any monitor drop a
//!   message sent in an older view or by a non-member, or not send one to
//!   a non-member;
//!
//! and at the end, with nothing left to deliver or tick: every call of a
//! running shell ended, and a call failed for a core being down only if
//! that core stopped; every running monitor is in the same view, whose
//! members are exactly the running cores, and is idle, its calls table
//! empty and no page locked; every running core's replica equals its page
//! table, no TLB entry is stale, and the replicas agree; each monitor
//! dropped as late the replies of its calls that timed out (exactly as
//! many when no core stopped, else at least those to cores that kept
//! running); and every traced receive from a core still tracing has its
//! traced send.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use atoll_monitor::bench::{
    BENCH_BAD_REQUEST, BENCH_DONE, BENCH_INCOMPLETE, BenchShootdown, BenchShot,
};
use atoll_monitor::control::{Ping, Pong, TraceSet, TraceSetDone};
use atoll_monitor::skb::{SkbGather, SkbGathered, SkbInstall, SkbInstalled, SkbLoaded, SkbReady};
use atoll_monitor::testing;
use atoll_monitor::vm::{
    Change, TEST_SPACE, VmDone, VmHash, VmHashReply, VmPropose, VmStorm, VmStormDone,
};
use atoll_monitor::{
    CallError, CoreId, Deferred, Effect, Input, Members, Monitor, Output, Strays, Ticket,
    TraceEvent, TraceKind, Wire,
};
use atoll_replica::Replica;
use atoll_urpc::Payload;

use crate::memory::{Memory, replicas_agree};
use crate::seeded::{self, Failure, Rng, Run, Simulation, Violation, violation};

/// Pages storms work on: few, so that proposals collide.
const STORM_PAGES: u32 = 3;
/// Single proposals work on pages from here on, apart from the storms'.
/// Each takes the next page or, half the time, the one before, so that
/// proposals from different shells collide; a `VmDone` must name the page
/// its proposal asked about (two proposals of one page are not told apart).
const FIRST_OWN_PAGE: u32 = 100;
/// Steps after which a run that has not settled counts as a livelock.
const MAX_STEPS: usize = 400_000;
/// A long call timeout, in ticks; short ones are drawn per call.
const LONG_TIMEOUT: u64 = 100_000;
/// How many ticks a core's clock may run ahead of the slowest running
/// core's: well under the detector's suspicion timeout, so that no core is
/// suspected for a slow clock alone.
const MAX_DRIFT: u64 = 20;

/// What a shell asks of a core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Propose { change: Change, page: u32 },
    Storm { operations: u32, seed: u32 },
    Hash,
    Ping,
    Trace { on: bool },
    Shootdown { method: u8, targets: u16 },
}

impl Request {
    fn wire(&self) -> Wire {
        match *self {
            Request::Propose { change, page } => VmPropose {
                change: change as u8,
                page,
            }
            .into(),
            Request::Storm { operations, seed } => VmStorm {
                operations,
                pages: STORM_PAGES,
                seed,
                own: false,
            }
            .into(),
            Request::Hash => VmHash {}.into(),
            Request::Ping => Ping {}.into(),
            Request::Trace { on } => TraceSet { on }.into(),
            Request::Shootdown { method, targets } => BenchShootdown { method, targets }.into(),
        }
    }

    /// Whether `reply` answers this request: of its reply's kind, and about
    /// what it asked.
    fn answered_by(&self, reply: Wire) -> Result<(), String> {
        let wrong = |reply: &str| Err(format!("{self:?} answered by {reply}"));
        let label = reply.label();
        match *self {
            Request::Propose { page, .. } => match reply.take::<VmDone>() {
                Some(done) if done.page == page => Ok(()),
                Some(done) => wrong(&format!("a VmDone about page {}", done.page)),
                None => wrong(label),
            },
            Request::Storm { operations, .. } => match reply.take::<VmStormDone>() {
                Some(done) if done.committed + done.aborted == operations => Ok(()),
                Some(done) => wrong(&format!("{done:?}")),
                None => wrong(label),
            },
            Request::Hash => reply
                .take::<VmHashReply>()
                .map(drop)
                .ok_or(())
                .or_else(|()| wrong(label)),
            Request::Ping => reply
                .take::<Pong>()
                .map(drop)
                .ok_or(())
                .or_else(|()| wrong(label)),
            Request::Trace { .. } => reply
                .take::<TraceSetDone>()
                .map(drop)
                .ok_or(())
                .or_else(|()| wrong(label)),
            // Protocol timeouts may pass before a holder's confirmation is
            // delivered, so a shootdown may end incomplete; never refused.
            // (The scenarios' targets are at most the cores but one.)
            Request::Shootdown { .. } => match reply.take::<BenchShot>() {
                Some(shot) if [BENCH_DONE, BENCH_INCOMPLETE].contains(&shot.status) => Ok(()),
                Some(shot) if shot.status == BENCH_BAD_REQUEST => wrong("a refusal"),
                Some(shot) => wrong(&format!("{shot:?}")),
                None => wrong(label),
            },
        }
    }
}

/// One call a shell makes, at a moment of the schedule's choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The core whose shell makes it.
    pub shell: u16,
    pub to: u16,
    pub request: Request,
    /// In ticks of the shell's core.
    pub timeout: u64,
}

/// A scenario: the cores, their NUMA nodes, each shell's calls, and the
/// cores that stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The NUMA node of each core (so also how many cores there are).
    pub nodes: Vec<u16>,
    /// Each shell's calls, in order, by the core it runs on.
    pub scripts: BTreeMap<u16, Vec<Call>>,
    /// Cores that crash or hang, in order, each at a moment the schedule
    /// picks; never all of them.
    pub stops: Vec<u16>,
    /// Cores of `stops` that come back as new kernels (`core on`), each
    /// once every running core's view has left it out, at a moment the
    /// schedule picks; each asks a running core that is not catching up
    /// itself to join, and catches up from it.
    pub restarts: Vec<u16>,
}

/// The scenario of `seed`: 2 to 6 cores on up to 2 NUMA nodes, shells on 1
/// to 3 of them, each making 1 to 6 calls; in about a third of those with 3
/// cores or more a core stops, and in some of those with 5 or more a
/// second (never half of them: see `atoll_proto::membership` on quorums).
pub fn scenario(seed: u64) -> Scenario {
    let mut rng = Rng::new(seed);
    let cores = 2 + rng.below(5) as u16;
    let nodes = (0..cores).map(|_| rng.below(2) as u16).collect();
    // At most the cores less than half: the survivors keep a quorum of
    // every view, which they need to leave the stopped cores out.
    let most = (cores - 1) / 2;
    let mut stops = Vec::new();
    if most > 0 && rng.chance(1, 3) {
        let wanted = if most > 1 && rng.chance(1, 3) { 2 } else { 1 };
        while stops.len() < wanted {
            let core = rng.below(u64::from(cores)) as u16;
            if !stops.contains(&core) {
                stops.push(core);
            }
        }
    }
    let restarts = stops.iter().copied().filter(|_| rng.chance(1, 2)).collect();
    let mut scripts = BTreeMap::new();
    let mut next_page = FIRST_OWN_PAGE;
    for _ in 0..1 + rng.below(3) {
        let shell = rng.below(u64::from(cores)) as u16;
        let calls = (0..1 + rng.below(6))
            .map(|_| {
                let to = rng.below(u64::from(cores)) as u16;
                let request = match rng.below(20) {
                    0..6 => {
                        next_page += 1;
                        let change = if rng.chance(2, 3) {
                            Change::Map
                        } else {
                            Change::Unmap
                        };
                        Request::Propose {
                            change,
                            page: next_page - rng.below(2) as u32,
                        }
                    }
                    6..10 => Request::Storm {
                        operations: 1 + rng.below(5) as u32,
                        seed: rng.next_u64() as u32,
                    },
                    10..13 => Request::Hash,
                    13..16 => Request::Ping,
                    16..18 => Request::Trace {
                        on: rng.chance(2, 3),
                    },
                    _ => Request::Shootdown {
                        method: 1 + rng.below(3) as u8,
                        targets: 1 + rng.below(u64::from(cores - 1)) as u16,
                    },
                };
                // Only the boot core runs `bench shootdown`.
                let to = match request {
                    Request::Shootdown { .. } => 0,
                    _ => to,
                };
                let timeout = if rng.chance(1, 4) {
                    1 + rng.below(8)
                } else {
                    LONG_TIMEOUT
                };
                Call {
                    shell,
                    to,
                    request,
                    timeout,
                }
            })
            .collect::<Vec<_>>();
        scripts.entry(shell).or_insert_with(Vec::new).extend(calls);
    }
    Scenario {
        nodes,
        scripts,
        stops,
        restarts,
    }
}

/// One step of the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The shell on `core` makes its next call.
    Call(u16),
    /// The oldest slot on the link from `from` to `to` arrives.
    Deliver { from: u16, to: u16 },
    /// One tick passes on `core`'s clock.
    Tick(u16),
    /// `core` crashes or hangs: the next of the scenario's stops.
    Stop(u16),
    /// A new kernel starts on `core`, which stopped and which every running
    /// core's view has left out: the links to and from it start afresh,
    /// as the kernel's hosts reset the rings, and it asks `sponsor` to join.
    Restart { core: u16, sponsor: u16 },
}

/// What the world knows of one core.
struct Host {
    monitor: Monitor,
    script: VecDeque<Call>,
    memory: Memory,
    trace: Vec<TraceEvent>,
    /// Ticks this core's clock has counted.
    clock: u64,
    /// Crashed or hung: it takes no more input.
    stopped: bool,
    /// Stopped at some point of the run (it may have come back since).
    ever_stopped: bool,
}

pub struct World {
    hosts: Vec<Host>,
    /// `ATOLL_SIM_NOTICES` is set: every core traces, and notices, effects
    /// and trace events are printed, for replaying a seed.
    verbose: bool,
    /// Slots in flight on link `from * n + to`.
    links: Vec<VecDeque<Payload>>,
    now: u64,
    /// The scenario's calls made so far, and whether each has ended.
    calls: BTreeMap<(u16, Ticket), (Call, bool)>,
    /// The setup call in flight, and its outcome once it has one.
    setup: Option<(Ticket, Option<Result<Wire, CallError>>)>,
    /// The calls that ended without their reply: by caller, the callee.
    unanswered: Vec<Vec<u16>>,
    /// Calls that failed because their callee was down or left out: the
    /// callee, which must have stopped.
    failed_for: Vec<u16>,
    /// Per core: what its monitor had dropped as of its last step.
    strays: Vec<Strays>,
    /// Whether a monitor dropped, or did not send, a message for its
    /// sender's or receiver's view; allowed only in runs where a core
    /// stopped.
    view_drops: bool,
    /// The senders of the messages dropped for their view: each must have
    /// stopped (a member that runs on flushes its older views' messages
    /// before anyone installs a newer one).
    dropped_from: BTreeSet<u16>,
    /// Calls to `bench shootdown` that every holder confirmed.
    shootdowns_done: u64,
    /// The stops still to come.
    stops: VecDeque<u16>,
    /// The restarts still to come, and those done.
    restarts: BTreeSet<u16>,
    restarted: u64,
    /// The NUMA node of each core, for a new kernel's facts.
    nodes: Vec<u16>,
}

/// A setup reply of the kind `pick` takes.
fn setup_reply<T>(reply: Wire, pick: impl FnOnce(Wire) -> Option<T>) -> Result<T, Violation> {
    let label = reply.label();
    pick(reply).ok_or_else(|| Violation(format!("setup call answered by {label}")))
}

impl World {
    /// The world of `scenario`, with every core up and the knowledge base
    /// filled the way the kernel's boot core fills it, so that proposals
    /// travel down the multicast trees it gives.
    pub fn new(scenario: &Scenario) -> Result<World, Violation> {
        crate::seeded::mutant_from_env()?;
        let cores = scenario.nodes.len() as u16;
        let mut world = World {
            hosts: Vec::new(),
            verbose: std::env::var_os("ATOLL_SIM_NOTICES").is_some(),
            links: vec![VecDeque::new(); usize::from(cores) * usize::from(cores)],
            now: 0,
            calls: BTreeMap::new(),
            setup: None,
            unanswered: vec![Vec::new(); usize::from(cores)],
            failed_for: Vec::new(),
            strays: vec![Strays::default(); usize::from(cores)],
            view_drops: false,
            dropped_from: BTreeSet::new(),
            shootdowns_done: 0,
            stops: scenario.stops.iter().copied().collect(),
            restarts: scenario.restarts.iter().copied().collect(),
            restarted: 0,
            nodes: scenario.nodes.clone(),
        };
        let mut outputs = Vec::new();
        for (monitor, out) in testing::start(&scenario.nodes) {
            world.hosts.push(Host {
                monitor,
                script: VecDeque::new(),
                memory: Memory::default(),
                trace: Vec::new(),
                clock: 0,
                stopped: false,
                ever_stopped: false,
            });
            outputs.push(out);
        }
        for (core, out) in (0..cores).zip(outputs) {
            world.absorb(core, out)?;
        }
        // The cores ask to join and the boot core's view takes them in.
        while let Some(link) = world.links.iter().position(|link| !link.is_empty()) {
            let n = world.n();
            world.deliver((link / n) as u16, (link % n) as u16)?;
        }
        let everyone: Members = (0..cores).map(CoreId).collect();
        if let Some(core) =
            (0..cores).find(|&c| world.hosts[usize::from(c)].monitor.view().members != everyone)
        {
            return violation!("core {core} is not in a view of every core after starting");
        }
        world.fill_knowledge()?;
        if world.verbose {
            for core in 0..cores {
                world.setup_call(core, TraceSet { on: true })?;
            }
        }
        for (&shell, calls) in &scenario.scripts {
            world.hosts[usize::from(shell)].script = calls.iter().cloned().collect();
        }
        Ok(world)
    }

    fn running(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.n() as u16).filter(|&core| !self.hosts[usize::from(core)].stopped)
    }

    /// Whether any core stopped in this run so far.
    fn any_stopped(&self) -> bool {
        self.hosts.iter().any(|host| host.ever_stopped)
    }

    /// Whether `core` stopped at some point of this run.
    fn ever_stopped(&self, core: u16) -> bool {
        self.hosts[usize::from(core)].ever_stopped
    }

    /// The next restart the schedule may pick: a core still to come back
    /// that every running core's view leaves out, and the running core it
    /// asks to join (the lowest that is not catching up itself).
    fn restart_ready(&self) -> Option<Action> {
        let sponsor = self
            .running()
            .find(|&core| !self.hosts[usize::from(core)].monitor.catching_up())?;
        self.restarts
            .iter()
            .copied()
            .find(|&core| {
                self.hosts[usize::from(core)].stopped
                    && self.running().all(|other| {
                        !self.hosts[usize::from(other)]
                            .monitor
                            .is_member(CoreId(core))
                    })
            })
            .map(|core| Action::Restart { core, sponsor })
    }

    /// Starts a new kernel on `core`, which asks `sponsor` to join.
    fn restart(&mut self, core: u16, sponsor: u16) -> Result<(), Violation> {
        let n = self.n();
        for other in 0..n {
            self.links[usize::from(core) * n + other].clear();
            self.links[other * n + usize::from(core)].clear();
        }
        for other in self.running().collect::<Vec<_>>() {
            if !self.hosts[usize::from(other)]
                .monitor
                .reset_link(CoreId(core))
            {
                return violation!("core {other} refused to reset its link to core {core}");
            }
        }
        let clock = self
            .running()
            .map(|core| self.hosts[usize::from(core)].clock)
            .min()
            .unwrap_or(0);
        let (monitor, out) = testing::restart(core, &self.nodes, Some(CoreId(sponsor)));
        let host = &mut self.hosts[usize::from(core)];
        host.monitor = monitor;
        host.memory = Memory::default();
        host.clock = clock;
        host.stopped = false;
        self.strays[usize::from(core)] = Strays::default();
        self.restarts.remove(&core);
        self.restarted += 1;
        // The calls the old kernel's shell made end with it, and so does
        // its count of late replies to drop.
        for ((shell, _), (_, ended)) in &mut self.calls {
            *ended |= *shell == core;
        }
        self.unanswered[usize::from(core)].clear();
        // Sequence numbers on the links start again: what the old kernel
        // traced, and the receives of its messages, can no longer be
        // paired with the new one's.
        self.hosts[usize::from(core)].trace.clear();
        for host in &mut self.hosts {
            host.trace
                .retain(|event| !(event.kind == TraceKind::Receive && event.peer == core));
        }
        self.absorb(core, out)
    }

    fn n(&self) -> usize {
        self.hosts.len()
    }

    /// The boot core's filling of the knowledge base, as the kernel does
    /// it: every core gathers and sends its facts, every replica reports
    /// its hash, and with all equal every core installs its plan.
    fn fill_knowledge(&mut self) -> Result<(), Violation> {
        let cores: Vec<u16> = (0..self.n() as u16).collect();
        let mut sent = Vec::new();
        for &core in &cores {
            let reply = self.setup_call(core, SkbGather { samples: 1 })?;
            sent.push(setup_reply(reply, |reply| reply.take::<SkbGathered>())?.batches);
        }
        let total: u32 = sent.iter().sum();
        let mut hashes = BTreeSet::new();
        for &core in &cores {
            let ready = SkbReady {
                batches: total - sent[usize::from(core)],
            };
            let reply = self.setup_call(core, ready)?;
            hashes.insert(setup_reply(reply, |reply| reply.take::<SkbLoaded>())?.hash);
        }
        let [hash] = hashes.into_iter().collect::<Vec<_>>()[..] else {
            return violation!("the knowledge base replicas differ after filling");
        };
        for &core in &cores {
            let reply = self.setup_call(
                core,
                SkbInstall {
                    hash,
                    install: true,
                },
            )?;
            if !setup_reply(reply, |reply| reply.take::<SkbInstalled>())?.installed {
                return violation!("core {core} did not install its multicast plan");
            }
        }
        Ok(())
    }

    /// A call from core 0, delivered link by link until it ends.
    fn setup_call(&mut self, to: u16, request: impl Into<Wire>) -> Result<Wire, Violation> {
        let mut out = Output::default();
        self.now += 1;
        let ticket =
            self.hosts[0]
                .monitor
                .call(self.now, CoreId(to), request, LONG_TIMEOUT, &mut out);
        self.setup = Some((ticket, None));
        self.absorb(0, out)?;
        loop {
            if let Some((_, Some(reply))) = &self.setup {
                let reply = reply.clone();
                self.setup = None;
                return reply.map_err(|error| Violation(format!("setup call to {to}: {error}")));
            }
            let Some(link) = self.links.iter().position(|link| !link.is_empty()) else {
                return violation!("setup call to {to} never ended");
            };
            let n = self.n();
            self.deliver((link / n) as u16, (link % n) as u16)?;
        }
    }

    fn deliver(&mut self, from: u16, to: u16) -> Result<(), Violation> {
        let n = self.n();
        let slot = self.links[usize::from(from) * n + usize::from(to)]
            .pop_front()
            .expect("deliver from an empty link");
        self.step(
            to,
            Input::Slot {
                from: CoreId(from),
                slot: &slot,
            },
        )
    }

    fn step(&mut self, core: u16, input: Input<'_>) -> Result<(), Violation> {
        if self.hosts[usize::from(core)].stopped {
            return Ok(());
        }
        let mut out = Output::default();
        self.now += 1;
        self.hosts[usize::from(core)]
            .monitor
            .step(self.now, input, &mut out);
        self.absorb(core, out)
    }

    /// Acts on what `core`'s monitor produced, as its host would.
    fn absorb(&mut self, core: u16, mut out: Output) -> Result<(), Violation> {
        loop {
            let n = self.n();
            for effect in out.effects.drain(..) {
                if self.verbose {
                    eprintln!("        core {core}: {effect:?}");
                }
                self.apply(core, effect)?;
            }
            for (to, slot) in out.sends.drain(..) {
                if to.0 == core {
                    return violation!("core {core}'s monitor gave its host a slot for itself");
                }
                self.links[usize::from(core) * n + usize::from(to.0)].push_back(slot);
            }
            for (ticket, result) in out.completions.drain(..) {
                self.complete(core, ticket, result)?;
            }
            if self.verbose {
                for event in &out.trace {
                    if event.kind != TraceKind::Receive {
                        eprintln!(
                            "        core {core}: {:?} {} peer {} detail {:x}",
                            event.kind, event.name, event.peer, event.detail
                        );
                    }
                }
            }
            self.hosts[usize::from(core)].trace.append(&mut out.trace);
            if self.verbose {
                for notice in &out.notices {
                    eprintln!("        core {core}: {notice}");
                }
            }
            self.check_drops(core, &out.notices)?;
            out.notices.clear();
            let deferred: Vec<Deferred> = out.deferred.drain(..).collect();
            if deferred.is_empty() {
                return Ok(());
            }
            for work in deferred {
                // Only the benchmarks measure, and the scenarios run only
                // the message methods of `bench shootdown`; a stall is a
                // stretch of the schedule in which the core is not chosen.
                // A drain reads what the core left out still has waiting.
                let input = match work {
                    Deferred::Measure { op, .. } => Input::Measured { op, cycles: None },
                    Deferred::Drain { core: from } => {
                        let n = self.n();
                        let link = usize::from(from.0) * n + usize::from(core);
                        while !self.links[link].is_empty() {
                            self.deliver(from.0, core)?;
                        }
                        Input::Drained(from)
                    }
                    Deferred::Stall { .. } | Deferred::Scribble { .. } => continue,
                    // No scenario asks about a core's processes.
                    Deferred::Process { request, .. } => {
                        return violation!("core {core} was asked {request:?}, which no call asks");
                    }
                    Deferred::ProcessNote(note) => {
                        return violation!("core {core} was told {note:?}, which no call tells");
                    }
                };
                if self.hosts[usize::from(core)].stopped {
                    return Ok(());
                }
                self.now += 1;
                self.hosts[usize::from(core)]
                    .monitor
                    .step(self.now, input, &mut out);
            }
        }
    }

    /// What `core`'s monitor dropped since its last step: late replies,
    /// and messages of other views once a core has stopped, each said in a
    /// notice.
    fn check_drops(&mut self, core: u16, notices: &[String]) -> Result<(), Violation> {
        let before = self.strays[usize::from(core)];
        let now = self.hosts[usize::from(core)].monitor.strays();
        self.strays[usize::from(core)] = now;
        if (now.unknown, now.mismatched, now.malformed, now.overflow)
            != (
                before.unknown,
                before.mismatched,
                before.malformed,
                before.overflow,
            )
        {
            return violation!("core {core} dropped what it should not have: {now:?}: {notices:?}");
        }
        let of_views = (now.old_epoch - before.old_epoch) + (now.non_member - before.non_member);
        self.view_drops |= of_views + (now.unsent - before.unsent) > 0;
        for notice in notices {
            if notice.contains(": sent in an older view") || notice.contains(": not a member") {
                let sender = notice
                    .split_once(" from core ")
                    .and_then(|(_, rest)| rest.split_once(':'))
                    .and_then(|(core, _)| core.parse().ok());
                match sender {
                    Some(sender) => self.dropped_from.insert(sender),
                    None => return violation!("core {core}: a drop names no sender: {notice}"),
                };
            }
        }
        let said = notices
            .iter()
            .filter(|notice| notice.starts_with("dropped"))
            .count() as u64;
        if said != now.late - before.late + of_views {
            return violation!(
                "core {core} dropped {} late replies and {of_views} messages of other views, and said so {said} times: {notices:?}",
                now.late - before.late
            );
        }
        Ok(())
    }

    fn apply(&mut self, core: u16, effect: Effect) -> Result<(), Violation> {
        match effect {
            Effect::Mapping(effect) => self.hosts[usize::from(core)].memory.apply(core, effect),
            Effect::DumpTrace => Ok(()),
            // The schedule keeps every running core's heartbeats timely
            // (`MAX_DRIFT`), so no running core may be taken for failed.
            Effect::Excluded { epoch } => {
                violation!("core {core} was left out of view {epoch} while it ran")
            }
            // The world resets links itself (`restart`); no shell asks.
            Effect::ResetChannels { core: peer } => {
                violation!("core {core} reset its channels to core {} unasked", peer.0)
            }
            // No scenario runs processes.
            Effect::ProcessMapping { pid, .. } => {
                violation!("core {core} changed process {pid}'s space, which no call opens")
            }
        }
    }

    fn complete(
        &mut self,
        core: u16,
        ticket: Ticket,
        result: Result<Wire, CallError>,
    ) -> Result<(), Violation> {
        let Some((call, ended)) = self.calls.get_mut(&(core, ticket)) else {
            if let Some((awaited, outcome @ None)) = &mut self.setup
                && core == 0
                && *awaited == ticket
            {
                *outcome = Some(result);
                return Ok(());
            }
            return violation!("core {core} completed {ticket:?}, which it never made");
        };
        if *ended {
            return violation!("{call:?} ended twice");
        }
        *ended = true;
        let request = call.request.clone();
        match result {
            Ok(reply) => {
                let confirmed = matches!(request, Request::Shootdown { .. })
                    && reply
                        .clone()
                        .take::<BenchShot>()
                        .is_some_and(|shot| shot.status == BENCH_DONE);
                self.shootdowns_done += u64::from(confirmed);
                request
                    .answered_by(reply)
                    .map_err(|error| Violation(format!("core {core}: {error}")))
            }
            Err(CallError::NoAnswer { core: callee, .. }) => {
                self.unanswered[usize::from(core)].push(callee.0);
                Ok(())
            }
            Err(CallError::NotRunning { core: callee } | CallError::Down { core: callee }) => {
                self.failed_for.push(callee.0);
                Ok(())
            }
        }
    }

    /// Every traced receive has its traced send, where the sender traced
    /// from an earlier message on that link and still traces at the end
    /// (a sender that turned tracing off since may have lost its sends'
    /// events to a later `trace on`, which empties its ring).
    fn check_trace(&self) -> Result<(), Violation> {
        let sends: BTreeSet<(u16, u16, u32)> = self
            .hosts
            .iter()
            .enumerate()
            .flat_map(|(core, host)| {
                host.trace
                    .iter()
                    .filter(|event| event.kind == TraceKind::Send)
                    .map(move |event| (core as u16, event.peer, event.seq))
            })
            .collect();
        for (core, host) in self.hosts.iter().enumerate() {
            for receive in host
                .trace
                .iter()
                .filter(|event| event.kind == TraceKind::Receive)
            {
                let sender = &self.hosts[usize::from(receive.peer)];
                let traced_from = sender.monitor.trace_start()[core];
                let key = (receive.peer, core as u16, receive.seq);
                if sender.monitor.tracing() && receive.seq >= traced_from && !sends.contains(&key) {
                    return violation!(
                        "core {core} traced receiving {} (seq {}) from core {}, which traced no such send",
                        receive.name,
                        receive.seq,
                        receive.peer
                    );
                }
            }
        }
        Ok(())
    }
}

/// Counts of what happened in runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub calls: u64,
    pub proposals: u64,
    /// Calls that ended without their reply (as many replies were dropped
    /// as late, or, with cores stopped, at least those of running cores:
    /// the end checks it).
    pub unanswered: u64,
    /// Calls to `bench shootdown` that every holder confirmed.
    pub shootdowns: u64,
    /// Pages left mapped, summed over the running cores.
    pub mapped: usize,
    /// Cores that crashed or hung, and that the others left out of their
    /// view (all of them: the end checks it).
    pub stopped: u64,
    /// Calls that failed because their callee had stopped.
    pub failed: u64,
    /// Stopped cores that came back as new kernels and caught up.
    pub restarted: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.calls += other.calls;
        self.proposals += other.proposals;
        self.unanswered += other.unanswered;
        self.shootdowns += other.shootdowns;
        self.mapped += other.mapped;
        self.stopped += other.stopped;
        self.failed += other.failed;
        self.restarted += other.restarted;
    }
}

/// Runs `seed`'s scenario under `seed`'s schedule to the end. `trace` sees
/// each action with the world it is about to change.
pub fn run(seed: u64, trace: impl FnMut(usize, &World, Action)) -> Result<Run<Tally>, Failure> {
    seeded::run(seed, World::new(&scenario(seed)), MAX_STEPS, pick, trace)
}

impl World {
    /// Whether time must pass: a running monitor waits for a timeout, or a
    /// running core's view still holds a stopped core (its detector has
    /// to find it).
    fn time_passes(&self) -> bool {
        self.running().any(|core| {
            let monitor = &self.hosts[usize::from(core)].monitor;
            monitor.has_timeouts()
                || monitor
                    .view()
                    .members
                    .iter()
                    .any(|member| self.hosts[usize::from(member.0)].stopped)
        })
    }
}

impl Simulation for World {
    type Action = Action;
    type Tally = Tally;
    /// The actions possible now; none means the run is over.
    fn actions(&self) -> Vec<Action> {
        let n = self.n();
        let mut actions = Vec::new();
        for core in self.running() {
            if !self.hosts[usize::from(core)].script.is_empty() {
                actions.push(Action::Call(core));
            }
        }
        for (link, slots) in self.links.iter().enumerate() {
            let to = (link % n) as u16;
            if !slots.is_empty() && !self.hosts[usize::from(to)].stopped {
                actions.push(Action::Deliver {
                    from: (link / n) as u16,
                    to,
                });
            }
        }
        if self.time_passes() {
            let slowest = self
                .running()
                .map(|core| self.hosts[usize::from(core)].clock)
                .min()
                .unwrap_or(0);
            for core in self.running() {
                if self.hosts[usize::from(core)].clock <= slowest + MAX_DRIFT {
                    actions.push(Action::Tick(core));
                }
            }
        }
        if let Some(&core) = self.stops.front()
            && self.running().count() > 1
        {
            actions.push(Action::Stop(core));
        }
        actions.extend(self.restart_ready());
        actions
    }

    /// Takes `action` (one of `actions()`) and checks the invariants that
    /// hold after every step.
    fn act(&mut self, action: Action) -> Result<(), Violation> {
        match action {
            Action::Call(core) => {
                let call = self.hosts[usize::from(core)]
                    .script
                    .pop_front()
                    .expect("a call from an empty script");
                let mut out = Output::default();
                self.now += 1;
                let ticket = self.hosts[usize::from(core)].monitor.call(
                    self.now,
                    CoreId(call.to),
                    call.request.wire(),
                    call.timeout,
                    &mut out,
                );
                self.calls.insert((core, ticket), (call, false));
                self.absorb(core, out)
            }
            Action::Deliver { from, to } => self.deliver(from, to),
            Action::Tick(core) => {
                self.hosts[usize::from(core)].clock += 1;
                self.step(core, Input::Tick)
            }
            Action::Stop(core) => {
                self.stops.pop_front();
                let host = &mut self.hosts[usize::from(core)];
                host.stopped = true;
                host.ever_stopped = true;
                host.script.clear();
                Ok(())
            }
            Action::Restart { core, sponsor } => self.restart(core, sponsor),
        }
    }

    /// Checks a world with no action left.
    fn check_quiescent(&self) -> Result<(), Violation> {
        if let Some(((core, _), (call, _))) = self
            .calls
            .iter()
            .find(|((shell, _), (_, ended))| !ended && !self.hosts[usize::from(*shell)].stopped)
        {
            return violation!("core {core}'s call {call:?} never ended");
        }
        if let Some(callee) = self
            .failed_for
            .iter()
            .find(|&&callee| !self.ever_stopped(callee))
        {
            return violation!("a call failed for core {callee} being down, which never stopped");
        }
        if self.view_drops && !self.any_stopped() {
            return violation!("messages were dropped for their view, and no core stopped");
        }
        if let Some(sender) = self
            .dropped_from
            .iter()
            .find(|&&sender| !self.ever_stopped(sender))
        {
            return violation!(
                "a message of core {sender}, which kept running, was dropped for its view"
            );
        }
        let running: Members = self.running().map(CoreId).collect();
        let mut hashes = Vec::new();
        for core in self.running() {
            let monitor = &self.hosts[usize::from(core)].monitor;
            if monitor.view().members != running {
                return violation!(
                    "core {core}'s view {:?} is not the running cores {running:?}",
                    monitor.view()
                );
            }
            if monitor.catching_up() {
                return violation!("core {core} never caught up");
            }
            // No action is left, so no tick is wanted: a call in flight
            // here means `has_timeouts` forgot the calls.
            if monitor.calls_in_flight() != 0 {
                return violation!(
                    "core {core} still waits on {} calls",
                    monitor.calls_in_flight()
                );
            }
            // A call that timed out had its reply dropped as late, unless
            // its callee stopped before it answered.
            let strays = monitor.strays();
            let unanswered = &self.unanswered[usize::from(core)];
            let to_running = unanswered
                .iter()
                .filter(|&&callee| !self.ever_stopped(callee))
                .count() as u64;
            if strays.late < to_running || strays.late > unanswered.len() as u64 {
                return violation!(
                    "core {core} dropped {} late replies for its {} calls that timed out ({to_running} to running cores)",
                    strays.late,
                    unanswered.len()
                );
            }
            let replica = monitor.mappings().replica();
            let entries = replica.entries();
            if entries.iter().any(|entry| entry.pending.is_some()) {
                return violation!("core {core} is left with a lock: {entries:?}");
            }
            self.hosts[usize::from(core)]
                .memory
                .agrees_with(core, &entries)?;
            hashes.push((core, replica.hash()));
        }
        replicas_agree(hashes)?;
        self.check_trace()
    }

    /// What happened in the run so far.
    fn tally(&self) -> Tally {
        let mut tally = Tally {
            shootdowns: self.shootdowns_done,
            failed: self.failed_for.len() as u64,
            restarted: self.restarted,
            ..Tally::default()
        };
        for (call, _) in self.calls.values() {
            tally.calls += 1;
            if let Request::Propose { .. } = call.request {
                tally.proposals += 1;
            }
        }
        for (core, host) in self.hosts.iter().enumerate() {
            tally.unanswered += self.unanswered[core].len() as u64;
            tally.stopped += u64::from(host.ever_stopped);
            if !host.stopped {
                tally.mapped += host.memory.mapped(TEST_SPACE);
            }
        }
        tally
    }

    /// `action` in words.
    fn describe(&self, action: Action) -> String {
        match action {
            Action::Call(core) => match self.hosts[usize::from(core)].script.front() {
                Some(call) => format!("core {core} calls core {}: {:?}", call.to, call.request),
                None => format!("core {core} calls: nothing left"),
            },
            Action::Deliver { from, to } => format!("deliver {from} -> {to}"),
            Action::Tick(core) => format!("tick on core {core}"),
            Action::Stop(core) => format!("core {core} stops (crash or hang)"),
            Action::Restart { core, sponsor } => {
                format!("a new kernel on core {core} asks core {sponsor} to join")
            }
        }
    }
}

/// Picks a delivery most of the time, and a tick or a call less often, so
/// that timeouts fire now and then rather than at every chance.
fn pick(rng: &mut Rng, actions: &[Action]) -> Action {
    let deliveries: Vec<Action> = actions
        .iter()
        .copied()
        .filter(|action| matches!(action, Action::Deliver { .. }))
        .collect();
    let choices = if !deliveries.is_empty() && rng.chance(4, 5) {
        &deliveries
    } else {
        actions
    };
    choices[rng.below(choices.len() as u64) as usize]
}
