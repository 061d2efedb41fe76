//! The `[api]` configuration: where to listen, who may log in, which peer gates the
//! console shows.
//!
//! ```toml
//! [api]
//! listen = "0.0.0.0:8080"
//! # Other gates of the control point, shown on this gate's console (their own API base URL).
//! peers = ["http://10.0.0.12:8080", "http://10.0.0.13:8080"]
//!
//! # Tokens are stored as the lower-case hex SHA-256 of the secret:
//! #   printf %s 'the-secret' | sha256sum
//! [[api.tokens]]
//! user = "alice"
//! role = "operator"      # viewer | operator | supervisor
//! sha256 = "…64 hex digits…"
//! ```

use crate::problem::Problem;
use crate::record::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

/// `[api]`: the HTTP API, operator console and traveller display (see `docs/api.md`).
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// Listen address, e.g. `127.0.0.1:8080`; absent = no API.
    pub listen: Option<SocketAddr>,
    /// Users (`[[api.tokens]]`: `user`, `role`, `sha256` of the bearer token). None on a
    /// loopback address: one-time local tokens are made at start-up.
    pub tokens: Vec<TokenEntry>,
    /// Base URLs of the other gates shown on this gate's console.
    pub peers: Vec<String>,
    /// Failed logins allowed at once from one address (default 5).
    pub login_burst: Option<u32>,
    /// Failed logins regained per minute per address (default 6).
    pub login_refill_per_minute: Option<u32>,
}

/// API server configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Users allowed in, with their role and token hash.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// Base URLs (`http://host:port`) of the other gates shown on this gate's console.
    /// The console's browser talks to each gate directly, so every gate must share the
    /// operators' tokens (and the browser must reach every gate).
    #[serde(default)]
    pub peers: Vec<String>,
    /// Failed logins allowed at once from one address (default 5).
    #[serde(default = "default_burst")]
    pub login_burst: u32,
    /// Failed logins regained per minute per address (default 6).
    #[serde(default = "default_refill")]
    pub login_refill_per_minute: u32,
}

fn default_burst() -> u32 {
    5
}
fn default_refill() -> u32 {
    6
}

/// One user's token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// User name (journaled with every command).
    pub user: String,
    /// What the user may do.
    pub role: Role,
    /// Lower-case hex SHA-256 of the bearer token.
    pub sha256: String,
}

/// A configuration value that cannot work, naming the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `tokens[i].sha256` is not 64 hex digits.
    #[error("api.tokens[{index}].sha256 (user '{user}') is not a SHA-256 in hex (64 hex digits)")]
    BadHash {
        /// Entry index.
        index: usize,
        /// User of the entry.
        user: String,
    },
    /// `tokens[i].user` is empty or repeated.
    #[error("api.tokens[{index}].user '{user}' is empty or used twice")]
    BadUser {
        /// Entry index.
        index: usize,
        /// The name.
        user: String,
    },
    /// `peers[i]` is not an http(s) base URL.
    #[error("api.peers[{index}] = '{url}' is not an http:// or https:// base URL")]
    BadPeer {
        /// Entry index.
        index: usize,
        /// The value.
        url: String,
    },
    /// `login_burst` or `login_refill_per_minute` is 0.
    #[error("api.{key} must be at least 1")]
    Zero {
        /// The key.
        key: &'static str,
    },
}

impl ApiConfig {
    /// A config listening on `listen` with no users and no peers.
    pub fn new(listen: SocketAddr) -> ApiConfig {
        ApiConfig {
            listen,
            tokens: Vec::new(),
            peers: Vec::new(),
            login_burst: default_burst(),
            login_refill_per_minute: default_refill(),
        }
    }

    /// Checks the values serde cannot check.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (index, t) in self.tokens.iter().enumerate() {
            if t.user.trim().is_empty() || !seen.insert(t.user.as_str()) {
                return Err(ConfigError::BadUser {
                    index,
                    user: t.user.clone(),
                });
            }
            if !is_sha256_hex(&t.sha256) {
                return Err(ConfigError::BadHash {
                    index,
                    user: t.user.clone(),
                });
            }
        }
        for (index, url) in self.peers.iter().enumerate() {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            let ok = rest.is_some_and(|r| {
                let host = r.trim_end_matches('/');
                !host.is_empty() && !host.contains(['/', '?', '#', ' ', '"', '\'', '<', '>', '\\'])
            });
            if !ok {
                return Err(ConfigError::BadPeer {
                    index,
                    url: url.clone(),
                });
            }
        }
        if self.login_burst == 0 {
            return Err(ConfigError::Zero { key: "login_burst" });
        }
        if self.login_refill_per_minute == 0 {
            return Err(ConfigError::Zero {
                key: "login_refill_per_minute",
            });
        }
        Ok(())
    }

    /// Adds a user whose token is `token` (hashes it); for tests and demos.
    pub fn with_token(mut self, user: &str, role: Role, token: &str) -> ApiConfig {
        self.tokens.push(TokenEntry {
            user: user.to_owned(),
            role,
            sha256: token_hash(token),
        });
        self
    }
}

/// The lower-case hex SHA-256 of `token` (what `tokens[].sha256` holds in the config).
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The 32 bytes of a SHA-256 in hex, or `None` when `hex` is not 64 hex digits.
pub fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// True when `hex` is a SHA-256 in hex (64 hex digits).
pub fn is_sha256_hex(hex: &str) -> bool {
    parse_hex32(hex).is_some()
}

/// A fresh random bearer token (256 bits from the OS, as 64 hex digits).
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Users made up at start-up when `[api]` names none: what they are and their secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalTokens {
    /// `(user, role, token)` for each made-up user.
    pub users: Vec<(String, Role, String)>,
}

impl ApiConfig {
    /// The API configuration of `gated`'s `[api]` section, or `None` without `listen`.
    ///
    /// With no `[[api.tokens]]` (allowed only on a loopback address, see
    /// [`section_problems`]), a one-time random token is made for a local supervisor and
    /// one for a local viewer, valid until the process stops; they are returned so the
    /// caller can show them to the person who started it.
    pub fn from_section(s: &ApiSection) -> Option<(ApiConfig, Option<LocalTokens>)> {
        let listen = s.listen?;
        let mut cfg = ApiConfig::new(listen);
        cfg.tokens = s.tokens.clone();
        cfg.peers = s.peers.clone();
        if let Some(b) = s.login_burst {
            cfg.login_burst = b;
        }
        if let Some(r) = s.login_refill_per_minute {
            cfg.login_refill_per_minute = r;
        }
        if !cfg.tokens.is_empty() {
            return Some((cfg, None));
        }
        let users = vec![
            (
                "local-supervisor".to_owned(),
                Role::Supervisor,
                random_token(),
            ),
            ("local-viewer".to_owned(), Role::Viewer, random_token()),
        ];
        for (user, role, token) in &users {
            cfg = cfg.with_token(user, *role, token);
        }
        Some((cfg, Some(LocalTokens { users })))
    }
}

impl ApiSection {
    /// Problems with `gated`'s `[api]` section: the checks of [`ApiConfig::validate`],
    /// and no API on a non-loopback address without configured users.
    pub fn problems(&self) -> Vec<Problem> {
        section_problems(self)
    }
}

fn section_problems(s: &ApiSection) -> Vec<Problem> {
    let mut out = Vec::new();
    let listen = s
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut cfg = ApiConfig::new(listen);
    cfg.tokens = s.tokens.clone();
    cfg.peers = s.peers.clone();
    cfg.login_burst = s.login_burst.unwrap_or(cfg.login_burst);
    cfg.login_refill_per_minute = s
        .login_refill_per_minute
        .unwrap_or(cfg.login_refill_per_minute);
    if let Err(e) = cfg.validate() {
        let key = match &e {
            ConfigError::BadHash { index, .. } => format!("api.tokens[{index}].sha256"),
            ConfigError::BadUser { index, .. } => format!("api.tokens[{index}].user"),
            ConfigError::BadPeer { index, .. } => format!("api.peers[{index}]"),
            ConfigError::Zero { key } => format!("api.{key}"),
        };
        out.push(Problem::new(key, e.to_string()));
    }
    if let Some(addr) = s.listen {
        if s.tokens.is_empty() && !addr.ip().is_loopback() {
            out.push(Problem::new(
                "api.tokens",
                format!(
                    "api.listen = \"{addr}\" is not a loopback address, so at least one [[api.tokens]] \
                     user is required (without any, one-time local tokens are made only for 127.0.0.1 / ::1)"
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example_and_rejects_unknown_keys() {
        let ok: ApiConfig = toml::from_str(&format!(
            "listen = \"127.0.0.1:8080\"\npeers = [\"http://10.0.0.12:8080\"]\n\
             [[tokens]]\nuser = \"alice\"\nrole = \"operator\"\nsha256 = \"{}\"\n",
            "ab".repeat(32)
        ))
        .expect("valid config");
        assert_eq!(ok.tokens[0].role, Role::Operator);
        assert_eq!(ok.login_burst, 5);
        assert!(ok.validate().is_ok());
        let err = toml::from_str::<ApiConfig>("listen = \"127.0.0.1:1\"\nlisten_tls = true\n")
            .expect_err("unknown key");
        assert!(err.to_string().contains("listen_tls"), "{err}");
        let err = toml::from_str::<ApiConfig>(
            "listen = \"127.0.0.1:1\"\n[[tokens]]\nuser=\"a\"\nrole=\"admin\"\nsha256=\"\"\n",
        )
        .expect_err("unknown role");
        assert!(err.to_string().contains("admin"), "{err}");
    }

    #[test]
    fn validate_names_the_bad_key() {
        let base = ApiConfig::new("127.0.0.1:0".parse().expect("addr"));
        let mut c = base.clone().with_token("a", Role::Viewer, "t");
        c.tokens[0].sha256 = "xyz".into();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadHash { index: 0, .. })
        ));
        let c =
            base.clone()
                .with_token("a", Role::Viewer, "t")
                .with_token("a", Role::Operator, "u");
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadUser { index: 1, .. })
        ));
        let mut c = base.clone();
        c.peers = vec!["ftp://x".into()];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("api.peers[0]"));
        c.peers = vec!["http://10.0.0.1:8080/".into(), "https://gate-3".into()];
        assert!(c.validate().is_ok());
    }
}
