//! The `process` service: other cores' requests about this core's
//! processes (run, spawn, kill, list), handed to the host, which keeps the
//! processes, and the host's answers sent back; and the replicated address
//! spaces of the processes (`spaces`).
//!
//! The monitor keeps no process: it asks its host
//! (`Deferred::Process` with a token), and the host answers with
//! `Monitor::process_answer` and the token, at once (spawn, kill, list) or
//! when the process ends (run). An answer the host gives for a token the
//! service does not wait on (a kernel that asked has since stopped, say)
//! is dropped.

pub(crate) mod messages;
pub(crate) mod spaces;

use alloc::collections::BTreeMap;
use alloc::string::String;

use atoll_proto::CoreId;

pub use self::messages::*;
use self::spaces::Spaces;
pub use self::spaces::{PageChange, SpaceError};
use crate::base::{Cx, Requester, Service};
use crate::calls::{OpEvent, OpRef};
use crate::output::Deferred;
use crate::wire::Wire;

pub(crate) struct Process {
    /// The requests the host has yet to answer, by token.
    pending: BTreeMap<u32, Requester>,
    next_token: u32,
    /// The address spaces of processes this core runs.
    pub(crate) spaces: Spaces,
}

impl Process {
    pub fn new() -> Self {
        Self {
            pending: BTreeMap::new(),
            next_token: 0,
            spaces: Spaces::default(),
        }
    }

    /// The host answers the request of `token`.
    pub fn answer(&mut self, cx: &mut Cx<'_>, token: u32, answer: Wire) {
        if let Some(requester) = self.pending.remove(&token) {
            cx.reply(requester, answer);
        }
    }
}

/// Text of at most `max` bytes, as the host takes it (invalid UTF-8 was
/// refused by the sender's `Bytes` checks only for length).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Service for Process {
    type Message = ProcessMessage;

    fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, call: u32, message: ProcessMessage) {
        let request = match message {
            ProcessMessage::RunProgram(RunProgram { cores, name, args }) => ProcessRequest::Run {
                cores: cores.0,
                name: text(name.as_slice()),
                args: text(args.as_slice()),
            },
            ProcessMessage::SpawnProgram(SpawnProgram { cores, name, args }) => {
                ProcessRequest::Spawn {
                    cores: cores.0,
                    name: text(name.as_slice()),
                    args: text(args.as_slice()),
                }
            }
            ProcessMessage::JoinProcess(JoinProcess {
                pid,
                index,
                cores,
                entry,
                name,
                args,
            }) => ProcessRequest::Join {
                home: from,
                pid,
                index,
                cores: cores.0,
                entry,
                name: text(name.as_slice()),
                args: text(args.as_slice()),
            },
            ProcessMessage::ProcessPages(ProcessPages { pid, pages }) => {
                let Some(pages) = unpack_pages(pages.as_slice()) else {
                    return cx.notice(alloc::format!(
                        "pages of process {pid} from core {} are not whole entries; dropped",
                        from.0
                    ));
                };
                return cx.defer(Deferred::ProcessNote(ProcessNote::Pages { pid, pages }));
            }
            ProcessMessage::StartProcess(StartProcess { pid }) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::Start { pid }));
            }
            ProcessMessage::EndDispatcher(EndDispatcher { pid }) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::End { pid }));
            }
            ProcessMessage::DispatcherEnded(message) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::Ended {
                    from,
                    index: message.index,
                    ended: message.ended(),
                }));
            }
            ProcessMessage::ProcessGone(ProcessGone { pid }) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::ProcessGone { pid }));
            }
            ProcessMessage::ChannelConnect(ChannelConnect { pid, address, by }) => {
                ProcessRequest::Connect {
                    from,
                    pid,
                    address,
                    by,
                }
            }
            ProcessMessage::SpawnChild(SpawnChild {
                parent,
                name,
                args,
                handed,
            }) => ProcessRequest::SpawnChild {
                from,
                parent,
                name: text(name.as_slice()),
                args: text(args.as_slice()),
                handed: handed.as_slice().to_vec(),
            },
            ProcessMessage::CapGranted(CapGranted { pid, cap }) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::Granted {
                    pid,
                    cap: cap.as_slice().to_vec(),
                }));
            }
            ProcessMessage::RevokeCaps(RevokeCaps { id }) => ProcessRequest::Revoke { id },
            ProcessMessage::FreezeSpace(FreezeSpace { pid }) => ProcessRequest::Freeze { pid },
            ProcessMessage::SpaceGrown(SpaceGrown { pid, cores }) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::Grown {
                    pid,
                    cores: cores.0,
                }));
            }
            ProcessMessage::ChildEnded(message) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::ChildEnded {
                    parent: message.parent,
                    ended: message.ended(),
                }));
            }
            ProcessMessage::ChannelGone(ChannelGone { pid, address }) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::Gone {
                    from,
                    pid,
                    address,
                }));
            }
            ProcessMessage::ChannelNotify(ChannelNotify { pid }) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::Notify { pid }));
            }
            ProcessMessage::ChannelClosed(ChannelClosed { pid, address, used }) => {
                return cx.defer(Deferred::ProcessNote(ProcessNote::Closed {
                    pid,
                    address,
                    used: used != 0,
                }));
            }
            ProcessMessage::KillProcess(KillProcess { pid }) => ProcessRequest::Kill { pid },
            ProcessMessage::ListProcesses(ListProcesses {}) => ProcessRequest::List,
            ProcessMessage::ReplicateSpace(ReplicateSpace { pid, message }) => {
                return self.spaces.receive(cx, from, pid, message);
            }
            // Replies come back through the calls table, never here.
            ProcessMessage::ProgramEnded(_)
            | ProcessMessage::Spawned(_)
            | ProcessMessage::Killed(_)
            | ProcessMessage::Processes(_)
            | ProcessMessage::Joined(_)
            | ProcessMessage::ChannelFrame(_)
            | ProcessMessage::ChildSpawned(_)
            | ProcessMessage::CapsRevoked(_)
            | ProcessMessage::SpaceFrozen(_) => return,
        };
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        self.pending.insert(token, cx.requester(from, call));
        cx.defer(Deferred::Process { token, request });
    }

    fn event(&mut self, _cx: &mut Cx<'_>, _op: OpRef, _event: OpEvent) {}

    fn tick(&mut self, cx: &mut Cx<'_>) {
        self.spaces.tick(cx);
    }
}
