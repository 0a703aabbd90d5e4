//! The knowledge base as the kernel fills it: the facts each core's monitor
//! starts with (the firmware's, and the core's own CPUID), and the boot
//! core's sequence that has every replica gather, load and compare its facts
//! and install its multicast plan (the `skb` service's messages, see
//! `atoll_monitor::skb`), then checks where each core's memory lies.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use atoll_arch::cpu;
use atoll_arch::cpuid;
use atoll_arch::percore::CoreLocal;
use atoll_monitor::skb::{
    Fact, Facts, SkbGather, SkbGathered, SkbInstall, SkbInstalled, SkbLoaded, SkbReady,
};
use atoll_skb::Value;

use crate::host::Core;
use crate::shared::{boot_facts, scaled};

/// Round trips per ordered pair of cores; the median becomes `urpc_rtt`.
const RTT_SAMPLES: u32 = 32;
/// How long the boot core waits for one core to measure and send its facts,
/// on up to 64 cores (see [`scaled`]).
const GATHER_TIMEOUT_MS: u64 = 30_000;
/// How long the boot core waits for a replica to load what was sent to it,
/// or to derive and install its trees, on up to 64 cores.
const LOAD_TIMEOUT_MS: u64 = 15_000;

/// The facts core `local`'s monitor starts with.
pub fn facts(local: &CoreLocal) -> Facts {
    Facts {
        firmware: firmware_facts(),
        own: own_facts(local),
    }
}

/// What the boot facts say, alike on every core.
fn firmware_facts() -> Vec<Fact> {
    let facts = boot_facts();
    let mut out = Vec::new();
    for (id, core) in facts.cores.iter().enumerate() {
        out.push(("core", vec![Value::int(id), Value::int(core.apic_id)]));
        out.push(("core_node", vec![Value::int(id), Value::int(core.node)]));
        out.push((
            "span",
            vec![
                Value::int(id),
                Value::int(core.span.0),
                Value::int(core.span.1),
            ],
        ));
        let (start, end) = core.channels;
        out.push((
            "channels",
            vec![Value::int(id), Value::int(start), Value::int(end)],
        ));
    }
    for region in facts.info.memory() {
        let end = region.base.saturating_add(region.len);
        let kind = Value::from(region.kind.name());
        out.push((
            "memory",
            vec![Value::int(region.base), Value::int(end), kind],
        ));
    }
    let mut nodes: Vec<u32> = facts.cores.iter().map(|core| core.node).collect();
    for &(start, end, node) in facts.numa.memory() {
        out.push((
            "mem_node",
            vec![Value::int(start), Value::int(end), Value::int(node)],
        ));
        nodes.push(node);
    }
    nodes.sort_unstable();
    nodes.dedup();
    for &from in &nodes {
        for &to in &nodes {
            let distance = facts.numa.distance_or_default(from, to);
            out.push((
                "distance",
                vec![Value::int(from), Value::int(to), Value::int(distance)],
            ));
        }
    }
    out
}

/// What this core's CPUID says about it.
fn own_facts(local: &CoreLocal) -> Vec<Fact> {
    let core = Value::int(local.id);
    let identity = cpuid::identity();
    let vendor = String::from_utf8_lossy(&identity.vendor);
    let mut out = vec![(
        "cpu",
        vec![
            core.clone(),
            Value::from(vendor.trim_end_matches('\0')),
            Value::int(identity.family),
            Value::int(identity.model),
            Value::int(identity.stepping),
        ],
    )];
    let topology = cpuid::topology();
    let apic = local.apic_id;
    let low_bits = |bits: u32| apic & ((1u32 << bits) - 1);
    out.push((
        "cpu_topology",
        vec![
            core.clone(),
            Value::int(apic >> topology.package_shift),
            Value::int(low_bits(topology.package_shift) >> topology.thread_bits),
            Value::int(low_bits(topology.thread_bits)),
        ],
    ));
    for cache in cpuid::caches(&topology) {
        out.push((
            "cache",
            vec![
                core.clone(),
                Value::int(cache.level),
                Value::from(cache.kind.name()),
                Value::int(cache.bytes),
                Value::int(apic >> cache.sharing_shift),
            ],
        ));
    }
    out
}

/// Fills every running core's replica and has each install its multicast
/// plan; run by the boot core once the cores are up. Each core is asked in
/// the same way, the boot core included (its calls go through its
/// loopback).
pub fn fill_replicas(core: &Core) {
    let start = cpu::rdtsc();
    let cores: Vec<usize> = core.members().into_iter().collect();
    let mut sent = vec![0u32; boot_facts().cores.len()];
    for &id in &cores {
        let answer = core.ask(
            id,
            SkbGather {
                samples: RTT_SAMPLES,
            },
            scaled(GATHER_TIMEOUT_MS),
        );
        match answer {
            Ok(SkbGathered { batches }) => sent[id] = batches,
            Err(error) => println!("atoll: skb: core {id} did not send its facts: {error}"),
        }
    }
    let total = sent
        .iter()
        .fold(0u32, |sum, &batches| sum.saturating_add(batches));
    let tickets: Vec<_> = cores
        .iter()
        .map(|&id| {
            let ready = SkbReady {
                batches: total.saturating_sub(sent[id]),
            };
            (id, core.call(id, ready, scaled(LOAD_TIMEOUT_MS)))
        })
        .collect();
    let mut replicas = Vec::new();
    for (id, ticket) in tickets {
        match core.wait_for(ticket) {
            Ok(SkbLoaded { facts, hash }) => replicas.push((id, (facts, hash))),
            Err(error) => println!("atoll: skb: core {id} did not confirm its replica: {error}"),
        }
    }
    let (facts, hash) = replicas
        .iter()
        .find(|(id, _)| *id == core.id)
        .map_or((0, 0), |&(_, replica)| replica);
    let mut equal = 0;
    for &(id, (their_facts, their_hash)) in &replicas {
        if (their_facts, their_hash) == (facts, hash) {
            equal += 1;
        } else {
            println!(
                "atoll: skb: core {id}'s replica differs: {their_facts} facts (hash {their_hash:#018x}), core {} has {facts} (hash {hash:#018x})",
                core.id
            );
        }
    }
    let withheld = atoll_shell::cmdline_option(boot_facts().info.cmdline(), NO_TREES_OPTION)
        .is_some_and(|value| value == "1");
    let outcome = if withheld {
        "multicast trees not installed (atoll.test.no_trees); planned rounds go unicast"
    } else if equal == cores.len() {
        install_everywhere(core, &cores, hash)
    } else {
        "multicast trees not installed (replicas differ); planned rounds go unicast"
    };
    println!(
        "atoll: skb: {facts} facts, replicas equal on {equal} of {} cores (hash {hash:#018x}); {outcome}; {} ms",
        cores.len(),
        (cpu::rdtsc() - start) / boot_facts().tsc_per_ms.max(1)
    );
    report_placement(core);
}

/// A test's kernel option: install no multicast trees at boot, as when a
/// core cannot (what `bench shootdown` must then refuse to measure).
const NO_TREES_OPTION: &str = "atoll.test.no_trees=";

/// Has every core install the plan from its replica, all of which hash to
/// `hash`, and waits until each has. If any core cannot, all go back to
/// none: a core without trees that others route through would forward to
/// nobody.
fn install_everywhere(core: &Core, cores: &[usize], hash: u64) -> &'static str {
    let ask_all = |install: bool| {
        let tickets: Vec<_> = cores
            .iter()
            .map(|&id| {
                (
                    id,
                    core.call(id, SkbInstall { hash, install }, scaled(LOAD_TIMEOUT_MS)),
                )
            })
            .collect();
        tickets
            .into_iter()
            .filter(|&(id, ticket)| {
                let installed = core
                    .wait_for(ticket)
                    .map(|SkbInstalled { installed }| installed);
                let installed = installed == Ok(true);
                if install && !installed {
                    println!("atoll: skb: core {id} did not install its multicast trees");
                }
                installed
            })
            .count()
    };
    if ask_all(true) == cores.len() {
        return "multicast trees from the knowledge base";
    }
    ask_all(false);
    "multicast trees not installed (not every core could); planned rounds go unicast"
}

/// Asks the knowledge base whether every core's frame pool and incoming
/// rings lie on the core's own NUMA node, and says which do not.
fn report_placement(core: &Core) {
    let known = core
        .with_monitor(|monitor| monitor.knowledge().query("memory_affinity_known()"))
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
        match core.with_monitor(|monitor| monitor.knowledge().query(query)) {
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
