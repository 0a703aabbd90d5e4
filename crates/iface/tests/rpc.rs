//! A client and a server over two real URPC rings, in one thread: calls are
//! futures that the replies, fed in later, complete.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use atoll_iface::ping::{Echo, EchoReply, Hello, Ping, Put, PutAck};
use atoll_iface::{
    Bytes, Call, CallError, Client, DecodeError, Envelope, Handle, Message, Rejected, Server,
    Transport,
};
use atoll_urpc::{Full, Payload, Receiver, RingHeader, Sender, Slot, channel};

/// Counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl CountingWaker {
    fn wakes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Polls `call` once with `waker`.
fn poll<R: Message>(call: &mut Call<R>, waker: &Arc<CountingWaker>) -> Poll<Result<R, CallError>> {
    let waker = Waker::from(Arc::clone(waker));
    pin!(call).poll(&mut Context::from_waker(&waker))
}

/// The memory of one ring.
struct Ring {
    header: RingHeader,
    slots: Vec<Slot>,
}

impl Ring {
    fn new(slots: usize) -> Self {
        Self {
            header: RingHeader::new(),
            slots: (0..slots).map(|_| Slot::new()).collect(),
        }
    }

    fn channel(&mut self) -> (Sender<'_>, Receiver<'_>) {
        channel(&mut self.header, &mut self.slots)
    }
}

/// A transport that keeps what is sent, for tests that need no ring.
#[derive(Default)]
struct Sent(Vec<Payload>);

impl Transport for Sent {
    fn try_send(&mut self, payload: &Payload) -> Result<(), Full> {
        self.0.push(*payload);
        Ok(())
    }
}

fn call_id(payload: &Payload) -> u32 {
    u32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]])
}

/// Answers at once: echoes values, acknowledges puts, counts hellos.
#[derive(Default)]
struct PingHandler {
    hellos: Vec<u32>,
}

impl Handle<Hello> for PingHandler {
    fn handle(&mut self, hello: Hello) {
        self.hellos.push(hello.from_core);
    }
}

impl Handle<Echo> for PingHandler {
    fn handle(&mut self, echo: Echo) -> EchoReply {
        EchoReply { value: echo.value }
    }
}

impl Handle<Put> for PingHandler {
    fn handle(&mut self, put: Put) -> PutAck {
        PutAck {
            id: put.id
                + u32::from(
                    put.data
                        .as_slice()
                        .iter()
                        .map(|&byte| u16::from(byte))
                        .sum::<u16>(),
                ),
        }
    }
}

fn echo(value: u64) -> Echo {
    Echo {
        value,
        pad: [0x5a; 40],
    }
}

fn put(id: u32, length: usize) -> Put {
    Put {
        id,
        data: Bytes::new(&vec![1; length]).expect("fits"),
    }
}

#[test]
fn outstanding_calls_answered_out_of_order_each_get_their_own_reply() {
    let (mut requests, mut replies) = (Ring::new(16), Ring::new(16));
    let (request_sender, mut request_receiver) = requests.channel();
    let (reply_sender, mut reply_receiver) = replies.channel();
    let mut client = Client::<Ping, _>::new(request_sender);
    let mut server = Server::<Ping, _>::new(reply_sender);
    let waker = Arc::new(CountingWaker::default());

    let mut echoes: Vec<_> = (0..3).map(|value| client.call(echo(value))).collect();
    let mut long_put = client.call(put(1000, 200));
    for call in &mut echoes {
        assert!(poll(call, &waker).is_pending());
    }
    assert!(poll(&mut long_put, &waker).is_pending());
    assert_eq!(client.waiting_calls(), 4);

    let mut received = Vec::new();
    while let Some(payload) = request_receiver.try_recv() {
        received.extend(server.receive(&payload).expect("well formed"));
    }
    assert_eq!(received.len(), 4);
    // The server answers the last request first, and the echoes with
    // values of their own, so that a mix-up would show.
    for Envelope { call, message } in received.into_iter().rev() {
        match message {
            Ping::Echo(echo) => server.reply(
                call,
                EchoReply {
                    value: echo.value + 100,
                },
            ),
            Ping::Put(put) => server.reply(call, PutAck { id: put.id + 1 }),
            other => panic!("not a request: {other:?}"),
        }
    }

    while let Some(payload) = reply_receiver.try_recv() {
        assert_eq!(client.deliver(&payload), Ok(None));
    }
    assert_eq!(waker.wakes(), 4);
    assert_eq!(client.waiting_calls(), 0);
    assert_eq!(
        poll(&mut long_put, &waker),
        Poll::Ready(Ok(PutAck { id: 1001 }))
    );
    for (value, call) in (0..).zip(&mut echoes) {
        assert_eq!(
            poll(call, &waker),
            Poll::Ready(Ok(EchoReply { value: value + 100 }))
        );
    }
}

#[test]
fn a_full_ring_queues_slots_in_order_until_poll_send() {
    let (mut requests, mut replies) = (Ring::new(2), Ring::new(2));
    let (request_sender, mut request_receiver) = requests.channel();
    let (reply_sender, mut reply_receiver) = replies.channel();
    let mut client = Client::<Ping, _>::new(request_sender);
    let mut server = Server::<Ping, _>::new(reply_sender);
    let mut handler = PingHandler::default();
    let waker = Arc::new(CountingWaker::default());

    client.outbox().send(Hello { from_core: 3 });
    let mut put = client.call(put(7, 200));
    let mut echo = client.call(echo(42));
    // One hello slot, five put slots and one echo slot; two fit in the ring.
    assert_eq!(client.outbox().queued(), 5);

    while client.outbox().poll_send() > 0 || request_receiver.has_message() {
        while let Some(payload) = request_receiver.try_recv() {
            assert_eq!(server.serve(&payload, &mut handler), Ok(None));
        }
        while server.outbox().poll_send() > 0 || reply_receiver.has_message() {
            while let Some(payload) = reply_receiver.try_recv() {
                assert_eq!(client.deliver(&payload), Ok(None));
            }
        }
    }
    assert_eq!(handler.hellos, [3]);
    assert_eq!(
        poll(&mut put, &waker),
        Poll::Ready(Ok(PutAck { id: 7 + 200 }))
    );
    assert_eq!(
        poll(&mut echo, &waker),
        Poll::Ready(Ok(EchoReply { value: 42 }))
    );
}

#[test]
fn one_way_messages_from_the_server_come_back_from_deliver() {
    let mut ring = Ring::new(4);
    let (sender, mut receiver) = ring.channel();
    let mut server = Server::<Ping, _>::new(sender);
    let mut client = Client::<Ping, _>::new(Sent::default());
    server.outbox().send(Hello { from_core: 1 });
    let payload = receiver.try_recv().expect("sent");
    assert_eq!(
        client.deliver(&payload),
        Ok(Some(Envelope {
            call: 0,
            message: Hello { from_core: 1 }.into()
        }))
    );
}

#[test]
fn a_reply_of_the_wrong_kind_or_rejected_fails_its_call() {
    let mut ring = Ring::new(8);
    let (sender, mut receiver) = ring.channel();
    let mut server = Server::<Ping, _>::new(sender);
    let mut client = Client::<Ping, _>::new(Sent::default());
    let waker = Arc::new(CountingWaker::default());
    let mut wrong = client.call(echo(1));
    let mut broken = client.call(echo(2));
    let [wrong_id, broken_id] = [0, 1].map(|index| call_id(&client.outbox().transport().0[index]));

    server.reply(wrong_id, PutAck { id: 0 });
    server.reply(broken_id, EchoReply { value: 2 });
    let wrong_reply = receiver.try_recv().unwrap();
    let mut broken_reply = receiver.try_recv().unwrap();
    broken_reply[0] = 99;

    assert_eq!(client.deliver(&wrong_reply), Ok(None));
    let rejected = Rejected {
        call: broken_id,
        error: DecodeError::UnknownKind(99),
    };
    assert_eq!(client.deliver(&broken_reply), Err(rejected));
    assert_eq!(
        poll(&mut wrong, &waker),
        Poll::Ready(Err(CallError::WrongReply { kind: PutAck::KIND }))
    );
    assert_eq!(
        poll(&mut broken, &waker),
        Poll::Ready(Err(CallError::Rejected(DecodeError::UnknownKind(99))))
    );
}

#[test]
fn abandoned_calls_complete_with_an_error() {
    let mut client = Client::<Ping, _>::new(Sent::default());
    let waker = Arc::new(CountingWaker::default());
    let mut call = client.call(echo(1));
    assert!(poll(&mut call, &waker).is_pending());
    client.abandon_calls();
    assert_eq!(waker.wakes(), 1);
    assert_eq!(
        poll(&mut call, &waker),
        Poll::Ready(Err(CallError::Abandoned))
    );
}
