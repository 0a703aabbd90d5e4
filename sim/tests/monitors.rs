//! Seeded runs of whole monitors (`atoll_sim::monitors`): shells on several
//! cores calling maps, unmaps, storms, hashes, round trips and tracing, some
//! with timeouts short enough that replies come late, under a schedule the
//! seed picks; the invariants after every step and at the end. A failure
//! names its seed and the command that replays it.
//!
//! - `ATOLL_SIM_SEEDS=N` runs N seeds (default 500), from
//!   `ATOLL_SIM_FIRST_SEED` (default 0).
//! - `ATOLL_SIM_SEED=S ATOLL_SIM_TRACE=1 cargo test -p atoll-sim --test monitors replay -- --nocapture`
//!   replays seed S, printing its scenario and every action.

use atoll_sim::monitors::{self, Tally};
use atoll_sim::seeded::{self, env_u64};

const DEFAULT_SEEDS: u64 = 500;

#[test]
fn seeds() {
    let (count, tally) = seeded::run_seeds("monitors", DEFAULT_SEEDS, |seed| {
        monitors::run(seed, |_, _, _| {})
    });
    if count >= 500 {
        let Tally {
            calls,
            proposals,
            unanswered,
            shootdowns,
            mapped,
            stopped,
            failed,
            restarted,
        } = tally;
        // Each call that timed out had its reply dropped as late, and each
        // stopped core was left out of every running core's view: every
        // seed's end checks that.
        assert!(
            [
                calls, proposals, unanswered, shootdowns, stopped, failed, restarted
            ]
            .iter()
            .all(|&n| n > 0)
                && mapped > 0,
            "the seeds exercise calls, proposals, timeouts (so late replies), confirmed shootdowns, commits, stopped cores, calls that failed for them and cores that came back: {tally:?}"
        );
    }
}

#[test]
fn replay() {
    let seed = env_u64("ATOLL_SIM_SEED", 0);
    seeded::replay(
        "monitors",
        seed,
        &monitors::scenario(seed),
        |seed, trace| monitors::run(seed, trace),
    );
}
