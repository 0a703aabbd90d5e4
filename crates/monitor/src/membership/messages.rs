//! The messages of the `membership` service.
//!
//! They are all one-way: a view change cannot wait on calls, since calls go
//! only to members and a view change is how cores become and stop being
//! members. Each is handled whatever the sender's membership and epoch
//! (the other services' messages are checked against both).

atoll_iface::interface! {
    /// Heartbeats, and the agreement on each new view.
    pub interface MembershipMessage {
        /// I am alive; sent to a member only when nothing else was sent to
        /// it for a heartbeat period.
        Heartbeat {}
        /// Core `core`, a new kernel, asks to become a member; whoever
        /// receives it passes it to the core that leads view changes.
        ViewJoin { core: u16 }
        /// The sender's detector suspects `core`; to the leader.
        ViewSuspect { core: u16 }
        /// The leader proposes view `epoch` with `members` (a bit per core).
        ViewPropose { epoch: u32, members: [u8; 32] }
        /// The receiver accepted proposal `epoch`.
        ViewAccept { epoch: u32 }
        /// The receiver refused proposal `epoch`: it already accepted or
        /// installed view `newest`, proposed by `leader`; with `excluded`,
        /// the proposer is not a member of the receiver's view at all.
        ViewRefuse { epoch: u32, newest: u32, leader: u16, excluded: bool }
        /// Every proposed member accepted view `epoch`: install it.
        ViewCommit { epoch: u32, members: [u8; 32] }
        /// The sender has sent everything it will send in views before
        /// `epoch`; from here on it sends in `epoch`.
        ViewFlush { epoch: u32 }
    }
}
