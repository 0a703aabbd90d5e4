//! A core's processes as the kernel runs them: spawning, turns on the
//! core, kills, the lists `ps` shows, and their system calls. The
//! mechanism (address spaces, loading) is `process`'s; who runs next,
//! `atoll_sched`'s table.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use atoll_abi::{
    CAP_DISPATCHER, CAP_ENDPOINT, CAP_FRAME, CAP_PROCESS, CAP_SPACE, Call, EXITED, Error,
    ExitRecord, FAULTED, HANDED, KILLED, MAP_WRITABLE, MAX_ARGS, MAX_CAPS, MAX_CHANGES, MAX_NAME,
    MAX_QUERY, MAX_WRITE, NO_CAP, RIGHT_CONNECT, RIGHT_COPY, RIGHT_KILL, RIGHT_MAP, RIGHT_NOTIFY,
    RIGHT_READ, RIGHT_WAIT, RIGHT_WRITE, RIGHTS_ALL, USER_END, USER_START,
};
use atoll_arch::user::{self, Ended, Resume, SyscallFrame};
use atoll_caps::{Object, Revocation, Sent, Table as CapTable};
use atoll_monitor::process::LIST_BYTES;
use atoll_replica::Mapping;
use atoll_sched::{Exit, Info, Owner, Pid, ProcessError, SpawnError, State};

use crate::host::{self, Core};
use crate::process::{
    ChangeKind, ChannelName, Growing, Machine, Next, PAGE_EXECUTABLE, PAGE_FROM_CAP, PAGE_WRITABLE,
    Processes, Report, Retiring, Spanning, SpawnFailure, Stage, describe, describe_exit, load,
    release, stack_top,
};
use crate::programs::ended_of;
use atoll_iface::Bytes;
use atoll_monitor::process::{
    CAP_BYTES, CapGranted, ChannelConnect, ChannelNotify, ChildEnded, CoreSet, EndDispatcher,
    JoinProcess, KillProcess, PAGE_ENTRY_BYTES, PAGES_BYTES, PageChange, ProcessPages, RevokeCaps,
    SpawnChild, pack_pages,
};

// A capability on its way to another core fits its message.
const _: () = assert!(atoll_caps::SENT_BYTES <= CAP_BYTES);
use atoll_monitor::{CoreId, Members};

const PAGE: u64 = 4096;

impl Core {
    /// Spawns the boot image's program `name` with `args` on `cores` (this
    /// core, its home, among them), its end told as `owner` says: a
    /// dispatcher on each core, sharing one address space. Its space opens
    /// in the monitor when the host next settles its processes
    /// (`flush_processes`, or the end of the host's step); a process that
    /// spans other cores runs once every one has joined.
    pub(crate) fn spawn_for(
        &self,
        name: &str,
        args: &str,
        owner: Owner<Report>,
        cores: Members,
    ) -> Result<Pid, SpawnFailure> {
        let me = CoreId(self.id as u16);
        if !cores.contains(me) {
            return Err(SpawnFailure::NotLoaded(String::from(
                "the cores of a process include its home, the core asked",
            )));
        }
        if self.processes.borrow().table.len() >= atoll_sched::MAX_PROCESSES {
            return Err(SpawnFailure::TooManyProcesses);
        }
        let count = cores.len() as u16;
        let (mut machine, pages, entry) = load(self.local, name, args, count)?;
        machine.cores = cores;
        let space = machine.space;
        let members = cores.minus(Members::one(me));
        let mut processes = self.processes.borrow_mut();
        let pid = match processes.table.spawn_held(name, owner, machine) {
            Ok(pid) => pid,
            Err(SpawnError::Full) => {
                drop(processes);
                release(self.local, space, None);
                return Err(SpawnFailure::TooManyProcesses);
            }
        };
        let dispatcher = Object::Dispatcher {
            pid: pid.0,
            index: 0,
            count,
            core: me.0,
        };
        let Processes { table, cap_ids, .. } = &mut *processes;
        let machine = table.machine(pid).expect("spawned just now");
        machine.caps = CapTable::starting(cap_ids, pid.0, dispatcher);
        processes.to_open.push((pid, cores, pages.clone()));
        if members.is_empty() {
            processes.table.start(pid);
            return Ok(pid);
        }
        // The other cores join: the pages first (a link keeps its order),
        // then the request.
        let entries: Vec<(u64, u64, u64)> = pages
            .iter()
            .map(|(page, mapping)| (*page, mapping.paddr, mapping.flags))
            .collect();
        let (name_bytes, args_bytes) = (Bytes::new(name.as_bytes()), Bytes::new(args.as_bytes()));
        let (Some(name_bytes), Some(args_bytes)) = (name_bytes, args_bytes) else {
            unreachable!("names and arguments were checked against the same limits");
        };
        for (index, member) in (1..).zip(members.iter()) {
            for batch in entries.chunks(PAGES_BYTES / PAGE_ENTRY_BYTES) {
                let pages = pack_pages(batch).expect("a batch fits a message");
                processes
                    .outbox
                    .push((member, ProcessPages { pid: pid.0, pages }.into()));
            }
            let join = JoinProcess {
                pid: pid.0,
                index,
                cores: CoreSet(cores),
                entry,
                name: name_bytes,
                args: args_bytes,
            };
            processes.join_calls.push((pid, member, join));
        }
        processes.spanning.insert(
            pid,
            Spanning {
                members,
                joining: members,
                running: members,
                ended: false,
                spawned_answer: None,
            },
        );
        Ok(pid)
    }

    /// Spawns `name` with `args` on this core for the kernel: its end is
    /// told as `report` says.
    pub fn spawn(
        &self,
        name: &str,
        args: &str,
        report: Report,
        cores: Members,
    ) -> Result<Pid, SpawnFailure> {
        let pid = self.spawn_for(name, args, Owner::Kernel(report), cores)?;
        self.flush_processes();
        // A process that spans cores runs once they have all joined.
        self.idle_until(|| {
            let state = self.processes.borrow().table.state(pid);
            (state != Some(atoll_sched::State::Held)).then_some(())
        });
        Ok(pid)
    }

    /// Spawns `name` with `args` on this core and waits (as the shell
    /// waits: polling, running the ready processes) until it has ended.
    pub fn run_to_end(
        &self,
        name: &str,
        args: &str,
        cores: Members,
    ) -> Result<(Pid, Exit), SpawnFailure> {
        let token = {
            let mut processes = self.processes.borrow_mut();
            processes.next_shell_token = processes.next_shell_token.wrapping_add(1);
            processes.next_shell_token
        };
        let pid = self.spawn(name, args, Report::Shell(token), cores)?;
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
        self.kill_for(pid)?;
        self.flush_processes();
        Ok(())
    }

    /// Kills `pid` as [`kill`](Self::kill) does; what it held is given
    /// back when the host next settles its processes.
    pub(crate) fn kill_for(&self, pid: Pid) -> Result<(), ProcessError> {
        let mut processes = self.processes.borrow_mut();
        let ended = match processes.table.kill(pid) {
            Ok(ended) => ended,
            // The kill came during one of its system calls: it ends when
            // that turn does.
            Err(ProcessError::Running) => {
                processes.doomed.insert(pid, Exit::Killed);
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        drop(processes);
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
            let machine = self
                .processes
                .borrow_mut()
                .table
                .machine(info.pid)
                .map(|machine| (machine.dispatcher, machine.caps.len()));
            let line = describe(info, self.id, machine) + "\n";
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
                // Its end came while it ran (a fault of its dispatcher
                // elsewhere, told during one of its system calls).
                if let Some(exit) = processes.doomed.remove(&pid) {
                    let table = &mut processes.table;
                    if table.state(pid) == Some(State::Running) {
                        table.preempted(pid);
                    }
                    let ended = table
                        .end_between_turns(pid, exit)
                        .expect("a process preempted just now has not ended");
                    drop(processes);
                    self.clear_away(ended);
                    self.flush_processes();
                    return true;
                }
                let table = &mut processes.table;
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
                core: self.id as u16,
                vector,
                error_code,
                rip,
                address,
            },
        };
        let ended = {
            let mut processes = self.processes.borrow_mut();
            processes.doomed.remove(&pid);
            processes.table.end(pid, exit)
        };
        self.clear_away(ended);
        self.flush_processes();
        true
    }

    /// Gives back what an ended process took (once its space is closed in
    /// the monitor: the host settles it), and tells whom its end concerns.
    pub(crate) fn clear_away(&self, ended: atoll_sched::Ended<Machine, Report>) {
        let mut processes = self.processes.borrow_mut();
        // Its capabilities go with it: frames they alone kept go back.
        let caps: Vec<atoll_caps::Cap> = ended.machine.caps.iter().map(|(_, cap)| *cap).collect();
        processes.dropped(self.local, &caps);
        let mut retiring = Retiring {
            pid: ended.pid,
            space: ended.machine.space,
            spans: false,
            tell_home: None,
            cores: ended.machine.cores,
        };
        if let Some(spanning) = processes.spanning.get_mut(&ended.pid) {
            // Its dispatchers elsewhere end too; its frames wait until no
            // core maps them.
            spanning.ended = true;
            retiring.spans = true;
            let running: Vec<CoreId> = spanning.running.iter().collect();
            for member in running {
                let end = EndDispatcher { pid: ended.pid.0 };
                processes.outbox.push((member, end.into()));
            }
        }
        if let Some(Owner::Kernel(Report::Home { home, index })) = ended.report {
            retiring.spans = true;
            retiring.tell_home = Some((home, index, ended.exit));
            if let Exit::Status(_) = ended.exit {
                // It exited, its process runs on: this core keeps its part
                // of the space until the home ends the process.
                processes.lingering.insert(ended.pid, retiring);
                return;
            }
        }
        processes.retiring.push(retiring);
        // Its children elsewhere are nobody's to wait for now.
        processes
            .remote_children
            .retain(|_, (parent, _)| *parent != ended.pid);
        processes.pending_spawns.remove(&ended.pid);
        processes.revoking.remove(&ended.pid);
        processes.frozen.remove(&ended.pid);
        if let Some(growing) = processes.growing.remove(&ended.pid)
            && growing.stage == Stage::Joining
        {
            // The core asked to join may have: its dispatcher ends too.
            let end = EndDispatcher { pid: ended.pid.0 };
            processes.outbox.push((growing.core, end.into()));
        }
        match ended.report {
            // Its parent waits for it.
            None => {}
            Some(Owner::Kernel(Report::Shell(token))) => {
                processes.shell_ends.push((token, ended.pid, ended.exit));
            }
            Some(Owner::Kernel(Report::Remote(token))) => {
                let mut answer = ended_of(ended.exit);
                answer.pid = ended.pid.0;
                processes.answers.push((token, answer.into()));
            }
            // Its home hears of it once this core no longer maps its pages.
            Some(Owner::Kernel(Report::Home { .. })) => {}
            Some(Owner::Kernel(Report::RemoteParent { core: at, pid })) => {
                let mut ended_as = ended_of(ended.exit);
                ended_as.pid = ended.pid.0;
                let message = ChildEnded::new(pid, &ended_as);
                processes.outbox.push((CoreId(at), message.into()));
            }
            Some(Owner::Kernel(Report::Console) | Owner::Orphan | Owner::Parent(_)) => {
                drop(processes);
                println!(
                    "atoll: core {}: process {} ({}) {}",
                    self.id,
                    ended.pid,
                    ended.name,
                    describe_exit(ended.exit)
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
    let call = Call::from_number(frame.rax);
    if matches!(call, Some(Call::Map | Call::Unmap | Call::Protect)) {
        let mut processes = core.processes.borrow_mut();
        if processes.frozen.contains_key(&me) {
            // A core is joining the process: its changes wait until every
            // core holds it (the call is made again then).
            processes.table.block(me);
            return Resume::Block;
        }
    }
    let answer = match call {
        Some(Call::ConsoleWrite) => console_write(frame.rdi, frame.rsi),
        Some(Call::Exit) => return Resume::End { status: frame.rdi },
        Some(Call::Null) => Ok(0),
        Some(Call::Yield) => {
            frame.rax = 0;
            return Resume::Switch;
        }
        Some(Call::Spawn) => {
            match spawn(
                core,
                me,
                [
                    frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
                ],
            ) {
                Ok(Some(cap)) => Ok(cap),
                Ok(None) => return Resume::Block,
                Err(error) => Err(error),
            }
        }
        Some(Call::Kill) => {
            process_cap(core, me, frame.rdi, RIGHT_KILL).and_then(|pid| kill(core, pid))
        }
        Some(Call::ChannelState) => own_end(core, me, frame.rdi).and_then(|address| {
            let processes = core.processes.borrow();
            let open = match processes.channels.get(&(me, address)) {
                Some(channel) => !channel.closed,
                None => processes
                    .connections
                    .get(&(me, address))
                    .is_some_and(|connection| !connection.gone),
            };
            match open {
                true => Ok(0),
                false => Err(Error::NoSuchChannel),
            }
        }),
        Some(Call::Wait) => match process_cap(core, me, frame.rdi, RIGHT_WAIT)
            .and_then(|child| wait(core, me, child, frame.rsi))
        {
            Ok(Waited::Written) => {
                // The child is forgotten, and so is the capability waited
                // by: it names nothing now.
                let mut processes = core.processes.borrow_mut();
                let _ = caps_of(&mut processes.table, me).delete(frame.rdi);
                Ok(0)
            }
            Ok(Waited::Blocked) => return Resume::Block,
            Err(error) => Err(error),
        },
        Some(Call::Pid) => process_cap(core, me, frame.rdi, 0).map(|pid| u64::from(pid.0)),
        Some(Call::ChannelCreate) => channel_create(core, me, frame.rdi),
        Some(Call::ChannelConnect) => channel_connect(core, me, frame.rdi, frame.rsi),
        Some(Call::Notify) => own_end(core, me, frame.rdi)
            .and_then(|address| peer_of(core, me, address).and_then(|peer| notify(core, peer))),
        Some(Call::CapCopy) => {
            let mut processes = core.processes.borrow_mut();
            let Processes {
                table,
                cap_ids,
                frames,
                ..
            } = &mut *processes;
            let caps = caps_of(table, me);
            caps.copy(cap_ids, frame.rdi, frame.rsi).map(|slot| {
                if let Ok(Object::Frame { frame, .. }) = caps.get(slot.into()).map(|cap| cap.object)
                {
                    frames.named(frame);
                }
                u64::from(slot)
            })
        }
        Some(Call::FrameAlloc) => frame_alloc(core, me),
        Some(Call::Span) => match span(core, me, frame.rdi) {
            Ok(Some(cap)) => Ok(cap),
            Ok(None) => return Resume::Block,
            Err(error) => Err(error),
        },
        Some(Call::CapGrant) => grant(core, me, [frame.rdi, frame.rsi, frame.rdx]),
        Some(Call::CapReceive) => {
            let mut processes = core.processes.borrow_mut();
            caps_of(&mut processes.table, me)
                .receive()
                .map(u64::from)
                .ok_or(Error::Pending)
        }
        Some(Call::CapRevoke) => match revoke(core, me, frame.rdi) {
            Ok(Some(count)) => Ok(count),
            Ok(None) => return Resume::Block,
            Err(error) => Err(error),
        },
        Some(Call::CapDelete) => {
            let mut processes = core.processes.borrow_mut();
            let deleted = caps_of(&mut processes.table, me).delete(frame.rdi);
            deleted.map(|cap| {
                processes.dropped(core.local, &[cap]);
                0
            })
        }
        Some(Call::CapInfo) => {
            let mut processes = core.processes.borrow_mut();
            caps_of(&mut processes.table, me)
                .get(frame.rdi)
                .map(|cap| cap.object.kind() << 32 | cap.rights)
        }
        Some(Call::WaitNotify) => {
            let mut processes = core.processes.borrow_mut();
            if processes.notified.remove(&me) {
                Ok(0)
            } else {
                processes.table.block(me);
                return Resume::Block;
            }
        }
        Some(Call::Time) => {
            let tsc_per_ms = crate::shared::boot_facts().tsc_per_ms.max(1);
            Ok(u64::try_from(
                u128::from(atoll_arch::cpu::rdtsc()) * 1_000_000 / u128::from(tsc_per_ms),
            )
            .unwrap_or(u64::MAX))
        }
        Some(Call::CoreInfo) => {
            let cores = core.monitor().view().members.len() as u64;
            Ok((core.id as u64) << 32 | cores)
        }
        Some(Call::SkbQuery) => skb_query(core, [frame.rdi, frame.rsi, frame.rdx, frame.r10]),
        Some(Call::SpaceHash) => own_space(core, me, frame.rdi, RIGHT_READ).and_then(|()| {
            core.with_monitor(|monitor| monitor.space_hash(me.0))
                .ok_or(Error::NoSuchProcess)
        }),
        Some(Call::Dispatcher) => match cap(core, me, frame.rdi, CAP_DISPATCHER, 0) {
            Ok(Object::Dispatcher {
                pid,
                index,
                count,
                core: at,
            }) => {
                // Its own process's count as it is now (it grows by
                // `Span`); another's as the capability was made.
                let count = match pid == me.0 {
                    true => core
                        .processes
                        .borrow_mut()
                        .table
                        .machine(me)
                        .map_or(count, |machine| machine.dispatcher.1),
                    false => count,
                };
                Ok(u64::from(at) << 32 | u64::from(index) << 16 | u64::from(count))
            }
            Ok(_) => unreachable!("the table checked its type"),
            Err(error) => Err(error),
        },
        Some(Call::Map) => own_space(core, me, frame.rdi, RIGHT_MAP)
            .and_then(|()| map(core, me, [frame.rsi, frame.rdx, frame.r10])),
        Some(Call::Unmap) => {
            own_space(core, me, frame.rdi, RIGHT_MAP).and_then(|()| unmap(core, me, frame.rsi))
        }
        Some(Call::Protect) => own_space(core, me, frame.rdi, RIGHT_MAP)
            .and_then(|()| protect(core, me, frame.rsi, frame.rdx)),
        Some(Call::Poll) => poll(core, me, frame.rdi),
        Some(Call::WaitEvent) => match wait_event(core, me) {
            Ok(Waited::Written) => Ok(0),
            Ok(Waited::Blocked) => return Resume::Block,
            Err(error) => Err(error),
        },
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

/// The caller's capability table.
fn caps_of(table: &mut atoll_sched::Table<Machine, Report>, me: Pid) -> &mut CapTable {
    &mut table
        .machine(me)
        .expect("the running process has its machine")
        .caps
}

/// The object of the caller's capability `slot`, of type `kind` with the
/// rights `needs`.
fn cap(core: &Core, me: Pid, slot: u64, kind: u64, needs: u64) -> Result<Object, Error> {
    caps_of(&mut core.processes.borrow_mut().table, me).object(slot, kind, needs)
}

/// The process the caller's capability `slot` names (with `needs`).
fn process_cap(core: &Core, me: Pid, slot: u64, needs: u64) -> Result<Pid, Error> {
    match cap(core, me, slot, CAP_PROCESS, needs)? {
        Object::Process { pid } => Ok(Pid(pid)),
        _ => unreachable!("the table checked its type"),
    }
}

/// Checks that the caller's capability `slot` names its own address space
/// with `needs` (another's is no use to it: the space's replicas are on
/// that process's cores).
fn own_space(core: &Core, me: Pid, slot: u64, needs: u64) -> Result<(), Error> {
    match cap(core, me, slot, CAP_SPACE, needs)? {
        Object::Space { pid } if pid == me.0 => Ok(()),
        _ => Err(Error::WrongCapability),
    }
}

/// The address of the caller's own end of a channel that its capability
/// `slot` names, with `RIGHT_NOTIFY`.
fn own_end(core: &Core, me: Pid, slot: u64) -> Result<u64, Error> {
    match cap(core, me, slot, CAP_ENDPOINT, RIGHT_NOTIFY)? {
        Object::Endpoint {
            core: at,
            pid,
            address,
        } if pid == me.0 && usize::from(at) == core.id => Ok(address),
        _ => Err(Error::WrongCapability),
    }
}

/// A new endpoint for the caller's end of a channel at `address`, in its
/// table: the slot.
fn mint_end(core: &Core, me: Pid, address: u64) -> Result<u32, Error> {
    let mut processes = core.processes.borrow_mut();
    let Processes { table, cap_ids, .. } = &mut *processes;
    let end = Object::Endpoint {
        core: core.id as u16,
        pid: me.0,
        address,
    };
    caps_of(table, me).mint(cap_ids, end, RIGHTS_ALL)
}

/// `Ok(None)`: the spawn is under way on another core, and the caller now
/// waits for its answer (the call is made again when it comes).
fn spawn(
    core: &Core,
    parent: Pid,
    [name, name_length, args, args_length, at, handed]: [u64; 6],
) -> Result<Option<u64>, Error> {
    // The call made again once a spawn on another core answered (or woken
    // before): its answer first, whatever the arguments and the table are
    // like now.
    if let Some(waited) = spawn_answer(core, parent) {
        return waited;
    }
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| Error::NotText);
    let name = text(read_user(name, name_length, MAX_NAME)?)?;
    let args = text(read_user(args, args_length, MAX_ARGS)?)?;
    let (handed, room) = {
        let mut processes = core.processes.borrow_mut();
        let caps = caps_of(&mut processes.table, parent);
        let handed = match handed {
            NO_CAP => None,
            slot => Some(caps.send(slot, caps.get(slot)?.rights)?),
        };
        (handed, caps.len() < MAX_CAPS as usize)
    };
    if !room {
        return Err(Error::TableFull);
    }
    let elsewhere = match at.checked_sub(1) {
        Some(at) if at != core.id as u64 => Some(at),
        _ => None,
    };
    if let Some(at) = elsewhere {
        if handed.is_some_and(|sent| matches!(sent.object, Object::Frame { .. })) {
            // A frame is its core's: its counts are kept there alone.
            return Err(Error::WrongCapability);
        }
        return spawn_elsewhere(core, parent, at, &name, &args, handed);
    }
    let here = Members::one(CoreId(core.id as u16));
    match core.spawn_for(&name, &args, Owner::Parent(parent), here) {
        Ok(child) => {
            let mut processes = core.processes.borrow_mut();
            if let Some(handed) = handed {
                processes
                    .take_cap(child, handed, Some(HANDED))
                    .expect("a new process's HANDED slot is free");
            }
            let Processes { table, cap_ids, .. } = &mut *processes;
            let slot = caps_of(table, parent)
                .mint(cap_ids, Object::Process { pid: child.0 }, CHILD_RIGHTS)
                .expect("a slot was free, and only the caller's calls fill its table");
            drop(processes);
            core.flush_processes();
            Ok(Some(slot.into()))
        }
        Err(failure) => {
            if let SpawnFailure::NotLoaded(why) = &failure {
                println!(
                    "atoll: core {}: process {parent}: spawn {name}: {why}",
                    core.id
                );
            }
            Err(failure.error())
        }
    }
}

/// The rights of the capability `Spawn` answers with.
const CHILD_RIGHTS: u64 = RIGHT_WAIT | RIGHT_KILL | RIGHT_COPY;

/// The end of `parent`'s spawn on another core, if it has one under way:
/// the child's capability once the answer came, or the wait goes on.
fn spawn_answer(core: &Core, parent: Pid) -> Option<Result<Option<u64>, Error>> {
    let mut processes = core.processes.borrow_mut();
    let Some(answer) = *processes.pending_spawns.get(&parent)? else {
        processes.table.block(parent);
        return Some(Ok(None));
    };
    processes.pending_spawns.remove(&parent);
    let child = match answer {
        Ok(child) => child,
        Err(error) => return Some(Err(error)),
    };
    let Processes { table, cap_ids, .. } = &mut *processes;
    let minted =
        caps_of(table, parent).mint(cap_ids, Object::Process { pid: child.0 }, CHILD_RIGHTS);
    Some(match minted {
        Ok(slot) => Ok(Some(slot.into())),
        // Grants filled the table meanwhile: the child goes.
        Err(error) => {
            processes.remote_children.remove(&child);
            let kill = KillProcess { pid: child.0 };
            processes.kill_calls.push((CoreId(child.core()), kill));
            drop(processes);
            core.flush_processes();
            Err(error)
        }
    })
}

/// Spawns `name` on core `at` for `parent`: asks that core, and waits for
/// its answer (the call is made again and finds it).
fn spawn_elsewhere(
    core: &Core,
    parent: Pid,
    at: u64,
    name: &str,
    args: &str,
    handed: Option<Sent>,
) -> Result<Option<u64>, Error> {
    let mut processes = core.processes.borrow_mut();
    let at = u16::try_from(at)
        .ok()
        .filter(|&at| core.monitor().is_member(CoreId(at)))
        .ok_or(Error::NoSuchCore)?;
    let (Some(name), Some(args)) = (Bytes::new(name.as_bytes()), Bytes::new(args.as_bytes()))
    else {
        unreachable!("read within the same limits");
    };
    let handed = match handed {
        Some(sent) => Bytes::new(&sent.encode()).expect("a capability fits CAP_BYTES"),
        None => Bytes::default(),
    };
    let ask = SpawnChild {
        parent: parent.0,
        name,
        args,
        handed,
    };
    processes.spawn_calls.push((parent, CoreId(at), ask));
    processes.pending_spawns.insert(parent, None);
    processes.table.block(parent);
    drop(processes);
    core.flush_processes();
    Ok(None)
}

/// Kills process `pid`: here between its turns, or on its core by
/// message (the caller's capability for it had `RIGHT_KILL`).
fn kill(core: &Core, pid: Pid) -> Result<u64, Error> {
    if usize::from(pid.core()) != core.id {
        let mut processes = core.processes.borrow_mut();
        if let Some((_, Some(_))) = processes.remote_children.get(&pid) {
            // It has ended already.
            return Ok(0);
        }
        if !core.monitor().is_member(CoreId(pid.core())) {
            return Err(Error::NoSuchProcess);
        }
        let ask = KillProcess { pid: pid.0 };
        processes.kill_calls.push((CoreId(pid.core()), ask));
        drop(processes);
        core.flush_processes();
        return Ok(0);
    }
    match core.kill_for(pid) {
        // Its end, if it has ended already, is its parent's to wait for.
        Ok(()) | Err(ProcessError::Ended) => {
            core.flush_processes();
            Ok(0)
        }
        Err(_) => Err(Error::NoSuchProcess),
    }
}

/// Gives the process at the other end of the caller's channel (its
/// endpoint `endpoint`) a copy of its capability `slot` with `rights`.
fn grant(core: &Core, me: Pid, [endpoint, slot, rights]: [u64; 3]) -> Result<u64, Error> {
    let address = own_end(core, me, endpoint)?;
    let sent = caps_of(&mut core.processes.borrow_mut().table, me).send(slot, rights)?;
    let (at, peer) = peer_of(core, me, address)?;
    if usize::from(at.0) != core.id && matches!(sent.object, Object::Frame { .. }) {
        // A frame is its core's: its counts are kept there alone.
        return Err(Error::WrongCapability);
    }
    let mut processes = core.processes.borrow_mut();
    if usize::from(at.0) == core.id {
        if let Err(why) = processes.take_cap(peer, sent, None) {
            drop(processes);
            println!(
                "atoll: core {}: process {me}'s grant to process {peer} dropped: {why}",
                core.id
            );
        }
        return Ok(0);
    }
    let cap = Bytes::new(&sent.encode()).expect("a capability fits CAP_BYTES");
    processes
        .outbox
        .push((at, CapGranted { pid: peer.0, cap }.into()));
    drop(processes);
    core.flush_processes();
    Ok(0)
}

/// Revokes every capability made from the caller's `slot`: here at once,
/// then on every other core of the view by `RevokeCaps`. `Ok(None)`: the
/// caller now waits for their answers (the call is made again, and finds
/// the count).
fn revoke(core: &Core, me: Pid, slot: u64) -> Result<Option<u64>, Error> {
    let mut processes = core.processes.borrow_mut();
    if let Some(revocation) = processes.revoking.get(&me) {
        if revocation.is_done() {
            let deleted = revocation.deleted();
            processes.revoking.remove(&me);
            return Ok(Some(deleted.into()));
        }
        processes.table.block(me);
        return Ok(None);
    }
    let id = caps_of(&mut processes.table, me).get(slot)?.id;
    let count = processes.revoke_here(core.local, id);
    // What is made from it from now on is not revoked.
    let Processes { table, cap_ids, .. } = &mut *processes;
    caps_of(table, me)
        .renew(cap_ids, slot)
        .expect("the slot holds it");
    let others = core
        .monitor()
        .view()
        .members
        .minus(Members::one(CoreId(core.id as u16)));
    if others.is_empty() {
        return Ok(Some(count.into()));
    }
    for other in others.iter() {
        processes.revoke_calls.push((me, other, RevokeCaps { id }));
    }
    let revocation = Revocation::new(id, core.id as u16, count, others.iter().map(|core| core.0));
    processes.revoking.insert(me, revocation);
    processes.table.block(me);
    drop(processes);
    core.flush_processes();
    Ok(None)
}

/// What a `wait` (or `wait_event`) did.
enum Waited {
    /// The child had ended: its record is written (a change had ended).
    Written,
    /// It has not: the caller now waits for it.
    Blocked,
}

/// The page `vaddr` of a process, if it is one: page-aligned, in the user
/// range.
fn user_page(vaddr: u64) -> Result<u64, Error> {
    match vaddr.is_multiple_of(PAGE) && (USER_START..USER_END).contains(&vaddr) {
        true => Ok(vaddr),
        false => Err(Error::BadAddress),
    }
}

/// Whether `me` may propose one more change.
fn room_for_a_change(core: &Core, me: Pid) -> Result<(), Error> {
    let mine = core.processes.borrow().changes_of(me).count();
    match mine < MAX_CHANGES as usize {
        true => Ok(()),
        false => Err(Error::TooManyChanges),
    }
}

fn map(core: &Core, me: Pid, [vaddr, flags, frame_cap]: [u64; 3]) -> Result<u64, Error> {
    let vaddr = user_page(vaddr)?;
    if flags & !MAP_WRITABLE != 0 {
        return Err(Error::BadArgument);
    }
    room_for_a_change(core, me)?;
    if frame_cap != NO_CAP {
        return map_frame(core, me, vaddr, flags, frame_cap);
    }
    let frame = core.local.allocate_filled_frame(0).ok_or(Error::NoMemory)?;
    let flags = match flags & MAP_WRITABLE != 0 {
        true => PAGE_WRITABLE,
        false => 0,
    };
    let mapping = Mapping {
        paddr: frame,
        flags,
    };
    core.propose(
        me,
        vaddr,
        PageChange::Map(mapping),
        ChangeKind::Map { frame },
    )
}

/// Maps at `vaddr` the frame the caller's capability `slot` names.
fn map_frame(core: &Core, me: Pid, vaddr: u64, flags: u64, slot: u64) -> Result<u64, Error> {
    let writable = flags & MAP_WRITABLE != 0;
    let needs = match writable {
        true => RIGHT_MAP | RIGHT_WRITE,
        false => RIGHT_MAP,
    };
    let Object::Frame { core: at, frame } = cap(core, me, slot, CAP_FRAME, needs)? else {
        unreachable!("the table checked its type");
    };
    if usize::from(at) != core.id {
        // Frame capabilities stay on their core: this cannot be.
        return Err(Error::WrongCapability);
    }
    let mapping = Mapping {
        paddr: frame,
        flags: PAGE_FROM_CAP
            | match writable {
                true => PAGE_WRITABLE,
                false => 0,
            },
    };
    // Counted as mapped from now on, so that the frame stays while the map
    // is under way even if its last capability goes meanwhile.
    core.processes.borrow_mut().frames.mapped(frame);
    core.propose(
        me,
        vaddr,
        PageChange::Map(mapping),
        ChangeKind::MapFrame { frame },
    )
}

/// Adds a dispatcher on core `target` to the caller's process: freezes
/// its space on every core it spans (`FreezeSpace`), then asks the core to
/// join from the home's pages (`host::processes`). `Ok(None)`: the caller
/// waits (the call is made again, and finds the end).
fn span(core: &Core, me: Pid, target: u64) -> Result<Option<u64>, Error> {
    let mut processes = core.processes.borrow_mut();
    if let Some(growing) = processes.growing.get(&me) {
        let Stage::Done(result) = growing.stage else {
            processes.table.block(me);
            return Ok(None);
        };
        let (at, count) = (growing.core, growing.cores.len() as u16);
        processes.growing.remove(&me);
        let index = result?;
        let Processes { table, cap_ids, .. } = &mut *processes;
        let object = Object::Dispatcher {
            pid: me.0,
            index,
            count,
            core: at.0,
        };
        return caps_of(table, me)
            .mint(cap_ids, object, RIGHT_COPY)
            .map(|slot| Some(slot.into()));
    }
    let machine = processes
        .table
        .machine(me)
        .expect("the running process has its machine");
    let ((index, count), cores, args) = (machine.dispatcher, machine.cores, machine.args.clone());
    // A channel made or joined, or one on its way (its change under way).
    let has_channels = processes.has_channel(me)
        || processes.changes_of(me).any(|change| {
            matches!(
                change.kind,
                ChangeKind::Channel { .. } | ChangeKind::Connect { .. }
            )
        });
    // Its home dispatcher grows it; channels join processes on one core.
    if index != 0 || usize::from(me.core()) != core.id || has_channels {
        return Err(Error::BadArgument);
    }
    if caps_of(&mut processes.table, me).len() >= MAX_CAPS as usize {
        return Err(Error::TableFull);
    }
    drop(processes);
    let at = u16::try_from(target)
        .ok()
        .map(CoreId)
        .filter(|&at| core.monitor().is_member(at) && !cores.contains(at))
        .ok_or(Error::NoSuchCore)?;
    // The new dispatcher's stack, mapped writable by the caller; its
    // arguments end the top page, as they end every dispatcher's.
    let top = stack_top(count);
    let mapped = core.with_monitor(|monitor| monitor.space_mapping(me.0, top - PAGE));
    if mapped.is_none_or(|mapping| mapping.flags & PAGE_WRITABLE == 0) {
        return Err(Error::BadAddress);
    }
    let tables = core.local.page_tables();
    user::copy_to_user(tables, top - args.len() as u64, args.as_bytes())
        .map_err(|_| Error::BadAddress)?;
    let mut processes = core.processes.borrow_mut();
    let mut grown = cores;
    grown.insert(at);
    let members = cores.minus(Members::one(CoreId(core.id as u16)));
    processes.freeze(me);
    processes.growth = processes.growth.wrapping_add(1);
    let growth = processes.growth;
    for member in members.iter() {
        processes.freeze_calls.push((me, member, growth));
    }
    processes.growing.insert(
        me,
        Growing {
            growth,
            core: at,
            index: count,
            cores: grown,
            waiting: members,
            stage: Stage::Freezing,
        },
    );
    processes.table.block(me);
    drop(processes);
    core.flush_processes();
    Ok(None)
}

/// A fresh zeroed frame of this core, named by a new capability of the
/// caller's.
fn frame_alloc(core: &Core, me: Pid) -> Result<u64, Error> {
    let mut processes = core.processes.borrow_mut();
    if caps_of(&mut processes.table, me).len() >= MAX_CAPS as usize {
        return Err(Error::TableFull);
    }
    let frame = core.local.allocate_filled_frame(0).ok_or(Error::NoMemory)?;
    processes.frames.allocated(frame);
    let Processes { table, cap_ids, .. } = &mut *processes;
    let object = Object::Frame {
        core: core.id as u16,
        frame,
    };
    let slot = caps_of(table, me)
        .mint(cap_ids, object, RIGHT_MAP | RIGHT_WRITE | RIGHT_COPY)
        .expect("a slot was free");
    Ok(slot.into())
}

/// Refuses a change of the caller's channel page at `vaddr`: it stays,
/// writable, while its process runs.
fn not_a_channel(core: &Core, me: Pid, vaddr: u64) -> Result<(), Error> {
    let processes = core.processes.borrow();
    match processes.channels.contains_key(&(me, vaddr))
        || processes.connections.contains_key(&(me, vaddr))
    {
        true => Err(Error::BadArgument),
        false => Ok(()),
    }
}

fn unmap(core: &Core, me: Pid, vaddr: u64) -> Result<u64, Error> {
    let vaddr = user_page(vaddr)?;
    not_a_channel(core, me, vaddr)?;
    room_for_a_change(core, me)?;
    core.propose(me, vaddr, PageChange::Unmap, ChangeKind::Unmap { vaddr })
}

/// Makes the caller's page at `vaddr` writable or read-only (`flags`).
/// A page that is not mapped is left to the holders to refuse.
fn protect(core: &Core, me: Pid, vaddr: u64, flags: u64) -> Result<u64, Error> {
    let vaddr = user_page(vaddr)?;
    if flags & !MAP_WRITABLE != 0 {
        return Err(Error::BadArgument);
    }
    not_a_channel(core, me, vaddr)?;
    let current = core.with_monitor(|monitor| monitor.space_mapping(me.0, vaddr));
    if current.is_some_and(|mapping| mapping.flags & (PAGE_EXECUTABLE | PAGE_FROM_CAP) != 0) {
        // Code stays as it was loaded: never writable; a frame a capability
        // names keeps the rights it was mapped with.
        return Err(Error::BadArgument);
    }
    room_for_a_change(core, me)?;
    let flags = match flags & MAP_WRITABLE != 0 {
        true => PAGE_WRITABLE,
        false => 0,
    };
    core.propose(
        me,
        vaddr,
        PageChange::Protect { flags },
        ChangeKind::Protect,
    )
}

/// Channels join processes that each run on one core: a process's notify
/// wakes the one dispatcher at the other end.
fn single_core(core: &Core, me: Pid) -> Result<(), Error> {
    let mut processes = core.processes.borrow_mut();
    match processes
        .table
        .machine(me)
        .map(|machine| machine.dispatcher.1)
    {
        Some(1) => Ok(()),
        _ => Err(Error::BadArgument),
    }
}

fn channel_create(core: &Core, me: Pid, address: u64) -> Result<u64, Error> {
    let address = user_page(address)?;
    room_for_a_change(core, me)?;
    single_core(core, me)?;
    let slot = mint_end(core, me, address)?;
    let proposed = core
        .local
        .allocate_filled_frame(0)
        .ok_or(Error::NoMemory)
        .and_then(|frame| {
            let mapping = Mapping {
                paddr: frame,
                flags: PAGE_WRITABLE,
            };
            let kind = ChangeKind::Channel {
                frame,
                address,
                slot,
            };
            core.propose(me, address, PageChange::Map(mapping), kind)
        });
    if proposed.is_err() {
        core.processes.borrow_mut().unmint_end(me, slot, address);
    }
    proposed
}

/// Connects the caller to the channel its capability `endpoint` names (the
/// creator's end, with `RIGHT_CONNECT`), mapped at `mine` here.
fn channel_connect(core: &Core, me: Pid, endpoint: u64, mine: u64) -> Result<u64, Error> {
    let mine = user_page(mine)?;
    room_for_a_change(core, me)?;
    single_core(core, me)?;
    let Object::Endpoint {
        core: at,
        pid,
        address,
    } = cap(core, me, endpoint, CAP_ENDPOINT, RIGHT_CONNECT)?
    else {
        unreachable!("the table checked its type");
    };
    let pid = Pid(pid);
    if pid == me || CoreId(at) != CoreId(pid.core()) {
        return Err(Error::WrongCapability);
    }
    let channel = ChannelName {
        core: CoreId(at),
        pid,
        address,
    };
    if usize::from(at) != core.id {
        if !core.monitor().is_member(CoreId(at)) {
            return Err(Error::NoSuchChannel);
        }
        let slot = mint_end(core, me, mine)?;
        let kind = ChangeKind::Connect {
            address: mine,
            channel,
            frame: 0,
            slot,
        };
        // The frame comes from the channel's core first (`host::processes`).
        let mut processes = core.processes.borrow_mut();
        let token = processes.new_change(me, kind);
        let ask = ChannelConnect {
            pid: pid.0,
            address,
            by: me.0,
        };
        processes.connect_calls.push((token, channel.core, ask));
        drop(processes);
        core.flush_processes();
        return Ok(token & u64::from(u32::MAX));
    }
    {
        let processes = core.processes.borrow();
        processes
            .channels
            .get(&(pid, address))
            .filter(|open| open.peer.is_none() && !open.closed && !open.creator_gone)
            .ok_or(Error::NoSuchChannel)?;
    }
    let slot = mint_end(core, me, mine)?;
    let frame = {
        let mut processes = core.processes.borrow_mut();
        let open = processes
            .channels
            .get_mut(&(pid, address))
            .expect("checked just now");
        open.peer = Some((CoreId(core.id as u16), me));
        open.frame
    };
    let mapping = Mapping {
        paddr: frame,
        flags: PAGE_WRITABLE,
    };
    let kind = ChangeKind::Connect {
        address: mine,
        channel,
        frame,
        slot,
    };
    let proposed = core.propose(me, mine, PageChange::Map(mapping), kind);
    if proposed.is_err() {
        let mut processes = core.processes.borrow_mut();
        processes.unmint_end(me, slot, mine);
        if let Some(open) = processes.channels.get_mut(&(pid, address)) {
            open.peer = None;
        }
    }
    proposed
}

/// The process at the other end of the caller's channel at `address`,
/// and its core.
fn peer_of(core: &Core, me: Pid, address: u64) -> Result<(CoreId, Pid), Error> {
    let processes = core.processes.borrow();
    let peer = match processes.channels.get(&(me, address)) {
        Some(channel) => channel.peer,
        None => processes
            .connections
            .get(&(me, address))
            .map(|connection| (connection.channel.core, connection.channel.pid)),
    };
    peer.ok_or(Error::NoSuchChannel)
}

/// Wakes process `peer` of core `at` if it waits for a notification.
fn notify(core: &Core, (at, peer): (CoreId, Pid)) -> Result<u64, Error> {
    let mut processes = core.processes.borrow_mut();
    if usize::from(at.0) == core.id {
        processes.notified.insert(peer);
        processes.table.wake(peer);
        return Ok(0);
    }
    // The message wakes that core if it sleeps (its rings' own handshake),
    // and its kernel wakes the process.
    processes
        .outbox
        .push((at, ChannelNotify { pid: peer.0 }.into()));
    drop(processes);
    core.flush_processes();
    Ok(0)
}

/// Evaluates a query against this core's knowledge base and writes its
/// answers, a line each, to the caller.
fn skb_query(core: &Core, [body, length, out, room]: [u64; 4]) -> Result<u64, Error> {
    let body =
        String::from_utf8(read_user(body, length, MAX_QUERY)?).map_err(|_| Error::NotText)?;
    let answers = core
        .with_monitor(|monitor| monitor.knowledge().query(&body))
        .map_err(|_| Error::BadQuery)?;
    let mut text = String::new();
    for answer in &answers {
        let bindings: Vec<String> = answer
            .iter()
            .map(|(variable, value)| format!("{variable} = {value}"))
            .collect();
        match bindings.is_empty() {
            true => text += "true\n",
            false => text += &(bindings.join(", ") + "\n"),
        }
    }
    if text.len() as u64 > room {
        return Err(Error::TooLong);
    }
    let tables = core.local.page_tables();
    user::copy_to_user(tables, out, text.as_bytes()).map_err(|_| Error::BadAddress)?;
    Ok(text.len() as u64)
}

/// Whether the change of `token` has ended; spends the token if it has.
fn poll(core: &Core, me: Pid, token: u64) -> Result<u64, Error> {
    let token = u32::try_from(token).map_err(|_| Error::NoSuchToken)?;
    let key = u64::from(me.0) << 32 | u64::from(token);
    let mut processes = core.processes.borrow_mut();
    let change = processes.changes.get(&key).ok_or(Error::NoSuchToken)?;
    let done = change.done.ok_or(Error::Pending)?;
    let value = change.kind.value();
    processes.changes.remove(&key);
    match done {
        true => Ok(value),
        false => Err(Error::Refused),
    }
}

/// Waits until one of the caller's changes has ended, or a process it has
/// a channel with notifies it (an executor's futures wait on both).
fn wait_event(core: &Core, me: Pid) -> Result<Waited, Error> {
    let mut processes = core.processes.borrow_mut();
    let changing = processes.changes_of(me).next().is_some();
    let ended = processes.changes_of(me).any(|change| change.done.is_some());
    if ended || processes.notified.remove(&me) {
        return Ok(Waited::Written);
    }
    if !changing && !processes.has_channel(me) {
        return Err(Error::NoSuchToken);
    }
    processes.table.block(me);
    Ok(Waited::Blocked)
}

fn wait(core: &Core, me: Pid, Pid(child): Pid, record: u64) -> Result<Waited, Error> {
    let tables = core.local.page_tables();
    // The record's place is checked before the child is forgotten, so that
    // a bad one loses nothing.
    user::copy_to_user(tables, record, &ExitRecord::default().to_bytes())
        .map_err(|_| Error::BadAddress)?;
    let mut processes = core.processes.borrow_mut();
    let remote = match processes.remote_children.get(&Pid(child)) {
        Some(&(parent, _)) if parent != me => return Err(Error::NotAChild),
        Some(&(_, Some(exit))) => {
            processes.remote_children.remove(&Pid(child));
            Some(exit)
        }
        Some(&(_, None)) => {
            processes.table.blocked(me, Pid(child));
            return Ok(Waited::Blocked);
        }
        None => None,
    };
    let local = match remote {
        Some(exit) => Ok(Some(exit)),
        None => processes.table.wait(me, Pid(child)),
    };
    let exit = match local {
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
