//! The HTTP client of one gate for the upstream API (reqwest over rustls, mutual TLS).

use super::tls::{client_config, plain_client_config, TlsError, TlsFiles};
use super::wire::{
    unix_ms_now, ClockAnswer, Heartbeat, HeartbeatAck, UploadAck, UploadBatch, WatchlistIndex,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How to reach the upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// Base URL, e.g. `https://upstream.example:8443` (`http://` only with `tls = None`).
    pub url: String,
    /// Mutual-TLS material; `None` speaks plain HTTP (local demos only).
    pub tls: Option<TlsFiles>,
    /// Whole-request timeout in milliseconds (a stalled server counts as a failure).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Connect timeout in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_connect_timeout_ms() -> u64 {
    3_000
}

/// Why a request to the upstream did not succeed. Every variant means: keep the records
/// and try again later.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The HTTP client could not be built.
    #[error("cannot build the upstream client: {0}")]
    Build(String),
    /// No answer: connection refused, TLS handshake failed, timeout, connection dropped.
    #[error("upstream unreachable: {0}")]
    Transport(String),
    /// The upstream answered with an error status.
    #[error("upstream answered {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the answer body.
        body: String,
    },
    /// The upstream answered 2xx with a body that is not what the API promises.
    #[error("upstream answer is malformed: {0}")]
    Body(String),
}

/// Result of a clock check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockCheck {
    /// Server clock minus gate clock, in milliseconds (estimated at the midpoint).
    pub offset_ms: i64,
    /// Round-trip time in milliseconds.
    pub rtt_ms: u64,
}

/// A gate's client for the upstream API.
#[derive(Clone, Debug)]
pub struct UpstreamClient {
    http: reqwest::Client,
    base: String,
}

fn transport(e: reqwest::Error) -> UpstreamError {
    // The chain of sources names the real cause (e.g. the certificate error).
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    UpstreamError::Transport(msg)
}

impl UpstreamClient {
    /// Builds the client (loads the TLS material; does not connect).
    pub fn new(settings: &ClientSettings) -> Result<UpstreamClient, UpstreamError> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .pool_max_idle_per_host(16)
            .no_proxy();
        // reqwest is built without a default crypto provider: always hand it a config.
        b = b.tls_backend_preconfigured(match &settings.tls {
            Some(files) => client_config(files)?,
            None => plain_client_config()?,
        });
        let http = b.build().map_err(|e| UpstreamError::Build(e.to_string()))?;
        Ok(UpstreamClient {
            http,
            base: settings.url.trim_end_matches('/').to_string(),
        })
    }

    async fn answer<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, UpstreamError> {
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let body = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            return Err(UpstreamError::Status {
                status: status.as_u16(),
                body,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Body(e.to_string()))
    }

    /// Uploads a batch; answers the server's watermark for the gate.
    pub async fn upload(&self, batch: &UploadBatch) -> Result<UploadAck, UpstreamError> {
        let resp = self
            .http
            .post(format!("{}/v1/records", self.base))
            .json(batch)
            .send()
            .await
            .map_err(transport)?;
        let ack: UploadAck = Self::answer(resp).await?;
        if ack.gate_id != batch.gate_id {
            return Err(UpstreamError::Body(format!(
                "acknowledgement is for gate {:?}, not {:?}",
                ack.gate_id, batch.gate_id
            )));
        }
        Ok(ack)
    }

    /// Sends a heartbeat.
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatAck, UpstreamError> {
        let resp = self
            .http
            .post(format!("{}/v1/heartbeat", self.base))
            .json(hb)
            .send()
            .await
            .map_err(transport)?;
        Self::answer(resp).await
    }

    /// Compares the gate clock with the server clock.
    pub async fn clock(&self) -> Result<ClockCheck, UpstreamError> {
        let t0 = Instant::now();
        let sent = unix_ms_now();
        let resp = self
            .http
            .get(format!("{}/v1/clock", self.base))
            .send()
            .await
            .map_err(transport)?;
        let a: ClockAnswer = Self::answer(resp).await?;
        let rtt = t0.elapsed().as_millis() as u64;
        let mid = sent.saturating_add(rtt / 2);
        Ok(ClockCheck {
            offset_ms: a.server_time_ms as i64 - mid as i64,
            rtt_ms: rtt,
        })
    }

    /// Lists the watchlist files published after `after` (all when `None`).
    pub async fn watchlist_index(
        &self,
        after: Option<&str>,
    ) -> Result<WatchlistIndex, UpstreamError> {
        let mut req = self.http.get(format!("{}/v1/watchlist/files", self.base));
        if let Some(a) = after {
            req = req.query(&[("after", a)]);
        }
        let resp = req.send().await.map_err(transport)?;
        Self::answer(resp).await
    }

    /// Downloads one watchlist file (opaque signed bytes; verify before use).
    pub async fn watchlist_file(&self, name: &str) -> Result<Vec<u8>, UpstreamError> {
        let resp = self
            .http
            .get(format!("{}/v1/watchlist/files/{}", self.base, name))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(UpstreamError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned(),
            });
        }
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_plain_http_client_builds_without_a_global_crypto_provider() {
        // No TLS files: the client must not fall back to reqwest's (absent) default provider.
        let c = UpstreamClient::new(&ClientSettings {
            url: "http://127.0.0.1:1".into(),
            tls: None,
            timeout_ms: 500,
            connect_timeout_ms: 200,
        })
        .expect("a plain-HTTP client");
        assert_eq!(c.base, "http://127.0.0.1:1");
    }
}
