//! The latency model: every round completes on every machine, the
//! knowledge base's tree is the kernel's (a group per node, a fan-out from
//! cost), and its fan-out beats flat groups from 64 cores up, as
//! `docs/benchmarks.md` says.

use atoll_proto::Shape;
use atoll_replica::{CoreId, TreePlan};
use atoll_sim::latency::{Costs, Operation, Topology, baselines, plans, run, topology};

fn machine(name: &str) -> (Topology, atoll_skb::KnowledgeBase) {
    topology::machine(name).expect("a machine of the model, its facts whole")
}

const OPERATIONS: [Operation; 3] = [Operation::Shootdown, Operation::Map, Operation::Unmap];

#[test]
fn every_round_completes_with_every_core_confirming() {
    let costs = Costs::DEFAULT;
    for name in ["amd-4x4", "amd-8x4", "2x64"] {
        let (topology, kb) = machine(name);
        for cores in [1, 2, 3, 7, 16] {
            let plan = plans::kernel_plan(&kb, &topology, &costs, cores).unwrap();
            for operation in OPERATIONS {
                for shape in Shape::ALL {
                    let timed = run(&topology, &costs, cores, operation, shape, &plan)
                        .unwrap_or_else(|error| panic!("{name}: {error}"));
                    assert!(timed.cycles > 0);
                    // A shootdown is a request and an answer per other
                    // core; two-phase commit twice that.
                    let rounds = match operation {
                        Operation::Shootdown => 1,
                        Operation::Map | Operation::Unmap => 2,
                    };
                    assert_eq!(
                        timed.messages,
                        rounds * 2 * (cores as u64 - 1),
                        "{name} {operation:?} {shape:?} on {cores}"
                    );
                }
            }
        }
    }
    let (topology, _) = machine("amd-4x4");
    let error = run(
        &topology,
        &costs,
        17,
        Operation::Map,
        Shape::Unicast,
        &TreePlan::new(),
    )
    .unwrap_err();
    assert!(error.contains("has 16 cores, not 17"), "{error}");
}

#[test]
fn the_kernels_plan_is_a_group_per_node_led_by_the_root_at_home() {
    let costs = Costs::DEFAULT;
    let (topology, kb) = machine("amd-8x4");
    let plan = plans::kernel_plan(&kb, &topology, &costs, 32).unwrap();
    let groups = plan.groups(CoreId(0));
    assert_eq!(groups.len(), 8, "one per node");
    assert_eq!(
        groups.last().unwrap()[0],
        CoreId(0),
        "the root serves its own node last"
    );
    assert!(groups.iter().all(|group| group.len() == 4));
    // Farthest first: the first group's aggregator is two hops from 0.
    assert_eq!(topology.hops(0, usize::from(groups[0][0].0)), 2);
    // The fan-out from the model's costs: a child costs as much as a
    // one-way trip, so 4.
    assert_eq!(plan.fan_out(), Some(4));
}

#[test]
fn the_fan_out_beats_flat_groups_from_64_cores_up() {
    let costs = Costs::DEFAULT;
    let (topology, kb) = machine("16x64");
    for cores in [64, 256, 1024] {
        let fanned = plans::kernel_plan(&kb, &topology, &costs, cores).unwrap();
        let mut flat = fanned.clone();
        flat.set_fan_out(None);
        for operation in [Operation::Shootdown, Operation::Unmap] {
            let tree = run(&topology, &costs, cores, operation, Shape::Planned, &fanned).unwrap();
            let groups = run(&topology, &costs, cores, operation, Shape::Planned, &flat).unwrap();
            assert!(
                tree.cycles < groups.cycles,
                "{operation:?} on {cores}: {} against {}",
                tree.cycles,
                groups.cycles
            );
        }
        // And, for a shootdown, the IPIs with a shared counter.
        let tree = run(
            &topology,
            &costs,
            cores,
            Operation::Shootdown,
            Shape::Planned,
            &fanned,
        )
        .unwrap();
        assert!(tree.cycles < baselines::ipi_shootdown(&topology, &costs, cores));
    }
}

#[test]
fn a_contended_line_serialises_its_takers() {
    let costs = Costs::DEFAULT;
    let (topology, _) = machine("16x64");
    // Each added target adds at least one IPI and one counter transfer.
    let mut last = 0;
    for cores in [2, 4, 8, 16, 32] {
        let cycles = baselines::ipi_shootdown(&topology, &costs, cores);
        assert!(
            cycles >= last + (cores as u64 / 2) * costs.ipi_send,
            "{cores}: {cycles}"
        );
        last = cycles;
    }
    // A broadcast line read by 1023 cores costs at least 1023 transfers.
    assert!(baselines::line_broadcast(&topology, &costs, 1024) > 1023 * 130);
}
