//! The host's side of this core's processes: what other cores ask of them
//! and tell about them (`process` service requests and notes), settling
//! them with the monitor (spaces opened and closed, answers, the joins of
//! a process that spans cores), and the effects of their replicated spaces
//! on this core's page tables.
//!
//! A process that spans cores has a home (the core that spawned it, its
//! dispatcher 0) and members. The home loads its image (frames of its
//! pool), sends each member the pages (`ProcessPages`) and asks it to join
//! (`JoinProcess`): the member builds page tables of its own that map the
//! same frames, opens its replica of the space, and holds its dispatcher.
//! Once all have joined, the home starts them (`StartProcess`). The process
//! ends when its home dispatcher does (or when any dispatcher faults, or a
//! core of it stops): the home ends the others (`EndDispatcher`); each,
//! once it no longer maps the pages, says so (`DispatcherEnded`); and when
//! all have, the home frees its frames and tells them to free theirs
//! (`ProcessGone`).

use alloc::string::String;
use alloc::vec::Vec;

use atoll_abi::HANDED;
use atoll_caps::{Object, Sent, Unanswered};
use atoll_iface::Bytes;
use atoll_monitor::process::{
    CHANNEL_FOUND, CHANNEL_NONE, CapsRevoked, ChannelClosed, ChannelFrame, ChannelGone,
    ChildSpawned, CoreSet, DispatcherEnded, ENDED_NOT_LOADED, EndDispatcher, FROZEN, FreezeSpace,
    JOIN_FAILED, JOINED, JoinProcess, Joined, Killed, NOT_FROZEN, PAGE_ENTRY_BYTES, PAGES_BYTES,
    PageChange, ProcessGone, ProcessNote, ProcessPages, ProcessRequest, Processes, ProgramEnded,
    RevokeCaps, SPAWN_FAILED, SPAWNED, SpaceError, SpaceFrozen, SpaceGrown, Spawned, StartProcess,
    pack_pages,
};
use atoll_monitor::wire::Held;
use atoll_monitor::{CallError, CoreId, Members, Ticket, Wire};
use atoll_replica::Mapping;
use atoll_sched::{Exit, Owner, Pid, ProcessError};

use super::{Core, Host, ticks};
use crate::process::{
    self, ChangeKind, ChannelName, Machine, PAGE_EXECUTABLE, PAGE_WRITABLE, Report, Retiring,
    Stage, start_of,
};
use crate::programs::ended_of;
use atoll_arch::{cpu, paging};

/// How long a home waits for a core to join a process.
const JOIN_TIMEOUT_MS: u64 = 5_000;

impl Host {
    /// Carries out another core's `request` about this core's processes,
    /// and answers it (a run, once the process ends).
    pub(super) fn process_request(&mut self, core: &Core, token: u32, request: ProcessRequest) {
        let now = cpu::rdtsc();
        let failed = |name: &str, error: process::SpawnFailure| {
            println!("atoll: core {}: spawn {name}: {error}", core.id);
        };
        match request {
            ProcessRequest::Run { cores, name, args } => {
                let owner = Owner::Kernel(Report::Remote(token));
                if let Err(error) = core.spawn_for(&name, &args, owner, cores) {
                    failed(&name, error);
                    let answer = ProgramEnded::only(ENDED_NOT_LOADED, 0);
                    self.monitor
                        .process_answer(now, token, answer, &mut self.out);
                }
            }
            ProcessRequest::Spawn { cores, name, args } => {
                let owner = Owner::Kernel(Report::Console);
                let answer = match core.spawn_for(&name, &args, owner, cores) {
                    Ok(pid) => {
                        let mut processes = core.processes.borrow_mut();
                        if let Some(spanning) = processes.spanning.get_mut(&pid) {
                            // Answered once every core has joined.
                            spanning.spawned_answer = Some(token);
                            return;
                        }
                        Spawned {
                            outcome: SPAWNED,
                            pid: pid.0,
                        }
                    }
                    Err(error) => {
                        failed(&name, error);
                        Spawned {
                            outcome: SPAWN_FAILED,
                            pid: 0,
                        }
                    }
                };
                self.monitor
                    .process_answer(now, token, answer, &mut self.out);
            }
            ProcessRequest::Kill { pid } => {
                let outcome = process::kill_outcome(core.kill_for(Pid(pid)));
                self.monitor
                    .process_answer(now, token, Killed { outcome }, &mut self.out);
            }
            ProcessRequest::List => {
                let lines = core.process_lines();
                let text =
                    Bytes::new(lines.as_bytes()).expect("process_lines keeps within LIST_BYTES");
                self.monitor
                    .process_answer(now, token, Processes { text }, &mut self.out);
            }
            ProcessRequest::SpawnChild {
                from,
                parent,
                name,
                args,
                handed,
            } => {
                let owner = Owner::Kernel(Report::RemoteParent {
                    core: from.0,
                    pid: parent,
                });
                let here = Members::one(CoreId(core.id as u16));
                let handed = match handed.is_empty() {
                    true => None,
                    false => {
                        let sent = Sent::decode(&handed);
                        if sent.is_none() {
                            println!(
                                "atoll: core {}: spawn {name}: the capability handed from core {} is not one; dropped",
                                core.id, from.0
                            );
                        }
                        sent
                    }
                };
                let answer = match core.spawn_for(&name, &args, owner, here) {
                    Ok(pid) => {
                        if let Some(sent) = handed {
                            let mut processes = core.processes.borrow_mut();
                            if let Err(why) = processes.take_cap(pid, sent, Some(HANDED)) {
                                drop(processes);
                                println!(
                                    "atoll: core {}: process {pid} ({name}) starts without the capability handed to it: {why}",
                                    core.id
                                );
                            }
                        }
                        ChildSpawned {
                            outcome: SPAWNED,
                            pid: pid.0,
                        }
                    }
                    Err(failure) => {
                        failed(&name, failure.clone());
                        ChildSpawned {
                            outcome: failure.error() as u8,
                            pid: 0,
                        }
                    }
                };
                self.monitor
                    .process_answer(now, token, answer, &mut self.out);
            }
            ProcessRequest::Connect {
                from,
                pid,
                address,
                by,
            } => {
                let mut processes = core.processes.borrow_mut();
                let answer = match processes
                    .channels
                    .get_mut(&(Pid(pid), address))
                    .filter(|open| open.peer.is_none() && !open.closed && !open.creator_gone)
                {
                    Some(open) => {
                        open.peer = Some((from, Pid(by)));
                        ChannelFrame {
                            outcome: CHANNEL_FOUND,
                            frame: open.frame,
                        }
                    }
                    None => ChannelFrame {
                        outcome: CHANNEL_NONE,
                        frame: 0,
                    },
                };
                drop(processes);
                self.monitor
                    .process_answer(now, token, answer, &mut self.out);
            }
            ProcessRequest::Freeze { pid } => {
                let pid = Pid(pid);
                let mut processes = core.processes.borrow_mut();
                // A dispatcher of another core's process: it proposes no
                // change from now on, and says so once none is under way
                // (one that exited proposes none, but its replica takes
                // part still, and takes the new holders in too).
                let here = processes.table.machine(pid).is_some()
                    || processes.lingering.contains_key(&pid);
                if usize::from(pid.core()) != core.id && here {
                    processes.freeze(pid);
                    processes.freezing.push((pid, token));
                    return;
                }
                drop(processes);
                let answer = SpaceFrozen {
                    outcome: NOT_FROZEN,
                };
                self.monitor
                    .process_answer(now, token, answer, &mut self.out);
            }
            ProcessRequest::Revoke { id } => {
                let count = core.processes.borrow_mut().revoke_here(core.local, id);
                self.monitor
                    .process_answer(now, token, CapsRevoked { count }, &mut self.out);
            }
            ProcessRequest::Join {
                home,
                pid,
                index,
                cores,
                entry,
                name,
                args,
            } => {
                let outcome = match join(core, home, Pid(pid), index, cores, entry, &name, &args) {
                    Ok(()) => JOINED,
                    Err(why) => {
                        println!(
                            "atoll: core {}: cannot join process {pid} ({name}) of core {}: {why}",
                            core.id, home.0
                        );
                        JOIN_FAILED
                    }
                };
                self.monitor
                    .process_answer(now, token, Joined { outcome }, &mut self.out);
            }
        }
    }

    /// Acts on what another core tells about processes.
    pub(super) fn process_note(&mut self, core: &Core, note: ProcessNote) {
        let mut processes = core.processes.borrow_mut();
        match note {
            ProcessNote::Pages { pid, pages } => {
                let pages = pages
                    .into_iter()
                    .map(|(page, paddr, flags)| (page, Mapping { paddr, flags }));
                processes
                    .joining_pages
                    .entry(Pid(pid))
                    .or_default()
                    .extend(pages);
            }
            ProcessNote::Start { pid } => processes.table.start(Pid(pid)),
            ProcessNote::End { pid } => {
                if let Some(lingering) = processes.lingering.remove(&Pid(pid)) {
                    processes.retiring.push(lingering);
                    return;
                }
                drop(processes);
                end_between_turns(core, Pid(pid), Exit::Killed);
            }
            ProcessNote::Ended { from, ended, .. } => {
                let pid = Pid(ended.pid);
                let Some(spanning) = processes.spanning.get_mut(&pid) else {
                    // Not its home: another core of a process whose home
                    // stopped no longer maps its pages.
                    match processes.homeless.get_mut(&pid) {
                        Some(homeless) => homeless.waiting.remove(from),
                        None => processes.released_by.entry(pid).or_default().insert(from),
                    }
                    return;
                };
                spanning.running.remove(from);
                let exit = crate::programs::exit_of(&ended);
                drop(processes);
                // A dispatcher's fault ends the process; one that exited
                // leaves the others running.
                if let Some(fault @ Exit::Fault { .. }) = exit {
                    end_between_turns(core, pid, fault);
                }
            }
            ProcessNote::ProcessGone { pid } => {
                for frame in processes.held_frames.remove(&Pid(pid)).unwrap_or_default() {
                    processes.give_back(core.local, frame);
                }
            }
            ProcessNote::ChildEnded { parent, ended } => {
                let (parent, child) = (Pid(parent), Pid(ended.pid));
                let exit = crate::programs::exit_of(&ended);
                if let Some((waiter, child_exit)) = processes.remote_children.get_mut(&child)
                    && *waiter == parent
                {
                    *child_exit = exit;
                    processes.table.wake_waiting(parent, child);
                } else if let Some(exit) = exit {
                    // Its parent ended first (or gave it up): nobody waits
                    // for it, and its end is told here, as an orphan's is on
                    // its own core.
                    drop(processes);
                    println!(
                        "atoll: core {}: process {child} of core {}, whose parent {parent} no longer waits for it, {}",
                        core.id,
                        child.core(),
                        process::describe_exit(exit)
                    );
                }
            }
            ProcessNote::Notify { pid } => {
                processes.notified.insert(Pid(pid));
                processes.table.wake(Pid(pid));
            }
            ProcessNote::Closed { pid, address, used } => {
                closed(core, &mut processes, Pid(pid), address, used);
            }
            ProcessNote::Grown { pid, cores } => {
                let pid = Pid(pid);
                if let Some(machine) = processes.table.machine(pid) {
                    machine.cores = cores;
                    machine.dispatcher.1 = cores.len() as u16;
                }
                // It thaws once its replica takes the new holders in.
                processes.regrowing.push((pid, cores));
            }
            ProcessNote::Granted { pid, cap } => {
                let taken = match Sent::decode(&cap) {
                    Some(sent) => processes.take_cap(Pid(pid), sent, None),
                    None => Err("it is not a capability"),
                };
                if let Err(why) = taken {
                    drop(processes);
                    println!(
                        "atoll: core {}: a grant to process {pid} dropped: {why}",
                        core.id
                    );
                }
            }
            ProcessNote::Gone { from, pid, address } => {
                let channel = ChannelName {
                    core: from,
                    pid: Pid(pid),
                    address,
                };
                creator_gone(&mut processes, channel);
            }
        }
    }

    /// Settles this core's processes with the monitor: opens the spaces of
    /// new ones, makes the calls and sends the notes of processes that span
    /// cores, closes the spaces of ended ones (and gives back what they
    /// held) once no change of theirs is under way, and hands on the
    /// answers their ends produced for other cores. Whether it did
    /// anything.
    pub(super) fn settle_processes(&mut self, core: &Core) -> bool {
        let view = self.monitor.view();
        // This runs after every step: with nothing to settle, it is one
        // look (the node loop's message path pays no more).
        if core.processes.borrow().settled(view.epoch) {
            return false;
        }
        let now = cpu::rdtsc();
        let members = view.members;
        let (to_open, answers, retiring, outbox, join_calls, connect_calls) = {
            let mut processes = core.processes.borrow_mut();
            (
                core::mem::take(&mut processes.to_open),
                processes.take_answers(),
                core::mem::take(&mut processes.retiring),
                core::mem::take(&mut processes.outbox),
                core::mem::take(&mut processes.join_calls),
                core::mem::take(&mut processes.connect_calls),
            )
        };
        // A space still busy is no progress: it is tried again after the
        // next step.
        let mut did = self.make_child_calls(core, now);
        did |= self.make_revoke_calls(core, now);
        did |= self.grow_processes(core, now);
        did |= !to_open.is_empty()
            || !answers.is_empty()
            || !outbox.is_empty()
            || !join_calls.is_empty()
            || !connect_calls.is_empty();
        for (pid, holders, pages) in to_open {
            if let Err(error) = self
                .monitor
                .open_space(now, pid.0, holders, &pages, &mut self.out)
            {
                println!(
                    "atoll: core {}: process {pid}: its space does not open: {error:?}",
                    core.id
                );
            }
        }
        for (token, answer) in answers {
            self.monitor
                .process_answer(now, token, answer, &mut self.out);
        }
        for (to, message) in outbox {
            self.monitor.send(now, to, message, &mut self.out);
        }
        for (pid, member, join) in join_calls {
            let ticket =
                self.monitor
                    .call(now, member, join, ticks(JOIN_TIMEOUT_MS), &mut self.out);
            core.processes
                .borrow_mut()
                .join_tickets
                .insert(ticket, (pid, member));
        }
        for (token, to, ask) in connect_calls {
            let ticket = self
                .monitor
                .call(now, to, ask, ticks(JOIN_TIMEOUT_MS), &mut self.out);
            core.processes
                .borrow_mut()
                .connect_tickets
                .insert(ticket, token);
        }
        did |= self.take_joins(core);
        did |= self.take_channel_frames(core);
        // Cores leave only with a new view: look again only then.
        let watched = core.processes.borrow().watched_epoch;
        if watched != view.epoch {
            core.processes.borrow_mut().watched_epoch = view.epoch;
            did |= self.watch_cores(core, members);
        }
        let mut still = Vec::new();
        for retiring in retiring {
            // A dispatcher whose home stopped keeps its replica of the space
            // open until the process's other cores are done too: they may
            // still ask it how a round of the home's ended (cooperative
            // termination). Its page tables go now (`settle_homeless`
            // closes the space).
            let homeless = retiring
                .tell_home
                .is_some_and(|(home, _, _)| !members.contains(CoreId(home)));
            if homeless {
                did = true;
                self.retire(core, retiring, members);
                continue;
            }
            match self.monitor.close_space(retiring.pid.0) {
                Err(SpaceError::Busy) => still.push(retiring),
                _ => {
                    did = true;
                    self.retire(core, retiring, members);
                }
            }
        }
        core.processes.borrow_mut().retiring.extend(still);
        did |= self.finish_spanning(core);
        did |= self.settle_homeless(core, members);
        did
    }

    /// Gives back what an ended process (or dispatcher) held on this core,
    /// its space closed: its page tables, the frames it unmapped, and the
    /// frames of this core it mapped (at once, unless other cores may map
    /// them still); a dispatcher's home hears it ended.
    fn retire(&mut self, core: &Core, retiring: Retiring, members: Members) {
        let Retiring {
            pid,
            space,
            spans,
            tell_home,
            cores,
        } = retiring;
        let mut processes = core.processes.borrow_mut();
        let mut held = Vec::new();
        // A channel it created whose other end still maps the frame keeps
        // it; the other end's going frees it (`closed`).
        let created: Vec<u64> = processes
            .channels
            .range((pid, 0)..=(pid, u64::MAX))
            .map(|(&(_, address), _)| address)
            .collect();
        let mut kept = Vec::new();
        for address in created {
            let open = processes
                .channels
                .get_mut(&(pid, address))
                .expect("listed above");
            if let Some((at, _)) = open.peer.filter(|_| !open.closed) {
                open.creator_gone = true;
                kept.push(open.frame);
                // The other end is alone now: it hears so.
                let channel = ChannelName {
                    core: CoreId(core.id as u16),
                    pid,
                    address,
                };
                if usize::from(at.0) == core.id {
                    creator_gone(&mut processes, channel);
                } else {
                    let gone = ChannelGone {
                        pid: pid.0,
                        address,
                    };
                    processes.outbox.push((at, gone.into()));
                }
            } else {
                processes.channels.remove(&(pid, address));
            }
        }
        // Channels it connected to: their frames are their creators' cores'
        // (this one's too) to free, once told.
        let connected: Vec<(u64, ChannelName)> = processes
            .connections
            .range((pid, 0)..=(pid, u64::MAX))
            .map(|(&(_, address), connection)| {
                kept.push(connection.frame);
                (address, connection.channel)
            })
            .collect();
        process::release_keeping(
            core.local,
            space,
            spans.then_some(&mut held),
            &kept,
            &mut |frame| processes.give_back(core.local, frame),
        );
        for (address, name) in connected {
            processes.connections.remove(&(pid, address));
            tell_closed(core, &mut processes, name, true);
        }
        let unmapped: Vec<(Pid, u64)> = processes
            .unmapped
            .range((pid, 0)..=(pid, u64::MAX))
            .map(|(&key, _)| key)
            .collect();
        for key in unmapped {
            for frame in processes.unmapped.remove(&key).unwrap_or_default() {
                match spans {
                    true => held.push(frame),
                    false => processes.give_back(core.local, frame),
                }
            }
        }
        let home_gone = tell_home.is_some_and(|(home, _, _)| !members.contains(CoreId(home)));
        if home_gone {
            // Its home stopped: nobody will say `ProcessGone`. The other
            // cores it spanned may map these frames until they too end
            // their dispatchers: they say so to each other, and the frames
            // go back once all still in the view have (`settle_homeless`).
            let me = CoreId(core.id as u16);
            let home = CoreId(tell_home.map_or(0, |(home, _, _)| home));
            let others = cores.minus(Members::one(me)).minus(Members::one(home));
            let heard = processes.released_by.remove(&pid).unwrap_or_default();
            let (index, exit) =
                tell_home.map_or((0, Exit::Killed), |(_, index, exit)| (index, exit));
            for other in others.iter() {
                processes
                    .outbox
                    .push((other, dispatcher_ended(pid, index, exit).into()));
            }
            let homeless = process::Homeless {
                waiting: others.minus(heard),
                frames: held,
            };
            processes.homeless.insert(pid, homeless);
        } else if !held.is_empty() {
            processes.held_frames.entry(pid).or_default().extend(held);
        }
        if let Some((home, index, exit)) = tell_home
            && !home_gone
        {
            processes
                .outbox
                .push((CoreId(home), dispatcher_ended(pid, index, exit).into()));
        }
    }

    /// Processes whose home stopped: their frames here go back once every
    /// other core they spanned, still in the view, has said it no longer
    /// maps them. Whether any went back.
    fn settle_homeless(&mut self, core: &Core, members: Members) -> bool {
        let mut processes = core.processes.borrow_mut();
        let heard: Vec<Pid> = processes
            .homeless
            .iter()
            .filter(|(_, homeless)| homeless.waiting.intersect(members).is_empty())
            .map(|(&pid, _)| pid)
            .collect();
        // Its replica of the space closes once its own rounds have ended.
        let done: Vec<Pid> = heard
            .into_iter()
            .filter(|pid| !matches!(self.monitor.close_space(pid.0), Err(SpaceError::Busy)))
            .collect();
        for &pid in &done {
            let homeless = processes.homeless.remove(&pid).expect("listed above");
            for frame in homeless.frames {
                processes.give_back(core.local, frame);
            }
        }
        !done.is_empty()
    }
}

/// Process `pid` (of this core) spans `cores` from now on (its old ones,
/// if a core did not join it): its home's dispatcher and every other core
/// it spans take them in and thaw its space.
fn finish_growth(core: &Core, processes: &mut process::Processes, pid: Pid, cores: Members) {
    let me = CoreId(core.id as u16);
    if let Some(machine) = processes.table.machine(pid) {
        machine.cores = cores;
        machine.dispatcher.1 = cores.len() as u16;
    }
    for member in cores.minus(Members::one(me)).iter() {
        let grown = SpaceGrown {
            pid: pid.0,
            cores: CoreSet(cores),
        };
        processes.outbox.push((member, grown.into()));
    }
    processes.regrowing.push((pid, cores));
    // The call made again finds its end.
    processes.table.wake(pid);
}

/// The reply of type `M` a call's `result` carries, if it is one.
fn reply<M>(result: &Result<Wire, CallError>) -> Option<M>
where
    M: atoll_iface::Message,
    M::Interface: Held,
{
    result.clone().ok()?.take::<M>()
}

/// `DispatcherEnded` for dispatcher `index` of `pid`, ended as `exit`.
fn dispatcher_ended(pid: Pid, index: u16, exit: Exit) -> DispatcherEnded {
    let mut ended = ended_of(exit);
    ended.pid = pid.0;
    DispatcherEnded::new(index, &ended)
}

impl Host {
    /// The answers to this core's `JoinProcess` calls: a process all of
    /// whose cores joined starts everywhere; one a core could not join is
    /// killed. Whether any came.
    fn take_joins(&mut self, core: &Core) -> bool {
        let mut processes = core.processes.borrow_mut();
        if processes.join_tickets.is_empty() {
            return false;
        }
        let mut answered: Vec<(Ticket, Result<Wire, CallError>)> = Vec::new();
        self.mailbox.retain(|(ticket, result)| {
            if processes.join_tickets.contains_key(ticket) {
                answered.push((*ticket, result.clone()));
                false
            } else {
                true
            }
        });
        let mut doomed = Vec::new();
        for (ticket, result) in &answered {
            let (pid, member) = processes
                .join_tickets
                .remove(ticket)
                .expect("taken for its ticket");
            let joined = reply::<Joined>(result).is_some_and(|joined| joined.outcome == JOINED);
            let Some(spanning) = processes.spanning.get_mut(&pid) else {
                continue;
            };
            spanning.joining.remove(member);
            if !joined {
                println!(
                    "atoll: core {}: process {pid}: core {} did not join it; it is killed",
                    core.id, member.0
                );
                spanning.running.remove(member);
                doomed.push(pid);
                let answer = spanning.spawned_answer.take();
                // It may have joined after all, its answer lost: its
                // dispatcher ends too.
                let end = EndDispatcher { pid: pid.0 };
                processes.outbox.push((member, end.into()));
                if let Some(token) = answer {
                    let failed = Spawned {
                        outcome: SPAWN_FAILED,
                        pid: pid.0,
                    };
                    processes.answers.push((token, failed.into()));
                }
            } else if spanning.joining.is_empty() && !spanning.ended {
                let members: Vec<CoreId> = spanning.members.iter().collect();
                let answer = spanning.spawned_answer.take();
                for member in members {
                    let start = StartProcess { pid: pid.0 };
                    processes.outbox.push((member, start.into()));
                }
                processes.table.start(pid);
                if let Some(token) = answer {
                    let spawned = Spawned {
                        outcome: SPAWNED,
                        pid: pid.0,
                    };
                    processes.answers.push((token, spawned.into()));
                }
            }
        }
        drop(processes);
        for pid in doomed {
            end_between_turns(core, pid, Exit::Killed);
        }
        !answered.is_empty()
    }

    /// Cores that stopped: a process one of whose cores stopped is killed
    /// (its dispatchers elsewhere too), and a dispatcher whose home stopped
    /// ends. Whether it found any.
    fn watch_cores(&mut self, core: &Core, members: Members) -> bool {
        let mut processes = core.processes.borrow_mut();
        processes.forget_cores(core.local, members);
        // A core that joined during a revocation is asked too: a core asked
        // before may have granted it a copy since.
        let mut joined = Vec::new();
        for (&pid, revocation) in &mut processes.revoking {
            for member in members.iter() {
                if revocation.include(member.0) {
                    joined.push((
                        pid,
                        member,
                        RevokeCaps {
                            id: revocation.id(),
                        },
                    ));
                }
            }
        }
        processes.revoke_calls.extend(joined);
        let mut doomed = Vec::new();
        for (&pid, spanning) in &mut processes.spanning {
            let lost = spanning.running.minus(members);
            if !lost.is_empty() {
                // Those never answer: count them ended, their frames lost
                // with them.
                spanning.running = spanning.running.minus(lost);
                spanning.joining = spanning.joining.minus(lost);
                if !spanning.ended {
                    doomed.push(pid);
                }
            }
        }
        let orphans: Vec<Pid> = processes
            .table
            .list()
            .into_iter()
            .map(|info| info.pid)
            .filter(|pid| {
                usize::from(pid.core()) != core.id && !members.contains(CoreId(pid.core()))
            })
            .filter(|pid| {
                !matches!(
                    processes.table.state(*pid),
                    Some(atoll_sched::State::Ended(_))
                )
            })
            .collect();
        // Children on a core that stopped will not say they ended: they are
        // killed, for their parents.
        let lost: Vec<(Pid, Pid)> = processes
            .remote_children
            .iter()
            .filter(|(child, (_, exit))| exit.is_none() && !members.contains(CoreId(child.core())))
            .map(|(&child, &(parent, _))| (child, parent))
            .collect();
        for (child, parent) in &lost {
            processes
                .remote_children
                .insert(*child, (*parent, Some(Exit::Killed)));
            processes.table.wake_waiting(*parent, *child);
        }
        let homeless: Vec<Pid> = processes
            .lingering
            .keys()
            .copied()
            .filter(|pid| !members.contains(CoreId(pid.core())))
            .collect();
        for pid in &homeless {
            let lingering = processes.lingering.remove(pid).expect("listed above");
            processes.retiring.push(lingering);
        }
        drop(processes);
        let found = !doomed.is_empty() || !orphans.is_empty() || !homeless.is_empty();
        for pid in doomed.into_iter().chain(orphans) {
            end_between_turns(core, pid, Exit::Killed);
        }
        found
    }

    /// Processes of this core that span others, ended, whose every
    /// dispatcher has said it no longer maps their pages: the frames go
    /// back here, and the members give back theirs (`ProcessGone`).
    fn finish_spanning(&mut self, core: &Core) -> bool {
        let mut processes = core.processes.borrow_mut();
        let done: Vec<Pid> = processes
            .spanning
            .iter()
            .filter(|(pid, spanning)| {
                spanning.ended
                    && spanning.running.is_empty()
                    && !processes
                        .retiring
                        .iter()
                        .any(|retiring| retiring.pid == **pid)
            })
            .map(|(&pid, _)| pid)
            .collect();
        for &pid in &done {
            let spanning = processes.spanning.remove(&pid).expect("listed above");
            for frame in processes.held_frames.remove(&pid).unwrap_or_default() {
                processes.give_back(core.local, frame);
            }
            let members: Vec<CoreId> = spanning.members.iter().collect();
            for member in members {
                processes
                    .outbox
                    .push((member, ProcessGone { pid: pid.0 }.into()));
            }
        }
        !done.is_empty()
    }
}

impl Host {
    /// Makes this core's processes' `SpawnChild` and `KillProcess` calls,
    /// and takes their answers: a spawn's goes to the parent that waits
    /// for it; a kill's is dropped (its end comes as `ChildEnded`).
    fn make_child_calls(&mut self, core: &Core, now: u64) -> bool {
        let mut processes = core.processes.borrow_mut();
        let spawns = core::mem::take(&mut processes.spawn_calls);
        let kills = core::mem::take(&mut processes.kill_calls);
        let mut did = !spawns.is_empty() || !kills.is_empty();
        for (parent, at, ask) in spawns {
            let ticket = self
                .monitor
                .call(now, at, ask, ticks(JOIN_TIMEOUT_MS), &mut self.out);
            processes.spawn_tickets.insert(ticket, parent);
        }
        for (at, ask) in kills {
            let ticket = self
                .monitor
                .call(now, at, ask, ticks(JOIN_TIMEOUT_MS), &mut self.out);
            processes.kill_tickets.insert(ticket);
        }
        if processes.spawn_tickets.is_empty() && processes.kill_tickets.is_empty() {
            return did;
        }
        let mut answered = Vec::new();
        self.mailbox.retain(|(ticket, result)| {
            if processes.kill_tickets.remove(ticket) {
                return false;
            }
            let Some(parent) = processes.spawn_tickets.remove(ticket) else {
                return true;
            };
            answered.push((parent, result.clone()));
            false
        });
        for (parent, result) in answered {
            did = true;
            let spawned = reply::<ChildSpawned>(&result)
                .ok_or(atoll_abi::Error::NoSuchCore)
                .and_then(|answer| match answer.outcome {
                    SPAWNED => Ok(Pid(answer.pid)),
                    code => Err(
                        atoll_abi::Error::from_return(u64::from(code).wrapping_neg())
                            .unwrap_or(atoll_abi::Error::NotLoaded),
                    ),
                });
            if let Ok(child) = spawned {
                processes.remote_children.insert(child, (parent, None));
            }
            if let Some(pending) = processes.pending_spawns.get_mut(&parent) {
                *pending = Some(spawned);
                processes.table.wake(parent);
            } else if let Ok(child) = spawned {
                // Its parent ended meanwhile: the child is nobody's.
                processes.remote_children.remove(&child);
            }
        }
        did
    }

    /// Makes this core's processes' `RevokeCaps` calls and takes their
    /// answers: a revoking process runs again once every core has answered
    /// or left the view. A call that failed (no answer in time) to a core
    /// still in the view is made again: revoke returns only once the core
    /// holds no capability made from the revoked one.
    fn make_revoke_calls(&mut self, core: &Core, now: u64) -> bool {
        let mut processes = core.processes.borrow_mut();
        let calls = core::mem::take(&mut processes.revoke_calls);
        let mut did = !calls.is_empty();
        for (pid, at, ask) in calls {
            let ticket =
                self.monitor
                    .call(now, at, ask.clone(), ticks(JOIN_TIMEOUT_MS), &mut self.out);
            processes.revoke_tickets.insert(ticket, (pid, at, ask));
        }
        if processes.revoke_tickets.is_empty() {
            return did;
        }
        let mut answered = Vec::new();
        self.mailbox.retain(|(ticket, result)| {
            let Some(call) = processes.revoke_tickets.remove(ticket) else {
                return true;
            };
            answered.push((call, result.clone()));
            false
        });
        for ((pid, at, ask), result) in answered {
            did = true;
            // The revoking process may have ended meanwhile.
            let Some(revocation) = processes.revoking.get_mut(&pid) else {
                continue;
            };
            match reply::<CapsRevoked>(&result) {
                Some(answer) => revocation.answered(at.0, answer.count),
                None => match revocation.failed(at.0, self.monitor.is_member(at)) {
                    Unanswered::AskAgain => {
                        processes.revoke_calls.push((pid, at, ask));
                        continue;
                    }
                    // It left the view: what it held is no process's now.
                    Unanswered::PassedOver => println!(
                        "atoll: core {}: process {pid}'s revocation passed over core {}, which left the view",
                        core.id, at.0
                    ),
                },
            }
            if revocation.is_done() {
                processes.table.wake(pid);
            }
        }
        did
    }

    /// Processes that a core joins (`Span`), step by step: the freezes of
    /// their spaces asked and answered here and elsewhere; once all their
    /// cores have frozen them and no change is under way, the new core
    /// joins from the home's pages; once it has, every core takes it in as
    /// a holder and thaws. Whether anything moved.
    fn grow_processes(&mut self, core: &Core, now: u64) -> bool {
        let mut processes = core.processes.borrow_mut();
        let mut did = false;
        // Members: answer the freezes once their own changes have ended.
        let mut still = Vec::new();
        for (pid, token) in core::mem::take(&mut processes.freezing) {
            // An earlier growth's thaw still to come would thaw this one
            // early: its holders first.
            let regrowing = processes.regrowing.iter().any(|(other, _)| *other == pid);
            match processes.changing(pid) || regrowing {
                true => still.push((pid, token)),
                false => {
                    did = true;
                    let frozen = SpaceFrozen { outcome: FROZEN };
                    processes.answers.push((token, frozen.into()));
                }
            }
        }
        processes.freezing = still;
        // Every core: take the new holders in once the replica is idle,
        // then thaw.
        let mut still = Vec::new();
        for (pid, cores) in core::mem::take(&mut processes.regrowing) {
            match self.monitor.regrow_space(now, pid.0, cores, &mut self.out) {
                Err(SpaceError::Busy) => still.push((pid, cores)),
                _ => {
                    did = true;
                    if processes.thaw(pid) {
                        processes.table.wake(pid);
                    }
                }
            }
        }
        processes.regrowing = still;
        // The home: its calls, and their answers.
        for (pid, at, growth) in core::mem::take(&mut processes.freeze_calls) {
            did = true;
            let ask = FreezeSpace { pid: pid.0 };
            let ticket = self
                .monitor
                .call(now, at, ask, ticks(JOIN_TIMEOUT_MS), &mut self.out);
            processes.freeze_tickets.insert(ticket, (pid, at, growth));
        }
        let mut frozen = Vec::new();
        let mut joined = Vec::new();
        self.mailbox.retain(|(ticket, result)| {
            if let Some(answer) = processes.freeze_tickets.remove(ticket) {
                let ok =
                    reply::<SpaceFrozen>(result).is_some_and(|answer| answer.outcome == FROZEN);
                frozen.push((answer, ok));
                return false;
            }
            if let Some(pid) = processes.grow_tickets.remove(ticket) {
                let ok = reply::<Joined>(result).is_some_and(|answer| answer.outcome == JOINED);
                joined.push((pid, ok));
                return false;
            }
            true
        });
        did |= !frozen.is_empty() || !joined.is_empty();
        for ((pid, at, growth), ok) in frozen {
            let Some(growing) = processes.growing_as(pid, growth) else {
                continue;
            };
            growing.waiting.remove(at);
            if !ok && growing.stage == Stage::Freezing {
                // A core of the process did not freeze it (it stopped, and
                // the process ends with it): it does not grow.
                growing.stage = Stage::Done(Err(atoll_abi::Error::NoSuchCore));
                let old = growing.cores.minus(Members::one(growing.core));
                finish_growth(core, &mut processes, pid, old);
            }
        }
        // Frozen everywhere, nothing under way here, this core's replica
        // idle (a round another core ended may not have reached it yet):
        // the new core joins. A channel made meanwhile would have its page
        // mapped on a core it is not the channel's: it does not grow.
        let ready: Vec<Pid> = processes
            .growing
            .iter()
            .filter(|(pid, growing)| {
                growing.stage == Stage::Freezing
                    && growing.waiting.is_empty()
                    && !processes.changing(**pid)
                    && self.monitor.space_idle(pid.0)
            })
            .map(|(&pid, _)| pid)
            .collect();
        for pid in ready {
            did = true;
            if processes.has_channel(pid) {
                let growing = processes.growing.get_mut(&pid).expect("listed above");
                growing.stage = Stage::Done(Err(atoll_abi::Error::BadArgument));
                let old = growing.cores.minus(Members::one(growing.core));
                finish_growth(core, &mut processes, pid, old);
                continue;
            }
            let joining = self.monitor.space_entries(pid.0).and_then(|pages| {
                let name = processes
                    .table
                    .list()
                    .into_iter()
                    .find(|info| info.pid == pid)?
                    .name;
                let machine = processes.table.machine(pid)?;
                Some((pages, name, machine.entry, machine.args.clone()))
            });
            let growing = processes.growing.get_mut(&pid).expect("listed above");
            let Some((pages, name, entry, args)) = joining else {
                growing.stage = Stage::Done(Err(atoll_abi::Error::NotLoaded));
                let old = growing.cores.minus(Members::one(growing.core));
                finish_growth(core, &mut processes, pid, old);
                continue;
            };
            growing.stage = Stage::Joining;
            let (at, index, cores, growth) =
                (growing.core, growing.index, growing.cores, growing.growth);
            let entries: Vec<(u64, u64, u64)> = pages
                .iter()
                .map(|(page, mapping)| (*page, mapping.paddr, mapping.flags))
                .collect();
            // The pages first, then the request, on the same link.
            for batch in entries.chunks(PAGES_BYTES / PAGE_ENTRY_BYTES) {
                let pages = pack_pages(batch).expect("a batch fits a message");
                let message = ProcessPages { pid: pid.0, pages };
                self.monitor.send(now, at, message, &mut self.out);
            }
            let (Some(name), Some(args)) =
                (Bytes::new(name.as_bytes()), Bytes::new(args.as_bytes()))
            else {
                unreachable!("a running program's name and arguments were checked at its spawn");
            };
            let join = JoinProcess {
                pid: pid.0,
                index,
                cores: CoreSet(cores),
                entry,
                name,
                args,
            };
            let ticket = self
                .monitor
                .call(now, at, join, ticks(JOIN_TIMEOUT_MS), &mut self.out);
            processes.grow_tickets.insert(ticket, (pid, growth));
        }
        for ((pid, growth), ok) in joined {
            let Some(growing) = processes.growing_as(pid, growth) else {
                continue;
            };
            let (at, index, cores) = (growing.core, growing.index, growing.cores);
            if !ok {
                println!(
                    "atoll: core {}: process {pid}: core {} did not join it",
                    core.id, at.0
                );
                growing.stage = Stage::Done(Err(atoll_abi::Error::NotLoaded));
                // It may have joined after all, its answer lost.
                processes
                    .outbox
                    .push((at, EndDispatcher { pid: pid.0 }.into()));
                finish_growth(core, &mut processes, pid, cores.minus(Members::one(at)));
                continue;
            }
            growing.stage = Stage::Done(Ok(index));
            let spanning = processes.spanning.entry(pid).or_insert(process::Spanning {
                members: Members::new(),
                joining: Members::new(),
                running: Members::new(),
                ended: false,
                spawned_answer: None,
            });
            spanning.members.insert(at);
            spanning.running.insert(at);
            processes
                .outbox
                .push((at, StartProcess { pid: pid.0 }.into()));
            finish_growth(core, &mut processes, pid, cores);
        }
        did
    }

    /// The answers to this core's `ChannelConnect` calls: with the frame,
    /// the caller's map of it is proposed; without, its change ends
    /// refused. Whether any came.
    fn take_channel_frames(&mut self, core: &Core) -> bool {
        let mut answered: Vec<(u64, Option<u64>)> = Vec::new();
        {
            let processes = core.processes.borrow();
            if processes.connect_tickets.is_empty() {
                return false;
            }
            self.mailbox.retain(|(ticket, result)| {
                let Some(&token) = processes.connect_tickets.get(ticket) else {
                    return true;
                };
                let frame = reply::<ChannelFrame>(result)
                    .filter(|answer| answer.outcome == CHANNEL_FOUND)
                    .map(|answer| answer.frame);
                answered.push((token, frame));
                false
            });
        }
        let now = cpu::rdtsc();
        for &(token, frame) in &answered {
            let mut processes = core.processes.borrow_mut();
            processes
                .connect_tickets
                .retain(|_, waiting| *waiting != token);
            let Some(change) = processes.changes.get_mut(&token) else {
                continue;
            };
            let (pid, kind) = (change.pid, change.kind);
            let ChangeKind::Connect {
                address,
                channel,
                slot,
                ..
            } = kind
            else {
                continue;
            };
            let Some(frame) = frame else {
                change.done = Some(false);
                processes.unmint_end(pid, slot, address);
                processes.table.wake(pid);
                // Its core may have taken the channel for it before the
                // answer was lost: let it go.
                tell_closed(core, &mut processes, channel, false);
                continue;
            };
            change.kind = ChangeKind::Connect {
                address,
                channel,
                frame,
                slot,
            };
            drop(processes);
            let mapping = Mapping {
                paddr: frame,
                flags: PAGE_WRITABLE,
            };
            let proposed = self.monitor.propose_change(
                now,
                pid.0,
                address,
                PageChange::Map(mapping),
                token,
                &mut self.out,
            );
            if proposed.is_err() {
                // Its space is gone (it ended meanwhile): the change ends
                // refused, and the channel's core hears it was let go.
                change_ended(core, token, false, false);
            }
        }
        !answered.is_empty()
    }
}

/// The channel `name` is let go by its other end (on this core, or by a
/// note): having used it, its frame goes back if its creator has ended too,
/// and nobody connects to it again; its connect having failed, it may take
/// another.
fn closed(core: &Core, processes: &mut process::Processes, pid: Pid, address: u64, used: bool) {
    let Some(open) = processes.channels.get_mut(&(pid, address)) else {
        return;
    };
    if !used {
        // A connect that did not take effect: the channel is free again
        // (its rings are untouched), unless an end already used it.
        if !open.closed {
            open.peer = None;
        }
        return;
    }
    open.closed = true;
    if !open.creator_gone {
        // Its creator is alone now: if it waits for the other end, it runs
        // again and finds it gone.
        processes.notified.insert(pid);
        processes.table.wake(pid);
        return;
    }
    let frame = open.frame;
    processes.channels.remove(&(pid, address));
    core.local.free_frame(frame);
}

/// The creator of the channel `channel` has ended: the process of this
/// core at its other end is alone; if it waits for it, it runs again and
/// finds it gone.
fn creator_gone(processes: &mut process::Processes, channel: ChannelName) {
    let mut alone = Vec::new();
    for (&(pid, _), connection) in processes.connections.iter_mut() {
        if connection.channel == channel {
            connection.gone = true;
            alone.push(pid);
        }
    }
    for pid in alone {
        processes.notified.insert(pid);
        processes.table.wake(pid);
    }
}

/// This core's process let go of the channel `name` (having used it, or
/// its connect having failed): its creator's core hears it (this one, or by
/// message).
fn tell_closed(core: &Core, processes: &mut process::Processes, name: ChannelName, used: bool) {
    if usize::from(name.core.0) == core.id {
        closed(core, processes, name.pid, name.address, used);
    } else {
        let message = ChannelClosed {
            pid: name.pid.0,
            address: name.address,
            used: u8::from(used),
        };
        processes.outbox.push((name.core, message.into()));
    }
}

/// Joins process `pid` of core `home` as dispatcher `index`: builds this
/// core's page tables for it from the pages its home sent, opens its
/// space here (when the host next settles), and holds its dispatcher until
/// the home starts it.
// The fields of `JoinProcess` one by one: a struct for them would be the
// request again.
#[allow(clippy::too_many_arguments)]
fn join(
    core: &Core,
    home: CoreId,
    pid: Pid,
    index: u16,
    cores: Members,
    entry: u64,
    name: &str,
    args: &str,
) -> Result<(), String> {
    let mut processes = core.processes.borrow_mut();
    let pages = processes.joining_pages.remove(&pid).unwrap_or_default();
    if pages.is_empty() {
        return Err(String::from("its pages did not come"));
    }
    if usize::from(pid.core()) != usize::from(home.0) {
        return Err(String::from("the process is not the asking core's"));
    }
    let space = process::build(core.local, &pages)?;
    let count = cores.len() as u16;
    let dispatcher = Object::Dispatcher {
        pid: pid.0,
        index,
        count,
        core: core.id as u16,
    };
    let machine = Machine {
        space,
        next: Some(start_of(entry, index, args.len() as u64)),
        dispatcher: (index, count),
        cores,
        caps: atoll_caps::Table::starting(&mut processes.cap_ids, pid.0, dispatcher),
        entry,
        args: String::from(args),
    };
    let owner = Owner::Kernel(Report::Home {
        home: home.0,
        index,
    });
    if processes.table.adopt(pid, name, owner, machine).is_err() {
        drop(processes);
        process::release(core.local, space, None);
        return Err(String::from("this core runs as many processes as it holds"));
    }
    processes.to_open.push((pid, cores, pages));
    Ok(())
}

/// Ends `pid` with `exit` if it is still on this core: between its turns at
/// once, or at the end of the turn it is in.
fn end_between_turns(core: &Core, pid: Pid, exit: Exit) {
    let ended = {
        let mut processes = core.processes.borrow_mut();
        match processes.table.end_between_turns(pid, exit) {
            Ok(ended) => ended,
            Err(ProcessError::Running) => {
                processes.doomed.entry(pid).or_insert(exit);
                return;
            }
            Err(_) => return,
        }
    };
    core.clear_away(ended);
}

/// A change a process proposed has ended, having taken effect (`took`; on
/// every holder, confirmed, if `everywhere`) or not: frames it no longer needs go back (a refused map's; an unmapped
/// page's, now that no core maps it), a channel is made or joined, and the
/// process, if it waits for a change, runs again.
pub(super) fn change_ended(core: &Core, token: u64, took: bool, everywhere: bool) {
    let mut processes = core.processes.borrow_mut();
    let Some(change) = processes.changes.get_mut(&token) else {
        return;
    };
    change.done = Some(took);
    let (pid, kind) = (change.pid, change.kind);
    match (kind, took) {
        (ChangeKind::Map { frame }, false) => core.local.free_frame(frame),
        // Its capability (or another page) may keep it.
        (ChangeKind::MapFrame { frame }, false) => processes.give_back(core.local, frame),
        (
            ChangeKind::Channel {
                frame,
                address,
                slot,
            },
            false,
        ) => {
            core.local.free_frame(frame);
            processes.unmint_end(pid, slot, address);
        }
        (ChangeKind::Channel { frame, address, .. }, true) => {
            let open = process::Channel {
                frame,
                peer: None,
                closed: false,
                creator_gone: false,
            };
            processes.channels.insert((pid, address), open);
        }
        (
            ChangeKind::Connect {
                address,
                channel,
                frame,
                ..
            },
            true,
        ) => {
            let connection = process::Connection {
                channel,
                frame,
                gone: false,
            };
            processes.connections.insert((pid, address), connection);
        }
        (
            ChangeKind::Connect {
                channel,
                slot,
                address,
                ..
            },
            false,
        ) => {
            processes.unmint_end(pid, slot, address);
            // The channel's core marked it taken: let it go.
            tell_closed(core, &mut processes, channel, false);
        }
        // A holder that did not confirm may map it still: it goes back with
        // the process.
        (ChangeKind::Unmap { vaddr }, true) if everywhere => {
            if let Some(frames) = processes.unmapped.get_mut(&(pid, vaddr))
                && let Some(frame) = frames.pop_front()
            {
                let empty = frames.is_empty();
                if empty {
                    processes.unmapped.remove(&(pid, vaddr));
                }
                processes.give_back(core.local, frame);
            }
        }
        _ => {}
    }
    if processes.table.state(pid).is_none() {
        // It has ended: nobody will poll the change.
        processes.changes.remove(&token);
    } else {
        processes.table.wake(pid);
    }
}

/// Applies an effect of `pid`'s replicated space to its page tables on
/// this core and to this core's TLB.
pub(super) fn apply(core: &Core, pid: Pid, effect: atoll_replica::Effect) {
    let (space, homeless) = {
        let mut processes = core.processes.borrow_mut();
        (
            processes.space_of(pid),
            processes.homeless.contains_key(&pid),
        )
    };
    let Some(space) = space else {
        if homeless {
            // Its page tables are gone: a round of its home's that ends
            // late changes nothing here.
            return;
        }
        println!(
            "atoll: core {}: a change of process {pid}'s space, which this core does not hold",
            core.id
        );
        return;
    };
    let tables = core.local.page_tables();
    let outcome = match effect {
        atoll_replica::Effect::MapPage { vaddr, mapping, .. } => {
            let writable = mapping.flags & PAGE_WRITABLE != 0;
            let executable = mapping.flags & PAGE_EXECUTABLE != 0;
            match tables.map_user_in(
                space,
                vaddr,
                mapping.paddr,
                writable,
                executable,
                &mut || core.local.allocate_filled_frame(0),
            ) {
                // A protect: the page keeps its frame, with new rights (its
                // `InvalidateTlb` follows).
                Err(paging::PagingError::AlreadyMapped { frame, .. }) if frame == mapping.paddr => {
                    tables.protect_in(space, vaddr, frame, writable, executable)
                }
                mapped => mapped,
            }
        }
        atoll_replica::Effect::UnmapPage { vaddr, .. } => {
            tables.unmap_in(space, vaddr).map(|frame| {
                // This core's frame goes back once the unmap has ended on
                // every core (or with the process); another's is its own.
                if core.local.owns_frame(frame) {
                    let mut processes = core.processes.borrow_mut();
                    processes
                        .unmapped
                        .entry((pid, vaddr))
                        .or_default()
                        .push_back(frame);
                }
            })
        }
        atoll_replica::Effect::InvalidateTlb { vaddr, .. } => {
            if tables.user_space() == Some(space) {
                paging::invalidate(vaddr);
            }
            Ok(())
        }
    };
    if let Err(error) = outcome {
        println!(
            "atoll: core {}: process {pid}'s page tables disagree with its replica: {error}",
            core.id
        );
    }
}
