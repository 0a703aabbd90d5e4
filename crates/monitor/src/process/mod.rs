//! The `process` service: runs a program of the boot image on this core
//! when another core (the shell's) asks, one at a time, and answers when
//! it has ended.
//!
//! The monitor runs no program: it asks its host to (`Deferred::RunProgram`
//! with a token), and the host, once out of the step, loads and runs it and
//! says how it ended (`Monitor::program_ended`), which this service turns
//! into the answer. While one program runs, a second request is answered
//! at once as refused (`ENDED_BUSY`).

pub(crate) mod messages;

use alloc::string::String;

use atoll_proto::CoreId;

pub use self::messages::*;
use crate::base::{Cx, Requester, Service};
use crate::calls::{OpEvent, OpRef};
use crate::output::Deferred;

pub(crate) struct Process {
    /// The request whose program runs, and its token.
    running: Option<(Requester, u32)>,
    next_token: u32,
}

impl Process {
    pub fn new() -> Self {
        Self {
            running: None,
            next_token: 0,
        }
    }

    /// The host says how the program of `token` ended.
    pub fn ended(&mut self, cx: &mut Cx<'_>, token: u32, ended: ProgramEnded) {
        if let Some((requester, _)) = self.running.take_if(|(_, running)| *running == token) {
            cx.reply(requester, ended);
        }
    }
}

impl Service for Process {
    type Message = ProcessMessage;

    fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, call: u32, message: ProcessMessage) {
        let requester = cx.requester(from, call);
        match message {
            ProcessMessage::RunProgram(RunProgram { name }) => {
                if self.running.is_some() {
                    return cx.reply(requester, ProgramEnded::only(ENDED_BUSY));
                }
                let token = self.next_token;
                self.next_token = self.next_token.wrapping_add(1);
                self.running = Some((requester, token));
                let name = String::from_utf8_lossy(name.as_slice()).into_owned();
                cx.defer(Deferred::RunProgram { token, name });
            }
            // Replies come back through the calls table, never here.
            ProcessMessage::ProgramEnded(_) => {}
        }
    }

    fn event(&mut self, _cx: &mut Cx<'_>, _op: OpRef, _event: OpEvent) {}
}
