//! QEMU tests of the system knowledge base: the facts match the machine
//! QEMU was given (cores, NUMA nodes, memory, asymmetric distances), every
//! core's replica is equal, the multicast trees group cores by node, the
//! channel buffers and pools lie on their core's node, and bad queries get
//! clear errors.

use std::collections::BTreeSet;

use super::cases::{SEABIOS_TIMEOUT, expect_failure, expect_line, expect_success};
use super::{ExecRun, QemuTest, TestContext};
use crate::protocol::{self, skb};
use crate::qemu::{Machine, MemorySize};

const MEMORY_MIB: u64 = 512;

pub fn tests() -> Vec<QemuTest> {
    vec![
        QemuTest::new("skb_facts_and_tree_without_numa_tables", |context| {
            topology_matches(context, &Layout::new(4, 0, None), &[1])
        }),
        QemuTest::new("skb_facts_and_tree_on_one_node", |context| {
            topology_matches(context, &Layout::new(4, 1, None), &[2])
        }),
        QemuTest::new(
            "skb_facts_and_tree_on_two_nodes_without_a_slit",
            |context| topology_matches(context, &Layout::new(4, 2, None), &[1]),
        ),
        QemuTest::new("skb_facts_and_tree_on_two_asymmetric_nodes", |context| {
            topology_matches(
                context,
                &Layout::new(4, 2, Some(vec![vec![10, 20], vec![30, 10]])),
                &[0, 3],
            )
        }),
        QemuTest::new("skb_facts_and_tree_on_four_asymmetric_nodes", |context| {
            let distances = vec![
                vec![10, 16, 22, 28],
                vec![17, 10, 23, 29],
                vec![24, 25, 10, 31],
                vec![32, 33, 34, 10],
            ];
            topology_matches(context, &Layout::new(8, 4, Some(distances)), &[0, 5])
        }),
        QemuTest::new(
            "skb_rejects_bad_input_and_keeps_answering",
            skb_rejects_bad_input,
        ),
        QemuTest::new(
            "skb_trees_by_distance_on_40_cores_without_measurements",
            trees_by_distance_without_measurements,
        ),
    ]
}

/// What QEMU is given: `cores` split evenly into `nodes` nodes, memory too;
/// no NUMA tables at all with 0 nodes.
struct Layout {
    cores: u32,
    nodes: u32,
    distances: Option<Vec<Vec<u8>>>,
}

impl Layout {
    fn new(cores: u32, nodes: u32, distances: Option<Vec<Vec<u8>>>) -> Self {
        Layout {
            cores,
            nodes,
            distances,
        }
    }

    /// QEMU's node of `core`: consecutive cores fill one node after another.
    fn node_of(&self, core: u32) -> u32 {
        core / (self.cores / self.nodes.max(1))
    }

    /// The nodes the kernel should see: node 0 alone without NUMA tables.
    fn nodes_seen(&self) -> u32 {
        self.nodes.max(1)
    }

    fn distance(&self, from: u32, to: u32) -> u32 {
        match &self.distances {
            Some(rows) => u32::from(rows[from as usize][to as usize]),
            None if from == to => 10,
            None => 20,
        }
    }

    fn machine(&self) -> Machine {
        Machine {
            cores: self.cores as u8,
            memory: MemorySize::from_mib(MEMORY_MIB),
            memory_given: true,
            numa_nodes: self.nodes as u8,
            numa_distances: self.distances.clone(),
        }
    }
}

fn output<'t>(run: &'t ExecRun, command: &str) -> Result<Vec<&'t str>, String> {
    skb::command_output(&run.serial, command).ok_or(format!("no output of `{command}`"))
}

fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

/// Boots `layout`, then checks the boot summary, the facts QEMU's tables
/// should have produced, the measured round trips, the placement checks and
/// the trees from each of `roots`.
fn topology_matches(
    context: &mut TestContext,
    layout: &Layout,
    roots: &[u32],
) -> Result<(), String> {
    let mut commands = vec![
        "skb facts core_node".to_owned(),
        "skb facts distance".to_owned(),
        "skb facts mem_node".to_owned(),
        "skb facts urpc_rtt".to_owned(),
        "skb query \"cpu(C, V, F, _, _)\"".to_owned(),
        "skb query \"misplaced_channels(C)\"".to_owned(),
        "skb query \"misplaced_span(C)\"".to_owned(),
        "skb query \"channels_home(C, N)\"".to_owned(),
        "skb facts cpu_topology".to_owned(),
        "skb query \"shares_cache(A, B, 3, unified)\"".to_owned(),
    ];
    commands.extend(roots.iter().map(|root| format!("skb tree {root}")));
    let script = commands.join("; ");
    let run = context.exec_on(&layout.machine(), &script, SEABIOS_TIMEOUT)?;
    expect_success(&run, &script)?;

    let summary = skb::boot_summary(&run.serial).ok_or("no `atoll: skb:` boot summary")?;
    check(
        summary.facts > 0
            && summary.equal == layout.cores
            && summary.cores == layout.cores
            && summary.outcome == "multicast trees from the knowledge base",
        || {
            format!(
                "boot summary {summary:?}; expected equal replicas on all {} cores and installed trees",
                layout.cores
            )
        },
    )?;

    // Without SRAT memory ranges nothing can be said about placement.
    let placed = if layout.nodes == 0 {
        "atoll: skb: placement: unknown (the SRAT gives no memory ranges)"
    } else {
        "atoll: skb: placement: every core's frame pool and rings are on its own NUMA node"
    };
    expect_line(&run.serial, placed)?;

    let core_nodes = skb::int_facts(&output(&run, &commands[0])?, "core_node");
    let expected: Vec<Vec<i64>> = (0..layout.cores)
        .map(|core| vec![i64::from(core), i64::from(layout.node_of(core))])
        .collect();
    check(core_nodes == expected, || {
        format!("core_node facts {core_nodes:?}, expected {expected:?}")
    })?;

    let distances = skb::int_facts(&output(&run, &commands[1])?, "distance");
    let nodes = layout.nodes_seen();
    let expected: Vec<Vec<i64>> = (0..nodes)
        .flat_map(|from| (0..nodes).map(move |to| (from, to)))
        .map(|(from, to)| {
            vec![
                i64::from(from),
                i64::from(to),
                i64::from(layout.distance(from, to)),
            ]
        })
        .collect();
    check(distances == expected, || {
        format!("distance facts {distances:?}, expected {expected:?}")
    })?;

    check_memory_nodes(
        layout,
        &skb::int_facts(&output(&run, &commands[2])?, "mem_node"),
    )?;
    let round_trips = skb::int_facts(&output(&run, &commands[3])?, "urpc_rtt");
    check_round_trips(layout, &round_trips)?;

    let cpus = skb::answers(&output(&run, &commands[4])?);
    check(
        cpus.len() == layout.cores as usize && cpus.iter().all(|cpu| cpu["V"].len() > 2),
        || format!("expected one cpu fact with a vendor per core, got {cpus:?}"),
    )?;
    for command in &commands[5..7] {
        let placed = output(&run, command)?;
        check(skb::count(&placed, "answers") == Some(0), || {
            format!("`{command}` found misplaced memory: {placed:?}")
        })?;
    }
    if layout.nodes > 0 {
        let homes = skb::answers(&output(&run, &commands[7])?);
        let homes: BTreeSet<(String, String)> = homes
            .into_iter()
            .map(|answer| (answer["C"].clone(), answer["N"].clone()))
            .collect();
        let expected: BTreeSet<(String, String)> = (0..layout.cores)
            .map(|core| (core.to_string(), layout.node_of(core).to_string()))
            .collect();
        check(homes == expected, || {
            format!("channels_home {homes:?}, expected {expected:?}")
        })?;
    }
    check_packages(layout, &run, &commands[8], &commands[9])?;
    for &root in roots {
        let tree = output(&run, &format!("skb tree {root}"))?;
        check_tree(layout, root, &round_trips, &tree)?;
    }
    Ok(())
}

/// Each node's memory ranges add up to its share of the RAM, less what
/// QEMU leaves out of the SRAT below 1 MiB (the legacy hole).
fn check_memory_nodes(layout: &Layout, ranges: &[Vec<i64>]) -> Result<(), String> {
    if layout.nodes == 0 {
        // QEMU builds no SRAT without `-numa`.
        return check(ranges.is_empty(), || {
            format!("mem_node facts without NUMA: {ranges:?}")
        });
    }
    let share = (MEMORY_MIB << 20) / u64::from(layout.nodes);
    for node in 0..layout.nodes {
        let bytes: u64 = ranges
            .iter()
            .filter(|range| range[2] == i64::from(node))
            .map(|range| (range[1] - range[0]) as u64)
            .sum();
        check(bytes <= share && bytes + (1 << 20) >= share, || {
            format!(
                "node {node} has {bytes} bytes in mem_node facts, expected about {share}: {ranges:?}"
            )
        })?;
    }
    Ok(())
}

/// QEMU makes each NUMA node one socket: CPUID's package of every core is
/// its node, and the last-level cache is shared by exactly the cores of one
/// package.
fn check_packages(
    layout: &Layout,
    run: &ExecRun,
    topology: &str,
    sharing: &str,
) -> Result<(), String> {
    let packages: Vec<(i64, i64)> = skb::int_facts(&output(run, topology)?, "cpu_topology")
        .iter()
        .map(|fact| (fact[0], fact[1]))
        .collect();
    let expected: Vec<(i64, i64)> = (0..layout.cores)
        .map(|core| (i64::from(core), i64::from(layout.node_of(core))))
        .collect();
    check(packages == expected, || {
        format!("cpu_topology packages {packages:?}, expected {expected:?}")
    })?;
    let pairs: BTreeSet<(String, String)> = skb::answers(&output(run, sharing)?)
        .into_iter()
        .map(|answer| (answer["A"].clone(), answer["B"].clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = (0..layout.cores)
        .flat_map(|a| (0..layout.cores).map(move |b| (a, b)))
        .filter(|&(a, b)| a != b && layout.node_of(a) == layout.node_of(b))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    check(pairs == expected, || {
        format!("cores sharing an L3: {pairs:?}, expected {expected:?}")
    })
}

/// One measured round trip for every ordered pair of distinct cores.
fn check_round_trips(layout: &Layout, round_trips: &[Vec<i64>]) -> Result<(), String> {
    let pairs: BTreeSet<(i64, i64)> = round_trips.iter().map(|rtt| (rtt[0], rtt[1])).collect();
    let expected: BTreeSet<(i64, i64)> = (0..i64::from(layout.cores))
        .flat_map(|from| (0..i64::from(layout.cores)).map(move |to| (from, to)))
        .filter(|(from, to)| from != to)
        .collect();
    check(
        pairs == expected
            && round_trips.len() == expected.len()
            && round_trips.iter().all(|rtt| rtt[2] > 0),
        || format!("expected one positive urpc_rtt per ordered pair, got {round_trips:?}"),
    )
}

/// The tree from `root` has one group per node holding exactly that node's
/// cores; the root leads its own node's group, which comes last; every other
/// group is led by its core nearest the root by the measured round trips
/// (the lower id among equals), and groups come farthest first.
fn check_tree(
    layout: &Layout,
    root: u32,
    round_trips: &[Vec<i64>],
    output: &[&str],
) -> Result<(), String> {
    let rtt_from_root = |core: u32| {
        round_trips
            .iter()
            .find(|rtt| rtt[0] == i64::from(root) && rtt[1] == i64::from(core))
            .map(|rtt| rtt[2] as u64)
    };
    let (shown_root, groups) =
        skb::tree(output).ok_or_else(|| format!("unreadable tree: {output:?}"))?;
    let describe = || format!("tree from {root}: {groups:?}");
    check(
        shown_root == root && groups.len() == layout.nodes_seen() as usize,
        describe,
    )?;
    for group in &groups {
        let expected: Vec<u32> = (0..layout.cores)
            .filter(|&core| layout.node_of(core) == group.node)
            .collect();
        check(group.cores() == expected, describe)?;
    }
    let (own, others) = groups.split_last().ok_or_else(describe)?;
    check(
        own.aggregator == root && own.node == layout.node_of(root) && own.rtt.is_none(),
        describe,
    )?;
    for group in others {
        let nearest = group
            .cores()
            .into_iter()
            .min_by_key(|&core| (rtt_from_root(core).unwrap_or(u64::MAX), core))
            .ok_or_else(describe)?;
        check(
            group.aggregator == nearest && group.rtt == rtt_from_root(nearest),
            describe,
        )?;
    }
    let rtts: Vec<u64> = others.iter().map(|group| group.rtt.unwrap_or(0)).collect();
    check(
        rtts.iter().all(|&rtt| rtt > 0) && rtts.windows(2).all(|pair| pair[0] >= pair[1]),
        describe,
    )?;
    Ok(())
}

/// Past 32 running cores nothing is measured; the trees still have one
/// group per node, led by its lowest core, the farthest node by the SLIT
/// first and the root's own last.
fn trees_by_distance_without_measurements(context: &mut TestContext) -> Result<(), String> {
    let distances = vec![
        vec![10, 16, 22, 28],
        vec![17, 10, 23, 29],
        vec![24, 25, 10, 31],
        vec![32, 33, 34, 10],
    ];
    let layout = Layout::new(40, 4, Some(distances));
    let script = "skb facts urpc_rtt; skb tree 0; skb tree 25";
    let run = context.exec_on(&layout.machine(), script, SEABIOS_TIMEOUT)?;
    expect_success(&run, script)?;
    let summary = skb::boot_summary(&run.serial).ok_or("no `atoll: skb:` boot summary")?;
    check(
        summary.equal == 40 && summary.outcome == "multicast trees from the knowledge base",
        || format!("boot summary {summary:?}"),
    )?;
    let measured = skb::count(&output(&run, "skb facts urpc_rtt")?, "facts");
    check(measured == Some(0), || {
        format!("{measured:?} round trips measured on 40 cores")
    })?;
    for (root, order) in [(0, [3, 2, 1, 0]), (25, [3, 1, 0, 2])] {
        let command = format!("skb tree {root}");
        let (_, groups) =
            skb::tree(&output(&run, &command)?).ok_or_else(|| format!("unreadable `{command}`"))?;
        let shown: Vec<(u32, u32)> = groups
            .iter()
            .map(|group| (group.node, group.aggregator))
            .collect();
        let expected: Vec<(u32, u32)> = order
            .iter()
            .map(|&node| {
                (
                    node,
                    if node == layout.node_of(root) {
                        root
                    } else {
                        node * 10
                    },
                )
            })
            .collect();
        check(shown == expected, || {
            format!("tree from {root}: {groups:?}, expected (node, aggregator) {expected:?}")
        })?;
        for group in &groups {
            let cores: Vec<u32> = (0..40)
                .filter(|&core| layout.node_of(core) == group.node)
                .collect();
            check(group.cores() == cores, || {
                format!("tree from {root}: {groups:?}")
            })?;
        }
    }
    Ok(())
}

/// Malformed queries, unknown predicates and cores, and a query with too
/// many answers fail with clear errors, and the knowledge base answers
/// afterwards as before.
fn skb_rejects_bad_input(context: &mut TestContext) -> Result<(), String> {
    let script = "skb query \"core_node(C\"; skb query \"core_node(C, N), N >\"; \
                  skb query \"core_node(C)\"; skb facts no_such_fact; skb tree 9; \
                  skb query \"core_nod(C, N)\"; \
                  skb query \"urpc_rtt(A, B, C), urpc_rtt(D, E, F), urpc_rtt(G, H, I)\"; \
                  skb query \"core_node(C, N)\"";
    let machine = Machine {
        cores: 4,
        ..Machine::default()
    };
    let run = context.exec_on(&machine, script, SEABIOS_TIMEOUT)?;
    expect_failure(&run, script, 7)?;
    let errors = protocol::error_lines(&run.serial);
    let expected = [
        "error: skb query: 1:12:",
        "error: skb query: 1:",
        "error: skb query: 1:1: predicate `core_node` has 2 arguments",
        "error: skb facts: ",
        "error: skb tree: no core 9",
        "error: skb query: 1:1: unknown predicate `core_nod`; did you mean `core_node`?",
        "error: skb query: the query has more than 1024 answers",
    ];
    check(
        errors.len() == expected.len()
            && errors
                .iter()
                .zip(expected)
                .all(|(error, prefix)| error.starts_with(prefix)),
        || format!("expected errors starting {expected:?}, got {errors:?}"),
    )?;
    let answers = output(&run, "skb query \"core_node(C, N)\"")?;
    check(skb::count(&answers, "answers") == Some(4), || {
        format!("after the errors, `core_node(C, N)` gave {answers:?}")
    })
}
