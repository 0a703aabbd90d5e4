use super::*;

type T = Table<&'static str, u32>;

fn table() -> T {
    Table::new(3)
}

#[test]
fn ids_name_their_core_and_are_not_reused_while_in_use() {
    let mut table = table();
    let a = table.spawn("a", Owner::Kernel(1), "a").unwrap();
    let b = table.spawn("b", Owner::Kernel(2), "b").unwrap();
    assert_ne!(a, b);
    assert_eq!((a.core(), b.core()), (3, 3));
    assert_ne!(a.0, 0);
    // The count wraps: an id still in use is skipped.
    table.next = (1 << (32 - CORE_BITS)) - 1;
    let c = table.spawn("c", Owner::Kernel(3), "c").unwrap();
    let d = table.spawn("d", Owner::Kernel(4), "d").unwrap();
    assert_eq!(c.0 >> CORE_BITS, (1 << (32 - CORE_BITS)) - 1);
    assert_eq!(d.0 >> CORE_BITS, 3, "1 and 2 are a and b's");
}

#[test]
fn turns_go_round_and_a_yield_goes_to_the_back() {
    let mut table = table();
    let a = table.spawn("a", Owner::Kernel(0), "a").unwrap();
    let b = table.spawn("b", Owner::Kernel(0), "b").unwrap();
    let mut order = Vec::new();
    for _ in 0..4 {
        let (pid, machine) = table.take_turn().unwrap();
        order.push((pid, *machine));
        assert_eq!(table.running(), Some(pid));
        table.preempted(pid);
    }
    assert_eq!(order, [(a, "a"), (b, "b"), (a, "a"), (b, "b")]);
    assert_eq!(table.list()[0].turns, 2);
}

#[test]
fn a_parent_waits_for_its_child_and_reaps_it() {
    let mut table = table();
    let parent = table.spawn("parent", Owner::Kernel(7), "p").unwrap();
    let (running, _) = table.take_turn().unwrap();
    assert_eq!(running, parent);
    let child = table.spawn("child", Owner::Parent(parent), "c").unwrap();
    assert_eq!(table.wait(parent, child), Ok(None));
    table.blocked(parent, child);
    assert_eq!(
        table.list()[0].state,
        State::Waiting(child),
        "the parent, first by id, waits"
    );
    // Only the child is ready.
    let (next, _) = table.take_turn().unwrap();
    assert_eq!(next, child);
    assert!(table.take_turn().is_none());
    let ended = table.end(child, Exit::Status(5));
    assert_eq!((ended.machine, ended.report), ("c", None));
    // The parent is ready again; its wait now finds the child ended.
    let (next, _) = table.take_turn().unwrap();
    assert_eq!(next, parent);
    assert_eq!(table.wait(parent, child), Ok(Some(Exit::Status(5))));
    assert_eq!(table.wait(parent, child), Err(ProcessError::NoSuchProcess));
    let ended = table.end(parent, Exit::Status(0));
    assert_eq!(ended.report, Some(Owner::Kernel(7)));
    assert!(table.is_empty(), "both are reaped");
}

#[test]
fn only_a_parent_may_wait_for_a_process() {
    let mut table = table();
    let a = table.spawn("a", Owner::Kernel(0), "a").unwrap();
    let b = table.spawn("b", Owner::Kernel(0), "b").unwrap();
    let child = table.spawn("c", Owner::Parent(a), "c").unwrap();
    assert_eq!(table.wait(b, child), Err(ProcessError::NotAChild));
    assert_eq!(table.wait(a, b), Err(ProcessError::NotAChild));
    assert_eq!(table.wait(a, Pid(12345)), Err(ProcessError::NoSuchProcess));
}

#[test]
fn a_parent_s_end_orphans_its_live_children_and_reaps_its_ended_ones() {
    let mut table = table();
    let parent = table.spawn("parent", Owner::Kernel(0), "p").unwrap();
    let live = table.spawn("live", Owner::Parent(parent), "l").unwrap();
    let dead = table.spawn("dead", Owner::Parent(parent), "d").unwrap();
    table.end(dead, Exit::Status(1));
    assert_eq!(table.len(), 3, "an ended child waits for its parent");
    table.end(parent, Exit::Killed);
    let pids: Vec<Pid> = table.list().iter().map(|info| info.pid).collect();
    assert_eq!(pids, [live]);
    assert_eq!(table.list()[0].parent, None);
    let ended = table.end(live, Exit::Status(0));
    assert_eq!(ended.report, Some(Owner::Orphan));
    assert!(table.is_empty());
}

#[test]
fn a_kill_ends_a_process_between_turns_and_wakes_its_waiting_parent() {
    let mut table = table();
    let parent = table.spawn("parent", Owner::Kernel(0), "p").unwrap();
    table.take_turn().unwrap();
    let child = table.spawn("child", Owner::Parent(parent), "c").unwrap();
    table.blocked(parent, child);
    let ended = table.kill(child).unwrap();
    assert_eq!((ended.exit, ended.machine), (Exit::Killed, "c"));
    let machines: Vec<(Pid, &str)> = table.machines().map(|(pid, m)| (pid, *m)).collect();
    assert_eq!(machines, [(parent, "p")], "an ended process has no machine");
    assert_eq!(table.kill(child), Err(ProcessError::Ended));
    let (next, _) = table.take_turn().unwrap();
    assert_eq!(
        next, parent,
        "the parent is ready, the child is off the queue"
    );
    assert_eq!(table.kill(parent), Err(ProcessError::Running));
    assert!(table.take_turn().is_none());
    assert_eq!(table.wait(parent, child), Ok(Some(Exit::Killed)));
    assert_eq!(table.kill(Pid(9)), Err(ProcessError::NoSuchProcess));
}

#[test]
fn a_killed_ready_process_leaves_the_queue() {
    let mut table = table();
    let a = table.spawn("a", Owner::Kernel(0), "a").unwrap();
    let b = table.spawn("b", Owner::Kernel(0), "b").unwrap();
    table.kill(a).unwrap();
    assert_eq!(table.take_turn().map(|(pid, _)| pid), Some(b));
    table.preempted(b);
    assert_eq!(table.take_turn().map(|(pid, _)| pid), Some(b));
}

#[test]
fn a_full_core_refuses_a_spawn() {
    let mut table = table();
    for _ in 0..MAX_PROCESSES {
        table.spawn("p", Owner::Kernel(0), "p").unwrap();
    }
    assert_eq!(
        table.spawn("one more", Owner::Kernel(0), "p"),
        Err(SpawnError::Full)
    );
}

#[test]
fn a_process_blocked_on_a_change_runs_again_when_woken_and_only_then() {
    let mut table = table();
    let a = table.spawn("a", Owner::Kernel(0), "a").unwrap();
    table.take_turn().unwrap();
    table.block(a);
    assert_eq!(table.state(a), Some(State::Blocked));
    assert!(table.take_turn().is_none());
    table.wake(a);
    table.wake(a);
    assert_eq!(table.take_turn().map(|(pid, _)| pid), Some(a));
    assert!(table.take_turn().is_none(), "woken twice, queued once");
    table.preempted(a);
    table.wake(a);
    assert_eq!(table.take_turn().map(|(pid, _)| pid), Some(a));
    assert!(
        table.take_turn().is_none(),
        "a ready process is not woken again"
    );
    let b = table.spawn("b", Owner::Kernel(0), "b").unwrap();
    table.take_turn().unwrap();
    table.block(b);
    assert_eq!(table.kill(b).map(|ended| ended.exit), Ok(Exit::Killed));
}

#[test]
fn a_held_process_runs_only_once_started_and_an_adopted_one_keeps_its_id() {
    let mut table = table();
    let held = table.spawn_held("held", Owner::Kernel(0), "h").unwrap();
    assert!(table.take_turn().is_none(), "held");
    assert_eq!(table.state(held), Some(State::Held));
    table.start(held);
    assert_eq!(table.take_turn().map(|(pid, _)| pid), Some(held));
    table.start(held);
    table.preempted(held);
    assert_eq!(table.take_turn().map(|(pid, _)| pid), Some(held));
    assert!(table.take_turn().is_none(), "started twice, queued once");
    // Core 5's process 5125, adopted here as a dispatcher.
    let theirs = Pid(5 << CORE_BITS | 5);
    table
        .adopt(theirs, "theirs", Owner::Kernel(1), "t")
        .unwrap();
    assert_eq!(
        table.adopt(theirs, "twice", Owner::Kernel(1), "t"),
        Err(SpawnError::Full)
    );
    assert_eq!(
        table
            .end_between_turns(theirs, Exit::Killed)
            .map(|ended| ended.pid),
        Ok(theirs)
    );
    assert_eq!(
        table.end_between_turns(held, Exit::Killed).map(|_| ()),
        Err(ProcessError::Running)
    );
}

#[test]
fn a_parent_waiting_for_a_child_elsewhere_is_woken_for_that_child_alone() {
    let mut table = table();
    let parent = table.spawn("parent", Owner::Kernel(0), "p").unwrap();
    let local = table.spawn("local", Owner::Parent(parent), "l").unwrap();
    assert_eq!(table.parent_of(local), Some(parent));
    assert_eq!(table.parent_of(parent), None);
    let (running, _) = table.take_turn().unwrap();
    assert_eq!(running, parent);
    let elsewhere = Pid(7 << CORE_BITS | 9);
    table.blocked(parent, elsewhere);
    table.wake_waiting(parent, local);
    assert_eq!(
        table.state(parent),
        Some(State::Waiting(elsewhere)),
        "another child"
    );
    table.wake_waiting(parent, elsewhere);
    assert_eq!(table.state(parent), Some(State::Ready));
}
