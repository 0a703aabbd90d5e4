//! Makes system calls with random numbers and arguments (xorshift, a fixed
//! seed, so a run repeats), and checks that each answer is one the ABI
//! allows: an error it defines for that call, or the value it promises.
//! The count is its argument (100,000 without one). Half the calls take a
//! random number and random arguments; the others take a known call (but
//! `Exit`, or the first would end it) with arguments aimed at the edges of
//! what the kernel must refuse: the ends of the user range, the kernel's
//! memory, ranges that wrap around, lengths just past the limit, process
//! ids that are not its children. Exits with the number of answers the ABI
//! does not allow.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::{
    Call, Error, MAX_ARGS, MAX_NAME, MAX_QUERY, MAX_WRITE, STACK_TOP, USER_START, println,
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

/// The known call a roll picks: any of the ABI's (so a new one is fuzzed
/// too) but `Exit`, which would end the fuzzer, and `WaitNotify`, which
/// would wait for ever (nobody notifies it): `Null` stands in for those.
fn known(roll: u64) -> Call {
    match Call::ALL[(roll % Call::ALL.len() as u64) as usize] {
        Call::Exit | Call::WaitNotify => Call::Null,
        call => call,
    }
}

/// Pages its maps and unmaps aim at: its own, away from its image and
/// stack (an unmap of those would end it, as the ABI allows).
const REGION: u64 = USER_START + (1 << 37);
const REGION_PAGES: u64 = 8;

/// Whether `answer` is one the ABI allows for call `number` with these
/// arguments, from process `me`.
fn allowed(number: u64, arguments: [u64; 4], answer: u64, me: u32) -> bool {
    let error = Error::from_return(answer);
    let Some(call) = Call::from_number(number) else {
        return error == Some(Error::UnknownCall);
    };
    match (call, error) {
        (Call::ConsoleWrite, Some(Error::BadAddress | Error::TooLong)) => true,
        (Call::ConsoleWrite, None) => answer == arguments[1] && arguments[1] <= MAX_WRITE,
        (Call::Null | Call::Yield, None) => answer == 0,
        (Call::Pid, None) => answer == u64::from(me),
        (
            Call::Spawn,
            Some(
                Error::BadAddress
                | Error::TooLong
                | Error::NotText
                | Error::NoSuchProgram
                | Error::NotLoaded
                | Error::TooManyProcesses,
            ),
        ) => true,
        // No child of the fuzzer exists to wait for: it spawns none that
        // lives (a spawn that succeeded would be waited for at once).
        (Call::Wait, Some(Error::BadAddress | Error::NoSuchProcess | Error::NotAChild)) => true,
        (Call::Map, Some(Error::BadAddress | Error::BadArgument | Error::NoMemory)) => true,
        (Call::Map | Call::Unmap, Some(Error::TooManyChanges)) => true,
        // A channel's page cannot be unmapped.
        (Call::Unmap, Some(Error::BadAddress | Error::BadArgument)) => true,
        (Call::Map | Call::Unmap, None) => answer <= u64::from(u32::MAX),
        (Call::Poll, None) => answer == 0,
        (Call::Poll, Some(Error::Refused | Error::Pending | Error::NoSuchToken)) => true,
        (Call::WaitEvent, None) => answer == 0,
        (Call::WaitEvent, Some(Error::NoSuchToken)) => true,
        // It runs on one core: dispatcher 0 of 1.
        (Call::Dispatcher, None) => answer == 1,
        // Any hash is a hash.
        (Call::SpaceHash, _) => true,
        (
            Call::ChannelCreate,
            Some(Error::BadAddress | Error::NoMemory | Error::TooManyChanges),
        ) => true,
        (
            Call::ChannelConnect,
            Some(Error::BadAddress | Error::NoSuchChannel | Error::TooManyChanges),
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
        // It has no child to kill.
        (Call::Kill, Some(Error::NoSuchProcess | Error::NotAChild)) => true,
        (Call::Notify, Some(Error::NoSuchChannel)) => true,
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
    // Each process its own sequence, the same at every run.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D ^ (u64::from(me) << 32);
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // A writable place for `Wait`'s record, so that some waits get past the
    // address check to the process id's.
    let mut record = [0u64; 4];
    let record_at = record.as_mut_ptr() as u64;
    // Tokens of its recent changes, for `Poll`.
    let mut tokens = [0u64; 8];
    let mut recent = 0;
    let (mut errors, mut answered, mut spawned, mut wrong) = (0u64, 0u64, 0u64, 0u64);
    let started = libatoll::cycles();
    for _ in 0..calls {
        let (number, arguments) = if next() & 1 == 0 {
            let number = match next() {
                number if number == Call::Exit as u64 || number == Call::WaitNotify as u64 => {
                    Call::Null as u64
                }
                number => number,
            };
            (number, [next(), next(), next(), next()])
        } else {
            let call = known(next());
            let (address, least) = EDGES[(next() % EDGES.len() as u64) as usize];
            let length = |limit: u64, roll: u64| match roll % 4 {
                0 => least,
                1 => limit + 1,
                2 => u64::MAX,
                _ => least + roll % 64,
            };
            let arguments = match call {
                Call::ConsoleWrite => [address, length(MAX_WRITE, next()), 0, 0],
                Call::Spawn => [
                    address,
                    length(MAX_NAME, next()),
                    EDGES[(next() % EDGES.len() as u64) as usize].0,
                    length(MAX_ARGS, next()),
                ],
                Call::Wait | Call::Kill => {
                    // Its own id, another core's, a random one, or 0.
                    let pid = match next() % 4 {
                        0 => u64::from(me),
                        1 => u64::from(me ^ 1),
                        2 => next() & 0xFFFF_FFFF,
                        _ => 0,
                    };
                    let place = match next() % 2 {
                        0 => record_at,
                        _ => address,
                    };
                    [pid, place, 0, 0]
                }
                Call::ChannelConnect => {
                    let pid = match next() % 2 {
                        0 => u64::from(me),
                        _ => next() & 0xFFFF_FFFF,
                    };
                    [
                        pid,
                        next() & !0xFFF,
                        REGION + 4096 * (next() % REGION_PAGES),
                        0,
                    ]
                }
                Call::Notify | Call::ChannelState => {
                    [REGION + 4096 * (next() % REGION_PAGES), 0, 0, 0]
                }
                Call::SkbQuery => {
                    let (out, room) = EDGES[(next() % EDGES.len() as u64) as usize];
                    [address, length(MAX_QUERY, next()), out, room + next() % 64]
                }
                Call::Map | Call::Unmap | Call::ChannelCreate => {
                    let target = match next() % 4 {
                        0 => address,
                        1 => REGION + 4096 * (next() % REGION_PAGES) + 8,
                        _ => REGION + 4096 * (next() % REGION_PAGES),
                    };
                    let flags = match next() % 4 {
                        0 => next(),
                        roll => roll & 1,
                    };
                    [target, flags, 0, 0]
                }
                Call::Poll => {
                    let token = match next() % 4 {
                        0 => next(),
                        _ => tokens[(next() % tokens.len() as u64) as usize],
                    };
                    [token, 0, 0, 0]
                }
                _ => [next(), next(), next(), next()],
            };
            (call as u64, arguments)
        };
        let answer = libatoll::call_raw(number, arguments);
        let changed = [
            Call::Map,
            Call::Unmap,
            Call::ChannelCreate,
            Call::ChannelConnect,
        ]
        .iter()
        .any(|call| *call as u64 == number);
        if changed && Error::from_return(answer).is_none() {
            tokens[recent % tokens.len()] = answer;
            recent += 1;
        }
        if !allowed(number, arguments, answer, me) {
            println!(
                "fuzz: call {number:#x}({:#x}, {:#x}, {:#x}, {:#x}) answered {answer:#x}",
                arguments[0], arguments[1], arguments[2], arguments[3]
            );
            wrong += 1;
        } else if number == Call::Spawn as u64 && Error::from_return(answer).is_none() {
            // Random bytes named a program: wait for the child, as its
            // parent must.
            spawned += 1;
            if libatoll::wait(answer as u32).is_err() {
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
