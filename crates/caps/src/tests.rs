use super::*;
use atoll_abi::{
    HANDED, RIGHT_CONNECT, RIGHT_NOTIFY, RIGHT_WAIT, RIGHTS_ALL, SELF_DISPATCHER, SELF_PROCESS,
    SELF_SPACE,
};

fn dispatcher(pid: u32) -> Object {
    Object::Dispatcher {
        pid,
        index: 0,
        count: 1,
        core: 3,
    }
}

fn endpoint() -> Object {
    Object::Endpoint {
        core: 2,
        pid: 0x802,
        address: 1 << 39,
    }
}

#[test]
fn a_table_starts_with_its_own_space_process_and_dispatcher() {
    let mut ids = Ids::new(3, 0);
    let table = Table::starting(&mut ids, 0x403, dispatcher(0x403));
    assert_eq!(table.len(), 3);
    assert_eq!(
        table.object(SELF_SPACE, CAP_SPACE, RIGHT_MAP | RIGHT_READ),
        Ok(Object::Space { pid: 0x403 })
    );
    assert_eq!(
        table.object(SELF_PROCESS, CAP_PROCESS, RIGHT_KILL),
        Ok(Object::Process { pid: 0x403 })
    );
    // Its own process is not its child: no wait.
    assert_eq!(
        table.object(SELF_PROCESS, CAP_PROCESS, RIGHT_WAIT),
        Err(Error::NoRight)
    );
    assert_eq!(
        table.object(SELF_DISPATCHER, CAP_SPACE, 0),
        Err(Error::WrongCapability)
    );
    assert_eq!(table.get(HANDED), Err(Error::NoSuchCapability));
    assert_eq!(table.get(MAX_CAPS), Err(Error::NoSuchCapability));
    assert_eq!(table.get(u64::MAX), Err(Error::NoSuchCapability));
    let ids: Vec<CapId> = table.iter().map(|(_, cap)| cap.id).collect();
    assert!(ids.iter().all(|id| id >> 48 == 3), "ids carry their core");
    assert!(ids.windows(2).all(|pair| pair[0] != pair[1]));
}

#[test]
fn a_copy_has_no_more_rights_and_its_lineage_and_depth_are_kept() {
    let mut ids = Ids::new(1, 0);
    let mut table = Table::starting(&mut ids, 0x401, dispatcher(0x401));
    let read = table
        .copy(&mut ids, SELF_SPACE, RIGHT_READ | RIGHT_COPY)
        .unwrap();
    assert_eq!(
        table.object(read.into(), CAP_SPACE, RIGHT_READ),
        Ok(Object::Space { pid: 0x401 })
    );
    assert_eq!(
        table.object(read.into(), CAP_SPACE, RIGHT_MAP),
        Err(Error::NoRight)
    );
    assert_eq!(
        table.copy(&mut ids, read.into(), RIGHT_MAP),
        Err(Error::NoRight),
        "a copy gains no right"
    );
    let bare = table.copy(&mut ids, read.into(), RIGHT_READ).unwrap();
    assert_eq!(
        table.copy(&mut ids, bare.into(), RIGHT_READ),
        Err(Error::NoRight),
        "without RIGHT_COPY it stays where it is"
    );
    let root = table.get(SELF_SPACE).unwrap().id;
    let mid = table.get(read.into()).unwrap().id;
    assert_eq!(table.get(bare.into()).unwrap().lineage.ids(), &[root, mid]);
    // Copies of copies end at the depth.
    let mut slot = u64::from(read);
    for _ in 1..MAX_DEPTH {
        slot = table
            .copy(&mut ids, slot, RIGHT_READ | RIGHT_COPY)
            .unwrap()
            .into();
    }
    assert_eq!(table.get(slot).unwrap().lineage.ids().len(), DEPTH);
    assert_eq!(table.copy(&mut ids, slot, RIGHT_READ), Err(Error::TooDeep));
}

#[test]
fn a_full_table_refuses_and_loses_nothing() {
    let mut ids = Ids::new(0, 0);
    let mut table = Table::starting(&mut ids, 0x400, dispatcher(0x400));
    for _ in 3..MAX_CAPS {
        table.copy(&mut ids, SELF_PROCESS, RIGHT_KILL).unwrap();
    }
    assert_eq!(table.len(), SLOTS);
    let before = table.clone();
    assert_eq!(
        table.copy(&mut ids, SELF_PROCESS, RIGHT_KILL),
        Err(Error::TableFull)
    );
    let sent = table.send(SELF_SPACE, RIGHT_READ).unwrap();
    assert_eq!(table.grant(&mut ids, sent), Err(Error::TableFull));
    assert_eq!(table.receive(), None);
    assert!(table.iter().eq(before.iter()));
    table.delete(7).unwrap();
    assert_eq!(table.delete(7), Err(Error::NoSuchCapability));
    assert_eq!(
        table.copy(&mut ids, SELF_PROCESS, RIGHT_KILL),
        Ok(7),
        "the freed slot"
    );
}

#[test]
fn grants_are_received_in_order_and_a_deleted_one_is_not() {
    let mut ids = Ids::new(2, 0);
    let mut from = Table::starting(&mut ids, 0x802, dispatcher(0x802));
    let end = from.mint(&mut ids, endpoint(), RIGHTS_ALL).unwrap();
    let mut ids_there = Ids::new(5, 0);
    let mut to = Table::starting(&mut ids_there, 0xc05, dispatcher(0xc05));
    let first = from.send(end.into(), RIGHT_CONNECT).unwrap();
    let second = from.send(SELF_PROCESS, RIGHT_KILL).unwrap();
    let third = from.send(SELF_SPACE, RIGHT_READ).unwrap();
    let a = to.grant(&mut ids_there, first).unwrap();
    let b = to.grant(&mut ids_there, second).unwrap();
    let c = to.grant(&mut ids_there, third).unwrap();
    to.delete(b.into()).unwrap();
    assert_eq!(to.receive(), Some(a));
    assert_eq!(to.receive(), Some(c));
    assert_eq!(to.receive(), None);
    assert_eq!(
        to.object(a.into(), CAP_ENDPOINT, RIGHT_CONNECT),
        Ok(endpoint())
    );
    assert_eq!(
        to.object(a.into(), CAP_ENDPOINT, RIGHT_NOTIFY),
        Err(Error::NoRight)
    );
    assert_eq!(
        to.get(a.into()).unwrap().id >> 48,
        5,
        "it takes an id where it lands"
    );
}

#[test]
fn revoking_deletes_every_descendant_everywhere_keeps_the_root_and_buries_its_id() {
    let mut ids = Ids::new(1, 0);
    let mut home = Table::starting(&mut ids, 0x401, dispatcher(0x401));
    let child = home
        .mint(&mut ids, Object::Process { pid: 0x802 }, RIGHTS_ALL)
        .unwrap();
    let copy = home
        .copy(&mut ids, child.into(), RIGHT_KILL | RIGHT_COPY)
        .unwrap();
    let unrelated = home.copy(&mut ids, SELF_PROCESS, RIGHT_KILL).unwrap();
    // A grant to another core's process, and a grant onward from there.
    let mut ids_b = Ids::new(2, 0);
    let mut b = Table::starting(&mut ids_b, 0x802, dispatcher(0x802));
    let on_b = b
        .grant(
            &mut ids_b,
            home.send(copy.into(), RIGHT_KILL | RIGHT_COPY).unwrap(),
        )
        .unwrap();
    let mut ids_c = Ids::new(3, 0);
    let mut c = Table::starting(&mut ids_c, 0xc03, dispatcher(0xc03));
    let in_flight = b.send(on_b.into(), RIGHT_KILL).unwrap();

    let root = home.get(child.into()).unwrap().id;
    assert_eq!(home.revoke(root).len(), 1, "the copy here");
    assert_eq!(b.revoke(root).len(), 1, "the grant there");
    assert!(c.revoke(root).is_empty());
    let old = home.renew(&mut ids, child.into()).unwrap();
    assert_eq!(old, root);
    let mut tombstones = Tombstones::default();
    tombstones.bury(old, 1);
    assert_eq!(
        tombstones.buried(old),
        Some(1),
        "asked again, it answers the same"
    );
    assert!(
        tombstones.refuse(&in_flight),
        "a grant on its way lands nowhere"
    );
    assert!(home.get(child.into()).is_ok(), "the root stays");
    assert!(home.get(unrelated.into()).is_ok());
    assert_eq!(home.get(copy.into()), Err(Error::NoSuchCapability));
    assert_eq!(b.get(on_b.into()), Err(Error::NoSuchCapability));
    assert_eq!(b.receive(), None, "nor is it still to be received");
    // The renewed root's new copies are not buried.
    let again = home.send(child.into(), RIGHT_KILL).unwrap();
    assert!(!tombstones.refuse(&again));
    assert_eq!(c.grant(&mut ids_c, again).map(|_| ()), Ok(()));
}

#[test]
fn tombstones_keep_the_newest() {
    let mut tombstones = Tombstones::default();
    let sent = |id| Sent {
        object: Object::Process { pid: 1 },
        rights: 0,
        lineage: Lineage::default().then(id).unwrap(),
    };
    for id in 1..=TOMBSTONES as u64 + 1 {
        tombstones.bury(id, 0);
    }
    assert!(!tombstones.refuse(&sent(1)));
    assert!(tombstones.refuse(&sent(2)));
    assert!(tombstones.refuse(&sent(TOMBSTONES as u64 + 1)));
}

#[test]
fn sent_capabilities_round_trip_and_bad_bytes_are_refused() {
    let mut ids = Ids::new(9, 0);
    let mut table = Table::starting(&mut ids, 0x409, dispatcher(0x409));
    let end = table.mint(&mut ids, endpoint(), RIGHTS_ALL).unwrap();
    let frame = table
        .mint(
            &mut ids,
            Object::Frame {
                core: 9,
                frame: 0x7000,
            },
            RIGHTS_ALL,
        )
        .unwrap();
    for slot in [
        SELF_SPACE,
        SELF_PROCESS,
        SELF_DISPATCHER,
        end.into(),
        frame.into(),
    ] {
        let sent = table.send(slot, RIGHT_COPY).unwrap();
        let bytes = sent.encode();
        assert!(bytes.len() <= SENT_BYTES);
        assert_eq!(Sent::decode(&bytes), Some(sent));
        assert_eq!(Sent::decode(&bytes[..bytes.len() - 1]), None, "torn");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Sent::decode(&longer), None, "trailing bytes");
    }
    let mut bytes = table.send(SELF_PROCESS, RIGHT_KILL).unwrap().encode();
    bytes[0] = 9;
    assert_eq!(Sent::decode(&bytes), None, "an unknown type");
    bytes[0] = CAP_PROCESS as u8;
    bytes[3 + 4] = 1;
    assert_eq!(Sent::decode(&bytes), None, "a process id past 32 bits");
    assert_eq!(Sent::decode(&[]), None);
    assert_eq!(Sent::decode(&[CAP_SPACE as u8, 0, 200]), None, "too deep");
}

#[test]
fn a_revocation_ends_once_every_core_answered_or_left_and_asks_a_member_again() {
    let mut revocation = Revocation::new(7, 0, 1, [1, 2, 3]);
    revocation.answered(2, 1);
    assert!(!revocation.is_done());
    // No answer in time from a core still in the view: ask it again.
    assert_eq!(revocation.failed(3, true), Unanswered::AskAgain);
    assert!(!revocation.is_done());
    // Core 1 left the view before it answered: passed over.
    assert_eq!(revocation.failed(1, false), Unanswered::PassedOver);
    assert!(!revocation.is_done(), "core 3 has not answered yet");
    revocation.answered(3, 2);
    assert!(revocation.is_done());
    assert_eq!(revocation.deleted(), 4);
    assert_eq!(revocation.passed_over().collect::<Vec<_>>(), [1]);
    // An answer that comes twice (a call made again) counts once.
    revocation.answered(3, 2);
    assert_eq!(revocation.deleted(), 4);
    assert!(Revocation::new(7, 0, 0, []).is_done());
    // A core that joins the view meanwhile is asked too, once.
    let mut revocation = Revocation::new(7, 0, 0, [1]);
    assert!(!revocation.include(0), "this core revoked its own already");
    assert!(!revocation.include(1));
    assert!(revocation.include(4));
    assert!(!revocation.include(4));
    revocation.answered(1, 0);
    assert!(!revocation.is_done(), "core 4 has not answered");
    revocation.answered(4, 3);
    assert!(revocation.is_done());
    assert_eq!(revocation.deleted(), 3);
}

#[test]
fn a_frame_goes_back_once_no_capability_names_it_and_no_page_maps_it() {
    let mut frames = Frames::default();
    assert_eq!(
        frames.unmapped(0x5000),
        LetGo::NotCounted,
        "a map's own frame"
    );
    frames.allocated(0x5000);
    frames.named(0x5000); // a copy
    frames.mapped(0x5000);
    frames.mapped(0x5000); // mapped by two processes
    assert_eq!(frames.unnamed(0x5000), LetGo::Kept);
    assert_eq!(frames.unnamed(0x5000), LetGo::Kept, "still mapped");
    assert_eq!(frames.unmapped(0x5000), LetGo::Kept);
    assert!(frames.counts(0x5000));
    assert_eq!(frames.unmapped(0x5000), LetGo::Free);
    assert!(!frames.counts(0x5000));
    assert_eq!(frames.unmapped(0x5000), LetGo::NotCounted, "freed once");
    // A frame named and never mapped goes with its last capability.
    frames.allocated(0x6000);
    assert_eq!(frames.unnamed(0x6000), LetGo::Free);
}

#[test]
fn a_frame_capability_decodes_only_with_a_page_aligned_frame() {
    let sent = Sent {
        object: Object::Frame {
            core: 3,
            frame: 0x1234_5000,
        },
        rights: atoll_abi::RIGHT_MAP,
        lineage: Lineage::default(),
    };
    let mut bytes = sent.encode();
    assert_eq!(Sent::decode(&bytes), Some(sent));
    bytes[3] = 1;
    assert_eq!(Sent::decode(&bytes), None);
}

#[test]
fn ids_of_a_core_s_incarnations_differ_and_forgotten_objects_go() {
    let (mut first, mut second) = (Ids::new(3, 0), Ids::new(3, 1));
    assert_ne!(first.fresh(), second.fresh(), "a core that started again");
    let mut ids = Ids::new(1, 0);
    let mut table = Table::starting(&mut ids, 0x401, dispatcher(0x401));
    let far = Object::Process { pid: 0x802 };
    let slot = table.mint(&mut ids, far, RIGHTS_ALL).unwrap();
    let gone = table.forget(|object| *object == far);
    assert_eq!(gone.len(), 1);
    assert_eq!(table.get(slot.into()), Err(Error::NoSuchCapability));
    assert_eq!(table.len(), 3);
}
