//! `gate-sim card`: serve a virtual eMRTD chip (the ICAO 9303 specimen passport, or a seeded
//! persona) to pcscd through vsmartcard's vpcd driver until stopped, so that PC/SC tools,
//! `gatectl doc read` and `gated` read it like a real passport on a reader.
//!
//! The chip's EF.SOD is signed by the checked-in TEST Document Signer (`configs/pki`,
//! embedded at build time), so `gatectl doc read --csca configs/pki/csca` reports passive
//! authentication `valid`.

use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::{Args, ValueEnum};
use device_drivers::card::bac::MrzKey;
use device_drivers::card::chip::{ChipConfig, Fault, VirtualChip, FID_CARD_ACCESS};
use device_drivers::card::crypto::CipherSuite;
use device_drivers::card::lds::persona::{DocumentKind, Persona, PersonaBuilder};
use device_drivers::card::pa::pki::{Issued, SigningKey};
use device_drivers::card::pace::{PaceCurve, PaceInfo};
use device_drivers::card::vpcd::{self, VpcdEnd, VpcdError};
use device_drivers::card::{system_rng, SystemRng};

/// The TEST Document Signer (P-256) that signs every served chip's EF.SOD.
const DS_CERT: &[u8] = include_bytes!("../../configs/pki/ds/ds-p256.der");
/// Its private key (public test material, see configs/pki/README.md).
const DS_KEY: &str = include_str!("../../configs/pki/test-only-keys/ds-p256.key.pem");

/// How often the link is retried after pcscd went away.
const RECONNECT: Duration = Duration::from_millis(500);

/// PACE domain parameters a served chip can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Curve {
    /// NIST P-256 (parameter ID 12).
    P256,
    /// brainpoolP256r1 (parameter ID 13).
    Bp256,
    /// NIST P-384 (parameter ID 15).
    P384,
    /// brainpoolP384r1 (parameter ID 16).
    Bp384,
}

impl Curve {
    fn pace(self) -> PaceCurve {
        match self {
            Curve::P256 => PaceCurve::P256,
            Curve::Bp256 => PaceCurve::BrainpoolP256r1,
            Curve::P384 => PaceCurve::P384,
            Curve::Bp384 => PaceCurve::BrainpoolP384r1,
        }
    }
}

/// Arguments of `gate-sim card`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("document").required(true).args(["specimen", "persona"])))]
pub struct CardArgs {
    /// Address of the vpcd driver inside pcscd (vsmartcard's default is 127.0.0.1:35963;
    /// the second virtual reader listens on 35964).
    #[arg(long, value_name = "HOST:PORT", default_value = vpcd::DEFAULT_VPCD_ADDR)]
    vpcd: String,
    /// Serve the ICAO 9303 specimen passport (ERIKSSON, ANNA MARIA, L898902C, born 690806,
    /// expires 940623).
    #[arg(long)]
    specimen: bool,
    /// Serve the seeded test persona SEED (a TD3 passport; its MRZ key and CAN are printed).
    #[arg(long, value_name = "SEED")]
    persona: Option<u64>,
    /// With --persona: a TD1 resident ID card instead of a passport.
    #[arg(long, requires = "persona")]
    resident: bool,
    /// Offer PACE-ECDH-GM (AES-128) on this curve in EF.CardAccess, besides BAC (default:
    /// BAC only, no EF.CardAccess).
    #[arg(long, value_name = "CURVE", num_args = 0..=1, default_missing_value = "p256")]
    pace: Option<Curve>,
    /// Refuse BAC (a PACE-only chip); needs --pace.
    #[arg(long, requires = "pace")]
    no_bac: bool,
    /// Fault injection: the card leaves the field when APDU K arrives (counted from
    /// power-on); gate-sim then exits 0.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pull_at: Option<u64>,
}

/// Builds the persona and the virtual chip that serves it.
fn build(a: &CardArgs) -> anyhow::Result<(Persona, VirtualChip<SystemRng>)> {
    let ds = Issued {
        cert_der: DS_CERT.to_vec(),
        key: SigningKey::from_pkcs8_pem(DS_KEY).context("embedded TEST DS key")?,
    };
    let pace_id = a.pace.map(|c| u32::from(c.pace().parameter_id()));
    let persona = match a.persona {
        None => Persona::specimen(&ds, pace_id)?,
        Some(seed) => {
            let kind = if a.resident {
                DocumentKind::ResidentCard
            } else {
                DocumentKind::Passport
            };
            PersonaBuilder::new(seed)
                .kind(kind)
                .pace(pace_id)
                .build(&ds)?
        }
    };
    let m = &persona.mrz;
    let key = MrzKey::new(&m.document_number, &m.date_of_birth, &m.date_of_expiry)
        .map_err(|e| anyhow!("persona MRZ key: {e}"))?;
    let mut cfg = ChipConfig::new(
        key,
        a.pace
            .map(|c| PaceInfo::ecdh_gm(CipherSuite::Aes128, c.pace())),
    );
    cfg.can = Some(persona.can.clone());
    cfg.bac = !a.no_bac;
    let mut chip = VirtualChip::new(cfg, system_rng());
    if let Some(k) = a.pull_at {
        chip.inject(Fault::PulledAt(k));
    }
    for (fid, bytes) in &persona.files {
        // EF.CardAccess lives in the master file; the chip builds it from its PACE config.
        if *fid != FID_CARD_ACCESS {
            chip.set_file(*fid, bytes.clone());
        }
    }
    Ok((persona, chip))
}

/// Raises `stop` on SIGINT or SIGTERM (on a small thread of its own).
fn stop_on_signal(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("signal handler runtime")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{signal, SignalKind};
                    let Ok(mut term) = signal(SignalKind::terminate()) else {
                        let _ = tokio::signal::ctrl_c().await;
                        return;
                    };
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
            });
            stop.store(true, Ordering::Relaxed);
        })
        .context("signal handler thread")?;
    Ok(())
}

/// Exit code 2: the arguments are unusable.
#[derive(Debug)]
pub struct BadUsage(pub String);

impl std::fmt::Display for BadUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadUsage {}

/// Runs `gate-sim card` until stopped: `Err` with a [`BadUsage`] inside means exit 2.
pub fn run(a: CardArgs) -> anyhow::Result<()> {
    if a.vpcd
        .to_socket_addrs()
        .map(|mut i| i.next().is_none())
        .unwrap_or(true)
    {
        return Err(BadUsage(format!(
            "--vpcd {:?} is not a HOST:PORT address (e.g. 127.0.0.1:35963)",
            a.vpcd
        ))
        .into());
    }
    let (persona, mut chip) = build(&a)?;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signal(stop.clone())?;
    let first = vpcd::connect(a.vpcd.as_str()).map_err(|e| {
        anyhow!(
            "cannot connect to vpcd at {}: {e}; start pcscd with vsmartcard-vpcd installed, or pass --vpcd HOST:PORT",
            a.vpcd
        )
    })?;
    let m = &persona.mrz;
    let access = match (a.pace, a.no_bac) {
        (None, _) => "BAC".to_string(),
        (Some(c), false) => format!("PACE ({c:?}) and BAC"),
        (Some(c), true) => format!("PACE ({c:?}) only"),
    };
    // What a reader needs, on stdout (flushed at once: tests and scripts wait for it).
    {
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        let _ = writeln!(
            o,
            "serving {} {} {}, {} {} through vpcd at {} ({access}); --mrz-key {},{},{} --can {}",
            m.document_code,
            m.issuing_state,
            m.document_number,
            m.surname,
            m.given_names,
            a.vpcd,
            m.document_number,
            m.date_of_birth,
            m.date_of_expiry,
            persona.can
        );
        let _ = o.flush();
    }
    let end = match vpcd::serve(first, &mut chip, &stop) {
        Ok(VpcdEnd::DriverClosed) | Err(VpcdError::Io(_)) => {
            // pcscd went away (restart): power-cycle the card and keep reconnecting.
            eprintln!("gate-sim card: vpcd closed the link; reconnecting until stopped");
            vpcd::serve_forever(&a.vpcd, &mut chip, &stop, RECONNECT)?
        }
        Ok(end) => end,
        Err(e) => return Err(e.into()),
    };
    match end {
        VpcdEnd::Stopped => {
            eprintln!("gate-sim card: stopped");
            Ok(())
        }
        VpcdEnd::CardPulled if a.pull_at.is_some() => {
            eprintln!(
                "gate-sim card: the card left the field at APDU {} as asked (--pull-at)",
                a.pull_at.unwrap_or_default()
            );
            Ok(())
        }
        other => Err(anyhow!("the virtual card stopped unexpectedly ({other:?})")),
    }
}
