//! Split-phase calls: a client whose calls are futures, completed by replies
//! that the owner of the receive side feeds in, and a server that answers.

use core::cell::RefCell;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use atoll_urpc::{Full, Payload, Sender};

use crate::{DecodeError, Dispatch, Envelope, Interface, Message, Reassembler, Rejected, encode};

/// Where a client or server puts its slot payloads: the sending end of a
/// URPC ring, or a host's wrapper of one.
pub trait Transport {
    /// Sends one payload, or returns [`Full`] and keeps nothing.
    fn try_send(&mut self, payload: &Payload) -> Result<(), Full>;
}

impl Transport for Sender<'_> {
    fn try_send(&mut self, payload: &Payload) -> Result<(), Full> {
        Sender::try_send(self, payload)
    }
}

/// The sending side of a client or server: encodes messages and sends their
/// slots in order through `T`. What does not fit in the ring waits here, in
/// order, until [`poll_send`](Self::poll_send); nothing is dropped. The queue
/// has no bound of its own: [`queued`](Self::queued) tells how far behind
/// the ring it is, for owners that want to hold back.
///
/// Sending does not wake the receiver: after sending, the owner asks the
/// transport whether it must (for a URPC `Sender`, `flush`).
#[derive(Debug)]
pub struct Outbox<I, T> {
    transport: T,
    queue: VecDeque<Payload>,
    interface: PhantomData<fn(I)>,
}

impl<I: Interface, T: Transport> Outbox<I, T> {
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            queue: VecDeque::new(),
            interface: PhantomData,
        }
    }

    /// Sends a one-way message.
    pub fn send<M: Message<Interface = I, Reply = ()>>(&mut self, message: M) {
        self.enqueue(&message.into_interface(), 0);
    }

    fn enqueue(&mut self, message: &I, call: u32) {
        self.queue.extend(encode(message, call));
        self.poll_send();
    }

    /// Sends queued slots until the ring is full; returns how many are
    /// still queued.
    pub fn poll_send(&mut self) -> usize {
        while let Some(payload) = self.queue.front() {
            if self.transport.try_send(payload).is_err() {
                break;
            }
            self.queue.pop_front();
        }
        self.queue.len()
    }

    /// Slots waiting for room in the ring.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }
}

/// Why a call did not complete with its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The reply's slots were rejected.
    Rejected(DecodeError),
    /// The reply is a message of kind `kind`, not the request's reply.
    WrongReply { kind: u8 },
    /// The client's owner gave up on the server
    /// ([`Client::abandon_calls`]).
    Abandoned,
}

impl fmt::Display for CallError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(error) => write!(formatter, "reply rejected: {error}"),
            Self::WrongReply { kind } => write!(
                formatter,
                "reply of kind {kind} does not answer the request"
            ),
            Self::Abandoned => formatter.write_str("call abandoned"),
        }
    }
}

impl core::error::Error for CallError {}

/// The client side of an interface: calls are futures, completed by the
/// replies the owner of the receive ring feeds to [`deliver`](Self::deliver).
///
/// Calls go from client to server; the server may also send one-way
/// messages, which `deliver` hands back. The client is for one core (or
/// thread): its calls share state with it through `Rc`.
#[derive(Debug)]
pub struct Client<I, T> {
    outbox: Outbox<I, T>,
    replies: Reassembler<I>,
    pending: BTreeMap<u32, Rc<RefCell<CallState<I>>>>,
    last_call: u32,
}

impl<I: Interface, T: Transport> Client<I, T> {
    /// A client that sends through `transport`.
    pub fn new(transport: T) -> Self {
        Self {
            outbox: Outbox::new(transport),
            replies: Reassembler::new(1),
            pending: BTreeMap::new(),
            last_call: 0,
        }
    }

    /// Sends `request` under a fresh call id, or queues it if the ring is
    /// full, and returns at once: the future completes when the reply is
    /// delivered.
    pub fn call<R>(&mut self, request: R) -> Call<R::Reply>
    where
        R: Message<Interface = I>,
        R::Reply: Message<Interface = I>,
    {
        let call = self.fresh_call_id();
        let state = Rc::new(RefCell::new(CallState::Waiting(None)));
        self.pending.insert(call, Rc::clone(&state));
        self.outbox.enqueue(&request.into_interface(), call);
        Call {
            state,
            reply: PhantomData,
        }
    }

    /// Ids go up and wrap around; 0 marks one-way messages, and an id still
    /// waiting for its reply is not reused.
    fn fresh_call_id(&mut self) -> u32 {
        loop {
            self.last_call = self.last_call.wrapping_add(1);
            if self.last_call != 0 && !self.pending.contains_key(&self.last_call) {
                return self.last_call;
            }
        }
    }

    /// Takes in one slot from the server. A reply completes its call (and
    /// wakes its waker) and gives `Ok(None)`, as does a fragment of a longer
    /// message. A message that answers no waiting call, such as a one-way
    /// message, comes back as `Ok(Some(_))`. Rejected slots come back as
    /// `Err`, and fail the call they name, if it is waiting.
    pub fn deliver(&mut self, payload: &Payload) -> Result<Option<Envelope<I>>, Rejected> {
        match self.replies.push(payload) {
            Err(rejected) => {
                self.complete(rejected.call, Err(CallError::Rejected(rejected.error)));
                Err(rejected)
            }
            Ok(Some(Envelope { call, message })) if self.pending.contains_key(&call) => {
                self.complete(call, Ok(message));
                Ok(None)
            }
            received => received,
        }
    }

    /// Fails every waiting call with [`CallError::Abandoned`]: for when the
    /// server is gone, so that no caller waits forever.
    pub fn abandon_calls(&mut self) {
        while let Some((_, state)) = self.pending.pop_first() {
            CallState::complete(&state, Err(CallError::Abandoned));
        }
    }

    fn complete(&mut self, call: u32, result: Result<I, CallError>) {
        if let Some(state) = self.pending.remove(&call) {
            CallState::complete(&state, result);
        }
    }

    /// Calls waiting for their replies.
    pub fn waiting_calls(&self) -> usize {
        self.pending.len()
    }

    pub fn outbox(&mut self) -> &mut Outbox<I, T> {
        &mut self.outbox
    }
}

/// What a call and its client share.
#[derive(Debug)]
enum CallState<I> {
    Waiting(Option<Waker>),
    Done(Result<I, CallError>),
    Taken,
}

impl<I> CallState<I> {
    fn complete(state: &RefCell<Self>, result: Result<I, CallError>) {
        let previous = state.replace(Self::Done(result));
        // Woken after the borrow ends, in case the waker polls at once.
        if let Self::Waiting(Some(waker)) = previous {
            waker.wake();
        }
    }
}

/// A call in progress: completes with the reply of type `R`. Like most
/// futures, it panics if polled again after it completed.
#[must_use = "the reply comes only to the call's future"]
#[derive(Debug)]
pub struct Call<R: Message> {
    state: Rc<RefCell<CallState<R::Interface>>>,
    reply: PhantomData<fn() -> R>,
}

impl<R: Message> Future for Call<R> {
    type Output = Result<R, CallError>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.state.borrow_mut();
        match core::mem::replace(&mut *state, CallState::Taken) {
            CallState::Waiting(_) => {
                *state = CallState::Waiting(Some(context.waker().clone()));
                Poll::Pending
            }
            CallState::Done(result) => Poll::Ready(result.and_then(|message| {
                R::from_interface(message)
                    .map_err(|other| CallError::WrongReply { kind: other.kind() })
            })),
            CallState::Taken => panic!("a call polled after it completed"),
        }
    }
}

/// The server side of an interface: takes in requests, and sends replies
/// under the requests' call ids. A request it rejects gets no reply: its
/// caller waits until the client's owner abandons its calls.
#[derive(Debug)]
pub struct Server<I, T> {
    outbox: Outbox<I, T>,
    requests: Reassembler<I>,
}

impl<I: Interface, T: Transport> Server<I, T> {
    /// A server that replies through `transport`.
    pub fn new(transport: T) -> Self {
        Self {
            outbox: Outbox::new(transport),
            requests: Reassembler::new(1),
        }
    }

    /// Takes in one slot from the client and hands a completed request or
    /// one-way message to `handler`, then sends its reply, if any. Gives
    /// `Ok(Some(_))` only for a message no handler takes (a reply).
    pub fn serve<H>(
        &mut self,
        payload: &Payload,
        handler: &mut H,
    ) -> Result<Option<Envelope<I>>, Rejected>
    where
        I: Dispatch<H>,
    {
        let Some(Envelope { call, message }) = self.receive(payload)? else {
            return Ok(None);
        };
        match message.dispatch(handler) {
            Ok(Some(reply)) => {
                self.outbox.enqueue(&reply, call);
                Ok(None)
            }
            Ok(None) => Ok(None),
            Err(message) => Ok(Some(Envelope { call, message })),
        }
    }

    /// Takes in one slot from the client: `Ok(Some(_))` when it completes a
    /// message. For a server that answers later, with [`reply`](Self::reply).
    pub fn receive(&mut self, payload: &Payload) -> Result<Option<Envelope<I>>, Rejected> {
        self.requests.push(payload)
    }

    /// Sends `reply` to the request that came with call id `call`.
    pub fn reply<R: Message<Interface = I>>(&mut self, call: u32, reply: R) {
        self.outbox.enqueue(&reply.into_interface(), call);
    }

    pub fn outbox(&mut self) -> &mut Outbox<I, T> {
        &mut self.outbox
    }
}
