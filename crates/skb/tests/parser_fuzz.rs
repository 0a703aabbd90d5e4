//! Fuzz-style properties of the parser: no input panics it, and every
//! error points inside the input.

use atoll_skb::{Error, KnowledgeBase};
use proptest::prelude::*;

/// Checks that a rejection of `text` names a position inside it, whose line
/// and column agree with its byte offset.
fn check_error(text: &str, error: Error) -> Result<(), TestCaseError> {
    let Error::Syntax(error) = error else {
        // Loading and querying a fresh base only fails on syntax, on the
        // fact limit for generated recursive rules, or on a query's limits.
        prop_assert!(
            matches!(
                error,
                Error::TooManyFacts { .. }
                    | Error::TooManyAnswers { .. }
                    | Error::QueryTooExpensive { .. }
            ),
            "{error:?}"
        );
        return Ok(());
    };
    let position = error.position;
    prop_assert!(position.offset <= text.len(), "{error:?} in {text:?}");
    prop_assert!(text.is_char_boundary(position.offset));
    let before = &text[..position.offset];
    prop_assert_eq!(position.line, before.matches('\n').count() + 1);
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    prop_assert_eq!(position.column, before[line_start..].chars().count() + 1);
    prop_assert!(!error.reason.is_empty());
    Ok(())
}

/// Text made of the language's own pieces, so that the parser gets past its
/// first token and into rules, bodies and expressions.
fn token_soup() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "p", "q", "edge", "(", ")", ",", ".", ":-", "?-", "X", "Y", "_", "0", "7", "-", "+", "*",
        "=", "==", "!=", "<", "<=", ">", ">=", "\"s\"", "\n", " ", "%c\n", "\"", "&", "not ",
    ]);
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let mut kb = KnowledgeBase::with_fact_limit(1000);
        if let Err(error) = kb.load(&text) {
            check_error(&text, error)?;
        }
        if let Err(error) = kb.query(&text) {
            check_error(&text, error)?;
        }
    }

    #[test]
    fn token_soup_never_panics(text in token_soup()) {
        let mut kb = KnowledgeBase::with_fact_limit(1000);
        if let Err(error) = kb.load(&text) {
            check_error(&text, error)?;
        }
        if let Err(error) = kb.query(&text) {
            check_error(&text, error)?;
        }
    }
}
