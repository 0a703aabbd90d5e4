//! Greets from user space and exits with status 0.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::println;

libatoll::main!(main);

fn main() -> u64 {
    match libatoll::args() {
        "" => println!("hello from user space"),
        args => println!("hello from user space ({args})"),
    }
    0
}
