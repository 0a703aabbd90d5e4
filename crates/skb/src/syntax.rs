//! Program and query text: the tokenizer, the parser, and the checks that
//! every variable is bound before it is used.
//!
//! Neither tokenizing nor parsing recurses, so no input, however deeply
//! nested or long, can overflow the stack; expressions are flat sums of
//! products for the same reason.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::value::Value;

/// A place in program or query text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Bytes from the start of the text; at most the text's length.
    pub offset: usize,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why some program or query text was rejected, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the problem is; the end of the text when it ended too early.
    pub position: Position,
    /// What is wrong, in words.
    pub reason: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position, self.reason)
    }
}

/// A rule argument: a variable, by its index in the rule's variable table,
/// or a constant.
#[derive(Clone, Debug)]
pub(crate) enum Term {
    Var(usize),
    Const(Value),
}

/// An arithmetic expression, kept as a sum of signed products of terms.
#[derive(Clone, Debug)]
pub(crate) struct Expr {
    pub(crate) summands: Vec<Summand>,
}

#[derive(Clone, Debug)]
pub(crate) struct Summand {
    pub(crate) negated: bool,
    pub(crate) factors: Vec<Term>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    NotEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Clone, Debug)]
pub(crate) struct Atom {
    pub(crate) predicate: String,
    pub(crate) terms: Vec<Term>,
    pub(crate) position: Position,
    /// Where each term is, for errors about them.
    pub(crate) term_positions: Vec<Position>,
}

#[derive(Clone, Debug)]
pub(crate) enum Literal {
    Atom(Atom),
    /// `not p(...)`: holds when no fact matches. Its named variables are
    /// bound by earlier literals; each `_` in it matches anything.
    Negated(Atom),
    Compare {
        left: Expr,
        comparison: Comparison,
        right: Expr,
    },
    /// `X = expr` where `X` is not yet bound: binds it.
    Assign {
        variable: usize,
        value: Expr,
    },
}

/// The literals of a rule or query body, in the order they are evaluated,
/// and the names of its variables, indexed by [`Term::Var`].
#[derive(Clone, Debug)]
pub(crate) struct Body {
    pub(crate) literals: Vec<Literal>,
    pub(crate) variables: Vec<String>,
}

impl Body {
    /// The atoms, negated or not.
    pub(crate) fn atoms(&self) -> impl Iterator<Item = &Atom> {
        self.literals.iter().filter_map(|literal| match literal {
            Literal::Atom(atom) | Literal::Negated(atom) => Some(atom),
            _ => None,
        })
    }
}

/// A rule; a fact is a rule with a ground head and an empty body.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) head: Atom,
    pub(crate) body: Body,
}

impl Rule {
    /// The head's values when it has no variables.
    pub(crate) fn ground_head(&self) -> Option<Vec<Value>> {
        self.head
            .terms
            .iter()
            .map(|term| match term {
                Term::Const(value) => Some(value.clone()),
                Term::Var(_) => None,
            })
            .collect()
    }
}

/// Whether a variable name is `_`, which stands for a fresh variable at each
/// use and is left out of answers.
pub(crate) fn is_anonymous(name: &str) -> bool {
    name == "_"
}

/// Parses a sequence of facts and rules, each ended by a period.
pub(crate) fn parse_program(text: &str) -> Result<Vec<Rule>, SyntaxError> {
    let mut parser = Parser::new(text)?;
    let mut rules = Vec::new();
    while !parser.at(&TokenKind::End) {
        rules.push(parser.rule()?);
    }
    Ok(rules)
}

/// Parses a query: a body, optionally preceded by `?-` and followed by a
/// period.
pub(crate) fn parse_query(text: &str) -> Result<Body, SyntaxError> {
    let mut parser = Parser::new(text)?;
    if parser.at(&TokenKind::QueryMark) {
        parser.next();
    }
    let mut scope = Scope::default();
    let literals = parser.body(&mut scope)?;
    if parser.at(&TokenKind::Period) {
        parser.next();
    }
    parser.expect(&TokenKind::End)?;
    Ok(Body {
        literals,
        variables: scope.names,
    })
}

#[derive(Clone, Debug, PartialEq)]
enum TokenKind {
    /// A lower-case name: a predicate, or a symbol constant.
    Name(String),
    /// An upper-case or `_`-led name.
    Variable(String),
    /// An unsigned integer; the parser applies a leading `-`, so that
    /// `-9223372036854775808` is read although its magnitude is no `i64`.
    Int(u64),
    /// A double-quoted symbol constant, its escapes resolved.
    Str(String),
    LeftParen,
    RightParen,
    Comma,
    Period,
    /// `:-`
    If,
    /// `?-`
    QueryMark,
    Compare(Comparison),
    /// `=`, which binds a variable or tests equality.
    Assign,
    Plus,
    Minus,
    Star,
    End,
}

impl TokenKind {
    fn describe(&self) -> String {
        match self {
            TokenKind::Name(name) => format!("name `{name}`"),
            TokenKind::Variable(name) => format!("variable `{name}`"),
            TokenKind::Int(value) => format!("integer `{value}`"),
            TokenKind::Str(text) => format!("string {text:?}"),
            TokenKind::LeftParen => "`(`".into(),
            TokenKind::RightParen => "`)`".into(),
            TokenKind::Comma => "`,`".into(),
            TokenKind::Period => "`.`".into(),
            TokenKind::If => "`:-`".into(),
            TokenKind::QueryMark => "`?-`".into(),
            TokenKind::Compare(comparison) => format!("`{}`", comparison_text(*comparison)),
            TokenKind::Assign => "`=`".into(),
            TokenKind::Plus => "`+`".into(),
            TokenKind::Minus => "`-`".into(),
            TokenKind::Star => "`*`".into(),
            TokenKind::End => "the end of the text".into(),
        }
    }
}

fn comparison_text(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::Less => "<",
        Comparison::LessOrEqual => "<=",
        Comparison::Equal => "==",
        Comparison::NotEqual => "!=",
        Comparison::Greater => ">",
        Comparison::GreaterOrEqual => ">=",
    }
}

#[derive(Clone, Debug)]
struct Token {
    kind: TokenKind,
    position: Position,
}

/// Walks the text a character at a time, keeping line and column.
struct Cursor<'a> {
    text: &'a str,
    position: Position,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.position.offset..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.position.offset..].chars().nth(1)
    }

    fn advance(&mut self) -> Option<char> {
        let next = self.peek()?;
        self.position.offset += next.len_utf8();
        if next == '\n' {
            self.position.line += 1;
            self.position.column = 1;
        } else {
            self.position.column += 1;
        }
        Some(next)
    }

    /// Consumes characters while `keep` holds, and returns them.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.position.offset;
        while self.peek().is_some_and(&keep) {
            self.advance();
        }
        &self.text[start..self.position.offset]
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn tokenize(text: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut cursor = Cursor {
        text,
        position: Position {
            offset: 0,
            line: 1,
            column: 1,
        },
    };
    let mut tokens = Vec::new();
    loop {
        cursor.take_while(char::is_whitespace);
        let position = cursor.position;
        let Some(first) = cursor.peek() else {
            tokens.push(Token {
                kind: TokenKind::End,
                position,
            });
            return Ok(tokens);
        };
        let error = |reason: String| SyntaxError { position, reason };
        let two = |second: char| cursor.peek_second() == Some(second);
        let kind = match first {
            '%' => {
                // A comment runs to the end of the line.
                cursor.take_while(|c| c != '\n');
                continue;
            }
            'a'..='z' => TokenKind::Name(cursor.take_while(is_name_char).to_string()),
            'A'..='Z' | '_' => TokenKind::Variable(cursor.take_while(is_name_char).to_string()),
            '0'..='9' => {
                let digits = cursor.take_while(|c| c.is_ascii_digit());
                let value = digits.parse().map_err(|_| error(out_of_range(digits)))?;
                TokenKind::Int(value)
            }
            '"' => TokenKind::Str(string(&mut cursor)?),
            _ => {
                let (kind, length) = match first {
                    ':' if two('-') => (TokenKind::If, 2),
                    '?' if two('-') => (TokenKind::QueryMark, 2),
                    '<' if two('=') => (TokenKind::Compare(Comparison::LessOrEqual), 2),
                    '>' if two('=') => (TokenKind::Compare(Comparison::GreaterOrEqual), 2),
                    '=' if two('=') => (TokenKind::Compare(Comparison::Equal), 2),
                    '!' if two('=') => (TokenKind::Compare(Comparison::NotEqual), 2),
                    '<' => (TokenKind::Compare(Comparison::Less), 1),
                    '>' => (TokenKind::Compare(Comparison::Greater), 1),
                    '=' => (TokenKind::Assign, 1),
                    '(' => (TokenKind::LeftParen, 1),
                    ')' => (TokenKind::RightParen, 1),
                    ',' => (TokenKind::Comma, 1),
                    '.' => (TokenKind::Period, 1),
                    '+' => (TokenKind::Plus, 1),
                    '-' => (TokenKind::Minus, 1),
                    '*' => (TokenKind::Star, 1),
                    other => return Err(error(format!("unexpected character {other:?}"))),
                };
                for _ in 0..length {
                    cursor.advance();
                }
                kind
            }
        };
        tokens.push(Token { kind, position });
    }
}

/// Reads a double-quoted string from the cursor, on its opening quote.
///
/// The escapes are those Rust's `Debug` writes for a `str` (`\\`, `\"`,
/// `\'`, `\n`, `\r`, `\t`, `\0` and `\u{..}`), so that every symbol
/// [`Value`]'s `Display` prints reads back as itself.
fn string(cursor: &mut Cursor<'_>) -> Result<String, SyntaxError> {
    let start = cursor.position;
    cursor.advance();
    let mut contents = String::new();
    loop {
        let position = cursor.position;
        let error = |reason: &str| SyntaxError {
            position,
            reason: reason.into(),
        };
        match cursor.advance() {
            None => {
                return Err(SyntaxError {
                    position: start,
                    reason: "string is not closed by `\"`".into(),
                });
            }
            Some('"') => return Ok(contents),
            Some('\\') => {
                let escaped = match cursor.advance() {
                    Some(c @ ('\\' | '"' | '\'')) => c,
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('0') => '\0',
                    Some('u') if cursor.peek() == Some('{') => {
                        cursor.advance();
                        let digits = cursor.take_while(|c| c.is_ascii_hexdigit());
                        let closed = cursor.advance() == Some('}');
                        let value = u32::from_str_radix(digits, 16).ok();
                        match value.and_then(char::from_u32) {
                            Some(c) if closed && digits.len() <= 6 => c,
                            _ => return Err(error("`\\u{..}` does not name a character")),
                        }
                    }
                    _ => {
                        return Err(error(
                            "unknown escape; a string knows `\\\\`, `\\\"`, `\\'`, `\\n`, \
                             `\\r`, `\\t`, `\\0` and `\\u{..}`",
                        ));
                    }
                };
                contents.push(escaped);
            }
            Some(c) => contents.push(c),
        }
    }
}

fn out_of_range(digits: impl core::fmt::Display) -> String {
    format!("integer `{digits}` does not fit in 64 bits")
}

/// The variables of the rule or query being parsed, and which of them the
/// literals so far bind.
#[derive(Default)]
struct Scope {
    names: Vec<String>,
    bound: Vec<bool>,
}

impl Scope {
    fn variable(&mut self, name: &str) -> usize {
        let existing = self.names.iter().position(|known| known == name);
        match existing {
            Some(index) if !is_anonymous(name) => index,
            _ => {
                self.names.push(name.into());
                self.bound.push(false);
                self.names.len() - 1
            }
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
}

impl Parser {
    fn new(text: &str) -> Result<Self, SyntaxError> {
        Ok(Parser {
            tokens: tokenize(text)?,
            next: 0,
        })
    }

    fn peek(&self) -> &Token {
        // The tokenizer always ends the list with `End`, and `next` never
        // moves past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn at(&self, kind: &TokenKind) -> bool {
        &self.peek().kind == kind
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::End {
            self.next += 1;
        }
        token
    }

    fn unexpected(&self, wanted: &str) -> SyntaxError {
        let found = self.peek();
        SyntaxError {
            position: found.position,
            reason: format!("expected {wanted}, found {}", found.kind.describe()),
        }
    }

    fn expect(&mut self, kind: &TokenKind) -> Result<Token, SyntaxError> {
        if self.at(kind) {
            Ok(self.next())
        } else {
            Err(self.unexpected(&kind.describe()))
        }
    }

    fn rule(&mut self) -> Result<Rule, SyntaxError> {
        let mut scope = Scope::default();
        let head = self.atom(&mut scope)?;
        let literals = if self.at(&TokenKind::If) {
            self.next();
            self.body(&mut scope)?
        } else {
            Vec::new()
        };
        self.expect(&TokenKind::Period)?;
        // Range restriction: a head variable the body does not bind would
        // make the rule derive infinitely many facts.
        for (term, position) in head.terms.iter().zip(&head.term_positions) {
            if let Term::Var(index) = term
                && !scope.bound[*index]
            {
                let name = &scope.names[*index];
                let reason = if literals.is_empty() {
                    format!("a fact cannot contain variable `{name}`")
                } else {
                    format!("head variable `{name}` is not bound by the body")
                };
                return Err(SyntaxError {
                    position: *position,
                    reason,
                });
            }
        }
        Ok(Rule {
            head,
            body: Body {
                literals,
                variables: scope.names,
            },
        })
    }

    fn body(&mut self, scope: &mut Scope) -> Result<Vec<Literal>, SyntaxError> {
        let mut literals = alloc::vec![self.literal(scope)?];
        while self.at(&TokenKind::Comma) {
            self.next();
            literals.push(self.literal(scope)?);
        }
        Ok(literals)
    }

    fn literal(&mut self, scope: &mut Scope) -> Result<Literal, SyntaxError> {
        let negated = self.peek().kind == TokenKind::Name("not".into())
            && self
                .tokens
                .get(self.next + 1)
                .is_some_and(|t| matches!(t.kind, TokenKind::Name(_)));
        if negated {
            self.next();
            let atom = self.atom(scope)?;
            for (term, position) in atom.terms.iter().zip(&atom.term_positions) {
                if let Term::Var(index) = term {
                    let name = &scope.names[*index];
                    if !scope.bound[*index] && !is_anonymous(name) {
                        return Err(unbound(name, *position));
                    }
                }
            }
            return Ok(Literal::Negated(atom));
        }
        let starts_atom = matches!(self.peek().kind, TokenKind::Name(_))
            && self
                .tokens
                .get(self.next + 1)
                .is_some_and(|t| t.kind == TokenKind::LeftParen);
        if starts_atom {
            let atom = self.atom(scope)?;
            for term in &atom.terms {
                if let Term::Var(index) = term {
                    scope.bound[*index] = true;
                }
            }
            return Ok(Literal::Atom(atom));
        }
        let (left, left_unbound) = self.expr(scope)?;
        let comparison = match self.peek().kind {
            TokenKind::Compare(comparison) => Some(comparison),
            TokenKind::Assign => None,
            _ => return Err(self.unexpected("a comparison operator such as `<` or `=`")),
        };
        self.next();
        let (right, right_unbound) = self.expr(scope)?;
        if let Some((name, position)) = right_unbound.first() {
            return Err(unbound(name, *position));
        }
        if comparison.is_none()
            && let [
                Summand {
                    negated: false,
                    factors,
                },
            ] = left.summands.as_slice()
            && let [Term::Var(variable)] = factors.as_slice()
            && !scope.bound[*variable]
        {
            scope.bound[*variable] = true;
            return Ok(Literal::Assign {
                variable: *variable,
                value: right,
            });
        }
        if let Some((name, position)) = left_unbound.first() {
            return Err(unbound(name, *position));
        }
        let comparison = comparison.unwrap_or(Comparison::Equal);
        Ok(Literal::Compare {
            left,
            comparison,
            right,
        })
    }

    fn atom(&mut self, scope: &mut Scope) -> Result<Atom, SyntaxError> {
        let TokenKind::Name(predicate) = self.peek().kind.clone() else {
            return Err(self.unexpected("a predicate name"));
        };
        let name = self.next();
        self.expect(&TokenKind::LeftParen)?;
        let mut terms = Vec::new();
        let mut term_positions = Vec::new();
        if !self.at(&TokenKind::RightParen) {
            loop {
                let (term, position) = self.term(scope)?;
                terms.push(term);
                term_positions.push(position);
                if !self.at(&TokenKind::Comma) {
                    break;
                }
                self.next();
            }
        }
        self.expect(&TokenKind::RightParen)?;
        Ok(Atom {
            predicate,
            terms,
            position: name.position,
            term_positions,
        })
    }

    /// A term, with its position; a `-` directly before an integer negates
    /// it.
    fn term(&mut self, scope: &mut Scope) -> Result<(Term, Position), SyntaxError> {
        let position = self.peek().position;
        let term = match self.peek().kind.clone() {
            TokenKind::Variable(name) => Term::Var(scope.variable(&name)),
            TokenKind::Name(name) | TokenKind::Str(name) => Term::Const(Value::Sym(name)),
            TokenKind::Int(value) => {
                Term::Const(Value::Int(i64::try_from(value).map_err(|_| {
                    SyntaxError {
                        position,
                        reason: out_of_range(value),
                    }
                })?))
            }
            TokenKind::Minus => {
                self.next();
                match self.peek().kind {
                    TokenKind::Int(value) => Term::Const(Value::Int(
                        i64::try_from(-i128::from(value)).map_err(|_| SyntaxError {
                            position,
                            reason: out_of_range(format!("-{value}")),
                        })?,
                    )),
                    _ => return Err(self.unexpected("an integer after `-`")),
                }
            }
            _ => return Err(self.unexpected("a variable or a constant")),
        };
        self.next();
        Ok((term, position))
    }

    /// An expression, and the variables in it that are not yet bound.
    fn expr(&mut self, scope: &mut Scope) -> Result<(Expr, Vec<(String, Position)>), SyntaxError> {
        let mut unbound_variables = Vec::new();
        let mut summands = Vec::new();
        let mut negated = false;
        loop {
            let mut factors = Vec::new();
            loop {
                let (term, position) = self.term(scope)?;
                if let Term::Var(index) = term
                    && !scope.bound[index]
                {
                    unbound_variables.push((scope.names[index].clone(), position));
                }
                factors.push(term);
                if !self.at(&TokenKind::Star) {
                    break;
                }
                self.next();
            }
            summands.push(Summand { negated, factors });
            negated = match self.peek().kind {
                TokenKind::Plus => false,
                TokenKind::Minus => true,
                _ => return Ok((Expr { summands }, unbound_variables)),
            };
            self.next();
        }
    }
}

fn unbound(name: &str, position: Position) -> SyntaxError {
    SyntaxError {
        position,
        reason: format!("variable `{name}` is used before an atom or an assignment binds it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(program: &str) -> SyntaxError {
        parse_program(program).unwrap_err()
    }

    #[test]
    fn parses_facts_rules_and_expressions() {
        let rules = parse_program(
            "% a comment\ncore(0, \"GenuineIntel\", intel, -3).\n\
             d(A, D) :- lat(A, B, X), D = X * 2 - B + 1, D >= 0.",
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0].ground_head().unwrap(),
            [
                Value::Int(0),
                "GenuineIntel".into(),
                "intel".into(),
                Value::Int(-3)
            ]
        );
        let body = &rules[1].body;
        assert_eq!(body.variables, ["A", "D", "B", "X"]);
        assert!(matches!(
            body.literals[1],
            Literal::Assign { variable: 1, .. }
        ));
        let Literal::Assign { value, .. } = &body.literals[1] else {
            unreachable!()
        };
        let shape: Vec<(bool, usize)> = value
            .summands
            .iter()
            .map(|s| (s.negated, s.factors.len()))
            .collect();
        assert_eq!(shape, [(false, 2), (true, 1), (false, 1)]);
        assert!(matches!(
            body.literals[2],
            Literal::Compare {
                comparison: Comparison::GreaterOrEqual,
                ..
            }
        ));
    }

    #[test]
    fn strings_take_the_escapes_debug_writes() {
        let rules =
            parse_program(r#"s("a\"b\\c\'\n\r\t\0\u{1f980}\u{7f}", -9223372036854775808)."#)
                .unwrap();
        assert_eq!(
            rules[0].ground_head().unwrap(),
            [
                "a\"b\\c'\n\r\t\0\u{1f980}\u{7f}".into(),
                Value::Int(i64::MIN)
            ]
        );
        for (text, column, reason) in [
            (r#"s("ab\q")."#, 6, "unknown escape"),
            (r#"s("\u{110000}")."#, 4, "does not name a character"),
            (r#"s("\u{d800}")."#, 4, "does not name a character"),
            (r#"s("\u{}")."#, 4, "does not name a character"),
            (r#"s("\u{41")."#, 4, "does not name a character"),
            ("s(9223372036854775808).", 3, "does not fit in 64 bits"),
            ("s(-9223372036854775809).", 3, "does not fit in 64 bits"),
        ] {
            let e = error(text);
            assert_eq!(e.position.column, column, "{text}");
            assert!(e.reason.contains(reason), "{text}: {}", e.reason);
        }
    }

    #[test]
    fn equals_on_a_bound_variable_tests_equality() {
        let rules = parse_program("p(X) :- q(X, Y), X = Y.").unwrap();
        assert!(matches!(
            rules[0].body.literals[1],
            Literal::Compare {
                comparison: Comparison::Equal,
                ..
            }
        ));
    }

    #[test]
    fn errors_give_line_column_and_reason() {
        let e = error("core(0, 0).\nnuma(0 1).");
        assert_eq!(
            (e.position.line, e.position.column, e.position.offset),
            (2, 8, 19)
        );
        assert_eq!(e.reason, "expected `)`, found integer `1`");
        assert_eq!(e.to_string(), "2:8: expected `)`, found integer `1`");

        let e = error("p(X) :- q(Y).");
        assert_eq!((e.position.line, e.position.column), (1, 3));
        assert!(e.reason.contains("head variable `X`"), "{}", e.reason);

        let e = error("p(X).");
        assert!(
            e.reason.contains("fact cannot contain variable `X`"),
            "{}",
            e.reason
        );

        let e = error("p(X) :- X < 3, q(X).");
        assert_eq!(e.position.column, 9);
        assert!(e.reason.contains("`X` is used before"), "{}", e.reason);

        let e = error("p(1) :- q(1), not r(Y).");
        assert_eq!(e.position.column, 21);
        assert!(e.reason.contains("`Y` is used before"), "{}", e.reason);

        let e = error("p(1) :- q(1)");
        assert_eq!(e.position.offset, 12);
        assert!(
            e.reason.contains("found the end of the text"),
            "{}",
            e.reason
        );

        let e = error("p(99999999999999999999).");
        assert!(e.reason.contains("does not fit in 64 bits"), "{}", e.reason);

        let e = error("p(\"open).");
        assert_eq!(e.position.column, 3);
        assert!(e.reason.contains("not closed"), "{}", e.reason);

        let e = error("p(1) :- q(1) & r(1).");
        assert_eq!(e.position.column, 14);
        assert!(
            e.reason.contains("unexpected character '&'"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn not_before_a_name_negates_and_otherwise_is_a_name() {
        let rules = parse_program("p(X) :- q(X), not r(X, _). not(1). p(1) :- not(1).").unwrap();
        assert!(matches!(rules[0].body.literals[1], Literal::Negated(_)));
        assert_eq!(rules[1].head.predicate, "not");
        assert!(
            matches!(&rules[2].body.literals[0], Literal::Atom(atom) if atom.predicate == "not")
        );
    }

    #[test]
    fn anonymous_variables_are_each_fresh() {
        let query = parse_query("edge(_, _)").unwrap();
        assert_eq!(query.variables, ["_", "_"]);
    }

    #[test]
    fn query_takes_optional_marks() {
        assert!(parse_query("?- p(X), X > 1.").is_ok());
        let e = parse_query("p(X) q(X)").unwrap_err();
        assert!(
            e.reason.contains("expected the end of the text"),
            "{}",
            e.reason
        );
        let e = parse_query("").unwrap_err();
        assert_eq!(e.position.offset, 0);
    }
}
