//! The `skb` service: this core's replica of the system knowledge base, how
//! the replicas are filled, and the multicast plan each core derives from
//! its own.
//!
//! Every core holds a whole replica (`docs/skb.md` says why). The facts
//! from the firmware are the same on every core, and each core's host hands
//! them to its monitor at start, with the facts only that core can gather
//! about itself (CPUID). The round trips between cores are measured here, by
//! each core in turn, and every core sends its own facts to every other as
//! program text (`SkbFacts`). The boot core drives the filling one core at
//! a time (`SkbGather`, so that no two measurements disturb each other),
//! has each replica report its fact count and hash once its facts are in
//! (`SkbReady`), and only when every replica is equal has each core install
//! the multicast plan its own replica gives (`SkbInstall`): aggregators
//! route by their own plan, so plans that differ could leave cores out of
//! a round.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::hash::Hasher;

use atoll_iface::Bytes;
use atoll_proto::TreePlan;
use atoll_replica::Fnv1a;
use atoll_skb::topology;
use atoll_skb::{KnowledgeBase, Limits, Value};

use atoll_proto::CoreId;

pub use self::messages::*;
use crate::base::{Cx, Requester, Service};
use crate::calls::{OpEvent, OpRef};
use crate::control::{RoundTrips, summary};
use crate::output::Output;
use crate::wire::ServiceId;

pub(crate) mod messages;

/// A fact: its predicate and its values.
pub type Fact = (&'static str, Vec<Value>);

/// The facts a host hands its monitor at start.
pub struct Facts {
    /// What the firmware says: the same on every core.
    pub firmware: Vec<Fact>,
    /// What only this core can say of itself (its CPUID).
    pub own: Vec<Fact>,
}

/// The most running cores whose whole round-trip matrix is measured: the
/// matrix and what the rules derive from it grow with the square of the
/// cores, on every core's heap. Past this, no round trips are measured, and
/// the topology rules lead each NUMA node by its lowest core and order the
/// nodes by the SLIT's distance instead.
pub const MAX_MEASURED_CORES: usize = 32;
/// How long a core waits for the facts the boot core says are on their
/// way, in ticks.
const LOAD_TIMEOUT: u64 = 1000;
/// What a replica may hold and a query may cost: a few hundred facts on the
/// largest machine the tests boot, each costing heap on every core, and
/// answers a shell user can read. Past these, a query gets an error.
const LIMITS: Limits = Limits {
    facts: 20_000,
    answers: 1024,
    ..Limits::DEFAULT
};

fn add_all(kb: &mut KnowledgeBase, facts: Vec<Fact>) -> Result<(), atoll_skb::Error> {
    facts
        .into_iter()
        .try_for_each(|(predicate, values)| kb.add_fact(predicate, values))
}

/// Facts as program text, cut into batches of whole facts. The facts a core
/// gathers are integers and short names; one too long for a message is
/// reported and left out rather than cut.
fn batches<P: AsRef<str>>(
    facts: &[(P, Vec<Value>)],
    notices: &mut Vec<String>,
) -> Vec<Bytes<BATCH_BYTES>> {
    let mut batches: Vec<String> = Vec::new();
    for (predicate, values) in facts {
        let predicate = predicate.as_ref();
        let text = topology::format_fact(predicate, values) + ".";
        match batches.last_mut() {
            Some(batch) if batch.len() + 1 + text.len() <= BATCH_BYTES => {
                batch.push('\n');
                batch.push_str(&text);
            }
            _ if text.len() > BATCH_BYTES => notices.push(format!(
                "skb: fact of {} bytes too long to send: {predicate}(...)",
                text.len()
            )),
            _ => batches.push(text),
        }
    }
    batches
        .iter()
        .filter_map(|batch| Bytes::new(batch.as_bytes()))
        .collect()
}

/// A gathering in progress: round trips to each peer in turn.
struct Gathering {
    requester: Requester,
    samples: u32,
    /// Peers still to measure, last first.
    to_measure: Vec<CoreId>,
    current: Option<RoundTrips>,
    /// Medians so far, by peer.
    round_trips: Vec<(CoreId, u64)>,
}

/// A `SkbReady` waiting for its batches.
struct Waiting {
    requester: Requester,
    batches: u32,
    deadline: u64,
}

pub(crate) struct Skb {
    kb: KnowledgeBase,
    /// This core's own facts, sent to the others when it gathers.
    own: Vec<Fact>,
    /// `SkbFacts` batches loaded from other cores.
    batches: u32,
    gatherings: BTreeMap<u32, Gathering>,
    waiting: Option<Waiting>,
    /// Whether the mappings route by trees from this replica
    /// (`SkbInstall`).
    planned: bool,
}

impl Skb {
    /// The rules and the firmware's facts; the rest comes by message.
    pub fn new(facts: Facts, out: &mut Output) -> Self {
        let mut kb = KnowledgeBase::with_limits(LIMITS);
        let loaded = kb
            .load(topology::RULES)
            .and_then(|()| add_all(&mut kb, facts.firmware));
        if let Err(error) = loaded {
            out.notices.push(format!("skb: {error}"));
        }
        Self {
            kb,
            own: facts.own,
            batches: 0,
            gatherings: BTreeMap::new(),
            waiting: None,
            planned: false,
        }
    }

    /// Whether the mappings route by trees from this replica.
    pub(crate) fn planned(&self) -> bool {
        self.planned
    }

    /// Every fact this replica stores, as program text in batches: what a
    /// core that catches up is sent.
    pub(crate) fn all_facts(&mut self, cx: &mut Cx<'_>) -> Vec<Bytes<BATCH_BYTES>> {
        let facts = self.kb.facts(None).unwrap_or_default();
        let mut notices = Vec::new();
        let batches = batches(&facts, &mut notices);
        for notice in notices {
            cx.notice(notice);
        }
        batches
    }

    /// Loads facts `from` sent as program text; a batch that does not load
    /// is reported.
    pub(crate) fn load(&mut self, cx: &mut Cx<'_>, from: CoreId, text: &Bytes<BATCH_BYTES>) {
        let loaded = match core::str::from_utf8(text.as_slice()) {
            Ok(text) => self.kb.load(text).map_err(|error| format!("{error}")),
            Err(_) => Err(String::from("not UTF-8")),
        };
        if let Err(error) = loaded {
            cx.notice(format!("skb: facts from core {} rejected: {error}", from.0));
        }
    }

    /// A member whose mappings route by its replica's trees if `planned`
    /// has sent this core, which joins, its facts: so do this core's, from
    /// its own replica, which now holds the same facts.
    pub(crate) fn plan_as(&mut self, cx: &mut Cx<'_>, planned: bool) {
        self.planned = planned && self.install_plan(cx);
        if !self.planned {
            cx.mappings().0.set_plan(TreePlan::new());
        }
    }

    pub fn knowledge(&mut self) -> &mut KnowledgeBase {
        &mut self.kb
    }

    /// Whether a `SkbReady` waits for facts (and so for ticks).
    pub fn waits(&self) -> bool {
        self.waiting.is_some()
    }

    /// How many facts are stored (not derived), and a hash of them.
    fn summary(&mut self) -> (u32, u64) {
        let facts = self.kb.facts(None).unwrap_or_default();
        let mut hash = Fnv1a::new();
        for (predicate, values) in &facts {
            hash.write(topology::format_fact(predicate, values).as_bytes());
            hash.write(b"\n");
        }
        (facts.len() as u32, hash.finish())
    }

    /// Answers the waiting `SkbReady` if its batches are in, or if `force`.
    fn answer_ready(&mut self, cx: &mut Cx<'_>, force: bool) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        if self.batches < waiting.batches && !force {
            return;
        }
        if self.batches < waiting.batches {
            cx.notice(format!(
                "skb: {} of {} batches of facts came in time",
                self.batches, waiting.batches
            ));
        }
        let requester = waiting.requester;
        self.waiting = None;
        let (facts, hash) = self.summary();
        cx.reply(requester, SkbLoaded { facts, hash });
    }

    /// Measures the next peer of gathering `op`, or, with all measured,
    /// shares this core's facts and answers.
    fn gather_next(&mut self, cx: &mut Cx<'_>, op: OpRef) {
        let Some(gathering) = self.gatherings.get_mut(&op.key) else {
            return;
        };
        if let Some(peer) = gathering.to_measure.pop() {
            gathering.current = Some(RoundTrips::start(cx, op, peer, gathering.samples));
            return;
        }
        let gathering = self.gatherings.remove(&op.key).expect("looked up above");
        let me = cx.me();
        let mut facts = self.own.clone();
        for &(peer, cycles) in &gathering.round_trips {
            facts.push((
                "urpc_rtt",
                alloc::vec![Value::int(me.0), Value::int(peer.0), Value::int(cycles)],
            ));
        }
        let mut notices = Vec::new();
        let batches = batches(&facts, &mut notices);
        for notice in notices {
            cx.notice(notice);
        }
        if let Err(error) = add_all(&mut self.kb, facts) {
            cx.notice(format!("skb: {error}"));
        }
        for peer in cx.members().into_iter().filter(|&peer| peer != me) {
            for &text in &batches {
                cx.send(peer, SkbFacts { text });
            }
        }
        cx.reply(
            gathering.requester,
            SkbGathered {
                batches: batches.len() as u32,
            },
        );
    }

    /// Makes the trees from this replica the ones the mappings route
    /// `Planned` rounds by; whether it could derive every core's tree (if
    /// not, it installs none).
    ///
    /// The plan has a tree for every core that may hold a space, and places
    /// every core the knowledge base knows, members or not, with the
    /// fan-out the knowledge base picks (`topology::fan_out`), so that a
    /// large group is a tree of subgroups; it does not change with the
    /// view. A round's tree follows the
    /// view all the same: it holds only the holders of the round's space,
    /// and an aggregator the view has left out is bypassed (its members are
    /// reached directly: `atoll_proto::multicast`). What must not change
    /// while rounds are in flight is the plan: an aggregator routes by its
    /// own, and a plan narrowed to each view would hand a group's lead back
    /// to a core that comes back, so an aggregator that has installed the
    /// new view would not forward a round its initiator started under the
    /// old one, and that round's commit would miss the group.
    fn install_plan(&mut self, cx: &mut Cx<'_>) -> bool {
        match tree_plan(&mut self.kb, cx.base.mappings.members().iter()) {
            Ok(plan) => {
                cx.mappings().0.set_plan(plan);
                true
            }
            Err(error) => {
                cx.notice(format!("skb: {error}"));
                false
            }
        }
    }
}

/// The multicast plan `kb` gives for rounds started by `roots`: each
/// root's groups (`topology::multicast_plan`, every root in one pass), and
/// the fan-out that shapes the large ones (`topology::fan_out`).
pub fn tree_plan(
    kb: &mut KnowledgeBase,
    roots: impl Iterator<Item = CoreId>,
) -> Result<TreePlan, PlanError> {
    let mut trees = topology::multicast_plan(kb).map_err(PlanError::Trees)?;
    let mut plan = TreePlan::new();
    for root in roots {
        let groups = trees.remove(&i64::from(root.0)).unwrap_or_default();
        plan.set_root(
            root,
            groups
                .iter()
                .map(|group| group.cores().map(|core| CoreId(core as u16)).collect())
                .collect(),
        );
    }
    plan.set_fan_out(Some(topology::fan_out(kb).map_err(PlanError::FanOut)?));
    Ok(plan)
}

/// Why [`tree_plan`] gave no plan.
#[derive(Debug)]
pub enum PlanError {
    Trees(atoll_skb::Error),
    FanOut(atoll_skb::Error),
}

impl core::fmt::Display for PlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlanError::Trees(error) => write!(f, "no multicast trees: {error}"),
            PlanError::FanOut(error) => write!(f, "no fan-out for the multicast trees: {error}"),
        }
    }
}

impl Service for Skb {
    type Message = SkbMessage;

    fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, call: u32, message: SkbMessage) {
        let requester = cx.requester(from, call);
        match message {
            SkbMessage::SkbGather(SkbGather { samples }) => {
                let me = cx.me();
                let peers: Vec<CoreId> = cx
                    .members()
                    .into_iter()
                    .filter(|&peer| peer != me)
                    .collect();
                let mut to_measure = if peers.len() < MAX_MEASURED_CORES {
                    peers
                } else {
                    Vec::new()
                };
                to_measure.reverse();
                let op = cx.new_op(ServiceId::Skb);
                self.gatherings.insert(
                    op.key,
                    Gathering {
                        requester,
                        samples,
                        to_measure,
                        current: None,
                        round_trips: Vec::new(),
                    },
                );
                self.gather_next(cx, op);
            }
            SkbMessage::SkbFacts(SkbFacts { text }) => {
                self.batches += 1;
                self.load(cx, from, &text);
                self.answer_ready(cx, false);
            }
            SkbMessage::SkbReady(SkbReady { batches }) => {
                self.waiting = Some(Waiting {
                    requester,
                    batches,
                    deadline: cx.tick() + LOAD_TIMEOUT,
                });
                self.answer_ready(cx, false);
            }
            SkbMessage::SkbInstall(SkbInstall { hash, install }) => {
                let installed = if install {
                    self.summary().1 == hash && self.install_plan(cx)
                } else {
                    cx.mappings().0.set_plan(TreePlan::new());
                    false
                };
                self.planned = installed;
                cx.reply(requester, SkbInstalled { installed });
            }
            SkbMessage::SkbGathered(_) | SkbMessage::SkbLoaded(_) | SkbMessage::SkbInstalled(_) => {
            }
        }
    }

    fn event(&mut self, cx: &mut Cx<'_>, op: OpRef, event: OpEvent) {
        let OpEvent::Reply(reply) = event else {
            return;
        };
        let Some(gathering) = self.gatherings.get_mut(&op.key) else {
            return;
        };
        let Some(trips) = gathering.current.as_mut() else {
            return;
        };
        let peer = trips.peer();
        match trips.reply(cx, op, reply) {
            Ok(None) => return,
            Ok(Some(samples)) => gathering.round_trips.push((peer, summary(samples).0)),
            Err(error) => cx.notice(format!("skb: no round trips to core {}: {error}", peer.0)),
        }
        gathering.current = None;
        self.gather_next(cx, op);
    }

    fn tick(&mut self, cx: &mut Cx<'_>) {
        if self
            .waiting
            .as_ref()
            .is_some_and(|waiting| cx.tick() >= waiting.deadline)
        {
            self.answer_ready(cx, true);
        }
    }
}
