//! Numbers for ids of any format.
//!
//! The window's tables are keyed by dense `u32` numbers. An id of the
//! generated shop's form (`prod_00123`, `user_000042`) is its own number,
//! read from its digits on the decoding thread with no table and no lock;
//! any other id (a SKU, a UUID, `12345`, `Café-Noir`) gets the next free
//! number from [`FIRST_NAMED`] up the first time the state sees it, and the
//! table that maps it both ways is part of the checkpoint. So the generated
//! shop pays nothing for ids of other forms, and a shop with its own ids
//! pays one hash lookup per id.
//!
//! An id is of the generated form only if printing its number gives the id
//! back: `prod_000123` (one zero too many) is a name like any other, not
//! product 123, so two spellings never count as one product.

use rustc_hash::FxHashMap;
use schemas::codec::{DecodeError, Decoder, Encoder};
use std::borrow::Cow;
use std::io::{self, Write};

/// The first number given to a named (not generated-form) id; generated
/// ids' numbers are below it.
pub const FIRST_NAMED: u32 = 1 << 31;

/// Marks, in a decoded event's items, an id still to be numbered by the
/// state (see [`crate::processor::Event`]). No id ever gets this number.
pub const UNNUMBERED: u32 = u32::MAX;

/// Which ids a table numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// Product ids: `prod_` and at least 5 digits.
    Product,
    /// User ids: `user_` and at least 6 digits.
    User,
}

impl IdKind {
    /// The number of an id of the generated form, if `id` is one (and
    /// its number is below [`FIRST_NAMED`]).
    pub fn generated_number(self, id: &str) -> Option<u32> {
        match self {
            IdKind::Product => schemas::ids::parse_product_id(id),
            IdKind::User => schemas::ids::parse_user_id(id),
        }
        .filter(|&n| n < FIRST_NAMED)
    }

    /// The generated-form id of number `n` (below [`FIRST_NAMED`]).
    fn generated_id(self, n: u32) -> String {
        match self {
            IdKind::Product => schemas::ids::product_id(n),
            IdKind::User => schemas::ids::user_id(n),
        }
    }
}

/// The numbers of one kind of id: generated-form ids by their digits,
/// others by a table filled as they arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    kind: IdKind,
    by_name: FxHashMap<Box<str>, u32>,
    /// Names by number minus [`FIRST_NAMED`].
    names: Vec<Box<str>>,
}

impl Names {
    /// An empty table for `kind`.
    pub fn new(kind: IdKind) -> Self {
        Names {
            kind,
            by_name: FxHashMap::default(),
            names: Vec::new(),
        }
    }

    /// The number of `id` if it has one (generated form, or seen before).
    pub fn number(&self, id: &str) -> Option<u32> {
        self.kind
            .generated_number(id)
            .or_else(|| self.by_name.get(id).copied())
    }

    /// The number of a named id, given one if it is new; `None` once every
    /// number from [`FIRST_NAMED`] to just below [`UNNUMBERED`] is taken.
    pub fn number_named(&mut self, id: &str) -> Option<u32> {
        if let Some(&n) = self.by_name.get(id) {
            return Some(n);
        }
        let n = u32::try_from(self.names.len())
            .ok()
            .and_then(|i| FIRST_NAMED.checked_add(i))
            .filter(|&n| n < UNNUMBERED)?;
        let name: Box<str> = id.into();
        self.names.push(name.clone());
        self.by_name.insert(name, n);
        Some(n)
    }

    /// The id of number `n`.
    pub fn id(&self, n: u32) -> Cow<'_, str> {
        match n.checked_sub(FIRST_NAMED) {
            None => Cow::Owned(self.kind.generated_id(n)),
            Some(i) => match self.names.get(i as usize) {
                Some(name) => Cow::Borrowed(name),
                // Numbers come from this table: a miss is a bug, shown
                // rather than hidden.
                None => Cow::Owned(format!("(unknown #{n})")),
            },
        }
    }

    /// Named ids held.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no named id is held.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Bytes on the heap (an estimate: names, and the map's buckets).
    pub fn heap_bytes(&self) -> usize {
        let text: usize = self.names.iter().map(|n| n.len()).sum();
        2 * text
            + self.names.capacity() * std::mem::size_of::<Box<str>>()
            + self.by_name.capacity() * (std::mem::size_of::<(Box<str>, u32)>() + 1)
    }

    /// Writes the names in number order.
    pub fn encode<W: Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        e.usize(self.names.len())?;
        for name in &self.names {
            e.str(name)?;
        }
        Ok(())
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(kind: IdKind, d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut names = Names::new(kind);
        for _ in 0..d.count()? {
            let name = d.str()?;
            if names.by_name.contains_key(name.as_str()) {
                return Err(DecodeError(format!("id {name:?} named twice")));
            }
            names
                .number_named(&name)
                .ok_or_else(|| DecodeError("more named ids than numbers".into()))?;
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_their_own_numbers_and_only_their_exact_spelling() {
        let p = IdKind::Product;
        assert_eq!(p.generated_number("prod_00123"), Some(123));
        assert_eq!(p.generated_number("prod_123456"), Some(123_456));
        assert_eq!(p.generated_number("prod_000123"), None);
        assert_eq!(p.generated_number("prod_0123"), None);
        assert_eq!(p.generated_number("prod_0012a"), None);
        assert_eq!(p.generated_number("prod_2147483648"), None);
        assert_eq!(p.generated_number("prod_99999999999"), None);
        assert_eq!(p.generated_number("user_000042"), None);
        assert_eq!(IdKind::User.generated_number("user_000042"), Some(42));
        assert_eq!(IdKind::User.generated_number("user_00042"), None);
    }

    #[test]
    fn named_ids_get_numbers_in_order_and_round_trip() {
        let mut names = Names::new(IdKind::Product);
        assert_eq!(names.number("SKU-00060"), None);
        assert_eq!(names.number_named("SKU-00060"), Some(FIRST_NAMED));
        assert_eq!(names.number_named("Café-Noir"), Some(FIRST_NAMED + 1));
        assert_eq!(names.number_named("SKU-00060"), Some(FIRST_NAMED));
        assert_eq!(names.number("Café-Noir"), Some(FIRST_NAMED + 1));
        assert_eq!(names.number("prod_00007"), Some(7));
        assert_eq!(names.id(FIRST_NAMED + 1), "Café-Noir");
        assert_eq!(names.id(7), "prod_00007");
        assert_eq!(names.len(), 2);

        let mut bytes = Vec::new();
        let mut e = Encoder::new(&mut bytes);
        names.encode(&mut e).expect("to memory");
        e.finish().expect("to memory");
        let mut d = Decoder::new(&bytes);
        assert_eq!(
            Names::decode(IdKind::Product, &mut d).expect("decodes"),
            names
        );
        assert!(d.done());
    }

    #[test]
    fn a_name_written_twice_is_an_error() {
        let mut bytes = Vec::new();
        let mut e = Encoder::new(&mut bytes);
        e.usize(2)
            .and_then(|()| e.str("a"))
            .and_then(|()| e.str("a"))
            .expect("to memory");
        e.finish().expect("to memory");
        assert!(Names::decode(IdKind::User, &mut Decoder::new(&bytes)).is_err());
    }
}
