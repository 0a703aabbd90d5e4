//! Measures what a system call costs: rounds of `Null` calls, each timed
//! by the time-stamp counter, and prints the median, the fastest and the
//! slowest round's cycles per call. Under emulation the cycles are the
//! emulator's.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::println;

libatoll::main!(main);

const ROUNDS: usize = 64;
const CALLS_PER_ROUND: u64 = 256;

fn main() -> u64 {
    let mut rounds = [0u64; ROUNDS];
    for round in &mut rounds {
        let start = libatoll::cycles();
        for _ in 0..CALLS_PER_ROUND {
            if libatoll::null() != 0 {
                println!("nullcall: the null call answered something");
                return 1;
            }
        }
        *round = (libatoll::cycles() - start) / CALLS_PER_ROUND;
    }
    rounds.sort_unstable();
    println!(
        "nullcall: {ROUNDS} rounds of {CALLS_PER_ROUND} calls: median {} cycles per call (min {}, max {})",
        rounds[ROUNDS / 2],
        rounds[0],
        rounds[ROUNDS - 1]
    );
    0
}
