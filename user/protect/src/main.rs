//! One process with a dispatcher on each core it spans, sharing a page.
//! Every dispatcher writes the page first, so every core's TLB may hold it
//! writable. The home (dispatcher 0) then protects it read-only, and each
//! dispatcher reads its word back; writable again, and each writes a new
//! word; read-only again, and the last dispatcher writes to it: that write
//! must fault on its core (a protect completes only once no core of the
//! process grants the old rights), which ends the process. It prints what
//! it did before that write; a write that does not fault is reported and
//! the process exits 1.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use libatoll::{USER_START, block_on, map, println, protect};

libatoll::main!(main);

/// The shared page: far from the image and the stacks.
const PAGE: u64 = USER_START + (1 << 36);

/// Shared by every dispatcher (the process's data pages are the same
/// frames on every core): the stage the home has reached, and how many
/// dispatchers have done theirs.
static STAGE: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
/// Words read back wrong.
static WRONG: AtomicU64 = AtomicU64::new(0);

/// The stages, as the home sets them.
const WRITE: u64 = 1;
const READ: u64 = 2;
const WRITE_AGAIN: u64 = 3;
const LAST_WRITE: u64 = 4;

fn word(index: u16) -> u64 {
    PAGE + u64::from(index) * 8
}

/// Waits (giving the core to others meanwhile) until `ready` holds.
fn wait_until(ready: impl Fn() -> bool) {
    while !ready() {
        libatoll::yield_now();
    }
}

/// A change as a system call gives it: under way, or refused at once.
type ChangeAsked = Result<libatoll::Change, libatoll::Error>;

/// The home: runs `change` to its end, then starts `stage`.
fn start(change: ChangeAsked, stage: u64) -> Result<u64, libatoll::Error> {
    let value = block_on(change?)?;
    DONE.store(0, Ordering::Release);
    STAGE.store(stage, Ordering::Release);
    Ok(value)
}

/// A dispatcher's part of `stage`.
fn part(stage: u64, me: u16) {
    wait_until(|| STAGE.load(Ordering::Acquire) == stage);
    match stage {
        WRITE => libatoll::write_address(word(me), u64::from(me) + 1),
        READ | WRITE_AGAIN => {
            if libatoll::read_address(word(me)) != u64::from(me) + 1 {
                WRONG.fetch_add(1, Ordering::Relaxed);
            }
            if stage == WRITE_AGAIN {
                libatoll::write_address(word(me), u64::from(me) + 1);
            }
        }
        _ => unreachable!("the stages a part is for"),
    }
    DONE.fetch_add(1, Ordering::AcqRel);
}

fn main() -> u64 {
    let (me, count) = libatoll::dispatcher();
    if me == 0 {
        // Each change is asked for only once the stage before has ended.
        let stages: [(fn() -> ChangeAsked, u64); 3] = [
            (|| map(PAGE, true), WRITE),
            (|| protect(PAGE, false), READ),
            (|| protect(PAGE, true), WRITE_AGAIN),
        ];
        for (change, next) in stages {
            if let Err(error) = start(change(), next) {
                println!("protect: the change before stage {next} failed: {error:?}");
                return 1;
            }
            part(next, me);
            wait_until(|| DONE.load(Ordering::Acquire) == u64::from(count));
        }
        if let Err(error) = protect(PAGE, false).and_then(block_on) {
            println!("protect: the last protect failed: {error:?}");
            return 1;
        }
        let wrong = WRONG.load(Ordering::Relaxed);
        let last = count - 1;
        println!(
            "protect: {count} dispatchers wrote, read back and wrote again between protects ({wrong} words wrong); dispatcher {last} now writes to the page made read-only"
        );
        if wrong != 0 {
            return 1;
        }
        STAGE.store(LAST_WRITE, Ordering::Release);
    } else {
        for next in [WRITE, READ, WRITE_AGAIN] {
            part(next, me);
        }
    }
    if me == count - 1 {
        wait_until(|| STAGE.load(Ordering::Acquire) == LAST_WRITE);
        libatoll::write_address(word(me), 0);
        println!("protect: dispatcher {me}'s write to the read-only page did not fault");
        return 1;
    }
    // The others wait for the end: the last dispatcher's fault ends the
    // process.
    loop {
        libatoll::yield_now();
    }
}
