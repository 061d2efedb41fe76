//! Bearer-token authentication (tokens stored as SHA-256 hashes) and a per-source-address
//! token bucket that slows down token guessing.

pub use super::config::{is_sha256_hex, token_hash};
use super::config::{parse_hex32, ApiConfig, TokenEntry};
use crate::record::Role;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most source addresses the limiter tracks at once (oldest full buckets are dropped first).
const MAX_TRACKED: usize = 10_000;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// User name from the token entry.
    pub user: String,
    /// Role from the token entry.
    pub role: Role,
}

/// Why a request was not authenticated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("authentication required: send the header 'Authorization: Bearer <token>'")]
    Missing,
    /// The header is not a bearer token.
    #[error("malformed Authorization header: expected 'Bearer <token>'")]
    Malformed,
    /// No configured token matches.
    #[error("invalid token: it matches no user of this gate")]
    Invalid,
    /// Too many failed logins from this address.
    #[error("too many failed logins from this address: retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds until the next attempt is allowed.
        retry_after_s: u64,
    },
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token bucket per source address, consumed by failed logins only.
#[derive(Debug)]
pub struct LoginLimiter {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl LoginLimiter {
    /// `burst` failures allowed at once, refilled at `per_minute` per minute.
    pub fn new(burst: u32, per_minute: u32) -> LoginLimiter {
        LoginLimiter {
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.per_sec).min(self.burst);
        b.at = now;
    }

    /// `Err(seconds to wait)` when `ip` has no attempt left.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&ip) {
            None => Ok(()),
            Some(b) => {
                self.refill(b, now);
                if b.tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(((1.0 - b.tokens) / self.per_sec).ceil().max(1.0) as u64)
                }
            }
        }
    }

    /// Records a failed login from `ip`.
    pub fn fail(&self, ip: IpAddr, now: Instant) {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            let full = Duration::from_secs_f64(self.burst / self.per_sec);
            map.retain(|_, b| now.saturating_duration_since(b.at) < full);
            if map.len() >= MAX_TRACKED {
                // Still full of active guessers: forget the one seen longest ago.
                if let Some(oldest) = map.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let burst = self.burst;
        let b = map.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        self.refill(b, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }
}

/// The configured users and the login limiter.
#[derive(Debug)]
pub struct Authenticator {
    users: Vec<([u8; 32], TokenEntry)>,
    limiter: LoginLimiter,
}

impl Authenticator {
    /// From a validated config (entries with a malformed hash never match).
    pub fn new(cfg: &ApiConfig) -> Authenticator {
        Authenticator {
            users: cfg
                .tokens
                .iter()
                .filter_map(|t| parse_hex32(&t.sha256).map(|h| (h, t.clone())))
                .collect(),
            limiter: LoginLimiter::new(cfg.login_burst, cfg.login_refill_per_minute),
        }
    }

    /// Authenticates the `Authorization` header value from `ip`.
    pub fn authenticate(
        &self,
        header: Option<&str>,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Principal, AuthError> {
        if let Err(retry_after_s) = self.limiter.check(ip, now) {
            return Err(AuthError::RateLimited { retry_after_s });
        }
        let header = header.ok_or(AuthError::Missing)?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                self.limiter.fail(ip, now);
                return Err(AuthError::Malformed);
            }
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare against every entry without early exit.
        let mut found: Option<&TokenEntry> = None;
        for (hash, entry) in &self.users {
            let diff = hash
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(entry);
            }
        }
        match found {
            Some(e) => Ok(Principal {
                user: e.user.clone(),
                role: e.role,
            }),
            None => {
                self.limiter.fail(ip, now);
                Err(AuthError::Invalid)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn token_hash_matches_the_sha256_test_vector() {
        // FIPS 180-2 example "abc".
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256_hex(&token_hash("x")));
        assert!(!is_sha256_hex("abc"));
        assert!(!is_sha256_hex(&"zz".repeat(32)));
    }

    #[test]
    fn limiter_blocks_after_the_burst_and_refills() {
        let l = LoginLimiter::new(3, 60);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check(ip, t0).is_ok());
            l.fail(ip, t0);
        }
        assert_eq!(l.check(ip, t0), Err(1));
        assert!(l.check(other, t0).is_ok());
        assert!(l.check(ip, t0 + Duration::from_millis(1100)).is_ok());
    }
}
