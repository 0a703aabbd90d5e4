//! Property tests of the call channel against a model.
//!
//! Single-threaded: random sequences of every operation of both ends, on
//! channels of 1 to 16 slots, checked step by step against a model of the
//! calls made, the requests taken, the calls answered and the replies
//! taken, and of both sleep announcements. The server answers the requests
//! it holds in a random order. Multi-threaded: a client and a server on two
//! threads with random pauses, numbers of calls outstanding and sleeps on
//! both sides, checking that every request and every reply arrives once, in
//! order, intact, and that no wake-up is lost.
//!
//! Under Miri (which also runs these) the case counts and sizes shrink, as
//! in `interleavings.rs`.
#![cfg(not(loom))]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::thread;

use atoll_urpc::{CallHeader, Full, Payload, Request, Wake, call_channel};
use common::{
    MAX_MESSAGES, MAX_OPERATIONS, Schedule, claim, config, fresh_slots, message, schedule,
    wait_for_wake_up, wake_up,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The server's answer to a request: every byte changed, so that a request
/// taken for its own reply shows.
fn answer(request: &Payload) -> Payload {
    request.map(|byte| !byte)
}

/// The call number a request carries (see [`message`]).
fn number(request: &Payload) -> u64 {
    u64::from_le_bytes(request[..8].try_into().expect("8 bytes"))
}

#[derive(Debug, Clone, Copy)]
enum Operation {
    TryCall,
    Call,
    ClientFlush,
    PollReply,
    HasReply,
    ClientPrepareToSleep,
    ClientWoken,
    TryRecv,
    HasRequest,
    /// Answer one of the requests held, chosen by this number.
    Reply(usize),
    ReplyUnflushed(usize),
    ServerFlush,
    ServerPrepareToSleep,
    ServerWoken,
}

fn operation() -> impl Strategy<Value = Operation> {
    // Calls, takes and replies dominate, so that channels fill, empty and
    // wrap, and calls both reuse a slot and take the next.
    prop_oneof![
        3 => Just(Operation::TryCall),
        1 => Just(Operation::Call),
        1 => Just(Operation::ClientFlush),
        3 => Just(Operation::PollReply),
        1 => Just(Operation::HasReply),
        1 => Just(Operation::ClientPrepareToSleep),
        1 => Just(Operation::ClientWoken),
        3 => Just(Operation::TryRecv),
        1 => Just(Operation::HasRequest),
        2 => any::<usize>().prop_map(Operation::Reply),
        2 => any::<usize>().prop_map(Operation::ReplyUnflushed),
        1 => Just(Operation::ServerFlush),
        1 => Just(Operation::ServerPrepareToSleep),
        1 => Just(Operation::ServerWoken),
    ]
}

/// What the channel should do, derived from the protocol: calls are
/// numbered 1, 2, ...; the server takes them in order, answers them in any
/// order, and the client takes the replies in call order.
struct Model {
    capacity: u64,
    /// Calls made.
    called: u64,
    /// Requests the server has taken.
    taken: u64,
    /// Replies the client has taken.
    replies_taken: u64,
    /// Calls answered whose replies the client has not taken.
    answered: BTreeSet<u64>,
    /// Whether each side's sleep announcement stands.
    server_announced: bool,
    client_announced: bool,
}

impl Model {
    fn new(capacity: usize) -> Self {
        Model {
            capacity: capacity as u64,
            called: 0,
            taken: 0,
            replies_taken: 0,
            answered: BTreeSet::new(),
            server_announced: false,
            client_announced: false,
        }
    }

    fn call_fits(&self) -> bool {
        self.called - self.replies_taken < self.capacity
    }

    fn has_reply(&self) -> bool {
        self.answered.contains(&(self.replies_taken + 1))
    }

    fn has_request(&self) -> bool {
        self.taken < self.called
    }
}

/// Runs `operations` on a channel of `capacity` slots and on the model, and
/// checks that each result is the one the model gives; then drains the
/// channel and checks that every call is answered.
fn check_against_model(capacity: usize, operations: &[Operation]) -> Result<(), TestCaseError> {
    let mut header = CallHeader::new();
    let mut slots = fresh_slots(capacity);
    let (mut client, mut server) = call_channel(&mut header, &mut slots);
    let mut model = Model::new(capacity);
    // Requests taken and not yet answered, in the order taken.
    let mut held: Vec<Request<'_>> = Vec::new();
    for (step, operation) in operations.iter().enumerate() {
        match *operation {
            Operation::TryCall => {
                let fits = model.call_fits();
                let result = client.try_call(&message(model.called + 1));
                prop_assert_eq!(result.is_ok(), fits, "step {}: try_call", step);
                model.called += u64::from(fits);
            }
            Operation::Call => {
                let result = client.call(&message(model.called + 1));
                let expected = if model.call_fits() {
                    model.called += 1;
                    Ok(claim(&mut model.server_announced))
                } else {
                    // A call that does not fit does not flush either.
                    Err(Full)
                };
                prop_assert_eq!(result, expected, "step {}: call", step);
            }
            Operation::ClientFlush => {
                let expected = claim(&mut model.server_announced);
                prop_assert_eq!(client.flush(), expected, "step {}", step);
            }
            Operation::PollReply => {
                let expected = model.has_reply().then(|| {
                    model.replies_taken += 1;
                    model.answered.remove(&model.replies_taken);
                    answer(&message(model.replies_taken))
                });
                prop_assert_eq!(client.poll_reply(), expected, "step {}", step);
            }
            Operation::HasReply => {
                prop_assert_eq!(client.has_reply(), model.has_reply(), "step {}", step);
            }
            Operation::ClientPrepareToSleep => {
                // The announcement stands only if no reply is there.
                model.client_announced = !model.has_reply();
                let expected = model.client_announced;
                prop_assert_eq!(client.prepare_to_sleep(), expected, "step {}", step);
            }
            Operation::ClientWoken => {
                client.woken();
                model.client_announced = false;
            }
            Operation::TryRecv => {
                let expected = model.has_request().then(|| {
                    model.taken += 1;
                    message(model.taken)
                });
                let request = server.try_recv();
                prop_assert_eq!(
                    request.as_ref().map(|request| *request.payload()),
                    expected,
                    "step {}",
                    step
                );
                held.extend(request);
            }
            Operation::HasRequest => {
                let expected = model.has_request();
                prop_assert_eq!(server.has_request(), expected, "step {}", step);
            }
            Operation::Reply(choice) | Operation::ReplyUnflushed(choice) => {
                if held.is_empty() {
                    continue;
                }
                let request = held.remove(choice % held.len());
                let reply = answer(request.payload());
                model.answered.insert(number(request.payload()));
                if let Operation::Reply(_) = operation {
                    let expected = claim(&mut model.client_announced);
                    prop_assert_eq!(server.reply(request, &reply), expected, "step {}", step);
                } else {
                    server.reply_unflushed(request, &reply);
                }
            }
            Operation::ServerFlush => {
                let expected = claim(&mut model.client_announced);
                prop_assert_eq!(server.flush(), expected, "step {}", step);
            }
            Operation::ServerPrepareToSleep => {
                model.server_announced = !model.has_request();
                let expected = model.server_announced;
                prop_assert_eq!(server.prepare_to_sleep(), expected, "step {}", step);
            }
            Operation::ServerWoken => {
                server.woken();
                model.server_announced = false;
            }
        }
    }
    // Drain: the server takes and answers everything, and every reply
    // arrives, in call order, then nothing.
    held.extend(std::iter::from_fn(|| server.try_recv()));
    let unanswered = model.called - model.replies_taken - model.answered.len() as u64;
    prop_assert_eq!(held.len() as u64, unanswered, "requests left to answer");
    for request in held {
        let reply = answer(request.payload());
        server.reply_unflushed(request, &reply);
    }
    for call in model.replies_taken + 1..=model.called {
        prop_assert_eq!(
            client.poll_reply(),
            Some(answer(&message(call))),
            "call {}",
            call
        );
    }
    prop_assert_eq!(client.poll_reply(), None);
    Ok(())
}

proptest! {
    #![proptest_config(config(256, 4))]

    #[test]
    fn one_thread_matches_the_model(
        capacity in 1..=16usize,
        operations in prop::collection::vec(operation(), 0..MAX_OPERATIONS),
    ) {
        check_against_model(capacity, &operations)?;
    }
}

/// Makes `count` calls from one thread to a server on another through a
/// channel of `capacity` slots, following the two schedules: the client
/// keeps up to `calling.every` calls outstanding, flushing after each batch
/// of calls, and sleeps after a few empty polls while it waits for replies;
/// the server sleeps after `serving.every` empty polls. Each side sleeps (as
/// a host would, on a flag the other side's wake-up sets) only when its
/// `prepare_to_sleep` says it may.
fn two_threads(capacity: usize, count: u64, calling: &Schedule, serving: &Schedule) {
    let mut header = CallHeader::new();
    let mut slots = fresh_slots(capacity);
    let (mut client, mut server) = call_channel(&mut header, &mut slots);
    let (server_flag, client_flag) = (AtomicBool::new(false), AtomicBool::new(false));
    let client_thread = thread::current();
    thread::scope(|scope| {
        let server_thread = scope.spawn(|| {
            let mut empty_polls = 0u64;
            let mut answered = 0;
            let mut step = 0;
            while answered < count {
                serving.pause(step);
                step += 1;
                if let Some(request) = server.try_recv() {
                    assert_eq!(
                        request.payload(),
                        &message(answered + 1),
                        "request {} arrived wrong",
                        answered + 1
                    );
                    let reply = answer(request.payload());
                    if server.reply(request, &reply) == Wake::Needed {
                        wake_up(&client_flag, &client_thread);
                    }
                    answered += 1;
                    empty_polls = 0;
                    continue;
                }
                empty_polls += 1;
                if empty_polls.is_multiple_of(serving.every) && server.prepare_to_sleep() {
                    wait_for_wake_up(&server_flag);
                    server.woken();
                }
            }
            assert!(server.try_recv().is_none(), "a request after the last");
        });
        let outstanding = (calling.every as usize).min(capacity);
        let (mut called, mut replied) = (0, 0);
        let mut empty_polls = 0u64;
        let mut step = 0;
        while replied < count {
            calling.pause(step);
            step += 1;
            let mut made_calls = false;
            while called < count && client.outstanding() < outstanding {
                client
                    .try_call(&message(called + 1))
                    .expect("fewer calls outstanding than slots");
                called += 1;
                made_calls = true;
            }
            if made_calls && client.flush() == Wake::Needed {
                wake_up(&server_flag, server_thread.thread());
            }
            if let Some(reply) = client.poll_reply() {
                replied += 1;
                assert_eq!(
                    reply,
                    answer(&message(replied)),
                    "reply {replied} arrived wrong"
                );
                empty_polls = 0;
                continue;
            }
            // A server that failed an assertion answers no more; the join
            // below reports its failure.
            if server_thread.is_finished() {
                break;
            }
            empty_polls += 1;
            if empty_polls.is_multiple_of(3) && client.prepare_to_sleep() {
                wait_for_wake_up(&client_flag);
                client.woken();
            }
        }
        server_thread.join().unwrap();
    });
}

proptest! {
    // As in `interleavings.rs`: a bug here often shows as a side stuck until
    // the lost-wake-up deadline, so shrinking is cut short.
    #![proptest_config(Config { max_shrink_time: 30_000, ..config(32, 4) })]

    #[test]
    fn two_threads_answer_every_call_once_in_order(
        capacity in 1..=8usize,
        count in 1..=MAX_MESSAGES,
        calling in schedule(),
        serving in schedule(),
    ) {
        two_threads(capacity, count, &calling, &serving);
    }
}
