//! Maps 16 pages at once, writes a word to each that names the round and
//! the page, reads every one back, and unmaps them all, for as many rounds
//! as its argument says (50 without one). Spawned on several cores, every
//! dispatcher does so at once with pages of its own, so that the cores'
//! changes of the one space they share run together. Each map and unmap is a
//! split-phase change agreed by the cores the process runs on; the pages
//! are there once the change has ended. It also checks what must be
//! refused: a map of a page that is mapped (its own code), an unmap of one
//! that is not, a page outside the user range, flags it does not know.
//! Exits with the number of checks that failed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use libatoll::{Error, USER_START, block_on, block_on_all, map, println, unmap};

libatoll::main!(main);

const PAGES: usize = 16;
/// The most dispatchers whose replicas it compares.
const MAX_DISPATCHERS: usize = 256;

/// Shared by every dispatcher (the process's data pages are the same frames
/// on every core): how many finished their rounds, how many checks failed,
/// and each one's replica's hash once all had finished.
static FINISHED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static HASHED: AtomicU64 = AtomicU64::new(0);
static HASHES: [AtomicU64; MAX_DISPATCHERS] = [const { AtomicU64::new(0) }; MAX_DISPATCHERS];
const DEFAULT_ROUNDS: u64 = 50;
/// Where its pages go: 256 GiB into the user range, far from its image.
const REGION: u64 = USER_START + (1 << 38);

/// Page `index` of this dispatcher's pages: each dispatcher has its own,
/// in the one address space they share.
fn page(index: usize) -> u64 {
    let (dispatcher, _) = libatoll::dispatcher();
    REGION + (u64::from(dispatcher) * PAGES as u64 + index as u64) * 4096
}

fn pattern(round: u64, index: usize) -> u64 {
    round << 32 | index as u64 | 0xA5 << 56
}

fn main() -> u64 {
    let rounds = match libatoll::args().trim() {
        "" => DEFAULT_ROUNDS,
        count => match count.parse() {
            Ok(count) => count,
            Err(_) => {
                println!("memstress: the argument is the number of rounds, not {count:?}");
                return u64::MAX;
            }
        },
    };
    let mut failed = 0u64;
    let mut check = |what: &str, ok: bool| {
        if !ok {
            println!("memstress: {what}: FAILED");
            failed += 1;
        }
    };
    for round in 0..rounds {
        let maps = core::array::from_fn::<_, PAGES, _>(|index| map(page(index), true));
        let Some(maps) = all_ok(maps) else {
            check("a map was not accepted", false);
            break;
        };
        let mapped = block_on_all(maps);
        check("every map took effect", mapped.iter().all(Result::is_ok));
        for index in 0..PAGES {
            check(
                "a new page is zeroed",
                libatoll::read_address(page(index) + 8) == 0,
            );
            libatoll::write_address(page(index), pattern(round, index));
        }
        for index in 0..PAGES {
            check(
                "each page holds its own word",
                libatoll::read_address(page(index)) == pattern(round, index),
            );
        }
        let unmaps = core::array::from_fn::<_, PAGES, _>(|index| unmap(page(index)));
        let Some(unmaps) = all_ok(unmaps) else {
            check("an unmap was not accepted", false);
            break;
        };
        check(
            "every unmap took effect",
            block_on_all(unmaps).iter().all(Result::is_ok),
        );
    }
    let refused = |change: Result<libatoll::Change, Error>| match change {
        Ok(change) => block_on(change) == Err(Error::Refused),
        Err(_) => false,
    };
    check(
        "a map of its own code is refused",
        refused(map(USER_START, true)),
    );
    check(
        "an unmap of a page it has not is refused",
        refused(unmap(page(0))),
    );
    check(
        "a page outside the user range is refused",
        map(0x1000, true).err() == Some(Error::BadAddress),
    );
    check(
        "an address inside a page is refused",
        map(page(0) + 8, true).err() == Some(Error::BadAddress),
    );
    check(
        "unknown flags are refused",
        libatoll::call_raw(
            libatoll::Call::Map as u64,
            [libatoll::SELF_SPACE, page(0), 6, 0, 0, 0],
        ) == Error::BadArgument.to_return(),
    );
    let (dispatcher, count) = libatoll::dispatcher();
    println!(
        "memstress: dispatcher {dispatcher} of {count}: {rounds} rounds of {PAGES} pages mapped, written, read back and unmapped; {failed} checks failed"
    );
    FAILED.fetch_add(failed, Ordering::AcqRel);
    FINISHED.fetch_add(1, Ordering::AcqRel);
    // Once every dispatcher has finished, no change is under way: each
    // core's replica of the space must be the same.
    wait_until(|| FINISHED.load(Ordering::Acquire) == u64::from(count));
    let index = usize::from(dispatcher).min(MAX_DISPATCHERS - 1);
    HASHES[index].store(libatoll::space_hash(), Ordering::Release);
    HASHED.fetch_add(1, Ordering::AcqRel);
    if dispatcher != 0 {
        return 0;
    }
    wait_until(|| HASHED.load(Ordering::Acquire) == u64::from(count));
    let compared = usize::from(count).min(MAX_DISPATCHERS);
    let first = HASHES[0].load(Ordering::Acquire);
    let agree = HASHES[..compared]
        .iter()
        .all(|hash| hash.load(Ordering::Acquire) == first);
    let failed = FAILED.load(Ordering::Acquire);
    println!(
        "memstress: {count} dispatchers, {failed} checks failed; replicas on {compared} cores {} (hash {first:#x})",
        if agree { "agree" } else { "DIFFER" }
    );
    failed + u64::from(!agree)
}

/// Waits (giving the core to others meanwhile) until `ready` holds.
fn wait_until(ready: impl Fn() -> bool) {
    while !ready() {
        libatoll::yield_now();
    }
}

/// The changes, if the kernel accepted every one.
fn all_ok<const N: usize>(
    changes: [Result<libatoll::Change, Error>; N],
) -> Option<[libatoll::Change; N]> {
    if changes.iter().any(Result::is_err) {
        return None;
    }
    Some(changes.map(|change| change.expect("checked above")))
}
