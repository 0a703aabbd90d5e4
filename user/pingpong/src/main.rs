//! A user-level URPC round trip between two processes, on two cores.
//!
//! `pingpong ping <core> [<rounds>] [abandon | leave <n>]` makes a channel
//! and spawns `pingpong serve` on core `core` as its child, handing it a
//! copy of its end of the channel that may connect (and no more); the
//! server connects by it and echoes every message back until it gets the
//! one that says stop, or the other end has gone. The pinger sends `rounds`
//! messages (1,000 without) one at a time, times each until its echo is
//! back, checks every echo, says stop, waits for the server, and prints the
//! median (of the last 4,096); it stops early if the server has gone. With
//! `leave <n>` the server leaves after n round trips without a word (it is
//! spawned as `serve <n>`), and with `abandon` the pinger leaves without
//! saying stop or waiting: the other end finds it gone. Neither enters the
//! kernel while the other is awake: a side sleeps only after polling for a
//! while, and the other wakes it (`notify`) only then.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::fmt::Write;

use libatoll::channel::{self, Channel};
use libatoll::{
    EXITED, ExitRecord, HANDED, PAYLOAD_SIZE, Payload, RIGHT_CONNECT, RIGHT_COPY, USER_START,
    block_on, cycles, println,
};

libatoll::main!(main);

/// Where the pinger's channel is, and where the server maps it.
const CHANNEL: u64 = USER_START + (1 << 35);
const SERVED: u64 = USER_START + (1 << 35) + (1 << 30);
const DEFAULT_ROUNDS: usize = 1_000;
/// The most round trips it makes.
const MAX_ROUNDS: usize = 10_000_000;
/// How many of the last round trips the median is over.
const TIMED: usize = 4_096;
/// The byte, after a message's round number, that says stop.
const STOP_AT: usize = 8;
/// How long the pinger waits for the server to connect and say so.
const CONNECT_NS: u64 = 10_000_000_000;

fn message(round: usize) -> Payload {
    let mut payload = [0u8; PAYLOAD_SIZE];
    payload[..8].copy_from_slice(&(round as u64).to_le_bytes());
    payload
}

/// How the pinger ends.
#[derive(Clone, Copy)]
enum Ending {
    /// It says stop, and waits for the server.
    Stop,
    /// It leaves without a word.
    Abandon,
    /// The server leaves after this many round trips.
    ServerLeaves(u64),
}

fn main() -> u64 {
    let mut words = libatoll::args().split_whitespace();
    match words.next() {
        Some("serve") => match (words.next().map(str::parse).transpose(), words.next()) {
            (Ok(limit), None) => serve(limit),
            _ => usage(),
        },
        Some("ping") => {
            let Some(Ok(core)) = words.next().map(str::parse::<u32>) else {
                return usage();
            };
            let mut rest = words.peekable();
            let rounds = match rest.peek().map(|word| word.parse::<usize>()) {
                Some(Ok(rounds)) => {
                    rest.next();
                    rounds
                }
                _ => DEFAULT_ROUNDS,
            };
            let ending = match (rest.next(), rest.next(), rest.next()) {
                (None, _, _) => Ending::Stop,
                (Some("abandon"), None, _) => Ending::Abandon,
                (Some("leave"), Some(after), None) => match after.parse() {
                    Ok(after) => Ending::ServerLeaves(after),
                    Err(_) => return usage(),
                },
                _ => return usage(),
            };
            match (1..=MAX_ROUNDS).contains(&rounds) {
                true => ping(core, rounds, ending),
                false => usage(),
            }
        }
        _ => usage(),
    }
}

fn usage() -> u64 {
    println!(
        "pingpong: ping <core> [<rounds>, 1 to {MAX_ROUNDS}] [abandon | leave <n>] (it spawns `serve [<n>]` there itself)"
    );
    2
}

/// Echoes, over the channel whose end it was handed, until told to stop,
/// until the other end has gone, or, with a `limit`, after that many round
/// trips (it then leaves without a word).
fn serve(limit: Option<u64>) -> u64 {
    let endpoint = match channel::connect(HANDED, SERVED).map(block_on) {
        Ok(Ok(endpoint)) => endpoint,
        other => {
            println!("pingpong: serve cannot connect by the endpoint it was handed: {other:?}");
            return 1;
        }
    };
    let mut channel = Channel::open(SERVED, false, endpoint);
    // Connected: the pinger waits for this before its first round.
    if channel.send(&message(0)).is_err() {
        println!("pingpong: the other end left before the first round trip");
        return 0;
    }
    let mut echoed = 0u64;
    loop {
        if limit == Some(echoed) {
            println!("pingpong: leaving after {echoed} round trips");
            return 0;
        }
        let Some(payload) = channel.recv_blocking() else {
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

/// Text of at most a few words, formatted without a heap.
struct Words {
    bytes: [u8; 32],
    length: usize,
}

impl Write for Words {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        let end = self.length + text.len();
        let room = self
            .bytes
            .get_mut(self.length..end)
            .ok_or(core::fmt::Error)?;
        room.copy_from_slice(text.as_bytes());
        self.length = end;
        Ok(())
    }
}

impl Words {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.length]).unwrap_or("")
    }
}

/// Makes a channel, spawns its server on `core` with the channel's end
/// handed, and pings it `rounds` times; ends as `ending` says.
fn ping(core: u32, rounds: usize, ending: Ending) -> u64 {
    let endpoint = match channel::create(CHANNEL).map(block_on) {
        Ok(Ok(endpoint)) => endpoint,
        other => {
            println!("pingpong: cannot make a channel: {other:?}");
            return 1;
        }
    };
    let mut args = Words {
        bytes: [0; 32],
        length: 0,
    };
    let written = match ending {
        Ending::ServerLeaves(after) => write!(args, "serve {after}"),
        Ending::Stop | Ending::Abandon => write!(args, "serve"),
    };
    if written.is_err() {
        return usage();
    }
    // The server may connect, and no more: not notify, nor grant over it.
    let server = libatoll::cap_copy(endpoint, RIGHT_CONNECT | RIGHT_COPY).and_then(|connect| {
        let server = libatoll::spawn_handing("pingpong", args.as_str(), Some(core), connect);
        let _ = libatoll::cap_delete(connect);
        server
    });
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            println!("pingpong: cannot start a server on core {core}: {error:?}");
            return 1;
        }
    };
    let pid = libatoll::pid_of(server).unwrap_or(0);
    let mut channel = Channel::open(CHANNEL, true, endpoint);
    let deadline = libatoll::time() + CONNECT_NS;
    if channel.recv_before(deadline) != Some(message(0)) {
        println!("pingpong: process {pid} did not connect");
        let _ = libatoll::kill(server);
        let _ = libatoll::wait(server);
        return 1;
    }
    let mut times = [0u64; TIMED];
    let mut wrong = 0u64;
    for round in 0..rounds {
        let start = cycles();
        let echo = match channel.send(&message(round)) {
            Ok(()) => channel.recv_blocking(),
            Err(_) => None,
        };
        let Some(echo) = echo else {
            println!("pingpong: process {pid} left after {round} round trips");
            let _ = libatoll::wait(server);
            return 1;
        };
        times[round % TIMED] = cycles() - start;
        wrong += u64::from(echo != message(round));
    }
    let served = match ending {
        // It leaves without a word, the server still running.
        Ending::Abandon => true,
        Ending::Stop | Ending::ServerLeaves(_) => {
            let mut stop = [0u8; PAYLOAD_SIZE];
            stop[STOP_AT] = 1;
            // It may have gone as soon as it had the last echo out.
            let _ = channel.send(&stop);
            ended_well(libatoll::wait(server))
        }
    };
    let timed = rounds.min(TIMED);
    let times = &mut times[..timed];
    times.sort_unstable();
    println!(
        "pingpong: {rounds} round trips to process {pid}: median {} cycles (min {}, max {}); {wrong} echoes wrong",
        times[timed / 2],
        times[0],
        times[timed - 1]
    );
    wrong + u64::from(!served)
}

/// Whether the server exited 0.
fn ended_well(record: Result<ExitRecord, libatoll::Error>) -> bool {
    matches!(
        record,
        Ok(ExitRecord {
            kind: EXITED,
            value: 0,
            ..
        })
    )
}
