//! The lookup API, served while events stream in:
//!
//! - `GET /v1/products/{id}/bought-together?k=10&ranking=count|llr|cosine|jaccard|llr-min-support&span=window|all-time`
//! - `GET /v1/products/{id}/viewed-together` (same parameters)
//! - `GET /v1/users/{id}/engagement`
//! - `GET /v1/top-pairs?relation=bought|viewed&k=10&span=window|all-time`
//! - `GET /healthz`, `GET /metrics` (Prometheus text)
//!
//! An id is any UTF-8 text of 1 to [`MAX_ID_BYTES`] bytes, percent-encoded
//! in the path (`/v1/products/SKU%2F12/...` for `SKU/12`). Malformed ids
//! and parameters get 400, ids with no event in the live window 404,
//! always with a JSON body `{"error": "..."}`; errors map to status codes
//! in one place ([`ApiError`]).

use crate::choices::{Ranking, Relation, Span};
use crate::cooccur::Partner;
pub use crate::endpoint::Endpoint;
use crate::metrics;
use crate::processor::Aggregator;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use rustc_hash::FxHashMap;
use schemas::validate::MAX_ID_BYTES;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The query parameters of an endpoint, as a struct: a parameter the
/// struct does not have, or a value that does not parse, is a 400 with
/// serde's message (which names the parameters there are).
struct Params<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(Params(q)),
            // "k: must be 1 to 100, got \"0\"", without axum's preamble.
            Err(e) => {
                let text = e.body_text();
                let text = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                Err(ApiError::BadRequest(text.to_string()))
            }
        }
    }
}

/// `?k=&ranking=&span=` of the partner lookups.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerQuery {
    #[serde(default)]
    k: TopK,
    ranking: Option<Ranking>,
    #[serde(default = "default_span")]
    span: Span,
}

/// `?relation=&k=&span=` of `/v1/top-pairs` (ranked by count only).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopPairsQuery {
    #[serde(default = "default_relation")]
    relation: Relation,
    #[serde(default)]
    k: TopK,
    #[serde(default = "default_span")]
    span: Span,
}

/// Counts over the window unless `span=` says otherwise.
fn default_span() -> Span {
    Span::Window
}

/// Bought-together pairs unless `relation=` says otherwise.
fn default_relation() -> Relation {
    Relation::Bought
}

/// No parameters at all.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

/// `?from=&to=` of `/v1/products/{id}/daily`: days, both included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DailyQuery {
    from: Option<Day>,
    to: Option<Day>,
}

/// A day in a query: `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy)]
struct Day(NaiveDate);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map(Day)
            .map_err(|_| serde::de::Error::custom(format!("must be a day, YYYY-MM-DD, got {v:?}")))
    }
}

/// Days a daily lookup covers when `from=` is not given, ending at `to`.
pub const DAILY_DEFAULT_DAYS: u64 = 30;

/// The most days one daily lookup may cover.
pub const DAILY_MAX_DAYS: i64 = 366;

/// A product's counts on one day: the wide-column store's
/// `product_daily`, which the nightly batch writes once a day is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    /// The day (`YYYY-MM-DD`).
    pub day: NaiveDate,
    /// Sessions that viewed the product.
    pub views: u64,
    /// Units put in carts.
    pub cart_adds: u64,
    /// Units bought (in the carts of converted sessions).
    pub purchases: u64,
}

/// Where the API reads a product's daily counts: the wide-column store,
/// which the binary wires in ([`ApiState::serve_daily`]). Blocking: the API
/// calls it off its async threads.
pub trait DailySource: Send + Sync {
    /// The product's counts for each day in `[from, to]` that has any,
    /// oldest first; an error says why the store could not answer.
    fn product_daily(
        &self,
        product: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayCounts>, String>;
}

/// The answer of `/v1/products/{id}/daily`.
#[derive(Debug, Serialize)]
struct DailyAnswer {
    product_id: String,
    from: NaiveDate,
    to: NaiveDate,
    days: Vec<DayCounts>,
}

/// `k=`: how many answers, 1 to 100; 10 when not given.
#[derive(Debug, Clone, Copy)]
struct TopK(usize);

impl Default for TopK {
    fn default() -> Self {
        TopK(10)
    }
}

impl<'de> Deserialize<'de> for TopK {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        v.parse::<usize>()
            .ok()
            .filter(|k| (1..=100).contains(k))
            .map(TopK)
            .ok_or_else(|| serde::de::Error::custom(format!("must be 1 to 100, got {v:?}")))
    }
}

/// `{"error": ...}`, the body of every refusal.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

/// A date range in a response: the window the counts cover.
#[derive(Serialize)]
struct Range {
    start: String,
    end: String,
}

impl Range {
    fn new((start, end): (i64, i64)) -> Range {
        Range {
            start: iso(start),
            end: iso(end),
        }
    }
}

/// What a partner lookup's counts cover: a date range, or `"all-time"`.
#[derive(Serialize)]
#[serde(untagged)]
enum Covers {
    Range(Range),
    Span(Span),
}

/// The answer of `/v1/products/{id}/bought-together` (and viewed).
#[derive(Serialize)]
struct PartnersAnswer<'a> {
    product_id: &'a str,
    relation: &'static str,
    ranking: Ranking,
    window: Covers,
    partners: Vec<PartnerRow>,
}

/// One partner and its scores.
#[derive(Serialize)]
struct PartnerRow {
    product_id: String,
    score: f64,
    count: u64,
    llr: f64,
    support: f64,
    confidence: f64,
    lift: f64,
}

/// The answer of `/v1/top-pairs`.
#[derive(Serialize)]
struct TopPairsAnswer {
    relation: &'static str,
    pairs: Vec<PairRow>,
}

/// One pair of `/v1/top-pairs`.
#[derive(Serialize)]
struct PairRow {
    rank: usize,
    product_a: String,
    product_b: String,
    count: u64,
}

/// The answer of `/v1/users/{id}/engagement`.
#[derive(Serialize)]
struct EngagementAnswer {
    user_id: String,
    sessions: u64,
    converted_sessions: u64,
    products_viewed: u64,
    cart_abandonments: u64,
    engagement_score: f64,
    window: Option<Range>,
}

/// The answer of `/livez`, `/readyz` and `/healthz`.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint: Option<String>,
}

/// The API's OpenAPI 3 document (`docs/openapi.json`), served at
/// `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// What the API serves from.
pub struct ApiState {
    /// The live model, written by the aggregator, read here.
    pub model: crate::SharedModel,
    /// Ranking when the request names none.
    pub default_ranking: Ranking,
    /// Partner answers as sent, with the model version they were made
    /// from: asked again before the model changed, the bytes are sent as
    /// they are (a product page asks the same question many times; the
    /// ranking and the JSON are made once per change, not per request).
    answers: Mutex<Answers>,
    /// Where daily counts are read, once this process has the store open
    /// (the aggregator and its API start before the stores).
    daily: std::sync::OnceLock<Arc<dyn DailySource>>,
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
    pub fn new(model: crate::SharedModel, default_ranking: Ranking) -> Self {
        ApiState {
            model,
            default_ranking,
            answers: Mutex::new(Answers::default()),
            daily: std::sync::OnceLock::new(),
        }
    }

    /// Answers `/v1/products/{id}/daily` from `source` from now on; until
    /// then (or in a process without the store), that endpoint answers 503.
    /// A second source is ignored.
    pub fn serve_daily(&self, source: Arc<dyn DailySource>) {
        let _ = self.daily.set(source);
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
    /// What answers it is not there (a store not opened or not
    /// reachable): 503.
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        };
        (status, Json(ErrorBody { error: message })).into_response()
    }
}

fn read(state: &ApiState) -> parking_lot::RwLockReadGuard<'_, Aggregator> {
    state.model.read()
}

/// Refuses an id no record can carry: empty, or longer than
/// [`MAX_ID_BYTES`] (not echoed whole).
fn checked_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        let shown: String = id.chars().take(40).collect();
        return Err(ApiError::BadRequest(format!(
            "malformed id {shown:?} ({} bytes): ids are 1 to {MAX_ID_BYTES} bytes of UTF-8, \
             percent-encoded in the path",
            id.len()
        )));
    }
    Ok(())
}

/// The 404 for an id the live window has no event for: what the window
/// covers, and where the rest of the history is.
fn not_in_window(what: &str, id: &str, model: &Aggregator) -> ApiError {
    let covers = match model.covers() {
        Some((start, end)) => format!(
            "the live window covers {} to {}",
            iso(start),
            iso(end.saturating_sub(1))
        ),
        None => "the live window holds no events yet".to_string(),
    };
    ApiError::NotFound(format!(
        "no events for {what} {id} in the live window ({covers}); the stores and the nightly \
         report hold all of its history"
    ))
}

fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| schemas::time::format(t.naive_utc()))
        .unwrap_or_default()
}

fn partner_rows(model: &Aggregator, list: &[Partner], ranking: Ranking) -> Vec<PartnerRow> {
    list.iter()
        .map(|p| PartnerRow {
            product_id: model.product_id(p.item).into_owned(),
            score: ranking.score(&p.score),
            count: p.score.count,
            llr: p.score.llr,
            support: p.score.support,
            confidence: p.score.confidence,
            lift: p.score.lift,
        })
        .collect()
}

async fn together(
    state: Arc<ApiState>,
    id: String,
    q: Result<Params<PartnerQuery>, ApiError>,
    relation: Relation,
) -> Result<Response, ApiError> {
    checked_id(&id)?;
    let Params(q) = q?;
    let (k, ranking, span) = (q.k.0, q.ranking.unwrap_or(state.default_ranking), q.span);
    let model = read(&state);
    let product = model
        .product_number(&id)
        .filter(|&p| model.knows_product(p))
        .ok_or_else(|| not_in_window("product", &id, &model))?;
    let key = AnswerKey {
        product,
        relation,
        k,
        ranking,
        span,
    };
    let version = model.version();
    if let Some(body) = state.answers().get(&key, version) {
        return Ok(json_bytes(body));
    }
    let list = model.together(relation, product, k, ranking, span);
    let window = match (span, model.covers()) {
        (Span::Window, Some(range)) => Covers::Range(Range::new(range)),
        _ => Covers::Span(Span::AllTime),
    };
    let partners = partner_rows(&model, &list, ranking);
    drop(model);
    let answer = PartnersAnswer {
        product_id: &id,
        relation: relation.together(),
        ranking,
        window,
        partners,
    };
    // Plain numbers and strings: rendering cannot fail.
    let body = Bytes::from(serde_json::to_vec(&answer).unwrap_or_default());
    state.answers().put(key, version, body.clone());
    Ok(json_bytes(body))
}

/// Records a lookup's latency under its endpoint and status class.
fn timed<T>(
    endpoint: Endpoint,
    started: Instant,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let status = match &result {
        Ok(_) => "ok",
        Err(ApiError::BadRequest(_)) => "bad_request",
        Err(ApiError::NotFound(_)) => "not_found",
        Err(ApiError::Unavailable(_)) => "unavailable",
    };
    metrics::LOOKUP_SECONDS
        .with_label_values(&[endpoint.name(), status])
        .observe(started.elapsed().as_secs_f64());
    result
}

/// `/v1/products/{id}/bought-together` and its viewed twin.
async fn partners(
    relation: Relation,
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    q: Result<Params<PartnerQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let endpoint = match relation {
        Relation::Bought => Endpoint::BoughtTogether,
        Relation::Viewed => Endpoint::ViewedTogether,
    };
    timed(endpoint, started, together(s, id, q, relation).await)
}

async fn engagement(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    q: Result<Params<NoQuery>, ApiError>,
) -> Result<Json<EngagementAnswer>, ApiError> {
    let started = Instant::now();
    let answer = match q {
        Ok(_) => user_engagement(s, id).await,
        Err(e) => Err(e),
    };
    timed(Endpoint::Engagement, started, answer)
}

/// `GET /v1/products/{id}/daily?from=YYYY-MM-DD&to=YYYY-MM-DD`: the
/// product's views, cart adds and purchases per day, from the wide-column
/// store (complete days only). `to` defaults to the day of the newest
/// event the aggregator has seen, `from` to [`DAILY_DEFAULT_DAYS`] days
/// ending at `to`.
async fn product_daily(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    q: Result<Params<DailyQuery>, ApiError>,
) -> Result<Json<DailyAnswer>, ApiError> {
    let started = Instant::now();
    let answer = match q {
        Ok(Params(q)) => daily_counts(&s, id, &q).await,
        Err(e) => Err(e),
    };
    timed(Endpoint::ProductDaily, started, answer)
}

async fn daily_counts(
    s: &ApiState,
    id: String,
    q: &DailyQuery,
) -> Result<Json<DailyAnswer>, ApiError> {
    checked_id(&id)?;
    let source = s.daily.get().cloned().ok_or_else(|| {
        ApiError::Unavailable(
            "daily counts are read from the wide-column store, which this process has not \
             opened: `ecomflow replay` serves them, and `ecomflow serve` on an embedded data dir"
                .to_string(),
        )
    })?;
    let to = match q.to {
        Some(Day(to)) => to,
        None => {
            let newest = read(s).newest_event();
            newest
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.date_naive())
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "no events seen yet to take `to` from: give to=YYYY-MM-DD".to_string(),
                    )
                })?
        }
    };
    let from = match q.from {
        Some(Day(from)) => from,
        None => to - chrono::Days::new(DAILY_DEFAULT_DAYS - 1),
    };
    if from > to || (to - from).num_days() >= DAILY_MAX_DAYS {
        return Err(ApiError::BadRequest(format!(
            "from={from} to={to}: from must not be after to, and a lookup covers at most \
             {DAILY_MAX_DAYS} days"
        )));
    }
    let product = id.clone();
    let days = tokio::task::spawn_blocking(move || source.product_daily(&product, from, to))
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading the daily counts failed: {e}")))?
        .map_err(|e| ApiError::Unavailable(format!("reading the daily counts: {e}")))?;
    Ok(Json(DailyAnswer {
        product_id: id,
        from,
        to,
        days,
    }))
}

/// `GET /v1/top-pairs?relation=bought|viewed&k=10&span=window|all-time`:
/// the pairs in the most baskets (for dashboards' tables).
async fn top_pairs(
    State(s): State<Arc<ApiState>>,
    q: Result<Params<TopPairsQuery>, ApiError>,
) -> Result<Json<TopPairsAnswer>, ApiError> {
    let started = Instant::now();
    let answer = match q {
        Ok(Params(q)) => Ok(pairs_list(&s, &q)),
        Err(e) => Err(e),
    };
    timed(Endpoint::TopPairs, started, answer)
}

fn pairs_list(s: &ApiState, q: &TopPairsQuery) -> Json<TopPairsAnswer> {
    let model = read(s);
    let pairs = model
        .top_pairs(q.relation, q.k.0, q.span)
        .into_iter()
        .enumerate()
        .map(|(i, (a, b, count))| PairRow {
            rank: i + 1,
            product_a: model.product_id(a).into_owned(),
            product_b: model.product_id(b).into_owned(),
            count,
        })
        .collect();
    Json(TopPairsAnswer {
        relation: q.relation.together(),
        pairs,
    })
}

async fn user_engagement(s: Arc<ApiState>, id: String) -> Result<Json<EngagementAnswer>, ApiError> {
    checked_id(&id)?;
    let model = read(&s);
    let user = model
        .user_number(&id)
        .filter(|&u| model.knows_user(u))
        .ok_or_else(|| not_in_window("user", &id, &model))?;
    let e = model.engagement(user);
    Ok(Json(EngagementAnswer {
        user_id: id,
        sessions: e.sessions,
        converted_sessions: e.converted,
        products_viewed: e.viewed,
        cart_abandonments: e.abandoned,
        engagement_score: e.score(),
        window: model.covers().map(Range::new),
    }))
}

/// Liveness: the process answers HTTP.
async fn livez(q: Result<Params<NoQuery>, ApiError>) -> Response {
    if let Err(e) = q {
        return e.into_response();
    }
    Json(Health {
        status: "ok",
        reason: None,
        checkpoint: None,
    })
    .into_response()
}

/// Readiness (also `/healthz`): `ok`, or 503 with the reason: `degraded`
/// while checkpoints fail (lookups still answer), `not_ready` while the
/// live window holds no events (a new service, or one rebuilding).
async fn readyz(State(s): State<Arc<ApiState>>, q: Result<Params<NoQuery>, ApiError>) -> Response {
    if let Err(e) = q {
        return e.into_response();
    }
    let failing = metrics::CHECKPOINT_FAILING.get();
    if failing > 0 {
        let why = format!("the last {failing} checkpoint(s) failed; retrying");
        let body = Health {
            status: "degraded",
            reason: Some(why.clone()),
            checkpoint: Some(why),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    // Other stages of the process (ingest in `replay`) that wait for a
    // store or the log.
    let others = telemetry::health::unready();
    if !others.is_empty() {
        let body = Health {
            status: "not_ready",
            reason: Some(others.join("; ")),
            checkpoint: None,
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    if read(&s).covers().is_none() {
        let body = Health {
            status: "not_ready",
            reason: Some("the live window holds no events yet".to_string()),
            checkpoint: None,
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(Health {
        status: "ok",
        reason: None,
        checkpoint: None,
    })
    .into_response()
}

/// The OpenAPI document of this API.
async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

/// Every metric of the process (all stages that run in it), after
/// refreshing the aggregator's state gauges.
async fn metrics(State(s): State<Arc<ApiState>>, q: Result<Params<NoQuery>, ApiError>) -> Response {
    if let Err(e) = q {
        return e.into_response();
    }
    metrics::observe_state(&read(&s));
    telemetry::metrics_handler().await.into_response()
}

async fn fallback() -> ApiError {
    let routes: Vec<&str> = Endpoint::ALL.map(Endpoint::route).to_vec();
    ApiError::NotFound(format!(
        "no such endpoint; see {}, /livez, /readyz, /metrics, /openapi.json",
        routes.join(", ")
    ))
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
    let mut out = (status, Json(ErrorBody { error: message })).into_response();
    if let Some(allow) = parts.headers.get(ALLOW) {
        out.headers_mut().insert(ALLOW, allow.clone());
    }
    out
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(
            Endpoint::BoughtTogether.route(),
            get(|s, id, q| partners(Relation::Bought, s, id, q)),
        )
        .route(
            Endpoint::ViewedTogether.route(),
            get(|s, id, q| partners(Relation::Viewed, s, id, q)),
        )
        .route(Endpoint::Engagement.route(), get(engagement))
        .route(Endpoint::TopPairs.route(), get(top_pairs))
        .route(Endpoint::ProductDaily.route(), get(product_daily))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/healthz", get(readyz))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .with_state(state)
        .layer(axum::middleware::map_response(json_errors))
}

/// Serves the API on `listener` until the future is dropped.
/// Connections are capped and idle or half-sent requests time out
/// ([`stage::http::ServerLimits`]).
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ApiState>) -> std::io::Result<()> {
    stage::http::serve_router(
        listener,
        router(state),
        stage::http::ServerLimits::default(),
    )
    .await
}
