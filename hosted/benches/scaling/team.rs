//! The threads of one measurement (a *team*): where each runs, how they
//! wait, and how their batches are timed.
//!
//! Every wait (for a lock, a reply, a free slot, a barrier) spins. In a
//! team with more threads than CPUs, which these benchmarks run on purpose
//! (see `docs/benchmarks.md`), a wait also yields the CPU: a lock waiter at
//! once, other waits after a couple of microseconds. A spinner would
//! otherwise burn the rest of its time slice while the thread it waits for
//! (a preempted lock holder, the server, a peer) sits unscheduled on the
//! same CPU, and every number would be a time slice. A team with a CPU per
//! thread never yields, so that yielding costs nothing where it is not
//! needed.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use atoll_hosted::pin_current_thread;
use spin::RelaxStrategy;

use crate::clock::{Span, Stamp};

/// Spins before a wait in an oversubscribed team yields: a PAUSE takes
/// about 40 ns on this machine (Zen 4 in KVM), so 64 of them are some
/// 2.5 µs, several times the slowest wait of a thread that has a CPU of its
/// own.
const SPINS_BEFORE_YIELD: u32 = 64;

/// Whether the team now running has more threads than CPUs; set by
/// [`run_team`] before it starts the threads.
static OVERSUBSCRIBED: AtomicBool = AtomicBool::new(false);

/// One wait's state.
#[derive(Debug, Default)]
pub struct Patience {
    spins: u32,
}

impl Patience {
    /// Waits a little: one PAUSE, or, in an oversubscribed team after
    /// [`SPINS_BEFORE_YIELD`] of them, a `sched_yield`.
    pub fn wait(&mut self) {
        if self.spins < SPINS_BEFORE_YIELD || !OVERSUBSCRIBED.load(Ordering::Relaxed) {
            self.spins = self.spins.saturating_add(1);
            spin_loop();
        } else {
            self.spins = 0;
            thread::yield_now();
        }
    }
}

/// Polls until `poll` gives a value, waiting patiently between polls.
pub fn wait_for<T>(mut poll: impl FnMut() -> Option<T>) -> T {
    let mut patience = Patience::default();
    loop {
        if let Some(value) = poll() {
            return value;
        }
        patience.wait();
    }
}

/// The spinlocks' relax strategy: a PAUSE, or in an oversubscribed team a
/// `sched_yield` at once. A ticket lock hands itself to its waiters in
/// turn, so with more threads than CPUs the next in line is often not
/// running; in a trial at N = 4, k = 1 (`fig3`), spinning 64 times before
/// each yield cost 67 µs per update, yielding at once 5.6 µs.
pub struct SpinOrYield;

impl RelaxStrategy for SpinOrYield {
    fn relax() {
        if OVERSUBSCRIBED.load(Ordering::Relaxed) {
            thread::yield_now();
        } else {
            spin_loop();
        }
    }
}

/// The CPU of each thread of a team.
#[derive(Debug, Clone)]
pub struct Placement {
    pub cpus: Vec<usize>,
}

impl Placement {
    /// `threads` threads dealt round-robin over `cpus`.
    pub fn spread(threads: usize, cpus: &[usize]) -> Placement {
        Placement {
            cpus: (0..threads)
                .map(|thread| cpus[thread % cpus.len()])
                .collect(),
        }
    }

    /// The most threads that share one CPU: 1 when every thread has a CPU
    /// of its own; more means the CPUs are oversubscribed.
    pub fn threads_per_cpu(&self) -> usize {
        self.cpus
            .iter()
            .map(|cpu| self.cpus.iter().filter(|other| *other == cpu).count())
            .max()
            .unwrap_or(0)
    }
}

/// What one thread of a team runs.
pub type Body<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

/// Runs each body on a thread of its own, pinned to its CPU in
/// `placement`, and returns what they return, in order.
///
/// # Panics
/// If a CPU cannot be pinned to, or a body panics.
pub fn run_team<T: Send>(placement: &Placement, bodies: Vec<Body<'_, T>>) -> Vec<T> {
    assert_eq!(placement.cpus.len(), bodies.len(), "a CPU for each thread");
    OVERSUBSCRIBED.store(placement.threads_per_cpu() > 1, Ordering::Relaxed);
    thread::scope(|scope| {
        let threads: Vec<_> = bodies
            .into_iter()
            .zip(&placement.cpus)
            .map(|(body, &cpu)| {
                scope.spawn(move || {
                    pin_current_thread(cpu)
                        .unwrap_or_else(|error| panic!("cannot pin to CPU {cpu}: {error}"));
                    body()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a team thread panicked"))
            .collect()
    })
}

/// A barrier for a team, at which a waiting thread keeps doing its share
/// of background work (taking in messages, catching up with a log): a peer
/// that still runs may be waiting on it.
#[derive(Debug)]
pub struct Barrier {
    threads: usize,
    arrived: AtomicUsize,
    /// Bumped by the last thread to arrive; the others wait for the bump.
    generation: AtomicUsize,
}

impl Barrier {
    pub fn new(threads: usize) -> Barrier {
        Barrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Waits until every thread of the team has arrived, calling `idle`
    /// while it waits.
    pub fn wait(&self, mut idle: impl FnMut()) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            // Nobody arrives again before seeing the bump below.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.store(generation + 1, Ordering::Release);
            return;
        }
        let mut patience = Patience::default();
        while self.generation.load(Ordering::Acquire) == generation {
            idle();
            patience.wait();
        }
    }
}

/// One thread's part in a measurement: an untimed warm-up batch, then
/// `batches` timed ones, every batch started and ended at `barrier` so that
/// the whole team runs each batch together; returns the timed batches'
/// spans. Both `batch` and `idle` (what the thread does while it waits at
/// the barrier) work on the thread's `state`.
pub fn timed_batches<S>(
    batches: usize,
    barrier: &Barrier,
    state: &mut S,
    mut idle: impl FnMut(&mut S),
    mut batch: impl FnMut(&mut S),
) -> Vec<Span> {
    let mut spans = Vec::with_capacity(batches);
    for index in 0..=batches {
        barrier.wait(|| idle(state));
        let start = Stamp::now();
        batch(state);
        let end = Stamp::now();
        if index > 0 {
            spans.push(Span { start, end });
        }
    }
    barrier.wait(|| idle(state));
    spans
}
