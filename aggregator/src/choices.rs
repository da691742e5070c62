//! The named choices of a lookup (ranking, relation, span) and the macro
//! that gives every named enum of the API its names.
//!
//! `named_enum!` is kept by hand rather than taken from strum: strum's
//! derives give `ALL` and the names (strum 0.28 with `derive` adds 2
//! crates, 3.7 s of a cold `cargo build --release`), but neither an error
//! that lists the names (`ranking must be one of llr, count, ..., got
//! "x"`, the 400 body of the API and the CLI's message) nor serde as the
//! name, so each enum would still need its own `FromStr`, `names()` and
//! serde impls: more code than the one macro here.

use crate::llr::PairScore;

/// An enum whose variants have one name each, used by the API, the CLI and
/// the metrics: `ALL`, `name()`, `FromStr` (with an error that lists the
/// names), `Display`, and serde as the name. A variant added here has its
/// name everywhere.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $enum:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $enum {
            $($(#[$vmeta])* $variant,)+
        }

        impl $enum {
            /// Every variant, in declaration order.
            pub const ALL: [$enum; [$($text),+].len()] = [$($enum::$variant),+];

            /// The name the API and the CLI use.
            pub fn name(self) -> &'static str {
                match self {
                    $($enum::$variant => $text,)+
                }
            }

            /// The names, for messages: `a or b`, `one of a, b, c`.
            pub fn names() -> String {
                match $enum::ALL.map($enum::name).as_slice() {
                    [a, b] => format!("{a} or {b}"),
                    names => format!("one of {}", names.join(", ")),
                }
            }
        }

        impl std::str::FromStr for $enum {
            type Err = String;

            fn from_str(name: &str) -> Result<Self, String> {
                $enum::ALL
                    .into_iter()
                    .find(|v| v.name() == name)
                    .ok_or_else(|| format!(concat!($what, " must be {}, got {:?}"), $enum::names(), name))
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $enum {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

named_enum! {
    /// How partners are ranked (`ALL` in the order `evaluate` reports them).
    pub enum Ranking ("ranking") {
        /// Log-likelihood ratio: significance, not popularity.
        Llr = "llr",
        /// Raw co-occurrence count (the seed report's behaviour).
        Count = "count",
        /// Cosine similarity, `ab / sqrt(a b)`: count, discounted by the
        /// partner's popularity.
        Cosine = "cosine",
        /// Jaccard index, `ab / (a + b - ab)`.
        Jaccard = "jaccard",
        /// LLR among pairs seen in at least [`MIN_SUPPORT`] baskets, then the
        /// rarer pairs by LLR: significance without one-off coincidences.
        LlrMinSupport = "llr-min-support",
    }
}

/// Baskets a pair needs for [`Ranking::LlrMinSupport`] to rank it first.
pub const MIN_SUPPORT: u64 = 3;

impl Ranking {
    /// The ranking when neither the request nor `--ranking` names one:
    /// count, which had the best hit rate on held-out days
    /// (scripts/ranking-study.sh, docs/benchmarks.md).
    pub const DEFAULT: Ranking = Ranking::Count;

    /// The score a pair is ranked by (higher first), as the API shows it.
    pub fn score(self, s: &PairScore) -> f64 {
        match self {
            Ranking::Llr | Ranking::LlrMinSupport => s.llr,
            Ranking::Count => s.count as f64,
            Ranking::Cosine => s.cosine,
            Ranking::Jaccard => s.jaccard,
        }
    }

    /// What ranks first: a tier (higher first), then [`score`](Self::score).
    pub(crate) fn key(self, s: &PairScore) -> (bool, f64) {
        let tier = self != Ranking::LlrMinSupport || s.count >= MIN_SUPPORT;
        (tier, self.score(s))
    }
}

named_enum! {
    /// Which pairs: bought together (in one transaction) or viewed together
    /// (in one session). The name is what `top-pairs?relation=` takes.
    pub enum Relation ("relation") {
        /// Products in one transaction.
        Bought = "bought",
        /// Products viewed in one session.
        Viewed = "viewed",
    }
}

impl Relation {
    /// The name of the endpoint and of a response's `relation`:
    /// `bought-together`, `viewed-together`.
    pub fn together(self) -> &'static str {
        match self {
            Relation::Bought => "bought-together",
            Relation::Viewed => "viewed-together",
        }
    }
}

named_enum! {
    /// Counts over the window or over all time. The name is what `span=`
    /// takes, and a response's `window` when it is not a date range.
    pub enum Span ("span") {
        /// The sliding window.
        Window = "window",
        /// Everything seen.
        AllTime = "all-time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_errors_list_them() {
        for r in Ranking::ALL {
            assert_eq!(r.name().parse::<Ranking>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).expect("json"), format!("\"{r}\""));
        }
        for x in Relation::ALL {
            assert_eq!(x.name().parse::<Relation>(), Ok(x));
        }
        for x in Span::ALL {
            assert_eq!(x.name().parse::<Span>(), Ok(x));
        }
        assert_eq!(
            "magic".parse::<Ranking>(),
            Err("ranking must be one of llr, count, cosine, jaccard, llr-min-support, got \"magic\"".into())
        );
        assert_eq!(
            "sold".parse::<Relation>(),
            Err("relation must be bought or viewed, got \"sold\"".into())
        );
        assert_eq!(
            "day".parse::<Span>(),
            Err("span must be window or all-time, got \"day\"".into())
        );
        let span: Span = serde_json::from_str("\"all-time\"").expect("span");
        assert_eq!(span, Span::AllTime);
        assert!(serde_json::from_str::<Span>("\"ever\"").is_err());
    }
}
