//! `tributary bench log`.

/// Arguments of `tributary bench log`.
#[derive(Debug, clap::Args)]
pub struct LogBenchArgs {}

pub fn run(_args: &LogBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench log is being written")
}
