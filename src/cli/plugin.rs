//! `tributary plugin ...`: what the plugin loader finds on a plugin path, and new plugin
//! crates.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::plugin::scaffold::{ScaffoldKind, ScaffoldOptions, scaffold};
use crate::plugin::{PluginLoader, default_plugin_path};

#[derive(Debug, clap::Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// List the connectors, transformations and predicates found on a plugin path: type,
    /// version, aliases, file, and every file that could not be loaded.
    List {
        /// Directories to scan (Kafka Connect's plugin.path), comma-separated or repeated
        /// (default: the directory of this tributary executable, where cargo puts the
        /// connectors built with it).
        #[arg(long = "plugin-path", value_delimiter = ',', value_name = "DIRS")]
        plugin_path: Vec<PathBuf>,
        /// Where libraries are copied before loading (default: a folder in the temp dir).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Create a new plugin crate that builds, passes its tests and runs as it is: a source
    /// whose tasks count, a sink whose tasks count what they are given, or a transform that
    /// adds a header.
    New {
        /// The crate's name (lowercase letters, digits, - and _; e.g. http-source).
        name: String,
        /// A source connector (the default).
        #[arg(long, conflicts_with_all = ["sink", "transform"])]
        source: bool,
        /// A sink connector.
        #[arg(long, conflicts_with = "transform")]
        sink: bool,
        /// A single message transform (used in `transforms.NAME.type`).
        #[arg(long)]
        transform: bool,
        /// The directory to create the crate's directory in.
        #[arg(long, value_name = "PARENT", default_value = ".")]
        dir: PathBuf,
        /// The tributary-plugin-sdk crate to build against (its directory, or a tributary
        /// checkout). Default: the SDK of the source tree this tributary was built from.
        #[arg(long, value_name = "PATH")]
        sdk: Option<PathBuf>,
    },
}

/// Run a `plugin` subcommand.
pub fn run(args: PluginArgs) -> anyhow::Result<()> {
    match args.command {
        PluginCommand::List {
            plugin_path,
            cache_dir,
        } => {
            let plugin_path = if plugin_path.is_empty() {
                vec![default_plugin_path().context(
                    "cannot find the directory of the running tributary executable; pass \
                     --plugin-path",
                )?]
            } else {
                plugin_path
            };
            let cache =
                cache_dir.unwrap_or_else(|| std::env::temp_dir().join("tributary-plugin-cache"));
            let registry = PluginLoader::new(cache).scan(&plugin_path);
            let shown: Vec<String> = plugin_path
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            println!("plugin.path: {}\n", shown.join(", "));
            print!("{}", registry.render());
            Ok(())
        }
        PluginCommand::New {
            name,
            source: _,
            sink,
            transform,
            dir,
            sdk,
        } => {
            let kind = if transform {
                ScaffoldKind::Transform
            } else if sink {
                ScaffoldKind::Sink
            } else {
                ScaffoldKind::Source
            };
            let made = scaffold(&ScaffoldOptions {
                name,
                kind,
                parent: dir,
                sdk,
            })?;
            let dir = made.dir.display();
            println!(
                "created {} in {dir}: the {kind} {}",
                made.crate_name, made.connector_class
            );
            for file in &made.files {
                println!("  {}", file.display());
            }
            println!("built against the SDK in {}", made.sdk.display());
            println!(
                "\nnext:\n  cd {dir}\n  cargo test\n  cargo build --release\n  \
                 cp target/release/{} <a directory on the worker's plugin.path>\n  \
                 tributary plugin list --plugin-path <that directory>",
                made.library_file_name()
            );
            Ok(())
        }
    }
}
