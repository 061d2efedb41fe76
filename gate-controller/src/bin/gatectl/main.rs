//! `gatectl`: diagnostics and administration CLI for echannel gates.
//!
//! Exit codes (CONTRACT.md): 0 success, 1 the operation failed, 2 bad usage or bad input.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod doc;
mod fingerprint;
mod watchlist;

/// An error that ends a `gatectl` command with a contract exit code.
#[derive(Debug)]
pub enum CliError {
    /// The operation failed (exit 1).
    Failed(anyhow::Error),
    /// Bad usage or a bad input file (exit 2).
    BadInput(anyhow::Error),
}

impl CliError {
    /// Operation failure (exit 1).
    pub fn failed(e: impl Into<anyhow::Error>) -> Self {
        CliError::Failed(e.into())
    }
    /// Bad input (exit 2).
    pub fn bad_input(e: impl Into<anyhow::Error>) -> Self {
        CliError::BadInput(e.into())
    }
}

/// Result type of every subcommand.
pub type CliResult = Result<(), CliError>;

#[derive(Parser)]
#[command(
    name = "gatectl",
    version,
    about = "Diagnostics and administration for echannel gates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Identity documents: read an eMRTD chip through a PC/SC reader.
    #[command(subcommand)]
    Doc(doc::Cmd),
    /// Fingerprint templates: match two, or evaluate a matcher on a folder.
    #[command(subcommand)]
    Fingerprint(fingerprint::Cmd),
    /// Signed watchlists: keys, snapshots, deltas, lookups.
    #[command(subcommand)]
    Watchlist(watchlist::Cmd),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Doc(c) => doc::run(c),
        Command::Fingerprint(c) => fingerprint::run(c),
        Command::Watchlist(c) => watchlist::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Failed(e)) => {
            eprintln!("gatectl: {e:#}");
            ExitCode::from(1)
        }
        Err(CliError::BadInput(e)) => {
            eprintln!("gatectl: {e:#}");
            ExitCode::from(2)
        }
    }
}
