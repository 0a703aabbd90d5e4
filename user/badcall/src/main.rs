//! Makes system calls the kernel must refuse, and checks each refusal:
//! an unknown call, a write from the kernel's memory, from an address no
//! program has, straddling the end of its pages, and one too long; a kill
//! by a capability it does not have, and a map by one of the wrong type
//! (its process's, not its space's). Exits with the number of answers that
//! were not the expected error.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::{Call, Error, MAX_CAPS, SELF_PROCESS, USER_START, println};

libatoll::main!(main);

fn main() -> u64 {
    let page_end = libatoll::STACK_TOP;
    let write = Call::ConsoleWrite as u64;
    let cases: [(&str, u64, u64, u64, Error); 7] = [
        ("unknown call", 77, 0, 0, Error::UnknownCall),
        ("kernel address", write, 0x20_0000, 16, Error::BadAddress),
        ("no program's address", write, 0x10, 16, Error::BadAddress),
        ("past its stack", write, page_end - 8, 16, Error::BadAddress),
        (
            "too long",
            write,
            page_end - 16,
            libatoll::MAX_WRITE + 1,
            Error::TooLong,
        ),
        (
            "a capability it has not",
            Call::Kill as u64,
            MAX_CAPS,
            0,
            Error::NoSuchCapability,
        ),
        (
            "a capability of the wrong type",
            Call::Map as u64,
            SELF_PROCESS,
            USER_START + (1 << 36),
            Error::WrongCapability,
        ),
    ];
    let mut wrong = 0;
    for (name, number, first, second, expected) in cases {
        let answer = libatoll::call_raw(number, [first, second, 0, 0, 0, 0]);
        let got = Error::from_return(answer);
        if got == Some(expected) {
            println!("badcall: {name}: refused with {expected:?}");
        } else {
            println!("badcall: {name}: answered {answer:#x}, not {expected:?}");
            wrong += 1;
        }
    }
    wrong
}
