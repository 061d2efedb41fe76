//! `gatectl watchlist` subcommands.

use crate::CliResult;
use clap::Subcommand;

/// `gatectl watchlist` subcommands.
#[derive(Subcommand)]
pub enum Cmd {}

/// Runs a `gatectl watchlist` subcommand.
pub fn run(cmd: Cmd) -> CliResult {
    match cmd {}
}
