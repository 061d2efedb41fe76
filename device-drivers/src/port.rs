//! Serial-port plumbing shared by the serial drivers (fingerprint scanner, MRZ reader)
//! and their pseudo-terminal simulators: opening a port by path (8N1, no flow control),
//! and, for simulators and tests, a raw pseudo-terminal whose slave end is reachable at a
//! stable symlink (like a udev `/dev/serial/by-id/...` link).

use std::path::Path;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// Opens the serial port at `path` at `baud`, 8N1 without flow control. The error
/// names the port.
pub fn open_serial(path: &Path, baud: u32) -> Result<SerialStream, String> {
    let name = path.to_string_lossy().into_owned();
    tokio_serial::new(name.as_str(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .map_err(|e| format!("cannot open {name}: {e}"))
}

/// Pseudo-terminals linked at a path, for device simulators and tests.
#[cfg(unix)]
pub mod pty {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Path;
    use std::time::Duration;

    /// Both ends of a pseudo-terminal in raw mode (the master non-blocking), the slave
    /// end linked at a path.
    pub struct LinkedPty {
        /// The device's end: what the simulator writes is read from the slave.
        pub master: OwnedFd,
        /// The driver's end (kept open by the simulator so the master never sees a
        /// hang-up while no driver has the port open).
        pub slave: OwnedFd,
    }

    impl LinkedPty {
        /// Opens a pty and links its slave end at `link`, atomically replacing what is
        /// there.
        pub fn open(link: &Path) -> io::Result<LinkedPty> {
            let (master, slave) = open_pty()?;
            let target = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))?;
            let tmp = link.with_extension("tmp-link");
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&target, &tmp)?;
            std::fs::rename(&tmp, link)?;
            Ok(LinkedPty { master, slave })
        }
    }

    /// Removes the link at `link` (the device is unplugged); a missing link is fine.
    pub fn unlink(link: &Path) {
        let _ = std::fs::remove_file(link);
    }

    /// `openpty` with both ends in raw mode, the master non-blocking.
    fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        // SAFETY: openpty writes two fds into the provided ints; name, termios and winsize
        // are allowed to be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just returned by openpty and are owned by nobody else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        for fd in [&master, &slave] {
            // SAFETY: plain termios calls on an fd we own, with a zeroed struct filled by
            // tcgetattr before use.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(fd.as_raw_fd(), &mut t) != 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::cfmakeraw(&mut t);
                if libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            if fl < 0 || libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok((master, slave))
    }

    /// Writes all of `buf` to the non-blocking `fd`, waiting while the pty's buffer is
    /// full, until `give_up()` says otherwise. Returns whether everything was written.
    pub fn write_all(fd: &OwnedFd, mut buf: &[u8], give_up: &dyn Fn() -> bool) -> bool {
        while !buf.is_empty() && !give_up() {
            // SAFETY: writing from a valid slice to an fd we own.
            let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
            if n > 0 {
                buf = buf.get(n as usize..).unwrap_or_default();
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        buf.is_empty()
    }
}
