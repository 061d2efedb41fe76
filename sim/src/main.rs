//! `gate-sim`: hardware simulator, scenario runner and demo.

mod upstream;

use clap::{Parser, Subcommand};

/// echannel hardware simulator, scenario runner, reference upstream and demo.
#[derive(Parser, Debug)]
#[command(name = "gate-sim", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the reference upstream server until stopped.
    Upstream(upstream::UpstreamArgs),
    /// Development PKI for the upstream link.
    #[command(subcommand)]
    Pki(upstream::PkiCmd),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Upstream(a) => upstream::cli_upstream(a),
        Cmd::Pki(c) => upstream::cli_pki(c),
    }
}
