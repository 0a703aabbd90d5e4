//! The futex wake path: a receiver that sleeps is woken by the next send, a
//! call server by the next call and a client by its reply, and no wake-up
//! is lost when sleeping and sending race, round after round.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use atoll_hosted::{CallChannel, Ring};
use atoll_urpc::{PAYLOAD_SIZE, Payload, Wake};

/// Long enough for any healthy run; a lost wake-up shows as this timeout
/// instead of a test that hangs.
const DEADLINE: Duration = Duration::from_secs(60);

fn message(round: u64) -> Payload {
    let mut payload = [0; PAYLOAD_SIZE];
    payload[..8].copy_from_slice(&round.to_le_bytes());
    payload[PAYLOAD_SIZE - 1] = round as u8;
    payload
}

/// A ring that lives for the rest of the test process, so that its ends can
/// go to plain threads which a failed test may leave blocked.
fn leaked_ring(depth: usize) -> &'static mut Ring {
    Box::leak(Box::new(Ring::new(depth).unwrap()))
}

#[test]
fn a_sleeping_receiver_is_woken_by_a_send() {
    let (mut sender, mut receiver) = leaked_ring(4).split();
    let (done, finished) = mpsc::channel();
    thread::spawn(move || done.send(receiver.recv(0)).unwrap());
    // Time for the receiver to find the ring empty and go to sleep.
    thread::sleep(Duration::from_millis(100));
    assert_eq!(sender.send(&message(7)), Wake::Needed);
    assert_eq!(
        finished
            .recv_timeout(DEADLINE)
            .expect("the receiver was not woken"),
        message(7)
    );
}

/// Two threads bounce a message back and forth; each receiver polls only a
/// few times (sometimes not at all) before sleeping, so sends race with
/// receivers going to sleep in every interleaving the machine produces.
#[test]
fn no_wake_up_is_lost_over_many_rounds() {
    const ROUNDS: u64 = 20_000;
    let spins = |round: u64| [0, 0, 1, 3, 10, 50][(round % 6) as usize];
    let (mut ping_sender, mut ping_receiver) = leaked_ring(2).split();
    let (mut pong_sender, mut pong_receiver) = leaked_ring(2).split();
    let (done, finished) = mpsc::channel();
    let echo = thread::spawn(move || {
        let mut wakes = 0;
        for round in 0..ROUNDS {
            let payload = ping_receiver.recv(spins(round));
            assert_eq!(payload, message(round));
            wakes += u64::from(pong_sender.send(&payload) == Wake::Needed);
        }
        wakes
    });
    thread::spawn(move || {
        let mut wakes = 0;
        for round in 0..ROUNDS {
            wakes += u64::from(ping_sender.send(&message(round)) == Wake::Needed);
            assert_eq!(pong_receiver.recv(spins(round + 3)), message(round));
        }
        done.send(wakes).unwrap();
    });
    let initiator_wakes = finished.recv_timeout(DEADLINE).expect("a wake-up was lost");
    let echo_wakes = echo.join().unwrap();
    // Otherwise the test would not have exercised the sleep path at all.
    assert!(
        initiator_wakes > 0 && echo_wakes > 0,
        "wakes: {initiator_wakes} and {echo_wakes}"
    );
}

/// A call channel that lives for the rest of the test process, as
/// [`leaked_ring`]'s ring does.
fn leaked_call_channel(depth: usize) -> &'static mut CallChannel {
    Box::leak(Box::new(CallChannel::new(depth).unwrap()))
}

fn answer(request: &Payload) -> Payload {
    request.map(|byte| !byte)
}

#[test]
fn a_sleeping_server_is_woken_by_a_call() {
    let (mut client, mut server) = leaked_call_channel(2).split();
    thread::spawn(move || {
        let request = server.recv(0);
        let reply = answer(request.payload());
        let _ = server.reply(request, &reply);
    });
    // Time for the server to find no request and go to sleep.
    thread::sleep(Duration::from_millis(100));
    assert_eq!(client.call(&message(7)), Ok(Wake::Needed));
    let (done, finished) = mpsc::channel();
    thread::spawn(move || done.send(client.wait_reply_polling()).unwrap());
    assert_eq!(
        finished
            .recv_timeout(DEADLINE)
            .expect("the server was not woken"),
        answer(&message(7))
    );
}

#[test]
fn a_client_asleep_waiting_for_its_reply_is_woken_by_the_reply() {
    let (mut client, mut server) = leaked_call_channel(2).split();
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = client.call(&message(9)).unwrap();
        done.send(client.wait_reply(0)).unwrap();
    });
    let request = server.recv_polling();
    // Time for the client to find no reply and go to sleep.
    thread::sleep(Duration::from_millis(100));
    let reply = answer(request.payload());
    assert_eq!(server.reply(request, &reply), Wake::Needed);
    assert_eq!(
        finished
            .recv_timeout(DEADLINE)
            .expect("the client was not woken"),
        answer(&message(9))
    );
}

/// Calls one at a time, the server and the client each polling only a few
/// times (sometimes not at all) before sleeping, so that calls and replies
/// race with the other side going to sleep in every interleaving the
/// machine produces.
#[test]
fn no_wake_up_is_lost_over_many_calls() {
    const CALLS: u64 = 20_000;
    let spins = |call: u64| [0, 0, 1, 3, 10, 50][(call % 6) as usize];
    let (mut client, mut server) = leaked_call_channel(2).split();
    let server_thread = thread::spawn(move || {
        let mut wakes = 0;
        for call in 0..CALLS {
            let request = server.recv(spins(call));
            assert_eq!(request.payload(), &message(call));
            let reply = answer(request.payload());
            wakes += u64::from(server.reply(request, &reply) == Wake::Needed);
        }
        wakes
    });
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let mut wakes = 0;
        for call in 0..CALLS {
            wakes += u64::from(client.call(&message(call)).unwrap() == Wake::Needed);
            assert_eq!(client.wait_reply(spins(call + 3)), answer(&message(call)));
        }
        done.send(wakes).unwrap();
    });
    let client_wakes = finished.recv_timeout(DEADLINE).expect("a wake-up was lost");
    let server_wakes = server_thread.join().unwrap();
    // Otherwise the test would not have exercised the sleep path at all.
    assert!(
        client_wakes > 0 && server_wakes > 0,
        "wakes: {client_wakes} and {server_wakes}"
    );
}
