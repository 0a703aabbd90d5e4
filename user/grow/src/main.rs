//! A process that grows while it runs: `grow <core> ...` starts on its
//! cores (one, or those `--cores` gave), maps a page and writes a word to
//! it, then adds a dispatcher on each core named (`span`), one at a time.
//! Each new dispatcher reads the word (the page was mapped before it
//! came: its core starts from the home's pages) and maps a page of its
//! own, which every core of the process agrees to, the newcomers too. Once
//! all have, each reads its core's replica hash, and the home checks that
//! they agree and that every dispatcher read the word. It prints one line
//! and exits 0, or says what failed and exits 1.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use libatoll::{USER_START, block_on, map, println};

libatoll::main!(main);

/// The home's page, and where each new dispatcher maps its own.
const PAGE: u64 = USER_START + (1 << 36);
const WORD: u64 = 0x6_7061_6765;
/// The most dispatchers it counts.
const MOST: usize = 16;

/// Shared by every dispatcher (the process's data pages are the same
/// frames on every core): how many new ones have mapped their page, how
/// many read the word wrong, and each dispatcher's replica hash once all
/// have mapped (0 until then).
static MAPPED: AtomicU64 = AtomicU64::new(0);
static WRONG: AtomicU64 = AtomicU64::new(0);
static HASHES: [AtomicU64; MOST] = [const { AtomicU64::new(0) }; MOST];
/// How many dispatchers it adds.
static ADDED: AtomicU64 = AtomicU64::new(0);

fn wait_until(ready: impl Fn() -> bool) {
    while !ready() {
        libatoll::yield_now();
    }
}

fn main() -> u64 {
    let (me, count) = libatoll::dispatcher();
    if me != 0 {
        return newcomer(me);
    }
    let cores: Result<Vec<u32>, _> = libatoll::args()
        .split_whitespace()
        .map(str::parse)
        .collect();
    let Ok(cores) = cores else {
        println!(
            "grow: the arguments are core numbers, not {:?}",
            libatoll::args()
        );
        return 1;
    };
    if count != 1 {
        println!("grow: start it on one core; it adds the others");
        return 1;
    }
    if let Err(error) = map(PAGE, true).and_then(block_on) {
        println!("grow: its page could not be mapped: {error:?}");
        return 1;
    }
    libatoll::write_address(PAGE, WORD);
    let total = usize::from(count) + cores.len();
    if total > MOST {
        println!("grow: at most {MOST} dispatchers");
        return 1;
    }
    let new = cores.len() as u64;
    ADDED.store(new, Ordering::Release);
    for (index, &core) in (count..).zip(cores.iter()) {
        let spanned = libatoll::span(core).and_then(libatoll::dispatcher_of);
        match spanned {
            Ok((at, new, _)) if at == core && new == index => {}
            other => {
                println!("grow: span {core}: {other:?}, not dispatcher {index} there");
                return 1;
            }
        }
    }
    wait_until(|| MAPPED.load(Ordering::Acquire) == new);
    // Every change has ended: each dispatcher's replica must be the same.
    HASHES[0].store(libatoll::space_hash(), Ordering::Release);
    wait_until(|| {
        HASHES[..total]
            .iter()
            .all(|hash| hash.load(Ordering::Acquire) != 0)
    });
    let first = HASHES[0].load(Ordering::Acquire);
    let agree = HASHES[..total]
        .iter()
        .all(|hash| hash.load(Ordering::Acquire) == first);
    let wrong = WRONG.load(Ordering::Acquire);
    println!(
        "grow: {total} dispatchers, {new} added while it ran: each read the page mapped before it came ({wrong} wrong) and mapped its own; replicas agree: {agree}"
    );
    u64::from(!(agree && wrong == 0))
}

/// A dispatcher added while the process ran.
fn newcomer(me: u16) -> u64 {
    // The home has mapped its page before it adds anyone (a dispatcher it
    // was started with, which it refuses, waits here for the end).
    wait_until(|| ADDED.load(Ordering::Acquire) != 0);
    if libatoll::read_address(PAGE) != WORD {
        WRONG.fetch_add(1, Ordering::AcqRel);
    }
    let own = PAGE + u64::from(me) * 4096;
    match map(own, true).and_then(block_on) {
        Ok(_) => libatoll::write_address(own, u64::from(me)),
        Err(_) => {
            WRONG.fetch_add(1, Ordering::AcqRel);
        }
    }
    MAPPED.fetch_add(1, Ordering::AcqRel);
    // Hashes are read once every newcomer has mapped its page (and no
    // change is under way).
    wait_until(|| MAPPED.load(Ordering::Acquire) == ADDED.load(Ordering::Acquire));
    HASHES[usize::from(me)].store(libatoll::space_hash(), Ordering::Release);
    // The home's exit ends the process.
    loop {
        libatoll::yield_now();
    }
}
