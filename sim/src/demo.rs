//! `gate-sim demo` (placeholder until the real-time loop lands).

/// Runs the demo.
pub fn run(_gates: usize, _port: u16, _speed: f64, _seed: u64) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
