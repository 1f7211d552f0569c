/// Placeholder until the export command lands (being written now; replace this file whole).
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("prolong-eval export: not implemented yet")
}
