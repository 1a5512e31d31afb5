//! `tributary plugin ...`: what the plugin loader finds on a plugin path.

use std::path::PathBuf;

use clap::Subcommand;

use crate::plugin::PluginLoader;

#[derive(Debug, clap::Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// List the connectors found on a plugin path: type, version, aliases, file, and every
    /// file that could not be loaded.
    List {
        /// Directories to scan (Kafka Connect's plugin.path), comma-separated or repeated.
        #[arg(
            long = "plugin-path",
            value_delimiter = ',',
            required = true,
            value_name = "DIRS"
        )]
        plugin_path: Vec<PathBuf>,
        /// Where libraries are copied before loading (default: a folder in the temp dir).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
}

/// Run a `plugin` subcommand.
pub fn run(args: PluginArgs) -> anyhow::Result<()> {
    match args.command {
        PluginCommand::List {
            plugin_path,
            cache_dir,
        } => {
            let cache =
                cache_dir.unwrap_or_else(|| std::env::temp_dir().join("tributary-plugin-cache"));
            let registry = PluginLoader::new(cache).scan(&plugin_path);
            print!("{}", registry.render());
            Ok(())
        }
    }
}
