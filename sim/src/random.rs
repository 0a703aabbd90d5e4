//! Seeded random runs: a seed picks a scenario and a schedule, so a seed
//! alone replays a run bit for bit.

use crate::seeded::{self, Failure, Rng, Run};
use crate::world::{Action, SPACE, Scenario, Tally, World};
use atoll_proto::Shape;
use atoll_replica::{CoreId, Mapping, Request, Timeouts};

/// Pages the workloads touch: few, so that proposals conflict.
const PAGES: u64 = 3;
/// Frames they map pages to.
const FRAMES: u64 = 3;
/// Steps after which a run that has not settled counts as a livelock.
const MAX_STEPS: usize = 100_000;

/// The scenario of `seed`: 2 to 6 cores in up to 3 domains, some or all of
/// them holders, a random shape, half the time a fan-out of 2 (so that a
/// domain of 4 cores or more is a tree of subgroups), short or long timeouts (each core's a
/// little different), maybe one crash,
/// and up to 4 requests per core on 3 pages.
pub fn scenario(seed: u64) -> Scenario {
    let mut rng = Rng::new(seed);
    let cores = 2 + rng.below(5) as u16;
    let domains = (0..cores).map(|_| rng.below(3) as u32).collect();
    let mut holders: Vec<CoreId> = (0..cores)
        .map(CoreId)
        .filter(|_| rng.chance(3, 4))
        .collect();
    if holders.len() < 2 {
        holders = (0..cores).map(CoreId).collect();
    }
    let shape = Shape::ALL[rng.below(Shape::ALL.len() as u64) as usize];
    let round = match rng.chance(1, 2) {
        true => 2 + rng.below(6) as u32,
        false => 30 + rng.below(40) as u32,
    };
    // Each core's timeouts of its own, around the scenario's.
    let timeouts = (0..cores)
        .map(|_| {
            let round = round + rng.below(3) as u32;
            Timeouts {
                vote: round,
                round,
                relay: (round / 2).max(1),
            }
        })
        .collect();
    let mapping = |rng: &mut Rng| Mapping {
        paddr: (1 + rng.below(FRAMES)) * 0x1000,
        flags: 0b11,
    };
    let mut preload = Vec::new();
    for page in 0..PAGES {
        if rng.chance(1, 3) {
            preload.push((page * 0x1000, mapping(&mut rng)));
        }
    }
    let scripts = (0..cores)
        .map(|_| {
            (0..rng.below(5))
                .map(|_| {
                    let vaddr = rng.below(PAGES) * 0x1000;
                    match rng.below(23) {
                        0..9 => Request::Map {
                            space: SPACE,
                            vaddr,
                            mapping: mapping(&mut rng),
                        },
                        9..16 => Request::Unmap {
                            space: SPACE,
                            vaddr,
                        },
                        // Read-only: the rights a protect takes away must
                        // be gone from every TLB once it completes.
                        16..19 => Request::Protect {
                            space: SPACE,
                            vaddr,
                            flags: 0b01,
                        },
                        _ => Request::Shootdown {
                            space: SPACE,
                            vaddr,
                        },
                    }
                })
                .collect()
        })
        .collect();
    // Drawn last, so that the other draws of a seed stay what they were
    // before trees had depth.
    let fan_out = rng.chance(1, 2).then_some(2);
    Scenario {
        domains,
        fan_out,
        holders,
        shape,
        timeouts,
        ticks: true,
        // A lone survivor of 2 cores keeps no quorum when core 0 is the
        // one that crashed: only 3 cores or more crash.
        crashes: u8::from(cores > 2 && rng.chance(1, 3)),
        preload,
        scripts,
    }
}

/// Runs `seed`'s scenario under `seed`'s schedule to the end. `trace`
/// sees each action with the world it is about to change.
pub fn run(seed: u64, trace: impl FnMut(usize, &World, Action)) -> Result<Run<Tally>, Failure> {
    seeded::run(seed, World::new(&scenario(seed)), MAX_STEPS, pick, trace)
}

/// Picks uniformly among the actions, except that a crash is rare: it is
/// considered on one step in 50.
fn pick(rng: &mut Rng, actions: &[Action]) -> Action {
    let crash_now = rng.chance(1, 50);
    let eligible: Vec<Action> = actions
        .iter()
        .copied()
        .filter(|a| crash_now || !matches!(a, Action::Crash(_)))
        .collect();
    let choices = if eligible.is_empty() {
        actions
    } else {
        &eligible
    };
    choices[rng.below(choices.len() as u64) as usize]
}
