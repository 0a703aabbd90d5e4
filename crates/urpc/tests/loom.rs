//! Loom models of the ring and of the call channel: every interleaving of
//! the two ends, and every value the C11 memory model lets each atomic load
//! return, up to a preemption bound. The payload cells are loom cells, so a
//! payload read that is not ordered after its write (or a write that races
//! the read of the message before it) fails the model too. The API allows
//! one end of each kind per channel, so these are the only shapes.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p atoll-urpc --test loom --release`;
//! `LOOM_MAX_PREEMPTIONS` overrides the bound set here.
#![cfg(loom)]

use atoll_urpc::{
    CallClient, CallHeader, CallServer, Full, PAYLOAD_SIZE, Payload, Receiver, RingHeader, Sender,
    Slot, Wake, call_channel, channel,
};
use loom::sync::{Arc, Notify};
use loom::thread;

/// Preemptions per execution when `LOOM_MAX_PREEMPTIONS` is unset. Three
/// covers the orderings the handshake's argument depends on (each side
/// interrupted between its store and its swap, and between its swap and its
/// check) and keeps the whole file to seconds.
const DEFAULT_PREEMPTION_BOUND: usize = 3;

fn explore(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder
        .preemption_bound
        .get_or_insert(DEFAULT_PREEMPTION_BOUND);
    builder.check(model);
}

/// Message `number`, with bytes at both ends of the payload so that a torn or
/// stale copy shows.
fn message(number: u8) -> Payload {
    let mut payload = [0; PAYLOAD_SIZE];
    payload[0] = number;
    payload[PAYLOAD_SIZE - 1] = !number;
    payload
}

/// A fresh ring with endpoints that threads can take. Loom has no scoped
/// threads and the endpoints borrow the ring, so each execution leaks its
/// (small) ring to give it the `'static` lifetime `thread::spawn` wants.
fn leaked_ring(slots: usize) -> (Sender<'static>, Receiver<'static>) {
    let header = Box::leak(Box::new(RingHeader::new()));
    let slots = Box::leak((0..slots).map(|_| Slot::new()).collect::<Box<[Slot]>>());
    channel(header, slots)
}

/// Sends `count` messages through a ring of `slots` slots, the sender
/// retrying while the ring is full, the receiver polling; the receiver must
/// get every message once, in order, intact, and nothing after the last.
fn messages_arrive_in_order(slots: usize, count: u8) {
    explore(move || {
        let (mut sender, mut receiver) = leaked_ring(slots);
        let sending = thread::spawn(move || {
            for number in 1..=count {
                while sender.try_send(&message(number)) == Err(Full) {
                    thread::yield_now();
                }
            }
        });
        for number in 1..=count {
            let received = loop {
                match receiver.try_recv() {
                    Some(payload) => break payload,
                    None => thread::yield_now(),
                }
            };
            assert_eq!(received, message(number), "message {number} arrived wrong");
        }
        sending.join().unwrap();
        assert_eq!(receiver.try_recv(), None, "a message arrived twice");
    });
}

#[test]
fn one_slot_ring_wraps_around_every_message() {
    messages_arrive_in_order(1, 3);
}

#[test]
fn two_slot_ring_wraps_around_under_flow_control() {
    messages_arrive_in_order(2, 5);
}

/// The sleep handshake. The receiver sleeps whenever `prepare_to_sleep` says
/// it may, and only a sender that got [`Wake::Needed`] wakes it. The sender
/// flushes after every `batch` messages and before it waits for space, as
/// [`Sender::try_send`] asks. If the handshake could lose a wake-up, some
/// execution would leave the receiver asleep with a message in the ring, and
/// loom reports the deadlock.
fn a_sleeping_receiver_gets_every_message(slots: usize, count: u8, batch: u8) {
    explore(move || {
        let (mut sender, mut receiver) = leaked_ring(slots);
        // The host's wake-up (an IPI, a futex): loom's `Notify`, which keeps
        // a notification that comes before the wait, as those do, and which
        // loom also lets wake spuriously.
        let wake = Arc::new(Notify::new());
        let waker = wake.clone();
        let sending = thread::spawn(move || {
            let flush = |sender: &Sender| {
                if sender.flush() == Wake::Needed {
                    waker.notify();
                }
            };
            for number in 1..=count {
                while sender.try_send(&message(number)) == Err(Full) {
                    flush(&sender);
                    thread::yield_now();
                }
                if number.is_multiple_of(batch) || number == count {
                    flush(&sender);
                }
            }
        });
        let mut next = 1;
        while next <= count {
            if let Some(payload) = receiver.try_recv() {
                assert_eq!(payload, message(next), "message {next} arrived wrong");
                next += 1;
            } else if receiver.prepare_to_sleep() {
                wake.wait();
                receiver.woken();
            }
        }
        sending.join().unwrap();
        assert_eq!(receiver.try_recv(), None, "a message arrived twice");
    });
}

#[test]
fn a_sleeping_receiver_is_woken_for_one_message() {
    a_sleeping_receiver_gets_every_message(1, 1, 1);
}

#[test]
fn a_receiver_that_sleeps_twice_is_woken_each_time() {
    a_sleeping_receiver_gets_every_message(2, 2, 1);
}

#[test]
fn a_sender_waiting_for_space_and_a_sleeping_receiver_make_progress() {
    a_sleeping_receiver_gets_every_message(1, 3, 1);
}

#[test]
fn a_batch_flushed_once_wakes_the_receiver() {
    a_sleeping_receiver_gets_every_message(2, 3, 2);
}

/// A fresh call channel whose ends threads can take, leaked as
/// [`leaked_ring`] leaks its ring.
fn leaked_call_channel(slots: usize) -> (CallClient<'static>, CallServer<'static>) {
    let header = Box::leak(Box::new(CallHeader::new()));
    let slots = Box::leak((0..slots).map(|_| Slot::new()).collect::<Box<[Slot]>>());
    call_channel(header, slots)
}

/// The server's answer to a request: every byte changed, so that a reply
/// read before the server wrote it, or a request taken for its reply, shows.
fn answer(request: &Payload) -> Payload {
    request.map(|byte| !byte)
}

/// Makes calls through a channel of `slots` slots in `bursts`: each burst
/// makes its calls, then takes their replies, so that the first call of a
/// burst reuses the slot of the call before it (none is outstanding) and the
/// others take the next slots. The server answers each request as it takes
/// it. Every request must reach the server once, in order, intact, and
/// every reply the client, likewise.
fn calls_are_answered_in_order(slots: usize, bursts: &'static [u8]) {
    explore(move || {
        let (mut client, mut server) = leaked_call_channel(slots);
        let count: u8 = bursts.iter().sum();
        let serving = thread::spawn(move || {
            for number in 1..=count {
                let request = loop {
                    match server.try_recv() {
                        Some(request) => break request,
                        None => thread::yield_now(),
                    }
                };
                assert_eq!(request.payload(), &message(number), "request {number}");
                let reply = answer(request.payload());
                server.reply_unflushed(request, &reply);
            }
            assert!(server.try_recv().is_none(), "a request arrived twice");
        });
        let mut number = 0;
        for &burst in bursts {
            for call in number + 1..=number + burst {
                client.try_call(&message(call)).expect("a burst fits");
            }
            for call in number + 1..=number + burst {
                let reply = loop {
                    match client.poll_reply() {
                        Some(reply) => break reply,
                        None => thread::yield_now(),
                    }
                };
                assert_eq!(reply, answer(&message(call)), "reply {call}");
            }
            number += burst;
        }
        serving.join().unwrap();
        assert_eq!(client.poll_reply(), None, "a reply arrived twice");
    });
}

#[test]
fn one_slot_call_channel_reuses_its_slot() {
    calls_are_answered_in_order(1, &[1, 1, 1]);
}

#[test]
fn two_slot_call_channel_reuses_a_slot_then_takes_the_next() {
    calls_are_answered_in_order(2, &[1, 2]);
}

#[test]
fn two_slot_call_channel_wraps_around_between_reuses() {
    calls_are_answered_in_order(2, &[2, 1, 2]);
}

/// The sleep handshake on both sides of a call channel: the server sleeps
/// whenever no request has come, the client whenever its reply has not, each
/// only if its `prepare_to_sleep` says it may, and each is woken only by the
/// other side's flush saying [`Wake::Needed`]. A lost wake-up leaves one side
/// asleep for good, which loom reports as a deadlock.
fn both_sides_of_a_call_sleep_and_are_woken(slots: usize, count: u8) {
    explore(move || {
        let (mut client, mut server) = leaked_call_channel(slots);
        let (wake_server, wake_client) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (server_bell, client_bell) = (wake_server.clone(), wake_client.clone());
        let serving = thread::spawn(move || {
            for number in 1..=count {
                let request = loop {
                    if let Some(request) = server.try_recv() {
                        break request;
                    }
                    if server.prepare_to_sleep() {
                        server_bell.wait();
                        server.woken();
                    }
                };
                assert_eq!(request.payload(), &message(number), "request {number}");
                let reply = answer(request.payload());
                if server.reply(request, &reply) == Wake::Needed {
                    wake_client.notify();
                }
            }
        });
        for number in 1..=count {
            if client.call(&message(number)).unwrap() == Wake::Needed {
                wake_server.notify();
            }
            let reply = loop {
                if let Some(reply) = client.poll_reply() {
                    break reply;
                }
                if client.prepare_to_sleep() {
                    client_bell.wait();
                    client.woken();
                }
            };
            assert_eq!(reply, answer(&message(number)), "reply {number}");
        }
        serving.join().unwrap();
    });
}

#[test]
fn a_sleeping_server_and_a_sleeping_client_are_woken() {
    both_sides_of_a_call_sleep_and_are_woken(1, 1);
}

#[test]
fn both_sides_sleep_twice_and_are_woken_each_time() {
    both_sides_of_a_call_sleep_and_are_woken(2, 2);
}
