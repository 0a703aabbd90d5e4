//! The messages of the `vm` service and of the replication protocols, the
//! test address space, and how a proposal's outcome reads.

use alloc::format;
use alloc::string::String;

use atoll_iface::{Field, FieldError};
use atoll_proto::membership::Detector;
use atoll_proto::multicast::RoundMsg;
use atoll_proto::two_phase::{AbortReason, TwoPhaseMsg};
use atoll_replica::{Completion, CoreId, MESSAGE_BYTES, Message, Refusal, SpaceId, Timeouts};

/// The test address space, held by every core until `VmSpan` says
/// otherwise.
pub const TEST_SPACE: SpaceId = SpaceId(1);
/// Where its pages start: the third 512 GiB slot of the lower half.
pub const TEST_SPACE_BASE: u64 = 2 << 39;
/// Pages a request may name.
pub const TEST_SPACE_PAGES: u32 = 4096;
/// Space ids from here on are `bench shootdown`'s: space
/// `SHOOTDOWN_SPACES + n` ([`shootdown_space`]) is held by the boot core
/// and the first `n` cores that are not the boot core.
pub const SHOOTDOWN_SPACES: u32 = 1000;

/// The space `bench shootdown` uses with `targets` cores besides the boot
/// core.
pub fn shootdown_space(targets: u16) -> SpaceId {
    SpaceId(SHOOTDOWN_SPACES + u32::from(targets))
}

/// The cores `bench shootdown` targets besides the boot core when it
/// targets `targets` of the `members`: the first that are not the boot
/// core.
pub(crate) fn shootdown_targets(
    members: &[CoreId],
    boot_core: CoreId,
    targets: u16,
) -> impl Iterator<Item = CoreId> + '_ {
    members
        .iter()
        .copied()
        .filter(move |&core| core != boot_core)
        .take(usize::from(targets))
}
/// The protocols' timeouts, in ticks, from the failure detector's: a vote
/// and a round wait twice as long as the detector takes to suspect a
/// silent core, and a relay as long, so that a proposal is not given up
/// for a silence the detector would still tolerate (under emulation a core
/// may not run for a while). With the default detector, 2, 2 and 1 s; past
/// 64 cores they grow as its periods do (`Detector::for_cores`), and the
/// kernel's `atoll.suspect_ms=` lengthens all of them at boot.
pub(crate) fn timeouts_for(detector: Detector) -> Timeouts {
    let suspect = u32::try_from(detector.suspect_after).unwrap_or(u32::MAX);
    Timeouts {
        vote: suspect.saturating_mul(2),
        round: suspect.saturating_mul(2),
        relay: suspect,
    }
}

/// The page address of page `page` of the test space.
pub fn page_address(page: u32) -> u64 {
    TEST_SPACE_BASE + u64::from(page) * 4096
}

/// A replication protocol message as one field of a [`Replicate`] message.
/// Its own fixed encoding (`atoll_proto::wire`) is the field's bytes, so
/// the message is encoded once, and bytes that are no protocol message are
/// rejected where every other malformed message is: in the link's
/// reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol(pub Message);

impl Field for Protocol {
    type Wire = [u8; MESSAGE_BYTES];

    fn to_wire(&self) -> [u8; MESSAGE_BYTES] {
        self.0.to_bytes()
    }

    fn from_wire(wire: [u8; MESSAGE_BYTES]) -> Result<Self, FieldError> {
        Message::from_bytes(&wire)
            .map(Protocol)
            .ok_or(FieldError::Invalid {
                type_name: "replication protocol message",
            })
    }
}

impl Protocol {
    /// The protocol message's name, for traces.
    pub fn label(&self) -> &'static str {
        match self.0 {
            Message::Agreement(message) => match message {
                TwoPhaseMsg::Prepare { .. } => "Prepare",
                TwoPhaseMsg::Vote { .. } => "Vote",
                TwoPhaseMsg::Abort { .. } => "Abort",
                TwoPhaseMsg::Commit(RoundMsg::Request { .. }) => "Commit",
                TwoPhaseMsg::Commit(RoundMsg::Ack { .. }) => "CommitAck",
                TwoPhaseMsg::Inquire { .. } => "Inquire",
                TwoPhaseMsg::Settled { .. } => "Settled",
            },
            Message::Shootdown(RoundMsg::Request { .. }) => "Shootdown",
            Message::Shootdown(RoundMsg::Ack { .. }) => "ShootdownAck",
        }
    }
}

atoll_iface::interface! {
    /// The messages of the replicated mappings.
    pub interface VmMessage {
        /// A message of the replication protocols (two-phase commit and
        /// multicast rounds) between the holders' replicators.
        Replicate { message: Protocol }
        /// Propose mapping (`change` 0) or unmapping (1) page `page` of the
        /// test space from the receiving core, and report how it ended.
        VmPropose { change: u8, page: u32 } -> VmDone {
            page: u32,
            /// `OUTCOME_*`.
            outcome: u8,
            /// For a commit: holders that applied it, and those that did
            /// not confirm.
            acked: u16,
            unreached: u16,
            /// For a refusal, the core that refused; for a timeout, a core
            /// whose vote did not come.
            core: u16,
            /// For a refusal, `REFUSAL_*`; for `OUTCOME_NOT_PROPOSED`, `INVALID_*`.
            reason: u8,
            /// For a conflict, the proposal holding the page.
            rival_origin: u16,
            rival_seq: u32
        }
        /// Propose `operations` random maps and unmaps of the first
        /// `pages` pages, one after the other, and report. With `own`, of
        /// `pages` pages of this core's own (from its id times `pages`),
        /// each a map if this core's replica does not map the page and an
        /// unmap if it does: no other core proposes for them, so every
        /// proposal should commit.
        VmStorm { operations: u32, pages: u32, seed: u32, own: bool } -> VmStormDone {
            committed: u32,
            aborted: u32,
            /// Of the aborted: for want of a vote in time (the others were
            /// refused, mostly for a page another proposal held).
            timed_out: u32
        }
        /// Report this core's replica of the test space.
        VmHash {} -> VmHashReply {
            /// `Replica::hash_with_locks`.
            hash: u64,
            mapped: u32,
            /// Pages locked by a pending change.
            locks: u32
        }
        /// Cores `first` to `last` hold the test space from now on (sent
        /// while no core has anything mapped in it).
        VmSpan { first: u16, last: u16 } -> VmSpanned { refused: u8 }
    }
}

impl VmMessage {
    /// Whether handling the message reads or changes this core's replica,
    /// so that a core catching up must hold it until its snapshot is in.
    /// The multicast rounds' messages do not: a commit delivered for a
    /// proposal this core never prepared changes nothing here (and one it
    /// prepared cannot come before its snapshot: it votes only after), and
    /// relaying a round, as an aggregator, must not wait for the snapshot,
    /// which may itself wait for that round's commit to reach a member.
    pub(crate) fn uses_replica(&self) -> bool {
        !matches!(
            self,
            VmMessage::Replicate(Replicate {
                message: Protocol(
                    Message::Agreement(TwoPhaseMsg::Commit(_)) | Message::Shootdown(_)
                ),
            })
        )
    }
}

/// `VmDone::outcome`.
pub const OUTCOME_COMMITTED: u8 = 0;
pub const OUTCOME_REFUSED: u8 = 1;
pub const OUTCOME_TIMED_OUT: u8 = 2;
pub const OUTCOME_NOT_PROPOSED: u8 = 3;
/// `VmDone::reason` of a refusal.
const REFUSAL_CONFLICT: u8 = 0;
const REFUSAL_ALREADY_MAPPED: u8 = 1;
const REFUSAL_NOT_MAPPED: u8 = 2;
/// `VmDone::reason` of a request that could not be proposed.
pub(crate) const INVALID_PAGE: u8 = 0;
pub(crate) const INVALID_CHANGE: u8 = 1;
pub(crate) const INVALID_NOT_A_HOLDER: u8 = 2;
/// `VmSpanned::refused`.
pub const SPAN_DONE: u8 = 0;
pub const SPAN_BAD_RANGE: u8 = 1;
pub const SPAN_PAGES_MAPPED: u8 = 2;

/// What a `VmPropose` asks for; as a number, its `change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Change {
    Map = 0,
    Unmap = 1,
}

impl VmDone {
    pub(crate) fn not_proposed(page: u32, reason: u8) -> Self {
        VmDone {
            page,
            outcome: OUTCOME_NOT_PROPOSED,
            acked: 0,
            unreached: 0,
            core: 0,
            reason,
            rival_origin: 0,
            rival_seq: 0,
        }
    }

    pub(crate) fn of(page: u32, completion: &Completion) -> Self {
        let mut done = VmDone::not_proposed(page, 0);
        match *completion {
            Completion::Committed { report, .. } | Completion::ShootdownDone { report, .. } => {
                done.outcome = OUTCOME_COMMITTED;
                done.acked = report.acked;
                done.unreached = report.unreached;
            }
            Completion::Aborted {
                reason: AbortReason::Refused { by, refusal },
                ..
            } => {
                done.outcome = OUTCOME_REFUSED;
                done.core = by.0;
                done.reason = match refusal {
                    Refusal::Conflict { with } => {
                        done.rival_origin = with.origin.0;
                        done.rival_seq = with.seq;
                        REFUSAL_CONFLICT
                    }
                    Refusal::AlreadyMapped => REFUSAL_ALREADY_MAPPED,
                    Refusal::NotMapped => REFUSAL_NOT_MAPPED,
                };
            }
            Completion::Aborted {
                reason: AbortReason::Timeout { waiting_for },
                ..
            } => {
                done.outcome = OUTCOME_TIMED_OUT;
                done.core = waiting_for.0;
            }
        }
        done
    }

    pub fn committed(&self) -> bool {
        self.outcome == OUTCOME_COMMITTED
    }

    /// How the proposal ended, in one line: the same words whichever core
    /// proposed it.
    pub fn describe(&self) -> String {
        match (self.outcome, self.reason) {
            (OUTCOME_COMMITTED, _) => format!(
                "committed: {} holders applied it, {} unreached",
                self.acked, self.unreached
            ),
            (OUTCOME_REFUSED, REFUSAL_CONFLICT) => format!(
                "aborted: core {} refused (the page is locked by proposal {}:{})",
                self.core, self.rival_origin, self.rival_seq
            ),
            (OUTCOME_REFUSED, REFUSAL_ALREADY_MAPPED) => format!(
                "aborted: core {} refused (the page is already mapped)",
                self.core
            ),
            (OUTCOME_REFUSED, REFUSAL_NOT_MAPPED) => format!(
                "aborted: core {} refused (the page is not mapped)",
                self.core
            ),
            (OUTCOME_TIMED_OUT, _) => {
                format!("aborted: no vote from core {} in time", self.core)
            }
            (OUTCOME_NOT_PROPOSED, INVALID_PAGE) => format!(
                "not proposed: page {} is outside the test space (pages 0 to {})",
                self.page,
                TEST_SPACE_PAGES - 1
            ),
            (OUTCOME_NOT_PROPOSED, INVALID_CHANGE) => {
                String::from("not proposed: the change is neither a map nor an unmap")
            }
            (OUTCOME_NOT_PROPOSED, INVALID_NOT_A_HOLDER) => {
                String::from("not proposed: the core does not know the test space")
            }
            (outcome, reason) => format!("unknown outcome {outcome} (reason {reason})"),
        }
    }
}
