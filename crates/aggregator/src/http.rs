//! The lookup API, served while events stream in:
//!
//! - `GET /v1/products/{id}/bought-together?k=10&ranking=llr|count&span=window|all-time`
//! - `GET /v1/products/{id}/viewed-together` (same parameters)
//! - `GET /v1/users/{id}/engagement`
//! - `GET /healthz`, `GET /metrics` (Prometheus text)
//!
//! Malformed ids and parameters get 400, unknown ids 404, always with a JSON
//! body `{"error": "..."}`; errors map to status codes in one place
//! ([`ApiError`]).

use crate::cooccur::{Partner, Ranking, Span};
use crate::processor::Aggregator;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use schemas::ids;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// What the API serves from.
pub struct ApiState {
    /// The live model, written by the aggregator, read here.
    pub model: Arc<RwLock<Aggregator>>,
    /// Ranking when the request names none.
    pub default_ranking: Ranking,
    lookups: AtomicU64,
}

impl ApiState {
    /// State over a shared model.
    pub fn new(model: Arc<RwLock<Aggregator>>, default_ranking: Ranking) -> Self {
        ApiState {
            model,
            default_ranking,
            lookups: AtomicU64::new(0),
        }
    }
}

/// An API error, mapped to its status code here and nowhere else.
#[derive(Debug)]
pub enum ApiError {
    /// A malformed id or parameter: 400.
    BadRequest(String),
    /// A well-formed id the aggregator has never seen: 404.
    NotFound(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

fn read(state: &ApiState) -> std::sync::RwLockReadGuard<'_, Aggregator> {
    state.model.read().unwrap_or_else(|e| e.into_inner())
}

fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| schemas::time::format(t.naive_utc()))
        .unwrap_or_default()
}

fn params(
    state: &ApiState,
    q: &HashMap<String, String>,
) -> Result<(usize, Ranking, Span), ApiError> {
    for key in q.keys() {
        if !["k", "ranking", "span"].contains(&key.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter {key:?}; use k, ranking, span"
            )));
        }
    }
    let k = match q.get("k") {
        None => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=100).contains(k))
            .ok_or_else(|| ApiError::BadRequest(format!("k must be 1 to 100, got {v:?}")))?,
    };
    let ranking = match q.get("ranking").map(String::as_str) {
        None => state.default_ranking,
        Some("llr") => Ranking::Llr,
        Some("count") => Ranking::Count,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "ranking must be llr or count, got {other:?}"
            )))
        }
    };
    let span = match q.get("span").map(String::as_str) {
        None | Some("window") => Span::Window,
        Some("all-time") => Span::AllTime,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "span must be window or all-time, got {other:?}"
            )))
        }
    };
    Ok((k, ranking, span))
}

fn partners_json(list: &[Partner], ranking: Ranking) -> Vec<Value> {
    list.iter()
        .map(|p| {
            json!({
                "product_id": ids::product_id(p.item),
                "score": match ranking { Ranking::Llr => p.score.llr, Ranking::Count => p.score.count as f64 },
                "count": p.score.count,
                "llr": p.score.llr,
                "support": p.score.support,
                "confidence": p.score.confidence,
                "lift": p.score.lift,
            })
        })
        .collect()
}

async fn together(
    state: Arc<ApiState>,
    id: String,
    q: HashMap<String, String>,
    viewed: bool,
) -> Result<Json<Value>, ApiError> {
    state.lookups.fetch_add(1, Ordering::Relaxed);
    let product = ids::parse_product_id(&id).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "malformed product id {id:?}; expected like prod_00123"
        ))
    })?;
    let (k, ranking, span) = params(&state, &q)?;
    let model = read(&state);
    if !model.knows_product(product) {
        return Err(ApiError::NotFound(format!("no events for product {id}")));
    }
    let list = if viewed {
        model.viewed_together(product, k, ranking, span)
    } else {
        model.bought_together(product, k, ranking, span)
    };
    let window = match (span, model.covers()) {
        (Span::Window, Some((start, end))) => json!({ "start": iso(start), "end": iso(end) }),
        _ => json!("all-time"),
    };
    Ok(Json(json!({
        "product_id": id,
        "relation": if viewed { "viewed-together" } else { "bought-together" },
        "ranking": match ranking { Ranking::Llr => "llr", Ranking::Count => "count" },
        "window": window,
        "partners": partners_json(&list, ranking),
    })))
}

async fn bought(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    together(s, id, q, false).await
}

async fn viewed(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    together(s, id, q, true).await
}

async fn engagement(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    s.lookups.fetch_add(1, Ordering::Relaxed);
    let user = ids::parse_user_id(&id).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "malformed user id {id:?}; expected like user_000042"
        ))
    })?;
    let model = read(&s);
    if !model.knows_user(user) {
        return Err(ApiError::NotFound(format!("no sessions for user {id}")));
    }
    let e = model.engagement(user);
    let window = model.covers().map_or(
        Value::Null,
        |(a, b)| json!({ "start": iso(a), "end": iso(b) }),
    );
    Ok(Json(json!({
        "user_id": id,
        "sessions": e.sessions,
        "converted_sessions": e.converted,
        "products_viewed": e.viewed,
        "cart_abandonments": e.abandoned,
        "engagement_score": e.score(),
        "window": window,
    })))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(s): State<Arc<ApiState>>) -> String {
    let model = read(&s);
    let (bought, viewed) = model.window_pairs();
    let watermark = model.watermark().unwrap_or(0);
    format!(
        "# HELP ecomflow_aggregator_window_pairs Pairs counted in the sliding window.\n\
         # TYPE ecomflow_aggregator_window_pairs gauge\n\
         ecomflow_aggregator_window_pairs{{relation=\"bought\"}} {bought}\n\
         ecomflow_aggregator_window_pairs{{relation=\"viewed\"}} {viewed}\n\
         # HELP ecomflow_aggregator_late_events_total Events behind the watermark.\n\
         # TYPE ecomflow_aggregator_late_events_total counter\n\
         ecomflow_aggregator_late_events_total {}\n\
         # HELP ecomflow_aggregator_watermark_seconds Current watermark, seconds since the epoch.\n\
         # TYPE ecomflow_aggregator_watermark_seconds gauge\n\
         ecomflow_aggregator_watermark_seconds {watermark}\n\
         # HELP ecomflow_aggregator_lookups_total Lookups answered.\n\
         # TYPE ecomflow_aggregator_lookups_total counter\n\
         ecomflow_aggregator_lookups_total {}\n",
        model.late_events(),
        s.lookups.load(Ordering::Relaxed)
    )
}

async fn fallback() -> ApiError {
    ApiError::NotFound("no such endpoint; see /v1/products/{id}/bought-together, /v1/products/{id}/viewed-together, /v1/users/{id}/engagement, /healthz, /metrics".into())
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/products/{id}/bought-together", get(bought))
        .route("/v1/products/{id}/viewed-together", get(viewed))
        .route("/v1/users/{id}/engagement", get(engagement))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .with_state(state)
}

/// Serves the API on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ApiState>) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}
