//! What the property tests of both channel kinds share: case counts that
//! shrink under Miri, fresh slots, message contents, the models' sleep
//! claim, the random pauses and schedules of the two-thread tests, and the
//! wake-up that must not be lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use atoll_urpc::{PAYLOAD_SIZE, Payload, Slot, Wake};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// `native` cases normally, `under_miri` under Miri, which runs each case
/// thousands of times slower and cannot write proptest's regression files.
pub fn config(native: u32, under_miri: u32) -> Config {
    if cfg!(miri) {
        Config {
            cases: under_miri,
            failure_persistence: None,
            ..Config::default()
        }
    } else {
        Config::with_cases(native)
    }
}

/// The most operations in one single-threaded case.
pub const MAX_OPERATIONS: usize = if cfg!(miri) { 40 } else { 300 };
/// The most messages in one multi-threaded case.
pub const MAX_MESSAGES: u64 = if cfg!(miri) { 30 } else { 2_000 };
/// How long a sleeping side waits for its wake-up before the test calls
/// it lost. Far beyond any real delay, so that only a lost wake-up hits it.
pub const LOST_WAKE_UP_DEADLINE: Duration = Duration::from_secs(10);

/// The slots of a fresh channel of `capacity` slots.
pub fn fresh_slots(capacity: usize) -> Vec<Slot> {
    (0..capacity).map(|_| Slot::new()).collect()
}

/// Message `number`: the number, then bytes derived from it, so that a
/// message overwritten, torn or delivered from the wrong lap shows.
pub fn message(number: u64) -> Payload {
    let mut payload = [0; PAYLOAD_SIZE];
    payload[..8].copy_from_slice(&number.to_le_bytes());
    for (index, byte) in payload.iter_mut().enumerate().skip(8) {
        *byte = (number as u8).wrapping_mul(31) ^ index as u8;
    }
    payload
}

/// A pause between two steps of one side, to vary how the threads overlap.
#[derive(Debug, Clone, Copy)]
pub enum Pause {
    None,
    Spin(u16),
    Yield,
}

impl Pause {
    pub fn take(self) {
        match self {
            Pause::None => {}
            Pause::Spin(turns) => (0..turns).for_each(|_| std::hint::spin_loop()),
            Pause::Yield => thread::yield_now(),
        }
    }
}

pub fn pause() -> impl Strategy<Value = Pause> {
    prop_oneof![
        3 => Just(Pause::None),
        2 => (1..200u16).prop_map(Pause::Spin),
        1 => Just(Pause::Yield),
    ]
}

/// One side's behaviour: the pauses it takes in turn, and a count: for a
/// side that publishes, how many messages it writes between flushes (or
/// how many calls it keeps outstanding), for a side that waits, after how
/// many empty polls it goes to sleep.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub pauses: Vec<Pause>,
    pub every: u64,
}

impl Schedule {
    pub fn pause(&self, step: usize) {
        self.pauses[step % self.pauses.len()].take();
    }
}

pub fn schedule() -> impl Strategy<Value = Schedule> {
    (prop::collection::vec(pause(), 1..16), 1..8u64)
        .prop_map(|(pauses, every)| Schedule { pauses, every })
}

/// A model's flush: whether the other side's sleep announcement stood,
/// which the flush claims.
pub fn claim(announced: &mut bool) -> Wake {
    if std::mem::take(announced) {
        Wake::Needed
    } else {
        Wake::NotNeeded
    }
}

/// The host's wake-up of a side that sleeps in [`wait_for_wake_up`].
pub fn wake_up(flag: &AtomicBool, sleeper: &Thread) {
    flag.store(true, Ordering::Release);
    sleeper.unpark();
}

/// Parks until the other side's wake-up sets `flag` (and clears it), failing
/// the test if that takes so long that it must have been lost.
pub fn wait_for_wake_up(flag: &AtomicBool) {
    let started = Instant::now();
    while !flag.swap(false, Ordering::Acquire) {
        let waited = started.elapsed();
        assert!(
            waited < LOST_WAKE_UP_DEADLINE,
            "lost wake-up: asleep for {waited:?}"
        );
        thread::park_timeout(LOST_WAKE_UP_DEADLINE - waited);
    }
}
