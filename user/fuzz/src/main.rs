//! Makes system calls with random numbers and arguments (xorshift, a fixed
//! seed, so a run repeats), and checks that each answer is one the ABI
//! allows: an error it defines for that call, or the value it promises.
//! The count is its argument (100,000 without one). Half the calls take a
//! random number and random arguments; the others take a known call (but
//! `Exit`, or the first would end it) with arguments aimed at the edges of
//! what the kernel must refuse: the ends of the user range, the kernel's
//! memory, ranges that wrap around, lengths just past the limit; and
//! capability slots, mostly the table's own (its space, process and
//! dispatcher, the channel ends and copies it made) or just past it, with
//! rights it may or may not have, for every call that takes one, the
//! capability calls too (but it never kills itself, nor deletes the
//! capabilities it starts with). Exits with the number of answers the ABI
//! does not allow.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::{
    CAP_FRAME, CAP_SPACE, Call, Error, HANDED, MAX_ARGS, MAX_CAPS, MAX_NAME, MAX_QUERY, MAX_WRITE,
    NO_CAP, RIGHT_COPY, RIGHT_KILL, RIGHT_READ, RIGHTS_ALL, SELF_SPACE, STACK_TOP, USER_START,
    println,
};

libatoll::main!(main);

const DEFAULT_CALLS: u64 = 100_000;

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

/// A program name that is text in its own memory but names no program:
/// a spawn by it gets past the name's checks to the handed capability's
/// and the core's.
const NOWHERE: &str = "fuzz-nowhere";

/// The known call a roll picks: any of the ABI's (so a new one is fuzzed
/// too) but `Exit`, which would end the fuzzer, and `WaitNotify` and
/// `WaitEvent`, which would wait for ever once it has a channel (nobody
/// notifies it): `Null` stands in for those.
/// (A `Kill` by a capability for itself is replaced by `Null` too, once
/// its arguments are drawn.)
fn known(roll: u64) -> Call {
    match Call::ALL[(roll % Call::ALL.len() as u64) as usize] {
        Call::Exit | Call::WaitNotify | Call::WaitEvent => Call::Null,
        call => call,
    }
}

/// A capability slot a roll picks: mostly one of the table's or just past
/// it (so that some name its own space, process and dispatcher, the
/// channel ends and copies it made, and its children), sometimes any
/// number at all.
fn slot(roll: u64) -> u64 {
    match roll % 8 {
        7 => roll.rotate_left(29),
        _ => (roll >> 3) % (MAX_CAPS + 6),
    }
}

/// Pages its maps, unmaps and protects aim at: its own, away from its image
/// and stack (an unmap of those, or a protect of its stack, would end it,
/// as the ABI allows).
const REGION: u64 = USER_START + (1 << 37);
const REGION_PAGES: u64 = 8;

/// Refusals any call that takes a capability may answer: no capability in
/// the slot, one of another type (or another process's object), or one
/// without the right the call needs.
fn refuses_capability(error: Option<Error>) -> bool {
    matches!(
        error,
        Some(Error::NoSuchCapability | Error::WrongCapability | Error::NoRight)
    )
}

/// Whether `answer` is one the ABI allows for call `number` with these
/// arguments, from a process on core `here`.
fn allowed(number: u64, arguments: [u64; 6], answer: u64, here: u32) -> bool {
    let error = Error::from_return(answer);
    let Some(call) = Call::from_number(number) else {
        return error == Some(Error::UnknownCall);
    };
    let takes_capability = !matches!(
        call,
        Call::ConsoleWrite
            | Call::Exit
            | Call::Null
            | Call::Yield
            | Call::Poll
            | Call::WaitEvent
            | Call::ChannelCreate
            | Call::WaitNotify
            | Call::Time
            | Call::CoreInfo
            | Call::SkbQuery
            | Call::CapReceive
            | Call::FrameAlloc
            | Call::Span
    );
    if takes_capability && refuses_capability(error) {
        return true;
    }
    let slot = |answer: u64| answer < MAX_CAPS;
    match (call, error) {
        (Call::ConsoleWrite, Some(Error::BadAddress | Error::TooLong)) => true,
        (Call::ConsoleWrite, None) => answer == arguments[1] && arguments[1] <= MAX_WRITE,
        (Call::Null | Call::Yield, None) => answer == 0,
        // Its own id, or a child's.
        (Call::Pid, None) => answer <= u64::from(u32::MAX),
        (
            Call::Spawn,
            Some(
                Error::BadAddress
                | Error::TooLong
                | Error::NotText
                | Error::NoSuchProgram
                | Error::NotLoaded
                | Error::TooManyProcesses
                | Error::NoSuchCore
                | Error::TableFull
                | Error::TooDeep,
            ),
        ) => true,
        (Call::Spawn, None) => slot(answer),
        // No child of the fuzzer lives to wait for: it spawns none that
        // lives (a spawn that succeeded is waited for at once).
        (Call::Wait, Some(Error::BadAddress | Error::NoSuchProcess | Error::NotAChild)) => true,
        (Call::Map, Some(Error::BadAddress | Error::BadArgument | Error::NoMemory)) => true,
        (Call::Map | Call::Unmap | Call::Protect, Some(Error::TooManyChanges)) => true,
        // A channel's page cannot be unmapped, nor its code's or a
        // channel's rights changed.
        (Call::Unmap | Call::Protect, Some(Error::BadAddress | Error::BadArgument)) => true,
        (Call::Map | Call::Unmap | Call::Protect, None) => answer <= u64::from(u32::MAX),
        // A page change's value is 0, a channel's the slot of its end.
        (Call::Poll, None) => slot(answer),
        (Call::Poll, Some(Error::Refused | Error::Pending | Error::NoSuchToken)) => true,
        (Call::WaitEvent, None) => answer == 0,
        (Call::WaitEvent, Some(Error::NoSuchToken)) => true,
        // It runs on one core: dispatcher 0 of 1, here.
        (Call::Dispatcher, None) => answer == u64::from(here) << 32 | 1,
        // Any hash is a hash.
        (Call::SpaceHash, None) => true,
        (
            Call::ChannelCreate,
            Some(Error::BadAddress | Error::NoMemory | Error::TooManyChanges | Error::TableFull),
        ) => true,
        (
            Call::ChannelConnect,
            Some(
                Error::BadAddress | Error::NoSuchChannel | Error::TooManyChanges | Error::TableFull,
            ),
        ) => true,
        (Call::ChannelCreate | Call::ChannelConnect, None) => answer <= u64::from(u32::MAX),
        (Call::Notify, None) => answer == 0,
        (Call::Time, None) => true,
        (Call::CoreInfo, None) => answer >> 32 < 1024 && answer as u32 >= 1,
        (
            Call::SkbQuery,
            Some(Error::BadAddress | Error::TooLong | Error::NotText | Error::BadQuery),
        ) => true,
        (Call::SkbQuery, None) => answer <= arguments[3],
        (Call::ChannelState, None) => answer == 0,
        (Call::ChannelState, Some(Error::NoSuchChannel)) => true,
        // A child of its that ended (it was waited for, and is gone).
        (Call::Kill, None) => answer == 0,
        (Call::Kill, Some(Error::NoSuchProcess)) => true,
        (Call::Notify, Some(Error::NoSuchChannel)) => true,
        (Call::CapCopy, None) => slot(answer),
        (Call::CapCopy, Some(Error::TableFull | Error::TooDeep)) => true,
        // Its channels have no other end to grant to.
        (Call::CapGrant, None) => answer == 0,
        (Call::CapGrant, Some(Error::NoSuchChannel | Error::TooDeep)) => true,
        (Call::CapReceive, None) => slot(answer),
        (Call::CapReceive, Some(Error::Pending)) => true,
        (Call::CapRevoke, None) => true,
        (Call::CapDelete, None) => answer == 0,
        (Call::CapInfo, None) => {
            (CAP_SPACE..=CAP_FRAME).contains(&(answer >> 32))
                && answer & u64::from(u32::MAX) & !RIGHTS_ALL == 0
        }
        // It maps no stack for a second dispatcher: a span of it is
        // refused, whatever the core.
        (
            Call::Span,
            Some(Error::BadAddress | Error::NoSuchCore | Error::BadArgument | Error::TableFull),
        ) => true,
        (Call::FrameAlloc, None) => slot(answer),
        (Call::FrameAlloc, Some(Error::TableFull | Error::NoMemory)) => true,
        _ => false,
    }
}

fn main() -> u64 {
    let calls = match libatoll::args().trim() {
        "" => DEFAULT_CALLS,
        count => match count.parse() {
            Ok(count) => count,
            Err(_) => {
                println!("fuzz: the argument is the number of calls, not {count:?}");
                return u64::MAX;
            }
        },
    };
    let me = libatoll::pid();
    let (here, _) = libatoll::core_info();
    // Each process its own sequence, the same at every run.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D ^ (u64::from(me) << 32);
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // A writable place for `Wait`'s record, so that some waits get past the
    // address check to the capability's.
    let mut record = [0u64; 4];
    let record_at = record.as_mut_ptr() as u64;
    // Tokens of its recent changes, for `Poll`.
    let mut tokens = [0u64; 8];
    let mut recent = 0;
    let (mut errors, mut answered, mut spawned, mut wrong) = (0u64, 0u64, 0u64, 0u64);
    let started = libatoll::cycles();
    for _ in 0..calls {
        let (number, arguments) = if next() & 1 == 0 {
            // Any number; one that names a known call is that call, and
            // the waits and `Exit` are left out as `known` leaves them.
            let number = next();
            let number = match Call::from_number(number) {
                // Its number indexes `Call::ALL`: the same call, or `Null`.
                Some(call) => known(call as u64) as u64,
                None => number,
            };
            (number, [next(), next(), next(), next(), next(), next()])
        } else {
            let call = known(next());
            let (address, least) = EDGES[(next() % EDGES.len() as u64) as usize];
            let length = |limit: u64, roll: u64| match roll % 4 {
                0 => least,
                1 => limit + 1,
                2 => u64::MAX,
                _ => least + roll % 64,
            };
            let region_page = |roll: u64| REGION + 4096 * (roll % REGION_PAGES);
            let arguments = match call {
                Call::ConsoleWrite => [address, length(MAX_WRITE, next()), 0, 0, 0, 0],
                Call::Spawn => {
                    // Here (0), or a core no machine has (core 256 on,
                    // and past a core's 16 bits): never another that is
                    // there, whose kernel would report on the console each
                    // program that it does not have.
                    let core = match next() % 4 {
                        0 => 1 + 256 + next() % (1 << 16),
                        _ => 0,
                    };
                    let handed = match next() % 2 {
                        0 => NO_CAP,
                        _ => slot(next()),
                    };
                    match next() % 4 {
                        0 => [
                            NOWHERE.as_ptr() as u64,
                            NOWHERE.len() as u64,
                            NOWHERE.as_ptr() as u64,
                            0,
                            core,
                            handed,
                        ],
                        _ => [
                            address,
                            length(MAX_NAME, next()),
                            EDGES[(next() % EDGES.len() as u64) as usize].0,
                            length(MAX_ARGS, next()),
                            core,
                            handed,
                        ],
                    }
                }
                Call::Wait => {
                    let place = match next() % 2 {
                        0 => record_at,
                        _ => address,
                    };
                    [slot(next()), place, 0, 0, 0, 0]
                }
                Call::ChannelConnect => [slot(next()), region_page(next()), 0, 0, 0, 0],
                Call::SkbQuery => {
                    let (out, room) = EDGES[(next() % EDGES.len() as u64) as usize];
                    [
                        address,
                        length(MAX_QUERY, next()),
                        out,
                        room + next() % 64,
                        0,
                        0,
                    ]
                }
                Call::Map | Call::Unmap | Call::Protect | Call::ChannelCreate => {
                    let target = match next() % 4 {
                        0 => address,
                        1 => region_page(next()) + 8,
                        _ => region_page(next()),
                    };
                    let flags = match next() % 4 {
                        0 => next(),
                        roll => roll & 1,
                    };
                    match call {
                        Call::ChannelCreate => [target, flags, 0, 0, 0, 0],
                        // Its own space mostly, so that the address is
                        // what is checked.
                        _ => {
                            let space = match next() % 4 {
                                0 => slot(next()),
                                _ => SELF_SPACE,
                            };
                            // A map takes a fresh frame, or one a
                            // capability (of any kind) names.
                            let frame = match next() % 2 {
                                0 => NO_CAP,
                                _ => slot(next()),
                            };
                            [space, target, flags, frame, 0, 0]
                        }
                    }
                }
                Call::Poll => {
                    let token = match next() % 4 {
                        0 => next(),
                        _ => tokens[(next() % tokens.len() as u64) as usize],
                    };
                    [token, 0, 0, 0, 0, 0]
                }
                Call::CapCopy => {
                    // Any bits, any rights, or a few that some of its
                    // capabilities have.
                    let rights = match next() % 4 {
                        0 => next(),
                        1 => next() & RIGHTS_ALL,
                        _ => next() & (RIGHT_COPY | RIGHT_READ | RIGHT_KILL),
                    };
                    [slot(next()), rights, 0, 0, 0, 0]
                }
                Call::CapGrant => [slot(next()), slot(next()), next() & RIGHTS_ALL, 0, 0, 0],
                // Never its own space, process, dispatcher or the slot a
                // spawner hands: its heap and `pid` need the first.
                Call::CapDelete => [(HANDED + 1).max(slot(next())), 0, 0, 0, 0, 0],
                // Every other call that takes a capability takes it first;
                // the rest of the arguments are for calls that take none.
                _ => [slot(next()), next(), next(), next(), next(), next()],
            };
            // Never a kill of itself, by its own capability or a copy.
            let call = match call {
                Call::Kill if libatoll::pid_of(arguments[0]) == Ok(me) => Call::Null,
                call => call,
            };
            (call as u64, arguments)
        };
        let answer = libatoll::call_raw(number, arguments);
        let changed = [
            Call::Map,
            Call::Unmap,
            Call::Protect,
            Call::ChannelCreate,
            Call::ChannelConnect,
        ]
        .iter()
        .any(|call| *call as u64 == number);
        if changed && Error::from_return(answer).is_none() {
            tokens[recent % tokens.len()] = answer;
            recent += 1;
        }
        if !allowed(number, arguments, answer, here) {
            let [first, second, third, fourth, fifth, sixth] = arguments;
            match (fifth, sixth) {
                (0, 0) => println!(
                    "fuzz: call {number:#x}({first:#x}, {second:#x}, {third:#x}, {fourth:#x}) answered {answer:#x}"
                ),
                _ => println!(
                    "fuzz: call {number:#x}({first:#x}, {second:#x}, {third:#x}, {fourth:#x}, {fifth:#x}, {sixth:#x}) answered {answer:#x}"
                ),
            }
            wrong += 1;
        } else if number == Call::Spawn as u64 && Error::from_return(answer).is_none() {
            // Random bytes named a program: wait for the child, as its
            // parent must.
            spawned += 1;
            if libatoll::wait(answer).is_err() {
                wrong += 1;
            }
        } else if Error::from_return(answer).is_some() {
            errors += 1;
        } else {
            answered += 1;
        }
    }
    let cycles = libatoll::cycles() - started;
    println!(
        "fuzz: cycles: {cycles} in all, {} per call (TSC cycles; under TCG, the emulator's)",
        cycles / calls.max(1)
    );
    println!(
        "fuzz: {calls} calls: {errors} refused, {answered} answered, {spawned} spawned, {wrong} not as the ABI allows"
    );
    wrong
}
