//! The query language through the public API: joins, comparisons,
//! arithmetic, recursion, and topology questions written as rules.

use atoll_skb::{Answer, Error, KnowledgeBase, Value};

fn knowledge_base(program: &str) -> KnowledgeBase {
    let mut kb = KnowledgeBase::new();
    kb.load(program).unwrap();
    kb
}

/// The values of one variable across all answers, in answer order.
fn column(answers: &[Answer], variable: &str) -> Vec<Value> {
    answers
        .iter()
        .map(|answer| answer[variable].clone())
        .collect()
}

fn ints(values: &[i64]) -> Vec<Value> {
    values.iter().copied().map(Value::Int).collect()
}

/// A two-node machine: cores 0-3 on node 0, cores 4-7 on node 1, listed out
/// of order so that "lowest" has to be computed, with a latency matrix
/// where crossing nodes costs more.
const TWO_NODE_MACHINE: &str = "
    core_node(2, 0). core_node(0, 0). core_node(3, 0). core_node(1, 0).
    core_node(5, 1). core_node(7, 1). core_node(4, 1). core_node(6, 1).
    link(0, 1). link(1, 0).
";

#[test]
fn joins_match_shared_variables() {
    let mut kb = knowledge_base(TWO_NODE_MACHINE);
    kb.load("same_node(A, B) :- core_node(A, N), core_node(B, N), A != B.")
        .unwrap();
    let answers = kb.query("same_node(0, X)").unwrap();
    assert_eq!(column(&answers, "X"), ints(&[1, 2, 3]));
    assert!(answers.iter().all(|answer| answer.len() == 1));
    let answers = kb.query("same_node(5, X), core_node(X, N)").unwrap();
    assert_eq!(column(&answers, "X"), ints(&[4, 6, 7]));
    assert_eq!(column(&answers, "N"), ints(&[1, 1, 1]));
}

#[test]
fn comparisons_filter_bindings() {
    let mut kb = knowledge_base("n(1). n(2). n(3). n(4). name(intel). name(amd).");
    let cases = [
        ("n(X), X < 3", vec![1, 2]),
        ("n(X), X <= 3", vec![1, 2, 3]),
        ("n(X), X == 3", vec![3]),
        ("n(X), X != 3", vec![1, 2, 4]),
        ("n(X), X > 3", vec![4]),
        ("n(X), X >= 3", vec![3, 4]),
        ("n(X), n(Y), X < Y, Y == 2", vec![1]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            column(&kb.query(query).unwrap(), "X"),
            ints(&expected),
            "{query}"
        );
    }
    // Symbols compare with symbols; an ordering between a symbol and an
    // integer never holds.
    let answers = kb.query("name(S), S < intel").unwrap();
    assert_eq!(column(&answers, "S"), vec![Value::from("amd")]);
    assert!(kb.query("name(S), n(X), S > X").unwrap().is_empty());
}

#[test]
fn arithmetic_computes_and_checks_values() {
    let mut kb = knowledge_base(
        "latency(0, 1, 800). latency(1, 2, 300). latency(0, 2, 2000).
         via(A, C, D) :- latency(A, B, X), latency(B, C, Y), D = X + Y.",
    );
    let answers = kb.query("via(0, 2, D)").unwrap();
    assert_eq!(column(&answers, "D"), ints(&[1100]));
    // Arithmetic on both sides of a comparison, with `*` binding tighter.
    let answers = kb
        .query("latency(0, C, X), latency(0, 1, Y), X - Y * 2 > 0")
        .unwrap();
    assert_eq!(column(&answers, "C"), ints(&[2]));
    // `=` on bound values tests equality.
    let answers = kb.query("latency(A, B, X), X = 100 * 3").unwrap();
    assert_eq!(column(&answers, "A"), ints(&[1]));
    assert_eq!(
        kb.query("D = 2 - -3").unwrap(),
        vec![Answer::from([("D".into(), Value::Int(5))])]
    );
}

#[test]
fn recursion_reaches_the_transitive_closure() {
    let mut kb = knowledge_base(
        "edge(1, 2). edge(2, 3). edge(3, 1). edge(4, 5).
         reach(X, Y) :- edge(X, Y).
         reach(X, Z) :- reach(X, Y), reach(Y, Z).",
    );
    assert_eq!(
        column(&kb.query("reach(1, X)").unwrap(), "X"),
        ints(&[1, 2, 3])
    );
    assert_eq!(column(&kb.query("reach(4, X)").unwrap(), "X"), ints(&[5]));
    assert!(kb.query("reach(5, X)").unwrap().is_empty());
    // A new fact invalidates what was derived before.
    kb.load("edge(5, 1).").unwrap();
    assert_eq!(
        column(&kb.query("reach(4, X)").unwrap(), "X"),
        ints(&[1, 2, 3, 5])
    );
}

#[test]
fn topology_questions_are_rules() {
    let mut kb = knowledge_base(TWO_NODE_MACHINE);
    kb.load(
        "% A node's aggregator is its lowest-numbered core: one with no lower
         % core beside it.
         has_lower(C) :- core_node(C, N), core_node(L, N), L < C.
         aggregator(N, C) :- core_node(C, N), not has_lower(C).
         % Each core reports to its node's aggregator; aggregators to core 0's.
         parent(C, A) :- core_node(C, N), aggregator(N, A), C != A.
         parent(A, R) :- aggregator(N, A), core_node(0, M), aggregator(M, R), A != R.
         % Nodes reachable over links, through any number of hops.
         reachable(A, B) :- link(A, B).
         reachable(A, C) :- reachable(A, B), link(B, C).
         % Cores that reach core 0 up the tree.
         reaches_root(C) :- parent(C, 0).
         reaches_root(C) :- parent(C, P), reaches_root(P).",
    )
    .unwrap();
    let answers = kb.query("aggregator(N, A)").unwrap();
    assert_eq!(column(&answers, "N"), ints(&[0, 1]));
    assert_eq!(column(&answers, "A"), ints(&[0, 4]));
    assert_eq!(
        column(&kb.query("parent(C, 4)").unwrap(), "C"),
        ints(&[5, 6, 7])
    );
    assert_eq!(column(&kb.query("parent(4, P)").unwrap(), "P"), ints(&[0]));
    assert_eq!(
        column(&kb.query("reaches_root(C)").unwrap(), "C"),
        ints(&[1, 2, 3, 4, 5, 6, 7])
    );
    assert_eq!(
        column(&kb.query("reachable(0, B)").unwrap(), "B"),
        ints(&[0, 1])
    );
    // A query without variables that holds has one empty answer, and one
    // that does not has none.
    assert_eq!(kb.query("reachable(1, 1)").unwrap(), vec![Answer::new()]);
    assert!(kb.query("reachable(1, 2)").unwrap().is_empty());
}

#[test]
fn negation_holds_when_no_fact_matches() {
    let mut kb = knowledge_base(TWO_NODE_MACHINE);
    kb.load("core_node(8, 2).").unwrap();
    // Nodes without links; `_` in a negated atom matches anything.
    let answers = kb.query("core_node(C, N), not link(N, _)").unwrap();
    assert_eq!(column(&answers, "C"), ints(&[8]));
    let answers = kb
        .query("core_node(C, 0), not core_node(C, 1), C > 2")
        .unwrap();
    assert_eq!(column(&answers, "C"), ints(&[3]));
}

#[test]
fn negation_cycles_are_rejected_at_the_rule_that_closes_them() {
    let mut kb = knowledge_base("p(X) :- e(X), not q(X).");
    let Err(Error::Syntax(error)) = kb.load("e(1).\nq(X) :- e(X), not p(X).") else {
        panic!()
    };
    assert_eq!((error.position.line, error.position.column), (2, 1));
    assert!(
        error.reason.contains("`q` depend on its own negation"),
        "{}",
        error.reason
    );
    // Nothing of the rejected program was kept.
    assert!(kb.query("e(X)").unwrap().is_empty());
}

#[test]
fn arities_are_checked_at_load_and_query() {
    let mut kb = knowledge_base("core_node(0, 0).");
    let Err(Error::Syntax(error)) = kb.load("ok(1).\ncore_node(1).") else {
        panic!()
    };
    assert_eq!((error.position.line, error.position.column), (2, 1));
    assert!(
        error.reason.contains("has 2 arguments elsewhere, 1 here"),
        "{}",
        error.reason
    );
    // The failed load added nothing, not even the well-formed fact before it.
    assert!(matches!(kb.query("ok(X)"), Err(Error::Syntax(_))));
    assert!(matches!(
        kb.facts(Some("ok")),
        Err(Error::UnknownPredicate { .. })
    ));
    let Err(Error::Syntax(error)) = kb.query("core_node(X, Y, Z)") else {
        panic!()
    };
    assert_eq!(error.position.offset, 0);
    assert_eq!(
        kb.add_fact("core_node", vec![Value::Int(1)]),
        Err(Error::Arity {
            predicate: "core_node".into(),
            expected: 2,
            found: 1
        })
    );
}

#[test]
fn facts_added_from_rust_are_queried_like_loaded_ones() {
    let mut kb = KnowledgeBase::new();
    kb.add_fact("vendor", vec![Value::Int(0), "GenuineIntel".into()])
        .unwrap();
    kb.load("intel(C) :- vendor(C, \"GenuineIntel\").").unwrap();
    assert_eq!(column(&kb.query("intel(C)").unwrap(), "C"), ints(&[0]));
}

#[test]
fn fact_limit_stops_unbounded_recursion() {
    let mut kb = KnowledgeBase::with_fact_limit(50);
    kb.load("n(0). n(Y) :- n(X), Y = X + 1.").unwrap();
    assert_eq!(kb.query("n(X)"), Err(Error::TooManyFacts { limit: 50 }));
    kb.load("bounded(X) :- n(X), X < 10.").unwrap();
    assert!(kb.query("bounded(X)").is_err());
}
