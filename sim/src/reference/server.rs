//! HTTP routes of the reference upstream and the mutual-TLS accept loop.

use super::store::{Row, Store};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gate_controller::upstream::pki::ADMIN_ID;
use gate_controller::upstream::tls::{cert_identities, valid_gate_id};
use gate_controller::upstream::wire::{
    unix_ms_now, ApiError, ClockAnswer, Heartbeat, HeartbeatAck, UploadAck, UploadBatch,
    WatchlistFile, WatchlistIndex, WireBody,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Largest batch the server takes.
pub const MAX_BATCH: usize = 10_000;

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub enum Identity {
    /// Names from the verified client certificate.
    Cert(Arc<Vec<String>>),
    /// Plain HTTP (`--insecure-http`): everyone is trusted.
    Insecure,
}

impl Identity {
    fn may_act_for(&self, gate_id: &str) -> bool {
        match self {
            Identity::Insecure => true,
            Identity::Cert(names) => names.iter().any(|n| n == gate_id),
        }
    }
    fn is_admin(&self) -> bool {
        self.may_act_for(ADMIN_ID)
    }
}

/// Injected misbehaviour for tests and demos (set through `POST /v1/admin/faults`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// Behave.
    #[default]
    None,
    /// Answer 503 without storing.
    Status503,
    /// Store, then answer 500 (the gate must resend; nothing may double).
    StoreThen500,
    /// Answer 200 with a body that is not JSON, without storing.
    Garbage,
    /// Never answer (hold the request 120 s), without storing.
    Stall,
}

#[derive(Clone, Copy, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    mode: FaultMode,
    /// Upload requests the fault applies to.
    uploads: u64,
}

/// Shared state of the routes.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub watchlist_dir: Option<PathBuf>,
    faults: Arc<Mutex<Faults>>,
}

impl App {
    /// State over a store and an optional watchlist directory.
    pub fn new(store: Store, watchlist_dir: Option<PathBuf>) -> App {
        App {
            store,
            watchlist_dir,
            faults: Arc::new(Mutex::new(Faults::default())),
        }
    }
    fn take_fault(&self) -> FaultMode {
        let Ok(mut f) = self.faults.lock() else {
            return FaultMode::None;
        };
        if f.uploads == 0 {
            return FaultMode::None;
        }
        f.uploads -= 1;
        f.mode
    }
}

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(ApiError { error: msg.into() })).into_response()
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "upstream store failed");
    err(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("storage failed: {e:#}"),
    )
}

/// The routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/records", post(upload))
        .route("/v1/heartbeat", post(heartbeat))
        .route("/v1/clock", get(clock))
        .route("/v1/watchlist/files", get(watchlist_index))
        .route("/v1/watchlist/files/{name}", get(watchlist_file))
        .route("/v1/admin/records", get(admin_records))
        .route("/v1/admin/gates", get(admin_gates))
        .route("/v1/admin/faults", post(admin_faults))
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
        .with_state(app)
}

async fn upload(
    State(app): State<App>,
    Extension(id): Extension<Identity>,
    body: Bytes,
) -> Response {
    let batch: UploadBatch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("batch is not valid: {e}")),
    };
    if !valid_gate_id(&batch.gate_id) {
        return err(StatusCode::BAD_REQUEST, "gate_id is not valid");
    }
    if !id.may_act_for(&batch.gate_id) {
        tracing::warn!(gate_id = %batch.gate_id, ?id, "upload refused: certificate names another gate");
        return err(
            StatusCode::FORBIDDEN,
            format!(
                "the client certificate does not name gate {}",
                batch.gate_id
            ),
        );
    }
    if batch.records.len() > MAX_BATCH {
        return err(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_BATCH} rows per batch"),
        );
    }
    let mut rows = Vec::with_capacity(batch.records.len());
    for r in &batch.records {
        if r.seq == 0 {
            return err(StatusCode::BAD_REQUEST, "seq starts at 1");
        }
        let kind = match &r.body {
            WireBody::Movement(m) => {
                if m.gate_id != batch.gate_id {
                    return err(
                        StatusCode::BAD_REQUEST,
                        format!("row {} names another gate", r.seq),
                    );
                }
                "movement"
            }
            WireBody::Event(_) => "event",
        };
        let json = match serde_json::to_string(r) {
            Ok(j) => j,
            Err(e) => return err(StatusCode::BAD_REQUEST, format!("row {}: {e}", r.seq)),
        };
        rows.push(Row {
            seq: r.seq,
            kind,
            json,
        });
    }
    let fault = app.take_fault();
    match fault {
        FaultMode::Status503 => return err(StatusCode::SERVICE_UNAVAILABLE, "injected fault"),
        FaultMode::Garbage => return (StatusCode::OK, "<html>not json").into_response(),
        FaultMode::Stall => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return err(StatusCode::GATEWAY_TIMEOUT, "injected stall");
        }
        FaultMode::None | FaultMode::StoreThen500 => {}
    }
    match app.store.insert(&batch.gate_id, rows).await {
        Ok(s) => {
            if fault == FaultMode::StoreThen500 {
                return err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "injected fault after storing",
                );
            }
            Json(UploadAck {
                gate_id: batch.gate_id,
                watermark: s.watermark,
                stored: s.stored,
                duplicates: s.duplicates,
            })
            .into_response()
        }
        Err(e) => internal(e),
    }
}

async fn heartbeat(
    State(app): State<App>,
    Extension(id): Extension<Identity>,
    body: Bytes,
) -> Response {
    let hb: Heartbeat = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(e) => {
            return err(
                StatusCode::BAD_REQUEST,
                format!("heartbeat is not valid: {e}"),
            )
        }
    };
    if !valid_gate_id(&hb.gate_id) || !id.may_act_for(&hb.gate_id) {
        return err(
            StatusCode::FORBIDDEN,
            format!("the client certificate does not name gate {}", hb.gate_id),
        );
    }
    let json = serde_json::to_string(&hb).unwrap_or_default();
    if let Err(e) = app.store.heartbeat(&hb.gate_id, json).await {
        return internal(e);
    }
    match app.store.watermark(&hb.gate_id).await {
        Ok(w) => Json(HeartbeatAck {
            server_time_ms: unix_ms_now(),
            watermark: w,
        })
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn clock() -> Json<ClockAnswer> {
    Json(ClockAnswer {
        server_time_ms: unix_ms_now(),
    })
}

#[derive(serde::Deserialize)]
struct AfterQuery {
    after: Option<String>,
}

/// A file name the watchlist routes accept: no path separators, no leading dot.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

async fn watchlist_index(State(app): State<App>, Query(q): Query<AfterQuery>) -> Response {
    let Some(dir) = app.watchlist_dir.clone() else {
        return Json(WatchlistIndex { files: vec![] }).into_response();
    };
    let listing = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<WatchlistFile>> {
        let mut files = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = e.metadata()?;
            if meta.is_file() && safe_name(&name) {
                files.push(WatchlistFile {
                    name,
                    size: meta.len(),
                });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    })
    .await;
    match listing {
        Ok(Ok(mut files)) => {
            if let Some(after) = q.after {
                files.retain(|f| f.name > after);
            }
            Json(WatchlistIndex { files }).into_response()
        }
        Ok(Err(e)) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("watchlist directory: {e}"),
        ),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn watchlist_file(State(app): State<App>, UrlPath(name): UrlPath<String>) -> Response {
    let Some(dir) = app.watchlist_dir.clone() else {
        return err(StatusCode::NOT_FOUND, "no watchlist directory is served");
    };
    if !safe_name(&name) {
        return err(StatusCode::BAD_REQUEST, "file name is not valid");
    }
    match tokio::fs::read(dir.join(&name)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            err(StatusCode::NOT_FOUND, format!("no watchlist file {name}"))
        }
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(serde::Deserialize)]
struct GateQuery {
    gate_id: String,
}

async fn admin_records(
    State(app): State<App>,
    Extension(id): Extension<Identity>,
    Query(q): Query<GateQuery>,
) -> Response {
    if !id.is_admin() {
        return err(StatusCode::FORBIDDEN, "admin certificate required");
    }
    let wm = match app.store.watermark(&q.gate_id).await {
        Ok(w) => w,
        Err(e) => return internal(e),
    };
    match app.store.records(&q.gate_id).await {
        Ok(records) => Json(serde_json::json!({
            "gate_id": q.gate_id, "watermark": wm, "records": records
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn admin_gates(State(app): State<App>, Extension(id): Extension<Identity>) -> Response {
    if !id.is_admin() {
        return err(StatusCode::FORBIDDEN, "admin certificate required");
    }
    match app.store.gates().await {
        Ok(g) => Json(serde_json::json!({ "gates": g })).into_response(),
        Err(e) => internal(e),
    }
}

async fn admin_faults(
    State(app): State<App>,
    Extension(id): Extension<Identity>,
    body: Bytes,
) -> Response {
    if !id.is_admin() {
        return err(StatusCode::FORBIDDEN, "admin certificate required");
    }
    let f: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return err(
                StatusCode::BAD_REQUEST,
                format!("faults are not valid: {e}"),
            )
        }
    };
    if let Ok(mut g) = app.faults.lock() {
        *g = f;
    }
    Json(f).into_response()
}

/// Serves plain HTTP until `shutdown` completes.
pub async fn serve_plain(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let r = router(app).layer(Extension(Identity::Insecure));
    axum::serve(listener, r)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Serves HTTPS with client-certificate authentication until `shutdown` completes.
pub async fn serve_tls(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let routes = router(app);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let routes = routes.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let names = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| cert_identities(c.as_ref()))
                .unwrap_or_default();
            let svc = routes.layer(Extension(Identity::Cert(Arc::new(names))));
            let svc = TowerToHyperService::new(svc);
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
