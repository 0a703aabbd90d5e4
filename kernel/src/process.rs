//! Running a program from the boot image on this core: loading its image
//! into user pages of this core's tables (frames from its own pool), a
//! stack, entering it, its system calls, and clearing it all away when it
//! ends. One program at a time, on the core that runs it, to its end; at
//! each timer tick the core goes back to the kernel for a while, so that
//! its monitor keeps serving the other cores.
//!
//! What a program may do is the ABI's (`atoll_abi`): print on the console
//! and exit. Its addresses are checked before the kernel reads a byte
//! (`atoll_arch::user::copy_from_user`), and any error is a code back to
//! it, never a fault of the kernel's. A fault of its own (a page it does
//! not have, an illegal instruction, a protection fault) ends it alone.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use atoll_abi::{Call, Error, MAX_WRITE, STACK_PAGES, STACK_TOP};
use atoll_arch::percore::CoreLocal;
use atoll_arch::user::{self, Ended, Resume, SyscallFrame};
use atoll_programs::{Image, Program};

const PAGE: u64 = 4096;

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit` with this status.
    Status(u64),
    /// It took this exception, at `rip` (for a page fault, at `address`).
    Fault {
        vector: u64,
        error_code: u64,
        rip: u64,
        address: u64,
    },
}

/// The frames a program's pages are in, to give back when it ends.
struct Pages<'a> {
    local: &'a CoreLocal,
    mapped: Vec<u64>,
}

impl Pages<'_> {
    /// Maps a fresh zeroed frame at `page`, with `bytes` at its start.
    fn add(
        &mut self,
        page: u64,
        bytes: &[u8],
        writable: bool,
        executable: bool,
    ) -> Result<(), String> {
        let frame = self
            .local
            .allocate_frame_holding(bytes)
            .ok_or_else(|| String::from("no free frame for the program"))?;
        let tables = self.local.page_tables();
        if let Err(error) = tables.map_user(page, frame, writable, executable, &mut || {
            self.local.allocate_filled_frame(0)
        }) {
            self.local.free_frame(frame);
            return Err(format!("cannot map {page:#x}: {error}"));
        }
        self.mapped.push(page);
        Ok(())
    }
}

impl Drop for Pages<'_> {
    /// Unmaps every page of the program and gives its frames back (its
    /// page tables stay, empty, for the next program).
    fn drop(&mut self) {
        let tables = self.local.page_tables();
        for &page in &self.mapped {
            match tables.unmap(page) {
                Ok(frame) => self.local.free_frame(frame),
                Err(error) => println!(
                    "atoll: core {}: cannot unmap a program's page: {error}",
                    self.local.id
                ),
            }
        }
    }
}

/// Loads `program` on this core, runs it to its end, and clears it away.
/// Each time the core's timer (or a wake-up) takes the core back from it,
/// `between` runs (the core's monitor polls its rings), then the program
/// goes on.
pub fn run(
    local: &CoreLocal,
    program: &Program<'_>,
    between: &mut dyn FnMut(),
) -> Result<Exit, String> {
    let image = Image::parse(program.file)
        .map_err(|error| format!("{} cannot be loaded: {error}", program.name))?;
    let stack_bottom = STACK_TOP - STACK_PAGES * PAGE;
    if image
        .segments
        .iter()
        .any(|segment| segment.pages().end > stack_bottom)
    {
        return Err(format!(
            "{}: a segment reaches into the stack",
            program.name
        ));
    }
    let mut pages = Pages {
        local,
        mapped: Vec::new(),
    };
    for segment in &image.segments {
        let file = &program.file[segment.file.clone()];
        for (index, page) in segment.pages().step_by(PAGE as usize).enumerate() {
            let from = (index * PAGE as usize).min(file.len());
            let to = (from + PAGE as usize).min(file.len());
            pages.add(page, &file[from..to], segment.writable, segment.executable)?;
        }
    }
    for page in (stack_bottom..STACK_TOP).step_by(PAGE as usize) {
        pages.add(page, &[], true, false)?;
    }
    let mut ended = user::run(image.entry, STACK_TOP);
    while ended == Ended::Preempted {
        between();
        ended = user::resume();
    }
    drop(pages);
    Ok(match ended {
        Ended::ByCall { status } => Exit::Status(status),
        Ended::Preempted => unreachable!("a preempted program is resumed above"),
        Ended::ByFault {
            vector,
            error_code,
            rip,
            address,
        } => Exit::Fault {
            vector,
            error_code,
            rip,
            address,
        },
    })
}

/// Every system call of a program, on the core that runs it.
pub fn handle(frame: &mut SyscallFrame) -> Resume {
    let answer = match Call::from_number(frame.rax) {
        Some(Call::ConsoleWrite) => console_write(frame.rdi, frame.rsi),
        Some(Call::Exit) => return Resume::End { status: frame.rdi },
        Some(Call::Null) => Ok(0),
        None => Err(Error::UnknownCall),
    };
    frame.rax = match answer {
        Ok(value) => value,
        Err(error) => error.to_return(),
    };
    Resume::Program
}

fn console_write(address: u64, length: u64) -> Result<u64, Error> {
    if length > MAX_WRITE {
        return Err(Error::TooLong);
    }
    let mut bytes = vec![0u8; length as usize];
    let tables = atoll_arch::percore::current().page_tables();
    user::copy_from_user(tables, address, &mut bytes).map_err(|_| Error::BadAddress)?;
    atoll_arch::serial::CONSOLE.write_bytes(&bytes);
    Ok(length)
}
