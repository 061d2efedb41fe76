//! A bench seam for the OCR: an [`MrzReader`] that watches a text file
//! (`[devices.mrz] kind = "file"`, `path`). Each change of the file is one presented
//! document: write the MRZ lines (or the `DOCNO,YYMMDD,YYMMDD` key form) to it.
//!
//! - The file is polled every [`POLL_INTERVAL`]; a change is its modification time,
//!   length or content differing from the last scan's. A change is taken once the file
//!   has stayed the same for one poll, so a write caught half-way is not a misread.
//! - The content present when the reader starts counts as a change too.
//! - A missing or blank file is no document (not a fault); a file that reappears is a
//!   change even with the same content.
//! - Content that [`OcrMrz::parse`] accepts is [`MrzScan::Read`]; anything else is
//!   [`MrzScan::Misread`] naming the defect (never the content).

use super::framing::defect;
use crate::card::gate::OcrMrz;
use crate::card::mrz::{Mrz, MrzKey};
use crate::devices::{DeviceFault, DeviceFuture, FaultKind, MrzReader, MrzScan};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the file is looked at.
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);
/// Larger files are not an MRZ (a misread, not read into memory).
const MAX_FILE: u64 = 4096;

/// What the file looked like at one poll.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    content: Vec<u8>,
}

/// The file-watching OCR reader.
#[derive(Debug)]
pub struct FileMrzReader {
    path: PathBuf,
    interval: Duration,
    /// The file at the last scan returned (`None`: missing or blank since).
    reported: Option<Stamp>,
    /// The file at the previous poll, when it differed from `reported`.
    candidate: Option<Stamp>,
}

impl FileMrzReader {
    /// A reader of the file at `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> FileMrzReader {
        FileMrzReader {
            path: path.into(),
            interval: POLL_INTERVAL,
            reported: None,
            candidate: None,
        }
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file now: `None` when missing or blank.
    async fn look(&self) -> Result<Option<Stamp>, DeviceFault> {
        let meta = match tokio::fs::metadata(&self.path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.fault(&e)),
        };
        let modified = meta.modified().ok();
        let len = meta.len();
        let content = if len > MAX_FILE {
            Vec::new()
        } else {
            match tokio::fs::read(&self.path).await {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(self.fault(&e)),
            }
        };
        if len <= MAX_FILE && content.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        Ok(Some(Stamp {
            modified,
            len,
            content,
        }))
    }

    fn fault(&self, e: &std::io::Error) -> DeviceFault {
        DeviceFault::new(
            FaultKind::Unavailable,
            format!("cannot read the OCR file {}: {e}", self.path.display()),
        )
    }

    /// One poll: a scan when the file changed and has settled.
    async fn poll(&mut self) -> Result<Option<MrzScan>, DeviceFault> {
        let now = self.look().await?;
        if now == self.reported {
            self.candidate = None;
            return Ok(None);
        }
        let Some(stamp) = now else {
            // Gone or blank: the next content is a change, whatever it is.
            self.reported = None;
            self.candidate = None;
            return Ok(None);
        };
        if self.candidate.as_ref() != Some(&stamp) {
            self.candidate = Some(stamp);
            return Ok(None);
        }
        self.candidate = None;
        let scan = scan_of(&stamp);
        self.reported = Some(stamp);
        Ok(Some(scan))
    }

    async fn scan(&mut self) -> Result<MrzScan, DeviceFault> {
        loop {
            if let Some(s) = self.poll().await? {
                return Ok(s);
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

/// The scan of a file's content.
fn scan_of(stamp: &Stamp) -> MrzScan {
    if stamp.len > MAX_FILE {
        return MrzScan::Misread(format!("the OCR file is larger than {MAX_FILE} bytes"));
    }
    let Ok(text) = std::str::from_utf8(&stamp.content) else {
        return MrzScan::Misread("the OCR file is not UTF-8 text".into());
    };
    match OcrMrz::parse(text) {
        Ok(mrz) => MrzScan::Read { mrz, can: None },
        Err(_) => MrzScan::Misread(file_defect(text)),
    }
}

/// What is wrong with content [`OcrMrz::parse`] refused, without the content (its own
/// message may quote fields).
fn file_defect(text: &str) -> String {
    let t = text.trim();
    let typed = if t.contains(',') && !t.contains('\n') {
        MrzKey::parse(t).err()
    } else {
        let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        Mrz::parse(&lines.join("\n")).err()
    };
    typed.map_or_else(|| "the OCR MRZ is malformed".into(), |e| defect(&e))
}

impl MrzReader for FileMrzReader {
    fn next_scan(&mut self) -> DeviceFuture<'_, Result<MrzScan, DeviceFault>> {
        Box::pin(self.scan())
    }

    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            let dir = match self.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            match tokio::fs::metadata(&dir).await {
                Ok(m) if m.is_dir() => Ok(()),
                _ => Err(DeviceFault::new(
                    FaultKind::Unavailable,
                    format!(
                        "the directory of the OCR file {} is missing",
                        self.path.display()
                    ),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mrz::tests::{td1, td3};

    fn fast(path: &Path) -> FileMrzReader {
        let mut r = FileMrzReader::new(path);
        r.interval = Duration::from_millis(10);
        r
    }

    async fn next(r: &mut FileMrzReader) -> MrzScan {
        tokio::time::timeout(Duration::from_secs(5), r.next_scan())
            .await
            .expect("a scan within 5 s")
            .expect("no fault")
    }

    async fn none_within(r: &mut FileMrzReader, ms: u64) {
        let got = tokio::time::timeout(Duration::from_millis(ms), r.next_scan()).await;
        assert!(got.is_err(), "unexpected scan {got:?}");
    }

    #[tokio::test]
    async fn each_change_is_one_scan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ocr.txt");
        let mut r = fast(&path);
        r.probe().await.expect("the directory exists");
        // Missing: no scan, no fault.
        none_within(&mut r, 100).await;
        std::fs::write(&path, td3().join("\n")).expect("write");
        match next(&mut r).await {
            MrzScan::Read {
                mrz: OcrMrz::Full(m),
                can: None,
            } => assert_eq!(m.document_number, "L898902C3"),
            other => panic!("{other:?}"),
        }
        // Unchanged: nothing more.
        none_within(&mut r, 100).await;
        // The key form.
        std::fs::write(&path, "L898902C3,740812,120415\n").expect("write");
        match next(&mut r).await {
            MrzScan::Read {
                mrz: OcrMrz::Key(k),
                ..
            } => assert_eq!(k.date_of_birth, "740812"),
            other => panic!("{other:?}"),
        }
        // A bad check digit: a misread naming the field, not the content.
        let mut bad = td1();
        bad[0] = bad[0].replacen("D231458907", "D231458908", 1);
        std::fs::write(&path, bad.join("\n")).expect("write");
        assert_eq!(
            next(&mut r).await,
            MrzScan::Misread("check digit of the document number does not match".into())
        );
        // A bad date in the key form: the defect does not quote it.
        std::fs::write(&path, "L898902C3,741312,120415").expect("write");
        match next(&mut r).await {
            MrzScan::Misread(d) => {
                assert!(!d.contains("741312"), "{d}");
                assert!(d.contains("date of birth"), "{d}");
            }
            other => panic!("{other:?}"),
        }
        // Removed and written again with the same content: a new presentation.
        std::fs::remove_file(&path).expect("rm");
        none_within(&mut r, 60).await;
        std::fs::write(&path, "L898902C3,741312,120415").expect("write");
        assert!(matches!(next(&mut r).await, MrzScan::Misread(_)));
    }

    #[tokio::test]
    async fn the_content_at_start_is_a_scan_and_a_missing_directory_a_fault() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ocr.txt");
        std::fs::write(&path, td1().join("\n")).expect("write");
        let mut r = fast(&path);
        assert!(matches!(next(&mut r).await, MrzScan::Read { .. }));
        let mut gone = FileMrzReader::new(dir.path().join("nope").join("ocr.txt"));
        let f = gone.probe().await.expect_err("no directory");
        assert_eq!(f.kind, FaultKind::Unavailable);
        assert!(f.detail.contains("nope"), "{}", f.detail);
    }
}
