//! Computes for longer than the failure detector's timeout without a
//! system call: the core's timer must take the core back now and then, so
//! that its monitor keeps answering the others, and the program goes on.
//! Prints a checksum it can only get by running every step.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::println;

libatoll::main!(main);

/// Steps of xorshift64: a few seconds under emulation.
const STEPS: u64 = 1_500_000_000;

fn main() -> u64 {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..STEPS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
    }
    println!("spin: {STEPS} steps, state {state:#x}");
    0
}
