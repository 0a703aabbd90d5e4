//! Listing facts, and printing them as program text that loads back.

use atoll_skb::{Error, Fact, KnowledgeBase, Value, topology};
use proptest::prelude::*;

fn listed(facts: &[(String, Vec<Value>)]) -> Vec<String> {
    facts
        .iter()
        .map(|(predicate, values)| Fact { predicate, values }.to_string())
        .collect()
}

#[test]
fn facts_of_a_predicate_include_derived_ones() {
    let mut kb = KnowledgeBase::new();
    kb.load(
        "core_node(3, 1). core_node(0, 0). core_node(1, 0).
         same_node(A, B) :- core_node(A, N), core_node(B, N), A != B.
         lonely(C) :- core_node(C, _), not same_node(C, _).",
    )
    .unwrap();
    assert_eq!(
        listed(&kb.facts(Some("same_node")).unwrap()),
        ["same_node(0, 1)", "same_node(1, 0)"]
    );
    assert_eq!(listed(&kb.facts(Some("lonely")).unwrap()), ["lonely(3)"]);
    // Stored facts alone, ordered by predicate and then by arguments.
    kb.add_fact(
        "cpu",
        vec![
            0.into(),
            "AuthenticAMD".into(),
            25.into(),
            17.into(),
            1.into(),
        ],
    )
    .unwrap();
    assert_eq!(
        listed(&kb.facts(None).unwrap()),
        [
            "core_node(0, 0)",
            "core_node(1, 0)",
            "core_node(3, 1)",
            "cpu(0, \"AuthenticAMD\", 25, 17, 1)",
        ]
    );
}

#[test]
fn known_predicates_without_facts_are_empty_and_unknown_ones_fail() {
    let mut kb = KnowledgeBase::new();
    kb.load("core_node(0, 0). reach(A, B) :- link(A, B).")
        .unwrap();
    // Mentioned by a rule's head or body, but holding for nothing.
    assert_eq!(kb.facts(Some("reach")).unwrap(), []);
    assert_eq!(kb.facts(Some("link")).unwrap(), []);
    let Err(Error::UnknownPredicate { predicate, known }) = kb.facts(Some("core_nod")) else {
        panic!()
    };
    assert_eq!(predicate, "core_nod");
    assert_eq!(known, ["core_node", "link", "reach"]);
    // A query does not make a predicate known, not even one it fails on.
    assert!(kb.query("urpc_rtt(0, B, L)").is_err());
    assert!(matches!(
        kb.facts(Some("urpc_rtt")),
        Err(Error::UnknownPredicate { .. })
    ));
    // Shown, the error names the predicate meant when one is a typo away...
    for name in ["core_idle", "cpu", "mem", "span", "zone"] {
        kb.load(&format!("{name}(1).")).unwrap();
    }
    let error = kb.facts(Some("core_nod")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no fact or rule mentions `core_nod`; did you mean `core_node`?"
    );
    // ...and otherwise leads with the nearest names.
    let error = kb.facts(Some("core_nodes_x")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no fact or rule mentions `core_nodes_x`; known predicates include \
         `core_node`, `core_idle`, `zone`, `reach`, `cpu` and 3 more"
    );
    let error = kb.facts(Some("spa")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no fact or rule mentions `spa`; did you mean `span`?"
    );
    let error = KnowledgeBase::new().facts(Some("core")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no fact or rule mentions `core`; the knowledge base is empty"
    );
}

/// Values of every kind, symbols with the characters that need escaping
/// among them, and the extreme integers.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        prop::sample::select(vec![i64::MIN, i64::MAX, 0, -1]).prop_map(Value::Int),
        any::<String>().prop_map(Value::Sym),
        "[a-z\"\\\\'\n\t\r\0{}u ]{0,8}".prop_map(Value::Sym),
    ]
}

proptest! {
    #[test]
    fn printed_facts_load_back(
        facts in prop::collection::vec(prop::collection::vec(value(), 0..4), 0..12)
    ) {
        let mut kb = KnowledgeBase::new();
        for values in facts {
            // One predicate per arity, as arities are fixed per predicate.
            kb.add_fact(&format!("p{}", values.len()), values).unwrap();
        }
        let stored = kb.facts(None).unwrap();
        let mut program = String::new();
        for (predicate, values) in &stored {
            program.push_str(&format!("{}.\n", topology::format_fact(predicate, values)));
        }
        let mut reloaded = KnowledgeBase::new();
        reloaded.load(&program).unwrap();
        prop_assert_eq!(reloaded.facts(None).unwrap(), stored);
    }
}
