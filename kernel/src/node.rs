//! The OS node on each core: the event loop that polls the core's incoming
//! URPC rings, answers requests, and sleeps through the URPC handshake when
//! there is nothing to do; plus the measurements `urpc ping` and
//! `urpc bench` run between two nodes.
//!
//! Cross-core work is split-phase: a request goes out as a message and the
//! answer comes back as another, which the waiting code picks out of the
//! node's pending queue while it keeps answering everyone else.

use crate::arch::percore::CoreLocal;
use crate::arch::{channels, cpu, idt};
use crate::channels::Channels;
use crate::fig3;
use crate::messages::{
    BenchPeer, BenchReport, NodeMessage, Ping, PingPeer, PingReport, Pong, Refusal, SharedLine,
    Stream, StreamDone,
};
use crate::shared::{BOARD, CoreState, boot_facts};
use crate::skb::{self, Replica as SkbReplica};
use crate::vm::{self, Vm};
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use atoll_iface::{Reassembler, encode};
use atoll_urpc::{Payload, Wake};
use core::sync::atomic::Ordering;

/// How long a node keeps polling after its last message before it sleeps:
/// long enough that a request/response exchange stays on the fast path.
const IDLE_SPIN_US: u64 = 200;
/// Round trips per pair and measurement in `urpc bench` and `urpc ping`.
pub const ROUNDS: u32 = 64;
/// Messages per throughput stream.
const STREAM_MESSAGES: u32 = 512;
/// How long a node waits for a peer before giving up on it.
pub const PEER_TIMEOUT_MS: u64 = 2000;

/// One core's node state; it lives in the core's `CoreLocal`.
pub struct NodeState {
    channels: Channels,
    /// Messages received but not yet handled: requests the node loop has not
    /// reached, and answers that a waiting measurement has not taken.
    pending: VecDeque<(usize, NodeMessage)>,
    /// Stream messages received from each core in its current stream.
    streamed: Vec<u32>,
    /// The cores whose full rings made this one drop a message, so that
    /// each is reported once.
    dropped_to: Vec<bool>,
    /// Fragments of the message each core is sending this one. A core sends
    /// one message at a time, so one partial message per ring is enough.
    reassemblers: Vec<Reassembler<NodeMessage>>,
    /// This core's replica of the test address space.
    pub vm: Vm,
    /// This core's replica of the system knowledge base.
    pub skb: SkbReplica,
    /// `bench fig3`'s structure as the owner of the message method keeps it,
    /// in this core's memory.
    pub fig3_copy: [[u64; fig3::LINE_WORDS]; fig3::MAX_LINES],
}

impl NodeState {
    pub fn new(channels: Channels, vm: Vm, skb: SkbReplica) -> Self {
        let cores = channels.receivers.len();
        Self {
            channels,
            pending: VecDeque::new(),
            streamed: vec![0; cores],
            dropped_to: vec![false; cores],
            reassemblers: (0..cores).map(|_| Reassembler::new(1)).collect(),
            vm,
            skb,
            fig3_copy: [[0; fig3::LINE_WORDS]; fig3::MAX_LINES],
        }
    }
}

fn wake(local: &CoreLocal, core: usize) {
    local
        .lapic
        .send_ipi(boot_facts().cores[core].apic_id, idt::WAKE);
}

/// When a send makes the receiver's sleep handshake count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// After every message: for requests and answers, which someone waits on.
    EachMessage,
    /// Only when the ring fills (the receiver may have gone to sleep before
    /// the batch began) and by the caller after the batch: for streams.
    WhenFull,
}

/// One attempt to put `payload` into the ring to `to`; whether it went in.
/// Wakes `to` when a flush finds it asleep. One borrow of the node state
/// covers the send and the flush: this is every message's path.
fn try_send_to(local: &CoreLocal, to: usize, payload: &Payload, flush: Flush) -> bool {
    let (sent, wake_needed) = {
        let mut node = local.node().borrow_mut();
        let sender = node.channels.senders[to]
            .as_mut()
            .expect("a ring to every other core");
        let sent = sender.try_send(payload).is_ok();
        let flushes = flush == Flush::EachMessage || !sent;
        (sent, flushes && sender.flush() == Wake::Needed)
    };
    if wake_needed {
        wake(local, to);
    }
    sent
}

/// Makes what was sent to `to` count for its sleep handshake, and wakes `to`
/// if it announced that it sleeps: the end of a stream sent without flushes.
fn flush_to(local: &CoreLocal, to: usize) {
    let wake_needed = local.node().borrow().channels.senders[to]
        .as_ref()
        .is_some_and(|sender| sender.flush() == Wake::Needed);
    if wake_needed {
        wake(local, to);
    }
}

/// Whether `to` can still drain its rings. A stopped core never runs again
/// (faults and panics halt it for good), so a message to it can only be
/// lost; a core that runs, however slowly, gets its messages in order.
fn peer_gone(to: usize) -> bool {
    BOARD.core(to).state() == CoreState::Stopped
}

/// Sends `message` to `to`, waiting (and receiving) while its ring is full,
/// and wakes `to` if it announced that it sleeps. A message to a core that
/// has stopped is dropped once its ring is full, and that is said once per
/// core: the protocols treat it as lost, as they do any message to a failed
/// core, and the sender does not wait forever for it.
pub fn send(local: &CoreLocal, to: usize, message: impl Into<NodeMessage>) {
    for payload in encode(&message.into(), 0) {
        while !try_send_to(local, to, &payload, Flush::EachMessage) {
            if peer_gone(to) {
                report_dropped(local, to);
                return;
            }
            // The ring is full: take in what others sent, so that two nodes
            // sending to each other both make progress.
            receive_all(local);
            core::hint::spin_loop();
        }
    }
}

fn report_dropped(local: &CoreLocal, to: usize) {
    let first = !core::mem::replace(&mut local.node().borrow_mut().dropped_to[to], true);
    if first {
        println!(
            "atoll: core {}: core {to} is stopped and its ring is full; messages to it are dropped",
            local.id
        );
    }
}

/// Moves every message waiting in this core's rings to the pending queue.
/// Returns how many there were.
fn receive_all(local: &CoreLocal) -> usize {
    let mut node = local.node().borrow_mut();
    let NodeState {
        channels,
        pending,
        reassemblers,
        ..
    } = &mut *node;
    let mut received = 0;
    for (from, receiver) in channels.receivers.iter_mut().enumerate() {
        let Some(receiver) = receiver else { continue };
        while let Some(payload) = receiver.try_recv() {
            received += 1;
            match reassemblers[from].push(&payload) {
                Ok(Some(envelope)) => pending.push_back((from, envelope.message)),
                Ok(None) => {}
                Err(rejected) => println!(
                    "atoll: core {}: dropped a message from core {from}: {}",
                    local.id, rejected.error
                ),
            }
        }
    }
    received
}

/// Whether a message asks for quick work, which is done even while this
/// core waits for something else; requests that take long (measurements of
/// its own) wait for the node loop.
fn is_short_request(message: &NodeMessage) -> bool {
    matches!(
        message,
        NodeMessage::Ping(_)
            | NodeMessage::Stream(_)
            | NodeMessage::SharedLine(_)
            | NodeMessage::Protocol(_)
            | NodeMessage::VmPropose(_)
            | NodeMessage::VmHash(_)
            | NodeMessage::VmSpan(_)
            | NodeMessage::Fig3Update(_)
            | NodeMessage::SkbFacts(_)
    )
}

/// Handles pending messages: all of them from the node loop (`top_level`),
/// only the short requests from inside a wait. At top level, answers nobody
/// is waiting for any more (after a timeout) are dropped.
fn dispatch(local: &CoreLocal, top_level: bool) {
    vm::tick(local);
    let mut index = 0;
    loop {
        let next = {
            let mut node = local.node().borrow_mut();
            let Some((_, message)) = node.pending.get(index) else {
                break;
            };
            if top_level || is_short_request(message) {
                node.pending.remove(index)
            } else {
                index += 1;
                None
            }
        };
        if let Some((from, message)) = next {
            handle(local, from, message);
        }
    }
}

fn handle(local: &CoreLocal, from: usize, message: NodeMessage) {
    match message {
        NodeMessage::Ping(Ping { token }) => send(local, from, Pong { token }),
        NodeMessage::Stream(Stream { index, total }) => {
            let finished = {
                let mut node = local.node().borrow_mut();
                let streamed = &mut node.streamed[from];
                *streamed += 1;
                (index + 1 == total).then(|| core::mem::take(streamed))
            };
            if let Some(received) = finished {
                send(local, from, StreamDone { received });
            }
        }
        NodeMessage::SharedLine(SharedLine { rounds }) => answer_shared_line(local, from, rounds),
        NodeMessage::Protocol(message) => vm::receive(local, from, &message),
        NodeMessage::VmPropose(request) => vm::answer_propose(local, from, &request),
        NodeMessage::VmStorm(storm) => {
            let done = vm::storm(local, &storm);
            send(local, from, done);
        }
        NodeMessage::VmSpan(span) => {
            local
                .node()
                .borrow_mut()
                .vm
                .span(span.first as usize..=span.last as usize);
        }
        NodeMessage::Fig3Run(run) => {
            let done = fig3::client(local, from, &run);
            send(local, from, done);
        }
        NodeMessage::Fig3Update(update) => fig3::serve_update(local, from, &update),
        NodeMessage::SkbGather(request) => {
            let answer = skb::answer_gather(local, &request);
            send(local, from, answer)
        }
        NodeMessage::SkbFacts(facts) => skb::receive_facts(local, from, &facts),
        NodeMessage::SkbReady(ready) => {
            let answer = skb::answer_ready(local, &ready);
            send(local, from, answer)
        }
        NodeMessage::SkbInstall(install) => {
            let answer = skb::answer_install(local, &install);
            send(local, from, answer)
        }
        NodeMessage::VmHash(_) => {
            let reply = local.node().borrow().vm.hash_reply();
            send(local, from, reply);
        }
        NodeMessage::PingPeer(_) | NodeMessage::BenchPeer(_) => {
            let answer = handle_here(local, message);
            send(local, from, answer)
        }
        // An answer whose waiter gave up.
        NodeMessage::Pong(_)
        | NodeMessage::PingReport(_)
        | NodeMessage::BenchReport(_)
        | NodeMessage::StreamDone(_)
        | NodeMessage::Refused(_)
        | NodeMessage::VmDone(_)
        | NodeMessage::VmStormDone(_)
        | NodeMessage::VmHashReply(_)
        | NodeMessage::Fig3Done(_)
        | NodeMessage::Fig3Updated(_)
        | NodeMessage::SkbGathered(_)
        | NodeMessage::SkbLoaded(_)
        | NodeMessage::SkbInstalled(_) => {}
    }
}

/// Runs a measurement request on this core itself (the shell's core asking
/// itself) and returns what it would have sent back.
pub fn handle_here(local: &CoreLocal, request: NodeMessage) -> NodeMessage {
    let outcome = match request {
        NodeMessage::PingPeer(PingPeer { peer, rounds }) => {
            urpc_round_trips(local, peer as usize, rounds).map(|samples| {
                let stats = Stats::of(samples);
                PingReport {
                    peer,
                    median: stats.median,
                    min: stats.min,
                    max: stats.max,
                }
                .into()
            })
        }
        NodeMessage::BenchPeer(BenchPeer { peer }) => {
            bench_pair(local, peer as usize).map(NodeMessage::from)
        }
        _ => Err(Refusal::NoAnswer),
    };
    outcome.unwrap_or_else(NodeMessage::from)
}

/// Receives and handles everything waiting, and the fault doorbell.
/// Returns whether there was anything.
pub fn poll(local: &CoreLocal) -> bool {
    let received = receive_all(local);
    dispatch(local, true);
    // Read before it is cleared, so that an idle poll does not write the
    // line other cores read this core's state from.
    let fault_request = &BOARD.core(local.id).fault_request;
    if fault_request.load(Ordering::Relaxed) && fault_request.swap(false, Ordering::AcqRel) {
        cpu::touch_unmapped_page();
    }
    received > 0
}

/// Announces sleep on every incoming ring and halts until an interrupt, unless
/// a message slipped in meanwhile. Interrupts are off from the announcement
/// to the halt, so a wake-up IPI cannot fall between them.
pub fn sleep(local: &CoreLocal) {
    cpu::disable_interrupts();
    let may_sleep = {
        let mut node = local.node().borrow_mut();
        let ready = node
            .channels
            .receivers
            .iter_mut()
            .flatten()
            .all(|receiver| receiver.prepare_to_sleep());
        ready && !BOARD.core(local.id).fault_request.load(Ordering::Acquire)
    };
    if may_sleep {
        cpu::enable_interrupts_and_wait();
    } else {
        cpu::enable_interrupts();
    }
    local
        .node()
        .borrow()
        .channels
        .receivers
        .iter()
        .flatten()
        .for_each(|receiver| receiver.woken());
}

/// The node loop of a core with nothing else to run.
pub fn run(local: &CoreLocal) -> ! {
    cpu::enable_interrupts();
    let spin = IDLE_SPIN_US * boot_facts().tsc_per_ms / 1000;
    let mut last_busy = cpu::rdtsc();
    loop {
        if poll(local) {
            last_busy = cpu::rdtsc();
        } else if cpu::rdtsc() - last_busy > spin {
            sleep(local);
            last_busy = cpu::rdtsc();
        } else {
            core::hint::spin_loop();
        }
    }
}

/// Polls (so that this core keeps answering others) until `done` or until
/// `timeout_ms` pass; whether it got done. Like the node loop, it sleeps
/// through the URPC handshake once nothing has come for a while, so that a
/// long wait leaves the processor to others (which matters when cores share
/// host CPUs, as under emulation).
pub fn wait_until(local: &CoreLocal, timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let tsc_per_ms = boot_facts().tsc_per_ms;
    let deadline = cpu::rdtsc() + timeout_ms * tsc_per_ms;
    let spin = IDLE_SPIN_US * tsc_per_ms / 1000;
    let mut last_busy = cpu::rdtsc();
    while cpu::rdtsc() < deadline {
        if done() {
            return true;
        }
        if receive_all(local) > 0 {
            last_busy = cpu::rdtsc();
        } else if cpu::rdtsc() - last_busy > spin {
            sleep(local);
            last_busy = cpu::rdtsc();
        } else {
            core::hint::spin_loop();
        }
        dispatch(local, false);
    }
    done()
}

/// Waits for a message from `from` that `wanted` accepts, answering short
/// requests meanwhile.
pub fn wait_for(
    local: &CoreLocal,
    from: usize,
    timeout_ms: u64,
    wanted: impl Fn(&NodeMessage) -> bool,
) -> Option<NodeMessage> {
    let mut found = None;
    let take = |found: &mut Option<NodeMessage>| {
        let mut node = local.node().borrow_mut();
        let position = node
            .pending
            .iter()
            .position(|(sender, message)| *sender == from && wanted(message));
        *found = position
            .and_then(|position| node.pending.remove(position))
            .map(|(_, message)| message);
        found.is_some()
    };
    wait_until(local, timeout_ms, || take(&mut found));
    found
}

fn check_peer(peer: usize) -> Result<(), Refusal> {
    let running = peer < boot_facts().cores.len() && BOARD.core(peer).state() == CoreState::Running;
    if running {
        Ok(())
    } else {
        Err(Refusal::PeerNotRunning)
    }
}

/// `rounds` URPC round trips to `peer`, in cycles each.
pub fn urpc_round_trips(local: &CoreLocal, peer: usize, rounds: u32) -> Result<Vec<u64>, Refusal> {
    check_peer(peer)?;
    (0..u64::from(rounds))
        .map(|token| {
            let start = cpu::rdtsc();
            send(local, peer, Ping { token });
            wait_for(local, peer, PEER_TIMEOUT_MS, |message| {
                *message == Pong { token }.into()
            })
            .map(|_| cpu::rdtsc() - start)
            .ok_or(Refusal::NoAnswer)
        })
        .collect()
}

#[derive(Debug)]
pub struct NoAnswer {
    pub state: CoreState,
}

/// Answers the IPI pings other cores left in this core's board record; runs
/// in the wake-up interrupt handler, so an IPI round trip goes handler to
/// handler without waiting for the node loop.
pub fn answer_ipi_pings(local: &CoreLocal) {
    local.count_wake_interrupt();
    BOARD.core(local.id).ping_requests.drain(|requester| {
        BOARD.core(requester).ping_replies.insert(local.id);
        wake(local, requester);
    });
}

/// One IPI round trip to `target` and back, interrupt handler to interrupt
/// handler, in TSC cycles.
pub fn ipi_round_trip(local: &CoreLocal, target: usize, timeout_ms: u64) -> Result<u64, NoAnswer> {
    let mine = BOARD.core(local.id);
    mine.ping_replies.take(target);
    let interrupts_before = local.wake_interrupts();
    let start = cpu::rdtsc();
    BOARD.core(target).ping_requests.insert(local.id);
    wake(local, target);
    let mut answered = false;
    let done = wait_until(local, timeout_ms, || {
        answered |= mine.ping_replies.take(target);
        answered && local.wake_interrupts() != interrupts_before
    });
    if done {
        Ok(cpu::rdtsc() - start)
    } else {
        // Withdraw the request so that a late answer cannot be mistaken for
        // the answer to a later ping.
        BOARD.core(target).ping_requests.take(local.id);
        Err(NoAnswer {
            state: BOARD.core(target).state(),
        })
    }
}

/// Asks `target` to take a page fault and waits until it has stopped.
pub fn request_fault(local: &CoreLocal, target: usize, timeout_ms: u64) -> bool {
    BOARD
        .core(target)
        .fault_request
        .store(true, Ordering::Release);
    wake(local, target);
    wait_until(local, timeout_ms, || {
        BOARD.core(target).state() == CoreState::Stopped
    })
}

/// Spins until `line` holds `value`, or the peer timeout passes.
fn await_line(line: &core::sync::atomic::AtomicU64, value: u64, deadline: u64) -> bool {
    while line.load(Ordering::Acquire) != value {
        if cpu::rdtsc() > deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// The peer's half of the shared-line ping-pong: wait for each odd value,
/// answer with the next even one.
fn answer_shared_line(local: &CoreLocal, from: usize, rounds: u32) {
    let line = channels::baseline_line(boot_facts(), from, local.id);
    let deadline = cpu::rdtsc() + PEER_TIMEOUT_MS * boot_facts().tsc_per_ms;
    for round in 0..u64::from(rounds) {
        if !await_line(line, 2 * round + 1, deadline) {
            return;
        }
        line.store(2 * round + 2, Ordering::Release);
    }
}

/// Round trips on one cache line both cores write: the cost of moving the
/// line there and back, the floor for any message passing between them.
fn shared_line_round_trips(
    local: &CoreLocal,
    peer: usize,
    rounds: u32,
) -> Result<Vec<u64>, Refusal> {
    let line = channels::baseline_line(boot_facts(), local.id, peer);
    line.store(0, Ordering::Release);
    send(local, peer, SharedLine { rounds });
    let deadline = cpu::rdtsc() + PEER_TIMEOUT_MS * boot_facts().tsc_per_ms;
    (0..u64::from(rounds))
        .map(|round| {
            let start = cpu::rdtsc();
            line.store(2 * round + 1, Ordering::Release);
            if await_line(line, 2 * round + 2, deadline) {
                Ok(cpu::rdtsc() - start)
            } else {
                Err(Refusal::NoAnswer)
            }
        })
        .collect()
}

/// Streams messages to `peer` and returns the cycles per message, from the
/// first send to the peer's confirmation that it got them all.
fn stream_cycles_per_message(local: &CoreLocal, peer: usize) -> Result<u64, Refusal> {
    let start = cpu::rdtsc();
    for index in 0..STREAM_MESSAGES {
        let message = NodeMessage::from(Stream {
            index,
            total: STREAM_MESSAGES,
        });
        let payload = encode(&message, 0)
            .next()
            .expect("a stream message fits one slot");
        while !try_send_to(local, peer, &payload, Flush::WhenFull) {
            if peer_gone(peer) {
                return Err(Refusal::NoAnswer);
            }
            receive_all(local);
            dispatch(local, false);
        }
    }
    flush_to(local, peer);
    match wait_for(local, peer, PEER_TIMEOUT_MS, |message| {
        matches!(message, NodeMessage::StreamDone(_))
    }) {
        Some(NodeMessage::StreamDone(StreamDone { received })) if received == STREAM_MESSAGES => {
            Ok((cpu::rdtsc() - start) / u64::from(STREAM_MESSAGES))
        }
        _ => Err(Refusal::NoAnswer),
    }
}

/// Every `urpc bench` measurement from this core to `peer`.
pub fn bench_pair(local: &CoreLocal, peer: usize) -> Result<BenchReport, Refusal> {
    check_peer(peer)?;
    let urpc = Stats::of(urpc_round_trips(local, peer, ROUNDS)?);
    let ipi: Result<Vec<u64>, Refusal> = (0..ROUNDS)
        .map(|_| ipi_round_trip(local, peer, PEER_TIMEOUT_MS).map_err(|_| Refusal::NoAnswer))
        .collect();
    let ipi = Stats::of(ipi?);
    let shared_line = Stats::of(shared_line_round_trips(local, peer, ROUNDS)?);
    let stream_per_message = stream_cycles_per_message(local, peer)?;
    Ok(BenchReport {
        peer: peer as u32,
        urpc_round_trip: urpc.median,
        ipi_round_trip: ipi.median,
        shared_line_round_trip: shared_line.median,
        stream_per_message,
    })
}

pub struct Stats {
    pub median: u64,
    pub min: u64,
    pub max: u64,
}

impl Stats {
    pub fn of(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        Self {
            median: samples.get(samples.len() / 2).copied().unwrap_or(0),
            min: samples.first().copied().unwrap_or(0),
            max: samples.last().copied().unwrap_or(0),
        }
    }
}
