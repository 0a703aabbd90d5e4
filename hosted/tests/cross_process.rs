//! A ring, and a call channel, between two processes: a forked child echoes
//! what it receives, and every message crosses both ways intact, in order,
//! through the shared mapping and (when the child sleeps) the
//! process-shared futex.

use std::time::{Duration, Instant};

use atoll_hosted::{CallChannel, Ring, fork_peer};
use atoll_urpc::{PAYLOAD_SIZE, Payload, Wake};

const MESSAGES: u64 = 50_000;
const DEADLINE: Duration = Duration::from_secs(60);

/// Every byte depends on the message number and its position, so a torn,
/// stale or misplaced payload does not pass for the right one.
fn message(number: u64) -> Payload {
    let mut payload = [0; PAYLOAD_SIZE];
    for (position, byte) in payload.iter_mut().enumerate() {
        *byte = (number.wrapping_mul(31) ^ (position as u64 * 7)) as u8;
    }
    payload[..8].copy_from_slice(&number.to_le_bytes());
    payload
}

fn echoed(payload: &Payload) -> Payload {
    payload.map(|byte| !byte)
}

#[test]
fn messages_cross_between_processes_intact() {
    let mut requests = Ring::new(8).unwrap();
    let mut replies = Ring::new(8).unwrap();
    let (mut request_sender, mut request_receiver) = requests.split();
    let (mut reply_sender, mut reply_receiver) = replies.split();
    // SAFETY: the child only receives, compares and sends on the rings —
    // atomics, copies and futex calls; it allocates nothing and takes no locks.
    let child = unsafe {
        fork_peer(move || {
            for number in 0..MESSAGES {
                // No polling at all: the child sleeps whenever the ring is empty.
                let request = request_receiver.recv(0);
                if request != message(number) {
                    return false;
                }
                let _ = reply_sender.send(&echoed(&request));
            }
            true
        })
    }
    .unwrap();

    let deadline = Instant::now() + DEADLINE;
    let mut wakes = 0;
    for number in 0..MESSAGES {
        wakes += u64::from(request_sender.send(&message(number)) == Wake::Needed);
        let reply = loop {
            if let Some(reply) = reply_receiver.try_recv() {
                break reply;
            }
            assert!(Instant::now() < deadline, "no reply to message {number}");
            std::hint::spin_loop();
        };
        assert_eq!(reply, echoed(&message(number)), "reply to message {number}");
    }
    assert!(child.wait().unwrap(), "the child saw a wrong message");
    assert!(wakes > 0, "the child never slept");
}

#[test]
fn calls_cross_between_processes_intact() {
    let mut channel = CallChannel::new(8).unwrap();
    let (mut client, mut server) = channel.split();
    // SAFETY: the child only takes requests, compares them and replies —
    // atomics, copies and futex calls; it allocates nothing and takes no locks.
    let child = unsafe {
        fork_peer(move || {
            for number in 0..MESSAGES {
                // No polling at all: the server sleeps whenever no call waits.
                let request = server.recv(0);
                if request.payload() != &message(number) {
                    return false;
                }
                let reply = echoed(request.payload());
                let _ = server.reply(request, &reply);
            }
            true
        })
    }
    .unwrap();

    let deadline = Instant::now() + DEADLINE;
    let mut wakes = 0;
    for number in 0..MESSAGES {
        wakes += u64::from(client.call(&message(number)).unwrap() == Wake::Needed);
        let reply = loop {
            if let Some(reply) = client.poll_reply() {
                break reply;
            }
            assert!(Instant::now() < deadline, "no reply to call {number}");
            std::hint::spin_loop();
        };
        assert_eq!(reply, echoed(&message(number)), "reply to call {number}");
    }
    assert!(child.wait().unwrap(), "the child saw a wrong request");
    assert!(wakes > 0, "the child never slept");
}
