//! A free TCP port for a server a test starts (shared by the gate-controller, sim and
//! process tests through `#[path]`).

/// A TCP port free on the loopback interface right now, for a server a test starts.
///
/// Picked below the kernel's ephemeral range (32768-60999 on Linux): a port from
/// `bind(":0")` is an ephemeral one, and between the check and the server's own bind an
/// outgoing connection of a parallel test may take it, and the server then exits on
/// "address in use". Each test process starts at its own place in 20000-32767.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    let start = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port in {LOW}..{}", LOW + SPAN)
}
