//! This core's replica of the system knowledge base (SKB), how the replicas
//! are filled at boot, and what the kernel and the shell ask them.
//!
//! Every node holds a whole replica; `docs/skb.md` says why. The firmware's
//! facts (MADT, SRAT, SLIT, the memory map, where each core's memory lies)
//! each node reads itself from the boot facts that every core shares
//! read-only. The facts only a core can gather, its CPUID and its measured
//! round trips to the others, it sends every other node as program text
//! over URPC. The boot core runs the gathering one core at a time, so that
//! no two measurements disturb each other, then has each node confirm its
//! replica (fact count and hash). Only when every replica is equal does it
//! have each node install the multicast plan it derives from its own
//! replica: a cached answer to the routing query, which every node derives
//! alike because their facts are equal. An aggregator routes by its own
//! plan, so plans that differ could leave cores out of a round; until the
//! plans are installed, and for good if the replicas differ, planned rounds
//! go unicast.

use crate::arch::percore::CoreLocal;
use crate::arch::{cpu, cpuid};
use crate::messages::{
    NodeMessage, Refusal, SkbFacts, SkbGather, SkbGathered, SkbInstall, SkbInstalled, SkbLoaded,
    SkbReady,
};
use crate::node::{self, Stats, send};
use crate::shared::{BOARD, CoreState, boot_facts, running_cores};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use atoll_firmware::MemoryKind;
use atoll_iface::Bytes;
use atoll_node::{Fnv1a, NodeId};
use atoll_proto::TreePlan;
use atoll_skb::topology::{self, TreeGroup};
use atoll_skb::{KnowledgeBase, Limits, Value};
use core::hash::Hasher;

/// Round trips per ordered pair of cores; the median becomes `urpc_rtt`.
pub const RTT_SAMPLES: u32 = 32;
/// The most running cores whose whole round-trip matrix is measured: the
/// matrix and what the rules derive from it grow with the square of the
/// cores, on every core's heap. Past this, no round trips are measured, and
/// the topology rules lead each NUMA node by its lowest core and order the
/// nodes by the SLIT's distance instead.
const MAX_MEASURED_CORES: usize = 32;
/// How long the boot core waits for one core to measure and send its facts.
const GATHER_TIMEOUT_MS: u64 = 30_000;
/// How long a node waits for the facts the boot core says are on their way.
const LOAD_TIMEOUT_MS: u64 = 10_000;
/// What a replica may hold and a query may cost: a few hundred facts on the
/// largest machine the tests boot, each costing heap on every core, and
/// answers a shell user can read. Past these, a query gets an error.
const LIMITS: Limits = Limits {
    facts: 20_000,
    answers: 1024,
    ..Limits::DEFAULT
};
/// Bytes of program text per `SkbFacts` message (it takes several slots).
const BATCH_BYTES: usize = 480;

pub struct Replica {
    kb: KnowledgeBase,
    /// `SkbFacts` batches loaded from other cores.
    batches: u32,
}

impl Replica {
    /// The rules and the firmware's facts; the rest comes by message.
    pub fn new(core: usize) -> Self {
        let mut kb = KnowledgeBase::with_limits(LIMITS);
        let loaded = kb
            .load(topology::RULES)
            .and_then(|()| add_all(&mut kb, firmware_facts()));
        if let Err(error) = loaded {
            println!("atoll: core {core}: skb: {error}");
        }
        Self { kb, batches: 0 }
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
}

type Fact = (&'static str, Vec<Value>);

fn int(value: impl TryInto<i64>) -> Value {
    // Addresses and ids all fit an i64; saturating keeps a wild one visible.
    Value::Int(value.try_into().unwrap_or(i64::MAX))
}

fn add_all(kb: &mut KnowledgeBase, facts: Vec<Fact>) -> Result<(), atoll_skb::Error> {
    facts
        .into_iter()
        .try_for_each(|(predicate, values)| kb.add_fact(predicate, values))
}

fn memory_kind(kind: MemoryKind) -> &'static str {
    match kind {
        MemoryKind::Usable => "usable",
        MemoryKind::Reserved => "reserved",
        MemoryKind::AcpiReclaimable => "acpi_reclaimable",
        MemoryKind::AcpiNvs => "acpi_nvs",
        MemoryKind::Defective => "bad",
        MemoryKind::Other(_) => "other",
    }
}

/// What the boot facts say, alike on every core.
fn firmware_facts() -> Vec<Fact> {
    let facts = boot_facts();
    let mut out = Vec::new();
    for (id, core) in facts.cores.iter().enumerate() {
        out.push(("core", vec![int(id), int(core.apic_id)]));
        out.push(("core_node", vec![int(id), int(core.node)]));
        out.push(("span", vec![int(id), int(core.span.0), int(core.span.1)]));
        let (start, end) = core.channels;
        out.push(("channels", vec![int(id), int(start), int(end)]));
    }
    for region in facts.info.memory() {
        let end = region.base.saturating_add(region.len);
        let kind = Value::from(memory_kind(region.kind));
        out.push(("memory", vec![int(region.base), int(end), kind]));
    }
    let mut nodes: Vec<u32> = facts.cores.iter().map(|core| core.node).collect();
    for &(start, end, node) in facts.numa.memory() {
        out.push(("mem_node", vec![int(start), int(end), int(node)]));
        nodes.push(node);
    }
    nodes.sort_unstable();
    nodes.dedup();
    for &from in &nodes {
        for &to in &nodes {
            let distance = facts.numa.distance_or_default(from, to);
            out.push(("distance", vec![int(from), int(to), int(distance)]));
        }
    }
    out
}

/// What this core's CPUID says about it, and its measured round trips.
fn own_facts(local: &CoreLocal, round_trips: &[(usize, u64)]) -> Vec<Fact> {
    let core = int(local.id);
    let identity = cpuid::identity();
    let vendor = String::from_utf8_lossy(&identity.vendor);
    let mut out = vec![(
        "cpu",
        vec![
            core.clone(),
            Value::from(vendor.trim_end_matches('\0')),
            int(identity.family),
            int(identity.model),
            int(identity.stepping),
        ],
    )];
    let topology = cpuid::topology();
    let apic = local.apic_id;
    let low_bits = |bits: u32| apic & ((1u32 << bits) - 1);
    out.push((
        "cpu_topology",
        vec![
            core.clone(),
            int(apic >> topology.package_shift),
            int(low_bits(topology.package_shift) >> topology.thread_bits),
            int(low_bits(topology.thread_bits)),
        ],
    ));
    for cache in cpuid::caches(&topology) {
        out.push((
            "cache",
            vec![
                core.clone(),
                int(cache.level),
                Value::from(cache.kind.name()),
                int(cache.bytes),
                int(apic >> cache.sharing_shift),
            ],
        ));
    }
    for &(peer, cycles) in round_trips {
        out.push(("urpc_rtt", vec![core.clone(), int(peer), int(cycles)]));
    }
    out
}

/// Facts as program text, cut into batches of whole facts. The facts a core
/// gathers are integers and short names; one too long for a message is
/// reported and left out rather than cut.
fn batches(core: usize, facts: &[Fact]) -> Vec<Bytes<BATCH_BYTES>> {
    let mut batches: Vec<String> = Vec::new();
    for (predicate, values) in facts {
        let text = topology::format_fact(predicate, values) + ".";
        match batches.last_mut() {
            Some(batch) if batch.len() + 1 + text.len() <= BATCH_BYTES => {
                batch.push('\n');
                batch.push_str(&text);
            }
            _ if text.len() > BATCH_BYTES => println!(
                "atoll: core {core}: skb: fact of {} bytes too long to send: {predicate}(...)",
                text.len()
            ),
            _ => batches.push(text),
        }
    }
    batches
        .iter()
        .filter_map(|batch| Bytes::new(batch.as_bytes()))
        .collect()
}

/// This core's part of the gathering: measure the round trips to every other
/// running core, add its own facts, and send them to the others. Returns
/// the batches each of them was sent.
fn gather_here(local: &CoreLocal, samples: u32) -> u32 {
    let peers: Vec<usize> = running_cores().filter(|&core| core != local.id).collect();
    let measured = if peers.len() < MAX_MEASURED_CORES {
        &peers[..]
    } else {
        &[]
    };
    let mut round_trips = Vec::new();
    for &peer in measured {
        match node::urpc_round_trips(local, peer, samples) {
            Ok(cycles) => round_trips.push((peer, Stats::of(cycles).median)),
            Err(refusal) => println!(
                "atoll: core {}: skb: no round trips to core {peer}: {}",
                local.id,
                Refusal::text(refusal as u8)
            ),
        }
    }
    let facts = own_facts(local, &round_trips);
    let batches = batches(local.id, &facts);
    if let Err(error) = add_all(&mut local.node().borrow_mut().skb.kb, facts) {
        println!("atoll: core {}: skb: {error}", local.id);
    }
    for &peer in &peers {
        for &text in &batches {
            send(local, peer, SkbFacts { text });
        }
    }
    batches.len() as u32
}

pub fn answer_gather(local: &CoreLocal, request: &SkbGather) -> NodeMessage {
    SkbGathered {
        batches: gather_here(local, request.samples),
    }
    .into()
}

/// Loads a batch of facts another core sent.
pub fn receive_facts(local: &CoreLocal, from: usize, facts: &SkbFacts) {
    let mut node = local.node().borrow_mut();
    node.skb.batches += 1;
    let loaded = match core::str::from_utf8(facts.text.as_slice()) {
        Ok(text) => node.skb.kb.load(text).map_err(|error| format!("{error}")),
        Err(_) => Err(String::from("not UTF-8")),
    };
    if let Err(error) = loaded {
        println!(
            "atoll: core {}: skb: facts from core {from} rejected: {error}",
            local.id
        );
    }
}

/// Waits for the facts the boot core announced and reports the replica.
pub fn answer_ready(local: &CoreLocal, ready: &SkbReady) -> NodeMessage {
    let complete = node::wait_until(local, LOAD_TIMEOUT_MS, || {
        local.node().borrow().skb.batches >= ready.batches
    });
    if !complete {
        println!(
            "atoll: core {}: skb: {} of {} batches of facts came within {LOAD_TIMEOUT_MS} ms",
            local.id,
            local.node().borrow().skb.batches,
            ready.batches
        );
    }
    let (facts, hash) = local.node().borrow_mut().skb.summary();
    SkbLoaded { facts, hash }.into()
}

/// Installs this replica's multicast plan if the replica is the one every
/// core agreed on.
pub fn answer_install(local: &CoreLocal, install: &SkbInstall) -> NodeMessage {
    if !install.install {
        local.node().borrow_mut().vm.set_plan(TreePlan::new());
        return SkbInstalled { installed: false }.into();
    }
    let (_, hash) = local.node().borrow_mut().skb.summary();
    let installed = hash == install.hash && install_plan(local);
    SkbInstalled { installed }.into()
}

/// The multicast tree from `root` that this core's replica gives.
fn tree(local: &CoreLocal, root: usize) -> Result<Vec<TreeGroup>, atoll_skb::Error> {
    topology::multicast_groups(&mut local.node().borrow_mut().skb.kb, root as i64)
}

/// Makes the trees from this core's replica the ones its replicated-state
/// node routes `Planned` rounds by; whether it could derive every running
/// core's tree (if not, it installs none).
fn install_plan(local: &CoreLocal) -> bool {
    let mut plan = TreePlan::new();
    for root in running_cores() {
        match tree(local, root) {
            Ok(groups) => plan.set_root(
                NodeId(root as u16),
                groups
                    .iter()
                    .map(|group| {
                        core::iter::once(group.aggregator)
                            .chain(group.members.iter().map(|&(core, _)| core))
                            .map(|core| NodeId(core as u16))
                            .collect()
                    })
                    .collect(),
            ),
            Err(error) => {
                println!(
                    "atoll: core {}: skb: no multicast tree from core {root}: {error}",
                    local.id
                );
                return false;
            }
        }
    }
    local.node().borrow_mut().vm.set_plan(plan);
    true
}

/// Fills every running core's replica and has each install its multicast
/// plan; run by the boot core once the cores are up.
pub fn fill_replicas(local: &CoreLocal) {
    let start = cpu::rdtsc();
    let cores: Vec<usize> = running_cores().collect();
    let mut sent = vec![0u32; boot_facts().cores.len()];
    for &core in &cores {
        if core == local.id {
            sent[core] = gather_here(local, RTT_SAMPLES);
            continue;
        }
        send(
            local,
            core,
            SkbGather {
                samples: RTT_SAMPLES,
            },
        );
        match node::wait_for(local, core, GATHER_TIMEOUT_MS, |message| {
            matches!(message, NodeMessage::SkbGathered(_))
        }) {
            Some(NodeMessage::SkbGathered(gathered)) => sent[core] = gathered.batches,
            _ => println!("atoll: skb: core {core} did not send its facts"),
        }
    }
    let total = sent
        .iter()
        .fold(0u32, |sum, &batches| sum.saturating_add(batches));
    let others: Vec<usize> = cores
        .iter()
        .copied()
        .filter(|&core| core != local.id)
        .collect();
    for &core in &others {
        let batches = total.saturating_sub(sent[core]);
        send(local, core, SkbReady { batches });
    }
    let (facts, hash) = local.node().borrow_mut().skb.summary();
    let mut equal = 1;
    for &core in &others {
        match node::wait_for(local, core, LOAD_TIMEOUT_MS, |message| {
            matches!(message, NodeMessage::SkbLoaded(_))
        }) {
            Some(NodeMessage::SkbLoaded(loaded))
                if loaded.facts == facts && loaded.hash == hash =>
            {
                equal += 1
            }
            Some(NodeMessage::SkbLoaded(loaded)) => println!(
                "atoll: skb: core {core}'s replica differs: {} facts (hash {:#018x}), core {} has {facts} (hash {hash:#018x})",
                loaded.facts, loaded.hash, local.id
            ),
            _ => println!("atoll: skb: core {core} did not confirm its replica"),
        }
    }
    let outcome = if equal == cores.len() {
        install_everywhere(local, &others, hash)
    } else {
        "multicast trees not installed (replicas differ); planned rounds go unicast"
    };
    println!(
        "atoll: skb: {facts} facts, replicas equal on {equal} of {} cores (hash {hash:#018x}); {outcome}; {} ms",
        cores.len(),
        (cpu::rdtsc() - start) / boot_facts().tsc_per_ms.max(1)
    );
    report_placement(local);
}

/// Asks the knowledge base whether every core's frame pool and incoming
/// rings lie on the core's own NUMA node, and says which do not.
fn report_placement(local: &CoreLocal) {
    let known = local
        .node()
        .borrow_mut()
        .skb
        .kb
        .query("memory_affinity_known()")
        .is_ok_and(|answers| !answers.is_empty());
    if !known {
        println!("atoll: skb: placement: unknown (the SRAT gives no memory ranges)");
        return;
    }
    let mut misplaced = Vec::new();
    for (what, query) in [
        ("frame pool", "misplaced_span(C)"),
        ("rings", "misplaced_channels(C)"),
    ] {
        match local.node().borrow_mut().skb.kb.query(query) {
            Ok(answers) => misplaced.extend(
                answers
                    .iter()
                    .filter_map(|answer| answer.get("C"))
                    .map(|core| format!("core {core}'s {what}")),
            ),
            Err(error) => misplaced.push(format!("`{query}` failed: {error}")),
        }
    }
    if misplaced.is_empty() {
        println!(
            "atoll: skb: placement: every core's frame pool and rings are on its own NUMA node"
        );
    } else {
        println!(
            "atoll: skb: placement: not on the core's own NUMA node: {}",
            misplaced.join(", ")
        );
    }
}

/// Has every core install the plan from its replica, all of which hash to
/// `hash`, and waits until each has.
/// If any core cannot, all go back to none: a core without trees that others
/// route through would forward to nobody.
fn install_everywhere(local: &CoreLocal, others: &[usize], hash: u64) -> &'static str {
    let ask_all = |install: bool| {
        for &core in others {
            send(local, core, SkbInstall { hash, install });
        }
        others
            .iter()
            .filter(|&&core| {
                let answer = node::wait_for(local, core, LOAD_TIMEOUT_MS, |message| {
                    matches!(message, NodeMessage::SkbInstalled(_))
                });
                let installed = matches!(
                    answer,
                    Some(NodeMessage::SkbInstalled(SkbInstalled { installed: true }))
                );
                if install && !installed {
                    println!("atoll: skb: core {core} did not install its multicast trees");
                }
                installed
            })
            .count()
    };
    let mine = install_plan(local);
    if !mine {
        println!(
            "atoll: skb: core {} did not install its multicast trees",
            local.id
        );
    }
    if ask_all(true) == others.len() && mine {
        return "multicast trees from the knowledge base";
    }
    ask_all(false);
    local.node().borrow_mut().vm.set_plan(TreePlan::new());
    "multicast trees not installed (not every core could); planned rounds go unicast"
}

/// `skb facts [<predicate>]`.
pub fn show_facts(local: &CoreLocal, predicate: Option<&str>) -> Result<(), String> {
    let facts = local
        .node()
        .borrow_mut()
        .skb
        .kb
        .facts(predicate)
        .map_err(|error| format!("skb facts: {error}"))?;
    for (predicate, values) in &facts {
        println!("  {}.", topology::format_fact(predicate, values));
    }
    println!("skb: {} facts", facts.len());
    Ok(())
}

/// `skb query "<rule body>"`.
pub fn query(local: &CoreLocal, body: &str) -> Result<(), String> {
    let answers = local
        .node()
        .borrow_mut()
        .skb
        .kb
        .query(body)
        .map_err(|error| format!("skb query: {error}"))?;
    for answer in &answers {
        let bindings: Vec<String> = answer
            .iter()
            .map(|(variable, value)| format!("{variable} = {value}"))
            .collect();
        if bindings.is_empty() {
            println!("  true");
        } else {
            println!("  {}", bindings.join(", "));
        }
    }
    println!("skb: {} answers", answers.len());
    Ok(())
}

fn rtt_text(rtt: Option<i64>) -> String {
    rtt.map_or_else(|| String::from("unmeasured"), |cycles| format!("{cycles}"))
}

/// `skb tree <root>`: the groups in the order the root sends to them.
pub fn show_tree(local: &CoreLocal, root: usize) -> Result<(), String> {
    let cores = boot_facts().cores.len();
    if root >= cores {
        return Err(format!(
            "skb tree: no core {root}; cores are 0 to {}",
            cores - 1
        ));
    }
    let state = BOARD.core(root).state();
    if state != CoreState::Running {
        return Err(format!(
            "skb tree: core {root} is {}; only running cores start rounds",
            state.name()
        ));
    }
    let groups = tree(local, root).map_err(|error| format!("skb tree: {error}"))?;
    println!(
        "skb tree from core {root}: {} groups, farthest first (rtt in cycles)",
        groups.len()
    );
    for group in &groups {
        let members: Vec<String> = group
            .members
            .iter()
            .map(|&(core, rtt)| format!("{core} (rtt {})", rtt_text(rtt)))
            .collect();
        let lead = if group.aggregator == root as i64 {
            format!("aggregator {} (root)", group.aggregator)
        } else {
            format!(
                "aggregator {} (rtt {})",
                group.aggregator,
                rtt_text(group.rtt)
            )
        };
        println!(
            "  node {}: {lead}; members: {}",
            group.node,
            if members.is_empty() {
                String::from("none")
            } else {
                members.join(", ")
            }
        );
    }
    Ok(())
}
