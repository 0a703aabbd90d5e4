//! Process address spaces: each a replicated table of its own, changed by
//! agreement among its holders alone.

use super::*;
use crate::process::{PageChange, SpaceError};
use atoll_proto::two_phase::AbortReason;
use atoll_replica::{Completion, Effect as ReplicaEffect, Mapping, Refusal};

const PID: u32 = 1025;
const PAGE: u64 = 1 << 39;

fn mapping(paddr: u64) -> Mapping {
    Mapping { paddr, flags: 1 }
}

/// Opens `PID`'s space on `holders`, with one page mapped already.
fn open(net: &mut Net, holders: &[u16]) {
    let members: Members = holders.iter().map(|&core| CoreId(core)).collect();
    for &core in holders {
        let mut out = Output::default();
        net.monitors[usize::from(core)]
            .open_space(net.now, PID, members, &[(PAGE, mapping(0x1000))], &mut out)
            .unwrap();
        net.absorb(CoreId(core), out);
    }
}

fn propose(net: &mut Net, core: u16, vaddr: u64, change: Option<Mapping>, token: u64) {
    let mut out = Output::default();
    net.monitors[usize::from(core)]
        .propose_change(
            net.now,
            PID,
            vaddr,
            change.map_or(PageChange::Unmap, PageChange::Map),
            token,
            &mut out,
        )
        .unwrap();
    net.absorb(CoreId(core), out);
    net.settle();
}

/// The process-space effects each core took, in order.
fn effects_on(net: &Net, core: u16) -> Vec<ReplicaEffect> {
    net.effects
        .iter()
        .filter_map(|(at, effect)| match effect {
            Effect::ProcessMapping { pid: PID, effect } if at.0 == core => Some(*effect),
            _ => None,
        })
        .collect()
}

#[test]
fn a_change_of_a_process_space_is_agreed_by_its_holders_alone() {
    let mut net = Net::new(4);
    open(&mut net, &[1, 2, 3]);
    assert!(
        net.effects.is_empty(),
        "the image's pages are mapped already"
    );
    let second = PAGE + 4096;
    propose(&mut net, 2, second, Some(mapping(0x2000)), 7);
    assert!(
        matches!(net.changes[..], [(CoreId(2), 7, Completion::Committed { report, .. })] if report.acked == 3),
        "{:?}",
        net.changes
    );
    let mapped = ReplicaEffect::MapPage {
        space: atoll_replica::SpaceId(PID),
        vaddr: second,
        mapping: mapping(0x2000),
    };
    for core in 1..=3 {
        assert_eq!(effects_on(&net, core), [mapped], "core {core}");
    }
    assert!(effects_on(&net, 0).is_empty(), "core 0 holds no part of it");
    // Core 0 never opened the space: it cannot propose, and nothing of it
    // reaches the test space's replica anywhere.
    let mut out = Output::default();
    assert_eq!(
        net.monitors[0].propose_change(net.now, PID, second, PageChange::Unmap, 8, &mut out),
        Err(SpaceError::NoSuchSpace)
    );
    assert!(net.hashes(0).windows(2).all(|pair| pair[0] == pair[1]));
}

#[test]
fn a_protect_is_agreed_by_the_holders_and_shoots_down_the_old_rights_everywhere() {
    let mut net = Net::new(3);
    open(&mut net, &[0, 1, 2]);
    let mut out = Output::default();
    net.monitors[1]
        .propose_change(
            net.now,
            PID,
            PAGE,
            PageChange::Protect { flags: 0 },
            4,
            &mut out,
        )
        .unwrap();
    net.absorb(CoreId(1), out);
    net.settle();
    assert!(
        matches!(net.changes[..], [(CoreId(1), 4, Completion::Committed { report, .. })] if report.acked == 3),
        "{:?}",
        net.changes
    );
    let space = atoll_replica::SpaceId(PID);
    let read_only = Mapping {
        flags: 0,
        ..mapping(0x1000)
    };
    for core in 0..3 {
        assert_eq!(
            effects_on(&net, core),
            [
                ReplicaEffect::MapPage {
                    space,
                    vaddr: PAGE,
                    mapping: read_only
                },
                ReplicaEffect::InvalidateTlb { space, vaddr: PAGE }
            ],
            "core {core}"
        );
        assert_eq!(
            net.monitors[usize::from(core)].space_mapping(PID, PAGE),
            Some(read_only)
        );
    }
    // A page that is not mapped cannot be protected.
    let mut out = Output::default();
    net.monitors[2]
        .propose_change(
            net.now,
            PID,
            PAGE + 4096,
            PageChange::Protect { flags: 1 },
            5,
            &mut out,
        )
        .unwrap();
    net.absorb(CoreId(2), out);
    net.settle();
    assert!(
        matches!(
            net.changes[1],
            (
                CoreId(2),
                5,
                Completion::Aborted {
                    reason: AbortReason::Refused {
                        refusal: Refusal::NotMapped,
                        ..
                    },
                    ..
                }
            )
        ),
        "{:?}",
        net.changes
    );
}

#[test]
fn a_map_of_a_mapped_page_is_refused_and_an_unmap_shoots_down_every_holder() {
    let mut net = Net::new(3);
    open(&mut net, &[0, 1, 2]);
    propose(&mut net, 1, PAGE, Some(mapping(0x3000)), 1);
    assert!(
        matches!(
            net.changes[..],
            [(
                _,
                1,
                Completion::Aborted {
                    reason: AbortReason::Refused {
                        refusal: Refusal::AlreadyMapped,
                        ..
                    },
                    ..
                }
            )]
        ),
        "{:?}",
        net.changes
    );
    assert!(
        net.effects.is_empty(),
        "a refused map changes no page table"
    );
    propose(&mut net, 0, PAGE, None, 2);
    assert!(matches!(
        net.changes[1],
        (CoreId(0), 2, Completion::Committed { .. })
    ));
    let space = atoll_replica::SpaceId(PID);
    for core in 0..3 {
        assert_eq!(
            effects_on(&net, core),
            [
                ReplicaEffect::UnmapPage { space, vaddr: PAGE },
                ReplicaEffect::InvalidateTlb { space, vaddr: PAGE }
            ],
            "core {core}"
        );
    }
    // An unmap of what is not mapped is refused.
    propose(&mut net, 2, PAGE, None, 3);
    assert!(matches!(net.changes[2], (_, 3, Completion::Aborted { .. })));
    for core in 0..3 {
        assert_eq!(net.monitors[core].close_space(PID), Ok(()));
        assert_eq!(
            net.monitors[core].close_space(PID),
            Err(SpaceError::NoSuchSpace)
        );
    }
}

#[test]
fn a_space_with_a_change_under_way_stays_open_and_a_holder_that_stops_is_passed_over() {
    let mut net = Net::new(3);
    open(&mut net, &[0, 1, 2]);
    net.crash(2);
    let mut out = Output::default();
    net.monitors[0]
        .propose_change(
            net.now,
            PID,
            PAGE + 4096,
            PageChange::Map(mapping(0x4000)),
            9,
            &mut out,
        )
        .unwrap();
    net.absorb(CoreId(0), out);
    assert_eq!(net.monitors[0].close_space(PID), Err(SpaceError::Busy));
    // Core 2 never votes; the others find it silent and leave it out of
    // the view, which counts it down to the space's protocols: the change
    // commits on the two that are left, core 2 unreached.
    for _ in 0..300 {
        net.tick_all();
        net.settle();
        if !net.changes.is_empty() {
            break;
        }
    }
    assert!(
        matches!(net.changes[..], [(CoreId(0), 9, Completion::Committed { report, .. })]
            if report.acked == 2 && report.unreached == 1),
        "{:?}",
        net.changes
    );
    assert!(!net.monitors[0].view().members.contains(CoreId(2)));
    assert_eq!(effects_on(&net, 1).len(), 1, "core 1 mapped it");
    assert_eq!(net.monitors[0].close_space(PID), Ok(()));
}

#[test]
fn two_holders_mapping_one_page_at_once_both_abort_on_the_conflict_and_a_retry_commits() {
    let mut net = Net::new(3);
    open(&mut net, &[0, 1, 2]);
    let page = PAGE + 8 * 4096;
    // Both proposals leave before either is delivered: each locks the page
    // on its own core first, and each is refused by the other's lock.
    for (core, paddr, token) in [(0u16, 0x5000u64, 1u64), (2, 0x6000, 2)] {
        let mut out = Output::default();
        net.monitors[usize::from(core)]
            .propose_change(
                net.now,
                PID,
                page,
                PageChange::Map(mapping(paddr)),
                token,
                &mut out,
            )
            .unwrap();
        net.absorb(CoreId(core), out);
    }
    net.settle();
    let mut ends: Vec<(u16, u64, Option<u16>)> = net
        .changes
        .iter()
        .map(|(core, token, completion)| {
            let refused_by = match completion {
                Completion::Aborted {
                    reason:
                        AbortReason::Refused {
                            by,
                            refusal: Refusal::Conflict { .. },
                        },
                    ..
                } => Some(by.0),
                _ => None,
            };
            (core.0, *token, refused_by)
        })
        .collect();
    ends.sort_unstable();
    assert_eq!(
        ends,
        [(0, 1, Some(2)), (2, 2, Some(0))],
        "{:?}",
        net.changes
    );
    assert!(net.effects.is_empty(), "no holder maps the page");
    // Proposed again alone, it commits everywhere.
    propose(&mut net, 2, page, Some(mapping(0x6000)), 3);
    assert!(
        matches!(net.changes[2], (CoreId(2), 3, Completion::Committed { report, .. }) if report.acked == 3)
    );
    for core in 0..3 {
        assert_eq!(
            effects_on(&net, core).len(),
            1,
            "core {core} mapped it once"
        );
        assert_eq!(
            net.monitors[usize::from(core)].space_hash(PID),
            net.monitors[0].space_hash(PID)
        );
    }
}

#[test]
fn a_core_asked_to_join_a_process_has_its_host_join_it_with_the_pages_sent_before() {
    use crate::process::{
        CoreSet, JoinProcess, ProcessNote, ProcessPages, ProcessRequest, pack_pages,
    };
    let mut net = Net::new(3);
    let pages = pack_pages(&[(PAGE, 0x7000, 1)]).unwrap();
    let mut out = Output::default();
    net.monitors[0].send(
        net.now,
        CoreId(2),
        ProcessPages { pid: PID, pages },
        &mut out,
    );
    net.absorb(CoreId(0), out);
    let cores: Members = [0, 2].into_iter().map(CoreId).collect();
    let join = JoinProcess {
        pid: PID,
        index: 1,
        cores: CoreSet(cores),
        entry: PAGE,
        name: atoll_iface::Bytes::new(b"hello").unwrap(),
        args: atoll_iface::Bytes::new(b"").unwrap(),
    };
    net.call(0, 2, join, 1000);
    net.settle();
    let on_2: Vec<&Deferred> = net
        .deferred
        .iter()
        .filter(|(core, _)| core.0 == 2)
        .map(|(_, work)| work)
        .collect();
    // The pages first (the link keeps its order), then the request, with
    // the asking core as the home.
    assert!(
        matches!(on_2[..], [
            Deferred::ProcessNote(ProcessNote::Pages { pid: PID, pages }),
            Deferred::Process { request: ProcessRequest::Join { home: CoreId(0), pid: PID, index: 1, .. }, .. },
        ] if pages[..] == [(PAGE, 0x7000, 1)]),
        "{on_2:?}"
    );
}

#[test]
fn a_core_that_joins_a_quiet_space_starts_from_its_pages_and_takes_part_in_every_change_after() {
    let mut net = Net::new(3);
    open(&mut net, &[0, 1]);
    let second = PAGE + 4096;
    propose(&mut net, 0, second, Some(mapping(0x2000)), 1);
    // Core 2 joins from core 0's pages; then the holders take it in.
    let entries = net.monitors[0].space_entries(PID).unwrap();
    assert_eq!(
        entries,
        [(PAGE, mapping(0x1000)), (second, mapping(0x2000))]
    );
    let all: Members = (0..3).map(CoreId).collect();
    let mut out = Output::default();
    net.monitors[2]
        .open_space(net.now, PID, all, &entries, &mut out)
        .unwrap();
    net.absorb(CoreId(2), out);
    for core in 0..2 {
        let mut out = Output::default();
        assert_eq!(
            net.monitors[core].regrow_space(net.now, PID, all, &mut out),
            Ok(())
        );
        net.absorb(CoreId(core as u16), out);
    }
    assert_eq!(
        net.monitors[2].space_entries(PID + 1),
        None,
        "no such space"
    );
    // A change from a member is agreed by all three, the newcomer too.
    let third = PAGE + 2 * 4096;
    propose(&mut net, 1, third, Some(mapping(0x3000)), 2);
    assert!(
        matches!(net.changes[1], (CoreId(1), 2, Completion::Committed { report, .. }) if report.acked == 3),
        "{:?}",
        net.changes
    );
    let hashes: Vec<u64> = (0..3)
        .map(|core| net.monitors[core].space_hash(PID).unwrap())
        .collect();
    assert!(
        hashes.windows(2).all(|pair| pair[0] == pair[1]),
        "{hashes:?}"
    );
    // A space with a change under way does not regrow.
    let mut out = Output::default();
    net.monitors[0]
        .propose_change(
            net.now,
            PID,
            PAGE + 3 * 4096,
            PageChange::Map(mapping(0x4000)),
            3,
            &mut out,
        )
        .unwrap();
    net.absorb(CoreId(0), out);
    let mut out = Output::default();
    assert_eq!(
        net.monitors[0].regrow_space(net.now, PID, all, &mut out),
        Err(SpaceError::Busy)
    );
}
