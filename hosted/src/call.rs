//! A URPC call channel in a shared mapping, with a futex wake path for
//! each side.
//!
//! Layout, in cache lines: the call header's two lines (the server's and
//! the client's sleep announcements), the server's doorbell, the client's
//! doorbell, then the slots. Each slot is written by both sides in turn
//! (request, then reply in place); each doorbell only by the side that wakes
//! the other.

use std::io;

use atoll_urpc::{CallHeader, Full, Payload, Request, Wake};

use crate::futex::Doorbell;
use crate::shared_memory::ChannelMemory;

/// What precedes the slots.
#[repr(C)]
#[derive(Debug, Default)]
struct Control {
    header: CallHeader,
    /// Rung by the client for a server asleep waiting for requests.
    server_doorbell: Doorbell,
    /// Rung by the server for a client asleep waiting for a reply.
    client_doorbell: Doorbell,
}

/// One call channel's memory: a shared mapping, so that a child forked
/// after [`split`](CallChannel::split) can use one end while this process
/// uses the other.
#[derive(Debug)]
pub struct CallChannel {
    memory: ChannelMemory<Control>,
}

impl CallChannel {
    /// A call channel of `depth` slots (calls outstanding at most).
    pub fn new(depth: usize) -> io::Result<CallChannel> {
        Ok(CallChannel {
            memory: ChannelMemory::new(depth, "call channel")?,
        })
    }

    /// Resets the channel and returns its two ends.
    pub fn split(&mut self) -> (FutexCallClient<'_>, FutexCallServer<'_>) {
        let (
            Control {
                header,
                server_doorbell,
                client_doorbell,
            },
            slots,
        ) = self.memory.parts();
        let (server_doorbell, client_doorbell) = (&*server_doorbell, &*client_doorbell);
        let (client, server) = atoll_urpc::call_channel(header, slots);
        (
            FutexCallClient {
                channel: client,
                server_doorbell,
                client_doorbell,
            },
            FutexCallServer {
                channel: server,
                server_doorbell,
                client_doorbell,
            },
        )
    }
}

/// The calling end, which wakes a server that sleeps and can sleep itself
/// while it waits for a reply.
#[derive(Debug)]
pub struct FutexCallClient<'m> {
    channel: atoll_urpc::CallClient<'m>,
    server_doorbell: &'m Doorbell,
    client_doorbell: &'m Doorbell,
}

impl FutexCallClient<'_> {
    /// Writes a request without the sleep handshake: for a batch that ends
    /// with [`flush`](Self::flush), or for a server that never sleeps.
    #[inline]
    pub fn try_call(&mut self, request: &Payload) -> Result<(), Full> {
        self.channel.try_call(request)
    }

    /// The sleep handshake for every call made so far: wakes the server if
    /// it announced that it sleeps. Returns whether it did.
    #[inline]
    pub fn flush(&self) -> Wake {
        self.server_doorbell.ring_if_needed(self.channel.flush())
    }

    /// Makes a call and flushes; [`Full`] while every slot holds an
    /// outstanding call (take a reply first).
    #[inline]
    pub fn call(&mut self, request: &Payload) -> Result<Wake, Full> {
        self.channel.try_call(request)?;
        Ok(self.flush())
    }

    /// The reply to the oldest outstanding call, if it has come.
    #[inline]
    pub fn poll_reply(&mut self) -> Option<Payload> {
        self.channel.poll_reply()
    }

    /// Polls until the reply to the oldest outstanding call comes, never
    /// sleeping: the server need not flush for this client.
    ///
    /// # Panics
    /// If no call is outstanding: no reply would ever come.
    #[inline]
    pub fn wait_reply_polling(&mut self) -> Payload {
        assert!(self.channel.outstanding() > 0, "no call awaits a reply");
        loop {
            if let Some(reply) = self.channel.poll_reply() {
                return reply;
            }
            std::hint::spin_loop();
        }
    }

    /// Polls up to `spins` times, then sleeps until the server's flush
    /// wakes it, and so on until the reply to the oldest outstanding call
    /// comes.
    ///
    /// # Panics
    /// If no call is outstanding: no reply would ever come.
    pub fn wait_reply(&mut self, spins: u32) -> Payload {
        assert!(self.channel.outstanding() > 0, "no call awaits a reply");
        self.client_doorbell.wait_for(
            &mut self.channel,
            spins,
            atoll_urpc::CallClient::poll_reply,
            atoll_urpc::CallClient::prepare_to_sleep,
            atoll_urpc::CallClient::woken,
        )
    }
}

/// The answering end, which can sleep on its futex while no request comes,
/// and wakes a client that sleeps waiting for a reply.
#[derive(Debug)]
pub struct FutexCallServer<'m> {
    channel: atoll_urpc::CallServer<'m>,
    server_doorbell: &'m Doorbell,
    client_doorbell: &'m Doorbell,
}

impl<'m> FutexCallServer<'m> {
    #[inline]
    pub fn try_recv(&mut self) -> Option<Request<'m>> {
        self.channel.try_recv()
    }

    /// Polls until a request arrives, never sleeping: the client need not
    /// flush for this server.
    #[inline]
    pub fn recv_polling(&mut self) -> Request<'m> {
        loop {
            if let Some(request) = self.channel.try_recv() {
                return request;
            }
            std::hint::spin_loop();
        }
    }

    /// Polls up to `spins` times, then sleeps until a client's flush wakes
    /// it, and so on until a request arrives.
    pub fn recv(&mut self, spins: u32) -> Request<'m> {
        self.server_doorbell.wait_for(
            &mut self.channel,
            spins,
            atoll_urpc::CallServer::try_recv,
            atoll_urpc::CallServer::prepare_to_sleep,
            atoll_urpc::CallServer::woken,
        )
    }

    /// Answers without the sleep handshake: for a batch of replies that
    /// ends with [`flush`](Self::flush), or for a client that never sleeps.
    #[inline]
    pub fn reply_unflushed(&self, request: Request<'m>, reply: &Payload) {
        self.channel.reply_unflushed(request, reply);
    }

    /// The sleep handshake for every reply written so far: wakes the client
    /// if it announced that it sleeps. Returns whether it did.
    #[inline]
    pub fn flush(&self) -> Wake {
        self.client_doorbell.ring_if_needed(self.channel.flush())
    }

    /// Answers `request` and flushes.
    #[inline]
    pub fn reply(&self, request: Request<'m>, reply: &Payload) -> Wake {
        self.channel.reply_unflushed(request, reply);
        self.flush()
    }
}
