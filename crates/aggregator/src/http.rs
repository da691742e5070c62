//! The lookup API, served while events stream in:
//!
//! - `GET /v1/products/{id}/bought-together?k=10&ranking=count|llr|cosine|jaccard|llr-min-support&span=window|all-time`
//! - `GET /v1/products/{id}/viewed-together` (same parameters)
//! - `GET /v1/users/{id}/engagement`
//! - `GET /v1/top-pairs?relation=bought|viewed&k=10&span=window|all-time`
//! - `GET /healthz`, `GET /metrics` (Prometheus text)
//!
//! Malformed ids and parameters get 400, unknown ids 404, always with a JSON
//! body `{"error": "..."}`; errors map to status codes in one place
//! ([`ApiError`]).

use crate::cooccur::{Partner, Ranking, Relation, Span};
use crate::metrics;
use crate::processor::Aggregator;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rustc_hash::FxHashMap;
use schemas::ids;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// What the API serves from.
pub struct ApiState {
    /// The live model, written by the aggregator, read here.
    pub model: Arc<RwLock<Aggregator>>,
    /// Ranking when the request names none.
    pub default_ranking: Ranking,
    /// Partner answers as sent, with the model version they were made
    /// from: asked again before the model changed, the bytes are sent as
    /// they are (a product page asks the same question many times; the
    /// ranking and the JSON are made once per change, not per request).
    answers: Mutex<Answers>,
}

/// A partner lookup, as the cache knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AnswerKey {
    product: u32,
    relation: Relation,
    k: usize,
    ranking: Ranking,
    span: Span,
}

/// Rendered answers and their total size.
#[derive(Default)]
struct Answers {
    by_key: FxHashMap<AnswerKey, (u64, Bytes)>,
    bytes: usize,
}

/// The cache is emptied when its answers reach this size.
const ANSWER_CACHE_BYTES: usize = 32 << 20;

impl Answers {
    fn get(&self, key: &AnswerKey, version: u64) -> Option<Bytes> {
        self.by_key
            .get(key)
            .filter(|(v, _)| *v == version)
            .map(|(_, b)| b.clone())
    }

    fn put(&mut self, key: AnswerKey, version: u64, body: Bytes) {
        if self.bytes + body.len() > ANSWER_CACHE_BYTES {
            self.by_key.clear();
            self.bytes = 0;
        }
        self.bytes += body.len();
        if let Some((_, old)) = self.by_key.insert(key, (version, body)) {
            self.bytes = self.bytes.saturating_sub(old.len());
        }
    }
}

impl ApiState {
    /// State over a shared model.
    pub fn new(model: Arc<RwLock<Aggregator>>, default_ranking: Ranking) -> Self {
        ApiState {
            model,
            default_ranking,
            answers: Mutex::new(Answers::default()),
        }
    }

    fn answers(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A JSON body already rendered.
fn json_bytes(body: Bytes) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
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

/// The number in `id` if `id` is its canonical spelling (`format` of the
/// number): `prod_` and 10 KB of zeros names no product, and is not echoed.
fn canonical(
    id: &str,
    parse: fn(&str) -> Option<u32>,
    format: fn(u32) -> String,
    example: &str,
) -> Result<u32, ApiError> {
    parse(id).filter(|n| format(*n) == id).ok_or_else(|| {
        let shown: String = id.chars().take(40).collect();
        ApiError::BadRequest(format!("malformed id {shown:?}; expected like {example}"))
    })
}

fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| schemas::time::format(t.naive_utc()))
        .unwrap_or_default()
}

/// Refuses a query parameter other than `known`.
fn only_params(q: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) if known.is_empty() => Err(ApiError::BadRequest(format!(
            "unknown parameter {key:?}; this endpoint takes none"
        ))),
        Some(key) => Err(ApiError::BadRequest(format!(
            "unknown parameter {key:?}; use {}",
            known.join(", ")
        ))),
    }
}

fn params(
    state: &ApiState,
    q: &HashMap<String, String>,
) -> Result<(usize, Ranking, Span), ApiError> {
    only_params(q, &["k", "ranking", "span"])?;
    let k = match q.get("k") {
        None => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=100).contains(k))
            .ok_or_else(|| ApiError::BadRequest(format!("k must be 1 to 100, got {v:?}")))?,
    };
    let ranking = match q.get("ranking") {
        None => state.default_ranking,
        Some(name) => name.parse::<Ranking>().map_err(ApiError::BadRequest)?,
    };
    let span = match q.get("span") {
        None => Span::Window,
        Some(name) => name.parse::<Span>().map_err(ApiError::BadRequest)?,
    };
    Ok((k, ranking, span))
}

fn partners_json(list: &[Partner], ranking: Ranking) -> Vec<Value> {
    list.iter()
        .map(|p| {
            json!({
                "product_id": ids::product_id(p.item),
                "score": ranking.score(&p.score),
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
    relation: Relation,
) -> Result<Response, ApiError> {
    let product = canonical(&id, ids::parse_product_id, ids::product_id, "prod_00123")?;
    let (k, ranking, span) = params(&state, &q)?;
    let key = AnswerKey {
        product,
        relation,
        k,
        ranking,
        span,
    };
    let model = read(&state);
    let version = model.version();
    if let Some(body) = state.answers().get(&key, version) {
        return Ok(json_bytes(body));
    }
    if !model.knows_product(product) {
        return Err(ApiError::NotFound(format!("no events for product {id}")));
    }
    let list = model.together(relation, product, k, ranking, span);
    let window = match (span, model.covers()) {
        (Span::Window, Some((start, end))) => json!({ "start": iso(start), "end": iso(end) }),
        _ => json!(Span::AllTime.name()),
    };
    drop(model);
    let answer = json!({
        "product_id": id,
        "relation": relation.together(),
        "ranking": ranking.name(),
        "window": window,
        "partners": partners_json(&list, ranking),
    });
    // Rendering a `Value` made of plain numbers and strings cannot fail.
    let body = Bytes::from(serde_json::to_vec(&answer).unwrap_or_default());
    state.answers().put(key, version, body.clone());
    Ok(json_bytes(body))
}

/// Records a lookup's latency under its endpoint and status class.
fn timed<T>(endpoint: &str, started: Instant, result: Result<T, ApiError>) -> Result<T, ApiError> {
    let status = match &result {
        Ok(_) => "ok",
        Err(ApiError::BadRequest(_)) => "bad_request",
        Err(ApiError::NotFound(_)) => "not_found",
    };
    metrics::LOOKUP_SECONDS
        .with_label_values(&[endpoint, status])
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn bought(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    timed(
        "bought_together",
        started,
        together(s, id, q, Relation::Bought).await,
    )
}

async fn viewed(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    timed(
        "viewed_together",
        started,
        together(s, id, q, Relation::Viewed).await,
    )
}

async fn engagement(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let answer = match only_params(&q, &[]) {
        Ok(()) => user_engagement(s, id).await,
        Err(e) => Err(e),
    };
    timed("engagement", started, answer)
}

/// `GET /v1/top-pairs?relation=bought|viewed&k=10&span=window|all-time`:
/// the pairs in the most baskets (for dashboards' tables).
async fn top_pairs(
    State(s): State<Arc<ApiState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    timed("top_pairs", started, pairs_list(s, q).await)
}

async fn pairs_list(
    s: Arc<ApiState>,
    mut q: HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let relation = match q.remove("relation") {
        None => Relation::Bought,
        Some(name) => name.parse::<Relation>().map_err(ApiError::BadRequest)?,
    };
    if q.contains_key("ranking") {
        return Err(ApiError::BadRequest(
            "top pairs are ranked by count; use relation, k, span".into(),
        ));
    }
    let (k, _, span) = params(&s, &q)?;
    let model = read(&s);
    let rows: Vec<Value> = model
        .top_pairs(relation, k, span)
        .into_iter()
        .enumerate()
        .map(|(i, (a, b, n))| {
            json!({
                "rank": i + 1,
                "product_a": ids::product_id(a),
                "product_b": ids::product_id(b),
                "count": n,
            })
        })
        .collect();
    Ok(Json(json!({
        "relation": relation.together(),
        "pairs": rows,
    })))
}

async fn user_engagement(s: Arc<ApiState>, id: String) -> Result<Json<Value>, ApiError> {
    let user = canonical(&id, ids::parse_user_id, ids::user_id, "user_000042")?;
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

/// `ok`, or 503 `degraded` while checkpoints fail (the API still answers).
async fn healthz(Query(q): Query<HashMap<String, String>>) -> Response {
    if let Err(e) = only_params(&q, &[]) {
        return e.into_response();
    }
    let failing = metrics::CHECKPOINT_FAILING.get();
    if failing > 0 {
        let body = json!({
            "status": "degraded",
            "checkpoint": format!("the last {failing} checkpoint(s) failed; retrying"),
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({ "status": "ok" })).into_response()
}

/// Every metric of the process (all stages that run in it), after
/// refreshing the aggregator's state gauges.
async fn metrics(
    State(s): State<Arc<ApiState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = only_params(&q, &[]) {
        return e.into_response();
    }
    metrics::observe_state(&read(&s));
    telemetry::metrics_handler().await.into_response()
}

async fn fallback() -> ApiError {
    ApiError::NotFound("no such endpoint; see /v1/products/{id}/bought-together, /v1/products/{id}/viewed-together, /v1/users/{id}/engagement, /v1/top-pairs, /healthz, /metrics".into())
}

/// Every error leaves as JSON: axum's own refusals (a path that is not
/// UTF-8, a method other than GET) come as text or with no body, and are
/// rewritten here to `{"error": ...}` with the same status (and `Allow`).
async fn json_errors(response: Response) -> Response {
    use axum::http::header::{ALLOW, CONTENT_TYPE};
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut out = (status, Json(json!({ "error": message }))).into_response();
    if let Some(allow) = parts.headers.get(ALLOW) {
        out.headers_mut().insert(ALLOW, allow.clone());
    }
    out
}

/// `/v1/products/{id}/bought-together` and its viewed twin.
fn product_route(relation: Relation) -> String {
    format!("/v1/products/{{id}}/{}", relation.together())
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(&product_route(Relation::Bought), get(bought))
        .route(&product_route(Relation::Viewed), get(viewed))
        .route("/v1/users/{id}/engagement", get(engagement))
        .route("/v1/top-pairs", get(top_pairs))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .with_state(state)
        .layer(axum::middleware::map_response(json_errors))
}

/// Serves the API on `listener` until the future is dropped.
/// Connections are capped and idle or half-sent requests time out
/// ([`telemetry::ServerLimits`]).
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ApiState>) -> std::io::Result<()> {
    telemetry::serve_router(listener, router(state), telemetry::ServerLimits::default()).await
}
