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

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use atoll_abi::{STACK_PAGES, STACK_TOP};
use atoll_arch::percore::CoreLocal;
use atoll_arch::user::Registers;
use atoll_caps::{Cap, CapId, Frames, Ids, LetGo, Object, Revocation, Sent, Tombstones};
use atoll_monitor::process::{
    ChannelConnect, JoinProcess, KILL_ENDED, KILL_NO_SUCH_PROCESS, KILLED, KillProcess, RevokeCaps,
    SpawnChild,
};
use atoll_monitor::{CoreId, Members, Ticket, Wire};
use atoll_programs::Image;
use atoll_replica::Mapping;
use atoll_sched::{Exit, Info, Pid, ProcessError, Table};

use crate::programs;

const PAGE: u64 = 4096;

/// What running a process (one dispatcher of it, on this core) takes: its
/// address space here, where it goes on, and which of the process's
/// dispatchers it is.
pub struct Machine {
    /// Its page-directory-pointer table.
    pub space: u64,
    /// `None` during its turn: the turn saves where it goes on.
    pub next: Option<Next>,
    /// Its index among the process's dispatchers, and their count.
    pub dispatcher: (u16, u16),
    /// The cores the process spans.
    pub cores: Members,
    /// Its capabilities (this dispatcher's: each has its own table).
    pub caps: atoll_caps::Table,
    /// The program's entry point and arguments: where a dispatcher added
    /// later (`Span`) starts.
    pub entry: u64,
    pub args: String,
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
    /// A process of another core, which spawned it here (`SpawnChild`):
    /// `ChildEnded`.
    RemoteParent { core: u16, pid: u32 },
    /// The process's home core (this is dispatcher `index` of a process
    /// that spans cores): `DispatcherEnded`, once this core no longer maps
    /// its pages.
    Home { home: u16, index: u16 },
}

/// The top of dispatcher `index`'s stack: the first's is `STACK_TOP`, and
/// each next one lies below the one before, a guard page apart.
pub fn stack_top(index: u16) -> u64 {
    STACK_TOP - u64::from(index) * (STACK_PAGES + 1) * PAGE
}

/// Where dispatcher `index` of a program entered at `entry`, with `args`
/// bytes of arguments at the end of its stack's top page, starts.
pub fn start_of(entry: u64, index: u16, args: u64) -> Next {
    let arguments_at = stack_top(index) - args;
    Next::Start {
        entry,
        // As a call would leave it: 8 bytes off a 16-byte boundary.
        stack: (arguments_at & !15) - 8,
        arguments: [arguments_at, args],
    }
}

/// An ended process (or dispatcher) whose space the monitor has not closed
/// yet: once it has, its page tables are given back.
pub struct Retiring {
    pub pid: Pid,
    pub space: u64,
    /// Whether the process spans cores: then the frames of this core's
    /// pool it maps wait (`held`) until no core maps them.
    pub spans: bool,
    /// For a dispatcher of another core's process: what to tell its home
    /// once this core no longer maps its pages.
    pub tell_home: Option<(u16, u16, Exit)>,
    /// The cores the process spans (for a dispatcher of another core's
    /// process whose home stopped: the others must say they no longer map
    /// the pages before this core's frames go back).
    pub cores: Members,
}

/// A process whose home stopped, as a core it spanned keeps it: this
/// core's frames it mapped go back once every other core of it still in
/// the view has said it no longer maps them (`DispatcherEnded`).
pub struct Homeless {
    pub waiting: Members,
    pub frames: Vec<u64>,
}

/// A process of this core that spans others, as its home core keeps it.
pub struct Spanning {
    /// The other cores it spans.
    pub members: Members,
    /// Those that have not yet answered `JoinProcess`.
    pub joining: Members,
    /// Those whose dispatchers have not said they ended.
    pub running: Members,
    /// Whether the process (its dispatcher here) has ended.
    pub ended: bool,
    /// The monitor's token of a `SpawnProgram` to answer once every core
    /// has joined (or one could not).
    pub spawned_answer: Option<u32>,
}

/// The pages of a process's space as every core of it maps them: page
/// address and mapping.
pub type Pages = Vec<(u64, Mapping)>;

/// `Mapping::flags` of a process's page (the kernel's own meaning; the
/// protocols only carry them): writable, executable.
pub const PAGE_WRITABLE: u64 = 1;
pub const PAGE_EXECUTABLE: u64 = 2;
/// The page maps a frame a frame capability names: it keeps the rights it
/// was mapped with (a protect could grant what the capability did not).
pub const PAGE_FROM_CAP: u64 = 4;

/// A change (map or unmap) a process proposed, until it polls its end.
pub struct Change {
    pub pid: Pid,
    pub kind: ChangeKind,
    /// `Some` once it ended: whether it took effect.
    pub done: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A map of `frame`, taken for it from this core's pool.
    Map { frame: u64 },
    /// A map of `frame`, which a frame capability names (counted as
    /// mapped from the proposal on).
    MapFrame { frame: u64 },
    /// An unmap of the page at `vaddr`.
    Unmap { vaddr: u64 },
    /// New rights for the page (its frame stays).
    Protect,
    /// A map of `frame` (from this core's pool) at `address` that makes a
    /// channel once it took effect; the creator's endpoint is in its table
    /// at `slot` (taken out again if it did not).
    Channel { frame: u64, address: u64, slot: u32 },
    /// A map at `address` of the frame of the channel `channel`, which makes
    /// the caller its other end once it took effect (the frame, 0 until
    /// known, comes from the channel's core first, when that core is
    /// another); the caller's endpoint is at `slot`, as for `Channel`.
    Connect {
        address: u64,
        channel: ChannelName,
        frame: u64,
        slot: u32,
    },
}

impl ChangeKind {
    /// What `Poll` answers once it took effect: the slot of the endpoint
    /// it made, or 0.
    pub fn value(&self) -> u64 {
        match *self {
            ChangeKind::Channel { slot, .. } | ChangeKind::Connect { slot, .. } => slot.into(),
            ChangeKind::Map { .. }
            | ChangeKind::MapFrame { .. }
            | ChangeKind::Unmap { .. }
            | ChangeKind::Protect => 0,
        }
    }
}

/// A channel, by the core and process that created it and its address
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelName {
    pub core: CoreId,
    pub pid: Pid,
    pub address: u64,
}

/// A channel a process of this core connected to.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub channel: ChannelName,
    /// The channel's frame (its creator's core's to free).
    pub frame: u64,
    /// Its creator has ended.
    pub gone: bool,
}

/// A channel a process of this core created.
pub struct Channel {
    pub frame: u64,
    /// The process at its other end, and its core, once one connected.
    pub peer: Option<(CoreId, Pid)>,
    /// Its other end has gone (or never took effect): nobody may connect
    /// again (its rings are not fresh).
    pub closed: bool,
    /// Its creator has ended: the frame stays taken only while the other
    /// end maps it.
    pub creator_gone: bool,
}

/// This core's processes, and what is not yet handed on: ends to who waits
/// for them, spaces to open and close in the monitor, changes' ends.
pub struct Processes {
    pub table: Table<Machine, Report>,
    /// Ends the shell waits for, by its token.
    pub shell_ends: Vec<(u32, Pid, Exit)>,
    pub next_shell_token: u32,
    /// Answers for other cores, by the monitor's token, for the host to
    /// hand its monitor.
    pub answers: Vec<(u32, Wire)>,
    /// Spaces of new processes for the monitor to open, held by the cores
    /// given, with the pages their images and stacks are on.
    pub to_open: Vec<(Pid, Members, Pages)>,
    /// Ended processes whose spaces the monitor has not closed yet: each is
    /// released once it has.
    pub retiring: Vec<Retiring>,
    /// Processes of this core that span others.
    pub spanning: BTreeMap<Pid, Spanning>,
    /// Pages of other cores' processes this core is about to join.
    pub joining_pages: BTreeMap<Pid, Pages>,
    /// Frames of this core's pool that processes spanning cores mapped,
    /// kept until no core maps them (`ProcessGone`).
    pub held_frames: BTreeMap<Pid, Vec<u64>>,
    /// Messages for the monitor to send, needing no answer.
    pub outbox: Vec<(CoreId, Wire)>,
    /// `JoinProcess` calls for the monitor to make, and those made.
    pub join_calls: Vec<(Pid, CoreId, JoinProcess)>,
    pub join_tickets: BTreeMap<Ticket, (Pid, CoreId)>,
    /// Processes to end once their turn is over (their end came while they
    /// ran: a fault of a dispatcher elsewhere, during a system call).
    pub doomed: BTreeMap<Pid, Exit>,
    /// Channels processes of this core created, by process and address.
    pub channels: BTreeMap<(Pid, u64), Channel>,
    /// Channels processes of this core connected to, by process and the
    /// address it maps the channel at.
    pub connections: BTreeMap<(Pid, u64), Connection>,
    /// Spawns processes asked for on other cores, by the process that asked:
    /// `None` until the answer comes, then the child or why not.
    pub pending_spawns: BTreeMap<Pid, Option<Result<Pid, atoll_abi::Error>>>,
    /// `SpawnChild` calls for the monitor to make, and those made (by the
    /// parent's id).
    pub spawn_calls: Vec<(Pid, CoreId, SpawnChild)>,
    pub spawn_tickets: BTreeMap<Ticket, Pid>,
    /// Children processes of this core have on other cores: the parent,
    /// and the child's end once it came (`ChildEnded`).
    pub remote_children: BTreeMap<Pid, (Pid, Option<Exit>)>,
    /// `KillProcess` calls for the monitor to make, whose answers nobody
    /// waits for, and those made.
    pub kill_calls: Vec<(CoreId, KillProcess)>,
    pub kill_tickets: BTreeSet<Ticket>,
    /// The view whose members `host::processes` last checked processes
    /// against (a core left: its processes end).
    pub watched_epoch: u32,
    /// Processes notified since they last waited (`WaitNotify`).
    pub notified: BTreeSet<Pid>,
    /// `ChannelConnect` calls for the monitor to make (with the change's
    /// token), and those made.
    pub connect_calls: Vec<(u64, CoreId, ChannelConnect)>,
    pub connect_tickets: BTreeMap<Ticket, u64>,
    /// Processes whose home stopped, whose frames here wait for the other
    /// cores they spanned; and the cores heard from before this core
    /// found the home gone.
    pub homeless: BTreeMap<Pid, Homeless>,
    pub released_by: BTreeMap<Pid, Members>,
    /// Dispatchers of other cores' processes that exited while their
    /// process runs on: this core still holds the process's space (its
    /// replica takes part in every change, and its page tables follow)
    /// until the home ends the process (`EndDispatcher`).
    pub lingering: BTreeMap<Pid, Retiring>,
    /// The changes processes proposed, by the monitor's token: the pid in
    /// the high 32 bits, the process's own token below.
    pub changes: BTreeMap<u64, Change>,
    next_change: u32,
    /// Frames of this core's pool that processes' pages no longer map
    /// (unmapped), by process and page, oldest first: freed once the unmap
    /// has ended on every core (or with the process).
    pub unmapped: BTreeMap<(Pid, u64), VecDeque<u64>>,
    /// The ids of this core's capabilities, and revoked ids remembered.
    pub cap_ids: Ids,
    /// The frames of this core that frame capabilities name.
    pub frames: Frames,
    pub tombstones: Tombstones,
    /// Revocations processes of this core wait on, by process.
    pub revoking: BTreeMap<Pid, Revocation>,
    /// `RevokeCaps` calls for the monitor to make (by the revoking
    /// process), and those made.
    pub revoke_calls: Vec<(Pid, CoreId, RevokeCaps)>,
    pub revoke_tickets: BTreeMap<Ticket, (Pid, CoreId, RevokeCaps)>,
    /// Processes whose space is frozen here while a core joins them, with
    /// how many freezes have not thawed yet (a late thaw of an earlier
    /// growth must not thaw the next one): their changes wait (the call is
    /// made again once it thaws).
    pub frozen: BTreeMap<Pid, u32>,
    /// The count each growth's calls carry, so that a late answer of an
    /// earlier one does not count for the next.
    pub growth: u32,
    /// `FreezeSpace` requests to answer once no change of the process from
    /// this core is under way (the monitor's token).
    pub freezing: Vec<(Pid, u32)>,
    /// Spaces to take new holders in, once their replicas are idle here
    /// (after a join, `SpaceGrown`).
    pub regrowing: Vec<(Pid, Members)>,
    /// Processes of this core that a core joins (`Span`), by process.
    pub growing: BTreeMap<Pid, Growing>,
    /// `FreezeSpace` calls for the monitor to make, and those made; the
    /// `JoinProcess` calls of growing processes made.
    pub freeze_calls: Vec<(Pid, CoreId, u32)>,
    pub freeze_tickets: BTreeMap<Ticket, (Pid, CoreId, u32)>,
    pub grow_tickets: BTreeMap<Ticket, (Pid, u32)>,
}

/// A process of this core that core `core` joins (`Span`), as its home
/// keeps it until the call returns.
pub struct Growing {
    /// Which growth it is (`Processes::growth`).
    pub growth: u32,
    pub core: CoreId,
    /// The new dispatcher's index (the count before).
    pub index: u16,
    /// The cores it spans with the new one.
    pub cores: Members,
    /// The members that have not yet said their space is frozen.
    pub waiting: Members,
    pub stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Its members are freezing its space.
    Freezing,
    /// The new core was asked to join.
    Joining,
    /// It joined (the index), or could not; the call returns this.
    Done(Result<u16, atoll_abi::Error>),
}

impl Processes {
    pub fn new(core: usize, incarnation: u32) -> Self {
        Self {
            table: Table::new(core as u16),
            shell_ends: Vec::new(),
            next_shell_token: 0,
            answers: Vec::new(),
            to_open: Vec::new(),
            retiring: Vec::new(),
            spanning: BTreeMap::new(),
            joining_pages: BTreeMap::new(),
            held_frames: BTreeMap::new(),
            outbox: Vec::new(),
            join_calls: Vec::new(),
            join_tickets: BTreeMap::new(),
            doomed: BTreeMap::new(),
            lingering: BTreeMap::new(),
            homeless: BTreeMap::new(),
            released_by: BTreeMap::new(),
            channels: BTreeMap::new(),
            connections: BTreeMap::new(),
            notified: BTreeSet::new(),
            watched_epoch: 0,
            pending_spawns: BTreeMap::new(),
            spawn_calls: Vec::new(),
            spawn_tickets: BTreeMap::new(),
            remote_children: BTreeMap::new(),
            kill_calls: Vec::new(),
            kill_tickets: BTreeSet::new(),
            connect_calls: Vec::new(),
            connect_tickets: BTreeMap::new(),
            changes: BTreeMap::new(),
            next_change: 0,
            unmapped: BTreeMap::new(),
            cap_ids: Ids::new(core as u16, incarnation),
            frames: Frames::default(),
            tombstones: Tombstones::default(),
            revoking: BTreeMap::new(),
            revoke_calls: Vec::new(),
            revoke_tickets: BTreeMap::new(),
            frozen: BTreeMap::new(),
            growth: 0,
            freezing: Vec::new(),
            regrowing: Vec::new(),
            growing: BTreeMap::new(),
            freeze_calls: Vec::new(),
            freeze_tickets: BTreeMap::new(),
            grow_tickets: BTreeMap::new(),
        }
    }

    /// Freezes `pid`'s space here once more.
    pub fn freeze(&mut self, pid: Pid) {
        *self.frozen.entry(pid).or_default() += 1;
    }

    /// Thaws one freeze of `pid`'s space here: whether it is thawed now.
    pub fn thaw(&mut self, pid: Pid) -> bool {
        match self.frozen.get_mut(&pid) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            _ => {
                self.frozen.remove(&pid);
                true
            }
        }
    }

    /// `pid`'s growth under way, if it is growth `growth`: a late answer
    /// of an earlier growth counts for nothing.
    pub fn growing_as(&mut self, pid: Pid, growth: u32) -> Option<&mut Growing> {
        self.growing
            .get_mut(&pid)
            .filter(|growing| growing.growth == growth)
    }

    /// The changes `pid` proposed from this core and has not polled.
    pub fn changes_of(&self, pid: Pid) -> impl Iterator<Item = &Change> {
        self.changes
            .range(u64::from(pid.0) << 32..=u64::from(pid.0) << 32 | u64::from(u32::MAX))
            .map(|(_, change)| change)
    }

    /// Whether a change of `pid` proposed from this core is under way.
    pub fn changing(&self, pid: Pid) -> bool {
        self.changes_of(pid).any(|change| change.done.is_none())
    }

    /// Whether `pid` has a channel here: one it made or one it joined.
    pub fn has_channel(&self, pid: Pid) -> bool {
        let mine = (pid, 0)..=(pid, u64::MAX);
        self.channels.range(mine.clone()).next().is_some()
            || self.connections.range(mine).next().is_some()
    }

    /// Deletes every capability made from the one of id `id` in this
    /// core's processes, and refuses any still on its way here: how many
    /// were deleted.
    pub fn revoke_here(&mut self, local: &CoreLocal, id: CapId) -> u32 {
        // Asked again (an answer was lost): nothing made from it is left,
        // and the first count stands.
        if let Some(deleted) = self.tombstones.buried(id) {
            return deleted;
        }
        let deleted: Vec<Cap> = self
            .table
            .machines()
            .flat_map(|(_, machine)| machine.caps.revoke(id))
            .collect();
        self.tombstones.bury(id, deleted.len() as u32);
        self.dropped(local, &deleted);
        deleted.len() as u32
    }

    /// Deletes the capabilities of this core's processes that name objects
    /// of cores outside `members` (they left the view, and their processes
    /// and channels with them): a core that starts again must not find its
    /// new objects named by them.
    pub fn forget_cores(&mut self, local: &CoreLocal, members: Members) {
        let children = &self.remote_children;
        let gone = |object: &Object| {
            let core = match *object {
                // A child there is killed for its parent, which may still
                // wait for it by this capability.
                Object::Process { pid } if children.contains_key(&Pid(pid)) => return false,
                Object::Process { pid } | Object::Space { pid } => Pid(pid).core(),
                Object::Dispatcher { core, .. } | Object::Endpoint { core, .. } => core,
                // Frames are this core's own.
                Object::Frame { .. } => return false,
            };
            !members.contains(CoreId(core))
        };
        let deleted: Vec<Cap> = self
            .table
            .machines()
            .flat_map(|(_, machine)| machine.caps.forget(gone))
            .collect();
        self.dropped(local, &deleted);
    }

    /// Capabilities that were deleted (or went with their process): a frame
    /// none names or maps any more goes back to the pool.
    pub fn dropped(&mut self, local: &CoreLocal, caps: &[Cap]) {
        for cap in caps {
            if let Object::Frame { frame, .. } = cap.object
                && self.frames.unnamed(frame) == LetGo::Free
            {
                local.free_frame(frame);
            }
        }
    }

    /// A frame of this core's pool that a page of a process no longer maps
    /// (unmapped, or its process ended): back to the pool, unless a frame
    /// capability names it or another page maps it.
    pub fn give_back(&mut self, local: &CoreLocal, frame: u64) {
        match self.frames.unmapped(frame) {
            LetGo::Free | LetGo::NotCounted => local.free_frame(frame),
            LetGo::Kept => {}
        }
    }

    /// Takes the endpoint at `slot` out of `pid`'s table again (its
    /// channel was not made), if it is still there.
    pub fn unmint_end(&mut self, pid: Pid, slot: u32, address: u64) {
        let Some(machine) = self.table.machine(pid) else {
            return;
        };
        // Channels join processes that run on their home core alone.
        let end = Object::Endpoint {
            core: pid.core(),
            pid: pid.0,
            address,
        };
        if machine
            .caps
            .get(slot.into())
            .is_ok_and(|cap| cap.object == end)
        {
            let _ = machine.caps.delete(slot.into());
        }
    }

    /// Takes `sent`, granted to `pid` (or handed to it at spawn, into
    /// `slot`), unless it comes from a revoked capability or `pid` has no
    /// room (or has ended): then it is dropped, and why is said.
    pub fn take_cap(
        &mut self,
        pid: Pid,
        sent: Sent,
        slot: Option<u64>,
    ) -> Result<(), &'static str> {
        if self.tombstones.refuse(&sent) {
            return Err("it was revoked");
        }
        let machine = self.table.machine(pid).ok_or("the process has ended")?;
        let taken = match slot {
            Some(slot) => machine.caps.land_at(&mut self.cap_ids, slot, sent),
            None => machine.caps.grant(&mut self.cap_ids, sent).map(|_| ()),
        };
        taken.map_err(|_| "its table is full")?;
        if let Object::Frame { frame, .. } = sent.object {
            self.frames.named(frame);
        }
        Ok(())
    }

    /// The answers for other cores that ends produced since the last call.
    pub fn take_answers(&mut self) -> Vec<(u32, Wire)> {
        core::mem::take(&mut self.answers)
    }

    /// Whether nothing waits to be settled with the monitor (nothing to
    /// open, send, call, answer, close or free, and no call's answer
    /// awaited), as of view `epoch`.
    pub fn settled(&self, epoch: u32) -> bool {
        self.watched_epoch == epoch
            && self.to_open.is_empty()
            && self.answers.is_empty()
            && self.retiring.is_empty()
            && self.outbox.is_empty()
            && self.join_calls.is_empty()
            && self.connect_calls.is_empty()
            && self.spawn_calls.is_empty()
            && self.kill_calls.is_empty()
            && self.join_tickets.is_empty()
            && self.connect_tickets.is_empty()
            && self.spawn_tickets.is_empty()
            && self.kill_tickets.is_empty()
            && self.homeless.is_empty()
            && self.revoke_calls.is_empty()
            && self.revoke_tickets.is_empty()
            && self.freezing.is_empty()
            && self.regrowing.is_empty()
            && self.growing.is_empty()
            && self.freeze_calls.is_empty()
            && self.freeze_tickets.is_empty()
            && self.grow_tickets.is_empty()
            && self.spanning.values().all(|spanning| !spanning.ended)
    }

    /// Records a change `pid` proposes; the monitor's token for it.
    pub fn new_change(&mut self, pid: Pid, kind: ChangeKind) -> u64 {
        loop {
            self.next_change = self.next_change.wrapping_add(1);
            let token = u64::from(pid.0) << 32 | u64::from(self.next_change);
            if let alloc::collections::btree_map::Entry::Vacant(free) = self.changes.entry(token) {
                free.insert(Change {
                    pid,
                    kind,
                    done: None,
                });
                return token;
            }
        }
    }

    /// The address space of `pid` on this core: a live process's, or an
    /// ended one's that is not released yet.
    pub fn space_of(&mut self, pid: Pid) -> Option<u64> {
        match self.table.machine(pid) {
            Some(machine) => Some(machine.space),
            None => self
                .retiring
                .iter()
                .chain(self.lingering.values())
                .find(|retiring| retiring.pid == pid)
                .map(|retiring| retiring.space),
        }
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

impl SpawnFailure {
    /// The failure as the ABI says it.
    pub fn error(&self) -> atoll_abi::Error {
        match self {
            SpawnFailure::NoSuchProgram => atoll_abi::Error::NoSuchProgram,
            SpawnFailure::TooManyProcesses => atoll_abi::Error::TooManyProcesses,
            SpawnFailure::NotLoaded(_) => atoll_abi::Error::NotLoaded,
        }
    }
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
/// `args` at the top of its stack; with the pages it mapped, for the
/// replica of the space. The pages go into the new space's own tables: the
/// user range of the core's goes on mapping what it maps.
pub fn load(
    local: &CoreLocal,
    name: &str,
    args: &str,
    dispatchers: u16,
) -> Result<(Machine, Pages, u64), SpawnFailure> {
    let archive = programs::archive().map_err(SpawnFailure::NotLoaded)?;
    let program = archive.find(name).ok_or(SpawnFailure::NoSuchProgram)?;
    let image = Image::parse(program.file)
        .map_err(|error| SpawnFailure::NotLoaded(format!("{name} cannot be loaded: {error}")))?;
    let stack_bottom = stack_top(dispatchers - 1) - STACK_PAGES * PAGE;
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
    let pages = RefCell::new(Vec::new());
    let add = |page: u64, bytes: &[u8], writable: bool, executable: bool| {
        let frame = local.allocate_frame_holding(bytes).ok_or_else(no_memory)?;
        tables
            .map_user_in(space, page, frame, writable, executable, &mut || {
                local.allocate_filled_frame(0)
            })
            .map_err(|error| {
                local.free_frame(frame);
                SpawnFailure::NotLoaded(format!("{name}: cannot map {page:#x}: {error}"))
            })?;
        let flags = match (writable, executable) {
            (true, _) => PAGE_WRITABLE,
            (false, true) => PAGE_EXECUTABLE,
            (false, false) => 0,
        };
        pages.borrow_mut().push((
            page,
            Mapping {
                paddr: frame,
                flags,
            },
        ));
        Ok(())
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
        // Each dispatcher's stack; the arguments end its top page.
        let mut top = vec![0u8; PAGE as usize];
        top[PAGE as usize - args.len()..].copy_from_slice(args.as_bytes());
        for index in 0..dispatchers {
            let top_page = stack_top(index) - PAGE;
            for page in (top_page - (STACK_PAGES - 1) * PAGE..top_page).step_by(PAGE as usize) {
                add(page, &[], true, false)?;
            }
            add(top_page, &top, true, false)?;
        }
        Ok(())
    };
    let outcome = mapped();
    if let Err(failure) = outcome {
        release(local, space, None);
        return Err(failure);
    }
    let machine = Machine {
        space,
        next: Some(start_of(image.entry, 0, args.len() as u64)),
        dispatcher: (0, dispatchers),
        cores: Members::new(),
        // Its capabilities once it has an id.
        caps: atoll_caps::Table::default(),
        entry: image.entry,
        args: String::from(args),
    };
    Ok((machine, pages.into_inner(), image.entry))
}

/// Builds this core's page tables for another core's process, mapping
/// `pages` as its home maps them; the space.
pub fn build(local: &CoreLocal, pages: &[(u64, Mapping)]) -> Result<u64, String> {
    let space = local
        .allocate_filled_frame(0)
        .ok_or_else(|| String::from("no free frame for its page tables"))?;
    let tables = local.page_tables();
    for &(page, mapping) in pages {
        let mapped = tables.map_user_in(
            space,
            page,
            mapping.paddr,
            mapping.flags & PAGE_WRITABLE != 0,
            mapping.flags & PAGE_EXECUTABLE != 0,
            &mut || local.allocate_filled_frame(0),
        );
        if let Err(error) = mapped {
            release(local, space, None);
            return Err(format!("cannot map {page:#x}: {error}"));
        }
    }
    Ok(space)
}

/// Gives back the address space `space`: its page tables, and the frames
/// its pages map that are this core's (another core's frame is its to
/// free), or, with `hold`, keeps those there: other cores may map them
/// still.
pub fn release(local: &CoreLocal, space: u64, hold: Option<&mut Vec<u64>>) {
    release_keeping(local, space, hold, &[], &mut |frame| {
        local.free_frame(frame)
    });
}

/// [`release`], keeping `kept` frames taken (a channel's, while its other
/// end maps it), and handing each frame of this core it no longer maps to
/// `give_back` (which frees it unless a frame capability keeps it).
pub fn release_keeping(
    local: &CoreLocal,
    space: u64,
    mut hold: Option<&mut Vec<u64>>,
    kept: &[u64],
    give_back: &mut dyn FnMut(u64),
) {
    local.page_tables().release_user_space(
        space,
        &mut |frame| {
            if local.owns_frame(frame) && !kept.contains(&frame) {
                match hold.as_deref_mut() {
                    Some(held) => held.push(frame),
                    None => give_back(frame),
                }
            }
        },
        &mut |table| local.free_frame(table),
    );
}

/// A kill's outcome, as `KillProcess` answers it. (A process killed during
/// one of its system calls ends when that turn does: `kill_for` never
/// reports it running.)
pub fn kill_outcome(killed: Result<(), ProcessError>) -> u8 {
    match killed {
        Ok(()) => KILLED,
        Err(ProcessError::Ended) => KILL_ENDED,
        Err(ProcessError::NoSuchProcess | ProcessError::NotAChild | ProcessError::Running) => {
            KILL_NO_SUCH_PROCESS
        }
    }
}

/// How a process ended, in words.
pub fn describe_exit(exit: Exit) -> String {
    match exit {
        Exit::Status(status) => format!("exited with status {status}"),
        Exit::Killed => String::from("was killed"),
        Exit::Fault {
            core,
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
/// Its dispatcher (`index/count`) and how many capabilities it holds are
/// shown when it has a machine still.
pub fn describe(info: &Info, core: usize, machine: Option<((u16, u16), usize)>) -> String {
    let parent = match info.parent {
        Some(parent) => parent.to_string(),
        None => String::from("-"),
    };
    let (dispatcher, caps) = match machine {
        Some(((index, count), caps)) => (format!("{index}/{count}"), caps.to_string()),
        None => (String::from("-"), String::from("-")),
    };
    format!(
        "{:>8} {:>6} {:<12} {:>4} {:>5} {:>4} {:>7} {}",
        info.pid.0, parent, info.name, core, dispatcher, caps, info.turns, info.state
    )
}

/// The header over [`describe`]'s lines.
pub const LIST_HEADER: &str = "     pid parent program      core  disp caps   turns state";
