//! Hidden tools for tests (`tributary debug ...`).

/// Arguments of `tributary debug crash-writer`.
#[derive(Debug, clap::Args)]
pub struct CrashWriterArgs {}

pub fn crash_writer(_args: &CrashWriterArgs) -> anyhow::Result<()> {
    anyhow::bail!("crash-writer is being written")
}
