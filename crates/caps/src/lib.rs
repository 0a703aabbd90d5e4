//! Capabilities: each process's table of names for the kernel objects it
//! may use (its address space, processes, dispatchers, channel ends), each
//! name with rights; how they are copied, sent to another process and
//! taken there; and what revocation needs to know. Bookkeeping only, so
//! that it is tested on the host: the kernel keeps a table per dispatcher
//! and checks every system call's capabilities against it, and the
//! revocation protocol's messages are the kernel's (`host::processes`).
//!
//! Every capability has an id no other has ([`Ids`]: the core that made it
//! in the high bits) and its lineage: the ids of the capabilities it was
//! copied or granted from, oldest first. Revoking a capability deletes
//! every capability whose lineage holds its id, on every core; the revoked
//! one then takes a fresh id, and its old one is remembered for a while
//! ([`Tombstones`]) so that a grant still on its way is refused when it
//! arrives.
//!
//! This crate may touch nothing but its own tables: it knows the objects
//! only as numbers.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

use atoll_abi::{
    CAP_DISPATCHER, CAP_ENDPOINT, CAP_FRAME, CAP_PROCESS, CAP_SPACE, Error, MAX_CAPS, MAX_DEPTH,
    RIGHT_COPY, RIGHT_KILL, RIGHT_MAP, RIGHT_READ,
};

const DEPTH: usize = MAX_DEPTH as usize;
const SLOTS: usize = MAX_CAPS as usize;

/// A kernel object a capability names. Objects are named as the kernel
/// finds them: a process by its id (which holds its core), a channel end
/// by its process and the address the channel is mapped at there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// The address space of process `pid`.
    Space { pid: u32 },
    /// Process `pid`.
    Process { pid: u32 },
    /// Dispatcher `index` of `count` of process `pid`, on core `core`.
    Dispatcher {
        pid: u32,
        index: u16,
        count: u16,
        core: u16,
    },
    /// The end of a channel that process `pid` of core `core` maps at
    /// `address`.
    Endpoint { core: u16, pid: u32, address: u64 },
    /// The frame at physical address `frame`, of core `core`'s pool.
    Frame { core: u16, frame: u64 },
}

impl Object {
    /// Its type, as `atoll_abi`'s `CAP_*` numbers it.
    pub fn kind(&self) -> u64 {
        match self {
            Object::Space { .. } => CAP_SPACE,
            Object::Process { .. } => CAP_PROCESS,
            Object::Dispatcher { .. } => CAP_DISPATCHER,
            Object::Endpoint { .. } => CAP_ENDPOINT,
            Object::Frame { .. } => CAP_FRAME,
        }
    }

    fn words(&self) -> [u64; 2] {
        match *self {
            Object::Space { pid } | Object::Process { pid } => [u64::from(pid), 0],
            Object::Dispatcher {
                pid,
                index,
                count,
                core,
            } => [
                u64::from(pid),
                u64::from(index) | u64::from(count) << 16 | u64::from(core) << 32,
            ],
            Object::Endpoint { core, pid, address } => {
                [u64::from(pid) | u64::from(core) << 32, address]
            }
            Object::Frame { core, frame } => [frame, u64::from(core)],
        }
    }

    fn from_words(kind: u64, [first, second]: [u64; 2]) -> Option<Object> {
        let pid = u32::try_from(first & u64::from(u32::MAX)).ok()?;
        let plain = first >> 32 == 0 && second == 0;
        match kind {
            CAP_SPACE if plain => Some(Object::Space { pid }),
            CAP_PROCESS if plain => Some(Object::Process { pid }),
            CAP_DISPATCHER if first >> 32 == 0 && second >> 48 == 0 => Some(Object::Dispatcher {
                pid,
                index: second as u16,
                count: (second >> 16) as u16,
                core: (second >> 32) as u16,
            }),
            CAP_ENDPOINT if first >> 48 == 0 => Some(Object::Endpoint {
                core: (first >> 32) as u16,
                pid,
                address: second,
            }),
            CAP_FRAME if first.is_multiple_of(4096) && second >> 16 == 0 => Some(Object::Frame {
                core: second as u16,
                frame: first,
            }),
            _ => None,
        }
    }
}

/// A capability's id: the core that made it in the high 16 bits, the
/// core's incarnation (how many times it started again) in the next 16,
/// that incarnation's count below. Never 0.
pub type CapId = u64;

/// Hands out the ids of one core's capabilities.
#[derive(Debug)]
pub struct Ids {
    prefix: u64,
    next: u32,
}

impl Ids {
    /// The ids of core `core` in its `incarnation`: apart from those of its
    /// earlier lives, which other cores' lineages may still hold.
    pub fn new(core: u16, incarnation: u32) -> Self {
        Self {
            prefix: u64::from(core) << 48 | u64::from(incarnation as u16) << 32,
            next: 0,
        }
    }

    /// An id no capability has had (until 2^32 have been handed out in one
    /// incarnation).
    pub fn fresh(&mut self) -> CapId {
        self.next = self.next.wrapping_add(1).max(1);
        self.prefix | u64::from(self.next)
    }
}

/// The capabilities a capability was copied or granted from, oldest
/// first: at most [`MAX_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lineage {
    ids: [CapId; DEPTH],
    len: u8,
}

impl Lineage {
    pub fn ids(&self) -> &[CapId] {
        &self.ids[..usize::from(self.len)]
    }

    pub fn contains(&self, id: CapId) -> bool {
        self.ids().contains(&id)
    }

    /// This lineage with `parent` after it: a child of `parent`'s.
    fn then(self, parent: CapId) -> Result<Lineage, Error> {
        let mut next = self;
        let slot = next
            .ids
            .get_mut(usize::from(self.len))
            .ok_or(Error::TooDeep)?;
        *slot = parent;
        next.len += 1;
        Ok(next)
    }
}

/// A capability in a process's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub object: Object,
    /// `RIGHT_*` bits.
    pub rights: u64,
    pub id: CapId,
    pub lineage: Lineage,
}

/// A capability on its way to another process (a grant, or one handed at
/// spawn): what it names, its rights, and its lineage, which ends with the
/// id of the capability it was made from. It takes an id where it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub object: Object,
    pub rights: u64,
    pub lineage: Lineage,
}

/// The most bytes a [`Sent`] takes in a message.
pub const SENT_BYTES: usize = 8 * (3 + DEPTH) + 2;

impl Sent {
    /// The capability it becomes where it lands, with an id of that core's.
    fn landed(self, ids: &mut Ids) -> Cap {
        Cap {
            object: self.object,
            rights: self.rights,
            id: ids.fresh(),
            lineage: self.lineage,
        }
    }

    /// Its bytes in a message: type, rights, lineage length, the object's
    /// two words, the lineage (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(SENT_BYTES);
        bytes.push(self.object.kind() as u8);
        bytes.push(self.rights as u8);
        bytes.push(self.lineage.len);
        for word in self
            .object
            .words()
            .into_iter()
            .chain(self.lineage.ids().iter().copied())
        {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// The capability `bytes` carries, or `None` if they are not one
    /// [`encode`](Self::encode) makes.
    pub fn decode(bytes: &[u8]) -> Option<Sent> {
        let (&[kind, rights, len], rest) = bytes.split_first_chunk::<3>()?;
        let len = usize::from(len);
        if len > DEPTH || rest.len() != 8 * (2 + len) {
            return None;
        }
        let word = |index: usize| {
            u64::from_le_bytes(rest[index * 8..index * 8 + 8].try_into().expect("8 bytes"))
        };
        let object = Object::from_words(u64::from(kind), [word(0), word(1)])?;
        let mut lineage = Lineage::default();
        for index in 0..len {
            lineage = lineage.then(word(2 + index)).ok()?;
        }
        Some(Sent {
            object,
            rights: u64::from(rights),
            lineage,
        })
    }
}

/// Revoked ids a core remembers, so that a capability made from one
/// before the revocation and still on its way (a grant, a spawn's handed
/// capability) is refused when it lands, and with each how many the core
/// deleted (a revocation asked again answers the same). The newest
/// [`TOMBSTONES`] are kept: a grant that waits in a ring past that many
/// revocations would land.
#[derive(Debug, Default)]
pub struct Tombstones {
    ids: VecDeque<(CapId, u32)>,
}

/// How many revoked ids a core remembers.
pub const TOMBSTONES: usize = 256;

impl Tombstones {
    /// Remembers that `id` was revoked here, deleting `deleted`.
    pub fn bury(&mut self, id: CapId, deleted: u32) {
        if self.ids.len() == TOMBSTONES {
            self.ids.pop_front();
        }
        self.ids.push_back((id, deleted));
    }

    /// How many the revocation of `id` deleted here, if it was revoked
    /// here (and is still remembered).
    pub fn buried(&self, id: CapId) -> Option<u32> {
        self.ids
            .iter()
            .find(|&&(buried, _)| buried == id)
            .map(|&(_, deleted)| deleted)
    }

    /// Whether `sent` comes from a revoked capability.
    pub fn refuse(&self, sent: &Sent) -> bool {
        sent.lineage
            .ids()
            .iter()
            .any(|&id| self.buried(id).is_some())
    }
}

/// A process's capabilities (on one core: each dispatcher of a process
/// has its own table), in [`MAX_CAPS`] slots, and the slots of those
/// granted to it that it has not yet received.
#[derive(Debug, Clone)]
pub struct Table {
    /// On the heap: a table is some 6 KiB, and the kernel moves a
    /// process's `Machine` (which holds it) by value on a small stack.
    slots: Vec<Option<Cap>>,
    granted: VecDeque<u32>,
}

impl Default for Table {
    fn default() -> Self {
        Self {
            slots: alloc::vec![None; SLOTS],
            granted: VecDeque::new(),
        }
    }
}

impl Table {
    /// The table a dispatcher starts with: its own space, process and
    /// dispatcher in slots `SELF_SPACE`, `SELF_PROCESS` and
    /// `SELF_DISPATCHER`.
    pub fn starting(ids: &mut Ids, pid: u32, dispatcher: Object) -> Table {
        let mut table = Table::default();
        let own = [
            (Object::Space { pid }, RIGHT_MAP | RIGHT_READ | RIGHT_COPY),
            (Object::Process { pid }, RIGHT_KILL | RIGHT_COPY),
            (dispatcher, RIGHT_COPY),
        ];
        for (object, rights) in own {
            // Slots 0, 1 and 2, in order: the table is empty.
            table
                .mint(ids, object, rights)
                .expect("an empty table has room");
        }
        table
    }

    /// The capability in `slot`.
    pub fn get(&self, slot: u64) -> Result<&Cap, Error> {
        usize::try_from(slot)
            .ok()
            .and_then(|slot| self.slots.get(slot))
            .and_then(Option::as_ref)
            .ok_or(Error::NoSuchCapability)
    }

    /// The object of `slot`'s capability if it is of type `kind` (`CAP_*`)
    /// and has every right of `needs`.
    pub fn object(&self, slot: u64, kind: u64, needs: u64) -> Result<Object, Error> {
        let cap = self.get(slot)?;
        if cap.object.kind() != kind {
            return Err(Error::WrongCapability);
        }
        if cap.rights & needs != needs {
            return Err(Error::NoRight);
        }
        Ok(cap.object)
    }

    /// Puts `cap` in the first free slot; the slot.
    pub fn insert(&mut self, cap: Cap) -> Result<u32, Error> {
        let free = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(Error::TableFull)?;
        self.slots[free] = Some(cap);
        Ok(free as u32)
    }

    /// A new capability of the table's own (`Spawn`'s child, a channel's
    /// end), with no lineage.
    pub fn mint(&mut self, ids: &mut Ids, object: Object, rights: u64) -> Result<u32, Error> {
        let first = Sent {
            object,
            rights,
            lineage: Lineage::default(),
        };
        self.land(ids, first)
    }

    /// What sending `slot`'s capability with `rights` would carry: it
    /// needs `RIGHT_COPY`, and `rights` no more than it has.
    pub fn send(&self, slot: u64, rights: u64) -> Result<Sent, Error> {
        let cap = self.get(slot)?;
        if cap.rights & RIGHT_COPY == 0 || rights & !cap.rights != 0 {
            return Err(Error::NoRight);
        }
        Ok(Sent {
            object: cap.object,
            rights,
            lineage: cap.lineage.then(cap.id)?,
        })
    }

    /// Copies `slot`'s capability with `rights` into a free slot: the
    /// slot.
    pub fn copy(&mut self, ids: &mut Ids, slot: u64, rights: u64) -> Result<u32, Error> {
        let sent = self.send(slot, rights)?;
        self.land(ids, sent)
    }

    /// Puts `sent` in a free slot, with an id of its own.
    pub fn land(&mut self, ids: &mut Ids, sent: Sent) -> Result<u32, Error> {
        self.insert(sent.landed(ids))
    }

    /// Puts `sent` in `slot` (a spawn's `HANDED`), which must be free.
    pub fn land_at(&mut self, ids: &mut Ids, slot: u64, sent: Sent) -> Result<(), Error> {
        let place = usize::try_from(slot)
            .ok()
            .and_then(|slot| self.slots.get_mut(slot))
            .ok_or(Error::NoSuchCapability)?;
        if place.is_some() {
            return Err(Error::TableFull);
        }
        *place = Some(sent.landed(ids));
        Ok(())
    }

    /// Takes `sent` as granted to the process: in a free slot, which
    /// `receive` then hands it.
    pub fn grant(&mut self, ids: &mut Ids, sent: Sent) -> Result<u32, Error> {
        let slot = self.land(ids, sent)?;
        self.granted.push_back(slot);
        Ok(slot)
    }

    /// The slot of the oldest capability granted and not yet received.
    pub fn receive(&mut self) -> Option<u32> {
        self.granted.pop_front()
    }

    /// Empties `slot`.
    pub fn delete(&mut self, slot: u64) -> Result<Cap, Error> {
        self.get(slot)?;
        let cap = self.slots[slot as usize].take().expect("checked just now");
        self.granted.retain(|granted| u64::from(*granted) != slot);
        Ok(cap)
    }

    /// Deletes every capability made from the one of id `id` (its lineage
    /// holds `id`): those deleted.
    pub fn revoke(&mut self, id: CapId) -> Vec<Cap> {
        self.delete_where(|cap| cap.lineage.contains(id))
    }

    /// Deletes every capability whose object `gone` says is gone (on a core
    /// that left the view): those deleted.
    pub fn forget(&mut self, gone: impl Fn(&Object) -> bool) -> Vec<Cap> {
        self.delete_where(|cap| gone(&cap.object))
    }

    fn delete_where(&mut self, doomed: impl Fn(&Cap) -> bool) -> Vec<Cap> {
        let mut deleted = Vec::new();
        for slot in 0..SLOTS {
            if let Some(cap) = self.slots[slot].filter(&doomed) {
                self.slots[slot] = None;
                self.granted.retain(|granted| *granted as usize != slot);
                deleted.push(cap);
            }
        }
        deleted
    }

    /// Gives `slot`'s capability a fresh id (after a revocation of it):
    /// its old id.
    pub fn renew(&mut self, ids: &mut Ids, slot: u64) -> Result<CapId, Error> {
        self.get(slot)?;
        let cap = self.slots[slot as usize]
            .as_mut()
            .expect("checked just now");
        Ok(core::mem::replace(&mut cap.id, ids.fresh()))
    }

    /// The slots that hold a capability, with it.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Cap)> {
        (0..)
            .zip(self.slots.iter())
            .filter_map(|(slot, cap)| Some((slot, cap.as_ref()?)))
    }

    /// How many slots hold one.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The frames that frame capabilities name, on the core whose pool they
/// are of: how many capabilities name each and how many pages map it. A
/// frame goes back to the pool only once it has neither; until then the
/// kernel keeps it, whoever dropped it last.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Frames {
    counts: BTreeMap<u64, Counts>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    caps: u32,
    maps: u32,
}

/// Whether a frame that was let go of goes back to its pool now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LetGo {
    /// Nothing names or maps it any more: free it.
    Free,
    /// A capability or a page still holds it.
    Kept,
    /// No frame capability ever named it: it was the one page's alone, as
    /// before frame capabilities (free it).
    NotCounted,
}

impl Frames {
    /// A frame just allocated for a capability, which names it.
    pub fn allocated(&mut self, frame: u64) {
        self.counts.insert(frame, Counts { caps: 1, maps: 0 });
    }

    /// Whether frame capabilities name (or named) `frame` and it is kept.
    pub fn counts(&self, frame: u64) -> bool {
        self.counts.contains_key(&frame)
    }

    /// One more capability names `frame` (a copy, a grant, a handing).
    pub fn named(&mut self, frame: u64) {
        if let Some(counts) = self.counts.get_mut(&frame) {
            counts.caps += 1;
        }
    }

    /// One more page maps `frame` (counted from when the map is proposed,
    /// so that the frame stays while the map is under way).
    pub fn mapped(&mut self, frame: u64) {
        if let Some(counts) = self.counts.get_mut(&frame) {
            counts.maps += 1;
        }
    }

    /// A capability naming `frame` was deleted.
    pub fn unnamed(&mut self, frame: u64) -> LetGo {
        self.let_go(frame, |counts| &mut counts.caps)
    }

    /// A page mapping `frame` was unmapped (or a map of it refused, or its
    /// process ended).
    pub fn unmapped(&mut self, frame: u64) -> LetGo {
        self.let_go(frame, |counts| &mut counts.maps)
    }

    fn let_go(&mut self, frame: u64, count: impl Fn(&mut Counts) -> &mut u32) -> LetGo {
        let Some(counts) = self.counts.get_mut(&frame) else {
            return LetGo::NotCounted;
        };
        let held = count(counts);
        *held = held.saturating_sub(1);
        if counts.caps == 0 && counts.maps == 0 {
            self.counts.remove(&frame);
            return LetGo::Free;
        }
        LetGo::Kept
    }
}

/// A revocation on the core that started it: the other cores asked to
/// delete what they hold made from the revoked capability, until each has
/// answered or left the view. A call that failed (no answer in time) to a
/// core still in the view is made again: the revocation ends only when no
/// running core may hold a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The id revoked.
    id: CapId,
    /// Every core asked (or this one), answered or not.
    asked: BTreeSet<u16>,
    waiting: BTreeSet<u16>,
    deleted: u32,
    passed_over: BTreeSet<u16>,
}

/// What to do about a core whose answer did not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// It is still in the view: ask it again.
    AskAgain,
    /// It left the view: it is passed over.
    PassedOver,
}

impl Revocation {
    /// A revocation of `id` that deleted `deleted` capabilities here (core
    /// `me`) and waits for the cores `others`.
    pub fn new(id: CapId, me: u16, deleted: u32, others: impl IntoIterator<Item = u16>) -> Self {
        let waiting: BTreeSet<u16> = others.into_iter().collect();
        let mut asked = waiting.clone();
        asked.insert(me);
        Self {
            id,
            asked,
            waiting,
            deleted,
            passed_over: BTreeSet::new(),
        }
    }

    /// Core `core` is in the view now: whether it must be asked too (it
    /// joined after the revocation began, and a core asked before may have
    /// granted it a copy meanwhile).
    pub fn include(&mut self, core: u16) -> bool {
        let new = self.asked.insert(core);
        if new {
            self.waiting.insert(core);
        }
        new
    }

    /// Core `core` answered that it deleted `deleted`.
    pub fn answered(&mut self, core: u16, deleted: u32) {
        if self.waiting.remove(&core) {
            self.deleted += deleted;
        }
    }

    /// The call to `core` failed; `member`: whether it is in the view now.
    pub fn failed(&mut self, core: u16, member: bool) -> Unanswered {
        if member && self.waiting.contains(&core) {
            return Unanswered::AskAgain;
        }
        if self.waiting.remove(&core) {
            self.passed_over.insert(core);
        }
        Unanswered::PassedOver
    }

    /// The id revoked.
    pub fn id(&self) -> CapId {
        self.id
    }

    /// Whether every core has answered or been passed over.
    pub fn is_done(&self) -> bool {
        self.waiting.is_empty()
    }

    /// How many capabilities were deleted, on every core that answered.
    pub fn deleted(&self) -> u32 {
        self.deleted
    }

    /// The cores passed over: they left the view before answering.
    pub fn passed_over(&self) -> impl Iterator<Item = u16> + '_ {
        self.passed_over.iter().copied()
    }
}

#[cfg(test)]
mod tests;
