//! Views: who is a member, how a failure is found and agreed on, and what
//! becomes of the rounds and locks a failed core took part in.

use super::*;
use crate::membership::{MembershipProtocol, Protocol};
use crate::vm::TEST_SPACE;
use atoll_iface::Message as _;
use atoll_proto::membership::MembershipMsg;
use atoll_replica::Replica as _;

fn members(cores: &[u16]) -> Members {
    cores.iter().copied().map(CoreId).collect()
}

/// Every running core is in view `epoch` with `cores`.
fn assert_view(net: &Net, cores: &[u16]) -> View {
    let first = net.view(cores[0]);
    for &core in cores {
        assert_eq!(net.view(core), first, "core {core}'s view");
    }
    assert_eq!(first.members, members(cores));
    first
}

/// No replica of a running core holds a page's lock.
fn assert_no_locks(net: &Net) {
    for (core, monitor) in net.monitors.iter().enumerate() {
        if net.stopped[core] {
            continue;
        }
        let locked: Vec<_> = monitor
            .mappings()
            .replica()
            .entries()
            .iter()
            .filter(|entry| entry.pending.is_some())
            .copied()
            .collect();
        assert!(locked.is_empty(), "core {core} holds locks: {locked:?}");
    }
}

/// Ticks until the view changes on `core`, at most `limit` ticks; how many
/// it took.
fn ticks_until_view_changes(net: &mut Net, core: u16, limit: u64) -> u64 {
    let before = net.view(core).epoch;
    for tick in 1..=limit {
        net.tick_all();
        net.settle();
        if net.view(core).epoch != before {
            return tick;
        }
    }
    panic!("core {core}'s view did not change within {limit} ticks");
}

fn plan_by_domains(net: &mut Net) {
    let domains: Vec<u32> = (0..net.n() as u32).map(|core| core % 2).collect();
    for monitor in &mut net.monitors {
        monitor
            .base
            .mappings
            .set_plan(atoll_proto::TreePlan::from_domains(&domains));
    }
}

#[test]
fn a_core_that_never_starts_is_never_a_member_and_twenty_maps_commit_without_it() {
    let mut net = Net::without(4, &[2]);
    assert_view(&net, &[0, 1, 3]);
    assert_eq!(net.monitors[0].mappings().holders(), members(&[0, 1, 3]));
    for page in 0..20 {
        let proposer = [0, 1, 3][page as usize % 3];
        let done = net.propose(0, proposer, Change::Map, page);
        assert_eq!(
            done.describe(),
            "committed: 3 holders applied it, 0 unreached",
            "page {page}"
        );
    }
    let hashes = net.hashes(0);
    assert!(hashes.iter().all(|&hash| hash == hashes[0]), "{hashes:x?}");
    assert!(
        net.links.iter().all(VecDeque::is_empty),
        "nothing waits for core 2"
    );
    assert_eq!(net.monitors[0].strays().unsent, 0);
}

#[test]
fn a_silent_member_is_suspected_and_left_out_by_agreement() {
    let mut net = Net::new(4);
    let before = net.epoch();
    net.crash(3);
    let ticks = ticks_until_view_changes(&mut net, 0, 1000);
    net.run_ticks(5);
    let view = assert_view(&net, &[0, 1, 2]);
    assert!(view.epoch > before);
    let suspect_after = Detector::DEFAULT.suspect_after;
    assert!(
        ticks > suspect_after && ticks <= suspect_after + Detector::DEFAULT.heartbeat + 5,
        "left out after {ticks} ticks"
    );
    for core in 0..3 {
        assert!(
            net.notices.iter().any(|(c, line)| c.0 == core
                && *line == format!("view {}: cores 0 1 2; left: 3", view.epoch)),
            "core {core}: {:?}",
            net.notices
        );
    }
    // Nothing is sent to core 3 any more but the commit that left it out.
    let n = net.n();
    let queued_for_3: usize = (0..3).map(|from| net.links[from * n + 3].len()).sum();
    net.run_ticks(50);
    let later: usize = (0..3).map(|from| net.links[from * n + 3].len()).sum();
    assert_eq!(queued_for_3, later, "heartbeats to a core left out");
}

#[test]
fn a_coordinator_that_dies_after_the_votes_leaves_no_lock() {
    let mut net = Net::new(4);
    let ticket = net.call(0, 1, VmPropose { change: 0, page: 7 }, 10_000);
    assert!(net.deliver(0, 1), "the shell's request");
    // Core 1 prepared locally and sent Prepare; the others lock the page
    // and vote, and core 1 dies before it counts the votes.
    for to in [0, 2, 3] {
        assert!(net.deliver(1, to));
    }
    net.crash(1);
    net.run_ticks(Detector::DEFAULT.suspect_after + 20);
    assert_view(&net, &[0, 2, 3]);
    assert_eq!(
        net.completion(0, ticket),
        Some(Err(CallError::Down { core: CoreId(1) }))
    );
    assert_no_locks(&net);
    let again = net.propose(0, 2, Change::Map, 7);
    assert_eq!(
        again.describe(),
        "committed: 3 holders applied it, 1 unreached"
    );
    let hashes = net.hashes(0);
    assert!(hashes.iter().all(|&hash| hash == hashes[0]), "{hashes:x?}");
}

#[test]
fn an_aggregator_that_dies_before_it_forwards_the_commit_leaves_no_lock() {
    let mut net = Net::new(4);
    plan_by_domains(&mut net);
    // Core 0 proposes; core 1 aggregates core 3's group of the commit.
    let ticket = net.call(0, 0, VmPropose { change: 0, page: 9 }, 10_000);
    for peer in [1, 2, 3] {
        assert!(net.deliver(0, peer), "Prepare to {peer}");
        assert!(net.deliver(peer, 0), "vote from {peer}");
    }
    // All voted yes: the commit is on its way to core 1, which dies.
    net.crash(1);
    net.run_ticks(Detector::DEFAULT.suspect_after + 20);
    assert_view(&net, &[0, 2, 3]);
    let done = net.vm_done(0, ticket);
    assert_eq!(
        done.describe(),
        "committed: 3 holders applied it, 1 unreached"
    );
    assert_no_locks(&net);
    for core in [0, 2, 3] {
        let entry = net.monitors[core]
            .mappings()
            .replica()
            .entries()
            .iter()
            .find(|entry| entry.space == TEST_SPACE && entry.committed.is_some())
            .copied();
        assert!(entry.is_some(), "core {core} has the page mapped");
    }
}

#[test]
fn a_coordinator_that_dies_mid_commit_leaves_every_survivor_alike() {
    let mut net = Net::new(4);
    plan_by_domains(&mut net);
    let ticket = net.call(
        2,
        0,
        VmPropose {
            change: 0,
            page: 11,
        },
        10_000,
    );
    assert!(net.deliver(2, 0), "the shell's request");
    for peer in [1, 2, 3] {
        assert!(net.deliver(0, peer), "Prepare to {peer}");
        assert!(net.deliver(peer, 0), "vote from {peer}");
    }
    // The commit reached aggregator 1 only; the coordinator dies.
    assert!(net.deliver(0, 1));
    net.crash(0);
    net.run_ticks(Detector::DEFAULT.suspect_after + 20);
    assert_view(&net, &[1, 2, 3]);
    assert_eq!(
        net.completion(2, ticket),
        Some(Err(CallError::Down { core: CoreId(0) }))
    );
    assert_no_locks(&net);
    let hashes = net.hashes(1);
    assert!(hashes.iter().all(|&hash| hash == hashes[0]), "{hashes:x?}");
}

#[test]
fn a_leader_that_dies_mid_change_is_replaced_and_the_survivors_agree() {
    let mut net = Net::new(5);
    net.crash(4);
    // Run until core 0, the leader, has sent its proposal of the view
    // without core 4; it dies before any answer reaches it.
    let mut ticks = 0;
    loop {
        net.tick_all();
        if net.monitors[0].proposing().is_some() {
            break;
        }
        net.settle();
        ticks += 1;
        assert!(ticks < 1000, "core 0 never proposed");
    }
    net.crash(0);
    net.run_ticks(3 * Detector::DEFAULT.suspect_after);
    let view = assert_view(&net, &[1, 2, 3]);
    let installed = format!("view {}: cores 1 2 3; left: 0 4", view.epoch);
    assert!(
        net.notices
            .iter()
            .any(|(c, line)| c.0 == 1 && *line == installed),
        "{installed:?} not in {:?}",
        net.notices
    );
    let done = net.propose(1, 2, Change::Map, 3);
    assert_eq!(
        done.describe(),
        "committed: 3 holders applied it, 2 unreached"
    );
}

#[test]
fn survivors_without_a_quorum_keep_the_failed_cores_in_their_view() {
    // Cores 0 and 1 of 4 fail: cores 2 and 3 are half of the view without
    // its lowest member, so they may not leave the others out (the other
    // half could be running on, cut off, and do the same).
    let mut net = Net::new(4);
    let before = net.view(2);
    net.crash(0);
    net.crash(1);
    net.run_ticks(3 * Detector::DEFAULT.suspect_after);
    assert_eq!(net.view(2), before);
    assert_eq!(net.view(3), before);
    assert_eq!(net.monitors[2].suspects(), members(&[0, 1]));
    // Proposals still end: the vote timeout aborts them.
    let ticket = net.call(2, 3, VmPropose { change: 0, page: 5 }, 10_000);
    net.run_ticks(300);
    let done = net.vm_done(2, ticket);
    assert_eq!(done.describe(), "aborted: no vote from core 0 in time");
}

#[test]
fn messages_from_an_older_view_or_a_non_member_are_dropped_and_counted() {
    let mut net = Net::without(4, &[3]);
    let epoch = net.epoch();
    assert!(epoch > 0);
    let stale = encode(&Wire::from(Ping {}), 5, epoch - 1).next().unwrap();
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(1),
            slot: &stale,
        },
    );
    let outsider = encode(&Wire::from(Ping {}), 6, epoch).next().unwrap();
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(3),
            slot: &outsider,
        },
    );
    let strays = net.monitors[0].strays();
    assert_eq!((strays.old_epoch, strays.non_member), (1, 1));
    let lines: Vec<&str> = net.notices.iter().map(|(_, line)| line.as_str()).collect();
    assert_eq!(
        lines,
        [
            format!(
                "dropped Ping (call 5) from core 1: sent in an older view (epoch {}, view {epoch})",
                epoch - 1
            ),
            format!(
                "dropped Ping (call 6) from core 3: not a member (epoch {epoch}, view {epoch})"
            ),
        ]
    );
    assert!(
        net.links.iter().all(VecDeque::is_empty),
        "neither was answered, and core 3 was never a member, so it is not told"
    );
}

#[test]
fn a_message_sent_in_a_newer_view_waits_until_that_view_is_installed() {
    let mut net = Net::new(4);
    let epoch = net.epoch();
    net.crash(2);
    // Core 1 answers in the next view before core 0 has installed it.
    let early = encode(&Wire::from(Ping {}), 42, epoch + 1).next().unwrap();
    net.step(
        CoreId(0),
        Input::Slot {
            from: CoreId(1),
            slot: &early,
        },
    );
    let is_answer = |slot: &Payload| slot[0] == Pong::KIND && slot[4..8] == 42u32.to_le_bytes();
    assert!(!net.links[1].iter().any(is_answer), "held, not answered");
    let mut answered = 0;
    for _ in 0..(2 * Detector::DEFAULT.suspect_after) {
        net.tick_all();
        let mut any = true;
        while any {
            any = false;
            for from in 0..4u16 {
                for to in 0..4u16 {
                    while let Some(slot) = net.deliver_slot(from, to) {
                        any = true;
                        if (from, to) == (0, 1) && is_answer(&slot) {
                            assert_eq!(net.view(0).epoch, epoch + 1, "answered in the new view");
                            answered += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(net.view(0).epoch, epoch + 1);
    assert_eq!(answered, 1, "answered once the view is installed");
    assert_eq!(net.monitors[0].strays(), Strays::default());
}

#[test]
fn a_core_left_out_while_it_runs_fences_itself() {
    let mut net = Net::new(3);
    // Core 2 runs and hears the others, but they hear nothing from it.
    net.muted[2] = true;
    ticks_until_view_changes(&mut net, 0, 1000);
    let view = assert_view(&net, &[0, 1]);
    // The commit that left it out reached it too.
    assert!(net.monitors[2].excluded());
    assert!(
        net.effects
            .iter()
            .any(|(core, effect)| core.0 == 2 && *effect == Effect::Excluded { epoch: view.epoch }),
        "{:?}",
        net.effects
    );
    assert!(
        net.notices.iter().any(|(core, line)| core.0 == 2
            && *line
                == format!(
                    "left out of view {} while running; stopping (fenced)",
                    view.epoch
                )),
        "{:?}",
        net.notices
    );
    // A member that drops a message from a core it left out tells that
    // core, once per view.
    let stale = encode(&Wire::from(Ping {}), 8, view.epoch - 1)
        .next()
        .unwrap();
    for _ in 0..2 {
        net.step(
            CoreId(0),
            Input::Slot {
                from: CoreId(2),
                slot: &stale,
            },
        );
    }
    let told = net.links[2]
        .iter()
        .filter(|slot| {
            let refusal = MembershipProtocol {
                message: Protocol(MembershipMsg::Refuse {
                    epoch: 0,
                    newest: 0,
                    leader: CoreId(0),
                    excluded: true,
                }),
            };
            // The kind, then the protocol message's tag (5: Refuse).
            slot[0] == Wire::from(refusal).kind() && slot[12] == 5
        })
        .count();
    assert_eq!(told, 1);
    assert_eq!(net.monitors[0].strays().old_epoch, 2);
}

#[test]
fn a_core_back_from_a_stall_does_not_count_the_silence_it_missed() {
    let mut net = Net::new(3);
    // The others wait long for core 2; core 2 has the default detector.
    for core in [0, 1] {
        net.monitors[core].set_detector(Detector {
            heartbeat: 10,
            suspect_after: 10_000,
        });
    }
    // Core 2 stalls: it neither ticks nor reads for 300 ticks.
    net.muted[2] = true;
    for _ in 0..300 {
        for core in [0, 1] {
            net.step(CoreId(core), Input::Tick);
        }
        for (from, to) in [(0, 1), (1, 0)] {
            while net.deliver(from, to) {}
        }
    }
    net.muted[2] = false;
    // Its host feeds the ticks it missed, saying so first.
    net.monitors[2].resumed(299);
    for _ in 0..300 {
        net.step(CoreId(2), Input::Tick);
    }
    assert_eq!(net.monitors[2].suspects(), Members::new());
    net.settle();
    assert_view(&net, &[0, 1, 2]);
}

#[test]
fn a_core_asked_to_leave_is_left_out_at_once_and_stops() {
    let mut net = Net::new(4);
    let before = net.epoch();
    // Core 1 asks; core 0 leads the change; no tick passes.
    let mut out = Output::default();
    net.monitors[1].remove(0, CoreId(3), &mut out);
    net.absorb(CoreId(1), out);
    net.settle();
    let view = assert_view(&net, &[0, 1, 2]);
    assert_eq!(view.epoch, before + 1);
    assert!(net.monitors[3].excluded());
    assert!(
        net.notices
            .iter()
            .any(|(core, line)| core.0 == 1 && line == "suspects core 3: it is asked to leave"),
        "{:?}",
        net.notices
    );
}

/// Four cores map pages; core 3 crashes, is left out, and pages change
/// while it is away; then a new kernel on core 3 asks core 0 to join.
fn net_with_core_3_back() -> Net {
    let mut net = Net::new(4);
    for page in 0..6 {
        let done = net.propose(0, page as u16 % 4, Change::Map, page);
        assert!(done.committed(), "page {page}: {}", done.describe());
    }
    net.crash(3);
    ticks_until_view_changes(&mut net, 0, 1000);
    assert_view(&net, &[0, 1, 2]);
    for (change, page) in [(Change::Unmap, 0), (Change::Map, 10)] {
        let done = net.propose(0, 1, change, page);
        assert_eq!(
            done.describe(),
            "committed: 3 holders applied it, 1 unreached"
        );
    }
    net.restart(3, 0);
    net
}

#[test]
fn a_core_that_comes_back_catches_up_then_serves() {
    let mut net = net_with_core_3_back();
    net.settle();
    assert_view(&net, &[0, 1, 2, 3]);
    assert!(!net.monitors[3].catching_up());
    assert!(
        net.notices
            .iter()
            .any(|(core, line)| core.0 == 3
                && line.starts_with("caught up from core 0: 6 pages mapped")),
        "{:?}",
        net.notices
    );
    let hashes = net.hashes(0);
    assert_eq!(hashes.len(), 4);
    assert!(hashes.iter().all(|&hash| hash == hashes[0]), "{hashes:x?}");
    // It proposes, and takes part in others' proposals, with every core.
    for proposer in [3, 2] {
        let done = net.propose(0, proposer, Change::Map, 20 + u32::from(proposer));
        assert_eq!(
            done.describe(),
            "committed: 4 holders applied it, 0 unreached"
        );
    }
    let ticket = net.call(0, 3, crate::control::Ping {}, 100);
    net.settle();
    assert_eq!(net.reply(0, ticket), Wire::from(crate::control::Pong {}));
    assert_no_locks(&net);
}

#[test]
fn a_snapshot_that_lost_a_mapping_is_asked_for_again() {
    let mut net = net_with_core_3_back();
    let n = net.n();
    let entry = crate::catchup::CatchUpEntry {
        space: 0,
        vaddr: 0,
        paddr: 0,
        flags: 0,
    };
    let entry_kind = Wire::from(entry).kind();
    let is_entry = |slot: &Payload| slot[0] == entry_kind;
    // Deliver everything, but lose the first mapping core 0 sends core 3.
    let mut lost = 0;
    for _ in 0..2 * Detector::DEFAULT.suspect_after {
        if !net.monitors[3].catching_up() {
            break;
        }
        net.tick_all();
        let mut any = true;
        while any {
            any = false;
            for from in 0..4u16 {
                for to in 0..4u16 {
                    let link = &mut net.links[usize::from(from) * n + usize::from(to)];
                    if (from, to) == (0, 3) && lost == 0 && link.front().is_some_and(is_entry) {
                        link.pop_front();
                        lost += 1;
                    }
                    while net.deliver(from, to) {
                        any = true;
                    }
                }
            }
        }
    }
    assert_eq!(lost, 1, "core 0 sent core 3 a snapshot");
    net.settle();
    assert!(
        net.notices.iter().any(|(core, line)| core.0 == 3
            && line == "snapshot from core 0 came with 5 of its 6 mappings; asking again"),
        "{:?}",
        net.notices
    );
    assert!(!net.monitors[3].catching_up());
    let hashes = net.hashes(0);
    assert_eq!(hashes.len(), 4);
    assert!(hashes.iter().all(|&hash| hash == hashes[0]), "{hashes:x?}");
    assert_no_locks(&net);
}

#[test]
fn a_proposal_that_reaches_a_core_catching_up_waits_for_its_snapshot() {
    let mut net = net_with_core_3_back();
    // Deliver until core 3 is in the view but has not had its snapshot.
    while !(net.view(3).members.contains(CoreId(0)) && net.monitors[3].catching_up()) {
        let link = net
            .links
            .iter()
            .position(|link| !link.is_empty())
            .expect("view forms");
        let n = net.n();
        assert!(net.deliver((link / n) as u16, (link % n) as u16));
    }
    // Page 1 is mapped on every member; core 3's replica is still empty.
    let done = net.propose(0, 2, Change::Unmap, 1);
    assert_eq!(
        done.describe(),
        "committed: 4 holders applied it, 0 unreached"
    );
    assert!(!net.monitors[3].catching_up());
    let hashes = net.hashes(0);
    assert!(hashes.iter().all(|&hash| hash == hashes[0]), "{hashes:x?}");
    assert_no_locks(&net);
}

#[test]
fn a_member_refuses_to_reset_its_link_to_a_member() {
    let mut net = Net::new(3);
    assert!(!net.monitors[0].reset_link(CoreId(1)));
    assert!(!net.monitors[0].reset_link(CoreId(0)));
    assert!(!net.monitors[0].reset_link(CoreId(7)));
}
