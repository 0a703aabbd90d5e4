//! A user-level URPC round trip between two processes, on two cores.
//!
//! `pingpong serve` makes a channel and echoes every message back until it
//! gets the one that says stop, or the other end has gone. `pingpong ping
//! <pid> [<rounds>]` connects to process `pid`'s channel, sends `rounds`
//! messages (1,000 without) one at a time, times each until its echo is
//! back, checks every echo, says stop, and prints the median (of the last
//! 4,096); it stops early if the server has gone. `serve <n>` leaves after
//! n round trips without a word, and `ping ... abandon` leaves without
//! saying stop: the other end finds it gone. Neither enters the kernel while the other is
//! awake: a side sleeps only after polling for a while, and the other wakes
//! it (`notify`) only then.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::channel::{self, Channel};
use libatoll::{Error, PAYLOAD_SIZE, Payload, USER_START, block_on, cycles, println};

libatoll::main!(main);

/// Where the server's channel is, and where the client maps it.
const SERVED: u64 = USER_START + (1 << 35);
const MINE: u64 = USER_START + (1 << 35) + (1 << 30);
const DEFAULT_ROUNDS: usize = 1_000;
/// The most round trips it makes.
const MAX_ROUNDS: usize = 10_000_000;
/// How many of the last round trips the median is over.
const TIMED: usize = 4_096;
/// The byte, after a message's round number, that says stop.
const STOP_AT: usize = 8;

fn message(round: usize) -> Payload {
    let mut payload = [0u8; PAYLOAD_SIZE];
    payload[..8].copy_from_slice(&(round as u64).to_le_bytes());
    payload
}

fn main() -> u64 {
    let mut words = libatoll::args().split_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("serve"), limit, None, None) => match limit.map(str::parse).transpose() {
            Ok(limit) => serve(limit),
            Err(_) => usage(),
        },
        (Some("ping"), Some(pid), rounds, abandon) => {
            let rounds = rounds.map_or(Ok(DEFAULT_ROUNDS), str::parse);
            let abandon = match abandon {
                None => false,
                Some("abandon") => true,
                Some(_) => return usage(),
            };
            match (pid.parse(), rounds) {
                (Ok(pid), Ok(rounds)) if (1..=MAX_ROUNDS).contains(&rounds) => {
                    ping(pid, rounds, abandon)
                }
                _ => usage(),
            }
        }
        _ => usage(),
    }
}

fn usage() -> u64 {
    println!(
        "pingpong: serve [<rounds> before it leaves], or ping <pid> [<rounds>, 1 to {MAX_ROUNDS}] [abandon]"
    );
    2
}

/// Echoes until told to stop, until the other end has gone, or, with a
/// `limit`, after that many round trips (it then leaves without a word).
fn serve(limit: Option<u64>) -> u64 {
    if !channel::create(SERVED).is_ok_and(|change| block_on(change).is_ok()) {
        println!("pingpong: cannot make a channel");
        return 1;
    }
    println!(
        "pingpong: process {} serves a channel at {SERVED:#x}",
        libatoll::pid()
    );
    let mut channel = Channel::open(SERVED, true);
    let mut echoed = 0u64;
    loop {
        if limit == Some(echoed) {
            println!("pingpong: leaving after {echoed} round trips");
            return 0;
        }
        let Some(payload) = channel.recv() else {
            println!("pingpong: the other end left after {echoed} round trips");
            return 0;
        };
        if payload[STOP_AT] != 0 {
            break;
        }
        if channel.send(&payload).is_err() {
            println!("pingpong: the other end left after {echoed} round trips");
            return 0;
        }
        echoed += 1;
    }
    println!("pingpong: served {echoed} round trips");
    0
}

/// Pings `pid`'s channel `rounds` times; with `abandon`, it then leaves
/// without saying stop.
fn ping(pid: u32, rounds: usize, abandon: bool) -> u64 {
    // The server makes its channel once it runs: ask again for a while.
    let mut connected = false;
    for _ in 0..1_000 {
        match channel::connect(pid, SERVED, MINE).map(block_on) {
            Ok(Ok(())) => {
                connected = true;
                break;
            }
            Ok(Err(Error::Refused)) | Err(Error::NoSuchChannel) => libatoll::yield_now(),
            other => {
                println!("pingpong: cannot connect to process {pid}: {other:?}");
                return 1;
            }
        }
    }
    if !connected {
        println!("pingpong: process {pid} serves no channel");
        return 1;
    }
    let mut channel = Channel::open(MINE, false);
    let mut times = [0u64; TIMED];
    let mut wrong = 0u64;
    for round in 0..rounds {
        let start = cycles();
        let echo = match channel.send(&message(round)) {
            Ok(()) => channel.recv(),
            Err(_) => None,
        };
        let Some(echo) = echo else {
            println!("pingpong: process {pid} left after {round} round trips");
            return 1;
        };
        times[round % TIMED] = cycles() - start;
        wrong += u64::from(echo != message(round));
    }
    if !abandon {
        let mut stop = [0u8; PAYLOAD_SIZE];
        stop[STOP_AT] = 1;
        // It may have gone as soon as it had the last echo out.
        let _ = channel.send(&stop);
    }
    let timed = rounds.min(TIMED);
    let times = &mut times[..timed];
    times.sort_unstable();
    println!(
        "pingpong: {rounds} round trips to process {pid}: median {} cycles (min {}, max {}); {wrong} echoes wrong",
        times[timed / 2],
        times[0],
        times[timed - 1]
    );
    wrong
}
