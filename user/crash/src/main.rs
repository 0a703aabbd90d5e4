//! Faults as a buggy program would, as its argument says: `null` (the
//! default) reads through a null pointer, `illegal` runs an undefined
//! instruction, `protection` reads a non-canonical address (a general
//! protection fault). The kernel must end this program alone and report
//! the fault; the faulting instruction never completes.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::println;

libatoll::main!(main);

fn main() -> u64 {
    match libatoll::args() {
        "" | "null" => {
            println!("crash: reading address 0");
            let value = libatoll::read_address(0);
            println!("crash: read {value}, which it must not");
        }
        "illegal" => {
            println!("crash: running an undefined instruction");
            libatoll::undefined_instruction();
        }
        "protection" => {
            println!("crash: reading a non-canonical address");
            let value = libatoll::read_address(0x8000_0000_0000_0000);
            println!("crash: read {value}, which it must not");
        }
        other => {
            println!("crash: no such fault {other:?} (null, illegal or protection)");
            return 2;
        }
    }
    1
}
