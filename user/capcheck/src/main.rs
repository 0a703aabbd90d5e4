//! Checks capabilities from user space. Run as `capcheck` (on core 0 of
//! an N-core machine), it checks:
//!
//! - the table it starts with: its space (map, read, copy), its process
//!   (kill, copy) and its dispatcher (copy, naming this core), nothing
//!   handed, and no capability past the table;
//! - rights and types: a copy that may only read cannot map but hashes the
//!   space as the original does, its process's capability cannot map, a
//!   copy asks for no right its original lacks and needs the right to copy
//!   from, a chain of copies stops at `MAX_DEPTH`, a deleted copy is gone,
//!   and copies fill the table until it is full, a delete making room for
//!   one more in the slot it freed;
//! - frames: a frame of its own (map, write, copy) mapped and written; its
//!   page cannot be protected; a copy that may only map cannot map it
//!   writable; that copy handed to `capcheck reader` on this core, which
//!   maps it read-only and finds the word written, after this process has
//!   unmapped the frame and deleted the copy (the reader's capability
//!   keeps the frame); on another core, a frame can be neither handed nor
//!   granted;
//! - a grant across cores: it makes a channel and spawns `capcheck peer`
//!   on core N-1 (its own when N is 1), handing it a copy of its end that
//!   may connect (and not notify); the peer connects by it. It spawns
//!   `capcheck idle` here (which yields for ever), grants the peer a copy
//!   of its capability that may kill, and the peer kills it with that: the
//!   child's end comes to its `wait` as killed;
//! - a revocation: it spawns a second `idle`, copies its capability, grants
//!   the peer a copy of the copy, and once the peer has it, revokes the
//!   spawn's capability: two are deleted (the copy here and the grant
//!   there), the peer's kill with its grant is refused, and the child still
//!   runs until killed by the capability revoked from, which stays.
//!
//! It prints one line, `capcheck: ok revoked 2 on core P` (P the peer's
//! core), and exits 0; or `capcheck: FAILED <what>` for the first check
//! that failed, and exits 1.
//!
//! `capcheck late <ms>` does the same up to the revocation, which it makes
//! only `ms` milliseconds after it started, and does not talk to the peer
//! after it: a test stops the peer's core silently in between (`hang`).
//! The revocation deletes the copy here and returns once the view has
//! left that core out, passing it over: it prints `capcheck: late: revoked
//! 1 after <n> ms, with the peer's core P gone` and exits 0.
//!
//! The peer and the reader print nothing unless a check of their own fails
//! (`capcheck: FAILED peer: <what>`, `... reader: <what>`), and exit 0 or 1
//! likewise.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Debug;

use libatoll::channel::{self, Channel};
use libatoll::{
    CAP_DISPATCHER, CAP_ENDPOINT, CAP_FRAME, CAP_PROCESS, CAP_SPACE, Call, Cap, EXITED, Error,
    HANDED, KILLED, MAX_CAPS, MAX_DEPTH, PAYLOAD_SIZE, Payload, RIGHT_CONNECT, RIGHT_COPY,
    RIGHT_KILL, RIGHT_MAP, RIGHT_READ, RIGHT_WAIT, RIGHT_WRITE, RIGHTS_ALL, SELF_DISPATCHER,
    SELF_PROCESS, SELF_SPACE, USER_START, block_on, println,
};

libatoll::main!(main);

/// Where the parent makes its channel, and where the peer maps it.
const CHANNEL: u64 = USER_START + (1 << 35);
const PEER_CHANNEL: u64 = USER_START + (1 << 35) + (1 << 30);
/// A page no one maps: the maps aimed at it must be refused.
const UNMAPPED: u64 = USER_START + (1 << 36);
/// Where it maps a frame of its own, and where the reader maps it.
const FRAME_PAGE: u64 = USER_START + (1 << 36) + (1 << 30);
const READER_PAGE: u64 = USER_START + (1 << 36) + (2 << 30);
/// What it writes in that frame for the reader to find.
const FRAME_WORD: u64 = 0x5ca1_ab1e;
/// How long the parent waits for the peer to connect, and the peer for a
/// grant to arrive (it may come after the message that says it was made).
const PATIENCE_NS: u64 = 10_000_000_000;
/// What a spawn's capability may do.
const CHILD_RIGHTS: u64 = RIGHT_WAIT | RIGHT_KILL | RIGHT_COPY;

fn main() -> u64 {
    let mut words = libatoll::args().split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (None, _, _) => parent(None),
        (Some("late"), Some(ms), None) if ms.parse::<u64>().is_ok() => parent(ms.parse().ok()),
        (Some("peer"), None, _) => peer(),
        (Some("idle"), None, _) => idle(),
        (Some("reader"), None, _) => reader(),
        _ => {
            println!(
                "capcheck: FAILED arguments {:?} (none, `late <ms>`, `peer` or `idle`)",
                libatoll::args()
            );
            1
        }
    }
}

/// What failed, said.
type Checked<T> = Result<T, String>;

/// Checks that `got` is `wanted`.
fn expect<T: PartialEq + Debug>(what: &str, got: T, wanted: T) -> Checked<()> {
    match got == wanted {
        true => Ok(()),
        false => Err(format!("{what}: {got:?}, not {wanted:?}")),
    }
}

/// `result`'s value, or what failed.
fn need<T>(what: &str, result: Result<T, Error>) -> Checked<T> {
    result.map_err(|error| format!("{what}: {error:?}"))
}

/// A text message, its length first.
fn message(text: &str) -> Payload {
    let mut payload = [0u8; PAYLOAD_SIZE];
    let length = text.len().min(PAYLOAD_SIZE - 1);
    payload[0] = length as u8;
    payload[1..=length].copy_from_slice(&text.as_bytes()[..length]);
    payload
}

/// The text a message says.
fn said(payload: &Payload) -> &str {
    let length = usize::from(payload[0]).min(PAYLOAD_SIZE - 1);
    core::str::from_utf8(&payload[1..=length]).unwrap_or("(not text)")
}

/// Sends `text` to the other end.
fn tell(channel: &mut Channel, text: &str) -> Checked<()> {
    channel
        .send(&message(text))
        .map_err(|_| format!("the other end left before {text:?}"))
}

/// The next message's text.
fn hear(channel: &mut Channel, after: &str) -> Checked<String> {
    // The executor's way: the future sleeps in `WaitEvent` until the other
    // end notifies it.
    match block_on(channel.recv()) {
        Some(payload) => Ok(String::from(said(&payload))),
        None => Err(format!("the other end left after {after:?}")),
    }
}

/// Sends `text`, and checks the answer is `wanted`.
fn exchange(channel: &mut Channel, text: &str, wanted: &str) -> Checked<()> {
    tell(channel, text)?;
    let answer = hear(channel, text)?;
    match answer == wanted {
        true => Ok(()),
        false => Err(format!(
            "the peer answered {answer:?} to {text:?}, not {wanted:?}"
        )),
    }
}

/// Why a map at [`UNMAPPED`] by `space` was refused (`None` if it was
/// not: it is then run to its end, and undone).
fn map_refusal(space: Cap) -> Option<Error> {
    match libatoll::map_in(space, UNMAPPED, true) {
        Ok(change) => {
            if block_on(change).is_ok()
                && let Ok(undo) = libatoll::unmap(UNMAPPED)
            {
                let _ = block_on(undo);
            }
            None
        }
        Err(error) => Some(error),
    }
}

/// Runs every check (with `late`, revoking that many milliseconds after
/// it started), ends the children still running, and says how it went.
fn parent(late: Option<u64>) -> u64 {
    let started = libatoll::time();
    let mut children = Vec::new();
    let checked = checks(&mut children, late.map(|ms| started + ms * 1_000_000));
    for &child in &children {
        let _ = libatoll::kill(child);
        let _ = libatoll::wait(child);
    }
    match checked {
        Ok((peer_core, None)) => {
            println!("capcheck: ok revoked 2 on core {peer_core}");
            0
        }
        Ok((peer_core, Some(took_ms))) => {
            println!(
                "capcheck: late: revoked 1 after {took_ms} ms, with the peer's core {peer_core} gone"
            );
            0
        }
        Err(what) => {
            println!("capcheck: FAILED {what}");
            1
        }
    }
}

/// Every check of the parent's; the children still running are in
/// `children`, for the caller to end. The peer's core, and with a time to
/// revoke at (`late`), how long the revocation took, in milliseconds.
fn checks(children: &mut Vec<Cap>, late: Option<u64>) -> Checked<(u32, Option<u64>)> {
    let (here, cores) = libatoll::core_info();
    let peer_core = cores.saturating_sub(1);
    starting_table(here)?;
    rights_and_types()?;
    let frame = shared_frame(children)?;
    // A channel, and the peer on its core with the creator's end handed.
    let endpoint = need("a channel", channel::create(CHANNEL).and_then(block_on))?;
    expect(
        "its end of the channel",
        libatoll::cap_info(endpoint),
        Ok((CAP_ENDPOINT, RIGHTS_ALL)),
    )?;
    let connect = need(
        "a copy of its end that may connect",
        libatoll::cap_copy(endpoint, RIGHT_CONNECT | RIGHT_COPY),
    )?;
    if peer_core != here {
        expect(
            "a frame handed to another core",
            libatoll::spawn_handing("capcheck", "idle", Some(peer_core), frame),
            Err(Error::WrongCapability),
        )?;
    }
    let peer = libatoll::spawn_handing("capcheck", "peer", Some(peer_core), connect);
    let peer = need("the peer's spawn", peer)?;
    children.push(peer);
    need(
        "the delete of the copy handed",
        libatoll::cap_delete(connect),
    )?;
    let mut channel = Channel::open(CHANNEL, true, endpoint);
    let ready = channel.recv_before(libatoll::time() + PATIENCE_NS);
    expect(
        "the peer's first message",
        ready.as_ref().map(said),
        Some("ready"),
    )?;
    if peer_core != here {
        expect(
            "a frame granted to another core",
            libatoll::cap_grant(channel.endpoint(), frame, RIGHT_MAP),
            Err(Error::WrongCapability),
        )?;
    }
    need("the delete of its frame", libatoll::cap_delete(frame))?;
    granted_kill(&mut channel, children)?;
    if let Some(at) = late {
        // The peer's core stops meanwhile: the peer is not waited for.
        return revoked_late(&mut channel, children, at).map(|took| (peer_core, Some(took)));
    }
    revoked_grant(&mut channel, children)?;
    expect(
        "the peer's end",
        libatoll::wait(peer).map(|record| (record.kind, record.value)),
        Ok((EXITED, 0)),
    )?;
    children.retain(|&child| child != peer);
    Ok((peer_core, None))
}

/// The table it starts with, on core `here`.
fn starting_table(here: u32) -> Checked<()> {
    expect(
        "its own space",
        libatoll::cap_info(SELF_SPACE),
        Ok((CAP_SPACE, RIGHT_MAP | RIGHT_READ | RIGHT_COPY)),
    )?;
    expect(
        "its own process",
        libatoll::cap_info(SELF_PROCESS),
        Ok((CAP_PROCESS, RIGHT_KILL | RIGHT_COPY)),
    )?;
    expect(
        "its own dispatcher",
        libatoll::cap_info(SELF_DISPATCHER),
        Ok((CAP_DISPATCHER, RIGHT_COPY)),
    )?;
    expect(
        "which its dispatcher is",
        libatoll::dispatcher_of(SELF_DISPATCHER),
        Ok((here, 0, 1)),
    )?;
    for (what, slot) in [
        ("the slot of what is handed", HANDED),
        ("the slot past the table", MAX_CAPS),
        ("the last slot there could be", u64::MAX),
    ] {
        expect(what, libatoll::cap_info(slot), Err(Error::NoSuchCapability))?;
    }
    Ok(())
}

/// Rights, types, copies, the depth of copies, deletes, a full table.
fn rights_and_types() -> Checked<()> {
    let reader = need(
        "a copy of its space that may read",
        libatoll::cap_copy(SELF_SPACE, RIGHT_READ),
    )?;
    expect(
        "the reading copy",
        libatoll::cap_info(reader),
        Ok((CAP_SPACE, RIGHT_READ)),
    )?;
    expect(
        "a map by the reading copy",
        map_refusal(reader),
        Some(Error::NoRight),
    )?;
    let hash = need("its space's hash", libatoll::space_hash_of(SELF_SPACE))?;
    expect(
        "the hash by the reading copy",
        libatoll::space_hash_of(reader),
        Ok(hash),
    )?;
    expect(
        "a map by its process's capability",
        map_refusal(SELF_PROCESS),
        Some(Error::WrongCapability),
    )?;
    expect(
        "a copy of the copy that may not copy",
        libatoll::cap_copy(reader, RIGHT_READ),
        Err(Error::NoRight),
    )?;
    expect(
        "a copy of its dispatcher that may kill",
        libatoll::cap_copy(SELF_DISPATCHER, RIGHT_KILL),
        Err(Error::NoRight),
    )?;
    // Copies of copies, each one further from its space's: the first
    // MAX_DEPTH are made, the next is too deep.
    let mut chain = Vec::new();
    let mut from = SELF_SPACE;
    for depth in 1..=MAX_DEPTH {
        let copy = libatoll::cap_copy(from, RIGHT_READ | RIGHT_COPY);
        from = need(&format!("copy {depth} of a chain"), copy)?;
        chain.push(from);
    }
    expect(
        "a copy with a right the copy lacks",
        libatoll::cap_copy(from, RIGHT_READ | RIGHT_MAP),
        Err(Error::NoRight),
    )?;
    expect(
        "a copy past MAX_DEPTH",
        libatoll::cap_copy(from, RIGHT_READ | RIGHT_COPY),
        Err(Error::TooDeep),
    )?;
    for copy in chain.into_iter().chain([reader]) {
        need("a copy's delete", libatoll::cap_delete(copy))?;
    }
    expect(
        "a deleted copy",
        libatoll::cap_info(reader),
        Err(Error::NoSuchCapability),
    )?;
    expect(
        "a hash by a deleted copy",
        libatoll::space_hash_of(reader),
        Err(Error::NoSuchCapability),
    )?;
    expect(
        "a second delete",
        libatoll::cap_delete(reader),
        Err(Error::NoSuchCapability),
    )?;
    // Copies until the table is full; a delete makes room for one, in the
    // slot it freed.
    let mut filled = Vec::new();
    let full = loop {
        match libatoll::cap_copy(SELF_SPACE, RIGHT_READ) {
            Ok(copy) if filled.len() < MAX_CAPS as usize => filled.push(copy),
            other => break other,
        }
    };
    expect("a copy into a full table", full, Err(Error::TableFull))?;
    expect(
        "the copies that filled the table",
        filled.len() as u64,
        MAX_CAPS - 3,
    )?;
    let freed = filled[filled.len() / 2];
    need("a delete in a full table", libatoll::cap_delete(freed))?;
    expect(
        "a copy after the delete",
        libatoll::cap_copy(SELF_SPACE, RIGHT_READ),
        Ok(freed),
    )?;
    for copy in filled {
        need("a delete of the table's copies", libatoll::cap_delete(copy))?;
    }
    Ok(())
}

/// A frame of its own, mapped and written; a copy that may only map it is
/// handed to a `capcheck reader` here, which maps it and finds the word.
/// Before the reader has read, this process unmaps the frame and deletes
/// the copy: the reader's capability keeps the frame. The frame's
/// capability, for the checks of frames that may not leave the core.
fn shared_frame(children: &mut Vec<Cap>) -> Checked<Cap> {
    let frame = need("a frame", libatoll::frame_alloc())?;
    expect(
        "a frame's capability",
        libatoll::cap_info(frame),
        Ok((CAP_FRAME, RIGHT_MAP | RIGHT_WRITE | RIGHT_COPY)),
    )?;
    need(
        "the map of its frame",
        libatoll::map_frame(frame, FRAME_PAGE, true).and_then(block_on),
    )?;
    libatoll::write_address(FRAME_PAGE, FRAME_WORD);
    expect(
        "a protect of a frame's page",
        libatoll::protect(FRAME_PAGE, false).err(),
        Some(Error::BadArgument),
    )?;
    let reading = need(
        "a copy of the frame that may only map it",
        libatoll::cap_copy(frame, RIGHT_MAP | RIGHT_COPY),
    )?;
    expect(
        "a writable map by the copy",
        libatoll::map_frame(reading, READER_PAGE, true).err(),
        Some(Error::NoRight),
    )?;
    let reader = need(
        "the reader's spawn",
        libatoll::spawn_handing("capcheck", "reader", None, reading),
    )?;
    children.push(reader);
    need("the delete of the copy", libatoll::cap_delete(reading))?;
    need(
        "the unmap of its frame",
        libatoll::unmap(FRAME_PAGE).and_then(block_on),
    )?;
    expect(
        "the reader's end",
        libatoll::wait(reader).map(|record| (record.kind, record.value)),
        Ok((EXITED, 0)),
    )?;
    children.retain(|&child| child != reader);
    Ok(frame)
}

/// The reader: maps the frame handed to it read-only and finds the word
/// its parent wrote; a writable map is refused.
fn reader() -> u64 {
    let checked = (|| {
        expect(
            "the frame handed to it",
            libatoll::cap_info(HANDED),
            Ok((CAP_FRAME, RIGHT_MAP | RIGHT_COPY)),
        )?;
        expect(
            "a writable map of it",
            libatoll::map_frame(HANDED, READER_PAGE, true).err(),
            Some(Error::NoRight),
        )?;
        need(
            "a map of it",
            libatoll::map_frame(HANDED, READER_PAGE, false).and_then(block_on),
        )?;
        expect(
            "the word in it",
            libatoll::read_address(READER_PAGE),
            FRAME_WORD,
        )
    })();
    match checked {
        Ok(()) => 0,
        Err(what) => {
            println!("capcheck: FAILED reader: {what}");
            1
        }
    }
}

/// Spawns an `idle` child; its capability, with every right a spawn's has.
fn idle_child(children: &mut Vec<Cap>) -> Checked<Cap> {
    let child = need("an idle child's spawn", libatoll::spawn("capcheck", "idle"))?;
    children.push(child);
    expect(
        "a spawn's capability",
        libatoll::cap_info(child),
        Ok((CAP_PROCESS, CHILD_RIGHTS)),
    )?;
    Ok(child)
}

/// Waits for `child`, which must have been killed.
fn killed(what: &str, child: Cap, children: &mut Vec<Cap>) -> Checked<()> {
    let ended = libatoll::wait(child).map(|record| record.kind);
    children.retain(|&other| other != child);
    expect(what, ended, Ok(KILLED))
}

/// Spawns an idle child, copies its capability (kill, copy) and grants the
/// peer a copy of the copy that may kill: the child's capability and the
/// copy.
fn grant_a_child(channel: &mut Channel, children: &mut Vec<Cap>) -> Checked<(Cap, Cap)> {
    let child = idle_child(children)?;
    let copy = need(
        "a copy that may kill and copy",
        libatoll::cap_copy(child, RIGHT_KILL | RIGHT_COPY),
    )?;
    need(
        "the grant of a copy of the copy",
        libatoll::cap_grant(channel.endpoint(), copy, RIGHT_KILL),
    )?;
    Ok((child, copy))
}

/// The peer kills an idle child by a capability granted to it.
fn granted_kill(channel: &mut Channel, children: &mut Vec<Cap>) -> Checked<()> {
    let (child, copy) = grant_a_child(channel, children)?;
    need("the delete of the copy granted", libatoll::cap_delete(copy))?;
    exchange(channel, "granted", "killed")?;
    killed("the child the peer killed", child, children)
}

/// The peer gets a grant made from a copy; the spawn's capability is
/// revoked, which deletes two (the copy and the grant); the peer's kill
/// with the grant is refused.
fn revoked_grant(channel: &mut Channel, children: &mut Vec<Cap>) -> Checked<()> {
    let (child, copy) = grant_a_child(channel, children)?;
    exchange(channel, "granted", "got")?;
    let revoked = need("the revocation", libatoll::cap_revoke(child))?;
    expect("what the revocation deleted", revoked, 2)?;
    expect(
        "the copy after the revocation",
        libatoll::cap_info(copy),
        Err(Error::NoSuchCapability),
    )?;
    expect(
        "the capability revoked from",
        libatoll::cap_info(child),
        Ok((CAP_PROCESS, CHILD_RIGHTS)),
    )?;
    exchange(channel, "try", "NoSuchCapability")?;
    need(
        "a kill by the capability revoked from",
        libatoll::kill(child),
    )?;
    killed("the child whose grant was revoked", child, children)
}

/// As [`revoked_grant`] up to the revocation, which waits until the time
/// `at` (nanoseconds), by when the peer's core has stopped: the copy here
/// is deleted, the peer's grant goes with its core. How long the
/// revocation took, in milliseconds.
fn revoked_late(channel: &mut Channel, children: &mut Vec<Cap>, at: u64) -> Checked<u64> {
    let (child, copy) = grant_a_child(channel, children)?;
    exchange(channel, "granted", "got")?;
    while libatoll::time() < at {
        libatoll::yield_now();
    }
    let start = libatoll::time();
    let revoked = need("the revocation", libatoll::cap_revoke(child))?;
    let took = (libatoll::time() - start) / 1_000_000;
    expect("what the revocation deleted", revoked, 1)?;
    expect(
        "the copy after the revocation",
        libatoll::cap_info(copy),
        Err(Error::NoSuchCapability),
    )?;
    need(
        "a kill by the capability revoked from",
        libatoll::kill(child),
    )?;
    killed("the child whose grant was revoked", child, children)?;
    Ok(took)
}

/// The peer: connects by the end handed to it, then does as the parent
/// says.
fn peer() -> u64 {
    let mut opened = None;
    let checked = peer_checks(&mut opened);
    match (checked, opened) {
        (Ok(()), _) => 0,
        (Err(what), channel) => {
            println!("capcheck: FAILED peer: {what}");
            if let Some(mut channel) = channel {
                let _ = tell(&mut channel, &format!("failed: {what}"));
            }
            1
        }
    }
}

fn peer_checks(opened: &mut Option<Channel>) -> Checked<()> {
    expect(
        "the end handed to it",
        libatoll::cap_info(HANDED),
        Ok((CAP_ENDPOINT, RIGHT_CONNECT | RIGHT_COPY)),
    )?;
    let notified = libatoll::call_raw(Call::Notify as u64, [HANDED, 0, 0, 0, 0, 0]);
    expect(
        "a notify by the end handed to it",
        Error::from_return(notified),
        Some(Error::NoRight),
    )?;
    let mine = need(
        "the connect by the end handed to it",
        channel::connect(HANDED, PEER_CHANNEL).and_then(block_on),
    )?;
    expect(
        "its own end",
        libatoll::cap_info(mine).map(|(kind, _)| kind),
        Ok(CAP_ENDPOINT),
    )?;
    let channel = opened.insert(Channel::open(PEER_CHANNEL, false, mine));
    tell(channel, "ready")?;
    // The grant to kill, and the kill.
    let killer = granted(channel, "ready")?;
    expect(
        "a wait by the grant",
        libatoll::wait(killer).map(|record| record.kind),
        Err(Error::NoRight),
    )?;
    expect(
        "a copy of the grant",
        libatoll::cap_copy(killer, RIGHT_KILL),
        Err(Error::NoRight),
    )?;
    need("the kill by the grant", libatoll::kill(killer))?;
    need("the delete of the grant", libatoll::cap_delete(killer))?;
    tell(channel, "killed")?;
    // The grant that is revoked.
    let held = granted(channel, "killed")?;
    tell(channel, "got")?;
    expect("the third word", hear(channel, "got")?.as_str(), "try")?;
    expect(
        "the second grant once revoked",
        libatoll::cap_info(held),
        Err(Error::NoSuchCapability),
    )?;
    let tried = match libatoll::kill(held) {
        Ok(()) => String::from("killed"),
        Err(error) => format!("{error:?}"),
    };
    tell(channel, &tried)
}

/// The grant the parent says it made after the peer's `after`: a process
/// capability that may kill and no more.
fn granted(channel: &mut Channel, after: &str) -> Checked<Cap> {
    expect(
        &format!("the word after {after:?}"),
        hear(channel, after)?.as_str(),
        "granted",
    )?;
    let grant = received()?;
    expect(
        &format!("the grant after {after:?}"),
        libatoll::cap_info(grant),
        Ok((CAP_PROCESS, RIGHT_KILL)),
    )?;
    Ok(grant)
}

/// The next capability granted to it, which may arrive a while after the
/// message that says it was granted.
fn received() -> Checked<Cap> {
    match libatoll::cap_receive_before(libatoll::time() + PATIENCE_NS) {
        Err(Error::Pending) => Err(String::from("no grant arrived")),
        other => need("a grant's receipt", other),
    }
}

/// Gives its core to others for ever, until killed.
fn idle() -> u64 {
    loop {
        libatoll::yield_now();
    }
}
