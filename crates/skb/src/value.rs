//! The values facts hold.

use alloc::string::String;
use core::fmt;

/// One argument of a fact: an integer or a symbol.
///
/// Integers order before symbols, so that a relation's tuples have one
/// total order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// A signed integer: a core number, a latency, an address.
    Int(i64),
    /// A name, written `intel` or `"GenuineIntel"` in program text.
    Sym(String),
}

impl Value {
    /// An integer from any integer type. Addresses, ids and latencies all
    /// fit an i64; one that does not saturates, so that it stays visible
    /// rather than wrapping into a plausible number.
    pub fn int(value: impl TryInto<i64>) -> Value {
        Value::Int(value.try_into().unwrap_or(i64::MAX))
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Sym(value.into())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(value) => write!(f, "{value}"),
            Value::Sym(name) => write!(f, "{name:?}"),
        }
    }
}
