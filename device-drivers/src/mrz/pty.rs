//! The far end of an OCR reader's serial line for simulators and tests: a real
//! pseudo-terminal whose slave end is reachable at a stable path (a symlink, like a udev
//! `/dev/serial/by-id/...` link), so [`super::SerialMrzReader`] opens it exactly like a
//! real port. [`PtyOcr::send`] writes what the reader would send ([`super::encode`]
//! frames an MRZ); [`PtyOcr::vanish`] closes the pty and removes the link (the reader is
//! unplugged) and [`PtyOcr::reappear`] brings up a new pty at the same path.

use super::framing::{encode, Framing};
use crate::port::pty::{self, write_all, LinkedPty};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long [`PtyOcr::send`] waits for room in the pty's buffer (nobody reading).
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// A simulated OCR reader behind a pseudo-terminal.
pub struct PtyOcr {
    link: PathBuf,
    pty: Option<LinkedPty>,
}

impl PtyOcr {
    /// Opens a pty and links its slave end at `link` (replacing what is there).
    pub fn start(link: &Path) -> io::Result<PtyOcr> {
        let mut p = PtyOcr {
            link: link.to_owned(),
            pty: None,
        };
        p.reappear()?;
        Ok(p)
    }

    /// The path a driver opens.
    pub fn path(&self) -> &Path {
        &self.link
    }

    /// Whether the reader is plugged in.
    pub fn present(&self) -> bool {
        self.pty.is_some()
    }

    /// Sends `bytes` down the line, as the reader would. Fails when the reader is
    /// unplugged, or when the line stays full (nobody reading) for 2 s.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let Some(p) = &self.pty else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the simulated OCR reader is unplugged",
            ));
        };
        let until = Instant::now() + SEND_TIMEOUT;
        if write_all(&p.master, bytes, &|| Instant::now() >= until) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the pty's buffer stayed full (is a driver reading?)",
            ))
        }
    }

    /// Sends the MRZ `lines` (and a CAN line) framed by `framing` ([`encode`]).
    pub fn send_mrz(
        &self,
        lines: &[String],
        can: Option<&str>,
        framing: &Framing,
    ) -> io::Result<()> {
        self.send(&encode(lines, can, framing))
    }

    /// The reader is unplugged: the pty is closed (the driver's reads fail) and the link
    /// removed.
    pub fn vanish(&mut self) {
        self.pty = None;
        pty::unlink(&self.link);
    }

    /// The reader is plugged back in: a new pty, linked at the same path.
    pub fn reappear(&mut self) -> io::Result<()> {
        self.vanish();
        self.pty = Some(LinkedPty::open(&self.link)?);
        Ok(())
    }
}

impl Drop for PtyOcr {
    fn drop(&mut self) {
        self.vanish();
    }
}

impl std::fmt::Debug for PtyOcr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyOcr")
            .field("link", &self.link)
            .field("present", &self.present())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn what_is_sent_arrives_at_the_link_and_vanishing_removes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("ocr");
        let mut ocr = PtyOcr::start(&link).expect("openpty");
        assert!(ocr.present());
        let mut port = std::fs::File::open(&link).expect("the link opens");
        let f = Framing::default();
        let lines = vec!["ABC".to_string(), "DEF".to_string()];
        ocr.send_mrz(&lines, Some("123456"), &f).expect("sent");
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while got.len() < 15 {
            let n = port.read(&mut buf).expect("read");
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"ABC\r\nDEF\r\n123456\r\n");
        ocr.vanish();
        assert!(!ocr.present());
        assert!(std::fs::symlink_metadata(&link).is_err(), "link removed");
        assert_eq!(
            ocr.send(b"x").expect_err("unplugged").kind(),
            io::ErrorKind::NotConnected
        );
        // The old port's reads now fail or end.
        assert!(matches!(port.read(&mut buf), Ok(0) | Err(_)));
        ocr.reappear().expect("back");
        assert!(std::fs::metadata(&link).is_ok(), "link back");
    }
}
