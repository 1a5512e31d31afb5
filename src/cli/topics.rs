//! `tributary topics ...`: topic administration directly on a data directory, for
//! when no broker runs on it (the broker holds the directory's lock).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::broker::{BrokerConfig, TopicStore};
use crate::log::config::KEYS;

#[derive(Debug, clap::Args)]
pub struct TopicsArgs {
    /// The data directory.
    #[arg(long, default_value = "./data", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: TopicsCommand,
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// List topic names.
    List,
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// A topic config override, e.g. --config cleanup.policy=compact (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Delete a topic and its data.
    Delete { name: String },
    /// Show partitions, offsets, sizes and config overrides.
    Describe { name: String },
    /// Grow a topic to a new total number of partitions.
    AddPartitions {
        name: String,
        #[arg(long)]
        total: i32,
    },
    /// List the supported topic config keys with defaults, or a topic's effective values.
    Configs { name: Option<String> },
}

fn parse_pairs(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("{p:?}: expected KEY=VALUE"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

pub fn run(args: TopicsArgs) -> anyhow::Result<()> {
    if let TopicsCommand::Configs { name: None } = &args.command {
        println!(
            "{:<40} {:<22} {:<8} DESCRIPTION",
            "KEY", "DEFAULT", "APPLIED"
        );
        for k in KEYS {
            println!(
                "{:<40} {:<22} {:<8} {}",
                k.name,
                k.default,
                if k.applied { "yes" } else { "no" },
                k.doc
            );
        }
        return Ok(());
    }
    let store = TopicStore::open(BrokerConfig::new(&args.data_dir))?;
    match args.command {
        TopicsCommand::List => {
            for t in store.list_topics() {
                println!("{t}");
            }
        }
        TopicsCommand::Create {
            name,
            partitions,
            configs,
        } => {
            let d = store.create_topic(&name, Some(partitions), parse_pairs(&configs)?)?;
            println!(
                "created topic {} ({} partitions, id {})",
                d.name,
                d.partitions.len(),
                d.id
            );
        }
        TopicsCommand::Delete { name } => {
            store.delete_topic(&name)?;
            println!("deleted topic {name}");
        }
        TopicsCommand::Describe { name } => {
            let d = store.describe_topic(&name)?;
            println!("topic {} id {}", d.name, d.id);
            for (k, v) in &d.overrides {
                println!("  config {k}={v}");
            }
            println!(
                "  {:>9} {:>14} {:>14} {:>14} {:>14} {:>8}",
                "PARTITION", "START", "END", "HIGH WATERMARK", "BYTES", "SEGMENTS"
            );
            for p in &d.partitions {
                println!(
                    "  {:>9} {:>14} {:>14} {:>14} {:>14} {:>8}",
                    p.partition,
                    p.log_start_offset,
                    p.log_end_offset,
                    p.high_watermark,
                    p.size_bytes,
                    p.segments
                );
            }
        }
        TopicsCommand::AddPartitions { name, total } => {
            let d = store.add_partitions(&name, total)?;
            println!("topic {} now has {} partitions", d.name, d.partitions.len());
        }
        TopicsCommand::Configs { name: Some(name) } => {
            for (k, v, default) in store.topic_configs(&name)? {
                println!("{k}={v}{}", if default { "" } else { "  (override)" });
            }
        }
        TopicsCommand::Configs { name: None } => {}
    }
    store.close()?;
    Ok(())
}
