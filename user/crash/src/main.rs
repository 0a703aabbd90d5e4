//! Reads through a null pointer, as a buggy program would. The kernel must
//! end this program alone and report the fault; the read never returns.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::println;

libatoll::main!(main);

fn main() -> u64 {
    println!("crash: reading address 0");
    let value = libatoll::read_address(0);
    println!("crash: read {value}, which it must not");
    1
}
