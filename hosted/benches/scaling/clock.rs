//! Time as the benchmarks read it: the time-stamp counter for cycles, and
//! the monotonic clock for nanoseconds, both at each end of a span.
//!
//! The TSC of this machine runs at a constant rate (`constant_tsc`,
//! `nonstop_tsc`), the nominal frequency, whatever the core's clock does:
//! its "cycles" are ticks of that rate, which [`tsc_ghz`] measures.

use std::time::{Duration, Instant};

/// The time-stamp counter.
pub fn ticks() -> u64 {
    // SAFETY: RDTSC reads a counter into registers and touches no memory;
    // every x86_64 CPU has it.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// A point in time, on both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    ticks: u64,
    time: Instant,
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp {
            time: Instant::now(),
            ticks: ticks(),
        }
    }
}

/// The interval between two stamps.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub start: Stamp,
    pub end: Stamp,
}

impl Span {
    pub fn nanos(&self) -> f64 {
        (self.end.time - self.start.time).as_nanos() as f64
    }

    pub fn ticks(&self) -> f64 {
        self.end.ticks.wrapping_sub(self.start.ticks) as f64
    }

    /// From the earliest start to the latest end of `spans`.
    ///
    /// # Panics
    /// If `spans` is empty.
    pub fn covering(spans: impl IntoIterator<Item = Span>) -> Span {
        spans
            .into_iter()
            .reduce(|all, span| Span {
                start: if span.start.time < all.start.time {
                    span.start
                } else {
                    all.start
                },
                end: if span.end.time > all.end.time {
                    span.end
                } else {
                    all.end
                },
            })
            .expect("a span covering no spans")
    }
}

/// TSC ticks per nanosecond, measured over 50 ms.
pub fn tsc_ghz() -> f64 {
    let start = Stamp::now();
    std::thread::sleep(Duration::from_millis(50));
    let span = Span {
        start,
        end: Stamp::now(),
    };
    span.ticks() / span.nanos()
}
