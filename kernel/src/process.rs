//! A core's processes: loading a program of the boot image into an address
//! space of its own (frames from this core's pool), running the ready ones
//! in turn, their system calls, and clearing each away when it ends. Who
//! runs next and who waits for whom is the table's (`atoll_sched`); this
//! module is the mechanism.
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

use atoll_abi::{
    Call, EXITED, Error, ExitRecord, FAULTED, KILLED, MAX_ARGS, MAX_NAME, MAX_WRITE, STACK_PAGES,
    STACK_TOP,
};
use atoll_arch::percore::CoreLocal;
use atoll_arch::user::{self, Ended, Registers, Resume, SyscallFrame};
use atoll_monitor::process::{LIST_BYTES, ProgramEnded};
use atoll_programs::Image;
use atoll_sched::{Exit, Info, Owner, Pid, ProcessError, SpawnError, State, Table};

use crate::host::{self, Core};
use crate::programs::{self, ended_of};

const PAGE: u64 = 4096;

/// What running a process takes: its address space, and where it goes on.
pub struct Machine {
    /// Its page-directory-pointer table.
    space: u64,
    /// `None` during its turn: the turn saves where it goes on.
    next: Option<Next>,
}

enum Next {
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
    table: Table<Machine, Report>,
    /// Ends the shell waits for, by its token.
    shell_ends: Vec<(u32, Pid, Exit)>,
    next_shell_token: u32,
    /// Answers for other cores, by the monitor's token, for the host to
    /// hand its monitor.
    answers: Vec<(u32, ProgramEnded)>,
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
fn load(local: &CoreLocal, name: &str, args: &str) -> Result<Machine, SpawnFailure> {
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
fn release(local: &CoreLocal, space: u64) {
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

impl Core {
    /// Spawns the boot image's program `name` with `args` on this core, its
    /// end told as `owner` says.
    fn spawn_owned(
        &self,
        name: &str,
        args: &str,
        owner: Owner<Report>,
    ) -> Result<Pid, SpawnFailure> {
        if self.processes.borrow().table.len() >= atoll_sched::MAX_PROCESSES {
            return Err(SpawnFailure::TooManyProcesses);
        }
        let machine = load(self.local, name, args)?;
        let space = machine.space;
        let spawned = self
            .processes
            .borrow_mut()
            .table
            .spawn(name, owner, machine);
        spawned.map_err(|SpawnError::Full| {
            release(self.local, space);
            SpawnFailure::TooManyProcesses
        })
    }

    /// Spawns `name` with `args` on this core for the kernel: its end is
    /// told as `report` says.
    pub fn spawn(&self, name: &str, args: &str, report: Report) -> Result<Pid, SpawnFailure> {
        self.spawn_owned(name, args, Owner::Kernel(report))
    }

    /// Spawns `name` with `args` on this core and waits (as the shell
    /// waits: polling, running the ready processes) until it has ended.
    pub fn run_to_end(&self, name: &str, args: &str) -> Result<(Pid, Exit), SpawnFailure> {
        let token = {
            let mut processes = self.processes.borrow_mut();
            processes.next_shell_token = processes.next_shell_token.wrapping_add(1);
            processes.next_shell_token
        };
        let pid = self.spawn(name, args, Report::Shell(token))?;
        let exit = self.idle_until(|| {
            let mut processes = self.processes.borrow_mut();
            let index = processes
                .shell_ends
                .iter()
                .position(|(waited, _, _)| *waited == token)?;
            Some(processes.shell_ends.swap_remove(index).2)
        });
        Ok((pid, exit))
    }

    /// Kills process `pid` of this core, between its turns.
    pub fn kill(&self, pid: Pid) -> Result<(), ProcessError> {
        let ended = self.processes.borrow_mut().table.kill(pid)?;
        self.clear_away(ended);
        Ok(())
    }

    /// This core's processes.
    pub fn process_list(&self) -> Vec<Info> {
        self.processes.borrow().table.list()
    }

    /// This core's processes as `ps` lines, in at most [`LIST_BYTES`]: what
    /// does not fit is counted on a last line.
    pub fn process_lines(&self) -> String {
        let list = self.process_list();
        let mut text = String::new();
        for (index, info) in list.iter().enumerate() {
            let line = describe(info, self.id) + "\n";
            let after = list.len() - index - 1;
            let reserve = match after {
                0 => 0,
                more => format!("... and {more} more\n").len(),
            };
            if text.len() + line.len() + reserve > LIST_BYTES {
                text += &format!("... and {} more\n", list.len() - index);
                break;
            }
            text += &line;
        }
        text
    }

    /// Gives the core to the next ready process for one turn: until the
    /// timer takes the core back, or it yields, waits or ends. Whether one
    /// was ready.
    pub fn run_turn(&self) -> bool {
        let (pid, space, ended) = {
            let mut processes = self.processes.borrow_mut();
            let Some((pid, machine)) = processes.table.take_turn() else {
                return false;
            };
            let space = machine.space;
            let next = machine
                .next
                .take()
                .expect("a process between turns knows where it goes on");
            drop(processes);
            self.local.page_tables().switch_user_space(Some(space));
            let ended = match next {
                Next::Start {
                    entry,
                    stack,
                    arguments,
                } => user::run(entry, stack, arguments),
                Next::Saved(registers) => user::resume(&registers),
            };
            (pid, space, ended)
        };
        let exit = match ended {
            Ended::Preempted(registers) => {
                let mut processes = self.processes.borrow_mut();
                let table = &mut processes.table;
                let machine = table
                    .machine(pid)
                    .expect("a process that ran has its machine");
                debug_assert_eq!(machine.space, space);
                machine.next = Some(Next::Saved(registers));
                // A process that waits for its child stays off the queue.
                if table.state(pid) == Some(State::Running) {
                    table.preempted(pid);
                }
                return true;
            }
            Ended::ByCall { status } => Exit::Status(status),
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
        };
        let ended = self.processes.borrow_mut().table.end(pid, exit);
        self.clear_away(ended);
        self.hand_answers();
        true
    }

    /// Gives back what an ended process took, and tells whom its end
    /// concerns.
    fn clear_away(&self, ended: atoll_sched::Ended<Machine, Report>) {
        release(self.local, ended.machine.space);
        let mut processes = self.processes.borrow_mut();
        match ended.report {
            // Its parent waits for it.
            None => {}
            Some(Owner::Kernel(Report::Shell(token))) => {
                processes.shell_ends.push((token, ended.pid, ended.exit));
            }
            Some(Owner::Kernel(Report::Remote(token))) => {
                let mut answer = ended_of(ended.exit);
                answer.pid = ended.pid.0;
                processes.answers.push((token, answer));
            }
            Some(Owner::Kernel(Report::Console) | Owner::Orphan | Owner::Parent(_)) => {
                drop(processes);
                println!(
                    "atoll: core {}: process {} ({}) {}",
                    self.id,
                    ended.pid,
                    ended.name,
                    describe_exit(ended.exit, self.id)
                );
            }
        }
    }
}

/// Every system call of a process, on the core that runs it.
pub fn handle(frame: &mut SyscallFrame) -> Resume {
    let core = host::try_current().expect("a core runs processes once its kernel is set up");
    let me = core
        .processes
        .borrow()
        .table
        .running()
        .expect("a system call comes from the running process");
    let answer = match Call::from_number(frame.rax) {
        Some(Call::ConsoleWrite) => console_write(frame.rdi, frame.rsi),
        Some(Call::Exit) => return Resume::End { status: frame.rdi },
        Some(Call::Null) => Ok(0),
        Some(Call::Yield) => {
            frame.rax = 0;
            return Resume::Switch;
        }
        Some(Call::Spawn) => spawn(core, me, [frame.rdi, frame.rsi, frame.rdx, frame.r10]),
        Some(Call::Wait) => match wait(core, me, frame.rdi, frame.rsi) {
            Ok(Waited::Written) => Ok(0),
            Ok(Waited::Blocked) => return Resume::Block,
            Err(error) => Err(error),
        },
        Some(Call::Pid) => Ok(u64::from(me.0)),
        None => Err(Error::UnknownCall),
    };
    frame.rax = match answer {
        Ok(value) => value,
        Err(error) => error.to_return(),
    };
    Resume::Program
}

/// `length` bytes of the running process's memory at `address`, at most
/// `max`.
fn read_user(address: u64, length: u64, max: u64) -> Result<Vec<u8>, Error> {
    if length > max {
        return Err(Error::TooLong);
    }
    let mut bytes = vec![0u8; length as usize];
    let tables = atoll_arch::percore::current().page_tables();
    user::copy_from_user(tables, address, &mut bytes).map_err(|_| Error::BadAddress)?;
    Ok(bytes)
}

fn console_write(address: u64, length: u64) -> Result<u64, Error> {
    let bytes = read_user(address, length, MAX_WRITE)?;
    atoll_arch::serial::CONSOLE.write_bytes(&bytes);
    Ok(length)
}

fn spawn(
    core: &Core,
    parent: Pid,
    [name, name_length, args, args_length]: [u64; 4],
) -> Result<u64, Error> {
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| Error::NotText);
    let name = text(read_user(name, name_length, MAX_NAME)?)?;
    let args = text(read_user(args, args_length, MAX_ARGS)?)?;
    match core.spawn_owned(&name, &args, Owner::Parent(parent)) {
        Ok(pid) => Ok(u64::from(pid.0)),
        Err(SpawnFailure::NoSuchProgram) => Err(Error::NoSuchProgram),
        Err(SpawnFailure::TooManyProcesses) => Err(Error::TooManyProcesses),
        Err(SpawnFailure::NotLoaded(why)) => {
            println!(
                "atoll: core {}: process {parent}: spawn {name}: {why}",
                core.id
            );
            Err(Error::NotLoaded)
        }
    }
}

/// What a `wait` did.
enum Waited {
    /// The child had ended: its record is written.
    Written,
    /// It has not: the caller now waits for it.
    Blocked,
}

fn wait(core: &Core, me: Pid, child: u64, record: u64) -> Result<Waited, Error> {
    let tables = core.local.page_tables();
    // The record's place is checked before the child is forgotten, so that
    // a bad one loses nothing.
    user::copy_to_user(tables, record, &ExitRecord::default().to_bytes())
        .map_err(|_| Error::BadAddress)?;
    let child = u32::try_from(child).map_err(|_| Error::NoSuchProcess)?;
    let mut processes = core.processes.borrow_mut();
    let exit = match processes.table.wait(me, Pid(child)) {
        Ok(Some(exit)) => exit,
        Ok(None) => {
            processes.table.blocked(me, Pid(child));
            return Ok(Waited::Blocked);
        }
        Err(ProcessError::NotAChild) => return Err(Error::NotAChild),
        Err(_) => return Err(Error::NoSuchProcess),
    };
    let written = match exit {
        Exit::Status(status) => ExitRecord {
            kind: EXITED,
            value: status,
            ..ExitRecord::default()
        },
        Exit::Fault {
            vector,
            rip,
            address,
            ..
        } => ExitRecord {
            kind: FAULTED,
            value: vector,
            rip,
            address,
        },
        Exit::Killed => ExitRecord {
            kind: KILLED,
            ..ExitRecord::default()
        },
    };
    user::copy_to_user(tables, record, &written.to_bytes()).map_err(|_| Error::BadAddress)?;
    Ok(Waited::Written)
}
