//! The reference upstream server: HTTP(S) ingest of movement records and heartbeats,
//! watchlist distribution and an admin view, over SQLite or PostgreSQL. Run by
//! `gate-sim upstream` and, on a loopback port, by `gate-sim demo`.

pub mod server;
pub mod store;
