//! A vsmartcard `vpcd` client: serves a virtual card to pcscd's virtual reader driver, so
//! PC/SC applications (and this project's PC/SC driver) talk to it like to a real card.
//!
//! Protocol: the card side connects to the driver (TCP, default `127.0.0.1:35963`); every
//! message is a 2-byte big-endian length then the payload. One-byte payloads are control
//! messages: `00` power off, `01` power on, `02` reset, `04` ATR request (answered with the
//! ATR). Any other payload is a command APDU, answered with the response APDU.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand_core::CryptoRng;

use super::chip::VirtualChip;
use super::transport::TransportError;

/// Default address of the vpcd driver inside pcscd.
pub const DEFAULT_VPCD_ADDR: &str = "127.0.0.1:35963";

/// ATR of a contactless card as PC/SC presents it (`3B 84 80 01` + 4 zero historical bytes
/// + TCK).
pub const CONTACTLESS_ATR: [u8; 9] = [0x3B, 0x84, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05];

/// Control message: power off.
const CTRL_OFF: u8 = 0x00;
/// Control message: power on.
const CTRL_ON: u8 = 0x01;
/// Control message: reset.
const CTRL_RESET: u8 = 0x02;
/// Control message: ATR request.
const CTRL_ATR: u8 = 0x04;

/// A card that vpcd can serve.
pub trait VirtualCard {
    /// The answer-to-reset.
    fn atr(&self) -> Vec<u8>;
    /// Power off (session state lost).
    fn power_off(&mut self);
    /// Power on.
    fn power_on(&mut self);
    /// Warm reset.
    fn reset(&mut self);
    /// Answer one command APDU; `Err(CardRemoved)` = the card leaves the field.
    fn apdu(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<R: CryptoRng> VirtualCard for VirtualChip<R> {
    fn atr(&self) -> Vec<u8> {
        CONTACTLESS_ATR.to_vec()
    }
    fn power_off(&mut self) {
        VirtualChip::reset(self);
    }
    fn power_on(&mut self) {
        VirtualChip::reset(self);
    }
    fn reset(&mut self) {
        VirtualChip::reset(self);
    }
    fn apdu(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.process(command)
    }
}

/// Failure of the vpcd link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VpcdError {
    /// Connecting to or talking with the driver failed.
    #[error("vpcd link: {0}")]
    Io(#[from] io::Error),
    /// The driver sent an empty or oversized message.
    #[error("vpcd sent a malformed message of {0} bytes")]
    Malformed(usize),
}

/// How a served session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VpcdEnd {
    /// The driver closed the connection.
    DriverClosed,
    /// The card was pulled (an APDU answered `CardRemoved`): the connection was closed so
    /// that the reader reports the card gone.
    CardPulled,
    /// The stop flag was raised.
    Stopped,
}

/// Connect to the vpcd driver at `addr` with TCP_NODELAY (each APDU answer leaves at once).
pub fn connect(addr: impl ToSocketAddrs) -> Result<TcpStream, VpcdError> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    quickack(&s);
    Ok(s)
}

/// Re-arm TCP_QUICKACK (Linux clears it after use): without it every APDU waits for the
/// delayed ACK (~40–50 ms).
fn quickack(s: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::TcpStreamExt;
        let _ = s.set_quickack(true);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = s;
}

fn read_msg(s: &mut TcpStream, stop: &AtomicBool) -> Result<Option<Vec<u8>>, VpcdError> {
    let mut len = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match s.read(&mut len[got..]) {
            Ok(0) => return Ok(None),
            Ok(n) => {
                got += n;
                // vpcd writes the length and the message separately: the message
                // waits (Nagle) until the length is acknowledged, so acknowledge now,
                // not after the delayed-ACK timer.
                quickack(s);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let n = usize::from(u16::from_be_bytes(len));
    if n == 0 {
        return Err(VpcdError::Malformed(0));
    }
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf)?;
    quickack(s);
    Ok(Some(buf))
}

fn write_msg(s: &mut TcpStream, payload: &[u8]) -> Result<(), VpcdError> {
    let n = u16::try_from(payload.len()).map_err(|_| VpcdError::Malformed(payload.len()))?;
    let mut out = Vec::with_capacity(payload.len() + 2);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(payload);
    s.write_all(&out)?;
    Ok(())
}

/// Serve `card` on an established vpcd connection until the driver closes it, the card is
/// pulled, or `stop` is raised (checked at least every 200 ms).
pub fn serve(
    mut stream: TcpStream,
    card: &mut dyn VirtualCard,
    stop: &AtomicBool,
) -> Result<VpcdEnd, VpcdError> {
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    loop {
        let Some(msg) = read_msg(&mut stream, stop)? else {
            return Ok(if stop.load(Ordering::Relaxed) {
                VpcdEnd::Stopped
            } else {
                VpcdEnd::DriverClosed
            });
        };
        match msg.as_slice() {
            [CTRL_OFF] => card.power_off(),
            [CTRL_ON] => card.power_on(),
            [CTRL_RESET] => card.reset(),
            [CTRL_ATR] => write_msg(&mut stream, &card.atr())?,
            [_] => {} // unknown control message: ignored, as vpcd itself does
            apdu => match card.apdu(apdu) {
                Ok(resp) => write_msg(&mut stream, &resp)?,
                Err(_) => {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    return Ok(VpcdEnd::CardPulled);
                }
            },
        }
    }
}

/// Serve `card` to the vpcd driver at `addr` until `stop` is raised or the card is pulled,
/// reconnecting (every `retry`) whenever the driver is not there or closes the link, as
/// when pcscd restarts.
pub fn serve_forever(
    addr: &str,
    card: &mut dyn VirtualCard,
    stop: &AtomicBool,
    retry: Duration,
) -> Result<VpcdEnd, VpcdError> {
    while !stop.load(Ordering::Relaxed) {
        match connect(addr) {
            Ok(s) => match serve(s, card, stop) {
                Ok(VpcdEnd::DriverClosed) | Err(VpcdError::Io(_)) => {
                    // the driver went away (pcscd restart): power-cycle the card, reconnect
                    card.power_off();
                }
                Ok(end) => return Ok(end),
                Err(e) => return Err(e),
            },
            Err(VpcdError::Io(_)) => {}
            Err(e) => return Err(e),
        }
        std::thread::sleep(retry);
    }
    Ok(VpcdEnd::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::bac::MrzKey;
    use crate::card::chip::{ChipConfig, Fault};
    use rand10::rngs::StdRng;
    use rand10::SeedableRng;
    use std::net::TcpListener;

    /// A fake vpcd driver on a local port: checks framing, control messages and removal.
    #[test]
    fn serves_framed_apdus_and_control_messages() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stop = AtomicBool::new(false);
        let mut chip = VirtualChip::new(
            ChipConfig::new(MrzKey::new("L898902C", "690806", "940623").unwrap(), None),
            StdRng::seed_from_u64(1),
        );
        chip.inject(Fault::PulledAt(3));
        std::thread::scope(|sc| {
            let h = sc.spawn(|| {
                let s = connect(addr).unwrap();
                serve(s, &mut chip, &stop).unwrap()
            });
            let (mut d, _) = l.accept().unwrap();
            d.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let send = |d: &mut TcpStream, p: &[u8]| {
                let mut m = (p.len() as u16).to_be_bytes().to_vec();
                m.extend_from_slice(p);
                d.write_all(&m).unwrap();
            };
            let recv = |d: &mut TcpStream| {
                let mut l = [0u8; 2];
                d.read_exact(&mut l).unwrap();
                let mut b = vec![0u8; usize::from(u16::from_be_bytes(l))];
                d.read_exact(&mut b).unwrap();
                b
            };
            send(&mut d, &[CTRL_ON]);
            send(&mut d, &[CTRL_ATR]);
            assert_eq!(recv(&mut d), CONTACTLESS_ATR.to_vec());
            // SELECT eMRTD application, plain
            send(&mut d, &hex::decode("00A4040C07A0000002471001").unwrap());
            assert_eq!(recv(&mut d), vec![0x90, 0x00]);
            // GET CHALLENGE: 8 bytes + 9000
            send(&mut d, &hex::decode("0084000008").unwrap());
            let r = recv(&mut d);
            assert_eq!((r.len(), &r[8..]), (10, &[0x90u8, 0x00][..]));
            // third APDU: the card is pulled, the connection closes
            send(&mut d, &hex::decode("0084000008").unwrap());
            let mut b = [0u8; 1];
            assert_eq!(d.read(&mut b).unwrap_or(0), 0);
            assert_eq!(h.join().unwrap(), VpcdEnd::CardPulled);
        });
    }
}
