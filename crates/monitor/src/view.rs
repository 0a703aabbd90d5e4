//! Views: an epoch and its member set, as every core holds them, and the
//! set of core ids they are made of. Plain data, so that the links, the
//! mappings and the monitor's base can use them without the membership
//! service that agrees on them.

use core::fmt;

use atoll_proto::CoreId;

/// A set of core ids, `0..256`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Members([u64; 4]);

impl Members {
    /// The most cores a set can hold.
    pub const CAPACITY: usize = 256;

    pub const fn new() -> Self {
        Self([0; 4])
    }

    pub fn one(core: CoreId) -> Self {
        let mut members = Self::new();
        members.insert(core);
        members
    }

    pub fn contains(&self, core: CoreId) -> bool {
        let core = usize::from(core.0);
        core < Self::CAPACITY && self.0[core / 64] & 1 << (core % 64) != 0
    }

    /// Adds `core`; ids past the capacity are ignored (no core has them:
    /// `Config::cores` is at most 256).
    pub fn insert(&mut self, core: CoreId) {
        let core = usize::from(core.0);
        if core < Self::CAPACITY {
            self.0[core / 64] |= 1 << (core % 64);
        }
    }

    pub fn remove(&mut self, core: CoreId) {
        let core = usize::from(core.0);
        if core < Self::CAPACITY {
            self.0[core / 64] &= !(1 << (core % 64));
        }
    }

    pub fn union(self, other: Members) -> Members {
        Members(core::array::from_fn(|i| self.0[i] | other.0[i]))
    }

    pub fn intersect(self, other: Members) -> Members {
        Members(core::array::from_fn(|i| self.0[i] & other.0[i]))
    }

    /// The cores of `self` that are not in `other`.
    pub fn minus(self, other: Members) -> Members {
        Members(core::array::from_fn(|i| self.0[i] & !other.0[i]))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|word| word.count_ones() as usize).sum()
    }

    /// The lowest id in the set.
    pub fn first(&self) -> Option<CoreId> {
        self.iter().next()
    }

    /// The ids in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = CoreId> + '_ {
        (0..Self::CAPACITY as u16)
            .map(CoreId)
            .filter(|&core| self.contains(core))
    }

    /// The set as a message carries it: bit `c % 8` of byte `c / 8`.
    pub fn to_bytes(self) -> [u8; 32] {
        let mut bytes = [0; 32];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut words = [0; 4];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        }
        Self(words)
    }
}

impl FromIterator<CoreId> for Members {
    fn from_iter<T: IntoIterator<Item = CoreId>>(cores: T) -> Self {
        let mut members = Members::new();
        cores.into_iter().for_each(|core| members.insert(core));
        members
    }
}

/// The ids, space-separated, or "none".
impl fmt::Display for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (index, core) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}", core.0)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

/// A view: an epoch and its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct View {
    pub epoch: u32,
    pub members: Members,
}
