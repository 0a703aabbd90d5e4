//! The mechanisms the benchmark compares, each as a request channel and a
//! reply channel, or as a URPC call channel (both directions in one), wrapped
//! into a [`Cell`].
//!
//! Every receiver polls (spins on `try_recv` or its equivalent) except the
//! pipe's, which blocks in `read`, and URPC's with the sleep handshake,
//! which polls a while and then sleeps on its futex. Polling is each
//! channel's fastest way to receive, so the peers are compared at their best.

use std::io::{BufReader, PipeReader, PipeWriter, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use std::hint::black_box;

use atoll_hosted::{
    CallChannel, FutexCallClient, FutexCallServer, Receiver, Ring, Sender, SharedMemory,
};
use atoll_urpc::{PAYLOAD_SIZE, Payload};

use crate::harness::{Cell, Inbound, Initiator, Metric, Outbound, Part, Responder};
use crate::model::{ModelCall, ModelRing};

/// Messages the peers' channels hold. Generous, so as not to handicap them.
pub const PEER_CAPACITY: usize = 1024;

/// Spins before a URPC receiver with the sleep handshake goes to sleep:
/// some tens of microseconds, far longer than any wait in a measurement,
/// so the handshake is armed on every message but sleeping never happens.
const SPINS_BEFORE_SLEEP: u32 = 10_000;

fn cell<'a, const N: usize>(
    metric: Metric,
    (request_sender, request_receiver): (impl Outbound<N> + 'a, impl Inbound<N> + 'a),
    (reply_sender, reply_receiver): (impl Outbound<N> + 'a, impl Inbound<N> + 'a),
) -> Cell<'a> {
    let initiator: Initiator<_, _, N> = Initiator {
        requests: request_sender,
        replies: reply_receiver,
    };
    let responder: Responder<_, _, N> = Responder {
        requests: request_receiver,
        replies: reply_sender,
    };
    Cell::new(metric, initiator, responder)
}

/// A counter one side stores and the other polls for: the floors' "channel".
/// The message is the counter itself; payload bytes are not carried.
struct LineWriter<'a> {
    line: &'a AtomicU64,
    next: u64,
    step: u64,
}

struct LineReader<'a> {
    line: &'a AtomicU64,
    expected: u64,
    step: u64,
}

impl<const N: usize> Outbound<N> for LineWriter<'_> {
    fn send(&mut self, _: &[u8; N]) {
        self.line.store(self.next, Ordering::Release);
        self.next += self.step;
    }
}

impl<const N: usize> Inbound<N> for LineReader<'_> {
    fn recv(&mut self) -> [u8; N] {
        while self.line.load(Ordering::Acquire) != self.expected {
            std::hint::spin_loop();
        }
        self.expected += self.step;
        [0; N]
    }
}

/// The physical floor: both threads take turns writing one cache line (the
/// initiator odd numbers, the responder even ones), so each message is one
/// line transfer. Latency only: it has no flow control for a burst.
pub fn one_line_floor(lines: &SharedMemory) -> Cell<'_> {
    let line = &lines.words()[0];
    line.store(0, Ordering::Relaxed);
    let writer = |first| LineWriter {
        line,
        next: first,
        step: 2,
    };
    let reader = |first| LineReader {
        line,
        expected: first,
        step: 2,
    };
    cell::<8>(
        Metric::Latency,
        (writer(1), reader(1)),
        (writer(2), reader(2)),
    )
}

/// The floor for a protocol in which no line is written by both sides:
/// each direction has a line of its own, written by its sender only.
pub fn two_line_floor(lines: &SharedMemory) -> Cell<'_> {
    let (request, reply) = (&lines.words()[0], &lines.words()[8]);
    request.store(0, Ordering::Relaxed);
    reply.store(0, Ordering::Relaxed);
    let direction = |line| {
        (
            LineWriter {
                line,
                next: 1,
                step: 1,
            },
            LineReader {
                line,
                expected: 1,
                step: 1,
            },
        )
    };
    cell::<8>(Metric::Latency, direction(request), direction(reply))
}

/// Whether URPC's sleep handshake runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// No flush, and receivers that poll and never sleep: the fastest
    /// correct use when neither side sleeps.
    Off,
    /// A flush after every burst (after every message in a round trip), as
    /// a sender must before it waits, and receivers that would sleep if
    /// they polled long enough without a message. Calls flush every call
    /// and every reply.
    Armed,
}

struct UrpcOut<'m> {
    sender: Sender<'m>,
    handshake: Handshake,
}

struct UrpcIn<'m> {
    receiver: Receiver<'m>,
    handshake: Handshake,
}

/// URPC writes each message straight into its slot: the message's bytes,
/// and the rest of the payload left as the slot's last message left it.
/// Padding the message into a payload on the stack first, and sending that,
/// streamed 8-byte messages two to four and a half times slower (see
/// [`atoll_urpc::Sender::try_send_with`]).
impl<const N: usize> Outbound<N> for UrpcOut<'_> {
    fn send(&mut self, message: &[u8; N]) {
        self.sender
            .send_unflushed_with(|payload| payload[..N].copy_from_slice(message));
    }

    fn end_burst(&mut self) {
        if self.handshake == Handshake::Armed {
            let _woke = self.sender.flush();
        }
    }
}

impl<const N: usize> Inbound<N> for UrpcIn<'_> {
    fn recv(&mut self) -> [u8; N] {
        let payload = match self.handshake {
            Handshake::Off => self.receiver.recv_polling(),
            Handshake::Armed => self.receiver.recv(SPINS_BEFORE_SLEEP),
        };
        payload[..N]
            .try_into()
            .expect("N is at most the payload size")
    }
}

fn urpc_direction(ring: &mut Ring, handshake: Handshake) -> (UrpcOut<'_>, UrpcIn<'_>) {
    let (sender, receiver) = ring.split();
    (
        UrpcOut { sender, handshake },
        UrpcIn {
            receiver,
            handshake,
        },
    )
}

/// Atoll's URPC: one message per slot, a ring each way.
pub fn urpc<'m, const N: usize>(
    metric: Metric,
    handshake: Handshake,
    (requests, replies): (&'m mut Ring, &'m mut Ring),
) -> Cell<'m> {
    const { assert!(N <= PAYLOAD_SIZE) };
    cell::<N>(
        metric,
        urpc_direction(requests, handshake),
        urpc_direction(replies, handshake),
    )
}

/// The client of a call channel: one call at a time, each waiting for its
/// reply, which comes back in the request's slot.
struct Caller<'m, const N: usize> {
    client: FutexCallClient<'m>,
    handshake: Handshake,
}

/// The server of a call channel: answers each request with its own bytes.
struct Answerer<'m, const N: usize> {
    server: FutexCallServer<'m>,
    handshake: Handshake,
}

impl<const N: usize> Part for Caller<'_, N> {
    fn run(&mut self, exchanges: u64, burst: u64) {
        debug_assert_eq!(burst, 1, "calls are measured as round trips");
        let mut request = [0; PAYLOAD_SIZE];
        request[..N].fill(0x5a);
        for _ in 0..exchanges {
            let reply = match self.handshake {
                Handshake::Off => {
                    self.client
                        .try_call(black_box(&request))
                        .expect("one call at a time fits");
                    self.client.wait_reply_polling()
                }
                Handshake::Armed => {
                    let _woke = self
                        .client
                        .call(black_box(&request))
                        .expect("one call at a time fits");
                    self.client.wait_reply(SPINS_BEFORE_SLEEP)
                }
            };
            black_box(&reply[..N]);
        }
    }
}

impl<const N: usize> Part for Answerer<'_, N> {
    fn run(&mut self, exchanges: u64, burst: u64) {
        debug_assert_eq!(burst, 1, "calls are measured as round trips");
        for _ in 0..exchanges {
            let request = match self.handshake {
                Handshake::Off => self.server.recv_polling(),
                Handshake::Armed => self.server.recv(SPINS_BEFORE_SLEEP),
            };
            let mut reply = [0; PAYLOAD_SIZE];
            reply[..N].copy_from_slice(&request.payload()[..N]);
            match self.handshake {
                Handshake::Off => self.server.reply_unflushed(request, &reply),
                Handshake::Armed => {
                    let _woke = self.server.reply(request, &reply);
                }
            }
        }
    }
}

/// A URPC call channel: the request and its reply in the same slot, one
/// line moving each way per call. Round trips only.
pub fn urpc_call<const N: usize>(handshake: Handshake, channel: &mut CallChannel) -> Cell<'_> {
    const { assert!(N <= PAYLOAD_SIZE) };
    let (client, server) = channel.split();
    Cell::new(
        Metric::Latency,
        Caller::<N> { client, handshake },
        Answerer::<N> { server, handshake },
    )
}

/// Eight-byte messages this many to a slot.
pub const PACKED_PER_SLOT: usize = PAYLOAD_SIZE / 8;

/// Streams 8-byte messages [`PACKED_PER_SLOT`] to a slot (or a peer's
/// item) of a channel of slot-sized messages. A slot goes out when full, so
/// a burst must be a multiple of [`PACKED_PER_SLOT`]; a general packed
/// channel would also need a count for a partial slot.
struct PackedOut<O> {
    slots: O,
    slot: Payload,
    filled: usize,
}

struct PackedIn<I> {
    slots: I,
    slot: Payload,
    unread: usize,
}

impl<O: Outbound<PAYLOAD_SIZE>> Outbound<8> for PackedOut<O> {
    fn send(&mut self, message: &[u8; 8]) {
        self.slot[self.filled * 8..][..8].copy_from_slice(message);
        self.filled += 1;
        if self.filled == PACKED_PER_SLOT {
            self.slots.send(&self.slot);
            self.filled = 0;
        }
    }
}

impl<I: Inbound<PAYLOAD_SIZE>> Inbound<8> for PackedIn<I> {
    fn recv(&mut self) -> [u8; 8] {
        if self.unread == 0 {
            self.slot = self.slots.recv();
            self.unread = PACKED_PER_SLOT;
        }
        let word = PACKED_PER_SLOT - self.unread;
        self.unread -= 1;
        self.slot[word * 8..][..8]
            .try_into()
            .expect("a word is 8 bytes")
    }
}

/// `(sender, receiver)` of slot-sized messages, packing 8-byte messages.
fn packed<O, I>((slots_out, slots_in): (O, I)) -> (PackedOut<O>, PackedIn<I>) {
    (
        PackedOut {
            slots: slots_out,
            slot: [0; PAYLOAD_SIZE],
            filled: 0,
        },
        PackedIn {
            slots: slots_in,
            slot: [0; PAYLOAD_SIZE],
            unread: 0,
        },
    )
}

/// URPC streaming 8-byte messages packed into slots, polling; the reply
/// direction (one message per burst) is plain URPC. Throughput only.
pub fn urpc_packed<'m>((requests, replies): (&'m mut Ring, &'m mut Ring)) -> Cell<'m> {
    cell::<8>(
        Metric::Throughput,
        packed(urpc_direction(requests, Handshake::Off)),
        urpc_direction(replies, Handshake::Off),
    )
}

/// The bare ring of [`crate::model`]: round trips only.
pub fn model<'r>(requests: &'r mut ModelRing, replies: &'r mut ModelRing) -> Cell<'r> {
    cell::<56>(Metric::Latency, requests.split(), replies.split())
}

/// The bare call channel of [`crate::model`]: round trips only.
pub fn model_call(channel: &mut ModelCall) -> Cell<'_> {
    let (caller, answerer) = channel.split();
    Cell::new(Metric::Latency, caller, answerer)
}

impl<const N: usize> Outbound<N> for rtrb::Producer<[u8; N]> {
    fn send(&mut self, message: &[u8; N]) {
        while self.push(*message).is_err() {
            std::hint::spin_loop();
        }
    }
}

impl<const N: usize> Inbound<N> for rtrb::Consumer<[u8; N]> {
    fn recv(&mut self) -> [u8; N] {
        loop {
            if let Ok(message) = self.pop() {
                return message;
            }
            std::hint::spin_loop();
        }
    }
}

/// `rtrb`: a single-producer single-consumer ring, each push and pop
/// published at once, with [`PEER_CAPACITY`] items.
pub fn rtrb<const N: usize>(metric: Metric) -> Cell<'static> {
    let direction = || rtrb::RingBuffer::<[u8; N]>::new(PEER_CAPACITY);
    cell::<N>(metric, direction(), direction())
}

/// An `rtrb` consumer that reads with its chunk API: every item waiting, up
/// to `batch`, in one chunk, and publishes its read position once per
/// chunk. URPC's receiver likewise acknowledges once per half ring, while
/// each message is visible to it as soon as it is written, as each rtrb
/// push is.
struct BatchedIn<const N: usize> {
    consumer: rtrb::Consumer<[u8; N]>,
    batch: usize,
    read: std::collections::VecDeque<[u8; N]>,
}

impl<const N: usize> Inbound<N> for BatchedIn<N> {
    fn recv(&mut self) -> [u8; N] {
        while self.read.is_empty() {
            let waiting = self.consumer.slots().min(self.batch);
            if waiting == 0 {
                std::hint::spin_loop();
                continue;
            }
            let chunk = self
                .consumer
                .read_chunk(waiting)
                .expect("no more than are waiting");
            let (first, second) = chunk.as_slices();
            self.read.extend(first.iter().chain(second));
            chunk.commit_all();
        }
        self.read.pop_front().expect("read above")
    }
}

/// `rtrb` with URPC's shape: `capacity` items, read in chunks of up to half
/// of it, as URPC's rings of that depth acknowledge.
fn rtrb_batched_direction<const N: usize>(
    capacity: usize,
) -> (rtrb::Producer<[u8; N]>, BatchedIn<N>) {
    let (producer, consumer) = rtrb::RingBuffer::<[u8; N]>::new(capacity);
    let batched = BatchedIn {
        consumer,
        batch: capacity / 2,
        read: std::collections::VecDeque::with_capacity(capacity / 2),
    };
    (producer, batched)
}

/// `rtrb` as URPC's like: `capacity` items (URPC's ring depth), pushes
/// published at once, reads in chunks of half the capacity. Streaming
/// only.
pub fn rtrb_batched<const N: usize>(capacity: usize) -> Cell<'static> {
    cell::<N>(
        Metric::Throughput,
        rtrb_batched_direction(capacity),
        rtrb_batched_direction(capacity),
    )
}

/// [`rtrb_batched`] carrying 8-byte messages [`PACKED_PER_SLOT`] to an
/// item, as [`urpc_packed`] packs them into slots. Streaming only.
pub fn rtrb_packed(capacity: usize) -> Cell<'static> {
    cell::<8>(
        Metric::Throughput,
        packed(rtrb_batched_direction::<PAYLOAD_SIZE>(capacity)),
        rtrb_batched_direction(capacity),
    )
}

impl<const N: usize> Outbound<N> for crossbeam_channel::Sender<[u8; N]> {
    fn send(&mut self, message: &[u8; N]) {
        while let Err(error) = self.try_send(*message) {
            assert!(error.is_full(), "the crossbeam receiver is gone");
            std::hint::spin_loop();
        }
    }
}

impl<const N: usize> Inbound<N> for crossbeam_channel::Receiver<[u8; N]> {
    fn recv(&mut self) -> [u8; N] {
        loop {
            match self.try_recv() {
                Ok(message) => return message,
                Err(error) => assert!(error.is_empty(), "the crossbeam sender is gone"),
            }
            std::hint::spin_loop();
        }
    }
}

/// `crossbeam-channel`: a bounded multi-producer multi-consumer channel.
pub fn crossbeam<const N: usize>(metric: Metric) -> Cell<'static> {
    let direction = || crossbeam_channel::bounded::<[u8; N]>(PEER_CAPACITY);
    cell::<N>(metric, direction(), direction())
}

impl<const N: usize> Outbound<N> for std::sync::mpsc::SyncSender<[u8; N]> {
    fn send(&mut self, message: &[u8; N]) {
        use std::sync::mpsc::TrySendError;
        while let Err(error) = self.try_send(*message) {
            assert!(
                matches!(error, TrySendError::Full(_)),
                "the mpsc receiver is gone"
            );
            std::hint::spin_loop();
        }
    }
}

impl<const N: usize> Inbound<N> for std::sync::mpsc::Receiver<[u8; N]> {
    fn recv(&mut self) -> [u8; N] {
        use std::sync::mpsc::TryRecvError;
        loop {
            match self.try_recv() {
                Ok(message) => return message,
                Err(error) => assert_eq!(error, TryRecvError::Empty, "the mpsc sender is gone"),
            }
            std::hint::spin_loop();
        }
    }
}

/// `std::sync::mpsc`: the standard library's bounded channel.
pub fn mpsc<const N: usize>(metric: Metric) -> Cell<'static> {
    let direction = || std::sync::mpsc::sync_channel::<[u8; N]>(PEER_CAPACITY);
    cell::<N>(metric, direction(), direction())
}

impl<const N: usize> Outbound<N> for PipeWriter {
    fn send(&mut self, message: &[u8; N]) {
        self.write_all(message).expect("cannot write to the pipe");
    }
}

impl<const N: usize> Inbound<N> for BufReader<PipeReader> {
    fn recv(&mut self) -> [u8; N] {
        let mut message = [0; N];
        self.read_exact(&mut message)
            .expect("cannot read from the pipe");
        message
    }
}

/// Pipes slow a batch down this much; see [`Cell::slowed`].
const PIPE_SLOWDOWN: u64 = 16;

/// A pipe each way: one `write` per message; the reader blocks in `read`
/// and buffers, so one `read` can take many streamed messages.
pub fn pipe<const N: usize>(metric: Metric) -> Cell<'static> {
    let direction = || {
        let (reader, writer) = std::io::pipe().expect("cannot create a pipe");
        (writer, BufReader::new(reader))
    };
    cell::<N>(metric, direction(), direction()).slowed(PIPE_SLOWDOWN)
}
