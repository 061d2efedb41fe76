//! `gated`: the per-gate daemon.
fn main() -> anyhow::Result<()> {
    Ok(())
}
