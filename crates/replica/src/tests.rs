//! Cores exchanging messages through their byte encoding, oldest first.

use super::*;
use alloc::vec;

const SPACE: SpaceId = SpaceId(7);
const TIMEOUTS: Timeouts = Timeouts {
    vote: 8,
    round: 8,
    relay: 4,
};

struct Cores {
    cores: Vec<Replicator>,
    queue: VecDeque<(CoreId, CoreId, [u8; MESSAGE_BYTES])>,
    effects: Vec<Vec<Effect>>,
    completions: Vec<Completion>,
    down: BTreeSet<CoreId>,
}

impl Cores {
    /// `domains.len()` cores, routing `Planned` rounds by the plan of their
    /// domains; `holders` hold `SPACE`.
    fn new(domains: Vec<u32>, holders: &[u16]) -> Self {
        let holders: Vec<CoreId> = holders.iter().map(|&h| CoreId(h)).collect();
        let cores: Vec<Replicator> = (0..domains.len() as u16)
            .map(|n| {
                let config = Config {
                    timeouts: TIMEOUTS,
                    plan: TreePlan::from_domains(&domains),
                };
                let mut core = Replicator::new(CoreId(n), config, MappingTable::new());
                core.add_space(SPACE, &holders);
                core
            })
            .collect();
        Cores {
            effects: vec![Vec::new(); cores.len()],
            cores,
            queue: VecDeque::new(),
            completions: Vec::new(),
            down: BTreeSet::new(),
        }
    }

    fn absorb(&mut self, at: usize, out: Actions) {
        self.effects[at].extend(out.effects);
        self.completions.extend(out.completions);
        for (to, message) in out.messages {
            assert_ne!(
                to,
                CoreId(at as u16),
                "messages to self stay inside the core"
            );
            if !self.down.contains(&to) {
                self.queue
                    .push_back((CoreId(at as u16), to, message.to_bytes()));
            }
        }
    }

    fn submit(&mut self, at: usize, request: Request, shape: Shape) -> OpId {
        let mut out = Actions::default();
        let id = self.cores[at]
            .submit(request, shape, &mut out)
            .expect("valid request");
        self.absorb(at, out);
        id
    }

    fn step(&mut self) -> bool {
        let Some((from, to, bytes)) = self.queue.pop_front() else {
            return false;
        };
        let message = Message::from_bytes(&bytes).expect("decodes");
        let at = usize::from(to.0);
        let mut out = Actions::default();
        self.cores[at].handle(Input::Message { from, message }, &mut out);
        self.absorb(at, out);
        true
    }

    fn run(&mut self) {
        while self.step() {}
    }

    /// `core` stops; the others are told once its messages to them are in.
    fn crash(&mut self, core: CoreId) {
        self.down.insert(core);
        self.queue.retain(|&(_, to, _)| to != core);
        while let Some(at) = self.queue.iter().position(|&(from, _, _)| from == core) {
            self.queue.swap(0, at);
            self.step();
        }
        for at in 0..self.cores.len() {
            if !self.down.contains(&CoreId(at as u16)) {
                let mut out = Actions::default();
                self.cores[at].handle(Input::CoreDown(core), &mut out);
                self.absorb(at, out);
            }
        }
    }

    fn hashes(&self) -> Vec<u64> {
        self.cores.iter().map(|n| n.replica().hash()).collect()
    }
}

fn frame(n: u64) -> Mapping {
    Mapping {
        paddr: n * 0x1000,
        flags: 0b11,
    }
}

fn map(vaddr: u64, n: u64) -> Request {
    Request::Map {
        space: SPACE,
        vaddr,
        mapping: frame(n),
    }
}

fn unmap(vaddr: u64) -> Request {
    Request::Unmap {
        space: SPACE,
        vaddr,
    }
}

fn shootdown(vaddr: u64) -> Request {
    Request::Shootdown {
        space: SPACE,
        vaddr,
    }
}

fn report(acked: u16, unreached: u16) -> Report {
    Report { acked, unreached }
}

#[test]
fn a_map_commits_on_every_holder_with_a_page_table_effect_each() {
    let mut cores = Cores::new(vec![0; 3], &[0, 1, 2]);
    let id = cores.submit(1, map(0x4000, 9), Shape::Unicast);
    cores.run();
    assert_eq!(
        cores.completions,
        [Completion::Committed {
            id,
            report: report(3, 0)
        }]
    );
    let mapped = Effect::MapPage {
        space: SPACE,
        vaddr: 0x4000,
        mapping: frame(9),
    };
    assert!(cores.effects.iter().all(|e| e == &[mapped]));
    let hashes = cores.hashes();
    assert!(hashes.iter().all(|&h| h == hashes[0]));
    assert_ne!(hashes[0], MappingTable::new().hash());
    assert!(cores.cores.iter().all(Replicator::is_idle));
}

#[test]
fn the_proposer_applies_tentatively_before_asking_the_others() {
    let mut cores = Cores::new(vec![0; 3], &[0, 1, 2]);
    let id = cores.submit(0, map(0x4000, 9), Shape::Unicast);
    let entries = cores.cores[0].replica().entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].pending.map(|(holder, _)| holder), Some(id));
    assert!(cores.cores[1].replica().entries().is_empty());
    let destinations: Vec<CoreId> = cores.queue.iter().map(|&(_, to, _)| to).collect();
    assert_eq!(destinations, [CoreId(1), CoreId(2)]);
}

#[test]
fn an_unmap_completes_only_after_every_holder_unmapped_and_invalidated() {
    // Domains {0, 1} and {2, 3}: core 0 leads its own, core 2 the other.
    let mut cores = Cores::new(vec![0, 0, 1, 1], &[0, 1, 2, 3]);
    cores.submit(0, map(0x4000, 9), Shape::Planned);
    cores.run();
    cores.effects.iter_mut().for_each(Vec::clear);
    let id = cores.submit(3, unmap(0x4000), Shape::Planned);
    let unmapped = [
        Effect::UnmapPage {
            space: SPACE,
            vaddr: 0x4000,
        },
        Effect::InvalidateTlb {
            space: SPACE,
            vaddr: 0x4000,
        },
    ];
    while cores.step() {
        if let Some(done) = cores.completions.iter().find(|c| c.id() == id) {
            assert_eq!(
                *done,
                Completion::Committed {
                    id,
                    report: report(4, 0)
                }
            );
            assert!(
                cores.effects.iter().all(|e| e == &unmapped),
                "completed before every holder invalidated"
            );
        }
    }
    assert_eq!(cores.completions.len(), 2);
    assert!(cores.cores.iter().all(|n| n.replica().entries().is_empty()));
}

#[test]
fn a_protect_remaps_in_place_and_completes_only_after_every_holder_invalidated() {
    let mut cores = Cores::new(vec![0, 0, 1, 1], &[0, 1, 2, 3]);
    cores.submit(0, map(0x4000, 9), Shape::Planned);
    cores.run();
    cores.effects.iter_mut().for_each(Vec::clear);
    let protect = Request::Protect {
        space: SPACE,
        vaddr: 0x4000,
        flags: 0b01,
    };
    let id = cores.submit(2, protect, Shape::Planned);
    let read_only = Mapping {
        paddr: 9 * 0x1000,
        flags: 0b01,
    };
    let protected = [
        Effect::MapPage {
            space: SPACE,
            vaddr: 0x4000,
            mapping: read_only,
        },
        Effect::InvalidateTlb {
            space: SPACE,
            vaddr: 0x4000,
        },
    ];
    while cores.step() {
        if cores.completions.iter().any(|c| c.id() == id) {
            assert!(
                cores.effects.iter().all(|e| e == &protected),
                "completed before every holder invalidated"
            );
        }
    }
    assert_eq!(
        cores.completions.last(),
        Some(&Completion::Committed {
            id,
            report: report(4, 0)
        })
    );
    for core in &cores.cores {
        assert_eq!(core.replica().lookup(SPACE, 0x4000), Some(read_only));
    }
    // A page that is not mapped cannot be protected.
    let nothing = Request::Protect {
        space: SPACE,
        vaddr: 0x8000,
        flags: 0,
    };
    let refused = cores.submit(1, nothing, Shape::Unicast);
    cores.run();
    assert!(matches!(
        cores.completions.last(),
        Some(Completion::Aborted { id, .. }) if *id == refused
    ));
}

#[test]
fn conflicting_maps_submitted_at_once_both_abort_naming_each_other() {
    let mut cores = Cores::new(vec![0; 3], &[0, 1, 2]);
    let first = cores.submit(0, map(0x4000, 9), Shape::Flat);
    let second = cores.submit(1, map(0x4000, 8), Shape::Flat);
    cores.run();
    let conflict = |by, with| AbortReason::Refused {
        by: CoreId(by),
        refusal: Refusal::Conflict { with },
    };
    assert!(cores.completions.contains(&Completion::Aborted {
        id: first,
        reason: conflict(1, second)
    }));
    assert!(cores.completions.contains(&Completion::Aborted {
        id: second,
        reason: conflict(0, first)
    }));
    assert!(
        cores
            .cores
            .iter()
            .all(|n| n.replica().entries().is_empty() && n.is_idle())
    );
}

#[test]
fn a_change_the_replicas_refuse_aborts_with_the_reason() {
    let mut cores = Cores::new(vec![0; 2], &[0, 1]);
    let id = cores.submit(0, unmap(0x4000), Shape::Unicast);
    cores.run();
    let reason = AbortReason::Refused {
        by: CoreId(0),
        refusal: Refusal::NotMapped,
    };
    assert_eq!(cores.completions, [Completion::Aborted { id, reason }]);
}

#[test]
fn a_shootdown_invalidates_on_every_holder_and_a_dead_one_is_reported() {
    let mut cores = Cores::new(vec![0; 4], &[0, 1, 2, 3]);
    let invalidated = Effect::InvalidateTlb {
        space: SPACE,
        vaddr: 0x4000,
    };
    let id = cores.submit(2, shootdown(0x4000), Shape::Flat);
    cores.run();
    assert_eq!(
        cores.completions,
        [Completion::ShootdownDone {
            id,
            report: report(4, 0)
        }]
    );
    assert!(cores.effects.iter().all(|e| e == &[invalidated]));
    // Flat from 2: {2} and {0: 1, 3}; take the aggregator down.
    cores.crash(CoreId(0));
    let id = cores.submit(2, shootdown(0x4000), Shape::Flat);
    cores.run();
    assert_eq!(
        cores.completions[1],
        Completion::ShootdownDone {
            id,
            report: report(3, 1)
        }
    );
    assert_eq!(
        cores.effects.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 2, 2, 2]
    );
}

#[test]
fn a_plan_set_later_routes_by_its_group_and_member_order() {
    let mut cores = Cores::new(vec![0; 5], &[0, 1, 2, 3, 4]);
    let ids = |raw: &[u16]| raw.iter().map(|&n| CoreId(n)).collect::<Vec<_>>();
    let mut plan = TreePlan::new();
    plan.set_root(CoreId(0), vec![ids(&[4, 3]), ids(&[2, 0, 1])]);
    cores
        .cores
        .iter_mut()
        .for_each(|n| n.set_plan(plan.clone()));
    let id = cores.submit(0, shootdown(0x4000), Shape::Planned);
    // 0 leads its own group, so it sends to 4 first, then forwards to 2 and
    // 1 in the plan's order.
    let sent = |cores: &Cores| -> Vec<(CoreId, CoreId)> {
        cores
            .queue
            .iter()
            .map(|&(from, to, _)| (from, to))
            .collect()
    };
    let from_0 = [
        (CoreId(0), CoreId(4)),
        (CoreId(0), CoreId(2)),
        (CoreId(0), CoreId(1)),
    ];
    assert_eq!(sent(&cores), from_0);
    assert!(cores.step());
    assert_eq!(sent(&cores)[2..], [(CoreId(4), CoreId(3))]);
    cores.run();
    assert_eq!(
        cores.completions,
        [Completion::ShootdownDone {
            id,
            report: report(5, 0)
        }]
    );
}

#[test]
fn a_core_that_holds_no_replica_can_still_propose() {
    let mut cores = Cores::new(vec![0; 3], &[0, 1]);
    let id = cores.submit(2, map(0x4000, 9), Shape::Planned);
    cores.run();
    assert_eq!(
        cores.completions,
        [Completion::Committed {
            id,
            report: report(2, 0)
        }]
    );
    assert!(cores.cores[2].replica().entries().is_empty() && cores.effects[2].is_empty());
    assert_eq!(
        cores.cores[0].replica().hash(),
        cores.cores[1].replica().hash()
    );
}

#[test]
fn requests_for_unknown_spaces_or_unaligned_addresses_are_refused() {
    let mut core = Replicator::new(
        CoreId(0),
        Config {
            timeouts: TIMEOUTS,
            plan: TreePlan::new(),
        },
        MappingTable::new(),
    );
    core.add_space(SPACE, &[CoreId(0)]);
    let mut out = Actions::default();
    let other = Request::Unmap {
        space: SpaceId(8),
        vaddr: 0,
    };
    assert_eq!(
        core.submit(other, Shape::Unicast, &mut out),
        Err(SubmitError::UnknownSpace)
    );
    let unaligned = Request::Map {
        space: SPACE,
        vaddr: 0x4000,
        mapping: Mapping {
            paddr: 0x10,
            flags: 0,
        },
    };
    assert_eq!(
        core.submit(unaligned, Shape::Unicast, &mut out),
        Err(SubmitError::Misaligned)
    );
    assert_eq!(out, Actions::default());
}
