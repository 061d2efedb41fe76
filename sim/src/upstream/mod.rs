//! `gate-sim upstream`: the reference upstream server (mutual TLS, SQLite or PostgreSQL),
//! and `gate-sim pki dev`: a development PKI for it.

use anyhow::Context;
use gate_controller::upstream::pki::make_dev_pki;
use gate_controller::upstream::tls::{server_config, TlsFiles};
use gate_sim::reference::{server, store};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `gate-sim upstream`.
#[derive(clap::Args, Debug)]
pub struct UpstreamArgs {
    /// Address to listen on, e.g. 127.0.0.1:8443 (port 0 picks a free port; the first
    /// line on stdout names the URL).
    #[arg(long)]
    pub listen: String,
    /// SQLite database file (default: upstream.db in the current directory).
    #[arg(long, conflicts_with = "postgres")]
    pub db: Option<PathBuf>,
    /// PostgreSQL connection URL, e.g. postgresql://echannel:echannel@127.0.0.1/echannel.
    #[arg(long)]
    pub postgres: Option<String>,
    /// PostgreSQL connections (batches of one gate always use the same connection).
    #[arg(long, default_value_t = 8)]
    pub pg_connections: usize,
    /// Directory made by `gate-sim pki dev` (uses ca.pem, server.pem, server.key).
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// CA certificate(s) of the gates' client certificates (PEM); overrides --tls-dir.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Server certificate chain (PEM); overrides --tls-dir.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Server private key (PEM); overrides --tls-dir.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Plain HTTP without client authentication (local demos only: anyone may upload for
    /// any gate and read everything).
    #[arg(long)]
    pub insecure_http: bool,
    /// Directory of signed watchlist files served as opaque blobs.
    #[arg(long)]
    pub watchlist_dir: Option<PathBuf>,
}

/// `gate-sim pki ...`.
#[derive(clap::Subcommand, Debug)]
pub enum PkiCmd {
    /// Make a development CA, a server certificate and one client certificate per gate
    /// (plus `admin`) in DIR: ca.pem, server.pem/.key, clients/<id>.pem/.key.
    Dev {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Gate ids, comma-separated, e.g. g1,g2.
        #[arg(long, value_delimiter = ',', required = true)]
        gates: Vec<String>,
        /// Extra DNS names or IP addresses for the server certificate (localhost,
        /// 127.0.0.1 and ::1 are always included).
        #[arg(long = "server-name")]
        server_names: Vec<String>,
    },
}

fn usage(msg: String) -> ! {
    eprintln!("gate-sim: {msg}");
    std::process::exit(2)
}

fn tls_files(a: &UpstreamArgs) -> Option<TlsFiles> {
    let from_dir = |f: &str| a.tls_dir.as_ref().map(|d| d.join(f));
    Some(TlsFiles {
        ca: a.ca.clone().or_else(|| from_dir("ca.pem"))?,
        cert: a.cert.clone().or_else(|| from_dir("server.pem"))?,
        key: a.key.clone().or_else(|| from_dir("server.key"))?,
    })
}

/// Runs `gate-sim upstream` until SIGINT/SIGTERM. Exit 2 on bad arguments or TLS files.
pub fn cli_upstream(a: UpstreamArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let tls = if a.insecure_http {
        None
    } else {
        let Some(files) = tls_files(&a) else {
            usage("upstream needs --tls-dir DIR (from `gate-sim pki dev`) or --ca, --cert and --key; or --insecure-http for a local demo".into())
        };
        match server_config(&files) {
            Ok(c) => Some(c),
            Err(e) => usage(format!(
                "{e}; make development files with `gate-sim pki dev --out DIR --gates g1`"
            )),
        }
    };
    if let Some(d) = &a.watchlist_dir {
        if !d.is_dir() {
            usage(format!(
                "--watchlist-dir {} is not a directory",
                d.display()
            ));
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async move {
        let store = match &a.postgres {
            Some(url) => store::Store::open_postgres(url, a.pg_connections).await?,
            None => {
                let path = a.db.clone().unwrap_or_else(|| PathBuf::from("upstream.db"));
                store::Store::open_sqlite(&path)?
            }
        };
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "gate-sim upstream listening on {scheme}://{addr}")?;
            out.flush()?;
        }
        let app = server::App::new(store, a.watchlist_dir.clone());
        match tls {
            Some(cfg) => server::serve_tls(listener, cfg, app, shutdown_signal()).await,
            None => server::serve_plain(listener, app, shutdown_signal()).await,
        }
    });
    if let Err(e) = result {
        // One sentence on stderr, exit 1 (the operation failed).
        eprintln!("gate-sim: upstream failed: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs `gate-sim pki ...`. Exit 2 on a bad gate id, 1 when a file cannot be written.
pub fn cli_pki(cmd: PkiCmd) -> anyhow::Result<()> {
    match cmd {
        PkiCmd::Dev {
            out,
            gates,
            server_names,
        } => match make_dev_pki(&out, &gates, &server_names) {
            Ok(p) => {
                println!(
                    "development PKI written to {} (ca.pem, server.pem, server.key, clients/<id>.pem|.key for {} and admin)",
                    p.dir.display(),
                    gates.join(", ")
                );
                Ok(())
            }
            Err(e @ gate_controller::upstream::pki::PkiError::BadGateId(_)) => usage(e.to_string()),
            Err(e) => Err(e.into()),
        },
    }
}
