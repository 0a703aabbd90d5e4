//! A core's processes: their table, who runs next, how they end and who
//! hears of it. Bookkeeping only, so that it is tested on the host: the
//! kernel keeps what running a process takes (its address space and
//! registers: the `M` each entry holds) and runs them, and tells the table
//! what happened.
//!
//! Each core has its own table and hands out its own process ids, with its
//! id in their low bits ([`Pid`]): no core asks another for one, and any
//! core can tell from an id which core to ask about it.
//!
//! The policy is round robin: [`Table::take_turn`] gives the turn to the process that has
//! waited longest to run, and one the timer took the core from, or that
//! yielded, goes to the back. A process that waits for its child is off
//! the queue until the child ends.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The bits of a process id that name its core.
pub const CORE_BITS: u32 = 10;
/// The most processes one core holds at once, ended ones not yet waited
/// for included.
pub const MAX_PROCESSES: usize = 64;

/// A process id: a core's own count in the high bits, the core in the
/// low [`CORE_BITS`]. Never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub u32);

impl Pid {
    /// The core that runs (or ran) the process.
    pub fn core(self) -> u16 {
        (self.0 & ((1 << CORE_BITS) - 1)) as u16
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit` with this status.
    Status(u64),
    /// It (one of its dispatchers, on `core`) took this exception, at
    /// `rip` (for a page fault, at `address`).
    Fault {
        core: u16,
        vector: u64,
        error_code: u64,
        rip: u64,
        address: u64,
    },
    /// It was killed.
    Killed,
}

/// Who hears of a process's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner<R> {
    /// The process that spawned it, which waits for it (`wait`); until it
    /// does, the ended process stays in the table with its exit.
    Parent(Pid),
    /// The kernel, for whoever asked it to spawn the process (the shell, or
    /// another core): `R` says whom to tell.
    Kernel(R),
    /// Nobody: its parent ended first. Its end is reported on the console.
    Orphan,
}

/// Where a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet: it waits for the other cores it spans to join.
    Held,
    /// Waiting for its turn.
    Ready,
    /// On the core now.
    Running,
    /// Waiting for its child to end.
    Waiting(Pid),
    /// Waiting for an event: one of its changes (a map, an unmap) to end, a
    /// notification, or another core's answer.
    Blocked,
    /// Ended; its parent has not waited for it yet.
    Ended(Exit),
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Held => write!(f, "joining"),
            State::Ready => write!(f, "ready"),
            State::Running => write!(f, "running"),
            State::Waiting(child) => write!(f, "waiting for {child}"),
            State::Blocked => write!(f, "waiting for an event"),
            State::Ended(Exit::Status(status)) => write!(f, "exited {status}"),
            State::Ended(Exit::Fault { vector, .. }) => write!(f, "faulted ({vector})"),
            State::Ended(Exit::Killed) => write!(f, "killed"),
        }
    }
}

/// Why a process could not be spawned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// The core holds [`MAX_PROCESSES`] already.
    Full,
}

/// Why a wait or a kill did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessError {
    /// No process of this core has the id (or it ended and was reaped).
    NoSuchProcess,
    /// The process waited for is not the waiter's child.
    NotAChild,
    /// It has ended already (a kill).
    Ended,
    /// It is on the core now: the kernel kills only between its turns.
    Running,
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProcessError::NoSuchProcess => "no such process",
            ProcessError::NotAChild => "not a child of the waiter",
            ProcessError::Ended => "it has ended already",
            ProcessError::Running => "it is running",
        })
    }
}

/// One process, as [`Table::list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub pid: Pid,
    pub name: String,
    pub state: State,
    /// Its parent, if a process spawned it and has not ended.
    pub parent: Option<Pid>,
    /// How many turns it has had on the core.
    pub turns: u64,
}

/// A process that has ended, for the kernel to clear away and report.
#[derive(Debug, PartialEq, Eq)]
pub struct Ended<M, R> {
    pub pid: Pid,
    pub name: String,
    pub exit: Exit,
    /// What running it took, to give back (its address space).
    pub machine: M,
    /// Whom to tell: `Some(Owner::Kernel(..))` or `Some(Owner::Orphan)`;
    /// `None` when its parent waits for it ([`Table::wait`] reports it).
    pub report: Option<Owner<R>>,
}

struct Entry<M, R> {
    name: String,
    owner: Owner<R>,
    state: State,
    /// `None` once it has ended (given back with [`Ended`]).
    machine: Option<M>,
    turns: u64,
}

/// The processes of one core.
pub struct Table<M, R> {
    core: u16,
    /// The count the next id is made from.
    next: u32,
    entries: BTreeMap<Pid, Entry<M, R>>,
    ready: VecDeque<Pid>,
}

impl<M, R: Clone> Table<M, R> {
    /// The empty table of core `core` (below `1 << CORE_BITS`).
    pub fn new(core: u16) -> Self {
        assert!(
            u32::from(core) < 1 << CORE_BITS,
            "core {core} does not fit in a process id"
        );
        Self {
            core,
            next: 1,
            entries: BTreeMap::new(),
            ready: VecDeque::new(),
        }
    }

    /// Adds a process, ready to run, with what running it takes.
    pub fn spawn(&mut self, name: &str, owner: Owner<R>, machine: M) -> Result<Pid, SpawnError> {
        let pid = self.spawn_held(name, owner, machine)?;
        self.start(pid);
        Ok(pid)
    }

    /// Adds a process that waits for [`start`](Self::start) to run.
    pub fn spawn_held(
        &mut self,
        name: &str,
        owner: Owner<R>,
        machine: M,
    ) -> Result<Pid, SpawnError> {
        if self.entries.len() >= MAX_PROCESSES {
            return Err(SpawnError::Full);
        }
        let pid = loop {
            let pid = Pid((self.next << CORE_BITS) | u32::from(self.core));
            // The count wraps past 2^22 processes; ids still in use are skipped.
            self.next = match self.next.wrapping_add(1) & ((1 << (32 - CORE_BITS)) - 1) {
                0 => 1,
                next => next,
            };
            if !self.entries.contains_key(&pid) {
                break pid;
            }
        };
        self.insert_held(pid, name, owner, machine);
        Ok(pid)
    }

    /// Adds a dispatcher of another core's process `pid` (whose id that
    /// core gave it), held until [`start`](Self::start).
    pub fn adopt(
        &mut self,
        pid: Pid,
        name: &str,
        owner: Owner<R>,
        machine: M,
    ) -> Result<(), SpawnError> {
        if self.entries.len() >= MAX_PROCESSES || self.entries.contains_key(&pid) {
            return Err(SpawnError::Full);
        }
        self.insert_held(pid, name, owner, machine);
        Ok(())
    }

    fn insert_held(&mut self, pid: Pid, name: &str, owner: Owner<R>, machine: M) {
        self.entries.insert(
            pid,
            Entry {
                name: String::from(name),
                owner,
                state: State::Held,
                machine: Some(machine),
                turns: 0,
            },
        );
    }

    /// A held process may run: it is ready.
    pub fn start(&mut self, pid: Pid) {
        if let Some(entry) = self.entries.get_mut(&pid)
            && entry.state == State::Held
        {
            entry.state = State::Ready;
            self.ready.push_back(pid);
        }
    }

    /// The process whose turn it is, now running, with what running it
    /// takes; `None` if none is ready.
    pub fn take_turn(&mut self) -> Option<(Pid, &mut M)> {
        let pid = self.ready.pop_front()?;
        let entry = self
            .entries
            .get_mut(&pid)
            .expect("the ready queue holds only processes of the table");
        entry.state = State::Running;
        entry.turns += 1;
        let machine = entry
            .machine
            .as_mut()
            .expect("a process that has not ended keeps its machine");
        Some((pid, machine))
    }

    /// What running `pid` takes, while it has not ended.
    pub fn machine(&mut self, pid: Pid) -> Option<&mut M> {
        self.entries.get_mut(&pid)?.machine.as_mut()
    }

    /// What running each process that has not ended takes.
    pub fn machines(&mut self) -> impl Iterator<Item = (Pid, &mut M)> {
        self.entries
            .iter_mut()
            .filter_map(|(pid, entry)| Some((*pid, entry.machine.as_mut()?)))
    }

    /// Where `pid` is, if the table holds it.
    pub fn state(&self, pid: Pid) -> Option<State> {
        self.entries.get(&pid).map(|entry| entry.state)
    }

    /// The running process, if any.
    pub fn running(&self) -> Option<Pid> {
        self.entries
            .iter()
            .find(|(_, entry)| entry.state == State::Running)
            .map(|(&pid, _)| pid)
    }

    /// Whether any process is ready to run.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The running process `pid` gave the core back (the timer, a wake-up,
    /// `yield`): its turn comes again after the others'.
    pub fn preempted(&mut self, pid: Pid) {
        let entry = self.running_entry(pid);
        entry.state = State::Ready;
        self.ready.push_back(pid);
    }

    /// The running process `pid` waits for its child `child`, which has not
    /// ended ([`wait`](Self::wait) said so).
    pub fn blocked(&mut self, pid: Pid, child: Pid) {
        self.running_entry(pid).state = State::Waiting(child);
    }

    /// `parent`'s child `child`, on another core, has ended: if `parent`
    /// waits for it, it is ready.
    pub fn wake_waiting(&mut self, parent: Pid, child: Pid) {
        if let Some(entry) = self.entries.get_mut(&parent)
            && entry.state == State::Waiting(child)
        {
            entry.state = State::Ready;
            self.ready.push_back(parent);
        }
    }

    /// The process that spawned `pid`, if one did and has not ended.
    pub fn parent_of(&self, pid: Pid) -> Option<Pid> {
        match self.entries.get(&pid)?.owner {
            Owner::Parent(parent) => Some(parent),
            _ => None,
        }
    }

    /// The running process `pid` waits until one of its changes ends
    /// ([`wake`](Self::wake)).
    pub fn block(&mut self, pid: Pid) {
        self.running_entry(pid).state = State::Blocked;
    }

    /// One of `pid`'s changes ended: if it waits for one, it is ready.
    pub fn wake(&mut self, pid: Pid) {
        if let Some(entry) = self.entries.get_mut(&pid)
            && entry.state == State::Blocked
        {
            entry.state = State::Ready;
            self.ready.push_back(pid);
        }
    }

    fn running_entry(&mut self, pid: Pid) -> &mut Entry<M, R> {
        let entry = self
            .entries
            .get_mut(&pid)
            .expect("the kernel reports only processes of the table");
        assert_eq!(entry.state, State::Running, "process {pid} is not running");
        entry
    }

    /// Process `pid` (running, or between turns) has ended with `exit`.
    /// Its parent, if it waits for it, is ready again; its children have no
    /// parent now, and those that ended are reaped.
    pub fn end(&mut self, pid: Pid, exit: Exit) -> Ended<M, R> {
        let entry = self
            .entries
            .get_mut(&pid)
            .expect("the kernel ends only processes of the table");
        assert!(
            !matches!(entry.state, State::Ended(_)),
            "process {pid} ended twice"
        );
        entry.state = State::Ended(exit);
        let machine = entry
            .machine
            .take()
            .expect("a live process has its machine");
        let name = entry.name.clone();
        let owner = entry.owner.clone();
        self.ready.retain(|&ready| ready != pid);
        self.orphan_children_of(pid);
        let report = match owner {
            Owner::Parent(parent) => {
                if let Some(waiter) = self.entries.get_mut(&parent)
                    && waiter.state == State::Waiting(pid)
                {
                    waiter.state = State::Ready;
                    self.ready.push_back(parent);
                }
                None
            }
            other => {
                self.entries.remove(&pid);
                Some(other)
            }
        };
        Ended {
            pid,
            name,
            exit,
            machine,
            report,
        }
    }

    /// The children of `parent`, which ended: those that ended too are
    /// reaped (nobody will wait for them), the others become orphans.
    fn orphan_children_of(&mut self, parent: Pid) {
        self.entries.retain(|_, entry| {
            if !matches!(entry.owner, Owner::Parent(of) if of == parent) {
                return true;
            }
            entry.owner = Owner::Orphan;
            !matches!(entry.state, State::Ended(_))
        });
    }

    /// `waiter` waits for its child `child`: how it ended (and the child is
    /// reaped), or `Ok(None)` if it has not ended yet (the kernel then
    /// blocks the waiter: [`blocked`](Self::blocked)).
    pub fn wait(&mut self, waiter: Pid, child: Pid) -> Result<Option<Exit>, ProcessError> {
        let entry = self
            .entries
            .get(&child)
            .ok_or(ProcessError::NoSuchProcess)?;
        if !matches!(entry.owner, Owner::Parent(of) if of == waiter) {
            return Err(ProcessError::NotAChild);
        }
        match entry.state {
            State::Ended(exit) => {
                self.entries.remove(&child);
                Ok(Some(exit))
            }
            _ => Ok(None),
        }
    }

    /// Ends `pid`, which is not running, with `exit` (a kill, or a fault of
    /// one of its dispatchers on another core).
    pub fn end_between_turns(&mut self, pid: Pid, exit: Exit) -> Result<Ended<M, R>, ProcessError> {
        let entry = self.entries.get(&pid).ok_or(ProcessError::NoSuchProcess)?;
        match entry.state {
            State::Ended(_) => Err(ProcessError::Ended),
            State::Running => Err(ProcessError::Running),
            _ => Ok(self.end(pid, exit)),
        }
    }

    /// Kills `pid`, which is not running (the kernel kills only between
    /// turns): it ends as [`Exit::Killed`].
    pub fn kill(&mut self, pid: Pid) -> Result<Ended<M, R>, ProcessError> {
        let entry = self.entries.get(&pid).ok_or(ProcessError::NoSuchProcess)?;
        match entry.state {
            State::Ended(_) => Err(ProcessError::Ended),
            State::Running => Err(ProcessError::Running),
            State::Held | State::Ready | State::Waiting(_) | State::Blocked => {
                Ok(self.end(pid, Exit::Killed))
            }
        }
    }

    /// Every process of the core, in id order.
    pub fn list(&self) -> Vec<Info> {
        self.entries
            .iter()
            .map(|(&pid, entry)| Info {
                pid,
                name: entry.name.clone(),
                state: entry.state,
                parent: match entry.owner {
                    Owner::Parent(parent) => Some(parent),
                    _ => None,
                },
                turns: entry.turns,
            })
            .collect()
    }

    /// How many processes the table holds, ended ones not yet waited for
    /// included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests;
