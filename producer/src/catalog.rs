//! The shop's reference data: categories, products with price histories,
//! users, and the planted "bought together for a reason" complements.

use crate::config::ShopConfig;
use crate::sampling::{lognormal, pick, shop_price, Alias};
use chrono::{Datelike, Duration, NaiveDate};
use fake::faker::address::en::{CityName, StateName};
use fake::faker::company::en::CatchPhrase;
use fake::faker::name::en::{FirstName, LastName};
use fake::Fake;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use schemas::ids;
use schemas::{Category, DeviceType, GeoData, PricePoint, Product, PurchaseSummary, User};

const CATEGORY_NAMES: [&str; 25] = [
    "Electronics",
    "Computers",
    "Phones & Accessories",
    "Home & Kitchen",
    "Furniture",
    "Garden & Outdoor",
    "Sports & Fitness",
    "Toys & Games",
    "Books",
    "Music",
    "Movies & TV",
    "Clothing",
    "Shoes",
    "Jewelry",
    "Beauty",
    "Health",
    "Grocery",
    "Pet Supplies",
    "Baby",
    "Automotive",
    "Tools & Home Improvement",
    "Office Supplies",
    "Arts & Crafts",
    "Video Games",
    "Luggage & Travel",
];

/// Zipf exponent of product popularity (rank r drawn with weight r^-s).
pub const ZIPF_EXPONENT: f64 = 1.0;

/// Spread (log-normal sigma) of users' activity: how many sessions each
/// has. With [`PROPENSITY_SIGMA`] and [`BASKET_SIGMA`] it sets how unequal
/// customers are; the three are chosen so that the default shop's top 2.5%
/// and top 15% of customers bring about the seed report's 45% and 83% of
/// revenue (docs/data.md).
pub const ACTIVITY_SIGMA: f64 = 2.0;
/// The most sessions a user has, relative to the median user.
pub const ACTIVITY_CAP: f64 = 60.0;
/// Spread of users' chance to buy in a session.
pub const PROPENSITY_SIGMA: f64 = 0.9;
/// Spread of users' basket size.
pub const BASKET_SIGMA: f64 = 1.2;

/// A user's behaviour, hidden from the published data but driving it.
#[derive(Debug, Clone)]
pub struct Persona {
    /// The device the user mostly browses on.
    pub device: DeviceType,
    /// Relative chance of buying in a session.
    pub propensity: f64,
    /// How much the user buys at once: multiplies the number of products
    /// in a cart. Together with the heavy-tailed activity and propensity
    /// it gives the heavy-tailed customer value real shops have (a few
    /// customers buy far more often and far more per order): the gamma-like
    /// mixtures BG/NBD and Gamma-Gamma assume.
    pub basket: f64,
}

/// The generated catalog plus the hidden structure the events are drawn from.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Categories, index i is `cat_{i+1}`.
    pub categories: Vec<Category>,
    /// Products, index i is `prod_{i+1}`.
    pub products: Vec<Product>,
    /// Users, index i is `user_{i+1}`.
    pub users: Vec<User>,
    /// Category index of each product.
    pub product_category: Vec<u32>,
    /// Planted complements of each product (product indexes).
    pub complements: Vec<Vec<u32>>,
    /// Hidden behaviour per user.
    pub personas: Vec<Persona>,
    /// Products that are published dirty (never sold).
    pub dirty_products: Vec<bool>,
    /// Users that are published dirty (never browse).
    pub dirty_users: Vec<bool>,
    pub(crate) popularity: Alias,
    pub(crate) by_category: Vec<(Vec<u32>, Alias)>,
    pub(crate) user_activity: Alias,
}

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// RNG streams reserved for the catalog; event streams start above these.
pub(crate) const STREAM_CATEGORIES: u64 = 1;
pub(crate) const STREAM_PRODUCTS: u64 = 2;
pub(crate) const STREAM_USERS: u64 = 3;
pub(crate) const STREAM_SKELETON: u64 = 4;
pub(crate) const STREAM_FIRST_SESSION: u64 = 1 << 20;

fn title_case(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn day_offset(d: NaiveDate, days: i64) -> NaiveDate {
    d.checked_add_signed(Duration::days(days)).unwrap_or(d)
}

impl Catalog {
    /// Generates the catalog for `cfg` (which must be valid).
    pub fn generate(cfg: &ShopConfig) -> Catalog {
        let start = cfg.start_date;
        let n_cat = cfg.categories as usize;

        // Categories: names, a typical price level, and a relative size.
        let mut rng = rng_for(cfg.seed, STREAM_CATEGORIES);
        let categories: Vec<Category> = (0..n_cat)
            .map(|i| Category {
                category_id: ids::category_id(i as u32 + 1),
                name: CATEGORY_NAMES
                    .get(i)
                    .map_or_else(|| format!("Category {}", i + 1), |n| n.to_string()),
            })
            .collect();
        let price_level: Vec<f64> = (0..n_cat).map(|_| lognormal(&mut rng, 35.0, 0.8)).collect();
        let cat_size = Alias::new_or_uniform(
            &(0..n_cat)
                .map(|_| lognormal(&mut rng, 1.0, 0.4))
                .collect::<Vec<_>>(),
        );
        // Each category is bought with two partner categories (phones with
        // phone accessories, say): that is where most complements come from.
        let partners: Vec<[usize; 2]> = (0..n_cat)
            .map(|c| {
                if n_cat == 1 {
                    return [0, 0];
                }
                let a = (c + 1 + rng.random_range(0..n_cat - 1)) % n_cat;
                let b = (c + 1 + rng.random_range(0..n_cat - 1)) % n_cat;
                [a, b]
            })
            .collect();

        // Products.
        let mut rng = rng_for(cfg.seed, STREAM_PRODUCTS);
        let n_prod = cfg.products as usize;
        let mut products = Vec::with_capacity(n_prod);
        let mut product_category = Vec::with_capacity(n_prod);
        let mut dirty_products = Vec::with_capacity(n_prod);
        for i in 0..n_prod {
            let c = cat_size.sample(&mut rng);
            let creation_date = day_offset(start, -rng.random_range(30..400));
            let base_price = shop_price(lognormal(&mut rng, price_level[c], 0.6));
            let mut price_history = vec![PricePoint {
                price: base_price,
                date: creation_date,
            }];
            let mut price = base_price;
            if rng.random_bool(0.35) {
                let span = (start - creation_date).num_days().max(2);
                price = shop_price(price * rng.random_range(0.8..1.1));
                price_history.push(PricePoint {
                    price,
                    date: day_offset(creation_date, rng.random_range(1..span)),
                });
            }
            if rng.random_bool(0.3) {
                let changes = rng.random_range(1..=2);
                let mut days: Vec<i64> = (0..changes)
                    .map(|_| rng.random_range(1..i64::from(cfg.days).max(2)))
                    .collect();
                days.sort_unstable();
                days.dedup();
                for d in days {
                    price = shop_price(price * rng.random_range(0.75..1.15));
                    price_history.push(PricePoint {
                        price,
                        date: day_offset(start, d),
                    });
                }
            }
            price_history.sort_by_key(|p| p.date);
            products.push(Product {
                product_id: ids::product_id(i as u32 + 1),
                name: title_case(&CatchPhrase().fake_with_rng::<String, _>(&mut rng)),
                category_id: categories[c].category_id.clone(),
                base_price,
                current_stock: rng.random_range(0..500),
                is_active: rng.random_bool(0.97),
                price_history,
                creation_date,
            });
            product_category.push(c as u32);
            dirty_products.push(rng.random_bool(cfg.dirty_share));
        }
        let sellable = |i: usize| products[i].is_active && !dirty_products[i];

        // Popularity: a random rank per product, weight rank^-s.
        let mut order: Vec<usize> = (0..n_prod).collect();
        for i in (1..n_prod).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let mut pop = vec![0.0; n_prod];
        for (rank, &p) in order.iter().enumerate() {
            pop[p] = if sellable(p) {
                ((rank + 1) as f64).powf(-ZIPF_EXPONENT)
            } else {
                0.0
            };
        }
        let popularity = Alias::new_or_uniform(&pop);
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); n_cat];
        for (p, &c) in product_category.iter().enumerate() {
            if sellable(p) {
                members[c as usize].push(p as u32);
            }
        }
        let by_category: Vec<(Vec<u32>, Alias)> = members
            .into_iter()
            .map(|m| {
                let w: Vec<f64> = m.iter().map(|&p| pop[p as usize]).collect();
                let alias = Alias::new_or_uniform(&w);
                (m, alias)
            })
            .collect();
        // Complements favour moderately popular products (sqrt of
        // popularity) so that the planted pairs are sold often enough to be
        // found, but are not simply the best-sellers.
        let soft: Vec<(Vec<u32>, Option<Alias>)> = by_category
            .iter()
            .map(|(m, _)| {
                (
                    m.clone(),
                    Alias::new(
                        &m.iter()
                            .map(|&p| pop[p as usize].sqrt())
                            .collect::<Vec<_>>(),
                    ),
                )
            })
            .collect();
        let mut complements = vec![Vec::new(); n_prod];
        for (p, comps) in complements.iter_mut().enumerate() {
            if !sellable(p) {
                continue;
            }
            let want = if rng.random_bool(0.5) { 3 } else { 2 };
            for _ in 0..want * 4 {
                if comps.len() >= want {
                    break;
                }
                let home = product_category[p] as usize;
                let c = if rng.random_bool(0.7) {
                    partners[home][rng.random_range(0..2)]
                } else {
                    home
                };
                let (m, alias) = &soft[c];
                let Some(alias) = alias else { continue };
                let q = m[alias.sample(&mut rng)];
                if q as usize != p && !comps.contains(&q) {
                    comps.push(q);
                }
            }
        }

        // Users.
        let mut rng = rng_for(cfg.seed, STREAM_USERS);
        let n_users = cfg.users as usize;
        let mut users = Vec::with_capacity(n_users);
        let mut personas = Vec::with_capacity(n_users);
        let mut dirty_users = Vec::with_capacity(n_users);
        let mut activity = Vec::with_capacity(n_users);
        for i in 0..n_users {
            let first: String = FirstName().fake_with_rng(&mut rng);
            let last: String = LastName().fake_with_rng(&mut rng);
            let city: String = CityName().fake_with_rng(&mut rng);
            let state: String = StateName().fake_with_rng(&mut rng);
            let domain = pick(
                &mut rng,
                &[
                    ("gmail.com", 5.0),
                    ("yahoo.com", 2.0),
                    ("outlook.com", 2.0),
                    ("icloud.com", 1.0),
                ],
            );
            users.push(User {
                user_id: ids::user_id(i as u32 + 1),
                email: format!(
                    "{}.{}{}@{}",
                    first.to_lowercase(),
                    last.to_lowercase().replace(' ', ""),
                    i + 1,
                    domain
                ),
                name: format!("{first} {last}"),
                geo_data: GeoData {
                    city,
                    state,
                    country: "US".into(),
                },
                registration_date: day_offset(start, -rng.random_range(1..730)),
                purchase_summary: PurchaseSummary::default(),
            });
            personas.push(Persona {
                device: *pick(
                    &mut rng,
                    &[
                        (DeviceType::Mobile, 55.0),
                        (DeviceType::Desktop, 35.0),
                        (DeviceType::Tablet, 10.0),
                    ],
                ),
                propensity: lognormal(&mut rng, 1.0, PROPENSITY_SIGMA),
                basket: lognormal(&mut rng, 1.0, BASKET_SIGMA).clamp(0.5, 8.0),
            });
            let dirty = rng.random_bool(cfg.dirty_share);
            activity.push(if dirty {
                0.0
            } else {
                // Capped at ACTIVITY_CAP times the median user: uncapped,
                // a sigma of 2 would give a few users thousands of times
                // the median's sessions.
                lognormal(&mut rng, 1.0, ACTIVITY_SIGMA).min(ACTIVITY_CAP)
            });
            dirty_users.push(dirty);
        }
        let user_activity = Alias::new_or_uniform(&activity);

        Catalog {
            categories,
            products,
            users,
            product_category,
            complements,
            personas,
            dirty_products,
            dirty_users,
            popularity,
            by_category,
            user_activity,
        }
    }

    /// Planted complement pairs as `(product_id, complement_id)`.
    pub fn complement_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.complements
            .iter()
            .enumerate()
            .flat_map(move |(p, cs)| {
                cs.iter().map(move |&c| {
                    (
                        self.products[p].product_id.as_str(),
                        self.products[c as usize].product_id.as_str(),
                    )
                })
            })
    }

    /// Index of a product id in [`Catalog::products`].
    pub fn product_index(&self, id: &str) -> Option<usize> {
        let n = ids::parse_product_id(id)? as usize;
        (1..=self.products.len()).contains(&n).then(|| n - 1)
    }

    /// Draws a product by global popularity.
    pub(crate) fn popular(&self, rng: &mut ChaCha8Rng) -> u32 {
        self.popularity.sample(rng) as u32
    }

    /// Draws a product of the given category by popularity.
    pub(crate) fn popular_in(&self, rng: &mut ChaCha8Rng, category: u32) -> Option<u32> {
        let (members, alias) = self.by_category.get(category as usize)?;
        (!members.is_empty()).then(|| members[alias.sample(rng)])
    }
}

/// Day-of-week traffic weight, Monday first: weekends are busier.
pub(crate) fn weekday_weight(d: NaiveDate) -> f64 {
    [0.95, 0.9, 0.95, 1.0, 1.05, 1.2, 1.15][d.weekday().num_days_from_monday() as usize]
}

/// Hour-of-day traffic weight: quiet nights, an evening peak.
pub(crate) const HOUR_WEIGHTS: [f64; 24] = [
    0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.5, 0.7, 0.9, 1.0, 1.0, 1.1, 1.0, 0.95, 0.95, 1.0, 1.1,
    1.3, 1.5, 1.6, 1.4, 1.0, 0.6,
];
