//! What a query may not do: name predicates nothing mentions, change the
//! knowledge base, or take unbounded memory or time.

use atoll_skb::{
    DEFAULT_ANSWER_LIMIT, DEFAULT_STEP_LIMIT, Error, KnowledgeBase, Limits, SyntaxError,
};
use proptest::prelude::*;

/// Cores 0-7 on two nodes, with a measured round trip between each ordered
/// pair of distinct cores: 56 `urpc_rtt` facts.
fn eight_cores() -> KnowledgeBase {
    let mut kb = KnowledgeBase::new();
    kb.load("same_node(A, B) :- core_node(A, N), core_node(B, N), A != B.")
        .unwrap();
    for core in 0..8i64 {
        kb.add_fact("core_node", vec![core.into(), (core / 4).into()])
            .unwrap();
        for other in (0..8i64).filter(|&other| other != core) {
            let cycles = 500 + 100 * (core - other).abs();
            kb.add_fact("urpc_rtt", vec![core.into(), other.into(), cycles.into()])
                .unwrap();
        }
    }
    kb
}

/// The syntax error a query fails with.
fn syntax_error(kb: &mut KnowledgeBase, query: &str) -> SyntaxError {
    match kb.query(query) {
        Err(Error::Syntax(error)) => error,
        other => panic!("{query}: {other:?}"),
    }
}

fn n_facts(count: i64) -> String {
    (0..count).map(|n| format!("n({n}). ")).collect()
}

#[test]
fn unknown_predicates_in_queries_are_errors_at_the_atom() {
    let mut kb = eight_cores();
    let stored = kb.facts(None).unwrap();
    let error = syntax_error(&mut kb, "core_node(C, N), core_nod(C, 1)");
    assert_eq!(error.position.offset, 17);
    assert_eq!((error.position.line, error.position.column), (1, 18));
    assert_eq!(
        error.reason,
        "unknown predicate `core_nod`; did you mean `core_node`?"
    );
    // In a negated atom too, on a later line.
    let error = syntax_error(&mut kb, "core_node(C, N),\n  not idle(C)");
    assert_eq!((error.position.line, error.position.column), (2, 7));
    assert!(
        error
            .reason
            .starts_with("unknown predicate `idle`; known predicates include `"),
        "{}",
        error.reason
    );
    // One name far from every known one lists them all, nearest first.
    let error = syntax_error(&mut kb, "?- urpc_rtt(0, B, L), not cache_size(B, _).");
    assert_eq!(error.position.offset, 26);
    assert_eq!(
        error.reason,
        "unknown predicate `cache_size`; known predicates include \
         `core_node`, `same_node`, `urpc_rtt`"
    );
    let error = syntax_error(&mut KnowledgeBase::new(), "p(X)");
    assert_eq!(
        error.reason,
        "unknown predicate `p`; the knowledge base is empty"
    );
    // The failed queries left nothing behind: the same facts, the names
    // still unknown, and free to take any arity.
    assert_eq!(kb.facts(None).unwrap(), stored);
    for name in ["core_nod", "idle", "cache_size"] {
        assert!(matches!(
            kb.facts(Some(name)),
            Err(Error::UnknownPredicate { .. })
        ));
    }
    kb.load("core_nod(1, 2, 3). idle(1, 2). cache_size(64).")
        .unwrap();
    assert_eq!(kb.query("idle(C, 2)").unwrap().len(), 1);
}

#[test]
fn a_query_does_not_make_a_predicate_known() {
    // The review's cases: a misspelt query must not turn the misspelling
    // into an empty relation, nor fix its arity.
    let mut kb = eight_cores();
    assert!(kb.query("core_nod(C)").is_err());
    let Err(Error::UnknownPredicate { predicate, known }) = kb.facts(Some("core_nod")) else {
        panic!()
    };
    assert_eq!(predicate, "core_nod");
    assert_eq!(known, ["core_node", "same_node", "urpc_rtt"]);
    assert!(kb.query("core_nodx(C)").is_err());
    kb.load("core_nodx(1, 2).").unwrap();
    assert_eq!(kb.query("core_nodx(A, B)").unwrap().len(), 1);
}

#[test]
fn wrong_arities_in_queries_stay_positioned_errors() {
    let mut kb = eight_cores();
    let error = syntax_error(&mut kb, "core_node(C, N), not same_node(C)");
    assert_eq!(error.position.offset, 21);
    assert_eq!(
        error.reason,
        "predicate `same_node` has 2 arguments elsewhere, 1 here"
    );
    // A predicate known only from a rule body counts, with its arity.
    kb.load("reach(A, B) :- link(A, B).").unwrap();
    assert!(kb.query("link(A, B)").unwrap().is_empty());
    let error = syntax_error(&mut kb, "link(A)");
    assert_eq!(error.position.offset, 0);
}

#[test]
fn the_answer_limit_allows_exactly_its_number() {
    let limits = Limits {
        answers: 10,
        ..Limits::DEFAULT
    };
    let mut kb = KnowledgeBase::with_limits(limits);
    assert_eq!(kb.limits(), limits);
    kb.load(&n_facts(10)).unwrap();
    assert_eq!(kb.query("n(X)").unwrap().len(), 10);
    // Answers are counted once however often they are found.
    assert_eq!(kb.query("n(X), n(_), n(_)").unwrap().len(), 10);
    kb.load("n(10).").unwrap();
    assert_eq!(kb.query("n(X)"), Err(Error::TooManyAnswers { limit: 10 }));
    assert_eq!(
        kb.query("n(X)").unwrap_err().to_string(),
        "the query has more than 10 answers; narrow it"
    );
    // Raising the limit lets it through; the facts were never touched.
    kb.set_limits(Limits {
        answers: 11,
        ..limits
    });
    assert_eq!(kb.query("n(X)").unwrap().len(), 11);
    assert_eq!(kb.facts(None).unwrap().len(), 11);
}

#[test]
fn too_many_answers_stop_the_search_early() {
    // The review's example: 56 facts cubed are 175 616 answers.
    let mut kb = eight_cores();
    assert_eq!(
        kb.query("urpc_rtt(A, B, C), urpc_rtt(D, E, F), urpc_rtt(G, H, I)"),
        Err(Error::TooManyAnswers {
            limit: DEFAULT_ANSWER_LIMIT
        })
    );
    // 100^6 bindings could not be enumerated in any time, so getting the
    // error at all shows that the search stopped early, without the step
    // limit's help.
    let mut kb = KnowledgeBase::with_limits(Limits {
        steps: usize::MAX,
        ..Limits::DEFAULT
    });
    kb.load(&n_facts(100)).unwrap();
    assert_eq!(
        kb.query("n(A), n(B), n(C), n(D), n(E), n(F)"),
        Err(Error::TooManyAnswers {
            limit: DEFAULT_ANSWER_LIMIT
        })
    );
    // The knowledge base still answers.
    assert_eq!(kb.query("n(X), X < 3").unwrap().len(), 3);
}

#[test]
fn the_step_limit_stops_joins_that_find_nothing() {
    let mut kb = KnowledgeBase::new();
    kb.load(&n_facts(1000)).unwrap();
    let stored = kb.facts(None).unwrap();
    // A billion bindings, none of which holds.
    assert_eq!(
        kb.query("n(A), n(B), n(C), A + B + C < 0"),
        Err(Error::QueryTooExpensive {
            limit: DEFAULT_STEP_LIMIT
        })
    );
    assert_eq!(kb.facts(None).unwrap(), stored);
    assert_eq!(kb.query("n(A), A < 3").unwrap().len(), 3);
    // Steps count tuples examined too: a lookup of `m(A, B)` by its first
    // argument visits one tuple, a scan of `m(_, B)` all of them.
    let mut kb = KnowledgeBase::with_limits(Limits {
        steps: 20_000,
        ..Limits::DEFAULT
    });
    kb.load(&n_facts(1000)).unwrap();
    kb.load(
        &(0..1000)
            .map(|n| format!("m({n}, {n}). "))
            .collect::<String>(),
    )
    .unwrap();
    assert_eq!(kb.query("n(A), m(A, B)").unwrap().len(), 1000);
    assert_eq!(
        kb.query("n(B), m(_, B)"),
        Err(Error::QueryTooExpensive { limit: 20_000 })
    );
    let error = kb.query("n(B), m(_, B)").unwrap_err().to_string();
    assert!(
        error.starts_with("the query took more than 20000 steps; narrow it"),
        "{error}"
    );
    let mut kb = KnowledgeBase::with_limits(Limits {
        steps: 3,
        ..Limits::DEFAULT
    });
    kb.load(&n_facts(3)).unwrap();
    assert!(kb.query("n(X)").is_err());
    kb.set_limits(Limits {
        steps: 100,
        ..Limits::DEFAULT
    });
    assert_eq!(kb.query("n(X)").unwrap().len(), 3);
}

#[test]
fn legitimate_joins_fit_the_default_limits() {
    // Sixteen cores measured pairwise: 240 `urpc_rtt` facts. Three-hop
    // cycles, each later atom looking up its leading bound argument.
    let mut kb = KnowledgeBase::new();
    for core in 0..16i64 {
        for other in (0..16i64).filter(|&other| other != core) {
            let cycles = 500 + 37 * ((core * 7 + other * 3) % 11);
            kb.add_fact("urpc_rtt", vec![core.into(), other.into(), cycles.into()])
                .unwrap();
        }
    }
    let answers = kb
        .query("urpc_rtt(A, B, L), urpc_rtt(B, C, M), urpc_rtt(C, A, N), D = L + M + N")
        .unwrap();
    assert_eq!(answers.len(), 16 * 15 * 14);
    // A join that finds little, over a scan and two lookups.
    let answers = kb
        .query("urpc_rtt(A, B, L), urpc_rtt(B, C, M), urpc_rtt(C, D, N), L + M + N < 1600")
        .unwrap();
    assert!(answers.len() < DEFAULT_ANSWER_LIMIT);
    // Every pair against every pair, filtered: 57 600 bindings.
    kb.query("urpc_rtt(A, B, L), urpc_rtt(C, D, M), L + M == 1000")
        .unwrap();
}

#[test]
fn the_fact_limit_bounds_evaluation_within_a_round() {
    // One round of this rule would derive 200^3 = 8 000 000 facts; the
    // limit stops it at the first fact over.
    let mut kb = KnowledgeBase::with_fact_limit(20_000);
    kb.load(&(0..200).map(|n| format!("n({n}). ")).collect::<String>())
        .unwrap();
    kb.load("triple(A, B, C) :- n(A), n(B), n(C).").unwrap();
    assert_eq!(
        kb.facts(Some("triple")),
        Err(Error::TooManyFacts { limit: 20_000 })
    );
    assert_eq!(
        kb.query("triple(0, 0, X), X < 2"),
        Err(Error::TooManyFacts { limit: 20_000 })
    );
    // A question that does not need `triple` does not derive it, so the
    // limit does not stand in its way.
    let small = kb.query("n(X), X < 2").unwrap();
    assert_eq!(small.len(), 2);
    // Stored facts count too.
    let mut kb = KnowledgeBase::with_fact_limit(100);
    kb.load(&n_facts(101)).unwrap();
    assert_eq!(kb.query("n(0)"), Err(Error::TooManyFacts { limit: 100 }));
    // Exactly at the limit is allowed, derived facts included.
    let mut kb = KnowledgeBase::with_fact_limit(100);
    kb.load(&n_facts(100)).unwrap();
    assert_eq!(kb.query("n(0)").unwrap().len(), 1);
    kb.load("double(Y) :- n(X), X < 5, Y = X * 2.").unwrap();
    assert!(kb.query("double(Y)").is_err());
    kb.set_limits(Limits {
        facts: 105,
        ..kb.limits()
    });
    assert_eq!(kb.query("double(Y)").unwrap().len(), 5);
}

#[test]
fn long_bodies_do_not_overflow_the_stack() {
    let mut kb = KnowledgeBase::new();
    kb.load("n(1). n(2).").unwrap();
    let query = vec!["n(X)"; 50_000].join(", ");
    assert_eq!(kb.query(&query).unwrap().len(), 2);
    let query = format!("n(X), {}", vec!["X < 3"; 50_000].join(", "));
    assert_eq!(kb.query(&query).unwrap().len(), 2);
}

/// Text made of the language's own pieces, with the names the knowledge
/// base below knows and some it does not.
fn query_soup() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "n",
        "m",
        "edge",
        "path",
        "nope",
        "(",
        ")",
        ",",
        ".",
        ":-",
        "?-",
        "X",
        "Y",
        "_",
        "0",
        "7",
        "-",
        "+",
        "*",
        "=",
        "==",
        "!=",
        "<",
        ">=",
        "\n",
        " ",
        "not ",
        "n(X)",
        "edge(X, Y)",
        "path(X, Y)",
        "nope(X)",
        "n(X, Y)",
    ]);
    prop::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
}

/// A small knowledge base with facts and recursive rules.
fn small_kb() -> KnowledgeBase {
    let mut kb = KnowledgeBase::with_limits(Limits {
        facts: 10_000,
        answers: 200,
        steps: 100_000,
    });
    kb.load(
        "n(0). n(1). n(2). n(7). m(1, 2).
         edge(0, 1). edge(1, 2). edge(2, 0). edge(2, 7).
         path(X, Y) :- edge(X, Y).
         path(X, Z) :- path(X, Y), edge(Y, Z).",
    )
    .unwrap();
    kb
}

/// Checks that querying `text` neither panics nor changes what `kb` knows.
fn query_changes_nothing(text: &str) -> Result<(), TestCaseError> {
    let mut kb = small_kb();
    let names = ["n", "m", "edge", "path", "nope", "p", "q", "X"];
    let before: Vec<_> = names.iter().map(|name| kb.facts(Some(name))).collect();
    let stored = kb.facts(None).unwrap();
    let result = kb.query(text);
    if let Err(error) = &result {
        prop_assert!(
            matches!(
                error,
                Error::Syntax(_) | Error::TooManyAnswers { .. } | Error::QueryTooExpensive { .. }
            ),
            "{error:?}"
        );
    }
    prop_assert_eq!(kb.facts(None).unwrap(), stored);
    let after: Vec<_> = names.iter().map(|name| kb.facts(Some(name))).collect();
    prop_assert_eq!(after, before);
    // No arity was fixed by the query: a new predicate of any arity loads.
    kb.load("nope(1, 2, 3). p(). q(1, 2).").unwrap();
    if let Ok(answers) = result {
        prop_assert!(answers.len() <= 200);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn queries_of_arbitrary_text_change_nothing(text in any::<String>()) {
        query_changes_nothing(&text)?;
    }

    #[test]
    fn queries_of_token_soup_change_nothing(text in query_soup()) {
        query_changes_nothing(&text)?;
    }
}

#[test]
fn only_what_a_question_needs_is_derived() {
    // `square` would hold 40 000 facts, over the limit; `first` needs only
    // `n` and `lower`, so it answers, and asking for `square` fails clearly
    // without losing what was answered before.
    let mut kb = KnowledgeBase::with_fact_limit(20_000);
    kb.load(&n_facts(200)).unwrap();
    kb.load(
        "square(A, B) :- n(A), n(B).
         lower(X) :- n(X), n(Y), Y < X.
         first(X) :- n(X), not lower(X).",
    )
    .unwrap();
    let first = kb.query("first(X)").unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        kb.query("square(1, X)"),
        Err(Error::TooManyFacts { limit: 20_000 })
    );
    assert_eq!(kb.query("first(X)").unwrap(), first);
    // Through a rule that depends on it, `square` is needed too.
    kb.load("pair(A) :- square(A, A).").unwrap();
    assert_eq!(
        kb.facts(Some("pair")),
        Err(Error::TooManyFacts { limit: 20_000 })
    );
}
