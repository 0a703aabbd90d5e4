//! Times, from its home dispatcher, a map of one page and its unmap, each
//! from the call to the end of its change (the two-phase commit among every
//! core the process spans; for the unmap, the TLB shootdown too), 64 times,
//! and prints the medians. The other dispatchers exit at once: their cores
//! still hold the space and take part in every change. Exits with the
//! number of changes that did not take effect.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::{USER_START, block_on, cycles, map, println, unmap};

libatoll::main!(main);

const ROUNDS: usize = 64;
const PAGE: u64 = USER_START + (1 << 36);

fn main() -> u64 {
    let (me, count) = libatoll::dispatcher();
    if me != 0 {
        return 0;
    }
    let mut maps = [0u64; ROUNDS];
    let mut unmaps = [0u64; ROUNDS];
    let mut failed = 0;
    for round in 0..ROUNDS {
        let start = cycles();
        failed += u64::from(!map(PAGE, true).is_ok_and(|change| block_on(change).is_ok()));
        let mapped = cycles();
        failed += u64::from(!unmap(PAGE).is_ok_and(|change| block_on(change).is_ok()));
        maps[round] = mapped - start;
        unmaps[round] = cycles() - mapped;
    }
    maps.sort_unstable();
    unmaps.sort_unstable();
    println!(
        "maplat: {count} cores: map median {} cycles (min {}), unmap median {} cycles (min {}) over {ROUNDS} rounds; {failed} did not take effect",
        maps[ROUNDS / 2],
        maps[0],
        unmaps[ROUNDS / 2],
        unmaps[0]
    );
    failed
}
