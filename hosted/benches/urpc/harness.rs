//! The measuring machinery every row shares.
//!
//! A mechanism is a pair of one-way channels, request and reply (or one
//! call channel, whose two sides are [`Part`]s of their own). A
//! measurement is a run of *exchanges*: the initiator sends a burst of
//! messages and then waits for one reply; the responder takes the burst and
//! answers with the last message. A burst of one is a round trip (latency);
//! a long burst is one-way streaming (throughput), which the single reply
//! ends without adding more than one line transfer to thousands of messages.
//!
//! The machine is shared and noisy, and its hypervisor moves our two vCPUs
//! between host cores (see `docs/urpc.md`). So a *round* sets up every cell
//! at once on one pair of pinned threads (or processes), and then runs one
//! batch of each cell in turn, batch after batch: the cells are interleaved
//! at the scale of a millisecond, and a ratio between two cells of one round
//! compares them under the same conditions. Each cell's value in a round is
//! its median batch, which drops batches that a preemption hit.

use std::hint::black_box;
use std::thread;
use std::time::Instant;

use atoll_hosted::{fork_peer, pin_current_thread};

use crate::stats::median;

/// One direction of a mechanism: sends `N`-byte messages, waiting while the
/// channel is full.
pub trait Outbound<const N: usize>: Send {
    fn send(&mut self, message: &[u8; N]);

    /// Called after the last message of a burst, before the sender waits
    /// for anything: where a mechanism whose receiver may sleep makes sure
    /// it is woken (URPC's flush).
    fn end_burst(&mut self) {}
}

/// One direction of a mechanism: receives `N`-byte messages, waiting (by
/// polling, or however the mechanism waits) until one arrives.
pub trait Inbound<const N: usize>: Send {
    fn recv(&mut self) -> [u8; N];
}

/// What one side of a cell does in a batch.
pub trait Part: Send {
    fn run(&mut self, exchanges: u64, burst: u64);
}

/// The side that sends bursts and waits for the reply; its batches are timed.
pub struct Initiator<O, I, const N: usize> {
    pub requests: O,
    pub replies: I,
}

/// The side that takes bursts and replies.
pub struct Responder<I, O, const N: usize> {
    pub requests: I,
    pub replies: O,
}

impl<const N: usize, O: Outbound<N>, I: Inbound<N>> Part for Initiator<O, I, N> {
    fn run(&mut self, exchanges: u64, burst: u64) {
        let message = [0x5a; N];
        for _ in 0..exchanges {
            for _ in 0..burst {
                self.requests.send(black_box(&message));
            }
            self.requests.end_burst();
            black_box(self.replies.recv());
        }
    }
}

impl<const N: usize, I: Inbound<N>, O: Outbound<N>> Part for Responder<I, O, N> {
    fn run(&mut self, exchanges: u64, burst: u64) {
        for _ in 0..exchanges {
            let mut last = [0; N];
            for _ in 0..burst {
                last = black_box(self.requests.recv());
            }
            self.replies.send(&last);
            self.replies.end_burst();
        }
    }
}

/// A part on cache lines of its own. The two sides' parts are boxed one
/// after the other, and their channels' private state (counters written on
/// every message) would otherwise share a line: every message would then
/// pay for a line transfer that belongs to no channel. 128 bytes, because
/// x86 prefetchers fetch lines in pairs.
#[repr(align(128))]
struct OwnLines<T>(T);

impl<T: Part> Part for OwnLines<T> {
    fn run(&mut self, exchanges: u64, burst: u64) {
        self.0.run(exchanges, burst);
    }
}

/// What a cell measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Round trips of one message each way: nanoseconds per round trip.
    Latency,
    /// One-way streaming: messages per second.
    Throughput,
}

/// How much work one batch of a cell is.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Rounds, each a fresh set of channels and threads.
    pub repetitions: usize,
    /// Timed batches per cell per round; one more runs first, untimed, to warm up.
    pub batches: usize,
    /// Round trips in one latency batch.
    pub round_trips: u64,
    /// Messages in one throughput batch (a multiple of 7, for packed rows).
    pub stream: u64,
}

/// What one batch of a cell is, and how to read its duration.
#[derive(Debug, Clone, Copy)]
struct Batch {
    metric: Metric,
    /// Slow mechanisms (pipes) do 1/`slowdown` of the plan's work per
    /// batch, so that they do not dominate the run.
    slowdown: u64,
}

impl Batch {
    /// (exchanges, burst).
    fn size(&self, plan: &Plan) -> (u64, u64) {
        match self.metric {
            Metric::Latency => ((plan.round_trips / self.slowdown).max(1), 1),
            Metric::Throughput => (1, plan.stream / self.slowdown),
        }
    }

    fn value(&self, plan: &Plan, nanoseconds: f64) -> f64 {
        let (exchanges, burst) = self.size(plan);
        match self.metric {
            Metric::Latency => nanoseconds / exchanges as f64,
            Metric::Throughput => burst as f64 / nanoseconds * 1e9,
        }
    }
}

/// One measurement in a round: both sides' parts.
pub struct Cell<'a> {
    batch: Batch,
    initiator: Box<dyn Part + 'a>,
    responder: Box<dyn Part + 'a>,
}

impl<'a> Cell<'a> {
    pub fn new(metric: Metric, initiator: impl Part + 'a, responder: impl Part + 'a) -> Self {
        let batch = Batch {
            metric,
            slowdown: 1,
        };
        Cell {
            batch,
            initiator: Box::new(OwnLines(initiator)),
            responder: Box::new(OwnLines(responder)),
        }
    }

    pub fn slowed(mut self, slowdown: u64) -> Self {
        self.batch.slowdown = slowdown;
        self
    }
}

/// Where the responder runs: a thread, or a forked process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Threads,
    Processes,
}

/// The two CPUs of every measurement: the initiator's and the responder's.
#[derive(Debug, Clone, Copy)]
pub struct CpuPair {
    pub initiator: usize,
    pub responder: usize,
}

/// Runs one round: every cell's batches, interleaved. Returns each cell's
/// median batch. The caller's thread is the initiator and must already be
/// pinned to `cpus.initiator`; in [`Placement::Processes`] it must also be
/// the process's only thread (this panics otherwise), and every cell's
/// channels must live in shared memory.
pub fn run_round(
    plan: &Plan,
    cpus: CpuPair,
    placement: Placement,
    cells: Vec<Cell<'_>>,
) -> Vec<f64> {
    let mut batches = Vec::with_capacity(cells.len());
    let mut initiators = Vec::with_capacity(cells.len());
    let mut responders = Vec::with_capacity(cells.len());
    for Cell {
        batch,
        initiator,
        responder,
    } in cells
    {
        batches.push(batch);
        initiators.push(initiator);
        responders.push(responder);
    }
    let sizes: Vec<(u64, u64)> = batches.iter().map(|batch| batch.size(plan)).collect();
    let responder_side = || {
        pin_current_thread(cpus.responder).expect("cannot pin the responder");
        for _ in 0..=plan.batches {
            for (part, &(exchanges, burst)) in responders.iter_mut().zip(&sizes) {
                part.run(exchanges, burst);
            }
        }
        true
    };
    let mut durations = vec![Vec::with_capacity(plan.batches); sizes.len()];
    let mut initiator_side = || {
        for batch in 0..=plan.batches {
            for ((part, &(exchanges, burst)), times) in
                initiators.iter_mut().zip(&sizes).zip(&mut durations)
            {
                let start = Instant::now();
                part.run(exchanges, burst);
                let elapsed = start.elapsed().as_nanos() as f64;
                if batch > 0 {
                    times.push(elapsed);
                }
            }
        }
    };
    match placement {
        Placement::Threads => thread::scope(|scope| {
            let responder = scope.spawn(responder_side);
            initiator_side();
            responder.join().expect("the responder thread panicked");
        }),
        Placement::Processes => {
            assert_eq!(
                threads_in_this_process(),
                1,
                "forking a responder needs a single-threaded process"
            );
            // SAFETY: this is the process's only thread (checked above), so
            // the child may do anything a process may do.
            let peer = unsafe { fork_peer(responder_side) }.expect("cannot fork the responder");
            initiator_side();
            assert!(
                peer.wait().expect("cannot wait for the responder"),
                "the responder failed"
            );
        }
    }
    durations
        .into_iter()
        .zip(batches)
        .map(|(times, batch)| {
            median(
                times
                    .into_iter()
                    .map(|time| batch.value(plan, time))
                    .collect(),
            )
        })
        .collect()
}

/// Threads of this process, as Linux counts them.
fn threads_in_this_process() -> usize {
    let status =
        std::fs::read_to_string("/proc/self/status").expect("cannot read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("/proc/self/status has a Threads line")
}
