//! Prints `ticker <args>: <i>` and yields, five times, then exits 0: two
//! of them on one core take turns, so their lines interleave.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::println;

libatoll::main!(main);

const TICKS: u32 = 5;

fn main() -> u64 {
    let name = libatoll::args();
    for tick in 0..TICKS {
        println!("ticker {name}: {tick}");
        libatoll::yield_now();
    }
    0
}
