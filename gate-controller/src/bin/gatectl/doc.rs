//! `gatectl doc read`: read an identity document (ICAO 9303 eMRTD) through a PC/SC reader,
//! open it with BAC or PACE, read its data groups and check passive authentication.
//!
//! Exit codes (CONTRACT.md): 0 read; 1 the read failed (no reader, no card, wrong access
//! key, card removed, chip misbehaved, pcscd unreachable); 2 bad usage (malformed key,
//! unreadable `--csca` directory, ambiguous reader name).

use crate::CliResult;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `gatectl doc` subcommands.
#[derive(Subcommand)]
pub enum Cmd {
    /// Read an identity document through PC/SC: access control, MRZ, data groups, PA.
    ///
    /// Exit 0 when the chip was read (whatever the PA status); 1 when the read failed
    /// (no card, wrong access key, card removed, reader or chip failure); 2 on bad usage.
    Read(ReadArgs),
}

/// Arguments of `gatectl doc read`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("key").required(true).args(["mrz_key", "can"])))]
pub struct ReadArgs {
    /// PC/SC reader name, or a prefix of it (e.g. "Virtual PCD"); among several readers
    /// with that prefix, the one holding a card is used.
    #[arg(long, value_name = "NAME")]
    reader: String,
    /// Access key from the MRZ: document number, date of birth, date of expiry as printed
    /// (check digits are computed), e.g. L898902C,690806,940623.
    #[arg(long, value_name = "DOCNO,YYMMDD,YYMMDD")]
    mrz_key: Option<String>,
    /// Card access number (6 digits, PACE only).
    #[arg(long, value_name = "CAN")]
    can: Option<String>,
    /// Directory of trusted CSCA certificates (DER or PEM files, `.ml` master lists) for
    /// passive authentication; without it the status is at best `not_checked`.
    #[arg(long, value_name = "DIR")]
    csca: Option<PathBuf>,
    /// Wait up to this many seconds for a card to be presented (default: fail at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    wait: f64,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs a `gatectl doc` subcommand.
pub fn run(cmd: Cmd) -> CliResult {
    match cmd {
        Cmd::Read(a) => read(a),
    }
}

#[cfg(not(feature = "pcsc"))]
fn read(_a: ReadArgs) -> CliResult {
    Err(crate::CliError::failed(anyhow::anyhow!(
        "this gatectl was built without PC/SC support: rebuild gate-controller with the `pcsc` feature (the default; needs libpcsclite-dev)"
    )))
}

#[cfg(feature = "pcsc")]
fn read(a: ReadArgs) -> CliResult {
    pcsc_read::read(a)
}

#[cfg(feature = "pcsc")]
mod pcsc_read {
    use super::ReadArgs;
    use crate::{CliError, CliResult};
    use anyhow::anyhow;
    use device_drivers::card::bac::{self, AccessKey};
    use device_drivers::card::lds::Dg1;
    use device_drivers::card::mrz::{self, Mrz};
    use device_drivers::card::pa::{self, PaReport, TrustStore};
    use device_drivers::card::pcsc::{list_readers, wait_for_card, PcscTransport};
    use device_drivers::card::reader::{read_document, ChipRead, ReadOptions};
    use device_drivers::card::transport::TransportError;
    use device_drivers::card::{system_rng, CardError};
    use serde_json::json;
    use std::time::{Duration, Instant, SystemTime};

    /// Longest `--wait` accepted (one hour).
    const MAX_WAIT_S: f64 = 3600.0;

    fn usage(msg: String) -> CliError {
        CliError::bad_input(anyhow!(msg))
    }

    fn failed(msg: String) -> CliError {
        CliError::failed(anyhow!(msg))
    }

    /// Parses `--mrz-key` / `--can` into the access key (exit 2 when malformed).
    fn access_key(a: &ReadArgs) -> Result<AccessKey, CliError> {
        if let Some(k) = &a.mrz_key {
            let key = mrz::MrzKey::parse(k)
                .map_err(|e| usage(format!("--mrz-key {k:?} is malformed: {e}")))?;
            let key = bac::MrzKey::new(
                &key.document_number,
                &key.date_of_birth,
                &key.date_of_expiry,
            )
            .map_err(|e| usage(format!("--mrz-key {k:?} is malformed: {e}")))?;
            return Ok(AccessKey::Mrz(key));
        }
        if let Some(c) = &a.can {
            return AccessKey::can(c)
                .map_err(|e| usage(format!("--can is malformed: {e} (e.g. --can 123456)")));
        }
        Err(usage(
            "give the access key with --mrz-key DOCNO,YYMMDD,YYMMDD or --can CAN".into(),
        ))
    }

    fn pcscd_down(e: TransportError) -> CliError {
        failed(format!(
            "cannot talk to pcscd ({e}): start pcscd (systemctl start pcscd) and retry"
        ))
    }

    /// Resolves `--reader` (exact name or prefix) against the readers pcscd knows, waiting
    /// up to `wait` for a card when several share the prefix.
    fn resolve_reader(wanted: &str, wait: Duration) -> Result<String, CliError> {
        let readers = list_readers().map_err(pcscd_down)?;
        if readers.iter().any(|r| r == wanted) {
            return Ok(wanted.to_string());
        }
        let matching: Vec<String> = readers
            .iter()
            .filter(|r| r.starts_with(wanted))
            .cloned()
            .collect();
        match matching.as_slice() {
            [] if readers.is_empty() => Err(failed(format!(
                "no PC/SC reader is connected, so there is no reader {wanted:?}: connect the reader and retry"
            ))),
            [] => Err(failed(format!(
                "no PC/SC reader is named {wanted:?} or starts with it; readers present: {}",
                readers.join(", ")
            ))),
            [one] => Ok(one.clone()),
            several => {
                // Several readers share the prefix: use the one holding a card.
                let deadline = Instant::now() + wait;
                loop {
                    let with_card: Vec<&String> = several
                        .iter()
                        .filter(|r| wait_for_card(r, Duration::ZERO).is_ok())
                        .collect();
                    match with_card.as_slice() {
                        [one] => return Ok((*one).clone()),
                        [] if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(100))
                        }
                        [] => {
                            return Err(failed(format!(
                                "no card in any reader starting with {wanted:?} ({}): place the document on the reader and retry",
                                several.join(", ")
                            )))
                        }
                        _ => {
                            return Err(usage(format!(
                                "--reader {wanted:?} matches several readers holding a card ({}): give the full reader name",
                                with_card
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )))
                        }
                    }
                }
            }
        }
    }

    /// One sentence for a failed read: what failed, why, what to do.
    fn read_failure(reader: &str, e: CardError) -> CliError {
        let msg = match &e {
            CardError::WrongKey { protocol, .. } => format!(
                "the access key does not open the chip ({protocol} refused it): check the document number, date of birth and date of expiry (or the CAN) and retry"
            ),
            CardError::NoCard => format!(
                "no card in reader {reader:?}: place the document on the reader and retry (or pass --wait SECONDS)"
            ),
            CardError::CardRemoved => format!(
                "the card left reader {reader:?} during the read: keep the document on the reader and retry"
            ),
            CardError::Reader(d) => {
                format!("reader {reader:?} failed ({d}): check the reader and pcscd, then retry")
            }
            other => format!(
                "reading the chip in {reader:?} failed: {other}; the chip may be damaged or not an ICAO eMRTD"
            ),
        };
        failed(msg)
    }

    fn mrz_json(m: &Mrz) -> serde_json::Value {
        json!({
            "document_code": m.document_code,
            "issuing_state": m.issuing_state,
            "document_number": m.document_number,
            "surname": m.surname,
            "given_names": m.given_names,
            "nationality": m.nationality,
            "date_of_birth": m.date_of_birth,
            "sex": m.sex.to_string(),
            "date_of_expiry": m.date_of_expiry,
        })
    }

    pub(super) fn read(a: ReadArgs) -> CliResult {
        let key = access_key(&a)?;
        if !(a.wait.is_finite() && (0.0..=MAX_WAIT_S).contains(&a.wait)) {
            return Err(usage(format!(
                "--wait must be a number of seconds in [0, {MAX_WAIT_S}], got {}",
                a.wait
            )));
        }
        let wait = Duration::from_secs_f64(a.wait);
        let trust = match &a.csca {
            Some(dir) => Some(TrustStore::load_dir(dir).map_err(|e| {
                usage(format!(
                    "--csca {} cannot be used as a trust store: {e}",
                    dir.display()
                ))
            })?),
            None => None,
        };
        let reader = resolve_reader(&a.reader, wait)?;
        if !wait.is_zero() {
            match wait_for_card(&reader, wait) {
                Ok(()) => {}
                Err(TransportError::NoCard) => {
                    return Err(failed(format!(
                        "no card was presented to reader {reader:?} within {} s: place the document on the reader and retry",
                        a.wait
                    )))
                }
                Err(e) => return Err(read_failure(&reader, e.into())),
            }
        }
        let started = Instant::now();
        let mut link =
            PcscTransport::connect(&reader).map_err(|e| read_failure(&reader, e.into()))?;
        let chip = read_document(&mut link, &key, &ReadOptions::default(), &mut system_rng())
            .map_err(|e| read_failure(&reader, e))?;
        let elapsed = started.elapsed();
        drop(link);
        let mrz = parse_dg1(&chip)?;
        let pa = pa::verify(
            chip.ef_sod.as_deref(),
            &chip.data_groups,
            trust.as_ref(),
            SystemTime::now(),
        );
        if a.json {
            print_json(&chip, &mrz, &pa, elapsed)
        } else {
            print_human(&reader, &chip, &mrz, &pa, elapsed);
            Ok(())
        }
    }

    fn parse_dg1(chip: &ChipRead) -> Result<Mrz, CliError> {
        let dg1 = chip.data_groups.get(&1).ok_or_else(|| {
            failed("the chip has no readable DG1 (MRZ): it is not a usable ICAO eMRTD".into())
        })?;
        Dg1::parse(dg1)
            .map(|d| d.mrz)
            .map_err(|e| failed(format!("the chip's DG1 (MRZ) is malformed: {e}")))
    }

    fn print_json(chip: &ChipRead, mrz: &Mrz, pa: &PaReport, elapsed: Duration) -> CliResult {
        let out = json!({
            "access_control": chip.access_control.name(),
            "mrz": mrz_json(mrz),
            "data_groups": chip.data_groups.keys().collect::<Vec<_>>(),
            "data_groups_refused": chip.refused.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "passive_authentication": {
                "status": pa.status,
                "detail": pa.detail,
            },
            "stats": {
                "apdus": chip.stats.apdus,
                "bytes_in": chip.stats.bytes_in,
                "bytes_out": chip.stats.bytes_out,
                "elapsed_ms": elapsed.as_millis() as u64,
            },
        });
        let s = serde_json::to_string_pretty(&out)
            .map_err(|e| failed(format!("cannot render the JSON report: {e}")))?;
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "{s}");
        Ok(())
    }

    fn print_human(reader: &str, chip: &ChipRead, m: &Mrz, pa: &PaReport, elapsed: Duration) {
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        let status = serde_json::to_value(pa.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(o, "reader:          {reader}");
        let _ = writeln!(o, "access control:  {}", chip.access_control.name());
        let _ = writeln!(
            o,
            "document:        {} {} {}",
            m.document_code, m.issuing_state, m.document_number
        );
        let _ = writeln!(o, "holder:          {}, {}", m.surname, m.given_names);
        let _ = writeln!(
            o,
            "nationality:     {}  sex {}  born {}  expires {}",
            m.nationality, m.sex, m.date_of_birth, m.date_of_expiry
        );
        let dgs: Vec<String> = chip.data_groups.keys().map(|n| n.to_string()).collect();
        let _ = writeln!(o, "data groups:     {}", dgs.join(", "));
        if !chip.refused.is_empty() {
            let r: Vec<String> = chip.refused.iter().map(|(n, _)| n.to_string()).collect();
            let _ = writeln!(o, "refused:         {}", r.join(", "));
        }
        let _ = writeln!(o, "passive auth:    {status}: {}", pa.detail);
        let _ = writeln!(
            o,
            "link:            {} APDUs, {} bytes in, {} bytes out, {} ms",
            chip.stats.apdus,
            chip.stats.bytes_in,
            chip.stats.bytes_out,
            elapsed.as_millis()
        );
    }
}
