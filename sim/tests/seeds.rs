//! Seeded random runs of the simulator. Each seed picks a scenario (2 to 6
//! cores, holders, shape, timeouts, maybe a crash, a workload) and a
//! schedule; a failure names its seed and the command that replays it.
//!
//! - `ATOLL_SIM_SEEDS=N` runs N seeds (default 10000), from
//!   `ATOLL_SIM_FIRST_SEED` (default 0).
//! - `ATOLL_SIM_SEED=S cargo test -p atoll-sim --test seeds replay -- --nocapture`
//!   replays seed S, printing its scenario and, with `ATOLL_SIM_TRACE=1`,
//!   every action.

use atoll_sim::Tally;
use atoll_sim::random;
use atoll_sim::seeded::{self, env_u64};

const DEFAULT_SEEDS: u64 = 10_000;

#[test]
fn seeds() {
    let (count, tally) = seeded::run_seeds("seeds", DEFAULT_SEEDS, |seed| {
        random::run(seed, |_, _, _| {})
    });
    if count >= 1000 {
        let Tally {
            committed,
            aborted,
            timed_out,
            shootdowns,
            partial,
            crashes,
        } = tally;
        let exercised = [committed, aborted, timed_out, shootdowns, partial, crashes];
        assert!(
            exercised.iter().all(|&n| n > 0),
            "the seeds exercise every kind of outcome: {tally:?}"
        );
    }
}

#[test]
fn replay() {
    let seed = env_u64("ATOLL_SIM_SEED", 0);
    seeded::replay("seeds", seed, &random::scenario(seed), |seed, trace| {
        random::run(seed, trace)
    });
}
