//! `gatectl fingerprint` subcommands.

use crate::CliResult;
use clap::Subcommand;

/// `gatectl fingerprint` subcommands.
#[derive(Subcommand)]
pub enum Cmd {}

/// Runs a `gatectl fingerprint` subcommand.
pub fn run(cmd: Cmd) -> CliResult {
    match cmd {}
}
