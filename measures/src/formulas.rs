//! The shop's scores, defined once.
//!
//! The aggregator (live engagement) and the Arroyo UDF plugin
//! (`aggregator-udf`, its own workspace) call these. The batch computes the
//! same score in SQL (`batch/sql/clv.sql`, which Spark runs too); a test of
//! the batch checks that its numbers equal these on the same data.

/// The seed's engagement score (section 5.2): sessions x 0.3 + converted
/// sessions x 0.5 + products viewed / 100 x 0.2, in that order of
/// operations (the SQL's).
pub fn engagement_score(sessions: f64, converted: f64, viewed: f64) -> f64 {
    sessions * 0.3 + converted * 0.5 + viewed / 100.0 * 0.2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engagement_by_hand() {
        // 2 x 0.3 + 2 x 0.5 + 5 / 100 x 0.2 = 0.6 + 1.0 + 0.01.
        assert!((engagement_score(2.0, 2.0, 5.0) - 1.61).abs() < 1e-12);
        assert_eq!(engagement_score(0.0, 0.0, 0.0), 0.0);
    }
}
