//! Deliberate bugs, to show that the checks catch each one.
//!
//! Each [`Mutant`] is a one-line change to the protocols, the replica or the
//! monitor, guarded by [`active`]. Without the `mutants` feature `active`
//! is `false` and the guarded lines compile away; with it, a test host
//! switches one mutant on ([`set`], from the `ATOLL_MUTANT` environment
//! variable) and runs a check that must then fail. `cargo xtask test` runs
//! every mutant against its check and fails if one survives
//! (`xtask/src/checks.rs`, `docs/protocols.md`).

/// The deliberate bugs, each named for what it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Mutant {
    /// The replica lets a second proposal lock a locked page.
    LockTwice = 1,
    /// The coordinator commits on the first yes.
    CommitOnFirstYes,
    /// An unmap's commit leaves the TLB entry in place.
    UnmapKeepsTlb,
    /// An aggregator acknowledges for its group before its members do.
    AckBeforeMembers,
    /// A participant aborts as soon as its coordinator is down, without
    /// asking the other participants.
    AbortWithoutInquiry,
    /// A participant answers an inquiry before the coordinator is down to
    /// it, from whatever it holds then.
    AnswerBeforeDown,
    /// A participant keeps waiting for a dead coordinator.
    WaitForDeadCoordinator,
    /// `Abort` goes only to the participants that voted yes.
    AbortOnlyYesVoters,
    /// The initiator forgets a round at its timeout.
    ForgetRoundAtTimeout,
    /// A protect's commit leaves the TLB entry (and its old rights) in
    /// place.
    ProtectKeepsTlb,
    /// A member installs a committed view without waiting for the other
    /// members' flushes.
    InstallWithoutFlush,
    /// Installing a view does not tell the protocols that the cores it
    /// leaves out are down.
    ViewWithoutCoreDown,
    /// The failure detector never suspects anyone.
    NeverSuspect,
    /// No heartbeats are sent.
    NoHeartbeats,
    /// A member sends a joiner its snapshot at once, without waiting for
    /// the rounds that leave the joiner out to be decided.
    SnapshotWithRoundsOpen,
    /// A joiner handles the protocols' messages before its snapshot is in.
    ServeBeforeSnapshot,
    /// An aggregator forgets a round at its relay timeout, so it never
    /// bypasses a subgroup's leader that goes down after it.
    ForgetRelayAtTimeout,
}

impl Mutant {
    pub const ALL: [Mutant; 17] = [
        Mutant::LockTwice,
        Mutant::CommitOnFirstYes,
        Mutant::UnmapKeepsTlb,
        Mutant::AckBeforeMembers,
        Mutant::AbortWithoutInquiry,
        Mutant::AnswerBeforeDown,
        Mutant::WaitForDeadCoordinator,
        Mutant::AbortOnlyYesVoters,
        Mutant::ForgetRoundAtTimeout,
        Mutant::ProtectKeepsTlb,
        Mutant::InstallWithoutFlush,
        Mutant::ViewWithoutCoreDown,
        Mutant::NeverSuspect,
        Mutant::NoHeartbeats,
        Mutant::SnapshotWithRoundsOpen,
        Mutant::ServeBeforeSnapshot,
        Mutant::ForgetRelayAtTimeout,
    ];

    /// The mutant's name, as `ATOLL_MUTANT` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::LockTwice => "lock-twice",
            Mutant::CommitOnFirstYes => "commit-on-first-yes",
            Mutant::UnmapKeepsTlb => "unmap-keeps-tlb",
            Mutant::AckBeforeMembers => "ack-before-members",
            Mutant::AbortWithoutInquiry => "abort-without-inquiry",
            Mutant::AnswerBeforeDown => "answer-before-down",
            Mutant::WaitForDeadCoordinator => "wait-for-dead-coordinator",
            Mutant::AbortOnlyYesVoters => "abort-only-yes-voters",
            Mutant::ForgetRoundAtTimeout => "forget-round-at-timeout",
            Mutant::ProtectKeepsTlb => "protect-keeps-tlb",
            Mutant::InstallWithoutFlush => "install-without-flush",
            Mutant::ViewWithoutCoreDown => "view-without-core-down",
            Mutant::NeverSuspect => "never-suspect",
            Mutant::NoHeartbeats => "no-heartbeats",
            Mutant::SnapshotWithRoundsOpen => "snapshot-with-rounds-open",
            Mutant::ServeBeforeSnapshot => "serve-before-snapshot",
            Mutant::ForgetRelayAtTimeout => "forget-relay-at-timeout",
        }
    }

    pub fn from_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|mutant| mutant.name() == name)
    }
}

#[cfg(feature = "mutants")]
static ACTIVE: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// Switches `mutant` on (and any other off), or all off with `None`.
/// Without the `mutants` feature, a mutant cannot be switched on.
pub fn set(mutant: Option<Mutant>) -> Result<(), &'static str> {
    #[cfg(feature = "mutants")]
    {
        let value = mutant.map_or(0, |mutant| mutant as u8);
        ACTIVE.store(value, core::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    #[cfg(not(feature = "mutants"))]
    match mutant {
        None => Ok(()),
        Some(_) => Err("built without the `mutants` feature"),
    }
}

/// Whether `mutant` is switched on; always `false` without the `mutants`
/// feature.
#[inline(always)]
pub fn active(mutant: Mutant) -> bool {
    #[cfg(feature = "mutants")]
    {
        ACTIVE.load(core::sync::atomic::Ordering::Relaxed) == mutant as u8
    }
    #[cfg(not(feature = "mutants"))]
    {
        let _ = mutant;
        false
    }
}
