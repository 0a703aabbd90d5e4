//! Exhaustive model checks of two-phase commit and the multicast
//! single-phase commit on 3 cores: every interleaving of deliveries (in
//! order per channel), submissions, and where enabled ticks (so timeouts
//! fire at every possible moment) and a crash of any core at any moment.
//! See `atoll_sim::explore` for what is checked.
//!
//! Run: `cargo test --release -p atoll-sim --test model_check -- --nocapture`;
//! each check prints its state count and time. A debug build runs only the
//! smallest check and skips the rest, which take minutes unoptimised.

use atoll_proto::Shape;
use atoll_replica::{CoreId, Mapping, Request, Timeouts};
use atoll_sim::explore::explore;
use atoll_sim::world::SPACE;
use atoll_sim::{Scenario, World};

const PAGE: u64 = 0x1000;

fn mapping(frame: u64) -> Mapping {
    Mapping {
        paddr: frame * 0x1000,
        flags: 0b11,
    }
}

fn map(frame: u64) -> Request {
    Request::Map {
        space: SPACE,
        vaddr: PAGE,
        mapping: mapping(frame),
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

/// `domains.len()` cores, all holding the space, with timeouts of one tick
/// (firing only where `ticks` is switched on), no crash and no preload.
fn cores(domains: Vec<u32>, shape: Shape, scripts: Vec<Vec<Request>>) -> Scenario {
    let timeouts = Timeouts {
        vote: 1,
        round: 1,
        relay: 1,
    };
    Scenario {
        holders: (0..domains.len() as u16).map(CoreId).collect(),
        timeouts: vec![timeouts; domains.len()],
        domains,
        fan_out: None,
        shape,
        ticks: false,
        crashes: 0,
        preload: Vec::new(),
        scripts,
    }
}

/// Three cores; cores 0 and 1 share a domain, so a `Planned` tree from
/// core 2 has an aggregator with a member.
fn three_nodes(shape: Shape, scripts: [Vec<Request>; 3]) -> Scenario {
    cores(vec![0, 0, 1], shape, scripts.to_vec())
}

fn check(name: &str, scenario: Scenario) {
    let world = World::new(&scenario).expect("the preload runs");
    match explore(world) {
        Ok(explored) => println!(
            "{name}: {} states, {} transitions, {} terminal, depth {}, {:.2?}",
            explored.states,
            explored.transitions,
            explored.terminal,
            explored.depth,
            explored.elapsed
        ),
        Err(counterexample) => panic!("{name}: {counterexample}"),
    }
}

/// Checks `scripts` on [`three_nodes`] in every shape, each scenario first
/// changed by `vary`.
fn check_every_shape(name: &str, scripts: [Vec<Request>; 3], vary: impl Fn(&mut Scenario)) {
    for shape in Shape::ALL {
        let mut scenario = three_nodes(shape, scripts.clone());
        vary(&mut scenario);
        check(&format!("{name}, {shape:?}"), scenario);
    }
}

#[test]
fn conflicting_maps_and_a_shootdown_in_every_shape() {
    let scripts = [vec![map(1)], vec![map(2)], vec![SHOOTDOWN]];
    check_every_shape("conflicting maps + shootdown", scripts, |_| {});
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn unmaps_racing_a_map_of_a_mapped_page_in_every_shape() {
    let scripts = [vec![UNMAP], vec![map(2)], vec![UNMAP]];
    check_every_shape("unmaps + map of a mapped page", scripts, |scenario| {
        scenario.preload = vec![(PAGE, mapping(1))];
    });
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn a_protect_racing_an_unmap_and_a_remap_in_every_shape() {
    // Read-only: a completed protect must have left no TLB with the page
    // writable.
    let protect = Request::Protect {
        space: SPACE,
        vaddr: PAGE,
        flags: 0b01,
    };
    let scripts = [vec![protect], vec![UNMAP], vec![map(2)]];
    check_every_shape(
        "protect + unmap + remap of a mapped page",
        scripts,
        |scenario| {
            scenario.preload = vec![(PAGE, mapping(1))];
        },
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn conflicting_maps_with_a_crash_of_any_core_at_any_moment() {
    let scripts = [vec![map(1)], vec![map(2)], vec![SHOOTDOWN]];
    check_every_shape(
        "conflicting maps + shootdown + a crash",
        scripts,
        |scenario| scenario.crashes = 1,
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn conflicting_maps_with_timeouts_firing_at_any_moment() {
    let scripts = [vec![map(1)], vec![map(2)], vec![SHOOTDOWN]];
    check_every_shape(
        "conflicting maps + shootdown + timeouts",
        scripts,
        |scenario| scenario.ticks = true,
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn a_map_then_unmap_against_a_remap_with_timeouts_and_a_crash() {
    // From core 2 the tree is {2} and {0: 1}, so its commits pass through
    // an aggregator that may crash, time out or both.
    let scripts = [vec![], vec![map(2)], vec![map(1), UNMAP]];
    let mut scenario = three_nodes(Shape::Planned, scripts);
    scenario.ticks = true;
    scenario.crashes = 1;
    check("map, unmap + remap + timeouts + a crash, Planned", scenario);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn conflicting_maps_with_timeouts_of_different_lengths_and_a_crash() {
    // Each core counts its own ticks and has timeouts of its own: votes,
    // rounds and relays run out at different moments on each, around a
    // crash that only the survivors' detectors notice.
    let scripts = [vec![map(1)], vec![], vec![map(2)]];
    let mut scenario = three_nodes(Shape::Planned, scripts);
    scenario.ticks = true;
    scenario.crashes = 1;
    scenario.timeouts = [1, 2, 1]
        .map(|ticks| Timeouts {
            vote: ticks,
            round: ticks,
            relay: ticks,
        })
        .to_vec();
    check(
        "conflicting maps + timeouts of 1 tick on cores 0 and 2, 2 on core 1 + a crash, Planned",
        scenario,
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "hundreds of thousands of states: run with --release"
)]
fn a_commit_down_a_tree_two_deep_with_a_crash_of_any_core_at_any_moment() {
    // Four cores of one domain with a fan-out of 2: from core 3 the tree
    // is 3 {1 {2}, 0}, so the commit passes through a subgroup's leader
    // (core 1) that may crash before, while or after it forwards; with
    // timeouts, a shootdown from core 0 (0 {2 {3}, 1}) runs beside it.
    let scripts = vec![vec![], vec![], vec![], vec![map(1)]];
    let mut scenario = cores(vec![0; 4], Shape::Planned, scripts);
    scenario.fan_out = Some(2);
    scenario.crashes = 1;
    check(
        "commit down a tree two deep + a crash, Planned",
        scenario.clone(),
    );
    // Timeouts and a crash together: a relay that acknowledged at its
    // timeout must still bypass the subgroup's leader once it is down.
    scenario.ticks = true;
    check(
        "commit down a tree two deep + timeouts + a crash, Planned",
        scenario.clone(),
    );
    scenario.crashes = 0;
    scenario.scripts[0] = vec![SHOOTDOWN];
    check(
        "commit + shootdown down trees two deep + timeouts, Planned",
        scenario,
    );
}
