//! Asks the kernel what the machine is, from user space: the core it runs
//! on and how many its view holds, the time (twice: it must not go back),
//! and the knowledge base: which cores it knows (`core(C, A)`, a line
//! each). It checks that a malformed query and a buffer too small are
//! refused, and exits with the number of checks that failed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::{Error, println};

libatoll::main!(main);

fn main() -> u64 {
    let mut failed = 0;
    let mut check = |what: &str, ok: bool| {
        if !ok {
            println!("sysinfo: {what}: FAILED");
            failed += 1;
        }
    };
    let (core, cores) = libatoll::core_info();
    let (first, second) = (libatoll::time(), libatoll::time());
    check("time does not go back", second >= first && first > 0);
    let mut out = [0u8; 1024];
    let answered =
        libatoll::skb_query("core(C, A)", &mut out).map(|answers| answers.lines().count());
    check("the query is answered", answered.is_ok());
    let known = answered.unwrap_or(0);
    check(
        "a malformed query is refused",
        libatoll::skb_query("core(C,", &mut out).err() == Some(Error::BadQuery),
    );
    check(
        "answers past the buffer are refused",
        libatoll::skb_query("core(C, A)", &mut out[..4]).err() == Some(Error::TooLong),
    );
    println!(
        "sysinfo: core {core} of {cores} in the view; the knowledge base knows {known} cores; {}.{:03} s since the machine started; {failed} checks failed",
        first / 1_000_000_000,
        first / 1_000_000 % 1000
    );
    failed
}
