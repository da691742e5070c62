//! The definitions that must agree wherever they are computed: the pairs of
//! a basket, the significance of a pair, and the shop's engagement score.
//! Plain functions over plain numbers, with no dependency, so that the live
//! aggregator, the nightly batch and the Arroyo UDF plugin (a workspace of
//! its own, on an older arrow) all depend on this one crate and cannot
//! disagree.
//!
//! - [`pairs`]: unordered pairs of distinct items in a basket, with a cap
//!   on items per basket.
//! - [`llr`]: Dunning's log-likelihood ratio (G-test) on the 2x2 table, as
//!   Apache Mahout computes it, and the companion measures (support,
//!   confidence, lift).
//! - [`formulas`]: the seed's engagement score.

pub mod formulas;
pub mod llr;
pub mod pairs;
