//! The `vm` service: proposals of changes to the test address space's
//! replicated mappings (`crate::mappings`), for any requester, and storms of
//! them, and the replica's reports.
//!
//! How a proposal is agreed and carried out is `crate::mappings`'s; this
//! service takes the requests and answers them.
//!
//! Each core maps pages of the test space to a frame of its own (the
//! host fills it with the core's id), so reading a mapped page through the
//! page tables shows whose mapping it is.

use alloc::collections::BTreeMap;

use atoll_proto::two_phase::AbortReason;
use atoll_proto::{CoreId, Shape};
use atoll_replica::{Completion, Input, Mapping, OpId, Replica, Request, SubmitError};

pub use self::messages::*;
use crate::base::{Cx, Requester, Service};
use crate::calls::{OpEvent, OpRef};
use crate::wire::ServiceId;

pub(crate) mod messages;

/// Present and writable, as x86_64 page-table entries have it.
const PAGE_FLAGS: u64 = 0b11;

/// A storm in progress: proposals one after the other.
struct Storm {
    requester: Requester,
    remaining: u32,
    /// The storm's pages: `pages` of them from `first_page`.
    first_page: u32,
    pages: u32,
    /// Map or unmap by what the replica holds (a storm on this core's own
    /// pages), not at random.
    by_replica: bool,
    /// xorshift32 state.
    random: u32,
    done: VmStormDone,
}

/// The `vm` service: proposals and storms for requesters, and the replica's
/// reports.
pub(crate) struct Vm {
    proposals: BTreeMap<u32, (Requester, u32)>,
    storms: BTreeMap<u32, Storm>,
}

impl Vm {
    pub fn new() -> Self {
        Self {
            proposals: BTreeMap::new(),
            storms: BTreeMap::new(),
        }
    }

    /// Proposes the next change of storm `key`, or answers when there is
    /// none left.
    fn storm_next(&mut self, cx: &mut Cx<'_>, key: u32) {
        let Some(storm) = self.storms.get_mut(&key) else {
            return;
        };
        while storm.remaining > 0 {
            storm.remaining -= 1;
            storm.random ^= storm.random << 13;
            storm.random ^= storm.random >> 17;
            storm.random ^= storm.random << 5;
            let page = storm.first_page + storm.random % storm.pages.max(1);
            let change = if storm.by_replica {
                let mapped = cx
                    .mappings()
                    .0
                    .replica()
                    .lookup(TEST_SPACE, page_address(page))
                    .is_some();
                if mapped { Change::Unmap } else { Change::Map }
            } else if storm.random & (1 << 16) == 0 {
                Change::Map
            } else {
                Change::Unmap
            };
            let op = OpRef {
                service: ServiceId::Vm,
                key,
            };
            match propose(cx, change, page, op) {
                Ok(_) => return,
                Err(_) => storm.done.aborted += 1,
            }
        }
        let storm = self.storms.remove(&key).expect("looked up above");
        cx.reply(storm.requester, storm.done);
    }
}

/// Proposes `change` of `page` of the test space from this core, for `op`.
/// Votes, the commit and an unmap's TLB invalidation travel down the
/// knowledge base's multicast tree (`Planned` with the installed plan).
fn propose(cx: &mut Cx<'_>, change: Change, page: u32, op: OpRef) -> Result<OpId, SubmitError> {
    let (mappings, mut cx) = cx.mappings();
    let vaddr = page_address(page);
    let request = match change {
        Change::Map => Request::Map {
            space: TEST_SPACE,
            vaddr,
            mapping: Mapping {
                paddr: mappings.frame(),
                flags: PAGE_FLAGS,
            },
        },
        Change::Unmap => Request::Unmap {
            space: TEST_SPACE,
            vaddr,
        },
    };
    mappings.submit(&mut cx, request, Shape::Planned, op)
}

impl Service for Vm {
    type Message = VmMessage;

    fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, call: u32, message: VmMessage) {
        let requester = cx.requester(from, call);
        match message {
            VmMessage::Replicate(Replicate { message }) => {
                let (mappings, mut cx) = cx.mappings();
                mappings.input(
                    &mut cx,
                    Input::Message {
                        from,
                        message: message.0,
                    },
                );
            }
            VmMessage::VmPropose(VmPropose { change, page }) => {
                let change = match change {
                    0 => Change::Map,
                    1 => Change::Unmap,
                    _ => return cx.reply(requester, VmDone::not_proposed(page, INVALID_CHANGE)),
                };
                if page >= TEST_SPACE_PAGES {
                    return cx.reply(requester, VmDone::not_proposed(page, INVALID_PAGE));
                }
                let op = cx.new_op(ServiceId::Vm);
                match propose(cx, change, page, op) {
                    Ok(_) => {
                        self.proposals.insert(op.key, (requester, page));
                    }
                    Err(_) => cx.reply(requester, VmDone::not_proposed(page, INVALID_NOT_A_HOLDER)),
                }
            }
            VmMessage::VmStorm(VmStorm {
                operations,
                pages,
                seed,
                own,
            }) => {
                let pages = pages.clamp(1, TEST_SPACE_PAGES);
                let first_page = match own {
                    true => u32::from(cx.me().0).saturating_mul(pages),
                    false => 0,
                };
                if first_page.saturating_add(pages) > TEST_SPACE_PAGES {
                    // Nothing proposed: every operation is refused.
                    let refused = VmStormDone {
                        committed: 0,
                        aborted: operations,
                        timed_out: 0,
                    };
                    return cx.reply(requester, refused);
                }
                let op = cx.new_op(ServiceId::Vm);
                let storm = Storm {
                    requester,
                    remaining: operations,
                    first_page,
                    pages,
                    by_replica: own,
                    // Seeded per core, so that the cores of a storm differ.
                    random: (seed ^ u32::from(cx.me().0 + 1).wrapping_mul(0x9E37_79B9)) | 1,
                    done: VmStormDone {
                        committed: 0,
                        aborted: 0,
                        timed_out: 0,
                    },
                };
                self.storms.insert(op.key, storm);
                self.storm_next(cx, op.key);
            }
            VmMessage::VmHash(VmHash {}) => {
                let mappings = cx.mappings().0;
                let replica = mappings.replica();
                let reply = VmHashReply {
                    hash: replica.hash_with_locks(),
                    mapped: mappings.mapped(),
                    locks: replica.locks(),
                };
                cx.reply(requester, reply);
            }
            VmMessage::VmSpan(VmSpan { first, last }) => {
                let cores = cx.cores();
                let (mappings, _) = cx.mappings();
                let refused = if first > last || last >= cores {
                    SPAN_BAD_RANGE
                } else if !mappings.span(first, last) {
                    SPAN_PAGES_MAPPED
                } else {
                    SPAN_DONE
                };
                cx.reply(requester, VmSpanned { refused });
            }
            // Replies come back through the calls table, never here.
            VmMessage::VmDone(_)
            | VmMessage::VmStormDone(_)
            | VmMessage::VmHashReply(_)
            | VmMessage::VmSpanned(_) => {}
        }
    }

    fn event(&mut self, cx: &mut Cx<'_>, op: OpRef, event: OpEvent) {
        let op = op.key;
        let OpEvent::Mapping(completion) = event else {
            return;
        };
        if let Some((requester, page)) = self.proposals.remove(&op) {
            cx.reply(requester, VmDone::of(page, &completion));
        } else if let Some(storm) = self.storms.get_mut(&op) {
            match completion {
                Completion::Aborted { reason, .. } => {
                    storm.done.aborted += 1;
                    if matches!(reason, AbortReason::Timeout { .. }) {
                        storm.done.timed_out += 1;
                    }
                }
                Completion::Committed { .. } | Completion::ShootdownDone { .. } => {
                    storm.done.committed += 1
                }
            }
            self.storm_next(cx, op);
        }
    }
}
