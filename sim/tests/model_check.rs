//! Exhaustive model checks of two-phase commit and the multicast
//! single-phase commit on 3 nodes: every interleaving of deliveries (in
//! order per channel), submissions, and where enabled ticks (so timeouts
//! fire at every possible moment) and a crash of any node at any moment.
//! See `atoll_sim::explore` for what is checked.
//!
//! Run: `cargo test --release -p atoll-sim --test model_check -- --nocapture`;
//! each check prints its state count and time. A debug build runs only the
//! smallest check and skips the rest, which take minutes unoptimised.

use atoll_node::{Mapping, NodeId, Request, Timeouts};
use atoll_proto::Shape;
use atoll_sim::explore::explore;
use atoll_sim::world::SPACE;
use atoll_sim::{Scenario, World};

const PAGE: u64 = 0x1000;

fn map(frame: u64) -> Request {
    Request::Map {
        space: SPACE,
        vaddr: PAGE,
        mapping: Mapping {
            paddr: frame * 0x1000,
            flags: 0b11,
        },
    }
}

const UNMAP: Request = Request::Unmap {
    space: SPACE,
    vaddr: PAGE,
};
const SHOOTDOWN: Request = Request::Shootdown {
    space: SPACE,
    vaddr: PAGE,
};

/// Three nodes, all holding the space; nodes 0 and 1 share a domain, so a
/// `Planned` tree from node 2 has an aggregator with a member.
fn three_nodes(shape: Shape, scripts: [Vec<Request>; 3]) -> Scenario {
    Scenario {
        domains: vec![0, 0, 1],
        holders: (0..3).map(NodeId).collect(),
        shape,
        timeouts: Timeouts {
            vote: 1,
            round: 1,
            relay: 1,
        },
        ticks: false,
        crashes: 0,
        preload: Vec::new(),
        scripts: scripts.to_vec(),
    }
}

fn check(name: &str, scenario: Scenario) -> u64 {
    let world = World::new(&scenario).expect("the preload runs");
    match explore(world) {
        Ok(explored) => {
            println!(
                "{name}: {} states, {} transitions, {} terminal, depth {}, {:.2?}",
                explored.states,
                explored.transitions,
                explored.terminal,
                explored.depth,
                explored.elapsed
            );
            explored.states
        }
        Err(counterexample) => panic!("{name}: {counterexample}"),
    }
}

#[test]
fn conflicting_maps_and_a_shootdown_in_every_shape() {
    for shape in [Shape::Unicast, Shape::Flat, Shape::Planned] {
        let scripts = [vec![map(1)], vec![map(2)], vec![SHOOTDOWN]];
        check(
            &format!("conflicting maps + shootdown, {shape:?}"),
            three_nodes(shape, scripts),
        );
    }
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn unmaps_racing_a_map_of_a_mapped_page_in_every_shape() {
    for shape in [Shape::Unicast, Shape::Flat, Shape::Planned] {
        let mut scenario = three_nodes(shape, [vec![UNMAP], vec![map(2)], vec![UNMAP]]);
        scenario.preload = vec![(
            PAGE,
            Mapping {
                paddr: 0x1000,
                flags: 0b11,
            },
        )];
        check(
            &format!("unmaps + map of a mapped page, {shape:?}"),
            scenario,
        );
    }
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn conflicting_maps_with_a_crash_of_any_node_at_any_moment() {
    for shape in [Shape::Unicast, Shape::Flat, Shape::Planned] {
        let mut scenario = three_nodes(shape, [vec![map(1)], vec![map(2)], vec![SHOOTDOWN]]);
        scenario.crashes = 1;
        check(
            &format!("conflicting maps + shootdown + a crash, {shape:?}"),
            scenario,
        );
    }
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn conflicting_maps_with_timeouts_firing_at_any_moment() {
    for shape in [Shape::Unicast, Shape::Flat, Shape::Planned] {
        let mut scenario = three_nodes(shape, [vec![map(1)], vec![map(2)], vec![SHOOTDOWN]]);
        scenario.ticks = true;
        check(
            &format!("conflicting maps + shootdown + timeouts, {shape:?}"),
            scenario,
        );
    }
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn a_map_then_unmap_against_a_remap_with_timeouts_and_a_crash() {
    // From node 2 the tree is {2} and {0: 1}, so its commits pass through
    // an aggregator that may crash, time out or both.
    let scripts = [vec![], vec![map(2)], vec![map(1), UNMAP]];
    let mut scenario = three_nodes(Shape::Planned, scripts);
    scenario.ticks = true;
    scenario.crashes = 1;
    check("map, unmap + remap + timeouts + a crash, Planned", scenario);
}
