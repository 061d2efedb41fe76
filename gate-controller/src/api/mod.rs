//! The gate's HTTP API, operator console and traveller display (axum).
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /v1/status` | viewer | [`link::GateStatus`] as JSON, with prompt texts and ages |
//! | `GET /v1/events` | viewer | SSE: `status` (full status on every change), `gate` (each [`crate::record::GateEvent`], with `id:`), `reset` (resume gap); honours `Last-Event-ID` |
//! | `POST /v1/commands` | operator / supervisor | `{"command": "...", "reason": "..."}` (+ `"alarm"` for `acknowledge_alarm`); 200 accepted, 409 refused by the gate, 400 bad JSON, 401, 403, 429 |
//! | `GET /v1/whoami` | viewer | `{user, role, gate_id}` |
//! | `GET /metrics` | none | Prometheus text |
//! | `GET /healthz`, `/readyz` | none | liveness; readiness (the gate loop takes commands) |
//! | `GET /display`, `/display/events` | none | traveller display page and its prompt-only SSE feed |
//! | `GET /` | none (the page asks for a token) | operator console |
//!
//! The console's browser connects to every gate of the control point itself (this gate
//! and `peers` from [`ApiConfig`]), with the operator's bearer token, over `fetch` streams
//! (CORS is open to any origin: bearer tokens are not ambient credentials). So every gate
//! must accept the same operator tokens. Streams end when the runtime drops its
//! [`link::GateHandle`] (how `gated` shuts the API down gracefully).

pub mod auth;
pub mod config;
pub mod link;
pub mod metrics;
pub mod runtime_link;
pub mod sim;

pub use config::{ApiConfig, TokenEntry};
pub use link::{GateLink, GateStatus};

use crate::prompt::Language;
use crate::record::{Actor, OperatorCommand, Prompt, Role};
use auth::{AuthError, Authenticator, Principal};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use link::{Backlog, EventFeed, FeedEvent};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, oneshot, watch};
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// How long a command waits for the gate's answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest reason accepted with a command.
const MAX_REASON: usize = 500;

struct AppState {
    link: GateLink,
    auth: Authenticator,
    peers: Vec<String>,
}

type Shared = Arc<AppState>;

/// Builds the API, console and display routes for one gate.
pub fn router(link: GateLink, config: &ApiConfig) -> Router {
    let _ = metrics::handle();
    let state = Arc::new(AppState {
        auth: Authenticator::new(config),
        peers: config
            .peers
            .iter()
            .map(|p| p.trim_end_matches('/').to_owned())
            .collect(),
        link,
    });
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .max_age(Duration::from_secs(600));
    let api = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/whoami", get(whoami))
        .route("/v1/events", get(events))
        .route("/v1/commands", post(command))
        .layer(cors);
    Router::new()
        .merge(api)
        .route("/metrics", get(metrics_route))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/display", get(|| asset(DISPLAY_HTML, "text/html; charset=utf-8")))
        .route("/display/events", get(display_events))
        .route("/display.js", get(|| asset(DISPLAY_JS, "text/javascript; charset=utf-8")))
        .route("/display.css", get(|| asset(DISPLAY_CSS, "text/css; charset=utf-8")))
        .route("/", get(|| asset(CONSOLE_HTML, "text/html; charset=utf-8")))
        .route("/console.js", get(|| asset(CONSOLE_JS, "text/javascript; charset=utf-8")))
        .route("/console.css", get(|| asset(CONSOLE_CSS, "text/css; charset=utf-8")))
        .route("/console/config.json", get(console_config))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no such route on this gate".into())
        })
        .layer(middleware::from_fn(time_request))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; connect-src *; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
            ),
        ))
        .with_state(state)
}

/// Serves `app` on `listener` (with peer addresses, which the login limiter needs) until
/// `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

const CONSOLE_HTML: &str = include_str!("assets/console.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");
const DISPLAY_HTML: &str = include_str!("assets/display.html");
const DISPLAY_JS: &str = include_str!("assets/display.js");
const DISPLAY_CSS: &str = include_str!("assets/display.css");

async fn asset(body: &'static str, ctype: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn time_request(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let resp = next.run(req).await;
    let route: &'static str = match route.as_str() {
        "/v1/status" => "/v1/status",
        "/v1/events" => "/v1/events",
        "/v1/commands" => "/v1/commands",
        "/v1/whoami" => "/v1/whoami",
        "/metrics" => "/metrics",
        "/healthz" | "/readyz" => "health",
        "/display/events" => "/display/events",
        "unmatched" => "unmatched",
        _ => "static",
    };
    metrics::record_request(route, start.elapsed().as_secs_f64());
    resp
}

/// An error answer: status code and one clear sentence, as `{"error": ..., "status": ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: String) -> ApiError {
        ApiError {
            status,
            message,
            retry_after: None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        let status = match e {
            AuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::UNAUTHORIZED,
        };
        let retry_after = match e {
            AuthError::RateLimited { retry_after_s } => Some(retry_after_s),
            _ => None,
        };
        ApiError {
            status,
            message: e.to_string(),
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({
            "error": self.message,
            "status": self.status.as_u16(),
        }));
        let mut resp = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"echannel\""),
            );
        }
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// The authenticated caller of a request.
struct Caller(Principal);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("?"));
        match state.auth.authenticate(header, ip, Instant::now()) {
            Ok(p) => Ok(Caller(p)),
            Err(e) => {
                if !matches!(e, AuthError::Missing) {
                    metrics::record_failed_login();
                }
                tracing::info!(%ip, error = %e, "API authentication failed");
                Err(e.into())
            }
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A prompt in the three display languages.
#[derive(Serialize)]
struct PromptText {
    en: &'static str,
    zh_hant: &'static str,
    zh_hans: &'static str,
}

impl PromptText {
    fn of(p: Prompt) -> PromptText {
        PromptText {
            en: p.text(Language::En),
            zh_hant: p.text(Language::ZhHant),
            zh_hans: p.text(Language::ZhHans),
        }
    }
}

#[derive(Serialize)]
struct WatchlistView<'a> {
    version: u64,
    published_at: u64,
    /// `null` only when no list is loaded (nothing was published).
    age_s: Option<u64>,
    stale: bool,
    max_age_s: Option<u64>,
    lists: Vec<WatchlistListView<'a>>,
}

#[derive(Serialize)]
struct WatchlistListView<'a> {
    list_id: &'a str,
    version: u64,
    published_at: u64,
    age_s: u64,
    documents: u64,
    persons: u64,
    integrity: &'a str,
    stale: bool,
}

/// `/v1/status` body.
#[derive(Serialize)]
struct StatusView<'a> {
    gate_id: &'a str,
    #[serde(flatten)]
    snapshot: &'a crate::machine::Snapshot,
    prompt_text: PromptText,
    counters: &'a link::OutcomeCounters,
    devices: &'a [link::DeviceHealth],
    watchlist: Option<WatchlistView<'a>>,
    upstream_backlog: Option<u64>,
    last_event_id: Option<u64>,
    server_time: u64,
}

fn watchlist_age(s: &GateStatus, now: u64) -> Option<u64> {
    s.watchlist
        .as_ref()
        .filter(|w| w.published_at.0 > 0)
        .map(|w| now.saturating_sub(w.published_at.0) / 1000)
}

fn status_json(st: &AppState, s: &GateStatus) -> String {
    let now = unix_ms();
    let view = StatusView {
        gate_id: &st.link.gate_id,
        snapshot: &s.snapshot,
        prompt_text: PromptText::of(s.snapshot.prompt),
        counters: &s.counters,
        devices: &s.devices,
        watchlist: s.watchlist.as_ref().map(|w| WatchlistView {
            version: w.version,
            published_at: w.published_at.0,
            age_s: watchlist_age(s, now),
            stale: w.stale,
            max_age_s: w.max_age_s,
            lists: w
                .lists
                .iter()
                .map(|l| WatchlistListView {
                    list_id: &l.list_id,
                    version: l.version,
                    published_at: l.published_at.0,
                    age_s: now.saturating_sub(l.published_at.0) / 1000,
                    documents: l.documents,
                    persons: l.persons,
                    integrity: &l.integrity,
                    stale: l.stale,
                })
                .collect(),
        }),
        upstream_backlog: s.upstream_backlog,
        last_event_id: st.link.events.last_id(),
        server_time: now,
    };
    serde_json::to_string(&view).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

async fn status(State(st): State<Shared>, Caller(_): Caller) -> Response {
    let s = st.link.status.borrow().clone();
    (
        [(header::CONTENT_TYPE, "application/json")],
        status_json(&st, &s),
    )
        .into_response()
}

async fn whoami(State(st): State<Shared>, Caller(p): Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user": p.user,
        "role": p.role,
        "gate_id": st.link.gate_id,
    }))
}

async fn console_config(State(st): State<Shared>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "gate_id": st.link.gate_id,
        "peers": st.peers,
    }))
}

async fn readyz(State(st): State<Shared>) -> Response {
    if st.link.commands.is_closed() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gate loop is not running".into(),
        )
        .into_response()
    } else {
        let mode = st.link.status.borrow().snapshot.mode;
        Json(serde_json::json!({"ready": true, "mode": mode})).into_response()
    }
}

async fn metrics_route(State(st): State<Shared>) -> Response {
    let s = st.link.status.borrow().clone();
    let body = metrics::render(&st.link.gate_id, &s, watchlist_age(&s, unix_ms()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// `POST /v1/commands` body.
#[derive(Deserialize)]
struct CommandBody {
    #[serde(flatten)]
    command: OperatorCommand,
    reason: String,
}

fn command_name(c: &OperatorCommand) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.get("command").and_then(|c| c.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Viewer => "viewer",
        Role::Operator => "operator",
        Role::Supervisor => "supervisor",
    }
}

async fn command(
    State(st): State<Shared>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: CommandBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid command request ({e}): send JSON like {{\"command\": \"refer\", \"reason\": \"why\"}}"
            ),
        )
    })?;
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a reason is required with every command (it is journaled)".into(),
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the reason is too long: at most {MAX_REASON} characters"),
        ));
    }
    let name = command_name(&req.command);
    let needed = req.command.required_role();
    if p.role < needed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "user '{}' has the {} role; '{}' needs the {} role",
                p.user,
                role_name(p.role),
                name,
                role_name(needed)
            ),
        ));
    }
    let (tx, rx) = oneshot::channel();
    let request = link::CommandRequest {
        command: req.command.clone(),
        actor: Actor {
            user: p.user.clone(),
            role: p.role,
            reason: reason.to_owned(),
        },
        reply: tx,
    };
    let unavailable = |m: &str| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m.to_owned());
    tokio::time::timeout(COMMAND_TIMEOUT, st.link.commands.send(request))
        .await
        .map_err(|_| unavailable("the gate is too busy to take the command: try again"))?
        .map_err(|_| unavailable("the gate loop is not running: the command was not delivered"))?;
    let reply = tokio::time::timeout(COMMAND_TIMEOUT, rx)
        .await
        .map_err(|_| {
            unavailable("the gate did not answer within 5 s: check its state before retrying")
        })?
        .map_err(|_| unavailable("the gate dropped the command without answering"))?;
    tracing::info!(user = %p.user, command = %name, reason, accepted = reply.accepted, detail = %reply.detail, "operator command");
    let code = if reply.accepted {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let body = serde_json::json!({
        "gate_id": st.link.gate_id,
        "command": req.command,
        "user": p.user,
        "accepted": reply.accepted,
        "detail": reply.detail,
    });
    let mut resp = (code, Json(body)).into_response();
    if !reply.accepted {
        // Keep the same shape as other errors too.
        let v = serde_json::json!({
            "error": format!("the gate refused '{}': {}", name, reply.detail),
            "status": 409,
            "gate_id": st.link.gate_id,
            "command": req.command,
            "user": p.user,
            "accepted": false,
            "detail": reply.detail,
        });
        resp = (code, Json(v)).into_response();
    }
    Ok(resp)
}

fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

fn gate_sse(fe: &FeedEvent) -> SseEvent {
    let data = serde_json::to_string(fe).unwrap_or_else(|_| "{}".into());
    SseEvent::default()
        .event("gate")
        .id(fe.id.to_string())
        .data(data)
}

struct SseState {
    app: Shared,
    status: watch::Receiver<GateStatus>,
    rx: broadcast::Receiver<FeedEvent>,
    feed: EventFeed,
    queue: VecDeque<SseEvent>,
    last: Option<u64>,
}

impl SseState {
    fn push_backlog(&mut self, backlog: Backlog) {
        match backlog {
            Backlog::Events(v) => {
                for fe in v {
                    if self.last.is_none_or(|l| fe.id > l) {
                        self.last = Some(fe.id);
                        self.queue.push_back(gate_sse(&fe));
                    }
                }
            }
            Backlog::Gap => {
                self.last = self.feed.last_id();
                self.queue
                    .push_back(SseEvent::default().event("reset").data(
                        "{\"reason\":\"events after Last-Event-ID are no longer held; status follows\"}",
                    ));
                self.push_status();
            }
        }
    }

    fn push_status(&mut self) {
        let s = self.status.borrow_and_update().clone();
        let json = status_json(&self.app, &s);
        self.queue
            .push_back(SseEvent::default().event("status").data(json));
    }
}

async fn events(
    State(st): State<Shared>,
    Caller(_): Caller,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let feed = st.link.events.clone();
    let resume = last_event_id(&headers);
    let (backlog, rx) = feed.subscribe(resume);
    let mut s = SseState {
        status: st.link.status.clone(),
        app: st,
        rx,
        feed,
        queue: VecDeque::new(),
        last: resume,
    };
    let gap = matches!(backlog, Backlog::Gap);
    s.push_backlog(backlog);
    if !gap {
        s.push_status();
    }
    let stream = futures_util::stream::unfold(s, |mut s| async move {
        loop {
            if let Some(e) = s.queue.pop_front() {
                return Some((Ok(e), s));
            }
            tokio::select! {
                biased;
                r = s.rx.recv() => match r {
                    Ok(fe) => {
                        if s.last.is_none_or(|l| fe.id > l) {
                            s.last = Some(fe.id);
                            s.queue.push_back(gate_sse(&fe));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let b = match s.last {
                            Some(l) => s.feed.backlog(l),
                            None => Backlog::Gap,
                        };
                        s.push_backlog(b);
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                r = s.status.changed() => match r {
                    Ok(()) => s.push_status(),
                    Err(_) => return None,
                },
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

#[derive(Serialize)]
struct DisplayView {
    gate_id: String,
    mode: &'static str,
    prompt: Prompt,
    text: PromptText,
}

fn display_view(gate_id: &str, s: &GateStatus) -> DisplayView {
    DisplayView {
        gate_id: gate_id.to_owned(),
        mode: s.snapshot.mode.as_str(),
        prompt: s.snapshot.prompt,
        text: PromptText::of(s.snapshot.prompt),
    }
}

async fn display_events(
    State(st): State<Shared>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = st.link.status.clone();
    let gate = st.link.gate_id.clone();
    // Sends the prompt at once, then whenever the mode or the prompt changes.
    let stream = futures_util::stream::unfold(
        (rx, gate, None::<(&'static str, Prompt)>, true),
        |(mut rx, gate, mut shown, mut first)| async move {
            loop {
                if !first && rx.changed().await.is_err() {
                    return None;
                }
                first = false;
                let v = display_view(&gate, &rx.borrow_and_update());
                let key = (v.mode, v.prompt);
                if shown != Some(key) {
                    shown = Some(key);
                    let data = serde_json::to_string(&v).unwrap_or_else(|_| "{}".into());
                    let ev = SseEvent::default().event("prompt").data(data);
                    return Some((Ok(ev), (rx, gate, shown, first)));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}
