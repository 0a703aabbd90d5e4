//! Makes system calls the kernel must refuse, and checks each refusal:
//! an unknown call, a write from the kernel's memory, from an address no
//! program has, straddling the end of its pages, and one too long. Exits
//! with the number of answers that were not the expected error.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::{Error, println};

libatoll::main!(main);

fn main() -> u64 {
    let page_end = libatoll::STACK_TOP;
    let cases: [(&str, u64, u64, u64, Error); 5] = [
        ("unknown call", 77, 0, 0, Error::UnknownCall),
        ("kernel address", 0, 0x20_0000, 16, Error::BadAddress),
        ("no program's address", 0, 0x10, 16, Error::BadAddress),
        ("past its stack", 0, page_end - 8, 16, Error::BadAddress),
        (
            "too long",
            0,
            page_end - 16,
            libatoll::MAX_WRITE + 1,
            Error::TooLong,
        ),
    ];
    let mut wrong = 0;
    for (name, number, address, length, expected) in cases {
        let answer = libatoll::call_raw(number, [address, length, 0, 0]);
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
