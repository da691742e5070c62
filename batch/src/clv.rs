//! Customer value: the seed's formula against BG/NBD + Gamma-Gamma on a
//! holdout period, the 90-day predictions, and the write-back to the users.

use crate::analytics::clv_query;
use crate::engine::Engine;
use crate::predict::{mae, rfm, spearman, BgNbd, GammaGamma, Rfm};
use crate::Result;
use chrono::NaiveDate;
use schemas::CustomerValue;
use serde::Serialize;
use std::collections::BTreeMap;

/// Days predicted ahead for the written-back value.
pub const HORIZON_DAYS: i64 = 90;

/// How one model did on the holdout period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelScore {
    /// Model name.
    pub model: String,
    /// Mean absolute error of predicted vs actual holdout spend, per customer.
    pub mae: f64,
    /// Spearman rank correlation of predicted vs actual holdout spend.
    pub rank_correlation: f64,
    /// Sum of predictions.
    pub predicted_total: f64,
}

/// The holdout check and the fitted models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Last day of the calibration period.
    pub calibration_end: NaiveDate,
    /// Days in the holdout period.
    pub holdout_days: i64,
    /// Customers with a purchase in the calibration period (the ones scored).
    pub customers: u64,
    /// Actual holdout spend of those customers.
    pub actual_total: f64,
    /// One row per model.
    pub scores: Vec<ModelScore>,
    /// BG/NBD fitted on the calibration period.
    pub bgnbd_calibration: BgNbd,
    /// BG/NBD fitted on all the data (used for the written-back value).
    pub bgnbd: BgNbd,
    /// Gamma-Gamma fitted on all the data.
    pub gamma_gamma: GammaGamma,
    /// Expected 90-day spend per user (customers with a purchase only).
    #[serde(skip)]
    pub spend_90d: BTreeMap<String, f64>,
}

fn day_number(d: NaiveDate) -> i64 {
    i64::from(chrono::Datelike::num_days_from_ce(&d))
}

/// Purchases per user and day: user → [(day number, amount)].
fn purchase_days(engine: &Engine) -> Result<BTreeMap<String, Vec<(i64, f64)>>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, Float64Type};
    // Read from the batches as they come (a row per user and day, about
    // 450k on the default shop): through `Table` each of them cost four
    // string copies and a date parse, 0.2 s in all.
    type Days = (
        rustc_hash::FxHashMap<String, Vec<(i64, f64)>>,
        rustc_hash::FxHashMap<String, i64>,
    );
    let parts = engine.fold_partitions(
        "SELECT user_id, \"date\" AS day, SUM(total) AS amount FROM transactions \
         GROUP BY user_id, \"date\"",
        Days::default,
        |(out, numbers), batch| {
            let text = |i: usize| cast(batch.column(i), &DataType::Utf8);
            let (users, days) = (text(0)?, text(1)?);
            let (users, days) = (users.as_string::<i32>(), days.as_string::<i32>());
            let amounts = cast(batch.column(2), &DataType::Float64)?;
            let amounts = amounts.as_primitive::<Float64Type>();
            for r in 0..batch.num_rows() {
                let day = days.value(r);
                let number = match numbers.get(day) {
                    Some(n) => *n,
                    None => {
                        let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| {
                            crate::BatchError::Corrupt(format!("partition date {day:?}: {e}"))
                        })?;
                        numbers.insert(day.to_string(), day_number(d));
                        day_number(d)
                    }
                };
                // NULL reads as "" and 0, as `Table` reads them.
                let user = if users.is_null(r) { "" } else { users.value(r) };
                let amount = if amounts.is_null(r) {
                    0.0
                } else {
                    amounts.value(r)
                };
                match out.get_mut(user) {
                    Some(v) => v.push((number, amount)),
                    None => {
                        out.insert(user.to_string(), vec![(number, amount)]);
                    }
                }
            }
            Ok(())
        },
    )?;
    let mut out: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for (users, _) in parts {
        for (user, days) in users {
            out.entry(user).or_default().extend(days);
        }
    }
    // Each user's days in order (one row per day), as the query's old
    // ORDER BY gave them: the holdout sums add up in that order.
    for days in out.values_mut() {
        days.sort_by_key(|d| d.0);
    }
    Ok(out)
}

/// Fits the models on all but the last `holdout_days` days, scores them
/// and the seed's formula on the holdout, then refits on everything for the
/// 90-day predictions. `None` when there is too little data (fewer than
/// two weeks before the holdout, or under 20 customers).
pub fn predict(
    engine: &Engine,
    first: NaiveDate,
    last: NaiveDate,
    holdout_days: i64,
) -> Result<Option<Prediction>> {
    // No calibration period at all when the holdout reaches past the
    // representable dates (a library caller is not range-checked by clap).
    let Some(calibration_end) =
        chrono::TimeDelta::try_days(holdout_days).and_then(|d| last.checked_sub_signed(d))
    else {
        return Ok(None);
    };
    if (calibration_end - first).num_days() < 14 {
        return Ok(None);
    }
    let purchases = purchase_days(engine)?;
    let cal_end = day_number(calibration_end);

    let mut users = Vec::new();
    let mut cal = Vec::new();
    let mut actual = Vec::new();
    for (user, days) in &purchases {
        let before: Vec<(i64, f64)> = days.iter().copied().filter(|d| d.0 <= cal_end).collect();
        let Some(r) = rfm(&before, cal_end) else {
            continue;
        };
        users.push(user.clone());
        cal.push(r);
        actual.push(
            days.iter()
                .filter(|d| d.0 > cal_end)
                .map(|d| d.1)
                .sum::<f64>(),
        );
    }
    if cal.len() < 20 {
        return Ok(None);
    }

    let end = day_number(last);
    let all: Vec<(String, Rfm)> = purchases
        .iter()
        .filter_map(|(u, d)| rfm(d, end).map(|r| (u.clone(), r)))
        .collect();
    let rows: Vec<Rfm> = all.iter().map(|(_, r)| *r).collect();
    // The calibration fits (scored on the holdout) and the fits on
    // everything (for the written-back prediction) are independent: one
    // pair on each core. Each fit is deterministic, so the answers do not
    // depend on which thread ran it.
    let ((bgnbd, gamma_gamma), (bg_cal, gg_cal)) = stage::join(
        || (BgNbd::fit(&rows).0, GammaGamma::fit(&rows).0),
        || (BgNbd::fit(&cal).0, GammaGamma::fit(&cal).0),
    );
    let t = holdout_days as f64;
    let model: Vec<f64> = cal
        .iter()
        .map(|c| bg_cal.expected_purchases(c, t) * gg_cal.expected_value(c))
        .collect();

    // The seed's formula on the calibration period only.
    let cutoff = calibration_end.format("%Y-%m-%d");
    let seed = engine.table(&format!(
        "SELECT user_id, predicted_future_value FROM ({}) ORDER BY user_id",
        clv_query(&format!("date <= '{cutoff}'"))?
    ))?;
    let mut seed_pfv: BTreeMap<String, f64> = BTreeMap::new();
    for r in 0..seed.rows.len() {
        seed_pfv.insert(
            seed.text(r, "user_id")?,
            seed.f64(r, "predicted_future_value")?,
        );
    }
    let seed_pred: Vec<f64> = users
        .iter()
        .map(|u| seed_pfv.get(u).copied().unwrap_or(0.0))
        .collect();
    // A naive baseline: calibration spend per day, carried forward.
    let naive: Vec<f64> = users
        .iter()
        .zip(&cal)
        .map(|(u, c)| {
            let spent: f64 = purchases
                .get(u)
                .map(|d| d.iter().filter(|d| d.0 <= cal_end).map(|d| d.1).sum())
                .unwrap_or(0.0);
            spent / (c.t_cal + 1.0) * t
        })
        .collect();

    let score = |name: &str, pred: &[f64]| ModelScore {
        model: name.to_string(),
        mae: mae(pred, &actual),
        rank_correlation: spearman(pred, &actual),
        predicted_total: pred.iter().sum(),
    };
    let scores = vec![
        score("BG/NBD + Gamma-Gamma", &model),
        score("seed formula (AOV x engagement x 0.5)", &seed_pred),
        score("spend rate so far x days", &naive),
    ];

    // The written-back prediction, from the fits on everything.
    let spend_90d = all
        .iter()
        .map(|(u, r)| {
            let v =
                bgnbd.expected_purchases(r, HORIZON_DAYS as f64) * gamma_gamma.expected_value(r);
            (u.clone(), v)
        })
        .collect();

    Ok(Some(Prediction {
        calibration_end,
        holdout_days,
        customers: users.len() as u64,
        actual_total: actual.iter().sum(),
        scores,
        bgnbd_calibration: bg_cal,
        bgnbd,
        gamma_gamma,
        spend_90d,
    }))
}

/// Every user's value, from the `segments` table and the predictions.
pub fn customer_values(
    engine: &Engine,
    prediction: Option<&Prediction>,
    as_of: NaiveDate,
) -> Result<Vec<CustomerValue>> {
    let t = engine.table(
        "SELECT user_id, segment, total_clv, total_spent, predicted_future_value, \
         engagement_score FROM segments ORDER BY user_id",
    )?;
    let mut out = Vec::with_capacity(t.rows.len());
    for r in 0..t.rows.len() {
        let user_id = t.text(r, "user_id")?;
        let predicted = prediction.map(|p| p.spend_90d.get(&user_id).copied().unwrap_or(0.0));
        out.push(CustomerValue {
            segment: t.text(r, "segment")?,
            total_clv: t.f64(r, "total_clv")?,
            total_spent: t.f64(r, "total_spent")?,
            predicted_future_value: t.f64(r, "predicted_future_value")?,
            engagement_score: t.f64(r, "engagement_score")?,
            predicted_spend_90d: predicted,
            as_of,
            user_id,
        });
    }
    Ok(out)
}
