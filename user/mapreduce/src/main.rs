//! One process with a dispatcher on each core it spans, sharing one
//! address space. The home dispatcher (0) maps the input pages (a change
//! every core of the process agrees to), fills them with 1, 2, 3, ..., and
//! says so in a shared flag; each dispatcher then sums its share of the
//! input, reading pages another core mapped and wrote, and adds its sum to
//! a shared total; the home waits for every share, checks the total against
//! n(n+1)/2, unmaps the input, and exits with 0 if it matches.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use libatoll::{USER_START, block_on, block_on_all, map, println, unmap};

libatoll::main!(main);

const PAGES: usize = 8;
const WORDS: u64 = 512 * PAGES as u64;
/// Where the input goes: far from the image and the stacks.
const INPUT: u64 = USER_START + (1 << 36);

/// Shared by every dispatcher: the process's data pages are the same
/// frames on every core.
static READY: AtomicU64 = AtomicU64::new(0);
static TOTAL: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);

fn word(index: u64) -> u64 {
    INPUT + index * 8
}

/// Waits (giving the core to others meanwhile) until `ready` holds.
fn wait_until(ready: impl Fn() -> bool) {
    while !ready() {
        libatoll::yield_now();
    }
}

fn main() -> u64 {
    let (me, count) = libatoll::dispatcher();
    if me == 0 {
        let maps =
            core::array::from_fn::<_, PAGES, _>(|page| map(INPUT + page as u64 * 4096, true));
        if maps.iter().any(Result::is_err) {
            println!("mapreduce: the kernel did not take a map of the input");
            return 1;
        }
        let mapped = block_on_all(maps.map(|change| change.expect("checked above")));
        if mapped.iter().any(Result::is_err) {
            println!("mapreduce: the input could not be mapped: {mapped:?}");
            return 1;
        }
        for index in 0..WORDS {
            libatoll::write_address(word(index), index + 1);
        }
        READY.store(1, Ordering::Release);
    }
    wait_until(|| READY.load(Ordering::Acquire) == 1);
    let share = WORDS.div_ceil(u64::from(count));
    let (from, to) = (
        share * u64::from(me),
        (share * (u64::from(me) + 1)).min(WORDS),
    );
    let sum: u64 = (from..to)
        .map(|index| libatoll::read_address(word(index)))
        .sum();
    TOTAL.fetch_add(sum, Ordering::AcqRel);
    DONE.fetch_add(1, Ordering::AcqRel);
    println!("mapreduce: dispatcher {me} of {count} summed words {from}..{to}: {sum}");
    if me != 0 {
        return 0;
    }
    wait_until(|| DONE.load(Ordering::Acquire) == u64::from(count));
    let total = TOTAL.load(Ordering::Acquire);
    let expected = WORDS * (WORDS + 1) / 2;
    let unmapped = (0..PAGES)
        .all(|page| unmap(INPUT + page as u64 * 4096).is_ok_and(|change| block_on(change).is_ok()));
    println!(
        "mapreduce: {count} dispatchers summed 1..={WORDS}: {total}, expected {expected}; input unmapped: {unmapped}"
    );
    u64::from(total != expected || !unmapped)
}
