//! `gate-sim`: hardware simulator, scenario runner and demo.
fn main() -> anyhow::Result<()> {
    Ok(())
}
