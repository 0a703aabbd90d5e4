//! A core's processes, the mechanism: loading a program of the boot image
//! into an address space of its own (frames from this core's pool), what
//! each needs to run and go on, and clearing it away when it ends. Who runs
//! next and who waits for whom is the table's (`atoll_sched`); taking turns
//! and the system calls are `dispatch`'s.
//!
//! Each process has its own address space: a page-directory-pointer table
//! that the user range of the core's tables maps while it runs
//! (`PageTables::switch_user_space`). A turn runs a process until the
//! timer's tick (or a wake-up) takes the core back, or it yields, waits or
//! ends; between turns the core's monitor polls its rings (`Core::idle_until`).
//!
//! What a process may do is the ABI's (`atoll_abi`). Its addresses are
//! checked before the kernel reads or writes a byte
//! (`atoll_arch::user::copy_from_user`, `copy_to_user`), and any error is
//! a code back to it, never a fault of the kernel's. A fault of its own (a
//! page it does not have, an illegal instruction, a protection fault) ends
//! it alone.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use atoll_abi::{STACK_PAGES, STACK_TOP};
use atoll_arch::percore::CoreLocal;
use atoll_arch::user::Registers;
use atoll_monitor::process::ProgramEnded;
use atoll_programs::Image;
use atoll_sched::{Exit, Info, Pid, Table};

use crate::programs;

const PAGE: u64 = 4096;

/// What running a process takes: its address space, and where it goes on.
pub struct Machine {
    /// Its page-directory-pointer table.
    pub space: u64,
    /// `None` during its turn: the turn saves where it goes on.
    pub next: Option<Next>,
}

pub enum Next {
    /// It has not run yet: its entry point, stack, and its arguments' place
    /// and length (its first two argument registers).
    Start {
        entry: u64,
        stack: u64,
        arguments: [u64; 2],
    },
    /// It goes on from these registers.
    Saved(Registers),
}

/// Whom the kernel tells of a process's end, when no parent process waits
/// for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// A line on the console (`spawn`).
    Console,
    /// The shell on this core, which waits for it (`run`), by its token.
    Shell(u32),
    /// Another core, which asked by message: the monitor's token.
    Remote(u32),
}

/// This core's processes, and the ends not yet handed to who waits.
pub struct Processes {
    pub table: Table<Machine, Report>,
    /// Ends the shell waits for, by its token.
    pub shell_ends: Vec<(u32, Pid, Exit)>,
    pub next_shell_token: u32,
    /// Answers for other cores, by the monitor's token, for the host to
    /// hand its monitor.
    pub answers: Vec<(u32, ProgramEnded)>,
}

impl Processes {
    pub fn new(core: usize) -> Self {
        Self {
            table: Table::new(core as u16),
            shell_ends: Vec::new(),
            next_shell_token: 0,
            answers: Vec::new(),
        }
    }

    /// The answers for other cores that ends produced since the last call.
    pub fn take_answers(&mut self) -> Vec<(u32, ProgramEnded)> {
        core::mem::take(&mut self.answers)
    }
}

/// Why a program could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnFailure {
    NoSuchProgram,
    /// A bad image or no memory for it, in words.
    NotLoaded(String),
    TooManyProcesses,
}

impl core::fmt::Display for SpawnFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpawnFailure::NoSuchProgram => f.write_str("no such program in the boot image"),
            SpawnFailure::NotLoaded(why) => f.write_str(why),
            SpawnFailure::TooManyProcesses => write!(
                f,
                "the core runs as many processes as it holds ({})",
                atoll_sched::MAX_PROCESSES
            ),
        }
    }
}

/// Loads the boot image's program `name` into a new address space, with
/// `args` at the top of its stack. The user range maps what it mapped
/// before when this returns.
pub fn load(local: &CoreLocal, name: &str, args: &str) -> Result<Machine, SpawnFailure> {
    let archive = programs::archive().map_err(SpawnFailure::NotLoaded)?;
    let program = archive.find(name).ok_or(SpawnFailure::NoSuchProgram)?;
    let image = Image::parse(program.file)
        .map_err(|error| SpawnFailure::NotLoaded(format!("{name} cannot be loaded: {error}")))?;
    let stack_bottom = STACK_TOP - STACK_PAGES * PAGE;
    if image
        .segments
        .iter()
        .any(|segment| segment.pages().end > stack_bottom)
    {
        return Err(SpawnFailure::NotLoaded(format!(
            "{name}: a segment reaches into the stack"
        )));
    }
    let no_memory = || SpawnFailure::NotLoaded(format!("no free frame for {name}"));
    let space = local.allocate_filled_frame(0).ok_or_else(no_memory)?;
    let tables = local.page_tables();
    let before = tables.user_space();
    tables.switch_user_space(Some(space));
    let add = |page: u64, bytes: &[u8], writable: bool, executable: bool| {
        let frame = local.allocate_frame_holding(bytes).ok_or_else(no_memory)?;
        tables
            .map_user(page, frame, writable, executable, &mut || {
                local.allocate_filled_frame(0)
            })
            .map_err(|error| {
                local.free_frame(frame);
                SpawnFailure::NotLoaded(format!("{name}: cannot map {page:#x}: {error}"))
            })
    };
    let mapped = || -> Result<(), SpawnFailure> {
        for segment in &image.segments {
            let file = &program.file[segment.file.clone()];
            for (index, page) in segment.pages().step_by(PAGE as usize).enumerate() {
                let from = (index * PAGE as usize).min(file.len());
                let to = (from + PAGE as usize).min(file.len());
                add(page, &file[from..to], segment.writable, segment.executable)?;
            }
        }
        for page in (stack_bottom..STACK_TOP - PAGE).step_by(PAGE as usize) {
            add(page, &[], true, false)?;
        }
        // The arguments end the stack's top page.
        let mut top = vec![0u8; PAGE as usize];
        top[PAGE as usize - args.len()..].copy_from_slice(args.as_bytes());
        add(STACK_TOP - PAGE, &top, true, false)
    };
    let outcome = mapped();
    tables.switch_user_space(before);
    if let Err(failure) = outcome {
        release(local, space);
        return Err(failure);
    }
    let arguments_at = STACK_TOP - args.len() as u64;
    Ok(Machine {
        space,
        next: Some(Next::Start {
            entry: image.entry,
            // As a call would leave it: 8 bytes off a 16-byte boundary.
            stack: (arguments_at & !15) - 8,
            arguments: [arguments_at, args.len() as u64],
        }),
    })
}

/// Gives back every frame of the address space `space`.
pub fn release(local: &CoreLocal, space: u64) {
    local
        .page_tables()
        .release_user_space(space, &mut |frame| local.free_frame(frame));
}

/// How a process ended, in words.
pub fn describe_exit(exit: Exit, core: usize) -> String {
    match exit {
        Exit::Status(status) => format!("exited with status {status}"),
        Exit::Killed => String::from("was killed"),
        Exit::Fault {
            vector,
            error_code,
            rip,
            address,
        } => format!(
            "killed on core {core}: exception {vector} ({}) error {error_code:#x} rip {rip:#x} addr {address:#x}",
            atoll_arch::idt::exception_name(vector)
        ),
    }
}

/// A line of `ps` for `info`, a process of core `core`.
pub fn describe(info: &Info, core: usize) -> String {
    let parent = match info.parent {
        Some(parent) => parent.to_string(),
        None => String::from("-"),
    };
    format!(
        "{:>8} {:>6} {:<12} {:>4} {:>7} {}",
        info.pid.0, parent, info.name, core, info.turns, info.state
    )
}

/// The header over [`describe`]'s lines.
pub const LIST_HEADER: &str = "     pid parent program      core   turns state";
