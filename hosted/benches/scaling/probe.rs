//! Where the host has put our CPUs, right now: the one-line floor (two
//! threads taking turns writing one cache line, as in `docs/urpc.md`)
//! between the first two CPUs, measured before each group of cells. On
//! this VM it moves between about 30 ns (two hardware threads of one host
//! core), 70 ns (two cores of one CCX) and 320 ns (two CCDs), so it says
//! which of those a group ran in (unless the host moved the vCPUs during
//! the group).

use std::sync::atomic::{AtomicU64, Ordering};

use atoll_bench_report::stats::median;

use crate::clock::Span;
use crate::team::{Barrier, Placement, run_team, timed_batches};

const ROUND_TRIPS_PER_BATCH: u64 = 1000;
const BATCHES: usize = 9;

#[repr(align(128))]
struct OwnLine(AtomicU64);

/// Nanoseconds per one-line round trip between `cpus[0]` and `cpus[1]`
/// (median batch); `None` with fewer than two CPUs.
pub fn one_line_floor(cpus: &[usize]) -> Option<f64> {
    let &[initiator, responder, ..] = cpus else {
        return None;
    };
    let line = OwnLine(AtomicU64::new(0));
    let barrier = Barrier::new(2);
    let player = |mut first: u64| {
        let (line, barrier) = (&line, &barrier);
        move || {
            timed_batches(
                BATCHES,
                barrier,
                &mut first,
                |_| {},
                |next| {
                    for _ in 0..ROUND_TRIPS_PER_BATCH {
                        while line.0.load(Ordering::Acquire) != *next - 1 {
                            std::hint::spin_loop();
                        }
                        line.0.store(*next, Ordering::Release);
                        *next += 2;
                    }
                },
            )
        }
    };
    let placement = Placement {
        cpus: vec![initiator, responder],
    };
    let spans: Vec<Vec<Span>> =
        run_team(&placement, vec![Box::new(player(1)), Box::new(player(2))]);
    Some(median(
        spans[0]
            .iter()
            .map(|span| span.nanos() / ROUND_TRIPS_PER_BATCH as f64)
            .collect(),
    ))
}
