//! Makes 100,000 system calls with random numbers and arguments (xorshift,
//! a fixed seed, so a run repeats), and checks that each answer is one the
//! ABI allows: an error it defines, or for a known call its value. Half
//! the calls take a random number; the others take a known call with
//! arguments aimed at the edges of what the kernel must refuse: the ends of
//! the user range, the kernel's memory, ranges that wrap around, lengths
//! just past the limit. `Exit` is left out, or the first would end it.
//! Exits with the number of answers the ABI does not allow.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::{Call, Error, MAX_WRITE, STACK_TOP, println};

libatoll::main!(main);

const CALLS: u64 = 100_000;

/// Addresses at the edges, each with the fewest bytes from it that make
/// the range not all the program's.
const EDGES: [(u64, u64); 8] = [
    (0, 1),
    (0x20_0000, 1),             // the kernel's image
    (0xFFFF_8000_0000_0000, 1), // the upper half
    (u64::MAX - 3, 1),          // wraps around past 4 bytes
    (STACK_TOP, 1),             // just past the stack
    (STACK_TOP - 4, 5),         // straddles its end
    ((1 << 39) - 4, 1),         // straddles the user range's start
    ((3 << 39) + 0x1000, 1),    // the kernel's test space
];

fn main() -> u64 {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut unknown, mut bad_address, mut too_long, mut answered, mut wrong) = (0, 0, 0, 0, 0);
    for _ in 0..CALLS {
        let pick = next();
        let (number, first, second) = if pick & 1 == 0 {
            let number = match next() {
                number if number == Call::Exit as u64 => Call::Null as u64,
                number => number,
            };
            (number, next(), next())
        } else {
            let (address, least) = EDGES[(next() % EDGES.len() as u64) as usize];
            let length = match next() % 4 {
                0 => least,
                1 => MAX_WRITE + 1,
                2 => u64::MAX,
                _ => least + next() % 64,
            };
            (Call::ConsoleWrite as u64, address, length)
        };
        let answer = libatoll::call_raw(number, first, second);
        match (Error::from_return(answer), Call::from_number(number)) {
            (Some(Error::UnknownCall), None) => unknown += 1,
            (Some(Error::BadAddress), Some(Call::ConsoleWrite)) => bad_address += 1,
            (Some(Error::TooLong), Some(Call::ConsoleWrite)) => too_long += 1,
            (None, Some(Call::Null)) if answer == 0 => answered += 1,
            _ => {
                println!("fuzz: call {number:#x}({first:#x}, {second:#x}) answered {answer:#x}");
                wrong += 1;
            }
        }
    }
    println!(
        "fuzz: {CALLS} calls: {unknown} unknown, {bad_address} bad addresses, {too_long} too long, {answered} answered, {wrong} not as the ABI allows"
    );
    wrong
}
