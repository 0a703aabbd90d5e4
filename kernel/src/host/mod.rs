//! Each core's host of its monitor: the loop that feeds the monitor what
//! happens on this core and carries out what it asks.
//!
//! The host polls the rings other cores send this one on and hands every
//! slot to the monitor, and feeds it timer ticks while it has something
//! that can time out or other members to watch. Which cores are members is
//! the monitor's business: it agrees on views with the other monitors.
//! After each step the host carries out the monitor's output in order: the
//! effects on this core (page tables, TLB, a trace dump, stopping when the
//! view leaves this core out, starting the rings with a parked core
//! afresh), then its notices on the console, then the slots to send (queued per peer
//! while a ring is full, and a wake-up IPI for a peer that sleeps), then the
//! deferred work (measurements, whose results go back to the monitor,
//! stalls, and draining the ring of a core the view leaves out);
//! completions wait in a mailbox for the local code that made the calls,
//! and trace events go to the recorder.
//!
//! Nothing here waits inside a step. The only waits are at the top level:
//! the polling loop of a core with nothing else to run ([`Core::run`]), and
//! the shell and the boot sequence waiting for their own calls
//! ([`Core::wait`]), which poll as that loop does.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Ref, RefCell};

use atoll_arch::cpu;
use atoll_arch::percore::{CoreLocal, InitError, TIMER_HZ};
use atoll_arch::power::{self, ExitStatus};
use atoll_arch::{channels, paging};
use atoll_iface::Message;
use atoll_monitor::skb::Facts;
use atoll_monitor::wire::Held;
use atoll_monitor::{
    CallError, Config, CoreId, Deferred, Detector, Effect, Input, Members, Monitor, Output, Ticket,
    Wire,
};
use atoll_urpc::{Payload, Receiver, Sender, Wake};

use atoll_monitor::process::PageChange;
use atoll_sched::Pid;

mod processes;

use crate::measure;
use crate::process::{self, ChangeKind};
use crate::shared::boot_facts;
use crate::trace::Recorder;

/// How long a core keeps polling after its last message before it sleeps:
/// long enough that a request/response exchange stays on the fast path.
const IDLE_SPIN_US: u64 = 200;
/// Slots queued for a core outside the view past which they are dropped:
/// room for what a member sends a core that asks to join (its facts, its
/// snapshot's start) while the core starts reading.
const MAX_QUEUED_OUTSIDE_VIEW: usize = 1024;
/// Kernel command-line option: how long a member may be silent before the
/// others suspect it, in milliseconds (heartbeats go at a tenth of it).
const SUSPECT_OPTION: &str = "atoll.suspect_ms=";

/// The failure detector's settings: the default for this many cores, or as
/// the command line says.
pub fn detector() -> Detector {
    let default = Detector::for_cores(boot_facts().cores.len() as u64);
    let Some(ms) = atoll_shell::cmdline_option(boot_facts().info.cmdline(), SUSPECT_OPTION)
        .and_then(|value| value.parse::<u64>().ok())
        .filter(|&ms| ms > 0)
    else {
        return default;
    };
    let suspect_after = ticks(ms).max(2);
    Detector {
        heartbeat: (suspect_after / 10).max(1),
        suspect_after,
    }
}

/// This core's kernel: its arch block, its host, and its trace recorder.
pub struct Core {
    pub id: usize,
    pub local: &'static CoreLocal,
    host: RefCell<Host>,
    /// Its processes (`crate::process`), apart from the host: a process's
    /// system calls reach them while the host may be in use.
    pub(crate) processes: RefCell<process::Processes>,
    pub recorder: Recorder,
}

/// This core's ends of the rings, and the slots waiting for room in them.
struct Rings {
    senders: Vec<Option<Sender<'static>>>,
    receivers: Vec<Option<Receiver<'static>>>,
    queues: Vec<VecDeque<Payload>>,
    /// The peers whose queues hold slots, each once.
    waiting: Vec<usize>,
    /// The cores outside the view whose full rings made this one drop
    /// messages, so that each is reported once.
    dropped_to: Vec<bool>,
}

struct Host {
    monitor: Monitor,
    out: Output,
    rings: Rings,
    /// Completions of the calls local code made, until it takes them.
    mailbox: Vec<(Ticket, Result<Wire, CallError>)>,
    /// Timer ticks already fed to the monitor (or skipped while it wanted
    /// none), by [`clock_ticks`].
    ticks_fed: u64,
    /// The timer interrupts taken as of the last feed: the clock is read
    /// only when one has come since, off the polling loop's fast path.
    interrupts_seen: u64,
    /// When a stall the monitor asked for ends, in TSC cycles.
    stall_until: Option<u64>,
    /// The view left this core out while it runs: it stops after the step.
    fenced: bool,
}

/// This core's kernel, once it is set up.
pub fn try_current() -> Option<&'static Core> {
    atoll_arch::percore::try_current()?.os::<Core>()
}

/// The monitor's clock, in timer ticks since the TSC started: the ticks
/// the timer's interrupts mark, counted by the TSC rather than by the
/// interrupts, which coalesce (and so get lost) when the core does not
/// run for a while, as under an emulator on a loaded host.
fn clock_ticks() -> u64 {
    cpu::rdtsc() / (boot_facts().tsc_per_ms * 1000 / TIMER_HZ).max(1)
}

/// Milliseconds as timer ticks, rounded up.
pub fn ticks(ms: u64) -> u64 {
    (ms * TIMER_HZ).div_ceil(1000)
}

/// A failed call in words, with its timeout in milliseconds.
fn call_failure(error: CallError) -> String {
    match error {
        CallError::NoAnswer { core, ticks } => format!(
            "core {} did not answer within {} ms",
            core.0,
            ticks * 1000 / TIMER_HZ
        ),
        other => format!("{other}"),
    }
}

impl Core {
    /// Sets up this core's kernel on its arch block: its rings, its monitor
    /// (given the knowledge base's `facts`, and the member it asks to join,
    /// if any: at boot, the boot core admits every core instead), and the
    /// frame its test-space mappings point at, filled with its id. Its
    /// `incarnation` (0 at boot, one more each time it starts again) keeps
    /// the ids of its capabilities apart from those of its earlier lives.
    pub fn start(
        local: &'static CoreLocal,
        facts: Facts,
        sponsor: Option<usize>,
        incarnation: u32,
    ) -> Result<&'static Core, InitError> {
        let boot = boot_facts();
        let id = local.id;
        let frame = local
            .allocate_filled_frame(id as u8)
            .ok_or(InitError::OutOfFrames { wanted: 1 })?;
        let (senders, receivers) = channels::attach();
        let cores = boot.cores.len();
        let mut out = Output::default();
        let config = Config {
            me: CoreId(id as u16),
            cores: cores as u16,
            boot_core: CoreId(boot.boot_core as u16),
            frame,
            facts,
            detector: detector(),
            sponsor: sponsor.map(|core| CoreId(core as u16)),
        };
        let monitor = Monitor::new(config, &mut out);
        let core: &'static Core = Box::leak(Box::new(Core {
            id,
            local,
            host: RefCell::new(Host {
                monitor,
                out,
                rings: Rings {
                    senders,
                    receivers,
                    queues: vec![VecDeque::new(); cores],
                    waiting: Vec::new(),
                    dropped_to: vec![false; cores],
                },
                mailbox: Vec::new(),
                ticks_fed: clock_ticks(),
                interrupts_seen: 0,
                stall_until: None,
                fenced: false,
            }),
            processes: RefCell::new(process::Processes::new(id, incarnation)),
            recorder: Recorder::new(),
        }));
        local.set_os(core);
        let mut host = core.host.borrow_mut();
        host.note_counters(local);
        host.act(core);
        drop(host);
        Ok(core)
    }

    /// The members of this core's view, in id order.
    pub fn members(&self) -> Vec<usize> {
        self.monitor()
            .view()
            .members
            .iter()
            .map(|core| usize::from(core.0))
            .collect()
    }

    /// This core's monitor, to read.
    pub fn monitor(&self) -> Ref<'_, Monitor> {
        Ref::map(self.host.borrow(), |host| &host.monitor)
    }

    /// Runs `f` on this core's monitor unless the host is in the middle of
    /// a step (as when a fault interrupts one).
    pub fn monitor_if_free<R>(&self, f: impl FnOnce(&Monitor) -> R) -> Option<R> {
        self.host.try_borrow().ok().map(|host| f(&host.monitor))
    }

    /// Runs `f` on this core's monitor, for local questions (its knowledge
    /// base replica).
    pub fn with_monitor<R>(&self, f: impl FnOnce(&mut Monitor) -> R) -> R {
        f(&mut self.host.borrow_mut().monitor)
    }

    /// Takes `cores` into this core's view, by agreement (the boot core
    /// admits the cores it started).
    pub fn admit(&self, cores: Members) {
        let mut host = self.host.borrow_mut();
        let Host { monitor, out, .. } = &mut *host;
        monitor.admit(cpu::rdtsc(), cores, out);
        host.act(self);
    }

    /// Has `core` leave the view, by agreement (`core off`).
    pub fn remove(&self, core: usize) {
        let mut host = self.host.borrow_mut();
        let Host { monitor, out, .. } = &mut *host;
        monitor.remove(cpu::rdtsc(), CoreId(core as u16), out);
        host.act(self);
    }

    /// Calls `to` with `request`; the reply comes to [`wait`](Self::wait)
    /// with the returned ticket. The monitor ends the call with
    /// `CallError::NoAnswer` after `timeout_ms`.
    pub fn call(&self, to: usize, request: impl Into<Wire>, timeout_ms: u64) -> Ticket {
        let mut host = self.host.borrow_mut();
        // A call to this core is answered in the step: its counters as
        // they are now.
        host.note_counters(self.local);
        let Host { monitor, out, .. } = &mut *host;
        let ticket = monitor.call(
            cpu::rdtsc(),
            CoreId(to as u16),
            request,
            ticks(timeout_ms),
            out,
        );
        host.act(self);
        ticket
    }

    /// Polls, and sleeps when there is nothing to do, until the call of
    /// `ticket` ends; at the top level only (the shell, the boot sequence),
    /// never inside a step.
    pub fn wait(&self, ticket: Ticket) -> Result<Wire, CallError> {
        self.idle_until(|| self.take_completion(ticket))
    }

    /// Polls until `done` has something, spinning while there is work and
    /// for a while after, then sleeping until an interrupt. `done` is asked
    /// before each poll, so what a poll brings is seen at once.
    pub fn idle_until<R>(&self, mut done: impl FnMut() -> Option<R>) -> R {
        let spin = IDLE_SPIN_US * boot_facts().tsc_per_ms / 1000;
        let mut last_busy = cpu::rdtsc();
        loop {
            if let Some(result) = done() {
                return result;
            }
            // Messages first, then a turn of a ready process (which the
            // timer ends), so that the monitor polls between turns.
            if self.poll() || self.run_turn() {
                last_busy = cpu::rdtsc();
            } else if cpu::rdtsc() - last_busy > spin {
                self.sleep();
                last_busy = cpu::rdtsc();
            } else {
                core::hint::spin_loop();
            }
        }
    }

    /// Waits for `ticket` (as [`wait`](Self::wait)) and takes its reply as
    /// the type its request declares; a failure in words.
    pub fn wait_for<T>(&self, ticket: Ticket) -> Result<T, String>
    where
        T: Message,
        T::Interface: Held,
    {
        let wire = self.wait(ticket).map_err(call_failure)?;
        let label = wire.label();
        // The monitor delivers only replies of the kind their request
        // declares, so this fails only if that check is broken.
        wire.take::<T>()
            .ok_or_else(|| format!("unexpected reply {label}"))
    }

    /// Calls core `to` with `request` (this core too, through its loopback)
    /// and waits for its reply: [`call`](Self::call), then
    /// [`wait_for`](Self::wait_for).
    pub fn ask<R>(&self, to: usize, request: R, timeout_ms: u64) -> Result<R::Reply, String>
    where
        R: Message,
        R::Interface: Into<Wire>,
        R::Reply: Message,
        <R::Reply as Message>::Interface: Held,
    {
        let ticket = self.call(to, request, timeout_ms);
        self.wait_for(ticket)
    }

    /// Settles this core's processes with its monitor (spaces to open and
    /// close, answers for other cores) and carries out what that produced;
    /// never inside a step.
    pub(crate) fn flush_processes(&self) {
        let mut host = self.host.borrow_mut();
        host.settle_processes(self);
        host.act(self);
    }

    /// Proposes a change of `pid`'s space (a map, unmap or protect of the
    /// page at `vaddr`) to its holders; the process's token for it. Called
    /// from its system call, never inside a step.
    pub(crate) fn propose(
        &self,
        pid: Pid,
        vaddr: u64,
        change: PageChange,
        kind: ChangeKind,
    ) -> Result<u64, atoll_abi::Error> {
        let token = self.processes.borrow_mut().new_change(pid, kind);
        let mut host = self.host.borrow_mut();
        let Host { monitor, out, .. } = &mut *host;
        let proposed = monitor.propose_change(cpu::rdtsc(), pid.0, vaddr, change, token, out);
        host.act(self);
        drop(host);
        if let Err(error) = proposed {
            // The space is open from spawn to release: this is a bug, and
            // the process is told it was refused, not the kernel stopped.
            println!(
                "atoll: core {}: process {pid}: cannot propose a change: {error:?}",
                self.id
            );
            let mut processes = self.processes.borrow_mut();
            processes.changes.remove(&token);
            match kind {
                ChangeKind::Map { frame } | ChangeKind::Channel { frame, .. } => {
                    self.local.free_frame(frame);
                }
                ChangeKind::MapFrame { frame } => processes.give_back(self.local, frame),
                ChangeKind::Unmap { .. } | ChangeKind::Connect { .. } | ChangeKind::Protect => {}
            }
            return Err(atoll_abi::Error::Refused);
        }
        Ok(token & u64::from(u32::MAX))
    }

    fn take_completion(&self, ticket: Ticket) -> Option<Result<Wire, CallError>> {
        let mut host = self.host.borrow_mut();
        let index = host.mailbox.iter().position(|(t, _)| *t == ticket)?;
        Some(host.mailbox.swap_remove(index).1)
    }

    /// Takes in everything waiting in this core's rings, feeds the ticks
    /// that passed, and pushes queued slots. Returns whether there was
    /// anything to do.
    pub fn poll(&self) -> bool {
        let (busy, stall) = {
            let mut host = self.host.borrow_mut();
            // Ticks first: those that passed while the monitor had nothing
            // that can time out are skipped, so that they do not count
            // against what the slots below start.
            let ticked = host.feed_ticks(self);
            let received = host.receive(self);
            let pushed = host.push_all(self);
            (ticked || received || pushed, host.stall_until.take())
        };
        if let Some(until) = stall {
            while cpu::rdtsc() < until {
                core::hint::spin_loop();
            }
        }
        busy
    }

    /// Announces sleep on every incoming ring and halts until an interrupt,
    /// unless a message slipped in meanwhile or slots wait to be sent.
    /// Interrupts are off from the announcement to the halt, so a wake-up
    /// IPI cannot fall between them.
    pub fn sleep(&self) {
        cpu::disable_interrupts();
        let may_sleep = {
            let mut host = self.host.borrow_mut();
            let rings = &mut host.rings;
            let ready = rings
                .receivers
                .iter_mut()
                .flatten()
                .all(|receiver| receiver.prepare_to_sleep());
            ready && rings.waiting.is_empty()
        };
        if may_sleep {
            cpu::enable_interrupts_and_wait();
        } else {
            cpu::enable_interrupts();
        }
        self.host
            .borrow()
            .rings
            .receivers
            .iter()
            .flatten()
            .for_each(|receiver| receiver.woken());
    }

    /// The polling loop of a core with nothing else to run.
    pub fn run(&self) -> ! {
        cpu::enable_interrupts();
        match self.idle_until(|| None::<core::convert::Infallible>) {}
    }
}

impl Rings {
    /// Starts the rings with `peer` afresh, with new ends (the monitor
    /// started its link with `peer` afresh: `peer` stopped, it is parked,
    /// and its next kernel starts soon); the slots queued for the old one
    /// are dropped.
    fn reset(&mut self, peer: usize) {
        self.queues[peer].clear();
        self.waiting.retain(|&to| to != peer);
        self.dropped_to[peer] = false;
        let old = (self.senders[peer].take(), self.receivers[peer].take());
        let (sender, receiver) = channels::reattach(peer, old);
        self.senders[peer] = Some(sender);
        self.receivers[peer] = Some(receiver);
    }

    /// Queues `slot` for `to`.
    fn queue(&mut self, to: usize, slot: Payload) {
        if self.queues[to].is_empty() {
            self.waiting.push(to);
        }
        self.queues[to].push_back(slot);
    }

    /// Moves queued slots into the rings, as far as they have room, and
    /// wakes each peer that sleeps. Slots for a core outside the view wait
    /// too (a core that joins reads them), but past
    /// [`MAX_QUEUED_OUTSIDE_VIEW`] they are dropped (nobody reads that
    /// ring), which is said once per core. Returns whether any slot moved.
    fn push_all(&mut self, core: &Core, is_member: impl Fn(usize) -> bool) -> bool {
        let mut moved = false;
        let mut index = 0;
        while let Some(&to) = self.waiting.get(index) {
            let queue = &mut self.queues[to];
            let sender = self.senders[to]
                .as_mut()
                .expect("slots are queued only for other cores");
            let before = queue.len();
            while let Some(slot) = queue.front() {
                if sender.try_send(slot).is_err() {
                    break;
                }
                queue.pop_front();
            }
            let sent = before - queue.len();
            moved |= sent > 0;
            if sent > 0 && sender.flush() == Wake::Needed {
                measure::wake(core.local, &core.recorder, to);
            }
            if queue.len() > MAX_QUEUED_OUTSIDE_VIEW && !is_member(to) {
                queue.clear();
                if !core::mem::replace(&mut self.dropped_to[to], true) {
                    println!(
                        "atoll: core {}: core {to} is not a member and reads nothing; messages to it are dropped",
                        core.id
                    );
                }
            }
            if queue.is_empty() {
                self.waiting.swap_remove(index);
            } else {
                index += 1;
            }
        }
        moved
    }
}

impl Host {
    /// Hands the monitor every slot waiting in this core's rings.
    fn receive(&mut self, core: &Core) -> bool {
        let mut received = false;
        for from in 0..self.rings.receivers.len() {
            while let Some(slot) = self.rings.receivers[from]
                .as_mut()
                .and_then(Receiver::try_recv)
            {
                received = true;
                // Counters as they are now, for a `CoreReport` among the
                // slots (both are plain reads).
                self.note_counters(core.local);
                let input = Input::Slot {
                    from: CoreId(from as u16),
                    slot: &slot,
                };
                self.monitor.step(cpu::rdtsc(), input, &mut self.out);
                self.act(core);
            }
        }
        received
    }

    /// Tells the monitor this core's timer ticks and free frames, which it
    /// reports when asked.
    fn note_counters(&mut self, local: &CoreLocal) {
        self.monitor
            .note_counters(local.ticks(), local.free_frames() as u64);
    }

    /// Feeds the monitor the ticks that passed, while it wants them; whether
    /// it took any.
    fn feed_ticks(&mut self, core: &Core) -> bool {
        let interrupts = core.local.ticks();
        if interrupts == self.interrupts_seen {
            return false;
        }
        self.interrupts_seen = interrupts;
        let now = clock_ticks();
        if now <= self.ticks_fed {
            return false;
        }
        self.note_counters(core.local);
        // Ticks that piled up while this core did not poll (a stall, a
        // long measurement, the emulator not running it) are no silence
        // of the others: it could not hear them.
        let missed = now - self.ticks_fed - 1;
        if missed > 0 {
            self.monitor.resumed(missed);
        }
        let mut fed = false;
        while self.ticks_fed < now {
            self.ticks_fed += 1;
            if !self.monitor.wants_ticks() {
                // A monitor without timeouts does not need the ticks it missed.
                self.ticks_fed = now;
                break;
            }
            self.monitor.step(cpu::rdtsc(), Input::Tick, &mut self.out);
            fed = true;
        }
        self.act(core);
        fed
    }

    /// Pushes queued slots into the rings ([`Rings::push_all`]).
    fn push_all(&mut self, core: &Core) -> bool {
        let Host { monitor, rings, .. } = self;
        rings.push_all(core, |to| monitor.is_member(CoreId(to as u16)))
    }

    /// Feeds the monitor every slot waiting from `from`, then says so.
    fn drain(&mut self, from: CoreId) {
        while let Some(slot) = self.rings.receivers[usize::from(from.0)]
            .as_mut()
            .and_then(Receiver::try_recv)
        {
            let input = Input::Slot { from, slot: &slot };
            self.monitor.step(cpu::rdtsc(), input, &mut self.out);
        }
        self.monitor
            .step(cpu::rdtsc(), Input::Drained(from), &mut self.out);
    }

    /// Carries out what the monitor produced: effects, then sends, then
    /// deferred work (whose measurements go back to the monitor, and so on
    /// until nothing is left); completions to the mailbox, trace events to
    /// the recorder, notices to the console.
    fn act(&mut self, core: &Core) {
        loop {
            for effect in core::mem::take(&mut self.out.effects) {
                match effect {
                    Effect::Mapping(effect) => apply(core, effect),
                    Effect::ProcessMapping { pid, effect } => {
                        processes::apply(core, Pid(pid), effect);
                    }
                    Effect::DumpTrace => core.recorder.dump(
                        core.id,
                        boot_facts().tsc_per_ms,
                        self.monitor.trace_start(),
                        &self.monitor.sent(),
                    ),
                    Effect::Excluded { .. } => self.fenced = true,
                    Effect::ResetChannels { core: peer } => {
                        self.rings.reset(usize::from(peer.0));
                    }
                }
            }
            // A step's notices go out before its messages, so that no reply
            // overtakes the line that explains it (the core that gets the
            // reply may act on it at once: stop this one, say).
            for line in self.out.notices.drain(..) {
                println!("atoll: core {}: {line}", core.id);
            }
            for (to, slot) in self.out.sends.drain(..) {
                self.rings.queue(usize::from(to.0), slot);
            }
            self.push_all(core);
            self.mailbox.append(&mut self.out.completions);
            for (token, completion) in core::mem::take(&mut self.out.changes) {
                let (took, everywhere) = match completion {
                    atoll_replica::Completion::Committed { report, .. } => {
                        (true, report.unreached == 0)
                    }
                    _ => (false, false),
                };
                processes::change_ended(core, token, took, everywhere);
            }
            if core.recorder.set(self.monitor.tracing()).is_err() {
                println!(
                    "atoll: core {}: no memory for the trace ring; not tracing",
                    core.id
                );
            }
            for event in self.out.trace.drain(..) {
                core.recorder.record(event);
            }
            if self.fenced {
                // The members count this core stopped: it must not act on
                // anything more. Its notice said why.
                stop_this_core(Some(core.id));
            }
            let deferred = core::mem::take(&mut self.out.deferred);
            if deferred.is_empty() {
                if self.settle_processes(core) {
                    continue;
                }
                return;
            }
            for work in deferred {
                match work {
                    Deferred::Stall { ms } => {
                        let cycles = u64::from(ms) * boot_facts().tsc_per_ms;
                        self.stall_until = Some(cpu::rdtsc() + cycles);
                    }
                    Deferred::Measure { op, measure } => {
                        let cycles = measure::run(core.local, &core.recorder, &measure);
                        let input = Input::Measured { op, cycles };
                        self.monitor.step(cpu::rdtsc(), input, &mut self.out);
                    }
                    Deferred::Drain { core: from } => self.drain(from),
                    Deferred::Scribble { address } => cpu::scribble(address),
                    Deferred::Process { token, request } => {
                        self.process_request(core, token, request)
                    }
                    Deferred::ProcessNote(note) => self.process_note(core, note),
                }
            }
        }
    }
}

/// Halts this core for good (the others find its silence). If it ran the
/// shell, nobody is left to report to, so a scripted run ends with the
/// panic status.
pub fn stop_this_core(core: Option<usize>) -> ! {
    if core.is_none_or(|core| core == boot_facts().boot_core) {
        power::exit_qemu(ExitStatus::Panic);
    }
    cpu::halt_forever()
}

/// Applies a mapping effect to this core's page tables and TLB.
fn apply(core: &Core, effect: atoll_replica::Effect) {
    let tables = core.local.page_tables();
    let outcome = match effect {
        atoll_replica::Effect::MapPage { vaddr, mapping, .. } => {
            tables.map(vaddr, mapping.paddr, &mut || core.local.allocate_frame())
        }
        atoll_replica::Effect::UnmapPage { vaddr, .. } => tables.unmap(vaddr).map(|_| ()),
        atoll_replica::Effect::InvalidateTlb { vaddr, .. } => {
            paging::invalidate(vaddr);
            Ok(())
        }
    };
    if let Err(error) = outcome {
        // The replica and the page tables change together, so this means a
        // bug; report it with the core rather than stop the core.
        println!(
            "atoll: core {}: page tables disagree with the replica: {error}",
            core.id
        );
    }
}
