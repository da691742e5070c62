//! The size and shape of the generated shop.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Everything that determines the generated data: same config, same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// First simulated day.
    pub start_date: NaiveDate,
    /// Number of simulated days.
    pub days: u32,
    /// Registered users.
    pub users: u32,
    /// Products in the catalog.
    pub products: u32,
    /// Product categories.
    pub categories: u32,
    /// Browsing sessions over the whole period.
    pub sessions: u64,
    /// Transactions over the whole period (one per converted session).
    pub transactions: u64,
    /// Share of records made deliberately dirty, 0..=1.
    pub dirty_share: f64,
    /// Share of sessions that put items in the cart and leave.
    pub abandonment: f64,
}

impl Default for ShopConfig {
    fn default() -> Self {
        ShopConfig {
            seed: 42,
            start_date: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default(),
            days: 90,
            users: 10_000,
            products: 5_000,
            categories: 25,
            sessions: 2_000_000,
            transactions: 500_000,
            dirty_share: 0.0025,
            abandonment: 0.18,
        }
    }
}

/// A configuration that cannot produce a shop.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A count that must be at least one is zero.
    #[error("--{0} must be at least 1")]
    Zero(&'static str),
    /// A share outside 0..=1.
    #[error("--{name} must be between 0 and 1, got {value}")]
    Share {
        /// Flag name.
        name: &'static str,
        /// Value given.
        value: f64,
    },
    /// More purchases and abandoned carts than sessions.
    #[error(
        "{transactions} transactions plus {abandoned} abandoned carts need at least that many sessions, but --sessions is {sessions}"
    )]
    TooFewSessions {
        /// Transactions asked for.
        transactions: u64,
        /// Abandoned sessions implied by the abandonment share.
        abandoned: u64,
        /// Sessions asked for.
        sessions: u64,
    },
    /// A start date outside the range timestamps and row keys can hold.
    #[error("--start-date must be between {first} and {last}, got {got}")]
    StartDate {
        /// Earliest start.
        first: NaiveDate,
        /// Latest start.
        last: NaiveDate,
        /// Value given.
        got: NaiveDate,
    },
    /// Ids have a fixed width, as in the seed.
    #[error("--{name} is at most {max} (the id format has that many digits)")]
    TooMany {
        /// Flag name.
        name: &'static str,
        /// Largest value.
        max: u64,
    },
}

impl ShopConfig {
    /// The range of `start_date` that [`ShopConfig::validate`] accepts.
    pub const START_DATES: (NaiveDate, NaiveDate) = (
        match NaiveDate::from_ymd_opt(1997, 1, 1) {
            Some(d) => d,
            None => NaiveDate::MIN,
        },
        match NaiveDate::from_ymd_opt(2199, 12, 31) {
            Some(d) => d,
            None => NaiveDate::MAX,
        },
    );

    /// Abandoned sessions implied by the abandonment share.
    pub fn abandoned_sessions(&self) -> u64 {
        (self.sessions as f64 * self.abandonment).round() as u64
    }

    /// Checks the configuration, with a message naming the flag at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("days", u64::from(self.days)),
            ("users", u64::from(self.users)),
            ("products", u64::from(self.products)),
            ("categories", u64::from(self.categories)),
            ("sessions", self.sessions),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        for (name, max, v) in [
            ("users", 999_999, u64::from(self.users)),
            ("products", 99_999, u64::from(self.products)),
            ("categories", 999, u64::from(self.categories)),
            ("days", 3_650, u64::from(self.days)),
            ("sessions", 1 << 40, self.sessions),
        ] {
            if v > max {
                return Err(ConfigError::TooMany { name, max });
            }
        }
        for (name, value) in [
            ("dirty-share", self.dirty_share),
            ("abandonment", self.abandonment),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Share { name, value });
            }
        }
        // Products and users are created up to two years before the start,
        // on or after 1995-01-01, the earliest event time the validator
        // accepts; row keys hold epoch milliseconds in 13 digits (until
        // 2286): 1997..=2199 keeps every date of a shop of up to 3,650 days
        // inside.
        let (first, last) = Self::START_DATES;
        if !(first..=last).contains(&self.start_date) {
            return Err(ConfigError::StartDate {
                first,
                last,
                got: self.start_date,
            });
        }
        let abandoned = self.abandoned_sessions();
        if self.transactions + abandoned > self.sessions {
            return Err(ConfigError::TooFewSessions {
                transactions: self.transactions,
                abandoned,
                sessions: self.sessions,
            });
        }
        Ok(())
    }

    /// A small shop for tests and demos, the default shape scaled down.
    pub fn small() -> Self {
        ShopConfig {
            users: 500,
            products: 400,
            categories: 12,
            sessions: 40_000,
            transactions: 10_000,
            ..ShopConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seed_shop_and_valid() {
        let c = ShopConfig::default();
        assert_eq!(
            (c.users, c.products, c.sessions, c.transactions, c.days),
            (10_000, 5_000, 2_000_000, 500_000, 90)
        );
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.abandoned_sessions(), 360_000);
    }

    #[test]
    fn bad_configs_name_the_flag() {
        let c = ShopConfig {
            sessions: 100,
            transactions: 90,
            ..ShopConfig::small()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::TooFewSessions {
                transactions: 90,
                abandoned: 18,
                sessions: 100
            })
        );
        let c = ShopConfig {
            dirty_share: 1.5,
            ..ShopConfig::small()
        };
        assert!(c
            .validate()
            .map_err(|e| e.to_string())
            .unwrap_err()
            .contains("--dirty-share"));
        let c = ShopConfig {
            users: 0,
            ..ShopConfig::small()
        };
        assert_eq!(c.validate(), Err(ConfigError::Zero("users")));
        let c = ShopConfig {
            products: 100_000,
            ..ShopConfig::small()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::TooMany {
                name: "products",
                ..
            })
        ));
        for (y, m, d, ok) in [
            (262_142, 12, 1, false),
            (1996, 12, 31, false),
            (1997, 1, 1, true),
            (2199, 12, 31, true),
            (2200, 1, 1, false),
        ] {
            let c = ShopConfig {
                start_date: NaiveDate::from_ymd_opt(y, m, d).expect("test date"),
                ..ShopConfig::small()
            };
            assert_eq!(c.validate().is_ok(), ok, "{y}-{m}-{d}");
        }
    }
}
