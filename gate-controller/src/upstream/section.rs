//! `[upstream]` of the gate configuration: where the journal is synced to and how.
//!
//! The section is optional: without it `gated` keeps its journal and syncs nothing.

use super::client::ClientSettings;
use super::sync::{d_backoff_initial, d_backoff_max, d_batch, d_idle, d_in_flight, SyncConfig};
use super::tls::{client_config, load_certs, load_key, valid_gate_id, TlsFiles};
use super::wire::{Direction, GateInfo};
use crate::problem::Problem;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[upstream]`: the central system the journal is synced to.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// Base URL: `https://HOST:PORT` (mutual TLS), or `http://HOST:PORT` for a local demo
    /// server started with `--insecure-http` (then `ca`, `cert` and `key` are left out).
    pub url: String,
    /// CA certificate(s) that sign the upstream's server certificate (PEM).
    pub ca: Option<PathBuf>,
    /// This gate's client certificate chain (PEM); it must name the gate id.
    pub cert: Option<PathBuf>,
    /// This gate's client private key (PEM).
    pub key: Option<PathBuf>,
    /// Lane name reported with every movement record (default: the gate id).
    pub lane_name: Option<String>,
    /// Whole-request timeout in milliseconds (a stalled upstream counts as a failure).
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// Connect timeout in milliseconds.
    #[serde(default = "d_connect")]
    pub connect_timeout_ms: u64,
    /// Rows per upload request (1..=5000).
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Upload requests in flight at once (1..=64).
    #[serde(default = "d_in_flight")]
    pub max_in_flight: usize,
    /// How often to look for new rows once caught up, in milliseconds.
    #[serde(default = "d_idle")]
    pub idle_poll_ms: u64,
    /// First retry delay after a failure, in milliseconds.
    #[serde(default = "d_backoff_initial")]
    pub backoff_initial_ms: u64,
    /// Largest retry delay, in milliseconds.
    #[serde(default = "d_backoff_max")]
    pub backoff_max_ms: u64,
    /// Acknowledged rows kept in the journal (the newest ones; older acknowledged rows
    /// are deleted).
    #[serde(default = "d_retain")]
    pub retain_acked_rows: u64,
    /// Keep every acknowledged row (retention off; `retain_acked_rows` is ignored).
    #[serde(default)]
    pub keep_all_acked: bool,
    /// How often the sync state (backlog, watermark, failures) is logged, in milliseconds.
    #[serde(default = "d_status_log")]
    pub status_log_ms: u64,
    /// How often a heartbeat (mode, alarms, backlog, disk usage) is sent, in milliseconds.
    #[serde(default = "d_heartbeat")]
    pub heartbeat_ms: u64,
}

fn d_heartbeat() -> u64 {
    15_000
}

fn d_timeout() -> u64 {
    10_000
}
fn d_connect() -> u64 {
    3_000
}
fn d_retain() -> u64 {
    super::sync::d_retain().unwrap_or(u64::MAX)
}
fn d_status_log() -> u64 {
    30_000
}

impl UpstreamSection {
    /// Takes relative certificate paths relative to `dir` (the config file's directory).
    pub fn resolve_paths(&mut self, dir: &Path) {
        for p in [&mut self.ca, &mut self.cert, &mut self.key]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }

    fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            ca: self.ca.clone()?,
            cert: self.cert.clone()?,
            key: self.key.clone()?,
        })
    }

    /// How to reach the upstream.
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            url: self.url.clone(),
            tls: self.tls_files(),
            timeout_ms: self.timeout_ms,
            connect_timeout_ms: self.connect_timeout_ms,
        }
    }

    /// The sync task's settings for the gate `gate_id`.
    pub fn sync_config(&self, gate_id: &str, direction: Direction) -> SyncConfig {
        SyncConfig {
            gate: GateInfo {
                gate_id: gate_id.to_owned(),
                lane: self.lane_name.clone().unwrap_or_else(|| gate_id.to_owned()),
                direction,
            },
            batch_size: self.batch_size,
            max_in_flight: self.max_in_flight,
            idle_poll_ms: self.idle_poll_ms,
            backoff_initial_ms: self.backoff_initial_ms,
            backoff_max_ms: self.backoff_max_ms,
            retain_acked_rows: (!self.keep_all_acked).then_some(self.retain_acked_rows),
        }
    }

    /// Every out-of-range value and unusable file, with its key (`upstream.*`).
    pub fn problems(&self, gate_id: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, problem: String| {
            out.push(Problem {
                key: format!("upstream.{key}"),
                problem,
            })
        };
        let https = self.url.starts_with("https://");
        let http = self.url.starts_with("http://");
        if !(https || http) || self.url.len() <= "https://".len() {
            bad(
                "url",
                format!(
                    "{:?} must be https://HOST:PORT (or http://HOST:PORT for a local demo)",
                    self.url
                ),
            );
        }
        let named: Vec<(&str, &Option<PathBuf>)> =
            vec![("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)];
        if https {
            for (k, v) in &named {
                if v.is_none() {
                    bad(k, "is required with an https:// url (mutual TLS)".into());
                }
            }
        } else if http && named.iter().any(|(_, v)| v.is_some()) {
            bad(
                "url",
                "is http:// but ca/cert/key are given: use https:// for mutual TLS".into(),
            );
        }
        if let Some(p) = &self.ca {
            if let Err(e) = load_certs(p) {
                bad("ca", e.to_string());
            }
        }
        if let Some(p) = &self.cert {
            if let Err(e) = load_certs(p) {
                bad("cert", e.to_string());
            }
        }
        if let Some(p) = &self.key {
            if let Err(e) = load_key(p) {
                bad("key", e.to_string());
            }
        }
        if let Some(files) = self.tls_files() {
            if load_certs(&files.ca).is_ok()
                && load_certs(&files.cert).is_ok()
                && load_key(&files.key).is_ok()
            {
                if let Err(e) = client_config(&files) {
                    bad("key", format!("does not fit upstream.cert: {e}"));
                }
            }
        }
        if !valid_gate_id(gate_id) {
            out.push(Problem {
                key: "gate.id".into(),
                problem: format!(
                    "{gate_id:?} cannot be synced upstream: use letters, digits, '-' or '.' only"
                ),
            });
        }
        let mut bad = |key: &str, problem: String| {
            out.push(Problem {
                key: format!("upstream.{key}"),
                problem,
            })
        };
        if let Some(l) = &self.lane_name {
            if l.trim().is_empty() || l.len() > 64 {
                bad("lane_name", "must be 1 to 64 characters".into());
            }
        }
        for (k, v, lo, hi) in [
            ("timeout_ms", self.timeout_ms, 1, 3_600_000),
            ("connect_timeout_ms", self.connect_timeout_ms, 1, 3_600_000),
            ("batch_size", self.batch_size as u64, 1, 5_000),
            ("max_in_flight", self.max_in_flight as u64, 1, 64),
            ("idle_poll_ms", self.idle_poll_ms, 1, 3_600_000),
            ("backoff_initial_ms", self.backoff_initial_ms, 1, 3_600_000),
            ("backoff_max_ms", self.backoff_max_ms, 1, 3_600_000),
            ("status_log_ms", self.status_log_ms, 100, 86_400_000),
            ("heartbeat_ms", self.heartbeat_ms, 100, 86_400_000),
        ] {
            if !(lo..=hi).contains(&v) {
                bad(k, format!("{v} must be between {lo} and {hi}"));
            }
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            bad(
                "backoff_max_ms",
                format!(
                    "{} must not be below backoff_initial_ms ({})",
                    self.backoff_max_ms, self.backoff_initial_ms
                ),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<UpstreamSection, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn defaults_and_mapping_onto_the_sync_task() {
        let u = parse("url = \"http://127.0.0.1:8080\"").unwrap();
        assert!(
            u.problems("gate-01").is_empty(),
            "{:?}",
            u.problems("gate-01")
        );
        let s = u.sync_config("gate-01", Direction::Departure);
        assert_eq!(s.batch_size, 500);
        assert_eq!(s.retain_acked_rows, Some(100_000));
        assert_eq!(s.gate.lane, "gate-01");
        assert_eq!(s.gate.direction, Direction::Departure);
        assert!(u.client_settings().tls.is_none());
        let u = parse("url = \"http://h:1\"\nkeep_all_acked = true\nlane_name = \"A3\"").unwrap();
        let s = u.sync_config("g", Direction::Arrival);
        assert_eq!(s.retain_acked_rows, None);
        assert_eq!(s.gate.lane, "A3");
    }

    #[test]
    fn https_needs_readable_matching_tls_files() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::upstream::pki::make_dev_pki(dir.path(), &["g1".into(), "g2".into()], &[])
            .unwrap();
        let mut u = parse("url = \"https://127.0.0.1:8443\"").unwrap();
        let keys: Vec<String> = u.problems("g1").into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["upstream.ca", "upstream.cert", "upstream.key"]);
        let f = pki.gate("g1");
        u.ca = Some(f.ca.clone());
        u.cert = Some(f.cert.clone());
        u.key = Some(f.key.clone());
        assert!(u.problems("g1").is_empty(), "{:?}", u.problems("g1"));
        u.key = Some(pki.gate("g2").key);
        let p = u.problems("g1");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "upstream.key");
        u.key = Some(dir.path().join("missing.key"));
        let p = u.problems("g1");
        assert!(p[0].problem.contains("missing.key"), "{p:?}");
        assert!(u.problems("gate_01").iter().any(|p| p.key == "gate.id"));
    }

    #[test]
    fn bad_values_and_unknown_keys_are_named() {
        let u =
            parse("url = \"ftp://x\"\nbatch_size = 0\nbackoff_initial_ms = 10\nbackoff_max_ms = 5")
                .unwrap();
        let keys: Vec<String> = u.problems("g").into_iter().map(|p| p.key).collect();
        assert!(keys.contains(&"upstream.url".to_string()), "{keys:?}");
        assert!(
            keys.contains(&"upstream.batch_size".to_string()),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"upstream.backoff_max_ms".to_string()),
            "{keys:?}"
        );
        let e = parse("url = \"http://x:1\"\nbatchsize = 3").unwrap_err();
        assert!(e.to_string().contains("batchsize"), "{e}");
    }

    #[test]
    fn relative_paths_are_taken_from_the_config_directory() {
        let mut u = parse(
            "url = \"https://h:1\"\nca = \"pki/ca.pem\"\ncert = \"/abs/c.pem\"\nkey = \"k.key\"",
        )
        .unwrap();
        u.resolve_paths(Path::new("/etc/echannel"));
        assert_eq!(u.ca.unwrap(), PathBuf::from("/etc/echannel/pki/ca.pem"));
        assert_eq!(u.cert.unwrap(), PathBuf::from("/abs/c.pem"));
        assert_eq!(u.key.unwrap(), PathBuf::from("/etc/echannel/k.key"));
    }
}
