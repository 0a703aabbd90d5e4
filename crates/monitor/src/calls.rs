//! The calls this monitor made and waits on, keyed by call id.
//!
//! Every request leaves under a fresh call id, and its reply must come back
//! under the same id, from the core it was sent to, and of the kind the
//! request declares. A reply that matches no call in flight (its call
//! timed out or was answered already, or no such call was ever made) is
//! dropped and counted, never taken for the answer to another call.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use atoll_proto::CoreId;
use atoll_replica::Completion;

use crate::wire::{ServiceId, Wire};

/// Names an operation of a service, for the host to return a measurement
/// to. Opaque outside the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpRef {
    pub(crate) service: ServiceId,
    pub(crate) key: u32,
}

/// What reaches an operation of a service after it started.
#[derive(Debug)]
pub(crate) enum OpEvent {
    /// The reply to one of its calls, or the call's failure.
    Reply(Result<Wire, CallError>),
    /// A mapping request it submitted completed.
    Mapping(Completion),
    /// A measurement it asked the host for.
    Measured(Option<u64>),
}

/// Something for a service's operation `op`, queued until the step's
/// input is handled.
pub(crate) struct Event {
    pub(crate) op: OpRef,
    pub(crate) event: OpEvent,
}

/// A local requester's handle on a call it made: its completion comes with
/// the same ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub(crate) u32);

/// Why a call ended without its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallError {
    /// The core was not running when the call was made.
    NotRunning { core: CoreId },
    /// No reply came within the call's timeout.
    NoAnswer { core: CoreId, ticks: u64 },
    /// The core stopped while the call waited.
    Down { core: CoreId },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CallError::NotRunning { core } => write!(f, "core {} is not running", core.0),
            CallError::NoAnswer { core, ticks } => {
                write!(f, "core {} did not answer within {ticks} ticks", core.0)
            }
            CallError::Down { core } => write!(f, "core {} stopped before it answered", core.0),
        }
    }
}

/// Who a call's reply goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Code on this core outside the monitor (the shell), with its ticket.
    Local(Ticket),
    /// An operation of one of this monitor's services.
    Op(OpRef),
}

/// A call in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub to: CoreId,
    pub owner: Owner,
    /// The link kind of the reply the request declares.
    pub reply_kind: u8,
    /// The request's name, for the trace and reports.
    pub name: &'static str,
    pub issued: u64,
    /// The tick at which the call fails with `NoAnswer`.
    pub deadline: u64,
}

/// Why a reply was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stray {
    /// Its call was made and has ended: it timed out, its core was declared
    /// down, or it was answered already (a duplicate).
    Late,
    /// No call with its id was ever made here.
    Unknown,
    /// Its call waits on another core.
    WrongSender { expected: CoreId },
    /// It is not of the kind its call's request declares.
    WrongKind,
}

/// Counts of the replies and slots dropped on arrival.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Strays {
    /// Replies to calls that had ended: timed out, failed, or answered.
    pub late: u64,
    /// Replies under call ids never issued here.
    pub unknown: u64,
    /// Replies from the wrong core, or of the wrong kind, for a call in
    /// flight (the call keeps waiting for its real reply).
    pub mismatched: u64,
    /// Slots that did not make a message (`atoll_iface::DecodeError`), and
    /// requests or one-way messages under the wrong kind of call id.
    pub malformed: u64,
    /// Services' messages sent in an epoch older than this core's view.
    pub old_epoch: u64,
    /// Services' messages, in this core's epoch, from a core outside its
    /// view.
    pub non_member: u64,
    /// Services' messages sent in a newer epoch, dropped because too many
    /// waited for this core to install it.
    pub overflow: u64,
    /// Services' messages this core did not send: they were for a core
    /// outside its view.
    pub unsent: u64,
}

impl Strays {
    pub(crate) fn count(&mut self, stray: Stray) {
        match stray {
            Stray::Late => self.late += 1,
            Stray::Unknown => self.unknown += 1,
            Stray::WrongSender { .. } | Stray::WrongKind => self.mismatched += 1,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Calls {
    /// The id the next call takes; ids start at 1 (0 marks one-way
    /// messages) and only grow, so an id below it was issued.
    next: u32,
    /// Whether ids have wrapped past `u32::MAX`; from then on, an id not in
    /// flight counts as late whatever its value.
    wrapped: bool,
    pending: BTreeMap<u32, Pending>,
}

impl Calls {
    pub fn new() -> Self {
        Self {
            next: 1,
            wrapped: false,
            pending: BTreeMap::new(),
        }
    }

    /// Records a call in flight; returns its id.
    pub fn issue(&mut self, pending: Pending) -> u32 {
        let call = self.next;
        self.next = match self.next.checked_add(1) {
            Some(next) => next,
            None => {
                self.wrapped = true;
                1
            }
        };
        self.pending.insert(call, pending);
        call
    }

    /// Ends call `call` with a reply of link kind `kind` from `from`, or
    /// says why the reply is not its.
    pub fn answer(&mut self, from: CoreId, call: u32, kind: u8) -> Result<Pending, Stray> {
        let Some(pending) = self.pending.get(&call) else {
            return Err(if call != 0 && (call < self.next || self.wrapped) {
                Stray::Late
            } else {
                Stray::Unknown
            });
        };
        if pending.to != from {
            return Err(Stray::WrongSender {
                expected: pending.to,
            });
        }
        if pending.reply_kind != kind {
            return Err(Stray::WrongKind);
        }
        Ok(self.pending.remove(&call).expect("looked up above"))
    }

    /// Ends and returns the calls whose deadline is `tick` or earlier.
    pub fn expire(&mut self, tick: u64) -> Vec<(u32, Pending)> {
        self.take_where(|pending| pending.deadline <= tick)
    }

    /// Ends and returns the calls waiting on `core`.
    pub fn waiting_on(&mut self, core: CoreId) -> Vec<(u32, Pending)> {
        self.take_where(|pending| pending.to == core)
    }

    fn take_where(&mut self, mut ended: impl FnMut(&Pending) -> bool) -> Vec<(u32, Pending)> {
        let ids: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, pending)| ended(pending))
            .map(|(&call, _)| call)
            .collect();
        ids.into_iter()
            .map(|call| (call, self.pending.remove(&call).expect("listed above")))
            .collect()
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServiceId;

    fn pending(to: u16, deadline: u64) -> Pending {
        Pending {
            to: CoreId(to),
            owner: Owner::Op(OpRef {
                service: ServiceId::Control,
                key: 1,
            }),
            reply_kind: 7,
            name: "Ping",
            issued: 0,
            deadline,
        }
    }

    #[test]
    fn a_reply_ends_its_call_once() {
        let mut calls = Calls::new();
        let call = calls.issue(pending(2, 10));
        assert_eq!(call, 1);
        assert!(calls.answer(CoreId(2), call, 7).is_ok());
        assert_eq!(calls.answer(CoreId(2), call, 7).unwrap_err(), Stray::Late);
        assert_eq!(calls.answer(CoreId(2), 99, 7).unwrap_err(), Stray::Unknown);
        assert_eq!(calls.answer(CoreId(2), 0, 7).unwrap_err(), Stray::Unknown);
    }

    #[test]
    fn a_reply_from_another_core_or_of_another_kind_leaves_the_call_waiting() {
        let mut calls = Calls::new();
        let call = calls.issue(pending(2, 10));
        assert_eq!(
            calls.answer(CoreId(3), call, 7).unwrap_err(),
            Stray::WrongSender {
                expected: CoreId(2)
            }
        );
        assert_eq!(
            calls.answer(CoreId(2), call, 8).unwrap_err(),
            Stray::WrongKind
        );
        assert_eq!(calls.in_flight(), 1);
        assert!(calls.answer(CoreId(2), call, 7).is_ok());
    }

    #[test]
    fn a_reply_after_the_timeout_is_late() {
        let mut calls = Calls::new();
        let early = calls.issue(pending(1, 5));
        let later = calls.issue(pending(1, 9));
        let expired: Vec<u32> = calls.expire(5).into_iter().map(|(call, _)| call).collect();
        assert_eq!(expired, [early]);
        assert_eq!(calls.answer(CoreId(1), early, 7).unwrap_err(), Stray::Late);
        assert!(calls.answer(CoreId(1), later, 7).is_ok());
    }

    #[test]
    fn calls_to_a_core_that_stops_end_together() {
        let mut calls = Calls::new();
        calls.issue(pending(1, 5));
        calls.issue(pending(2, 5));
        calls.issue(pending(1, 5));
        assert_eq!(calls.waiting_on(CoreId(1)).len(), 2);
        assert_eq!(calls.in_flight(), 1);
    }

    #[test]
    fn ids_skip_zero_when_they_wrap_and_then_count_strays_late() {
        let mut calls = Calls::new();
        calls.next = u32::MAX;
        assert_eq!(calls.issue(pending(1, 5)), u32::MAX);
        assert_eq!(calls.issue(pending(1, 5)), 1);
        assert_eq!(calls.answer(CoreId(1), 77, 7).unwrap_err(), Stray::Late);
    }
}
