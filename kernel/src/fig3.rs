//! `bench fig3`: the paper's Figure 3 on the emulated machine. N client
//! cores each update k cache lines of one structure, over and over:
//!
//! - shared memory: each client takes a lock on the structure (a spinlock
//!   on the line before it) and writes the k lines itself, so the lines and
//!   the lock move from core to core;
//! - messages: each client sends one URPC message per update to the core
//!   that owns the structure (the shell's), which writes the k lines in its
//!   own copy and answers.
//!
//! Each client reports its cycles per update; the table shows the mean over
//! the clients, for k = 1, 2, 4, 8 and N = 1 up to all other cores.

use crate::arch::percore::CoreLocal;
use crate::arch::{cpu, phys};
use crate::messages::{Fig3Done, Fig3Run, Fig3Update, Fig3Updated, NodeMessage};
use crate::node;
use crate::shared::{boot_facts, running_cores};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Words of a cache line.
pub const LINE_WORDS: usize = 8;
/// The most lines an update touches: the structure's size in lines.
pub const MAX_LINES: usize = 8;
const UPDATES: u32 = 200;
const LINE_COUNTS: [u8; 4] = [1, 2, 4, 8];
const TIMEOUT_MS: u64 = 30_000;
const SHARED_MEMORY: u8 = 0;
const MESSAGES: u8 = 1;

/// The lock line, then `MAX_LINES` lines of data.
fn shared_structure() -> &'static [AtomicU64] {
    phys::shared_words(boot_facts().fig3_page, (MAX_LINES + 1) * LINE_WORDS)
}

/// Writes one word in each of the first `lines` lines of `words` (the
/// structure's lines follow the line at index 0).
fn touch(words: &[AtomicU64], lines: u8) {
    for line in 1..=usize::from(lines) {
        words[line * LINE_WORDS].fetch_add(1, Ordering::Relaxed);
    }
}

fn update_under_lock(lines: u8) {
    let words = shared_structure();
    let lock = &words[0];
    while lock
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    touch(words, lines);
    lock.store(0, Ordering::Release);
}

/// A client's part: `updates` updates by `method`; cycles per update.
fn run_client(local: &CoreLocal, owner: usize, run: &Fig3Run) -> u64 {
    let start = cpu::rdtsc();
    for _ in 0..run.updates {
        if run.method == SHARED_MEMORY {
            update_under_lock(run.lines);
        } else {
            node::send(local, owner, Fig3Update { lines: run.lines });
            let answer = node::wait_for(local, owner, TIMEOUT_MS, |answer| {
                matches!(answer, NodeMessage::Fig3Updated(_))
            });
            if answer.is_none() {
                return u64::MAX;
            }
        }
    }
    (cpu::rdtsc() - start) / u64::from(run.updates.max(1))
}

/// A request from the shell's core to be a client.
pub fn client(local: &CoreLocal, from: usize, run: &Fig3Run) -> Fig3Done {
    Fig3Done {
        cycles_per_update: run_client(local, from, run),
    }
}

/// The owner's part of the message method: its own copy of the structure.
pub fn serve_update(local: &CoreLocal, from: usize, update: &Fig3Update) {
    local
        .node()
        .borrow_mut()
        .fig3_copy
        .iter_mut()
        .take(usize::from(update.lines))
        .for_each(|line| line[0] += 1);
    node::send(
        local,
        from,
        Fig3Updated {
            lines: update.lines,
        },
    );
}

/// Runs one (method, lines) measurement on `clients`; mean cycles per update.
fn measure(local: &CoreLocal, clients: &[usize], method: u8, lines: u8) -> Result<u64, String> {
    let run = Fig3Run {
        method,
        lines,
        updates: UPDATES,
    };
    for &client in clients {
        node::send(local, client, run.clone());
    }
    let mut total = 0u64;
    for &client in clients {
        match node::wait_for(local, client, TIMEOUT_MS, |answer| {
            matches!(answer, NodeMessage::Fig3Done(_))
        }) {
            Some(NodeMessage::Fig3Done(Fig3Done { cycles_per_update }))
                if cycles_per_update != u64::MAX =>
            {
                total += cycles_per_update;
            }
            _ => return Err(format!("bench fig3: core {client} did not finish")),
        }
    }
    Ok(total / clients.len() as u64)
}

pub fn run(local: &CoreLocal) -> Result<(), String> {
    let clients: Vec<usize> = running_cores().filter(|&core| core != local.id).collect();
    if clients.is_empty() {
        return Err(String::from(
            "bench fig3: needs at least one other running core",
        ));
    }
    println!(
        "bench fig3: {UPDATES} updates per client; mean TSC cycles per update; owner core {}",
        local.id
    );
    println!("lines  clients  shared-memory  messages  messages/shared");
    for lines in LINE_COUNTS {
        for count in (0..)
            .map(|power| 1usize << power)
            .take_while(|&count| count <= clients.len())
        {
            let group = &clients[..count];
            let shared = measure(local, group, SHARED_MEMORY, lines)?;
            let messages = measure(local, group, MESSAGES, lines)?;
            println!(
                "{lines:>5}  {count:>7}  {shared:>13}  {messages:>8}  {:>15.2}",
                messages as f64 / shared.max(1) as f64
            );
        }
    }
    Ok(())
}
