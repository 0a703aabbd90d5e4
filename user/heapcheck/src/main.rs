//! Uses the heap libatoll gives every program (`alloc`): each dispatcher
//! fills a vector of 100,000 numbers (800 KB: the heap grows by pages it
//! maps), sums it, builds a string and a map, and frees them; the home
//! dispatcher waits for the others and checks every sum. With several
//! dispatchers they allocate from the one heap at once. Exits with the
//! number of checks that failed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use libatoll::println;

libatoll::main!(main);

const NUMBERS: u64 = 100_000;

static FINISHED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

fn main() -> u64 {
    let (me, count) = libatoll::dispatcher();
    let mut failed = 0;
    let mut check = |ok: bool| failed += u64::from(!ok);
    let numbers: Vec<u64> = (1..=NUMBERS)
        .map(|number| number * u64::from(me + 1))
        .collect();
    let sum: u64 = numbers.iter().sum();
    check(sum == NUMBERS * (NUMBERS + 1) / 2 * u64::from(me + 1));
    drop(numbers);
    let mut text = String::new();
    let mut squares = BTreeMap::new();
    for number in 0..1_000u64 {
        text += &format!("{number},");
        squares.insert(number, number * number);
    }
    check(text.len() == 3890 && squares.get(&999) == Some(&998_001));
    FAILED.fetch_add(failed, Ordering::AcqRel);
    FINISHED.fetch_add(1, Ordering::AcqRel);
    if me != 0 {
        return 0;
    }
    while FINISHED.load(Ordering::Acquire) < u64::from(count) {
        libatoll::yield_now();
    }
    let failed = FAILED.load(Ordering::Acquire);
    println!(
        "heapcheck: {count} dispatchers filled, summed and freed their vectors, strings and maps; {failed} checks failed"
    );
    failed
}
