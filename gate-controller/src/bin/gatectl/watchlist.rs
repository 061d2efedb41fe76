//! `gatectl watchlist` subcommands: keys, snapshots, deltas, lookups, store admin.

use crate::{CliError, CliResult};
use anyhow::anyhow;
use clap::{Args, Subcommand};
use gate_controller::watchlist::delta::{Delta, DeltaBuilder};
use gate_controller::watchlist::snapshot::{Snapshot, SnapshotBuilder};
use gate_controller::watchlist::{
    Action, DocKey, ListId, OpenOptions, PartialDate, PersonEntry, SecretKey, TrustedKeys, Verdict,
    WatchList, WatchlistError, WatchlistStore,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod bench;

/// `gatectl watchlist` subcommands.
#[derive(Subcommand)]
pub enum Cmd {
    /// Generate an Ed25519 key pair: secret key in KEY, public key in KEY.pub (hex text).
    Keygen {
        /// Secret key file to create (the public key goes to KEY.pub).
        #[arg(long)]
        out: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Build a signed snapshot from a CSV (issuing_state,document_number,action,reason).
    Build {
        /// Secret key file.
        #[arg(long)]
        key: PathBuf,
        /// Input CSV.
        #[arg(long)]
        input: PathBuf,
        /// Optional person CSV (surname,given_names,date_of_birth,nationality,action,reason).
        #[arg(long)]
        persons: Option<PathBuf>,
        /// Version of the snapshot (≥ 1).
        #[arg(long)]
        version: u64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        common: BuildCommon,
    },
    /// Build a signed delta from version BASE to VERSION.
    Delta {
        /// Secret key file.
        #[arg(long)]
        key: PathBuf,
        /// Version the delta applies to.
        #[arg(long)]
        base: u64,
        /// Version the delta produces (> BASE).
        #[arg(long)]
        version: u64,
        /// Entries to add or replace (same CSV as `build`).
        #[arg(long)]
        add: Option<PathBuf>,
        /// Entries to remove (CSV starting with issuing_state,document_number).
        #[arg(long)]
        remove: Option<PathBuf>,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        common: BuildCommon,
    },
    /// Look a document up in a snapshot plus deltas (all verified first).
    Lookup {
        /// Snapshot file.
        #[arg(long)]
        list: PathBuf,
        /// Trusted public key file(s) (repeat during a key rotation).
        #[arg(long, required = true)]
        pubkey: Vec<PathBuf>,
        /// Delta files to apply, in order.
        #[arg(long)]
        delta: Vec<PathBuf>,
        /// Issuing state (ICAO code).
        state: String,
        /// Document number.
        docno: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Install snapshots / apply deltas into a store directory (atomic, crash-safe).
    Apply {
        /// Store directory.
        #[arg(long)]
        store: PathBuf,
        /// Trusted public key file(s).
        #[arg(long, required = true)]
        pubkey: Vec<PathBuf>,
        /// Snapshot or delta files, applied in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show the lists in a store directory: version, age, staleness, content digest.
    Status {
        /// Store directory.
        #[arg(long)]
        store: PathBuf,
        /// Trusted public key file(s).
        #[arg(long, required = true)]
        pubkey: Vec<PathBuf>,
        /// Staleness limit in seconds.
        #[arg(long, default_value_t = 86_400)]
        max_age_s: u64,
        /// Also compute each list's content digest (reads every entry).
        #[arg(long)]
        digest: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark at scale (opt-in, not part of CI).
    #[command(hide = true, subcommand)]
    Bench(bench::BenchCmd),
}

/// Options shared by `build` and `delta`.
#[derive(Args)]
pub struct BuildCommon {
    /// List id (1-16 characters A-Z a-z 0-9 _ -).
    #[arg(long, default_value = "default")]
    list_id: String,
    /// Creation time in Unix milliseconds (default: now).
    #[arg(long)]
    created_at_ms: Option<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn bad(e: WatchlistError, path: &Path) -> CliError {
    let hint = match &e {
        WatchlistError::UnknownKey(_) | WatchlistError::BadSignature => {
            " (check --pubkey, or obtain a correctly signed file)"
        }
        WatchlistError::Truncated { .. }
        | WatchlistError::BodyHashMismatch
        | WatchlistError::Corrupt(_) => " (fetch the file again)",
        WatchlistError::NotApplicable { .. } | WatchlistError::NotNewer { .. } => {
            " (apply the deltas in version order)"
        }
        _ => "",
    };
    CliError::bad_input(anyhow!("{}: {e}{hint}", path.display()))
}

/// Splits one CSV line (double quotes may enclose commas; `""` is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

/// Reads a CSV with the given leading header columns; yields (line number, fields).
fn read_csv(path: &Path, header: &[&str]) -> Result<Vec<(usize, Vec<String>)>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::bad_input(anyhow!("{}: cannot read: {e}", path.display())))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or_else(|| {
        CliError::bad_input(anyhow!(
            "{}: empty file, expected header {}",
            path.display(),
            header.join(",")
        ))
    })?;
    let cols: Vec<String> = csv_fields(first.trim_start_matches('\u{feff}'))
        .into_iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if cols.len() < header.len() || cols.iter().zip(header).any(|(a, b)| a != b) {
        return Err(CliError::bad_input(anyhow!(
            "{}: header must start with {}, found {}",
            path.display(),
            header.join(","),
            first
        )));
    }
    let mut rows = Vec::new();
    for (i, l) in lines {
        let f = csv_fields(l);
        if f.len() < header.len() {
            return Err(CliError::bad_input(anyhow!(
                "{}:{}: expected {} fields, found {}",
                path.display(),
                i + 1,
                header.len(),
                f.len()
            )));
        }
        rows.push((i + 1, f));
    }
    Ok(rows)
}

const DOC_HEADER: [&str; 4] = ["issuing_state", "document_number", "action", "reason"];
const PERSON_HEADER: [&str; 6] = [
    "surname",
    "given_names",
    "date_of_birth",
    "nationality",
    "action",
    "reason",
];

fn row_err(path: &Path, line: usize, e: impl std::fmt::Display) -> CliError {
    CliError::bad_input(anyhow!("{}:{line}: {e}", path.display()))
}

fn doc_rows(path: &Path) -> Result<Vec<(DocKey, Action, String)>, CliError> {
    read_csv(path, &DOC_HEADER)?
        .into_iter()
        .map(|(line, f)| {
            let key = DocKey::new(&f[0], &f[1]).map_err(|e| row_err(path, line, e))?;
            let action = Action::parse(&f[2]).map_err(|e| row_err(path, line, e))?;
            Ok((key, action, f[3].clone()))
        })
        .collect()
}

fn person_rows(path: &Path) -> Result<Vec<PersonEntry>, CliError> {
    read_csv(path, &PERSON_HEADER)?
        .into_iter()
        .map(|(line, f)| {
            Ok(PersonEntry {
                surname: f[0].clone(),
                given_names: f[1].clone(),
                dob: PartialDate::parse(&f[2]).map_err(|e| row_err(path, line, e))?,
                nationality: Some(f[3].clone()).filter(|s| !s.is_empty()),
                action: Action::parse(&f[4]).map_err(|e| row_err(path, line, e))?,
                reason: f[5].clone(),
            })
        })
        .collect()
}

fn read_secret(path: &Path) -> Result<SecretKey, CliError> {
    SecretKey::read(path).map_err(|e| CliError::bad_input(anyhow!("{e}")))
}

fn read_trusted(paths: &[PathBuf]) -> Result<TrustedKeys, CliError> {
    TrustedKeys::read_files(paths).map_err(|e| CliError::bad_input(anyhow!("{e}")))
}

fn list_id(s: &str) -> Result<ListId, CliError> {
    ListId::new(s).map_err(|e| CliError::bad_input(anyhow!("--list-id: {e}")))
}

fn write_out(e: WatchlistError) -> CliError {
    match e {
        WatchlistError::Io { .. } => CliError::failed(anyhow!("{e}")),
        other => CliError::bad_input(anyhow!("{other}")),
    }
}

fn print_json(v: serde_json::Value) -> CliResult {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}").map_err(CliError::failed)
}

/// Runs a `gatectl watchlist` subcommand.
pub fn run(cmd: Cmd) -> CliResult {
    match cmd {
        Cmd::Keygen { out, force } => keygen(&out, force),
        Cmd::Build {
            key,
            input,
            persons,
            version,
            out,
            common,
        } => {
            let sk = read_secret(&key)?;
            let mut b = SnapshotBuilder::new(
                list_id(&common.list_id)?,
                version,
                common.created_at_ms.unwrap_or_else(now_ms),
            );
            for (k, a, r) in doc_rows(&input)? {
                b.add_document(k, a, &r)
                    .map_err(|e| CliError::bad_input(anyhow!("{}: {e}", input.display())))?;
            }
            if let Some(p) = &persons {
                for e in person_rows(p)? {
                    b.add_person(&e)
                        .map_err(|e| CliError::bad_input(anyhow!("{}: {e}", p.display())))?;
                }
            }
            b.write(&out, &sk).map_err(write_out)?;
            Ok(())
        }
        Cmd::Delta {
            key,
            base,
            version,
            add,
            remove,
            out,
            common,
        } => {
            let sk = read_secret(&key)?;
            let mut b = DeltaBuilder::new(
                list_id(&common.list_id)?,
                base,
                version,
                common.created_at_ms.unwrap_or_else(now_ms),
            );
            if let Some(p) = &add {
                for (k, a, r) in doc_rows(p)? {
                    b.add_document(k, a, &r)
                        .map_err(|e| CliError::bad_input(anyhow!("{}: {e}", p.display())))?;
                }
            }
            if let Some(p) = &remove {
                for (line, f) in read_csv(p, &DOC_HEADER[..2])? {
                    b.remove_document(DocKey::new(&f[0], &f[1]).map_err(|e| row_err(p, line, e))?);
                }
            }
            b.write(&out, &sk).map_err(write_out)?;
            Ok(())
        }
        Cmd::Lookup {
            list,
            pubkey,
            delta,
            state,
            docno,
            json,
        } => lookup(&list, &pubkey, &delta, &state, &docno, json),
        Cmd::Apply {
            store,
            pubkey,
            files,
            json,
        } => apply(&store, &pubkey, &files, json),
        Cmd::Status {
            store,
            pubkey,
            max_age_s,
            digest,
            json,
        } => status(&store, &pubkey, max_age_s, digest, json),
        Cmd::Bench(b) => bench::run(b),
    }
}

fn keygen(out: &Path, force: bool) -> CliResult {
    let pub_path = PathBuf::from(format!("{}.pub", out.display()));
    if !force && (out.exists() || pub_path.exists()) {
        return Err(CliError::failed(anyhow!(
            "{} or {} already exists; refusing to overwrite a key (use --force)",
            out.display(),
            pub_path.display()
        )));
    }
    let sk = SecretKey::generate();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(out)
        .map_err(|e| CliError::failed(anyhow!("{}: cannot create: {e}", out.display())))?;
    f.write_all(sk.to_file_text().as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| CliError::failed(anyhow!("{}: {e}", out.display())))?;
    std::fs::write(&pub_path, sk.public().to_file_text())
        .map_err(|e| CliError::failed(anyhow!("{}: {e}", pub_path.display())))?;
    eprintln!("key id {}", sk.public().id());
    Ok(())
}

fn lookup(
    list: &Path,
    pubkeys: &[PathBuf],
    deltas: &[PathBuf],
    state: &str,
    docno: &str,
    json: bool,
) -> CliResult {
    let trusted = read_trusted(pubkeys)?;
    let key = DocKey::new(state, docno).map_err(|e| CliError::bad_input(anyhow!("{e}")))?;
    let snap = Snapshot::open(list, &trusted).map_err(|e| bad(e, list))?;
    let mut wl = WatchList::from_snapshot(Arc::new(snap));
    for d in deltas {
        let delta = Delta::open(d, &trusted).map_err(|e| bad(e, d))?;
        wl = wl.apply(&delta).map_err(|e| bad(e, d))?;
    }
    let verdict = wl.lookup_document(key);
    let (hit, action, reason) = match &verdict {
        Verdict::Clear => (false, None, None),
        Verdict::Hit(h) => (true, Some(h.action.as_str()), Some(h.reason.to_string())),
    };
    if json {
        print_json(serde_json::json!({
            "hit": hit,
            "action": action,
            "reason": reason,
            "version": wl.version(),
            "list_id": wl.list_id().as_str(),
        }))
    } else {
        match (action, reason) {
            (Some(a), Some(r)) => println!(
                "HIT {a} reason={r} list={} version={}",
                wl.list_id(),
                wl.version()
            ),
            _ => println!("clear list={} version={}", wl.list_id(), wl.version()),
        }
        Ok(())
    }
}

fn open_store(store: &Path, pubkeys: &[PathBuf]) -> Result<WatchlistStore, CliError> {
    let trusted = read_trusted(pubkeys)?;
    WatchlistStore::open(store, trusted, OpenOptions::default())
        .map_err(|e| CliError::failed(anyhow!("{}: {e}", store.display())))
}

fn apply(store: &Path, pubkeys: &[PathBuf], files: &[PathBuf], json: bool) -> CliResult {
    let s = open_store(store, pubkeys)?;
    let mut versions = Vec::new();
    for f in files {
        let head = std::fs::File::open(f)
            .and_then(|mut h| {
                let mut b = vec![0u8; gate_controller::watchlist::format::HEADER_LEN];
                std::io::Read::read_exact(&mut h, &mut b).map(|_| b)
            })
            .map_err(|e| {
                CliError::bad_input(anyhow!(
                    "{}: cannot read a watchlist header: {e}",
                    f.display()
                ))
            })?;
        let h = gate_controller::watchlist::format::decode_header(&head).map_err(|e| bad(e, f))?;
        let r = match h.kind {
            gate_controller::watchlist::FileKind::Snapshot => s.install_snapshot_file(f),
            gate_controller::watchlist::FileKind::Delta => s.apply_delta_file(f),
        };
        versions.push(r.map_err(|e| match e {
            WatchlistError::Io { .. } if !f.exists() => bad(e, f),
            WatchlistError::Io { .. } => CliError::failed(anyhow!("{e}")),
            e => bad(e, f),
        })?);
    }
    if json {
        print_json(serde_json::json!({ "versions": versions }))
    } else {
        for v in versions {
            println!("applied version {v}");
        }
        Ok(())
    }
}

fn status(
    store: &Path,
    pubkeys: &[PathBuf],
    max_age_s: u64,
    digest: bool,
    json: bool,
) -> CliResult {
    let s = open_store(store, pubkeys)?;
    let now = now_ms();
    let max_age = Duration::from_secs(max_age_s);
    let lists: Vec<serde_json::Value> = s
        .status(now)
        .into_iter()
        .map(|st| {
            let dg = digest
                .then(|| ListId::new(&st.list_id).ok().and_then(|id| s.list(&id)))
                .flatten()
                .map(|l| gate_controller::watchlist::keys::hex(&l.content_digest()));
            serde_json::json!({
                "list_id": st.list_id,
                "version": st.version,
                "created_at_ms": st.created_at_ms,
                "age_ms": st.age_ms,
                "doc_count": st.doc_count,
                "person_count": st.person_count,
                "deltas": st.deltas,
                "integrity": st.integrity,
                "content_digest": dg,
            })
        })
        .collect();
    let v = serde_json::json!({
        "stale": s.is_stale(now, max_age),
        "lists": lists,
        "problems": s.problems(),
    });
    if json {
        print_json(v)
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(CliError::failed)?
        );
        Ok(())
    }
}
